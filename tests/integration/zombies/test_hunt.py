"""The zombie hunter end to end: moto over HTTP -> scan -> log entries -> worker -> zombies projection.

A seeded account (seed.py: one of each zombie and a healthy twin of each) gives exactly the nine zombies with the
dollar figures worked out in seed.py; faults come from a real HTTP proxy in front of moto (conftest.FaultProxy).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from projections.db import create_pool
from projections.zombies import queries
from streams.log.writer import PostgresLogWriter
from streams.prices.table import load_default_prices
from streams.runner.postgres import PostgresRunner, reset_projections
from streams.zombies.hunt import HuntReport, SimpleTarget, hunt_account
from streams.zombies.pure import ALL_CHECKS, CheckThresholds
from streams.zombies.scan import scan_account, session_client_factory
from tests.integration.zombies.conftest import Aws, FaultProxy
from tests.integration.zombies.seed import DAY, EXPECTED_WASTE, TOTAL_WASTE, seed

PRICES = load_default_prices()
TENANT = "acme"
# The seeded snapshots are 40 days old; the tenant lowers the 90-day default to 30 (a tenant threshold).
TENANT_THRESHOLDS = {"snapshot_age_days": 30}


@asynccontextmanager
async def pool_for(url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(url)
    try:
        await pool.execute(
            "INSERT INTO tenants (tenant_id, name, zombie_thresholds) VALUES ($1, $1, $2::jsonb)"
            " ON CONFLICT DO NOTHING", TENANT, TENANT_THRESHOLDS,
        )
        yield pool
    finally:
        await pool.close()


async def hunt(pool: asyncpg.Pool, aws: Aws, now: Any, *, endpoint: str | None = None,
               regions: tuple[str, ...] = ("us-east-1",), slept: list[float] | None = None) -> HuntReport:
    target = SimpleTarget(TENANT, aws.account_id, regions)
    return await hunt_account(
        pool, PostgresLogWriter(pool), target, aws.session(endpoint), prices=PRICES, now=now,
        sleep=(slept.append if slept is not None else None),
    )


async def drain(url: str) -> None:
    await PostgresRunner(url, PRICES).run(drain=True)


def by_check(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out = {r["check"]: r for r in rows}
    assert len(out) == len(rows), "one zombie per check expected"
    return out


def test_seeded_account_one_of_each_zombie_and_no_twin(aws: Aws) -> None:
    """Nine zombies, one per check, with seed.py's dollar figures ($85.757/month in all); no twin is reported."""
    seeded = seed(aws)
    result = scan_account(
        session_client_factory(aws.session()), tenant=TENANT, account_id=aws.account_id, now=seeded.hunt_now,
        thresholds=CheckThresholds.from_mapping(TENANT_THRESHOLDS), prices=PRICES, regions=["us-east-1"],
    )
    assert (result.status, result.region_errors) == ("ok", ())
    assert sorted((z.check, z.resource_id) for z in result.found) == sorted(seeded.zombies.items())
    assert [z for z in result.zombies if z.status != "zombie"] == []
    waste = {z.check: z.monthly_waste_usd for z in result.found}
    assert waste == pytest.approx(EXPECTED_WASTE)
    assert sum(waste.values()) == pytest.approx(TOTAL_WASTE)
    found_ids = {z.resource_id for z in result.found}
    assert not found_ids & set(seeded.twins.values())
    assert set(result.completed) == {("us-east-1", c) for c in ALL_CHECKS}

    z = {z.check: z for z in result.found}
    # Absent datapoints (no traffic put for the idle NAT and ALB): zero, because both are older than 14 days.
    nat = z["idle_nat_gateway"].evidence["metric"]
    assert (nat["datapoints"], nat["absent_datapoints"], nat["absent_counted_as_zero"], nat["total"]) == (
        0, 14, True, 0.0)
    # The idle instance's evidence: 14 daily CPU averages of 1 %, 2 KB a day of network.
    cpu, net = z["idle_ec2_instance"].evidence["metrics"]
    assert (cpu["measure"], cpu["daily_values"], cpu["idle_at_most"]) == ("cpu_percent_daily_average", [1.0] * 14, 5.0)
    assert (net["peak_day"], net["datapoints"]) == (2000.0, 14)
    assert z["idle_rds_instance"].evidence["metrics"][0]["daily_values"] == [0.0] * 14
    assert z["stopped_instance"].evidence["stopped_days"] == pytest.approx(40.0, abs=0.01)
    assert z["stopped_instance"].evidence["volumes"] == [seeded.zombies["stopped_instance_volume"]]
    assert z["orphaned_ebs_snapshot"].evidence["used_by_ami"] is False
    assert z["unattached_ebs_volume"].evidence["price"]["unit_price_usd"] == 0.08


