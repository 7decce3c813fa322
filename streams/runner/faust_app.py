"""The faust-streaming worker for the Kafka log: consume the raw topic, hand each partition's batch to KafkaFolder.

Wiring only (the folds, the gate, positions and fences are in streams/runner/kafka.py):

    raw topic --take_events(batch, within)--> group by partition --> KafkaFolder.fold --> Folded | Rewind(seek)

faust runs the consumer group (partition assignment, rebalances, heartbeats). Its own committed group offsets
are a hint only: on assignment each partition is sought to the position stored in Postgres, and KafkaFolder
refuses (Rewind) any batch that does not continue from there, so whatever faust seeks to, no offset is skipped
and none is folded twice. faust acks a batch's events only after the next batch is requested - that is, after
KafkaFolder committed them - so the group offset it commits trails the Postgres position.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from faust.types import TP as FaustTP

from ops.settings import Settings
from streams.log.kafka import KafkaSpec, connect_admin, ensure_topic
from streams.prices.table import PriceTable
from streams.runner.faust_transport import Transport
from streams.runner.kafka import Folded, KafkaFolder, Message, Rewind

log = logging.getLogger("dd0c.runner.faust")

APP_ID = "dd0c-fold-v1"  # the consumer group: every worker of one deployment shares it
BATCH_WITHIN = 0.2  # seconds take_events waits to fill a batch: freshness stays well under a second
RETRY_MAX = 30.0  # seconds: the back-off of a failing batch stops doubling here
SESSION_TIMEOUT = 10.0  # seconds without a heartbeat before the group gives a dead worker's partitions away
RESEEK_AFTER = 1.0  # seconds: a Rewind is re-issued at most this often while stale buffered messages drain


def faust_broker(bootstrap: str) -> str:
    """"h1:9092,h2:9092" -> faust's "kafka://h1:9092;h2:9092"."""
    return ";".join(f"kafka://{host}" for host in bootstrap.split(","))


def retention_warnings(config: dict[str, str], topic: str) -> list[str]:
    """What in the raw topic's config can delete log entries (the log is the truth; replay needs all of it)."""
    warnings = []
    policy = config.get("cleanup.policy", "")
    if "compact" in policy:
        warnings.append(f"topic {topic} has cleanup.policy={policy}: compaction keeps one message per key, i.e. "
                        "one entry per account; use cleanup.policy=delete with retention.ms=-1")
    retention_ms = config.get("retention.ms")
    retention_bytes = config.get("retention.bytes")
    limits = (("retention.ms", retention_ms), ("retention.bytes", retention_bytes))
    finite = [f"{name}={value}" for name, value in limits
              if value is not None and value.lstrip("-").isdigit() and int(value) >= 0]
    if finite and "delete" in (policy or "delete"):
        warnings.append(f"topic {topic} deletes data ({', '.join(finite)}, cleanup.policy={policy or 'delete'}): "
                        "entries not folded in time are lost (recorded as gaps), and replay cannot rebuild from the "
                        "start; set retention.ms=-1 and retention.bytes=-1")
    return warnings


async def check_topic(spec: KafkaSpec) -> None:
    """Before the worker joins: broker reachable (bounded retries, KafkaLogError naming the bootstrap), the topic
    exists with the configured partitions and retention (created if missing), and a warning if it deletes data."""
    admin = await connect_admin(spec)
    try:
        await ensure_topic(admin, spec)
        responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, spec.topic)])
        config: dict[str, str] = {}
        for response in responses:
            for resource in response.resources:
                for entry in resource[4]:
                    if entry[1] is not None:
                        config[str(entry[0])] = str(entry[1])
        for warning in retention_warnings(config, spec.topic):
            log.warning("%s", warning)
    finally:
        await admin.close()


class Watermarks:
    """Low/high watermarks of partitions from a group-less consumer (faust's own consumer is busy consuming)."""

    def __init__(self, bootstrap: str) -> None:
        self._bootstrap = bootstrap
        self._consumer: AIOKafkaConsumer | None = None

    async def __call__(self, topic: str, partition: int) -> tuple[int, int]:
        if self._consumer is None:
            consumer = AIOKafkaConsumer(bootstrap_servers=self._bootstrap, enable_auto_commit=False,
                                        client_id="dd0c-watermarks")
            await consumer.start()
            self._consumer = consumer
        tp = TopicPartition(topic, partition)
        low = (await self._consumer.beginning_offsets([tp]))[tp]
        high = (await self._consumer.end_offsets([tp]))[tp]
        return int(low), int(high)

    async def close(self) -> None:
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            await consumer.stop()


