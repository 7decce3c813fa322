"""The S3 poller against moto over HTTP and a real Postgres log: what it reads, logs, counts, rejects and skips,
and what a second poll lists."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, date, datetime
from pathlib import Path

import orjson
import pytest

from projections.db import create_pool
from streams.archive import LocalArchive
from streams.log.writer import open_log_writer
from streams.poller import layout
from streams.poller.poll import Poller, PollReport
from streams.poller.source import Target
from tests.conftest import CASES
from tests.integration.poller.conftest import A1, A2, delivery, key, put, records, session, truncated

pytestmark = pytest.mark.integration

MAY1, MAY2 = date(2024, 5, 1), date(2024, 5, 2)
NOW = datetime(2024, 5, 2, 10, 0, tzinfo=UTC)  # polls list 2024-05-01 and 2024-05-02
TENANT = "t-poll"


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[object]:
    p = await create_pool(database_url)
    await p.execute("INSERT INTO tenants (tenant_id, name) VALUES ($1, $1)", TENANT)
    try:
        yield p
    finally:
        await p.close()


async def poll(pool: object, moto_url: str, targets: Sequence[Target], days: Sequence[date] | None = None,
               archive: LocalArchive | None = None) -> PollReport:
    async with open_log_writer(pool) as writer:  # type: ignore[arg-type]
        poller = Poller(pool, writer, session_for=session, endpoint_url=moto_url, now=lambda: NOW,  # type: ignore[arg-type]
                        archive=archive)
        return await poller.poll(targets, days)


def totals(report: PollReport) -> dict[str, int]:
    t = report.as_ingest_report().total()
    return {"objects": len(report.objects), "logged": t.logged, "duplicate": t.duplicate,
            "read_only": t.read_only_counted, "rejected": t.rejected, "skipped": sum(t.skipped.values())}


def two_day_bucket(moto_url: str, bucket: str) -> None:
    """8 ordinary objects (2 accounts x 2 days x 2), each 2 RunInstances + 1 DescribeInstances; plus a digest's
    content under a log name (R01), a truncated gzip object and a plain-JSON `.gz` (R02); plus things that are
    never listed: a digest in its own folder and a README at the top."""
    n = 1000
    for account in (A1, A2):
        for day in (MAY1, MAY2):
            for i in (1, 2):
                put(moto_url, bucket, key(account, day, i), delivery(records(n, account, day)))
                n += 10
    put(moto_url, bucket, key(A1, MAY1, 3), (CASES / "R01.json.gz").read_bytes())
    cut = records(5000, A2, MAY2, writes=3, reads=0)
    put(moto_url, bucket, key(A2, MAY2, 3), truncated(cut, cut[2]["eventID"]))
    put(moto_url, bucket, key(A1, MAY2, 4), (CASES / "R02.json.gz").read_bytes())
    digest_key = f"AWSLogs/{A1}/CloudTrail-Digest/us-east-1/2024/05/01/{A1}_CloudTrail-Digest_us-east-1_x.json.gz"
    put(moto_url, bucket, digest_key, (CASES / "R01.json.gz").read_bytes())
    put(moto_url, bucket, "README.txt", b"not a log")


def target(bucket: str, account: str, **kwargs: object) -> Target:
    return Target(tenant=TENANT, account_id=account, bucket=bucket, regions=("us-east-1",), **kwargs)  # type: ignore[arg-type]


async def test_two_days_two_accounts_digest_truncated_and_plain_gz(
    pool: object, moto_url: str, bucket: str, tmp_path: Path
) -> None:
    two_day_bucket(moto_url, bucket)
    archive = LocalArchive(tmp_path / "archive")
    report = await poll(pool, moto_url, [target(bucket, A1), target(bucket, A2)], archive=archive)

    assert report.errors == [] and report.listings == 4  # 2 accounts x 2 days, one region
    # 11 objects: 8 ordinary + digest content + truncated + R02. Logged: 8 x 2 writes, 2 before the cut, R02's 1.
    assert totals(report) == {"objects": 11, "logged": 19, "duplicate": 0, "read_only": 8, "rejected": 1, "skipped": 1}
    by_key = {o.key.rsplit("/", 1)[1][:48]: o.report for o in report.objects}
    assert sorted(r.skipped["digest"] for r in by_key.values()) == [0] * 10 + [1]

    assert await pool.fetchval("SELECT count(*) FROM log WHERE tenant_id = $1", TENANT) == 19  # type: ignore[attr-defined]
    assert await pool.fetchval(  # type: ignore[attr-defined]
        "SELECT count(*) FROM log WHERE event_id = '00000000-0000-4000-8000-000000000201'") == 1  # R02's record
    counts = await pool.fetch(  # type: ignore[attr-defined]
        "SELECT account_id, day, events FROM log_read_only_counts WHERE tenant_id = $1 ORDER BY 1, 2", TENANT)
    assert [tuple(r) for r in counts] == [(A1, MAY1, 2), (A1, MAY2, 2), (A2, MAY1, 2), (A2, MAY2, 2)]

    dead = await pool.fetch("SELECT stage, source, locator, reason FROM dead_letters")  # type: ignore[attr-defined]
    assert len(dead) == 1
    assert dead[0]["stage"] == "read"
    assert dead[0]["source"] == f"s3://{bucket}/{key(A2, MAY2, 3)}"
    assert dead[0]["locator"] == "record 3"
    assert dead[0]["reason"].startswith("truncated gzip")

    positions = await pool.fetch(  # type: ignore[attr-defined]
        "SELECT account_id, day, objects, last_key FROM s3_poll_positions ORDER BY account_id, day")
    assert [(r["account_id"], r["day"], r["objects"]) for r in positions] == [
        (A1, MAY1, 3), (A1, MAY2, 3), (A2, MAY1, 2), (A2, MAY2, 3)]
    assert positions[1]["last_key"] == key(A1, MAY2, 4)

    # The archive holds every record that was read, read-only ones included: 19 logged + 8 counted.
    archived = [orjson.loads(gzip.decompress(p.read_bytes()))["Records"] for p in archive.root.rglob("*.json.gz")]
    assert sum(len(r) for r in archived) == 27


async def test_a_second_poll_lists_only_new_objects(pool: object, moto_url: str, bucket: str) -> None:
    two_day_bucket(moto_url, bucket)
    targets = [target(bucket, A1), target(bucket, A2)]
    first = await poll(pool, moto_url, targets)
    assert len(first.objects) == 11

    put(moto_url, bucket, key(A2, MAY2, 4), delivery(records(7000, A2, MAY2)))
    put(moto_url, bucket, key(A1, MAY1, 5), delivery(records(7100, A1, MAY1)))
    second = await poll(pool, moto_url, targets)
    assert [o.key for o in second.objects] == [key(A1, MAY1, 5), key(A2, MAY2, 4)]
    assert totals(second) == {"objects": 2, "logged": 4, "duplicate": 0, "read_only": 2, "rejected": 0, "skipped": 0}

    third = await poll(pool, moto_url, targets)
    assert totals(third)["objects"] == 0 and third.listings == 4
    assert await pool.fetchval("SELECT count(*) FROM log") == 23  # type: ignore[attr-defined]
    assert await pool.fetchval("SELECT sum(events) FROM log_read_only_counts") == 10  # type: ignore[attr-defined]
    assert await pool.fetchval("SELECT count(*) FROM dead_letters") == 1  # type: ignore[attr-defined]


async def test_organization_trail_with_a_prefix_and_discovered_regions(
    pool: object, moto_url: str, bucket: str
) -> None:
    org = "o-abc123def4"
    put(moto_url, bucket, key(A1, MAY2, 1, org=org, prefix="trails/org"), delivery(records(100, A1, MAY2)))
    put(moto_url, bucket, key(A1, MAY2, 2, org=org, prefix="trails/org", region="eu-west-1"),
        delivery(records(200, A1, MAY2, region="eu-west-1")))
    put(moto_url, bucket, key(A2, MAY2, 1, org=org, prefix="trails/org"), delivery(records(300, A2, MAY2)))
    # Not this trail: the same account without the org folder.
    put(moto_url, bucket, key(A1, MAY2, 9, prefix="trails/org"), delivery(records(400, A1, MAY2)))

    org_target = Target(tenant=TENANT, account_id=A1, bucket=bucket, prefix="trails/org/", org_id=org)
    report = await poll(pool, moto_url, [org_target])
    assert report.errors == []
    assert report.listings == 4  # two days x the two region folders found (eu-west-1, us-east-1)
    assert [o.key for o in report.objects] == [
        key(A1, MAY2, 2, org=org, prefix="trails/org", region="eu-west-1"),
        key(A1, MAY2, 1, org=org, prefix="trails/org"),
    ]
    rows = await pool.fetch("SELECT region, count(*) AS n FROM log GROUP BY region ORDER BY region")  # type: ignore[attr-defined]
    assert [(r["region"], r["n"]) for r in rows] == [("eu-west-1", 2), ("us-east-1", 2)]
    prefixes = await pool.fetch("SELECT prefix FROM s3_poll_positions ORDER BY prefix")  # type: ignore[attr-defined]
    assert [r["prefix"] for r in prefixes] == [
        f"trails/org/AWSLogs/{org}/{A1}/CloudTrail/eu-west-1/2024/05/02/",
        f"trails/org/AWSLogs/{org}/{A1}/CloudTrail/us-east-1/2024/05/02/",
    ]


async def test_backfill_of_a_date_range_reads_only_that_range(pool: object, moto_url: str, bucket: str) -> None:
    days = [date(2024, 4, 30), MAY1, MAY2, date(2024, 5, 3)]
    for n, day in enumerate(days, 1):
        put(moto_url, bucket, key(A1, day, n), delivery(records(n * 100, A1, day)))
    report = await poll(pool, moto_url, [target(bucket, A1)], list(layout.days_between(MAY1, MAY2)))
    assert [o.key for o in report.objects] == [key(A1, MAY1, 2), key(A1, MAY2, 3)]
    sources = await pool.fetch("SELECT DISTINCT source FROM log ORDER BY source")  # type: ignore[attr-defined]
    assert [r["source"] for r in sources] == [f"s3://{bucket}/{key(A1, MAY1, 2)}", f"s3://{bucket}/{key(A1, MAY2, 3)}"]
    assert await pool.fetchval("SELECT count(*) FROM log") == 4  # type: ignore[attr-defined]


async def test_an_unreachable_bucket_is_an_error_in_the_report_not_a_crash(pool: object, moto_url: str) -> None:
    report = await poll(pool, moto_url, [target("no-such-bucket-here", A1)])
    assert report.objects == [] and len(report.errors) == 2  # one per day folder
    assert "NoSuchBucket" in report.errors[0] and "s3://no-such-bucket-here/AWSLogs/" in report.errors[0]


async def test_an_object_put_late_in_a_minute_is_still_read(pool: object, moto_url: str, bucket: str) -> None:
    """Two objects of 09:05: the second one put sorts first. A bare StartAfter on the last key would never list it."""
    folder = f"AWSLogs/{A1}/CloudTrail/us-east-1/2024/05/02/"

    def name(stamp: str, unique: str) -> str:
        return f"{folder}{A1}_CloudTrail_us-east-1_20240502T{stamp}Z_{unique}.json.gz"

    put(moto_url, bucket, name("0905", "bbbb"), delivery(records(10, A1, MAY2)))
    first = await poll(pool, moto_url, [target(bucket, A1)])
    assert [o.key for o in first.objects] == [name("0905", "bbbb")]

    put(moto_url, bucket, name("0905", "aaaa"), delivery(records(20, A1, MAY2)))  # late, sorts before
    put(moto_url, bucket, name("0910", "cccc"), delivery(records(30, A1, MAY2)))
    second = await poll(pool, moto_url, [target(bucket, A1)])
    assert [o.key for o in second.objects] == [name("0905", "aaaa"), name("0910", "cccc")]

    third = await poll(pool, moto_url, [target(bucket, A1)])
    assert third.objects == []
    assert await pool.fetchval("SELECT count(*) FROM log") == 6  # type: ignore[attr-defined]
    row = await pool.fetchrow("SELECT last_key, recent, objects FROM s3_poll_positions")  # type: ignore[attr-defined]
    assert (row["last_key"], row["objects"]) == (name("0910", "cccc"), 3)
    assert row["recent"] == [name("0905", "aaaa"), name("0905", "bbbb"), name("0910", "cccc")]
