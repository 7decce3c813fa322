-- The zombie hunter's projections (folded from `zombie` log entries, rebuilt by replay) and per-tenant thresholds.

-- One row per zombie (a resource as seen by one check). `data` is the whole row (streams/zombies/fold.ZombieRow);
-- the columns are what the lists filter, sort and add up. Acknowledgements and snoozes are log entries too, so they
-- live here and come back with a replay.
CREATE TABLE IF NOT EXISTS zombies (
    tenant_id          TEXT NOT NULL,
    zombie_id          TEXT NOT NULL,
    account_id         TEXT NOT NULL,
    region             TEXT NOT NULL,
    resource_id        TEXT NOT NULL,
    resource_type      TEXT NOT NULL,
    check_name         TEXT NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('open', 'resolved')),
    monthly_waste_usd  DOUBLE PRECISION,
    evidence           JSONB NOT NULL,
    first_seen         TIMESTAMPTZ NOT NULL,
    last_seen          TIMESTAMPTZ NOT NULL,
    opened_at          TIMESTAMPTZ NOT NULL,
    resolved_at        TIMESTAMPTZ,
    acknowledged_at    TIMESTAMPTZ,
    snoozed_until      TIMESTAMPTZ,
    seq                BIGINT NOT NULL,
    data               JSONB NOT NULL,
    PRIMARY KEY (tenant_id, zombie_id)
);
CREATE INDEX IF NOT EXISTS zombies_tenant_account ON zombies (tenant_id, account_id, check_name, status);

-- One row per scan run (ZombieScanCompleted): ok / partial / failed, with every region error and its reason.
CREATE TABLE IF NOT EXISTS zombie_scans (
    tenant_id          TEXT NOT NULL,
    scan_id            TEXT NOT NULL,
    account_id         TEXT NOT NULL,
    status             TEXT NOT NULL,
    scanned_at         TIMESTAMPTZ NOT NULL,
    zombies_found      INTEGER NOT NULL DEFAULT 0,
    monthly_waste_usd  DOUBLE PRECISION,
    seq                BIGINT NOT NULL,
    data               JSONB NOT NULL,
    PRIMARY KEY (tenant_id, scan_id)
);
CREATE INDEX IF NOT EXISTS zombie_scans_recent ON zombie_scans (tenant_id, account_id, scanned_at DESC);

-- Per-tenant zombie thresholds (streams/zombies/pure.CheckThresholds keys); keys left out keep the defaults.
ALTER TABLE tenants ADD COLUMN IF NOT EXISTS zombie_thresholds JSONB NOT NULL DEFAULT '{}'::jsonb;
