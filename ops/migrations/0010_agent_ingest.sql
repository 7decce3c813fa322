-- The gRPC agent's side of ingestion (streams/ingest_grpc): per-tenant agent tokens and the batches received.

-- Agent tokens, stored as SHA-256 of the token (the token is 256 random bits: a slow hash adds nothing).
-- token_id is a short public name for logs and `dd0c-cost agent-token list`; the token itself is shown once.
CREATE TABLE IF NOT EXISTS agent_tokens (
    token_id     TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants(tenant_id),
    token_sha256 TEXT NOT NULL UNIQUE,
    name         TEXT NOT NULL DEFAULT '',
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at   TIMESTAMPTZ
);

-- Batches appended to the log, claimed in the same transaction as their entries: a resent batch (same id, after
-- a disconnect or an agent restart) is acknowledged again without being appended twice - which matters for
-- read-only events, only counted per day (the log rows themselves are deduplicated on eventID anyway).
-- Rows older than DD0C_GRPC_BATCH_RETENTION_HOURS are pruned by the server.
CREATE TABLE IF NOT EXISTS agent_batches (
    tenant_id   TEXT NOT NULL,
    batch_id    TEXT NOT NULL,
    token_id    TEXT NOT NULL,
    result      JSONB NOT NULL DEFAULT '{}'::jsonb,
    received_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, batch_id)
);
CREATE INDEX IF NOT EXISTS agent_batches_received_at ON agent_batches (received_at);
