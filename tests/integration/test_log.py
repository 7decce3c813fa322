"""The Postgres log: dedupe on (tenant, account, eventID), read-only counting, positions, dead letters, NOTIFY."""

from __future__ import annotations

import asyncio
import math
import uuid
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from projections.db import connect
from schemas.events import LogEntry, LogKind, Rejected
from streams.log.postgres import AppendResult, append, dead_letter, dead_letters, head, read_after
from streams.pipeline import LOG_CHANNEL

pytestmark = pytest.mark.integration

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
INGESTED = datetime(2024, 5, 1, 8, 5, tzinfo=UTC)


def entry(
    n: int,
    *,
    account: str = "111122223333",
    tenant: str = "default",
    read_only: bool = False,
    at: datetime | None = None,
    record: dict | None = None,
) -> LogEntry:
    event_id = f"00000000-0000-4000-8000-{n:012d}"
    return LogEntry(
        tenant=tenant,
        event_id=event_id,
        account_id=account,
        event_time=at or T0 + timedelta(minutes=n),
        ingested_at=INGESTED,
        event_source="ec2.amazonaws.com",
        event_name="DescribeInstances" if read_only else "RunInstances",
        region="us-east-1",
        read_only=read_only,
        kind=LogKind.CLOUDTRAIL,
        record=record if record is not None else {"eventID": event_id, "eventName": "RunInstances", "n": n},
        source="test",
    )


async def test_append_twice_logs_once(database_url: str) -> None:
    conn = await connect(database_url)
    try:
        entries = [entry(1), entry(2), entry(3)]
        assert await append(conn, entries) == AppendResult(logged=3, duplicate=0, read_only_counted=0)
        assert await append(conn, entries) == AppendResult(logged=0, duplicate=3, read_only_counted=0)
        # a duplicate inside one batch, and the same eventID in another account (a different event)
        result = await append(conn, [entry(4), entry(4), entry(1, account="444455556666")])
        assert result == AppendResult(logged=2, duplicate=1, read_only_counted=0)
        assert await conn.fetchval("SELECT count(*) FROM log") == 5
    finally:
        await conn.close()


async def test_seq_increases_and_read_after_returns_entries_in_order(database_url: str) -> None:
    conn = await connect(database_url)
    try:
        await append(conn, [entry(1), entry(2)])
        await append(conn, [entry(3), entry(2), entry(4)])  # the duplicate takes no position that is read
        got = await read_after(conn, 0, 100)
        assert [e.event_id[-1] for e in got] == ["1", "2", "3", "4"]
        seqs = [e.seq for e in got]
        assert all(s is not None for s in seqs)
        assert seqs == sorted(seqs) and len(set(seqs)) == 4
        first = got[0]
        assert first.record == {"eventID": "00000000-0000-4000-8000-000000000001", "eventName": "RunInstances", "n": 1}
        assert first.event_time == datetime(2024, 5, 1, 8, 1, tzinfo=UTC)
        assert first.ingested_at == INGESTED
        assert first.kind is LogKind.CLOUDTRAIL and first.source == "test" and first.version == 1
        after_second = await read_after(conn, got[1].seq or 0, 1)
        assert [e.event_id for e in after_second] == [got[2].event_id]
        assert await head(conn) == got[-1].seq
        assert await read_after(conn, got[-1].seq or 0, 10) == []
        other = await read_after(conn, 0, 10, tenant="acme")
        assert other == []
    finally:
        await conn.close()


async def test_read_only_events_are_counted_per_account_and_utc_day(database_url: str) -> None:
    conn = await connect(database_url)
    try:
        plus2 = timezone(timedelta(hours=2))
        batch = [
            entry(10, read_only=True, at=datetime(2024, 5, 1, 0, 0, tzinfo=UTC)),
            entry(11, read_only=True, at=datetime(2024, 5, 1, 23, 59, 59, tzinfo=UTC)),
            entry(12, read_only=True, at=datetime(2024, 5, 2, 1, 0, tzinfo=plus2)),  # 2024-05-01T23:00Z
            entry(13, read_only=True, at=datetime(2024, 5, 2, 0, 0, tzinfo=UTC)),
            entry(14, read_only=True, account="444455556666", at=datetime(2024, 5, 1, 12, tzinfo=UTC)),
            entry(15),  # a write: stored
        ]
        result = await append(conn, batch, keep_read_only=False)
        assert result == AppendResult(logged=1, duplicate=0, read_only_counted=5)
        await append(conn, [entry(16, read_only=True, at=datetime(2024, 5, 2, 9, tzinfo=UTC))], keep_read_only=False)
        rows = await conn.fetch(
            "SELECT tenant_id, account_id, day, events FROM log_read_only_counts ORDER BY account_id, day"
        )
        assert [tuple(r) for r in rows] == [
            ("default", "111122223333", date(2024, 5, 1), 3),
            ("default", "111122223333", date(2024, 5, 2), 2),
            ("default", "444455556666", date(2024, 5, 1), 1),
        ]
        assert [r["event_name"] for r in await conn.fetch("SELECT event_name FROM log")] == ["RunInstances"]
    finally:
        await conn.close()


