"""The Kafka log backend, producer side, against a real broker (tansu): topic spec, append, envelope, faults."""

from __future__ import annotations

import logging
import math
import random
import time
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import NewTopic
from aiokafka.structs import ConsumerRecord
from hypothesis import given
from hypothesis import strategies as st

from ops.settings import Settings
from projections.db import create_pool
from projections.rows import decode_entry, encode_entry
from schemas.events import Dd0cError, LogEntry, LogKind, Rejected
from streams.log.kafka import (
    KafkaLog,
    KafkaLogError,
    KafkaSpec,
    TopicInfo,
    connect_admin,
    decode_message,
    ensure_topic,
    is_kafka_url,
)
from streams.log.postgres import AppendResult
from tests.kafka_broker import free_port

pytestmark = pytest.mark.integration

ACCOUNTS = ("111122223333", "444455556666", "777788889999")
T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
END = b"end-of-test-marker"
READ_DEADLINE = 30.0  # a guard against a hang, not a speed check: reading normally takes well under a second


def spec_for(bootstrap: str, **overrides: Any) -> KafkaSpec:
    # tansu grants no producer ids, so idempotence is off against it (see tests/kafka_broker.py)
    fields: dict[str, Any] = {"topic": f"dd0c-test-{uuid.uuid4().hex[:10]}", "partitions": 4, "idempotent": False}
    fields.update(overrides)
    return KafkaSpec(bootstrap=bootstrap, **fields)


def entry(n: int, account: str, *, read_only: bool = False, record: dict[str, Any] | None = None) -> LogEntry:
    event_id = f"00000000-0000-4000-8000-{n:012d}"
    at = T0 + timedelta(seconds=7 * n)
    return LogEntry(
        tenant="acme",
        event_id=event_id,
        account_id=account,
        event_time=at,
        ingested_at=at + timedelta(minutes=5),
        event_source="ec2.amazonaws.com",
        event_name="DescribeInstances" if read_only else "RunInstances",
        region="us-east-1",
        read_only=read_only,
        kind=LogKind.CLOUDTRAIL,
        record=record if record is not None else {"eventID": event_id, "recipientAccountId": account, "n": n},
        source="test",
    )


async def read_topic(bootstrap: str, topic: str, partitions: int) -> list[ConsumerRecord[bytes, bytes]]:
    """Every message on the topic, in partition order, without a consumer group.

    A marker is produced to each partition first; once every marker has been read, everything appended before it
    has been read too (a partition keeps its order) - so "nothing more" is a position, not a timeout.
    """
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for p in range(partitions):
            await producer.send_and_wait(topic, END, partition=p)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        messages: list[ConsumerRecord[bytes, bytes]] = []
        ended: set[int] = set()
        deadline = time.monotonic() + READ_DEADLINE
        while len(ended) < partitions:
            assert time.monotonic() < deadline, f"markers seen on {sorted(ended)} only"
            batches = await consumer.getmany(timeout_ms=500)
            for tp, batch in batches.items():
                for message in batch:
                    if message.value == END:
                        ended.add(tp.partition)
                    else:
                        messages.append(message)
        return messages
    finally:
        await consumer.stop()


# -- settings ---------------------------------------------------------------------------------------------------


def test_log_url_selects_kafka_and_fields_come_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DD0C_LOG_URL", "kafka://k1.internal:9092,k2.internal:9093/")
    monkeypatch.setenv("DD0C_KAFKA_PARTITIONS", "24")
    monkeypatch.setenv("DD0C_KAFKA_TOPIC", "acme.raw")
    spec = KafkaSpec.from_settings()
    assert spec == KafkaSpec(
        bootstrap="k1.internal:9092,k2.internal:9093",
        topic="acme.raw",
        partitions=24,
        replication_factor=1,
        retention_ms=-1,  # infinite unless configured: the log is the truth
        idempotent=True,
        connect_attempts=5,
        retry_backoff=0.5,
    )
    assert not is_kafka_url(None)
    assert not is_kafka_url("postgresql://postgres@127.0.0.1/dd0c")
    with pytest.raises(KafkaLogError, match="does not select the Kafka log"):
        KafkaSpec.from_settings(Settings(log_url=None))
    with pytest.raises(KafkaLogError, match="needs host:port"):
        KafkaSpec.from_settings(Settings(log_url="kafka://broker"))


# -- topic ------------------------------------------------------------------------------------------------------