def test_calls_are_batched_per_resource_type(aws: Aws, proxy: FaultProxy) -> None:
    """One call per listing, one GetMetricData for all 8 EC2/NAT/ALB/RDS series groups of a check, and only the
    busy ALB's one target group asked for its health."""
    seeded = seed(aws)
    result = scan_account(
        session_client_factory(aws.session(proxy.url)), tenant=TENANT, account_id=aws.account_id,
        now=seeded.hunt_now, thresholds=CheckThresholds.from_mapping(TENANT_THRESHOLDS), prices=PRICES,
        regions=["us-east-1"],
    )
    assert len(result.found) == 9
    actions = [a for _, _, a in proxy.seen]
    assert actions.count("GetMetricData") == 4  # NAT, load balancers, EC2 (6 series), RDS (2 series)
    assert actions.count("DescribeInstances") == 1  # shared by three checks
    assert actions.count("DescribeAddresses") == 1  # shared by two checks
    assert actions.count("DescribeTargetHealth") == 1
    assert result.calls_made == len(proxy.seen) == 19


async def test_scan_to_projection_resolve_and_replay(aws: Aws, database_url: str) -> None:
    """Scan -> log -> worker: nine open zombies totalling $85.757. The same scan again appends nothing new. The
    volume deleted, the next day's scan resolves it (and only it). Replay rebuilds identical rows."""
    seeded = seed(aws)
    now = seeded.hunt_now
    async with pool_for(database_url) as pool:
        first = await hunt(pool, aws, now)
        assert (first.appended.logged, first.appended.duplicate) == (10, 0)  # 9 detections + the run
        await drain(database_url)
        rows = await queries.list_zombies(pool, TENANT, status="all", now=now, limit=100)
        assert {r["check"]: r["resource_id"] for r in rows} == seeded.zombies
        assert {r["check"]: r["monthly_waste_usd"] for r in rows} == pytest.approx(EXPECTED_WASTE)
        assert {r["status"] for r in rows} == {"open"}
        totals = await queries.zombie_totals(pool, TENANT, now=now)
        assert (totals["count"], totals["monthly_waste_usd"]) == (9, pytest.approx(TOTAL_WASTE))
        assert totals["by_account"] == [
            {"account_id": aws.account_id, "count": 9, "monthly_waste_usd": pytest.approx(TOTAL_WASTE),
             "unpriced": 0}]

        again = await hunt(pool, aws, now)  # the same state, the same clock: every entry is a duplicate
        assert (again.appended.logged, again.appended.duplicate) == (0, 10)

        aws.client("ec2").delete_volume(VolumeId=seeded.zombies["unattached_ebs_volume"])
        later = await hunt(pool, aws, now + DAY)
        assert later.resolved == 1
        assert (later.appended.logged, later.appended.duplicate) == (10, 0)  # 8 re-detections, 1 resolved, the run
        await drain(database_url)
        rows = by_check(await queries.list_zombies(pool, TENANT, status="all", now=now + DAY, limit=100))
        gone = rows["unattached_ebs_volume"]
        assert (gone["status"], gone["resolved_at"], gone["last_seen"]) == ("resolved", now + DAY, now)
        kept = rows["idle_nat_gateway"]
        assert (kept["status"], kept["first_seen"], kept["last_seen"]) == ("open", now, now + DAY)
        totals = await queries.zombie_totals(pool, TENANT, now=now + DAY)
        assert (totals["count"], totals["monthly_waste_usd"]) == (8, pytest.approx(TOTAL_WASTE - 8.0))
        scans = await queries.list_scans(pool, TENANT)
        assert [(s["status"], s["zombies_found"], s["resolved"]) for s in scans] == [("ok", 8, 1), ("ok", 9, 0)]

        before = await pool.fetch("SELECT zombie_id, data FROM zombies ORDER BY zombie_id")
        async with pool.acquire() as conn:
            await reset_projections(conn)
        assert await pool.fetchval("SELECT count(*) FROM zombies") == 0
        await drain(database_url)
        after = await pool.fetch("SELECT zombie_id, data FROM zombies ORDER BY zombie_id")
        assert [dict(r) for r in after] == [dict(r) for r in before]
        assert await pool.fetchval("SELECT count(*) FROM zombie_scans") == 2


