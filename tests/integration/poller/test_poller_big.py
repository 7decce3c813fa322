"""A big object is streamed: the backfill process's peak memory grows far less than the object's size.

The object is plain (uncompressed) JSON so that reading it whole would cost at least its size in bytes. Peak RSS
is the backfill process's own high-water mark (VmHWM), compared with the same backfill over a one-record object.
DD0C_TEST_BIG_OBJECT_MB sets the size (default 100, the figure the issue names).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, date, datetime

import orjson
import pytest

from projections.db import connect
from tests.conftest import ROOT
from tests.integration import ctgen
from tests.integration.poller.conftest import A1, delivery, key, put, records

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
BIG_MB = int(os.environ.get("DD0C_TEST_BIG_OBJECT_MB", "100"))
WRITE_EVERY = 50  # one RunInstances among every 50 records; the rest are DescribeInstances (counted, not stored)
GROWTH_LIMIT_MB = 50  # allowed peak-RSS growth over the one-record run: half the 100 MiB object (measured: ~40)


def big_body(day: date, megabytes: int) -> tuple[bytes, int, int]:
    """{"Records": [...]} of about `megabytes` MiB; returns (body, writes, reads)."""
    at = datetime(day.year, day.month, day.day, 2, tzinfo=UTC)
    read = orjson.dumps(ctgen.describe_instances(0, at=at, account=A1))
    write = orjson.dumps(ctgen.run_instances(0, at=at, account=A1))
    zero = ctgen.event_id(0).encode()
    parts, size, n, writes = [], 0, 0, 0
    while size < megabytes * MIB:
        n += 1
        is_write = n % WRITE_EVERY == 0
        writes += is_write
        part = (write if is_write else read).replace(zero, ctgen.event_id(n).encode())
        parts.append(part)
        size += len(part) + 1
    return b'{"Records":[' + b",".join(parts) + b"]}", writes, n - writes


# The peak RSS of the backfill itself: VmHWM of its own address space, read just before it exits. (wait4's
# ru_maxrss would not do: it keeps the high-water mark of the forked test process from before exec.)
_RUN_AND_REPORT_PEAK = """
import re, sys
from ops.cli import main
rc = main(sys.argv[1:])
peak = re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read())
print(f"peak-rss-kib {peak.group(1)}")
sys.exit(rc)
"""


def backfill_peak_rss_mb(database_url: str, moto_url: str, bucket: str, day: date) -> tuple[float, str]:
    env = {**os.environ, "DATABASE_URL": database_url, "DD0C_AWS_ENDPOINT_URL": moto_url,
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    proc = subprocess.run(
        [sys.executable, "-c", _RUN_AND_REPORT_PEAK, "backfill", "--since", str(day), "--until", str(day),
         "--tenant", "t-big", "--bucket", bucket, "--account", A1, "--region", "us-east-1", "--no-archive"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False,
    )
    out = proc.stdout.decode()
    assert proc.returncode == 0, out
    found = re.search(r"peak-rss-kib (\d+)", out)
    assert found, out
    return int(found.group(1)) / 1024, out


async def test_a_big_object_is_streamed_in_bounded_memory(database_url: str, moto_url: str, bucket: str) -> None:
    small_day, big_day = date(2024, 5, 1), date(2024, 5, 2)
    put(moto_url, bucket, key(A1, small_day, 1), delivery(records(1, A1, small_day, writes=1, reads=0)))
    body, writes, reads = big_body(big_day, BIG_MB)
    assert len(body) >= BIG_MB * MIB
    put(moto_url, bucket, key(A1, big_day, 1), body)
    del body

    baseline, _ = backfill_peak_rss_mb(database_url, moto_url, bucket, small_day)
    peak, out = backfill_peak_rss_mb(database_url, moto_url, bucket, big_day)
    assert "1 object(s) read" in out
    print(f"peak RSS {peak:.0f} MiB for {BIG_MB} MiB, {baseline:.0f} MiB for one record")
    assert peak - baseline < GROWTH_LIMIT_MB, f"peak {peak:.0f} MiB vs {baseline:.0f} MiB for one record"

    conn = await connect(database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM log") == 1 + writes
        assert await conn.fetchval("SELECT sum(events) FROM log_read_only_counts") == reads
    finally:
        await conn.close()