def build_app(spec: KafkaSpec, settings: Settings, folder: KafkaFolder, *, batch: int) -> faust.App:
    """The faust app: one agent on the raw topic, the assignment hooks, nothing else (no tables, no web)."""
    app = faust.App(
        APP_ID,
        broker=faust_broker(spec.bootstrap),
        store="memory://",
        web_enabled=False,
        topic_disable_leader=True,  # no leader topic: one topic less to create on the broker
        topic_allow_declare=False,  # the raw topic is made by check_topic, with our partitions and retention
        consumer_auto_offset_reset="earliest",
        # A worker killed with -9 sends no LeaveGroup: its partitions move once the session times out.
        broker_session_timeout=SESSION_TIMEOUT,
        broker_heartbeat_interval=1.0,
        stream_wait_empty=False,
        producer_acks=-1,
    )
    app.transport = Transport(app.conf.broker_consumer, app)  # a 100 ms fetch wait (see faust_transport.py)
    topic = app.topic(spec.topic, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
    reseeked: dict[tuple[str, int], tuple[int, float]] = {}

    async def seek(topic_name: str, partition: int, offset: int, reason: str) -> None:
        now = asyncio.get_running_loop().time()
        last = reseeked.get((topic_name, partition))
        if last is not None and last[0] == offset and now - last[1] < RESEEK_AFTER:
            return  # already sought there; these are stale buffered messages draining
        reseeked[(topic_name, partition)] = (offset, now)
        log.info("partition %s:%d: seeking to %d (%s)", topic_name, partition, offset, reason)
        try:
            # seek_wait runs the seek on faust's consumer thread: a plain seek from here races its fetcher
            # (aiokafka's fetched_records then fails with a KeyError and faust's Fetcher crashes)
            await app.consumer.seek_wait({FaustTP(topic_name, partition): offset})
        except Exception as exc:  # e.g. the partition was revoked meanwhile; a later batch re-asks if needed
            reseeked.pop((topic_name, partition), None)
            log.warning("partition %s:%d: seek to %d failed (%r)", topic_name, partition, offset, exc)

    async def fold_with_retries(messages: Sequence[Message]) -> None:
        delay = 0.5
        while True:
            try:
                result = await folder.fold(messages)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("batch of partition %s:%d at offsets %d-%d failed; retrying in %.1fs",
                              messages[0].topic, messages[0].partition, messages[0].offset, messages[-1].offset, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)
                continue
            if isinstance(result, Rewind):
                await seek(messages[0].topic, messages[0].partition, result.offset, result.reason)
            elif isinstance(result, Folded):
                if result.resume_at is not None:  # what lay past a hole in the batch is read again
                    await seek(messages[0].topic, messages[0].partition, result.resume_at, "hole in a batch")
                elif result.entries + result.rejected:
                    log.debug("partition %s:%d folded up to %d", messages[0].topic, messages[0].partition,
                              result.position)
            return

    @app.agent(topic)
    async def fold(stream: faust.StreamT[bytes]) -> None:
        async for events in stream.take_events(batch, within=BATCH_WITHIN):
            by_partition: dict[tuple[str, int], list[Message]] = {}
            for event in events:
                m = event.message
                by_partition.setdefault((m.topic, m.partition), []).append(
                    Message(m.topic, m.partition, m.offset, m.key, m.value)
                )
            for messages in by_partition.values():
                messages.sort(key=lambda msg: msg.offset)
                await fold_with_retries(messages)

    @app.on_partitions_revoked.connect
    async def on_revoked(sender: Any, revoked: set[FaustTP], **_: Any) -> None:
        await folder.revoke({(tp.topic, tp.partition) for tp in revoked if tp.topic == spec.topic})

    @app.on_partitions_assigned.connect
    async def on_assigned(sender: Any, assigned: set[FaustTP], **_: Any) -> None:
        ours = {(tp.topic, tp.partition) for tp in assigned if tp.topic == spec.topic}
        plans = await folder.assign(ours, only=True)  # a partition not reassigned to us is someone else's now
        for (topic_name, partition), plan in plans.items():
            await seek(topic_name, partition, plan.seek_to, "position stored in Postgres")

    return app


async def prepare(settings: Settings, dsn: str, prices: PriceTable) -> tuple[KafkaSpec, KafkaFolder, Watermarks]:
    """Everything that can fail clearly before the worker joins the group: broker, topic, policy, database."""
    spec = KafkaSpec.from_settings(settings)
    await check_topic(spec)
    watermarks = Watermarks(spec.bootstrap)
    folder = KafkaFolder(dsn, prices, watermarks=watermarks)
    folder.default_policy()
    conn = await folder._connection()  # the database answers and is migrated (kafka_folded exists)
    await conn.fetchval("SELECT count(*) FROM kafka_folded WHERE false")
    return spec, folder, watermarks


def run_worker(settings: Settings, dsn: str, prices: PriceTable, *, batch: int, loglevel: str = "info") -> int:
    """`dd0c-cost worker` on the Kafka log: blocks until SIGTERM/SIGINT (faust's worker handles both)."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        spec, folder, watermarks = loop.run_until_complete(prepare(settings, dsn, prices))
    except BaseException:
        loop.close()
        raise
    app = build_app(spec, settings, folder, batch=batch)
    worker = faust.Worker(app, loop=loop, loglevel=loglevel, quiet=True, override_logging=False)
    try:
        worker.execute_from_commandline()
    except SystemExit as exit_:
        return int(exit_.code or 0)
    finally:
        if not loop.is_closed() and not loop.is_running():
            loop.run_until_complete(asyncio.gather(watermarks.close(), folder.close(), return_exceptions=True))
    return 0
