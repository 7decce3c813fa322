"""Replay from the Kafka log (streams/replay/kafka.py) against the tansu broker.

The live side is the Kafka runner's core (KafkaFolder) fed by a plain consumer - the same fold the faust worker
runs, without a 30 s group join per test. A consumer group has committed offsets at the end of every partition
(as faust workers do); the replay must not care. Expected projections come from the Postgres log folded by the
PostgresRunner with the same policy (compared per tenant, without positions: see workers.COMPARED).
"""

from __future__ import annotations

import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from projections.db import connect
from projections.generation.writer import StaleState
from schemas.events import LogEntry
from streams.log.kafka import KafkaSpec, connect_admin, ensure_topic
from streams.prices.table import load_default_prices
from streams.replay.replay import ReplayOptions, replay
from streams.runner.kafka import KafkaFolder, Message, Rewind, runner_name
from tests.conftest import _create_database, _drop_database
from tests.integration.kafka.test_kafka_worker import corpus, reference
from tests.integration.kafka.workers import produce, projections_of
from tests.integration.test_replay import strict

pytestmark = pytest.mark.integration

PARTITIONS = 8  # more than the corpus has accounts: some partitions stay empty (low == high), done at once


async def new_topic(bootstrap: str) -> KafkaSpec:
    spec = KafkaSpec(bootstrap=bootstrap, topic=f"dd0c-replay-{uuid.uuid4().hex[:8]}", partitions=PARTITIONS,
                     idempotent=False)
    admin = await connect_admin(spec)
    try:
        await ensure_topic(admin, spec)
    finally:
        await admin.close()
    return spec


class Watermarks:
    def __init__(self) -> None:
        self.consumer: AIOKafkaConsumer | None = None

    async def __call__(self, topic: str, partition: int) -> tuple[int, int]:
        assert self.consumer is not None
        tp = TopicPartition(topic, partition)
        return (await self.consumer.beginning_offsets([tp]))[tp], (await self.consumer.end_offsets([tp]))[tp]


async def fold_live(url: str, spec: KafkaSpec, last: dict[int, int], folder: KafkaFolder | None = None,
                    watermarks: Watermarks | None = None) -> tuple[KafkaFolder, Watermarks]:
    """Fold every partition up to `last` with a KafkaFolder (a live worker: pass the same one again to keep its
    in-memory state across calls), then commit the consumer group's offsets at the end."""
    consumer = AIOKafkaConsumer(bootstrap_servers=spec.bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    watermarks = watermarks or Watermarks()
    watermarks.consumer = consumer
    folder = folder or KafkaFolder(url, load_default_prices(), watermarks=watermarks)
    stale = 0
    try:
        tps = [TopicPartition(spec.topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        for (_t, p), plan in (await folder.assign([(spec.topic, p) for p in range(PARTITIONS)])).items():
            consumer.seek(tps[p], plan.seek_to)
        for _ in range(10_000):  # until every partition's position reaches what was produced (not a time)
            if all((folder._positions.get((spec.topic, p)) or -1) >= last.get(p, -1) for p in range(PARTITIONS)):
                break
            for tp, records in (await consumer.getmany(timeout_ms=200)).items():
                messages = [Message(r.topic, r.partition, r.offset, r.key, r.value) for r in records]
                try:
                    result = await folder.fold(messages)
                except StaleState:  # a replay swapped the tables: reload and fold this batch again
                    stale += 1
                    result = await folder.fold(messages)
                if isinstance(result, Rewind):
                    consumer.seek(tp, result.offset)
    finally:
        await consumer.stop()
    folder.stale = stale  # type: ignore[attr-defined]
    group = AIOKafkaConsumer(bootstrap_servers=spec.bootstrap, group_id="dd0c-fold", enable_auto_commit=False)
    await group.start()
    try:  # what faust would have committed: the end of every partition (the replay must ignore it)
        group.assign([TopicPartition(spec.topic, p) for p in last])
        await group.commit({TopicPartition(spec.topic, p): OffsetAndMetadata(o + 1, "") for p, o in last.items()})
    finally:
        await group.stop()
    return folder, watermarks


async def postgres_fold(entries: list[LogEntry], policy: dict[str, Any], tenant: str) -> dict[str, list[tuple]]:
    """The reference: the same entries through the Postgres log, the policy stored for the tenant."""
    url = await _create_database()
    try:
        conn = await connect(url)
        try:
            await conn.execute("INSERT INTO tenants (tenant_id, name, policy) VALUES ($1, $1, $2)", tenant, policy)
        finally:
            await conn.close()
        ref = await reference(url, entries)
        try:
            return await projections_of(ref, tenant)
        finally:
            await ref.close()
    finally:
        await _drop_database(url)


async def test_kafka_replay_with_a_stricter_policy_equals_the_postgres_fold(kafka_bootstrap: str,
                                                                           tmp_path: Path) -> None:
    url = await _create_database()
    spec = await new_topic(kafka_bootstrap)
    tenant = "default"
    entries = corpus(tenant, sets=2, per_set=80)
    conn = await asyncpg.connect(url)
    try:
        last = await produce(kafka_bootstrap, spec.topic, entries)
        assert len(last) < PARTITIONS  # empty partitions exist
        folder, watermarks = await fold_live(url, spec, last)
        positions = dict(await conn.fetch("SELECT runner, position FROM checkpoints"))
        assert positions == {runner_name(spec.topic, p): o for p, o in last.items()}
        gate = await conn.fetchval("SELECT count(*) FROM kafka_folded")
        assert gate == len(entries)

        policy = strict(tmp_path)
        result = await replay(url, load_default_prices(), ReplayOptions(policy=policy, kafka=spec))
        assert (result.mode, result.generation, result.position) == ("full", 1, len(entries))
        assert "kafka_folded" in result.tables
        assert dict(await conn.fetch("SELECT runner, position FROM checkpoints")) == positions  # unchanged
        assert await conn.fetchval("SELECT count(*) FROM kafka_folded") == gate

        expected = await postgres_fold(entries, policy, tenant)
        got = await projections_of(conn, tenant)
        assert len(expected["anomalies"]) > 0 and len(expected["cost_events"]) > 50  # a meaningful corpus
        assert set(Counter(r[3] for r in got["anomalies"])) <= {"medium", "high", "critical"}  # record_floor
        for table in expected:
            assert got[table] == expected[table], table

        # the live side continues after the swap: it reloads (StaleState), folds what comes next with the new policy
        more = corpus(tenant, sets=3, per_set=80)[len(entries):]
        later = await produce(kafka_bootstrap, spec.topic, more)
        await fold_live(url, spec, later, folder, watermarks)  # the same live folder, state from before the swap
        assert folder.stale == 1  # type: ignore[attr-defined]  # its first commit after the swap hit StaleState
        await folder.close()
        expected = await postgres_fold(entries + more, policy, tenant)
        got = await projections_of(conn, tenant)
        for table in expected:
            assert got[table] == expected[table], table
    finally:
        await conn.close()
        await _drop_database(url)
