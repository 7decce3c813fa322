"""Replay scope and side effects: one tenant of an all-tenant worker, dead letters that never double, and a price
snapshot that the live worker adopts with the swap."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from projections.db import connect
from streams.log.postgres import append
from streams.prices.stored import fingerprint
from streams.prices.table import load_prices
from streams.replay.replay import ReplayError, ReplayOptions, replay
from streams.runner.postgres import PostgresRunner
from tests.integration import ctgen
from tests.integration.test_replay import RECORDS, drain, prices, rows, strict

pytestmark = pytest.mark.integration


async def test_one_tenant_is_replayed_and_the_others_are_untouched(database_url: str, tmp_path: Path) -> None:
    conn = await connect(database_url)
    try:
        await append(conn, ctgen.entries(RECORDS, tenant="default") + ctgen.entries(RECORDS, tenant="acme"),
                     keep_read_only=False)
        await drain(database_url)  # one all-tenant worker
        before = await rows(database_url)
        per_tenant = Counter(r[1] for r in before["anomalies"])
        assert per_tenant == Counter({"default": 15, "acme": 15})

        result = await replay(database_url, prices(),
                              ReplayOptions(tenant="acme", policy=strict(tmp_path), policy_tenant="acme"))
        assert (result.mode, result.live_runner, result.position) == ("partial", "fold-v1", 684)
        assert (result.anomalies_before, result.anomalies_after) == (15, 6)
        after = await rows(database_url)
        assert Counter(r[1] for r in after["anomalies"]) == Counter({"default": 15, "acme": 6})
        for table, table_rows in after.items():  # default's rows: identical, whatever the table
            if table != "dead_letters":
                assert [r for r in table_rows if "default" in r[:2]] == [r for r in before[table] if "default" in r[:2]]
        policies = dict(await conn.fetch("SELECT tenant_id, policy->>'record_floor' FROM tenants"))
        assert policies == {"acme": "medium"}
    finally:
        await conn.close()


async def test_per_tenant_workers_need_a_tenant_replay(database_url: str) -> None:
    conn = await connect(database_url)
    try:
        await append(conn, ctgen.entries(RECORDS[:50], tenant="acme"), keep_read_only=False)
        await drain(database_url, tenant="acme")
        with pytest.raises(ReplayError, match="replay each tenant with --tenant"):
            await replay(database_url, prices(), ReplayOptions())
        result = await replay(database_url, prices(), ReplayOptions(tenant="acme"))
        assert (result.mode, result.live_runner) == ("full", "fold-v1:acme")
    finally:
        await conn.close()


async def test_normalize_dead_letters_are_replaced_never_doubled(database_url: str) -> None:
    broken = ctgen.run_instances(7, at=datetime(2024, 5, 1, 9, tzinfo=UTC))
    broken["responseElements"]["instancesSet"]["items"] = "nope"
    conn = await connect(database_url)
    try:
        await append(conn, ctgen.entries([ctgen.run_instances(6, at=datetime(2024, 5, 1, 8, tzinfo=UTC)), broken]))
        await conn.execute(  # a reader's dead letter (not the fold's): replay must leave it alone
            "INSERT INTO dead_letters (tenant_id, stage, source, locator, reason, raw)"
            " VALUES ('default', 'read', 'x.json.gz', 'record 3', 'not an object', '\\x00')"
        )
        await drain(database_url)
        for _ in range(2):
            await replay(database_url, prices(), ReplayOptions())
            stages = Counter(r["stage"] for r in await conn.fetch("SELECT stage FROM dead_letters"))
            assert stages == Counter({"read": 1, "normalize": 1})
        locator = await conn.fetchval("SELECT locator FROM dead_letters WHERE stage = 'normalize'")
        assert locator == f"eventID={ctgen.event_id(7)}"
    finally:
        await conn.close()


async def test_replay_with_other_prices_stores_them_for_the_live_worker(database_url: str, tmp_path: Path) -> None:
    """m5.large in us-east-1 at $0.192/h instead of the shipped $0.096: history is repriced, and a worker started
    with the shipped table prices a launch after the swap at $0.192 too."""
    data = prices().to_dict()
    data["services"]["ec2"]["prices"]["us-east-1"]["m5.large"] = 0.192
    path = tmp_path / "prices-doubled.json.gz"
    path.write_bytes(gzip.compress(json.dumps(data).encode()))
    records = [ctgen.run_instances(1, at=datetime(2024, 5, 1, 8, tzinfo=UTC), instance_type="m5.large", count=2)]
    conn = await connect(database_url)
    try:
        await append(conn, ctgen.entries(records), keep_read_only=False)
        await drain(database_url)
        assert await conn.fetchval("SELECT hourly_cost FROM cost_events") == pytest.approx(2 * 0.096)

        result = await replay(database_url, prices(), ReplayOptions(prices=load_prices(path)))
        assert result.mode == "full"
        assert await conn.fetchval("SELECT hourly_cost FROM cost_events") == pytest.approx(2 * 0.192)
        assert await conn.fetchval("SELECT sha256 FROM fold_prices") == fingerprint(load_prices(path))

        later = ctgen.run_instances(2, at=datetime(2024, 5, 1, 9, tzinfo=UTC) + timedelta(minutes=5))
        await append(conn, ctgen.entries([later]), keep_read_only=False)
        await PostgresRunner(database_url, prices()).run(drain=True)  # started with the shipped table
        costs = [r["hourly_cost"] for r in await conn.fetch("SELECT hourly_cost FROM cost_events ORDER BY seq")]
        assert costs == pytest.approx([2 * 0.192, 0.192])
    finally:
        await conn.close()


async def test_zombies_in_the_log_are_rebuilt_in_the_shadow_and_swapped(database_url: str) -> None:
    """The zombies projection is folded from the log too: the shadow has its tables, `all` swaps them, and the
    live ones are never written while the shadow is built."""
    from streams.zombies.events import detected_entry
    from streams.zombies.pure import Zombie

    at = datetime(2024, 5, 2, 6, tzinfo=UTC)
    nat = Zombie("default", "111122223333", "us-east-1", "nat-0abc", "nat_gateway", "idle_nat_gateway", 32.85,
                 {"bytes_out": 0})
    conn = await connect(database_url)
    try:
        await append(conn, [*ctgen.entries(RECORDS[:50]), detected_entry(nat, at, at, "scan-1")],
                     keep_read_only=False)
        await drain(database_url)
        before = [tuple(r) for r in await conn.fetch("SELECT tenant_id, zombie_id, status FROM zombies")]
        assert len(before) == 1 and before[0][2] == "open"
        result = await replay(database_url, prices(), ReplayOptions())
        assert "zombies" in result.tables
        assert [tuple(r) for r in await conn.fetch("SELECT tenant_id, zombie_id, status FROM zombies")] == before
        assert await conn.fetchval("SELECT count(*) FROM zombies") == 1  # not doubled by the shadow build
    finally:
        await conn.close()
