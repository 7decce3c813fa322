"""The runner's read of the Postgres log (read_folded_after): calls the fold passes over left out, positions as
read_after's.

With DD0C_KEEP_READ_ONLY the log holds read-only calls, and any log holds writes no stage acts on (CreateTags,
...): the folds pass over both (tests/unit/test_fold_read_only.py). The runner's read skips them but must end its
range where read_after would, so checkpoints still move past them.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from projections.db import connect
from schemas.events import LogEntry, LogKind
from streams.fold import FOLDED_CALLS
from streams.log.postgres import append, head, read_after, read_folded_after
from streams.pipeline import RUNNER_NAME
from streams.prices.table import load_default_prices
from streams.runner.postgres import PostgresRunner
from tests.conftest import _create_database, _drop_database
from tests.integration import ctgen

pytestmark = pytest.mark.integration

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)


CALLS = FOLDED_CALLS


def entry(n: int, *, read_only: bool, tenant: str = "default", kind: LogKind = LogKind.CLOUDTRAIL,
          name: str | None = None) -> LogEntry:
    name = name or ("DescribeInstances" if read_only else "RunInstances")
    return LogEntry(
        tenant=tenant, event_id=f"evt-{n:04d}", account_id="111122223333", event_time=T0 + timedelta(minutes=n),
        ingested_at=T0 + timedelta(hours=1), event_source="ec2.amazonaws.com", event_name=name,
        region="us-east-1", read_only=read_only, kind=kind, record={"eventName": name, "n": n}, source="test",
    )


async def test_read_only_rows_are_left_out_but_the_range_ends_where_read_after_ends(database_url: str) -> None:
    # n:  1 write, 2 read, 3 read, 4 write, 5 read, 6 CreateTags (a write no stage acts on), 7 Insight flagged
    # read-only, 8 read
    pattern = [False, True, True, False, True]
    logged = [entry(n, read_only=ro) for n, ro in enumerate(pattern, start=1)]
    logged += [entry(6, read_only=False, name="CreateTags"), replace(entry(7, read_only=True), kind=LogKind.INSIGHT),
               entry(8, read_only=True)]
    conn = await connect(database_url)
    try:
        await append(conn, logged, keep_read_only=True)
        every = await read_after(conn, 0, 100)
        seq = {e.event_id: e.seq for e in every}

        # first 3 rows (1 write, 2 reads): the write, and read 3 because it ends the range
        got, scanned = await read_folded_after(conn, 0, 3, calls=CALLS)
        assert ([e.event_id for e in got], scanned) == (["evt-0001", "evt-0003"], 3)
        assert got[-1].seq == every[2].seq  # the position after this batch: the same as read_after's
        assert got[0].record == {"eventName": "RunInstances", "n": 1}

        # the next 4 rows: write 4, read 5 and CreateTags 6 left out, the Insight kept (only CloudTrail calls are
        # passed over: the runner folds what is not a call its own way)
        got, scanned = await read_folded_after(conn, seq["evt-0003"] or 0, 4, calls=CALLS)
        assert ([e.event_id for e in got], scanned) == (["evt-0004", "evt-0007"], 4)

        # everything at once: the writes, the Insight and the last row
        got, scanned = await read_folded_after(conn, 0, 100, calls=CALLS)
        assert ([e.event_id for e in got], scanned) == (["evt-0001", "evt-0004", "evt-0007", "evt-0008"], 8)
        assert got == [e for e in every if e.event_id in {"evt-0001", "evt-0004", "evt-0007", "evt-0008"}]

        # a range of passed-over rows only still comes back with its last row; past the head: nothing
        got, scanned = await read_folded_after(conn, seq["evt-0004"] or 0, 2, calls=CALLS)
        assert ([e.event_id for e in got], scanned) == (["evt-0006"], 2)
        assert await read_folded_after(conn, seq["evt-0008"] or 0, 10, calls=CALLS) == ([], 0)
        assert await read_folded_after(conn, 0, 10, calls=CALLS, tenant="acme") == ([], 0)
        # `calls` decides which writes come back: with CreateTags in it, row 6 does
        got, _ = await read_folded_after(conn, seq["evt-0004"] or 0, 3,
                                         calls=CALLS | {("ec2.amazonaws.com", "CreateTags")})
        assert [e.event_id for e in got] == ["evt-0006", "evt-0007"]
    finally:
        await conn.close()


async def test_a_kept_read_only_log_folds_like_a_counted_one_and_checkpoints_reach_its_head(database_url: str) -> None:
    """ctgen's records (launches, terminations, failed launches, read-only noise), once with the reads kept as
    log rows and once counted only: the same cost events, resources and counters; the checkpoint of the kept log
    reaches its head even where a batch (of 7) ends on read-only rows, and a tail of reads is passed over too."""
    records = ctgen.generated_records(300, seed=5)
    reads = sum(1 for r in records if r["readOnly"])
    tail = [{**records[0], "eventID": f"tail-{n}", "eventName": "DescribeInstances", "readOnly": True}
            for n in range(3)]
    other = await _create_database()
    try:
        results = []
        for url, keep in ((database_url, True), (other, False)):
            conn = await connect(url)
            try:
                appended = await append(conn, ctgen.entries(records + tail), keep_read_only=keep)
                assert appended.logged == (len(records) + 3 if keep else len(records) - reads)
                stats = await PostgresRunner(url, load_default_prices(), batch=7).run(drain=True)
                assert stats.position == await head(conn)
                assert await conn.fetchval("SELECT position FROM checkpoints WHERE runner = $1",
                                           RUNNER_NAME) == await head(conn)
                results.append((
                    await conn.fetch("SELECT event_id, ordinal, hourly_cost FROM cost_events ORDER BY event_id, "
                                     "ordinal"),
                    await conn.fetch("SELECT resource_id, state, hourly_cost FROM resources ORDER BY resource_id"),
                    await conn.fetch("SELECT metric, label, value FROM fold_metrics ORDER BY metric, label"),
                    await conn.fetchval("SELECT count(*) FROM anomalies"),
                ))
            finally:
                await conn.close()
        assert reads > 20 and len(results[0][0]) > 0 and len(results[0][1]) > 0
        assert results[0] == results[1]
    finally:
        await _drop_database(other)
