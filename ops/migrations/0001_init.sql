-- dd0c/cost schema v1. The log is the truth; every other table is a projection that replay can rebuild.

CREATE TABLE IF NOT EXISTS tenants (
    tenant_id   TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    policy      JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS users (
    tenant_id     TEXT NOT NULL REFERENCES tenants(tenant_id),
    username      TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL DEFAULT 'admin',
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, username)
);

-- The append-only log. seq is the position; appends are serialised by an advisory lock so that seq order
-- is commit order and a reader that resumes after seq N can never miss a row committed later with a lower seq.
CREATE TABLE IF NOT EXISTS log (
    seq          BIGSERIAL PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    account_id   TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    event_time   TIMESTAMPTZ NOT NULL,
    ingested_at  TIMESTAMPTZ NOT NULL,
    kind         TEXT NOT NULL,
    event_source TEXT NOT NULL,
    event_name   TEXT NOT NULL,
    region       TEXT NOT NULL,
    read_only    BOOLEAN NOT NULL,
    source       TEXT NOT NULL DEFAULT '',
    version      INTEGER NOT NULL DEFAULT 1,
    record       JSONB NOT NULL,
    UNIQUE (tenant_id, account_id, event_id)
);

-- Read-only events are counted, not stored (unless DD0C_KEEP_READ_ONLY=true).
CREATE TABLE IF NOT EXISTS log_read_only_counts (
    tenant_id  TEXT NOT NULL,
    account_id TEXT NOT NULL,
    day        DATE NOT NULL,
    events     BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, account_id, day)
);

-- Files already ingested, by content hash: a re-delivered file neither re-counts read-only events nor costs a re-parse.
CREATE TABLE IF NOT EXISTS ingested_files (
    tenant_id   TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    source      TEXT NOT NULL,
    report      JSONB NOT NULL,
    ingested_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, sha256)
);

CREATE TABLE IF NOT EXISTS dead_letters (
    id          BIGSERIAL PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    stage       TEXT NOT NULL,        -- read | normalize | ...
    source      TEXT NOT NULL,
    locator     TEXT NOT NULL DEFAULT '',
    reason      TEXT NOT NULL,
    raw         BYTEA NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Projection positions: written in the same transaction as the rows they cover.
CREATE TABLE IF NOT EXISTS checkpoints (
    runner     TEXT PRIMARY KEY,
    position   BIGINT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Seed columns kept (id, tenant_id, account_id, data, severity, created_at); the rest make queries cheap.
CREATE TABLE IF NOT EXISTS cost_events (
    id            UUID PRIMARY KEY,
    tenant_id     TEXT NOT NULL,
    account_id    TEXT NOT NULL,
    data          JSONB NOT NULL,
    severity      TEXT,
    created_at    TIMESTAMPTZ DEFAULT NOW(),
    event_id      TEXT NOT NULL,
    ordinal       INTEGER NOT NULL,
    seq           BIGINT NOT NULL,
    event_time    TIMESTAMPTZ NOT NULL,
    resource_type TEXT NOT NULL,
    region        TEXT NOT NULL,
    hourly_cost   DOUBLE PRECISION,
    priced        BOOLEAN NOT NULL,
    UNIQUE (tenant_id, account_id, event_id, ordinal)
);
CREATE INDEX IF NOT EXISTS cost_events_tenant_time ON cost_events (tenant_id, event_time DESC, id);
CREATE INDEX IF NOT EXISTS cost_events_data ON cost_events USING GIN (data jsonb_path_ops);

CREATE TABLE IF NOT EXISTS baselines (
    tenant_id        TEXT NOT NULL,
    account_id       TEXT NOT NULL,
    resource_type    TEXT NOT NULL,
    mean_hourly_cost NUMERIC(12,4),
    stddev           NUMERIC(12,4),
    event_count      INTEGER DEFAULT 0,
    observed_actors  JSONB DEFAULT '[]',
    state            JSONB NOT NULL DEFAULT '{}'::jsonb,  -- exact Welford (n, mean, m2) + seen sets
    seq              BIGINT NOT NULL DEFAULT 0,
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, account_id, resource_type)
);

CREATE TABLE IF NOT EXISTS anomalies (
    id            UUID PRIMARY KEY,
    feed_id       BIGSERIAL UNIQUE,     -- websocket resume position
    tenant_id     TEXT NOT NULL,
    account_id    TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    severity      TEXT NOT NULL,
    severity_rank SMALLINT NOT NULL,
    event_time    TIMESTAMPTZ NOT NULL,
    detected_at   TIMESTAMPTZ NOT NULL,
    hourly_cost   DOUBLE PRECISION,
    backfill      BOOLEAN NOT NULL DEFAULT false,
    seq           BIGINT NOT NULL,
    data          JSONB NOT NULL
);
CREATE INDEX IF NOT EXISTS anomalies_tenant_time ON anomalies (tenant_id, event_time DESC, id);
CREATE INDEX IF NOT EXISTS anomalies_tenant_feed ON anomalies (tenant_id, feed_id);
CREATE INDEX IF NOT EXISTS anomalies_data ON anomalies USING GIN (data jsonb_path_ops);

-- What is running now, and what it costs per hour. Closed rows stay (state != 'running') for history.
CREATE TABLE IF NOT EXISTS resources (
    tenant_id     TEXT NOT NULL,
    account_id    TEXT NOT NULL,
    resource_id   TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    region        TEXT NOT NULL,
    state         TEXT NOT NULL,        -- running | stopped | closed
    hourly_cost   DOUBLE PRECISION,
    opened_at     TIMESTAMPTZ NOT NULL,
    changed_at    TIMESTAMPTZ NOT NULL,
    seq           BIGINT NOT NULL,
    data          JSONB NOT NULL,
    PRIMARY KEY (tenant_id, account_id, resource_id)
);
CREATE INDEX IF NOT EXISTS resources_running ON resources (tenant_id, state, account_id);
CREATE INDEX IF NOT EXISTS resources_data ON resources USING GIN (data jsonb_path_ops);

-- Counters the folds keep (failed create attempts by errorCode, unpriced events, ...), per tenant and day.
CREATE TABLE IF NOT EXISTS fold_metrics (
    tenant_id TEXT NOT NULL,
    metric    TEXT NOT NULL,
    label     TEXT NOT NULL DEFAULT '',
    value     BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, metric, label)
);
