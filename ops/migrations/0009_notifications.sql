-- Notifications (streams/notify). None of these tables is a projection: they record what was said to people,
-- which a replay must never repeat, so replay leaves them alone.

-- Where a tenant's alerts go. The webhook URL is a secret (anyone holding it can post to the channel): the API
-- reports only whether one is set.
CREATE TABLE IF NOT EXISTS notify_channels (
    tenant_id         TEXT PRIMARY KEY,
    slack_webhook_url TEXT,
    email_to          TEXT[] NOT NULL DEFAULT '{}',
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The notifier's position per tenant: the last anomaly feed_id whose outcome is recorded for good. Advanced in
-- the same transaction as that delivery record. `generation` is the projection generation (0004) the feed_id
-- refers to: a replay rebuilds the anomalies with new, higher feed ids, so when a swap covered the tenant both
-- cursors jump to the rebuilt table's end and the history is not sent again (streams/notify/store.py `follow`).
CREATE TABLE IF NOT EXISTS notify_cursors (
    tenant_id  TEXT PRIMARY KEY,
    feed_id    BIGINT NOT NULL,
    generation BIGINT NOT NULL DEFAULT 0,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- One row per (anomaly, channel) - the key that stops a restarted notifier from sending twice - plus one row per
-- storm message and digest (anomaly_id NULL). status: sent | failed | suppressed (the reason says why, e.g.
-- below the floor, panic, quiet hours or an open breaker - every anomaly is in the next digest regardless) |
-- held (Redis down: decided again later, never sent unchecked).
CREATE TABLE IF NOT EXISTS notify_deliveries (
    id          BIGSERIAL PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    anomaly_id  UUID,
    feed_id     BIGINT,
    channel     TEXT NOT NULL,
    kind        TEXT NOT NULL,                -- alert | storm | digest | replay (cursors moved past a rebuild)
    status      TEXT NOT NULL,
    reason      TEXT NOT NULL DEFAULT '',
    attempts    INTEGER NOT NULL DEFAULT 0,
    severity    TEXT,
    detail      JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (status IN ('sent', 'failed', 'suppressed', 'held'))
);
CREATE UNIQUE INDEX IF NOT EXISTS notify_deliveries_once
    ON notify_deliveries (anomaly_id, channel) WHERE anomaly_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS notify_deliveries_tenant_time ON notify_deliveries (tenant_id, created_at DESC, id);

-- The digest's position per tenant: anomalies after feed_id are "new since the last digest".
CREATE TABLE IF NOT EXISTS notify_digests (
    tenant_id    TEXT PRIMARY KEY,
    feed_id      BIGINT NOT NULL DEFAULT 0,
    generation   BIGINT NOT NULL DEFAULT 0,  -- the projection generation feed_id refers to (see notify_cursors)
    last_sent_at TIMESTAMPTZ,          -- the last digest delivered ("new since" starts here)
    last_run_at  TIMESTAMPTZ           -- the last daily run, delivered or not (a failed one waits for tomorrow)
);

-- Who switched panic mode on or off, when and why. tenant_id NULL = global.
CREATE TABLE IF NOT EXISTS panic_audit (
    id         BIGSERIAL PRIMARY KEY,
    tenant_id  TEXT,
    action     TEXT NOT NULL CHECK (action IN ('on', 'off')),
    actor      TEXT NOT NULL,
    reason     TEXT NOT NULL,
    at         TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS panic_audit_time ON panic_audit (at DESC, id);