async def test_denied_region_makes_the_run_partial_and_resolves_nothing_there(
    aws: Aws, proxy: FaultProxy, database_url: str
) -> None:
    """R15 over HTTP: us-west-2's EC2 calls are denied (an SCP). The run is `partial` with the reasons; the
    us-east-1 zombies are all found; the us-west-2 volume found by the first (clean) scan stays open."""
    seeded = seed(aws)
    now = seeded.hunt_now
    west = aws.client("ec2", "us-west-2")
    west_vol = west.create_volume(Size=10, VolumeType="gp2", AvailabilityZone="us-west-2a")["VolumeId"]
    regions = ("us-east-1", "us-west-2")
    async with pool_for(database_url) as pool:
        await hunt(pool, aws, now, endpoint=proxy.url, regions=regions)
        await drain(database_url)
        proxy.deny("us-west-2")
        report = await hunt(pool, aws, now + DAY, endpoint=proxy.url, regions=regions)
        await drain(database_url)

        result = report.result
        assert result.status == "partial"
        assert {(e.region, e.code) for e in result.region_errors} == {("us-west-2", "UnauthorizedOperation")}
        denied = {e.operation for e in result.region_errors}
        assert {"DescribeVolumes", "DescribeSnapshots", "DescribeAddresses", "DescribeInstances"} <= denied
        assert sorted((z.check, z.resource_id) for z in result.found) == sorted(seeded.zombies.items())
        assert report.resolved == 0
        rows = await queries.list_zombies(pool, TENANT, status="open", now=now + DAY, limit=100)
        assert {r["resource_id"] for r in rows} == {*seeded.zombies.values(), west_vol}
        [scan] = [s for s in await queries.list_scans(pool, TENANT) if s["status"] == "partial"]
        assert {e["region"] for e in scan["errors"]} == {"us-west-2"}
        assert ("us-west-2", "unattached_ebs_volume") not in {tuple(c) for c in scan["completed"]}


async def test_throttled_call_is_retried_and_recorded(aws: Aws, proxy: FaultProxy, database_url: str) -> None:
    """DescribeAddresses answers RequestLimitExceeded twice: backed off 0.5 s then 1 s, third try succeeds; the
    run is ok, the Elastic IP zombie is found, and the run record says 2 retries."""
    seeded = seed(aws)
    rule = proxy.throttle("us-east-1", "DescribeAddresses", times=2)
    slept: list[float] = []
    async with pool_for(database_url) as pool:
        report = await hunt(pool, aws, seeded.hunt_now, endpoint=proxy.url, slept=slept)
        await drain(database_url)
        assert (report.result.status, report.result.retries, rule.hits, slept) == ("ok", 2, 2, [0.5, 1.0])
        assert seeded.zombies["unassociated_eip"] in {z.resource_id for z in report.result.found}
        [scan] = await queries.list_scans(pool, TENANT)
        assert (scan["status"], scan["retries"], scan["zombies_found"]) == ("ok", 2, 9)


async def test_open_zombies_for_the_digest(aws: Aws, database_url: str) -> None:
    """`open_zombies` lists open ones largest waste first: NAT $32.85 first, stopped instance $0.00 last."""
    seeded = seed(aws)
    async with pool_for(database_url) as pool:
        await hunt(pool, aws, seeded.hunt_now)
        await drain(database_url)
        items = await queries.open_zombies(pool, TENANT, now=seeded.hunt_now + timedelta(hours=1))
        assert [i["check"] for i in items][:2] == ["idle_nat_gateway", "idle_load_balancer"]
        assert items[-1]["check"] == "stopped_instance" and items[-1]["monthly_waste_usd"] == 0.0
        assert sum(i["monthly_waste_usd"] for i in items) == pytest.approx(TOTAL_WASTE)
