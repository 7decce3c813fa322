"""kill -9 of a backfill subprocess while it is between appending an object's entries and moving its position,
then a restart: every event is in the log exactly once and every read-only event is counted exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from projections.db import connect
from tests.conftest import ROOT
from tests.integration.poller.conftest import A1, A2, delivery, key, put, records

pytestmark = pytest.mark.integration

DD0C_COST = str(Path(sys.executable).with_name("dd0c-cost"))
OBJECTS_PER_ACCOUNT = 12
WRITES, READS = 3000, 300  # per object: two appends of 2000 + 1000 entries, so an object is mid-way for a while
TENANT = "t-kill"


def backfill(database_url: str, moto_url: str, bucket: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DATABASE_URL": database_url, "DD0C_AWS_ENDPOINT_URL": moto_url,
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    return subprocess.Popen(
        [DD0C_COST, "backfill", "--since", "2024-05-01", "--until", "2024-05-01", "--tenant", TENANT,
         "--bucket", bucket, "--account", A1, "--account", A2, "--region", "us-east-1", "--no-archive"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


# An object some of whose entries are in the log while its folder's position is still before it.
_MID_OBJECT = """
SELECT count(*) FROM (SELECT DISTINCT source FROM log) s
WHERE NOT EXISTS (
    SELECT 1 FROM s3_poll_positions p
    WHERE ('s3://' || p.bucket || '/' || p.last_key) COLLATE "C" >= s.source COLLATE "C"
      AND s.source LIKE 's3://' || p.bucket || '/' || p.prefix || '%')
"""


async def test_kill_9_mid_object_then_restart_logs_every_event_once(
    database_url: str, moto_url: str, bucket: str
) -> None:
    day = date(2024, 5, 1)
    for a, account in enumerate((A1, A2)):
        for i in range(1, OBJECTS_PER_ACCOUNT + 1):
            first = (a * OBJECTS_PER_ACCOUNT + i) * 10_000
            put(moto_url, bucket, key(account, day, i), delivery(records(first, account, day, writes=WRITES,
                                                                                reads=READS)))
    total_objects = 2 * OBJECTS_PER_ACCOUNT
    conn = await connect(database_url)
    loop = asyncio.get_running_loop()
    try:
        kills_mid_object = 0
        for _attempt in range(5):  # a kill can land just after an object finished; then try again further on
            proc = backfill(database_url, moto_url, bucket)
            deadline = loop.time() + 120
            try:
                while await conn.fetchval(_MID_OBJECT) == 0:
                    if proc.poll() is not None:
                        break
                    assert loop.time() < deadline, "the backfill never got mid-object"
                    await asyncio.sleep(0.005)
            finally:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGKILL)
                await loop.run_in_executor(None, proc.communicate)
            if proc.returncode != -signal.SIGKILL:
                break  # it finished everything before we could kill it
            if await conn.fetchval(_MID_OBJECT) > 0:  # killed with entries logged but the position not moved
                kills_mid_object += 1
            if kills_mid_object >= 2:
                break
        assert kills_mid_object >= 1
        done_before = await conn.fetchval("SELECT coalesce(sum(objects), 0) FROM s3_poll_positions")
        assert done_before < total_objects  # really killed before the end

        proc = backfill(database_url, moto_url, bucket)
        out, err = await loop.run_in_executor(None, proc.communicate)
        assert proc.returncode == 0, err.decode()
        # The restart read only what was left, the interrupted object included.
        assert f"{total_objects - done_before} object(s) read" in out.decode()

        assert await conn.fetchval("SELECT count(*) FROM log") == total_objects * WRITES  # 72,000
        assert await conn.fetchval("SELECT count(DISTINCT (account_id, event_id)) FROM log") == total_objects * WRITES
        assert await conn.fetchval("SELECT sum(events) FROM log_read_only_counts") == total_objects * READS  # 7,200
        assert await conn.fetchval("SELECT sum(objects) FROM s3_poll_positions") == total_objects
        assert await conn.fetchval("SELECT count(*) FROM dead_letters") == 0
    finally:
        await conn.close()
