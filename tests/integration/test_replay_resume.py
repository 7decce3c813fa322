"""An interrupted replay (an exception after a shadow commit; kill -9 of the CLI half-way) leaves the live
projections exactly as they were, and rerunning it resumes from the shadow's checkpoint and finishes it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from asyncio.subprocess import PIPE
from pathlib import Path
from typing import Any

import pytest

from projections.db import connect
from streams.log.postgres import append
from streams.replay import shadow
from streams.replay.replay import ReplayOptions, replay
from tests.integration import ctgen
from tests.integration.test_replay import RECORDS, STRICT_TOML, clean_fold, drain, prices, rows, strict

pytestmark = pytest.mark.integration


class Interrupt(Exception):
    pass


class StopAt:
    """A progress sink that interrupts the replay right after the shadow commit that passes `seq`."""

    def __init__(self, seq: int) -> None:
        self.seq = seq

    def target(self, position: int) -> None:
        pass

    def phase(self, text: str) -> None:
        pass

    def at(self, position: int) -> None:
        if position >= self.seq:
            raise Interrupt(position)


async def shadow_position(conn: Any) -> int:
    if not await shadow.exists(conn):
        return 0
    return int(await conn.fetchval(f"SELECT coalesce(max(position), 0) FROM {shadow.SCHEMA}.checkpoints"))


async def public_tables(conn: Any) -> dict[str, str]:
    """md5 of every row of every table in the live schema: whatever the runner writes, a shadow build must not."""
    names = [r["tablename"] for r in await conn.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")]
    return {t: await conn.fetchval(
        f"SELECT md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM public.{t} x") for t in names}


async def test_an_interrupted_replay_resumes_and_never_touched_the_live_tables(database_url: str,
                                                                               tmp_path: Path) -> None:
    conn = await connect(database_url)
    try:
        await append(conn, ctgen.entries(RECORDS), keep_read_only=False)
        await drain(database_url)
        live = await rows(database_url)
        every_table = await public_tables(conn)
        policy = strict(tmp_path)
        with pytest.raises(Interrupt):
            await replay(database_url, prices(), ReplayOptions(policy=policy, batch=20), StopAt(150))
        assert await rows(database_url) == live  # untouched
        assert await public_tables(conn) == every_table  # nothing at all in the live schema, byte for byte
        assert await conn.fetchval("SELECT generation FROM projection_generation") == 0
        assert await shadow_position(conn) == 160  # 8 batches of 20 committed to the shadow

        result = await replay(database_url, prices(), ReplayOptions(policy=policy, batch=20))
        assert result.resumed
        assert result.entries == 342 - 160  # only the rest was folded
        assert await rows(database_url) == await clean_fold(RECORDS, policy)
    finally:
        await conn.close()


async def test_other_options_discard_an_interrupted_shadow(database_url: str, tmp_path: Path) -> None:
    conn = await connect(database_url)
    try:
        await append(conn, ctgen.entries(RECORDS), keep_read_only=False)
        await drain(database_url)
        with pytest.raises(Interrupt):
            await replay(database_url, prices(), ReplayOptions(policy=strict(tmp_path), batch=20), StopAt(100))
        result = await replay(database_url, prices(), ReplayOptions(batch=20))  # default policy now
        assert not result.resumed and result.entries == 342
        assert await rows(database_url) == await clean_fold(RECORDS, None)
    finally:
        await conn.close()


async def test_kill_9_half_way_then_rerun_finishes_it(database_url: str, tmp_path: Path) -> None:
    conn = await connect(database_url)
    policy_file = tmp_path / "strict.toml"
    policy_file.write_text(STRICT_TOML, encoding="utf-8")
    env = os.environ | {"DATABASE_URL": database_url}
    try:
        await append(conn, ctgen.entries(RECORDS), keep_read_only=False)
        await drain(database_url)
        live = await rows(database_url)
        argv = [sys.executable, "-m", "ops", "replay", "--policy", str(policy_file), "--batch", "1"]
        child = await asyncio.create_subprocess_exec(*argv, env=env, stdout=PIPE, stderr=PIPE)
        try:
            for _ in range(60_000):  # until half-way (of 342), by position
                if await shadow_position(conn) >= 100:
                    break
                assert child.returncode is None, (await child.communicate())[1].decode()[-2000:]
                await asyncio.sleep(0.005)
            child.send_signal(signal.SIGKILL)
        finally:
            await child.communicate()
        assert child.returncode == -signal.SIGKILL
        assert await rows(database_url) == live  # the live projections were never touched
        killed_at = await shadow_position(conn)
        assert 100 <= killed_at < 342

        done = await asyncio.create_subprocess_exec(*argv, "--format", "json", env=env, stdout=PIPE, stderr=PIPE)
        out, err = await asyncio.wait_for(done.communicate(), 300)
        assert done.returncode == 0, err.decode()[-3000:]
        summary = json.loads(out)
        assert summary["resumed"] is True
        assert summary["entries_folded"] == 342 - killed_at
        assert (summary["anomalies_before"], summary["anomalies_after"]) == (15, 6)
        assert await rows(database_url) == await clean_fold(RECORDS, strict(tmp_path))
    finally:
        await conn.close()