async def test_topic_is_created_with_configured_partitions_and_infinite_retention(kafka_bootstrap: str) -> None:
    spec = spec_for(kafka_bootstrap, partitions=6)
    admin = await connect_admin(spec)
    try:
        assert await ensure_topic(admin, spec) == TopicInfo(created=True, partitions=6, retention_ms=-1)
        (described,) = await admin.describe_topics([spec.topic])
        assert sorted(p["partition"] for p in described["partitions"]) == [0, 1, 2, 3, 4, 5]
        # a second start finds it and leaves it alone
        assert await ensure_topic(admin, spec) == TopicInfo(created=False, partitions=6, retention_ms=-1)
    finally:
        await admin.close()


async def test_existing_topic_with_finite_retention_is_kept_but_warned_about(
    kafka_bootstrap: str, caplog: pytest.LogCaptureFixture
) -> None:
    spec = spec_for(kafka_bootstrap, partitions=2)
    admin = await connect_admin(spec)
    try:
        one_week = str(7 * 24 * 3600 * 1000)
        await admin.create_topics([NewTopic(spec.topic, 3, 1, topic_configs={"retention.ms": one_week})])
        with caplog.at_level(logging.WARNING, logger="dd0c.log.kafka"):
            info = await ensure_topic(admin, spec)
    finally:
        await admin.close()
    assert info == TopicInfo(created=False, partitions=3, retention_ms=604_800_000)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert f"topic {spec.topic} keeps data only 604800000 ms" in warnings[0]
    assert warnings[1] == f"topic {spec.topic} has 3 partitions, settings say 2"


# -- append -----------------------------------------------------------------------------------------------------


async def test_1000_entries_for_3_accounts_land_once_each_account_in_one_partition_in_order(
    kafka_bootstrap: str,
) -> None:
    rng = random.Random(3)
    entries = [entry(n, rng.choice(ACCOUNTS)) for n in range(1, 1001)]
    spec = spec_for(kafka_bootstrap, partitions=4)
    async with KafkaLog(spec, keep_read_only=False) as kafka_log:
        result = AppendResult()
        for start in range(0, 1000, 250):
            result += await kafka_log.append(entries[start : start + 250])
    assert result == AppendResult(logged=1000, duplicate=0, read_only_counted=0)

    messages = await read_topic(kafka_bootstrap, spec.topic, 4)
    assert len(messages) == 1000
    decoded = [decode_message(m.topic, m.partition, m.offset, m.value) for m in messages]
    assert all(isinstance(d, LogEntry) for d in decoded)
    assert sorted(d.event_id for d in decoded) == sorted(e.event_id for e in entries)  # type: ignore[union-attr]

    for account in ACCOUNTS:
        sent = [e for e in entries if e.account_id == account]
        landed = [(m, d) for m, d in zip(messages, decoded, strict=True) if d.account_id == account]  # type: ignore[union-attr]
        assert len({m.partition for m, _ in landed}) == 1, f"{account} spread over partitions"
        assert {m.key for m, _ in landed} == {f"acme/{account}".encode()}
        assert [d for _, d in landed] == sent  # whole entries, equal field by field, in append order
    per_account = {a: sum(1 for d in decoded if d.account_id == a) for a in ACCOUNTS}  # type: ignore[union-attr]
    assert per_account == {"111122223333": 328, "444455556666": 334, "777788889999": 338}
    for partition in {m.partition for m in messages}:  # offsets 0..n-1: nothing skipped, nothing extra
        offsets = [m.offset for m in messages if m.partition == partition]
        assert offsets == list(range(len(offsets)))


async def test_read_only_entries_are_counted_in_postgres_and_unstorable_ones_rejected(
    kafka_bootstrap: str, database_url: str
) -> None:
    account = ACCOUNTS[0]
    entries = [
        entry(1, account),
        entry(2, account, read_only=True),
        entry(3, account, read_only=True),
        entry(4, account, record={"eventID": "x", "cost": math.nan}),  # the Postgres log refuses it too
        entry(5, account, read_only=True),
        entry(6, account, record={"eventID": "y", "note": "nul \x00 inside"}),
        entry(7, account),
    ]
    spec = spec_for(kafka_bootstrap, partitions=1)
    pool = await create_pool(database_url)
    try:
        async with KafkaLog(spec, counts=pool, keep_read_only=False) as kafka_log:
            result = await kafka_log.append(entries)
        rows = await pool.fetch("SELECT tenant_id, account_id, day, events FROM log_read_only_counts")
    finally:
        await pool.close()
    assert (result.logged, result.duplicate, result.read_only_counted) == (2, 0, 3)
    assert [r.locator for r in result.rejected] == [entries[3].event_id, entries[5].event_id]
    assert "cannot be stored as JSON" in result.rejected[0].reason
    assert "NUL character" in result.rejected[1].reason
    assert [tuple(r) for r in rows] == [("acme", account, date(2024, 5, 1), 3)]
    messages = await read_topic(kafka_bootstrap, spec.topic, 1)
    assert [decode_entry(m.value).event_id for m in messages] == [entries[0].event_id, entries[6].event_id]  # type: ignore[union-attr]


