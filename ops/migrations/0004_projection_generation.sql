-- Replay rebuilds the projections into shadow tables and swaps them in. Runners fold into in-memory state
-- loaded from the live tables, so a swap must also tell them that state is gone: it bumps this number in the
-- swap's transaction, and a runner checks it (FOR SHARE, first thing in each commit) against the number it
-- loaded with. A mismatch rolls the batch back and reloads from the swapped-in tables. This table is never
-- swapped itself.
CREATE TABLE IF NOT EXISTS projection_generation (
    singleton  BOOLEAN PRIMARY KEY DEFAULT true CHECK (singleton),
    generation BIGINT NOT NULL DEFAULT 0,
    swapped_at TIMESTAMPTZ,
    note       TEXT NOT NULL DEFAULT ''
);
INSERT INTO projection_generation (singleton) VALUES (true) ON CONFLICT DO NOTHING;
