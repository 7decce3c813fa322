"""kill -9 the worker at several points, restart it: the projections equal those of one clean run, row by row."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from projections.db import connect
from streams.log.postgres import append, head
from streams.pipeline import RUNNER_NAME
from tests.conftest import ROOT, _create_database, _drop_database
from tests.integration import ctgen

pytestmark = pytest.mark.integration

RECORDS = ctgen.generated_records(3000, seed=5)
DD0C_COST = str(Path(sys.executable).with_name("dd0c-cost"))  # the installed console script


def worker(url: str, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DATABASE_URL": url}
    return subprocess.Popen(
        [DD0C_COST, "worker", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


async def position(conn: object) -> int:
    value = await conn.fetchval("SELECT position FROM checkpoints WHERE runner = $1", RUNNER_NAME)  # type: ignore[attr-defined]
    return int(value or 0)


async def finish(proc: subprocess.Popen[bytes]) -> tuple[int, str]:
    loop = asyncio.get_running_loop()
    _, err = await loop.run_in_executor(None, lambda: proc.communicate(timeout=120))
    return proc.returncode, err.decode(errors="replace")


async def test_kill_9_at_several_points_then_restart_equals_a_clean_run(database_url: str) -> None:
    clean_url = await _create_database()
    conn = await connect(database_url)
    clean = await connect(clean_url)
    try:
        for c in (conn, clean):
            await append(c, ctgen.entries(RECORDS), keep_read_only=False)
        last = await head(conn)
        assert last == await head(clean)

        rc, err = await finish(worker(clean_url, "--drain", "--batch", "500"))
        assert rc == 0, err

        killed_at = []
        for fraction in (0.15, 0.4, 0.7):
            target = int(last * fraction)
            proc = worker(database_url, "--batch", "20", "--poll", "0.2")
            try:
                loop = asyncio.get_running_loop()
                deadline = loop.time() + 120
                while await position(conn) < target:  # wait on the position, then kill mid-stream
                    assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
                    assert loop.time() < deadline, f"worker did not reach seq {target}"
                    await asyncio.sleep(0.01)
            finally:
                proc.send_signal(signal.SIGKILL)
                rc, _ = await finish(proc)
            assert rc == -signal.SIGKILL
            killed_at.append(await position(conn))
        assert killed_at == sorted(killed_at) and killed_at[-1] < last  # it really was killed before the end

        rc, err = await finish(worker(database_url, "--drain", "--batch", "20"))
        assert rc == 0, err
        assert await position(conn) == last

        got, want = await ctgen.projection_rows(conn), await ctgen.projection_rows(clean)
        for table in want:
            assert got[table] == want[table], table
        assert len(want["resources"]) > 1000
    finally:
        await conn.close()
        await clean.close()
        await _drop_database(clean_url)


async def test_sigterm_finishes_the_batch_and_exits_cleanly(database_url: str) -> None:
    conn = await connect(database_url)
    try:
        await append(conn, ctgen.entries(RECORDS[:600]), keep_read_only=False)
        proc = worker(database_url, "--batch", "10", "--poll", "0.2")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while await position(conn) == 0:
            assert proc.poll() is None and loop.time() < deadline
            await asyncio.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        rc, err = await finish(proc)
        assert rc == 0, err
        assert "SIGTERM: finishing the current batch" in err
        stopped = await position(conn)
        # whatever it committed is consistent: every cost event is at or below the checkpoint
        assert await conn.fetchval("SELECT coalesce(max(seq), 0) FROM cost_events") <= stopped
    finally:
        await conn.close()
