-- Indexes for the read side (API and CLI), so every list is an index walk that stops after one page.
--
-- Anomalies filtered by minimum severity and/or account: the query runs one branch per severity rank, each an
-- ordered range of one of these indexes, and Postgres merges them (Merge Append) in (event_time DESC, id) order.
CREATE INDEX IF NOT EXISTS anomalies_tenant_rank_time
    ON anomalies (tenant_id, severity_rank, event_time DESC, id);
CREATE INDEX IF NOT EXISTS anomalies_tenant_account_rank_time
    ON anomalies (tenant_id, account_id, severity_rank, event_time DESC, id);

-- Cost events of one account, newest first; also lets /v1/accounts skip-scan distinct accounts.
CREATE INDEX IF NOT EXISTS cost_events_tenant_account_time
    ON cost_events (tenant_id, account_id, event_time DESC, id);

-- Rare filters stay cheap too: one resource type, or only the late-ingested history (backfill is the exception,
-- so its partial index is small; the query writes `backfill = true` as a literal so that the planner can use it).
CREATE INDEX IF NOT EXISTS anomalies_tenant_type_time
    ON anomalies (tenant_id, resource_type, event_time DESC, id);
CREATE INDEX IF NOT EXISTS anomalies_backfill_time
    ON anomalies (tenant_id, event_time DESC, id) WHERE backfill;
