-- The Kafka runner's dedupe gate. Kafka cannot refuse a second copy of an entry (a re-sent file, a producer retry
-- without idempotence), and a baseline upsert adds to a Welford state, so a second copy folded would count twice.
-- The runner inserts each consumed entry's key here, in the transaction that writes the projection rows and its
-- (topic, partition) position, and folds only the entries this insert returned. The message that won is kept with
-- its topic/partition/offset so an operator can find it. It is a projection-side table: whatever drops the
-- projections to rebuild them from the topic must empty it too.
CREATE TABLE IF NOT EXISTS kafka_folded (
    tenant_id   TEXT NOT NULL,
    account_id  TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    topic       TEXT NOT NULL,
    partition   INTEGER NOT NULL,
    "offset"    BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, account_id, event_id)
);