async def test_keep_read_only_produces_them_and_counts_nothing(kafka_bootstrap: str) -> None:
    spec = spec_for(kafka_bootstrap, partitions=1)
    async with KafkaLog(spec, keep_read_only=True) as kafka_log:
        result = await kafka_log.append([entry(1, ACCOUNTS[1], read_only=True), entry(2, ACCOUNTS[1])])
    assert result == AppendResult(logged=2, duplicate=0, read_only_counted=0)
    messages = await read_topic(kafka_bootstrap, spec.topic, 1)
    assert [decode_entry(m.value).read_only for m in messages] == [True, False]  # type: ignore[union-attr]


# -- the envelope -----------------------------------------------------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
_aware = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-7))]),
)


@given(
    tenant=st.text(min_size=1, max_size=20),
    account=st.from_regex(r"\A[0-9]{12}\Z"),
    event_time=_aware,
    read_only=st.booleans(),
    kind=st.sampled_from(list(LogKind)),
    record=st.dictionaries(st.text(max_size=12), _json, max_size=6),
)
def test_envelope_round_trips(
    tenant: str, account: str, event_time: datetime, read_only: bool, kind: LogKind, record: dict[str, Any]
) -> None:
    e = LogEntry(
        tenant=tenant, event_id="ev-1", account_id=account, event_time=event_time, ingested_at=event_time,
        event_source="ec2.amazonaws.com", event_name="RunInstances", region="eu-west-1", read_only=read_only,
        kind=kind, record=record, source="s3://trail/key.json.gz",
    )
    assert decode_entry(encode_entry(e)) == e


async def test_poison_message_decodes_to_rejected_naming_topic_partition_offset(kafka_bootstrap: str) -> None:
    spec = spec_for(kafka_bootstrap, partitions=2)
    good = entry(1, ACCOUNTS[0])
    admin = await connect_admin(spec)
    try:
        await ensure_topic(admin, spec)
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(spec.topic, encode_entry(good), partition=1)
        await producer.send_and_wait(spec.topic, b'{"tenant": "acme", "record": ', partition=1)  # cut short
        await producer.send_and_wait(spec.topic, b'{"tenant": "acme", "record": []}', partition=1)
    finally:
        await producer.stop()
    messages = await read_topic(kafka_bootstrap, spec.topic, 2)
    decoded = [decode_message(m.topic, m.partition, m.offset, m.value) for m in messages]
    assert decoded[0] == good
    first, second = decoded[1], decoded[2]
    assert isinstance(first, Rejected) and isinstance(second, Rejected)
    assert first.describe().startswith(f"kafka:{spec.topic}#partition=1 offset=1: undecodable log entry: ")
    assert first.raw == b'{"tenant": "acme", "record": '
    assert second.describe() == (
        f"kafka:{spec.topic}#partition=1 offset=2: undecodable log entry: envelope field 'record' is missing"
        " or not an object"
    )
    assert decode_message(spec.topic, 0, 9, None).reason == "undecodable log entry: empty message (no value)"  # type: ignore[union-attr]


# -- faults -----------------------------------------------------------------------------------------------------


async def test_broker_down_at_start_gives_a_clear_error_after_bounded_retries(
    caplog: pytest.LogCaptureFixture,
) -> None:
    down = f"127.0.0.1:{free_port()}"  # nothing listens there
    spec = KafkaSpec(bootstrap=down, topic="never", connect_attempts=3, retry_backoff=0.01)
    with caplog.at_level(logging.WARNING, logger="dd0c.log.kafka"), pytest.raises(KafkaLogError) as raised:
        await KafkaLog(spec).start()
    assert isinstance(raised.value, Dd0cError)
    assert str(raised.value).startswith(f"Kafka at {down} unreachable: admin connect failed 3 times")
    retries = [r.getMessage() for r in caplog.records if r.name == "dd0c.log.kafka"]
    assert [m.split("(", 1)[1].split(")")[0] for m in retries] == [
        "admin connect, attempt 1 of 3",
        "admin connect, attempt 2 of 3",
    ]
    assert retries[1].endswith("retrying in 0.02s")  # the backoff doubled


async def test_append_before_start_is_a_bug() -> None:
    with pytest.raises(KafkaLogError, match="before start"):
        await KafkaLog(KafkaSpec(bootstrap="127.0.0.1:1"), keep_read_only=False).append([entry(1, ACCOUNTS[0])])
