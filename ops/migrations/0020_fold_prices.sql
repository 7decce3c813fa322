-- The price snapshot the folds use, when it is not the one shipped with the code. `dd0c-cost replay --prices FILE`
-- stores it here in the transaction that swaps the rebuilt projections in, so the live worker (which reads this
-- row whenever it (re)loads its state) prices new events exactly as the replay priced history. No row: the
-- shipped snapshot. Not a projection: replay writes it, never swaps it.
CREATE TABLE IF NOT EXISTS fold_prices (
    singleton  BOOLEAN PRIMARY KEY DEFAULT true CHECK (singleton),
    sha256     TEXT NOT NULL,
    origin     TEXT NOT NULL,
    snapshot   JSONB NOT NULL,
    stored_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
