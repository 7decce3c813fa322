"""A batch that mixes a stale read with the re-read after a seek, on the real broker and Postgres: repeated offsets
are folded once, and nothing past a hole is folded before the hole is filled (the runner asks for a re-read).

Found by the kill -9 test, which failed about one run in three: a restarted worker's batch held an offset twice
(a message faust had buffered from the group's committed offset before our seek, then its re-read). The dedupe
gate matches its winners by offset, so both copies passed and the entry was folded twice; the resources
projection then differed from a clean run. A hole in a batch is the same fault's other shape: folding across it
would store a position past offsets never folded.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from projections.rows import encode_entry
from streams.log.kafka import KafkaSpec, connect_admin, ensure_topic
from streams.log.postgres import storable_record
from streams.prices.table import load_default_prices
from streams.runner.faust_app import Watermarks
from streams.runner.kafka import Folded, KafkaFolder, runner_name
from tests.integration import ctgen
from tests.integration.kafka.test_kafka_r21 import read_from
from tests.integration.kafka.workers import produce

pytestmark = pytest.mark.integration


async def test_repeated_offsets_fold_once_and_a_hole_stops_the_batch(kafka_bootstrap: str, database_url: str) -> None:
    topic = f"dd0c-holes-{uuid.uuid4().hex[:8]}"
    spec = KafkaSpec(bootstrap=kafka_bootstrap, topic=topic, partitions=1, idempotent=False)
    admin = await connect_admin(spec)
    try:
        await ensure_topic(admin, spec)
    finally:
        await admin.close()
    t0 = datetime(2024, 6, 1, 8, tzinfo=UTC)
    entries = ctgen.entries([ctgen.run_instances(700 + n, at=t0 + timedelta(minutes=n)) for n in range(20)],
                            tenant="holes")
    messages = [(b"holes/111122223333", encode_entry(e, str(storable_record(e))), 0) for e in entries]
    assert await produce(kafka_bootstrap, topic, messages) == {0: 19}

    conn = await asyncpg.connect(database_url)
    watermarks = Watermarks(kafka_bootstrap)
    folder = KafkaFolder(database_url, load_default_prices(), watermarks=watermarks)
    try:
        await folder.assign([(topic, 0)])
        # offsets 0-7, then 3-6 again (the re-read), then 12-16: 8-11 are missing. One anomaly: the first launch
        # in the account is novel
        batch = [*await read_from(kafka_bootstrap, topic, 0, 0, 8), *await read_from(kafka_bootstrap, topic, 0, 3, 4),
                 *await read_from(kafka_bootstrap, topic, 0, 12, 5)]
        assert await folder.fold(batch) == Folded(position=7, entries=8, duplicates=0, rejected=0, anomalies=1,
                                                  skipped=4, resume_at=8)
        position = "SELECT position FROM checkpoints WHERE runner = $1"
        assert await conn.fetchval(position, runner_name(topic, 0)) == 7
        assert await conn.fetchval("SELECT count(*) FROM cost_events WHERE tenant_id = 'holes'") == 8

        rest = await read_from(kafka_bootstrap, topic, 0, 8, 12)  # what the seek to resume_at reads
        result = await folder.fold(rest)
        assert (result.position, result.entries, result.anomalies, result.resume_at) == (19, 12, 0, None)
        assert await conn.fetchval("SELECT count(*) FROM cost_events WHERE tenant_id = 'holes'") == 20
        assert await conn.fetchval("SELECT event_count FROM baselines WHERE tenant_id = 'holes'") == 20
        assert await conn.fetchval("SELECT count(*) FROM resources WHERE tenant_id = 'holes'") == 20
    finally:
        await folder.close()
        await watermarks.close()
        await conn.close()
