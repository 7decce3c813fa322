-- How far the folds had read the log when the last digest was built (`horizon`), and - once a replay has rebuilt
-- the tenant's anomalies with new feed ids - where the next digest's "new" starts (`since_horizon`). Both are
-- {"log": seq, "kafka": {"<partition>": offset}} from the fold checkpoints, read in the digest's own snapshot.
-- A rebuilt anomaly whose log entry lies beyond `since_horizon` was never in a digest: it is new. The others are
-- history (listed before, or found only by the new policy). See streams/notify/store.py `follow`.
ALTER TABLE notify_digests ADD COLUMN IF NOT EXISTS horizon JSONB;
ALTER TABLE notify_digests ADD COLUMN IF NOT EXISTS since_horizon JSONB;
