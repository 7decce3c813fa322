"""Replay into shadow tables + atomic swap (streams/replay), against real Postgres.

Hand-checkable anchors: the ctgen log (RECORDS: 400 records, seed 11; 342 logged, the rest read-only) folded with
the default policy gives 15 anomalies - 7 info, 2 low, 5 medium, 1 high. A "strict" policy with
record_floor = "medium" keeps the 6 at medium and above, which a clean fold of the same log with that policy (a
second database) gives too, row for row.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from projections.db import connect
from streams.log.postgres import append, head
from streams.pipeline import RUNNER_NAME
from streams.prices.table import PriceTable, load_default_prices
from streams.replay import shadow
from streams.replay.replay import ReplayError, ReplayOptions, replay
from streams.runner.postgres import PostgresRunner, RunStats
from streams.score.policy import load_policy, policy_to_mapping
from tests.conftest import _create_database, _drop_database
from tests.integration import ctgen

pytestmark = pytest.mark.integration

RECORDS = ctgen.generated_records(400, seed=11)
STRICT_TOML = 'name = "strict"\nrecord_floor = "medium"\n'
# Compared between two databases: everything but the checkpoint bookkeeping (replay names its own runner).
TABLES = ("cost_events", "baselines", "anomalies", "resources", "fold_metrics", "dead_letters")


@cache
def prices() -> PriceTable:
    return load_default_prices()


def strict(tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "strict.toml"
    path.write_text(STRICT_TOML, encoding="utf-8")
    return policy_to_mapping(load_policy(path))


async def drain(url: str, **kwargs: Any) -> RunStats:
    return await PostgresRunner(url, prices(), retry_delay=0.01, **kwargs).run(drain=True)


async def rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
    conn = await connect(url)
    try:
        got = await ctgen.projection_rows(conn)
    finally:
        await conn.close()
    return {t: got[t] for t in TABLES}


async def clean_fold(records: list[dict[str, Any]], policy: dict[str, Any] | None) -> dict[str, list[tuple]]:
    """The reference: a fresh database, the policy stored for the tenant, one plain drain."""
    url = await _create_database()
    try:
        conn = await connect(url)
        try:
            if policy is not None:
                await conn.execute("INSERT INTO tenants (tenant_id, name, policy) VALUES ('default', 'default', $1)",
                                   policy)
            await append(conn, ctgen.entries(records), keep_read_only=False)
        finally:
            await conn.close()
        await drain(url)
        return await rows(url)
    finally:
        await _drop_database(url)


def severities(table_rows: list[tuple[Any, ...]]) -> Counter[str]:
    return Counter(r[4] for r in table_rows)  # anomalies: (id, tenant, account, type, severity, ...)


async def test_replay_with_a_stricter_policy_equals_a_clean_fold_and_is_stored(database_url: str,
                                                                              tmp_path: Path) -> None:
    conn = await connect(database_url)
    try:
        await append(conn, ctgen.entries(RECORDS), keep_read_only=False)
        await drain(database_url)
        before = await rows(database_url)
        assert severities(before["anomalies"]) == Counter({"info": 7, "low": 2, "medium": 5, "high": 1})

        policy = strict(tmp_path)
        result = await replay(database_url, prices(), ReplayOptions(policy=policy, batch=64))
        assert (result.mode, result.position, result.generation) == ("full", 342, 1)
        assert (result.anomalies_before, result.anomalies_after) == (15, 6)

        after = await rows(database_url)
        assert severities(after["anomalies"]) == Counter({"medium": 5, "high": 1})
        assert after == await clean_fold(RECORDS, policy)
        assert {r["p"] for r in await conn.fetch("SELECT data->>'policy' AS p FROM anomalies")} <= {"strict"}
        # stored for the live worker, in the same transaction
        stored = await conn.fetchval("SELECT policy FROM tenants WHERE tenant_id = 'default'")
        assert (stored["name"], stored["record_floor"]) == ("strict", "medium")
        assert await conn.fetchval("SELECT generation FROM projection_generation") == 1
        # the shadow is gone, and the feed_id sequence still belongs to the (new) anomalies table
        assert not await shadow.exists(conn)
        assert await conn.fetchval("SELECT to_regnamespace($1)", shadow.SCHEMA) is None
        assert await shadow.owned_sequences(conn, "public", "anomalies") == [("anomalies_feed_id_seq", "feed_id")]
        indexes = {r["indexname"] for r in await conn.fetch(
            "SELECT indexname FROM pg_indexes WHERE schemaname = 'public' AND tablename = 'anomalies'")}
        assert {"anomalies_pkey", "anomalies_feed_id_key", "anomalies_tenant_time", "anomalies_data",
                "anomalies_tenant_rank_time"} <= indexes
        checkpoint = await conn.fetchrow("SELECT position, applied FROM checkpoints WHERE runner = $1", RUNNER_NAME)
        assert tuple(checkpoint) == (result.position, result.position)
    finally:
        await conn.close()


async def test_replaying_twice_gives_the_same_result_as_once(database_url: str, tmp_path: Path) -> None:
    conn = await connect(database_url)
    try:
        await append(conn, ctgen.entries(RECORDS), keep_read_only=False)
        await drain(database_url)
        policy = strict(tmp_path)
        await replay(database_url, prices(), ReplayOptions(policy=policy))
        once = await rows(database_url)
        second = await replay(database_url, prices(), ReplayOptions(policy=policy))
        assert second.generation == 2
        assert await rows(database_url) == once
        # and a worker run after it changes nothing (it reloads, finds nothing new)
        stats = await drain(database_url)
        assert stats.entries == 0
        assert await rows(database_url) == once
    finally:
        await conn.close()


async def test_a_second_replay_at_the_same_time_is_refused(database_url: str) -> None:
    holder = await connect(database_url)
    try:
        await holder.execute("SELECT pg_advisory_lock(hashtextextended('dd0c-replay', 0))")
        with pytest.raises(ReplayError, match="another replay"):
            await replay(database_url, prices(), ReplayOptions())
    finally:
        await holder.close()


async def wait_for_live(conn: Any, live: PostgresRunner) -> int:
    """Until the live worker has committed the head of the log (waits on a position, not a time)."""
    last = await head(conn)
    for _ in range(3000):
        at = await conn.fetchval("SELECT position FROM checkpoints WHERE runner = $1", RUNNER_NAME)
        if at == last and live.stats.position == last:
            return last
        await asyncio.sleep(0.01)
    raise AssertionError(f"live worker stuck at {live.stats.position}, log at {last}")


async def shadow_started(conn: Any) -> bool:
    """The shadow runner has committed its first batch."""
    if not await shadow.exists(conn):
        return False
    try:
        return bool(await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {shadow.SCHEMA}.checkpoints)"))
    except Exception:  # dropped by the swap between the two queries
        return True


async def test_replay_while_the_live_worker_keeps_folding(database_url: str, tmp_path: Path) -> None:
    """Entries keep arriving and a live worker keeps folding them during the replay; after the swap it goes on
    (its next commit hits StaleState, it reloads) and the end result equals a clean fold with the new policy."""
    conn = await connect(database_url)
    live = PostgresRunner(database_url, prices(), batch=7, poll_interval=0.05, retry_delay=0.01)
    worker = asyncio.create_task(live.run())
    replaying: asyncio.Task[Any] | None = None
    try:
        await append(conn, ctgen.entries(RECORDS[:250]), keep_read_only=False)
        await wait_for_live(conn, live)
        policy = strict(tmp_path)
        replaying = asyncio.create_task(replay(database_url, prices(), ReplayOptions(policy=policy, batch=4)))
        for _ in range(20_000):  # until the shadow has committed its first batch (a position, not a time)
            if replaying.done() or await shadow_started(conn):
                break
            await asyncio.sleep(0.005)
        for i in range(250, 350, 10):  # arrives while the shadow is being built, folded live meanwhile
            await append(conn, ctgen.entries(RECORDS[i:i + 10]), keep_read_only=False)
        result = await replaying
        assert result.generation == 1
        await append(conn, ctgen.entries(RECORDS[350:]), keep_read_only=False)  # after the swap
        await wait_for_live(conn, live)
        assert live._generation == 1  # its commit after the swap hit StaleState: it reloaded the new tables
        live.stop()
        await worker
        assert await rows(database_url) == await clean_fold(RECORDS, policy)
    finally:
        live.stop()
        await asyncio.gather(worker, *([replaying] if replaying else []), return_exceptions=True)
        await conn.close()


async def test_a_subset_is_swapped_at_exactly_the_live_position(database_url: str, tmp_path: Path) -> None:
    """--projection anomalies while the live worker has folded only part of the log: the swapped anomalies
    correspond to the live checkpoint, not to the head, and the other tables are untouched."""
    conn = await connect(database_url)
    try:
        await append(conn, ctgen.entries(RECORDS[:200]), keep_read_only=False)
        await drain(database_url)
        folded = await head(conn)
        await append(conn, ctgen.entries(RECORDS[200:]), keep_read_only=False)  # not folded yet
        before = await rows(database_url)
        policy = strict(tmp_path)
        result = await replay(database_url, prices(), ReplayOptions(projection=("anomalies",), policy=policy))
        assert (result.mode, result.position, result.tables) == ("partial", folded, ("anomalies",))
        after = await rows(database_url)
        for table in ("cost_events", "baselines", "resources", "fold_metrics", "dead_letters"):
            assert after[table] == before[table], table
        assert await conn.fetchval("SELECT position FROM checkpoints WHERE runner = $1", RUNNER_NAME) == folded
        assert await conn.fetchval("SELECT max(seq) FROM anomalies") <= folded
        # the worker then folds the rest with the stored policy: the same as a clean fold with it
        await drain(database_url)
        assert await rows(database_url) == await clean_fold(RECORDS, policy)
    finally:
        await conn.close()