async def test_keep_read_only_stores_them_whole(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = await connect(database_url)
    try:
        result = await append(conn, [entry(20, read_only=True)], keep_read_only=True)
        assert result == AppendResult(logged=1, duplicate=0, read_only_counted=0)
        monkeypatch.setenv("DD0C_KEEP_READ_ONLY", "true")  # the setting is what append uses by default
        assert await append(conn, [entry(21, read_only=True)]) == AppendResult(1, 0, 0)
        monkeypatch.setenv("DD0C_KEEP_READ_ONLY", "false")
        assert await append(conn, [entry(22, read_only=True)]) == AppendResult(0, 0, 1)
        stored = await read_after(conn, 0, 10)
        assert [(e.event_id[-2:], e.read_only) for e in stored] == [("20", True), ("21", True)]
        assert await conn.fetchval("SELECT sum(events) FROM log_read_only_counts") == 1
    finally:
        await conn.close()


async def test_nan_in_a_record_is_rejected_alone_and_its_batch_still_logged(database_url: str) -> None:
    """Python's json accepts a bare NaN literal; JSONB cannot hold it: that entry is a Rejected value."""
    conn = await connect(database_url)
    try:
        result = await append(conn, [entry(30), entry(31, record={"eventID": "x", "price": math.nan})])
        assert (result.logged, result.duplicate, len(result.rejected)) == (1, 0, 1)
        assert "non-finite float nan" in result.rejected[0].reason
        assert await conn.fetchval("SELECT count(*) FROM log") == 1
    finally:
        await conn.close()


async def test_dead_letters_keep_reason_source_locator_and_raw_bytes(database_url: str) -> None:
    conn = await connect(database_url)
    try:
        raw = b'{"Records": [{"eventID": \xff\xfe truncated'
        bad = Rejected(reason="invalid JSON at byte 28", raw=raw, source="AWSLogs/1/x.json.gz", locator="record 3")
        first = await dead_letter(conn, "default", "read", bad)
        await dead_letters(conn, [("acme", "normalize", Rejected("no eventTime", b"{}", "log", "seq 7"))])
        rows = await conn.fetch(
            "SELECT id, tenant_id, stage, source, locator, reason, raw FROM dead_letters ORDER BY id"
        )
        assert rows[0]["id"] == first
        assert tuple(rows[0])[1:] == ("default", "read", "AWSLogs/1/x.json.gz", "record 3", "invalid JSON at byte 28",
                                      raw)
        assert tuple(rows[1])[1:] == ("acme", "normalize", "log", "seq 7", "no eventTime", b"{}")
    finally:
        await conn.close()


async def test_append_notifies_listeners_on_commit_with_the_tenant(database_url: str) -> None:
    listener = await connect(database_url)
    writer = await connect(database_url)
    received: asyncio.Queue[str] = asyncio.Queue()
    try:
        await listener.add_listener(LOG_CHANNEL, lambda _c, _pid, _ch, payload: received.put_nowait(payload))
        async with writer.transaction():
            await append(writer, [entry(40, tenant="acme")])
            assert received.empty()  # nothing before commit: NOTIFY is transactional
        assert await asyncio.wait_for(received.get(), 10) == "acme"
    finally:
        await listener.close()
        await writer.close()


async def test_a_reader_following_concurrent_appenders_misses_nothing(database_url: str) -> None:
    """seq order = commit order: a reader resuming after the highest seq it saw never skips a row."""
    writers = [await connect(database_url) for _ in range(3)]
    reader = await connect(database_url)
    per_writer, batches = 40, 15

    async def write(w: int) -> None:
        for b in range(batches):
            base = (w * batches + b) * per_writer
            await append(writers[w], [entry(base + i, account=f"acct-{w}") for i in range(per_writer)])

    try:
        tasks = [asyncio.create_task(write(w)) for w in range(3)]
        seen: list[str] = []
        position = 0
        while True:
            done = all(t.done() for t in tasks)
            got = await read_after(reader, position, 97)
            seen.extend(f"{e.account_id}/{e.event_id}" for e in got)
            position = got[-1].seq if got else position
            if done and not got:
                break
            if not got:
                await asyncio.sleep(0)  # let the writers run; the loop ends on positions, not on time
        await asyncio.gather(*tasks)
        assert len(seen) == 3 * batches * per_writer == len(set(seen))
    finally:
        for c in [*writers, reader]:
            await c.close()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    ids=st.lists(st.integers(min_value=0, max_value=12), min_size=1, max_size=30),
    cuts=st.lists(st.integers(min_value=1, max_value=30), max_size=4),
)
def test_duplicate_ids_in_any_batching_log_each_event_once(
    sync_database_url: str, ids: list[int], cuts: list[int]
) -> None:
    """Property: however records are split into appends, the log holds each eventID once, in first-seen order."""

    async def scenario() -> tuple[list[str], int, int]:
        tenant = f"t-{uuid.uuid4().hex[:8]}"  # a fresh tenant per example instead of cleanup
        conn = await connect(sync_database_url)
        try:
            entries = [entry(i, tenant=tenant) for i in ids]
            bounds = sorted({c for c in cuts if c < len(entries)})
            total = AppendResult()
            for lo, hi in zip([0, *bounds], [*bounds, len(entries)], strict=True):
                total = total + await append(conn, entries[lo:hi])
            stored = await read_after(conn, 0, 100, tenant=tenant)
            return [e.event_id for e in stored], total.logged, total.duplicate
        finally:
            await conn.close()

    stored, logged, duplicate = asyncio.run(scenario())
    first_seen = list(dict.fromkeys(entry(i).event_id for i in ids))
    assert stored == first_seen
    assert logged == len(first_seen)
    assert duplicate == len(ids) - len(first_seen)
