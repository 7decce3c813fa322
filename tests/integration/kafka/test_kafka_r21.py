"""Case R21 on the real broker: an empty partition is caught up at once; a partition whose stored position is below
the first offset still on the topic records the gap and continues from there - it never waits for offsets that
retention deleted.

tansu implements neither DeleteRecords nor retention, so its low watermark is always 0. Here a real partition is
filled with 851 messages, and the watermarks the runner sees report offsets 0-850 as deleted (exactly what a broker
answers once retention removed them); everything else - producing, seeking, fetching, Postgres - is real.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from projections.checkpoints import writer as checkpoints
from projections.rows import encode_entry
from streams.log.kafka import KafkaSpec, connect_admin, ensure_topic
from streams.log.postgres import storable_record
from streams.prices.table import load_default_prices
from streams.runner.faust_app import Watermarks
from streams.runner.kafka import Folded, KafkaFolder, Message, Rewind, StartPlan, runner_name
from tests.integration import ctgen
from tests.integration.kafka.workers import produce

pytestmark = pytest.mark.integration

DELETED_BELOW = 851  # R21 partition 3: retention removed everything up to offset 850


class AfterRetention:
    """The broker's watermarks, with partition 1's log start moved up as retention would have moved it."""

    def __init__(self, real: Watermarks) -> None:
        self.real = real

    async def __call__(self, topic: str, partition: int) -> tuple[int, int]:
        low, high = await self.real(topic, partition)
        return (max(low, DELETED_BELOW), high) if partition == 1 else (low, high)


async def read_from(bootstrap: str, topic: str, partition: int, offset: int, count: int) -> list[Message]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, offset)
        out: list[Message] = []
        while len(out) < count:
            for m in (await consumer.getmany(tp, timeout_ms=1000)).get(tp, []):
                out.append(Message(m.topic, m.partition, m.offset, m.key, m.value))
        return out[:count]
    finally:
        await consumer.stop()


async def test_r21_gap_is_recorded_and_skipped_and_an_empty_partition_is_caught_up(
    kafka_bootstrap: str, database_url: str
) -> None:
    topic = f"dd0c-r21-{uuid.uuid4().hex[:8]}"
    spec = KafkaSpec(bootstrap=kafka_bootstrap, topic=topic, partitions=2, idempotent=False)
    admin = await connect_admin(spec)
    try:
        await ensure_topic(admin, spec)
    finally:
        await admin.close()
    t0 = datetime(2024, 5, 31, 23, tzinfo=UTC)
    entries = ctgen.entries([ctgen.run_instances(900 + n, at=t0 + timedelta(minutes=n)) for n in range(9)],
                            tenant="acme")
    filler = [(b"acme/111122223333", b"aged out", 1)] * DELETED_BELOW
    real = [(b"acme/111122223333", encode_entry(e, str(storable_record(e))), 1) for e in entries]
    last = await produce(kafka_bootstrap, topic, [*filler, *real])
    assert last == {1: 859}

    conn = await asyncpg.connect(database_url)
    watermarks = Watermarks(kafka_bootstrap)
    folder = KafkaFolder(database_url, load_default_prices(), watermarks=AfterRetention(watermarks))
    try:
        await checkpoints.save(conn, runner_name(topic, 1), 819)  # folding was at offset 820 (R21)
        plans = await folder.assign([(topic, 0), (topic, 1)])
        assert plans[(topic, 0)] == StartPlan(seek_to=0, caught_up=True)  # empty: nothing to wait for
        assert plans[(topic, 1)] == StartPlan(seek_to=851, gap=(820, 850))
        (gap,) = await conn.fetch("SELECT tenant_id, stage, source, locator, reason FROM dead_letters")
        assert (gap["stage"], gap["source"]) == ("read", f"kafka:{topic}")
        assert gap["locator"] == "partition=1 offsets=820-850"
        assert gap["reason"].startswith("offsets 820-850 (31 messages) were deleted by retention")
        assert await conn.fetchval("SELECT position FROM checkpoints WHERE runner = $1", runner_name(topic, 1)) == 850

        # a batch from further ahead while offsets 851.. exist: not folded, the runner asks to seek back
        ahead = await read_from(kafka_bootstrap, topic, 1, 855, 5)
        assert await folder.fold(ahead) == Rewind(851, "batch starts at 855, position is 850")
        batch = await read_from(kafka_bootstrap, topic, 1, 851, 9)
        result = await folder.fold(batch)
        assert result == Folded(position=859, entries=9, duplicates=0, rejected=0, anomalies=result.anomalies)
        assert await conn.fetchval("SELECT count(*) FROM cost_events WHERE tenant_id = 'acme'") == 9
        assert await conn.fetchval("SELECT event_count FROM baselines WHERE tenant_id = 'acme'") == 9
        # folding the same batch again (a re-read after a rebalance) changes nothing
        assert await folder.fold(batch) == Folded(position=859, entries=0, duplicates=0, rejected=0, anomalies=0,
                                                  skipped=9)
        assert await conn.fetchval("SELECT event_count FROM baselines WHERE tenant_id = 'acme'") == 9
    finally:
        await folder.close()
        await watermarks.close()
        await conn.close()
