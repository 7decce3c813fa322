-- The S3 poller's position per listed prefix (one CloudTrail day folder of one account and region): the newest
-- key it has read there, so a poll lists only what is new (ListObjectsV2 StartAfter). CloudTrail object names in
-- a day folder sort by delivery minute (<account>_CloudTrail_<region>_<YYYYMMDDTHHMMZ>_<random>...), but not
-- within a minute: listings start an hour before the newest stamp, and `recent` holds the keys read since then,
-- which are skipped (streams/poller/layout.py).
--
-- Advanced only after the object's log entries are durable in the log, in the same transaction as the object's
-- read-only counts and dead letters: a crash before it re-reads the object, the log drops the copies of its
-- entries (dedupe on tenant, account, eventID), and nothing counted here is counted twice.
CREATE TABLE IF NOT EXISTS s3_poll_positions (
    tenant_id   TEXT NOT NULL,
    bucket      TEXT NOT NULL,
    prefix      TEXT NOT NULL,          -- [<trail prefix>/]AWSLogs/[<org-id>/]<account>/CloudTrail/<region>/YYYY/MM/DD/
    account_id  TEXT NOT NULL,
    region      TEXT NOT NULL,
    day         DATE NOT NULL,
    last_key    TEXT COLLATE "C" NOT NULL,  -- the newest key read; "C" = S3's byte order
    recent      TEXT[] NOT NULL DEFAULT '{}',  -- keys read within the lookback before it (late objects)
    objects     BIGINT NOT NULL DEFAULT 0,  -- objects read under this prefix so far
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, bucket, prefix)
);
CREATE INDEX IF NOT EXISTS s3_poll_positions_account ON s3_poll_positions (tenant_id, account_id, day);
