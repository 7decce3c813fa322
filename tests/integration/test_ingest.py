"""Ingest: files and S3-layout directories into the log - dedupe (R08), event time vs ingest time (R06), reports."""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ops.ingest import FileReport, IngestReport, find_log_files, format_report, ingest
from projections.db import connect
from schemas.cloudtrail import RawRecord, to_log_entry
from streams.log.postgres import AppendResult, append, read_after
from streams.prices.table import load_default_prices
from streams.runner.postgres import PostgresRunner
from tests.conftest import CASES, ROOT
from tests.integration import ctgen

pytestmark = pytest.mark.integration

JUNE_1 = datetime(2024, 6, 1, tzinfo=UTC)
ACCOUNT = "111122223333"
A, B = "00000000-0000-4000-8000-000000000801", "00000000-0000-4000-8000-000000000802"


async def drain(url: str) -> None:
    await PostgresRunner(url, load_default_prices(), retry_delay=0.01).run(drain=True)


async def test_R08_the_same_event_delivered_three_ways_is_counted_once(database_url: str, tmp_path: Path) -> None:
    """R08: the file twice, the same events in another trail's file, and record A pushed again -> 2 cost events."""
    conn = await connect(database_url)
    try:
        first = await ingest(conn, [CASES / "R08.json"], now=lambda: JUNE_1)
        (f,) = first.files
        assert (f.read, f.logged, f.duplicate, f.rejected) == (3, 2, 1, 0)  # A, B, and A's copy inside the file

        again = await ingest(conn, [CASES / "R08.json"], now=lambda: JUNE_1)
        assert again.files[0].status == "already ingested" and again.files[0].read == 0

        # An organization trail delivers the same events in a file of its own (other bytes, same eventIDs).
        records = json.loads((CASES / "R08.json").read_text())["Records"]
        org_copy = tmp_path / "AWSLogs" / "o-exampleorg1" / ACCOUNT / "CloudTrail" / "us-east-1" / "org.json.gz"
        org_copy.parent.mkdir(parents=True)
        org_copy.write_bytes(gzip.compress(json.dumps({"Records": records[::-1]}).encode()))
        org = await ingest(conn, [tmp_path], now=lambda: JUNE_1)
        assert (org.files[0].logged, org.files[0].duplicate) == (0, 3)

        await drain(database_url)
        # pushed once more after the worker ran (as through the push endpoint), then folded again
        pushed = to_log_entry(RawRecord(records[0], "push"), tenant="default", ingested_at=JUNE_1, source="push")
        assert await append(conn, [pushed]) == AppendResult(logged=0, duplicate=1, read_only_counted=0)
        await drain(database_url)

        assert await conn.fetchval("SELECT count(*) FROM log") == 2
        events = await conn.fetch("SELECT event_id, ordinal FROM cost_events ORDER BY event_id")
        assert [tuple(r) for r in events] == [(A, 0), (B, 0)]
        n = await conn.fetchval(
            "SELECT event_count FROM baselines WHERE tenant_id = 'default' AND account_id = $1"
            " AND resource_type = 'ec2_instance'",
            ACCOUNT,
        )
        assert n == 2
        per_event = await conn.fetch(
            "SELECT e AS event_id, count(*) AS n FROM anomalies, jsonb_array_elements_text(data->'event_ids') e"
            " GROUP BY e"
        )
        assert all(r["n"] == 1 for r in per_event)
    finally:
        await conn.close()


async def test_R06_backfill_keeps_event_time_and_stamps_the_frozen_ingest_clock(database_url: str) -> None:
    """R06: a May file processed on June 1: stored event_time = eventTime, ingested_at = June 1, backfill=true."""
    conn = await connect(database_url)
    try:
        report = await ingest(conn, [CASES / "R06.json"], now=lambda: JUNE_1)
        assert (report.files[0].read, report.files[0].logged) == (3, 3)
        rows = await conn.fetch("SELECT event_id, event_time, ingested_at FROM log ORDER BY seq")
        assert [r["event_time"] for r in rows] == [
            datetime(2024, 5, 1, 8, 0, tzinfo=UTC),
            datetime(2024, 5, 1, 9, 0, 0, 123000, tzinfo=UTC),
            datetime(2024, 5, 2, 10, 0, tzinfo=UTC),
        ]
        assert {r["ingested_at"] for r in rows} == {JUNE_1}

        await drain(database_url)
        times = [r["event_time"] for r in await conn.fetch("SELECT event_time FROM cost_events ORDER BY event_time")]
        assert times == [r["event_time"] for r in rows]
        assert all(t < datetime(2024, 6, 1, tzinfo=UTC) for t in times)  # nothing lands on the ingest day
        assert await conn.fetchval(
            "SELECT event_count FROM baselines WHERE account_id = $1 AND resource_type = 'ec2_instance'", ACCOUNT
        ) == 3
        for a in await conn.fetch("SELECT event_time, detected_at, backfill FROM anomalies"):
            assert a["event_time"].month == 5 and a["detected_at"] == JUNE_1 and a["backfill"] is True
    finally:
        await conn.close()


