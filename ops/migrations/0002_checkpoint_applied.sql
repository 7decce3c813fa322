-- The highest log position whose effects are in the projections. `position` is where a runner reads next and
-- may be moved back (replay); `applied` only ever grows, so entries at or below it are skipped instead of being
-- folded into the Welford baselines and counters a second time: replaying a position changes nothing.
ALTER TABLE checkpoints ADD COLUMN IF NOT EXISTS applied BIGINT NOT NULL DEFAULT 0;
