-- How far the folds had read the log when the last digest was built / when the alert pass last caught up with the
-- feed (`horizon`), and - once a replay has rebuilt the tenant's anomalies with new feed ids - where "new" starts
-- for that cursor (`since_horizon`). Both are {"log": seq, "kafka": {"<partition>": offset}} from the fold
-- checkpoints (streams/notify/store.py `fold_horizon`). A rebuilt anomaly whose log entry lies beyond
-- `since_horizon` was never in a digest / never decided for Slack: it is news. The others are history (sent before,
-- or found only by the new policy) and are not sent again. See `follow` in the same module.
ALTER TABLE notify_digests ADD COLUMN IF NOT EXISTS horizon JSONB;
ALTER TABLE notify_digests ADD COLUMN IF NOT EXISTS since_horizon JSONB;
ALTER TABLE notify_cursors ADD COLUMN IF NOT EXISTS horizon JSONB;
ALTER TABLE notify_cursors ADD COLUMN IF NOT EXISTS since_horizon JSONB;