async def test_each_file_is_appended_in_event_time_order(database_url: str, tmp_path: Path) -> None:
    """CloudTrail files are not time-ordered inside (R06): the log gets each file sorted by (eventTime, eventID)."""
    t = datetime(2024, 5, 1, 12, tzinfo=UTC)
    records = [
        ctgen.run_instances(3, at=t + timedelta(minutes=30)),
        ctgen.run_instances(1, at=t),
        ctgen.run_instances(4, at=t + timedelta(minutes=10)),
        ctgen.run_instances(2, at=t),  # same second as eventID ...01: the eventID breaks the tie
    ]
    path = tmp_path / "unordered.json"
    path.write_text(json.dumps({"Records": records}))
    conn = await connect(database_url)
    try:
        await ingest(conn, [path], now=lambda: JUNE_1)
        stored = await read_after(conn, 0, 10)
        assert [e.event_id[-1] for e in stored] == ["1", "2", "4", "3"]
    finally:
        await conn.close()


def _s3_tree(root: Path) -> dict[str, Path]:
    """An S3-layout bucket copy: two good deliveries (one of an organization trail), a digest, and two bad files."""
    day = datetime(2024, 5, 1, 9, tzinfo=UTC)
    base = root / "AWSLogs" / ACCOUNT / "CloudTrail" / "us-east-1" / "2024" / "05" / "01"
    org = root / "AWSLogs" / "o-exampleorg1" / "444455556666" / "CloudTrail" / "eu-west-1" / "2024" / "05" / "01"
    digest_dir = root / "AWSLogs" / ACCOUNT / "CloudTrail-Digest" / "us-east-1" / "2024" / "05" / "01"
    for d in (base, org, digest_dir):
        d.mkdir(parents=True)
    good1 = [
        ctgen.run_instances(101, at=day, count=2),
        ctgen.describe_instances(102, at=day + timedelta(minutes=1)),
        ctgen.describe_instances(103, at=day + timedelta(minutes=2)),
        ctgen.terminate_instances(104, [ctgen.instance_id(101, 0)], at=day + timedelta(minutes=3)),
    ]
    good2 = [
        ctgen.run_instances(201, at=day, account="444455556666", region="eu-west-1", instance_type="c5.xlarge"),
        ctgen.describe_instances(202, at=day, account="444455556666"),
    ]
    files = {
        "good1": base / f"{ACCOUNT}_CloudTrail_us-east-1_20240501T0900Z_good1.json.gz",
        "good2": org / "444455556666_CloudTrail_eu-west-1_20240501T0900Z_good2.json.gz",
        "truncated": base / f"{ACCOUNT}_CloudTrail_us-east-1_20240501T0905Z_trunc.json.gz",
        "invalid": base / f"{ACCOUNT}_CloudTrail_us-east-1_20240501T0910Z_bad.json",
        "digest": digest_dir / f"{ACCOUNT}_CloudTrail-Digest_us-east-1_20240501T0900Z.json.gz",
    }
    files["good1"].write_bytes(gzip.compress(json.dumps({"Records": good1}).encode()))
    files["good2"].write_bytes(gzip.compress(json.dumps({"Records": good2}).encode()))
    whole = gzip.compress(json.dumps({"Records": [ctgen.run_instances(301, at=day)] * 40}).encode())
    files["truncated"].write_bytes(whole[: len(whole) // 2])
    files["invalid"].write_text('{"Records": [{"eventVersion": "1.09", "eventID": "x", "eventTime": ')
    files["digest"].write_bytes(gzip.compress(b'{"digestStartTime": "2024-05-01T08:00:00Z", "logFiles": []}'))
    (root / "README.md").write_text("not a log file")
    return files


def test_find_log_files_walks_s3_layout_and_skips_digests(tmp_path: Path) -> None:
    files = _s3_tree(tmp_path)
    ignored: list[str] = []
    found = list(find_log_files([tmp_path], ignored))
    assert sorted(found) == sorted([files["good1"], files["good2"], files["truncated"], files["invalid"]])
    assert ignored == [str(tmp_path / "README.md")]


def test_ingest_cli_reports_bad_files_and_logs_the_good_ones(sync_database_url: str, tmp_path: Path) -> None:
    files = _s3_tree(tmp_path)
    env = {**os.environ, "DATABASE_URL": sync_database_url}
    cmd = [str(Path(sys.executable).with_name("dd0c-cost")), "ingest", str(tmp_path / "AWSLogs")]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    for bad in ("truncated", "invalid"):
        assert f"rejected {files[bad]}" in done.stderr
    report = {line.split()[0]: line.split()[1:] for line in done.stdout.splitlines() if line.strip()}
    #                         read logged dup read-only skipped rejected
    assert report[str(files["good1"])] == ["4", "2", "0", "2", "0", "0"]
    assert report[str(files["good2"])] == ["2", "1", "0", "1", "0", "0"]
    assert report[str(files["invalid"])][5] == "1"
    assert int(report[str(files["truncated"])][5]) >= 1
    assert report["total"][1:4] == ["3", "0", "3"]

    async def check() -> None:
        conn = await connect(sync_database_url)
        try:
            dead = await conn.fetch("SELECT stage, source, reason, raw FROM dead_letters ORDER BY id")
            sources = {r["source"] for r in dead}
            assert sources == {str(files["truncated"]), str(files["invalid"])}
            assert {r["stage"] for r in dead} == {"read"}
            assert all(r["reason"] for r in dead)
            logged = [r["event_id"][-3:] for r in await conn.fetch("SELECT event_id FROM log ORDER BY seq")]
            assert sorted(logged) == ["101", "104", "201"]
            counts = await conn.fetch("SELECT account_id, events FROM log_read_only_counts ORDER BY account_id")
            assert [tuple(r) for r in counts] == [(ACCOUNT, 2), ("444455556666", 1)]
            assert await conn.fetchval("SELECT tenant_id FROM tenants") == "default"
            assert await conn.fetchval("SELECT count(*) FROM ingested_files") == 4
        finally:
            await conn.close()

    asyncio.run(check())

    # The same bucket again: nothing is re-read, nothing re-counted, nothing rejected twice - but the run still
    # says (and its status still shows) that the bucket holds input that could not be read.
    again = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 1, again.stderr
    assert again.stdout.count("already ingested") == 4
    assert "dd0c-cost ingest: rejected" not in again.stderr
    assert "2 record(s) in already-ingested files were rejected when first read" in again.stdout


def test_format_report_lists_every_file_and_totals() -> None:
    report = IngestReport(
        files=[FileReport("a.json.gz", read=10, logged=2, duplicate=1, read_only_counted=7),
               FileReport("b.json", status="already ingested")],
        ignored=["README.md"],
    )
    text = format_report(report)
    lines = text.splitlines()
    assert lines[0].split() == ["file", "read", "logged", "duplicate", "read-only", "skipped", "rejected", "note"]
    assert lines[1].split() == ["a.json.gz", "10", "2", "1", "7", "0", "0"]
    assert lines[2].split() == ["b.json", "0", "0", "0", "0", "0", "0", "already", "ingested"]
    assert lines[3].split() == ["total", "10", "2", "1", "7", "0", "0"]
    assert "ignored 1 file(s)" in text


async def test_an_unreadable_file_is_reported_and_the_others_still_ingested(database_url: str, tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"Records": [ctgen.run_instances(1, at=datetime(2024, 5, 1, tzinfo=UTC))]}))
    (tmp_path / "gone.json").symlink_to(tmp_path / "deleted-before-we-got-there.json")
    conn = await connect(database_url)
    try:
        err = io.StringIO()
        report = await ingest(conn, [tmp_path], now=lambda: JUNE_1, err=err)
        by_name = {Path(f.file).name: f for f in report.files}
        assert by_name["gone.json"].status == "unreadable"
        assert by_name["good.json"].logged == 1
        assert not report.ok
        assert f"cannot read {tmp_path / 'gone.json'}: No such file or directory" in err.getvalue()
        assert await conn.fetchval("SELECT count(*) FROM dead_letters") == 0
    finally:
        await conn.close()


async def test_a_file_over_the_sort_chunk_is_sorted_chunk_by_chunk(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Memory stays bounded for a huge file: it is sorted (and appended) in chunks, and the report says so."""
    monkeypatch.setattr("ops.ingest.SORT_CHUNK", 3)
    t = datetime(2024, 5, 1, 12, tzinfo=UTC)
    minutes = [50, 40, 30, 20, 10, 0, 5]  # records 1..7 in this minute order
    path = tmp_path / "big.json"
    path.write_text(json.dumps({"Records": [ctgen.run_instances(n, at=t + timedelta(minutes=m))
                                            for n, m in enumerate(minutes, 1)]}))
    conn = await connect(database_url)
    try:
        report = await ingest(conn, [path], now=lambda: JUNE_1)
        assert report.files[0].note == "over 3 records: sorted in chunks of 3"
        assert (report.files[0].read, report.files[0].logged) == (7, 7)
        stored = [e.event_id[-1] for e in await read_after(conn, 0, 10)]
        assert stored == ["3", "2", "1", "6", "5", "4", "7"]  # chunks [1,2,3] [4,5,6] [7], each in time order
    finally:
        await conn.close()
