"""The agent's server on the Kafka log (`DD0C_LOG_URL=kafka://...`) against the session's real broker (tansu): a
batch is acknowledged once the broker has its records, read-only events are counted in Postgres as on the Postgres
log, and an agent run again over the same files sends nothing twice."""

from __future__ import annotations

import uuid
from pathlib import Path

import asyncpg
import pytest

from ops.devpki import Pki
from ops.settings import Settings
from projections.db import create_pool
from schemas.events import LogEntry
from streams.ingest_grpc.server import IngestServer
from streams.log.kafka import decode_message
from tests.integration.agent.support import Proc, agent_argv, agent_env, write_corpus
from tests.integration.kafka.test_kafka_log import read_topic
from tests.kafka_broker import kafka_bootstrap  # noqa: F401  (the session's broker, a fixture)

pytestmark = pytest.mark.integration
PARTITIONS = 4


async def test_agent_batches_land_on_the_kafka_topic_once(database_url: str, token: str, pki: Pki, tmp_path: Path,
                                                          kafka_bootstrap: str) -> None:  # noqa: F811
    trail = tmp_path / "trail"
    write_corpus(trail, 4, 25, reads_every=5)  # 100 records: 80 written to the topic, 20 read-only counted
    topic = f"dd0c-agent-{uuid.uuid4().hex[:10]}"
    settings = Settings(database_url=database_url, grpc_host="127.0.0.1", grpc_port=0,
                        grpc_tls_cert=pki.server_cert, grpc_tls_key=pki.server_key,
                        log_url=f"kafka://{kafka_bootstrap}", kafka_topic=topic, kafka_partitions=PARTITIONS,
                        kafka_idempotent=False)  # tansu grants no producer ids
    pool = await create_pool(database_url)
    server = IngestServer(pool, settings)
    port = await server.start()
    try:
        env = agent_env(token, port, tmp_path / "spool", pki)
        for run in (1, 2):  # the second run finds every file complete in its spool
            agent = Proc(agent_argv("--once", "--dir", str(trail)), env, tmp_path / f"agent-{run}.log")
            assert await agent.exited() == 0, agent.output[-3000:]
    finally:
        await server.stop()
        await pool.close()
    assert (server.counters.logged, server.counters.read_only_counted, server.counters.resent) == (80, 20, 0)

    messages = await read_topic(kafka_bootstrap, topic, PARTITIONS)
    decoded = [decode_message(m.topic, m.partition, m.offset, m.value) for m in messages]
    entries = [d for d in decoded if isinstance(d, LogEntry)]
    assert len(entries) == len(messages) == 80
    assert {e.event_id for e in entries} == {f"00000000-0000-4000-8000-{n:012d}" for n in range(1, 101) if n % 5}
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM log") == 0  # the Postgres log is not used
        assert await conn.fetchval("SELECT coalesce(sum(events), 0)::int FROM log_read_only_counts") == 20
    finally:
        await conn.close()
