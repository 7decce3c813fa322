"""The Postgres runner: drain, replay, batch-size independence, rollback + reload, policies, standby, feed."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import pytest

from ops.ingest import ingest
from projections.db import connect
from streams.log.postgres import append, head
from streams.pipeline import FEED_CHANNEL, RUNNER_NAME
from streams.prices.table import PriceTable, load_default_prices
from streams.runner.postgres import PostgresRunner, RunnerError, RunStats, reset_projections
from streams.score import welford
from streams.score.policy import PolicyError
from tests.conftest import CORPUS, _create_database, _drop_database
from tests.integration import ctgen

pytestmark = pytest.mark.integration


@cache
def prices() -> PriceTable:
    return load_default_prices()


async def drain(url: str, **kwargs: object) -> RunStats:
    runner = PostgresRunner(url, prices(), retry_delay=0.01, **kwargs)  # type: ignore[arg-type]
    return await runner.run(drain=True)


def launched(records: list[dict]) -> list[str]:
    return [
        item["instanceId"]
        for r in records
        if r["eventName"] == "RunInstances" and not r.get("errorCode")
        for item in r["responseElements"]["instancesSet"]["items"]
    ]


def terminated(records: list[dict]) -> list[str]:
    return [i["instanceId"] for r in records if r["eventName"] == "TerminateInstances"
            for i in r["requestParameters"]["instancesSet"]["items"]]


RECORDS = ctgen.generated_records(400, seed=11)


async def test_drain_folds_the_log_and_replaying_a_position_changes_nothing(database_url: str) -> None:
    conn = await connect(database_url)
    try:
        appended = await append(conn, ctgen.entries(RECORDS), keep_read_only=False)
        last = await head(conn)
        stats = await drain(database_url, batch=50)
        assert stats.position == last
        assert stats.entries == appended.logged  # read-only records were counted, not stored, so never folded
        checkpoint = await conn.fetchrow("SELECT position, applied FROM checkpoints WHERE runner = $1", RUNNER_NAME)
        assert tuple(checkpoint) == (last, last)

        # What the generator made, counted by hand: one resource row per launched instance, closed when terminated.
        instances, gone = launched(RECORDS), terminated(RECORDS)
        states = Counter(r["state"] for r in await conn.fetch("SELECT state FROM resources"))
        assert states == Counter({"running": len(instances) - len(gone), "closed": len(gone)})
        failed = sum(1 for r in RECORDS if r.get("errorCode"))
        assert await conn.fetchval(
            "SELECT value FROM fold_metrics"
            " WHERE metric = 'failed_create_attempts' AND label = 'Client.VcpuLimitExceeded'"
        ) == failed
        events = await conn.fetchval("SELECT count(*) FROM cost_events")
        assert events > 0
        n_total = await conn.fetchval("SELECT sum(event_count) FROM baselines")
        assert n_total == await conn.fetchval("SELECT count(*) FROM cost_events WHERE priced")
        first = await ctgen.projection_rows(conn)

        again = await drain(database_url, batch=50)
        assert (again.entries, again.batches) == (0, 0)
        assert await ctgen.projection_rows(conn) == first

        await conn.execute("UPDATE checkpoints SET position = 0")  # replay the whole log
        replay = await drain(database_url, batch=50)
        assert replay.entries == 0 and replay.position == last
        assert await ctgen.projection_rows(conn) == first
    finally:
        await conn.close()


async def test_batch_size_does_not_change_any_projection(database_url: str) -> None:
    """Batch 3 vs batch 500 over the same log: identical tables, row by row (state reloads at every boundary)."""
    other = await _create_database()
    try:
        snapshots = []
        for url, batch in ((database_url, 3), (other, 500)):
            conn = await connect(url)
            try:
                await append(conn, ctgen.entries(RECORDS), keep_read_only=False)
                await drain(url, batch=batch)
                snapshots.append(await ctgen.projection_rows(conn))
            finally:
                await conn.close()
        assert snapshots[0] == snapshots[1]
        assert len(snapshots[0]["resources"]) == len(launched(RECORDS))
    finally:
        await _drop_database(other)


async def test_rebuild_from_the_log_gives_the_same_rows(database_url: str) -> None:
    conn = await connect(database_url)
    try:
        await append(conn, ctgen.entries(RECORDS[:150]), keep_read_only=False)
        await drain(database_url)
        before = await ctgen.projection_rows(conn)
        await reset_projections(conn)
        assert await conn.fetchval("SELECT count(*) FROM cost_events") == 0
        await drain(database_url)
        assert await ctgen.projection_rows(conn) == before
    finally:
        await conn.close()


async def test_a_failed_commit_rolls_back_and_the_state_is_reloaded(database_url: str) -> None:
    """The batch is folded in memory, its commit fails once: the retry must not fold it into the baselines twice."""
    other = await _create_database()
    conn = await connect(database_url)
    try:
        victim = next(r for r in RECORDS[200:] if r["eventName"] == "RunInstances" and not r.get("errorCode"))
        # A sequence is not transactional: the trigger fails the first insert of that event only.
        await conn.execute(
            f"""
            CREATE SEQUENCE fail_once;
            CREATE FUNCTION fail_once() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.event_id = '{victim["eventID"]}' AND nextval('fail_once') = 1 THEN
                    RAISE EXCEPTION 'injected failure';
                END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER fail_once BEFORE INSERT ON cost_events FOR EACH ROW EXECUTE FUNCTION fail_once();
            """
        )
        await append(conn, ctgen.entries(RECORDS), keep_read_only=False)
        stats = await drain(database_url, batch=40)
        assert await conn.fetchval("SELECT is_called FROM fail_once")  # the injected failure did happen
        assert stats.position == await head(conn)
        got = await ctgen.projection_rows(conn)

        clean = await connect(other)
        try:
            await append(clean, ctgen.entries(RECORDS), keep_read_only=False)
            await drain(other, batch=40)
            assert got == await ctgen.projection_rows(clean)
        finally:
            await clean.close()
    finally:
        await conn.close()
        await _drop_database(other)


async def test_each_tenant_is_scored_with_its_own_policy(database_url: str) -> None:
    conn = await connect(database_url)
    try:
        await conn.execute(
            "INSERT INTO tenants (tenant_id, name, policy) VALUES ('quiet', 'Quiet Ltd', $1)",
            {"record_floor": "critical", "band_critical_hourly": 1000.0},
        )
        records = RECORDS[:120]
        await append(conn, ctgen.entries(records, tenant="default") + ctgen.entries(records, tenant="quiet"),
                     keep_read_only=False)
        await drain(database_url)
        per_tenant = dict(await conn.fetch("SELECT tenant_id, count(*) FROM anomalies GROUP BY tenant_id"))
        assert per_tenant.get("quiet", 0) == 0
        assert per_tenant["default"] > 0
        policies = {r["p"] for r in await conn.fetch("SELECT data->>'policy' AS p FROM anomalies")}
        assert policies == {"default"}
        # both tenants priced the same events
        counts = dict(await conn.fetch("SELECT tenant_id, count(*) FROM cost_events GROUP BY tenant_id"))
        assert counts["quiet"] == counts["default"] > 0
    finally:
        await conn.close()


async def test_the_live_feed_is_notified_once_per_new_anomaly_batch(database_url: str) -> None:
    listener = await connect(database_url)
    conn = await connect(database_url)
    feed: asyncio.Queue[str] = asyncio.Queue()
    try:
        await listener.add_listener(FEED_CHANNEL, lambda _c, _p, _ch, payload: feed.put_nowait(payload))
        await append(conn, ctgen.entries(RECORDS[:60]), keep_read_only=False)
        await drain(database_url, batch=1000)  # one batch: one notification for the tenant
        assert await asyncio.wait_for(feed.get(), 10) == "default"
        assert await conn.fetchval("SELECT count(*) FROM anomalies") > 0
        await conn.execute("UPDATE checkpoints SET position = 0")
        await drain(database_url)  # a replay writes no anomaly, so it notifies nobody
        await append(conn, ctgen.entries(RECORDS[:60], tenant="acme"), keep_read_only=False)
        await drain(database_url)
        # NOTIFYs arrive in commit order: had the replay notified, "default" would come first.
        assert await asyncio.wait_for(feed.get(), 10) == "acme"
    finally:
        await listener.close()
        await conn.close()


async def test_a_second_worker_waits_as_hot_standby_and_takes_over(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="dd0c.runner")
    conn = await connect(database_url)
    first = PostgresRunner(database_url, prices(), batch=25, poll_interval=0.2)
    second = PostgresRunner(database_url, prices(), batch=25, poll_interval=0.2)
    try:
        await append(conn, ctgen.entries(RECORDS[:100]), keep_read_only=False)
        first_task = asyncio.create_task(first.run())
        await wait_for_position(conn, await head(conn))
        second_task = asyncio.create_task(second.run())
        await wait_until(
            conn,
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
            " WHERE l.locktype = 'advisory' AND NOT l.granted AND d.datname = current_database()",
            1,
        )  # only this test's database: other suites' standby workers may be waiting elsewhere
        assert "waiting as hot standby" in caplog.text

        # A drain beside a following worker waits for that worker to reach the head, folds nothing itself, and
        # returns: `ingest && worker --drain && anomalies` works whether or not a worker is running. Appended just
        # before, so the follower still has 100 entries to fold when the drain starts: a drain that did not wait
        # would come back behind the head.
        await append(conn, ctgen.entries(RECORDS[100:200]), keep_read_only=False)
        behind = await asyncio.wait_for(PostgresRunner(database_url, prices()).run(drain=True), 10)
        target = await head(conn)
        assert (behind.entries, behind.position) == (0, target)
        assert await conn.fetchval("SELECT position FROM checkpoints WHERE runner = $1", RUNNER_NAME) == target
        assert "nothing left to drain" in caplog.text
        assert first.stats.entries > 0 and second.stats.entries == 0
        first.stop()
        await asyncio.wait_for(first_task, 30)

        await append(conn, ctgen.entries(RECORDS[200:]), keep_read_only=False)
        await wait_for_position(conn, await head(conn))  # folded by the second worker, after taking over
        assert second.stats.entries > 0
        second.stop()
        await asyncio.wait_for(second_task, 30)
        assert "lock acquired, taking over" in caplog.text
        assert await conn.fetchval("SELECT count(*) FROM resources") == len(launched(RECORDS))
    finally:
        first.stop()
        second.stop()
        await conn.close()


async def test_all_tenant_and_per_tenant_workers_do_not_mix(database_url: str) -> None:
    conn = await connect(database_url)
    try:
        await append(conn, ctgen.entries(RECORDS[:20], tenant="acme"), keep_read_only=False)
        await drain(database_url, tenant="acme")
        assert await conn.fetchval("SELECT position FROM checkpoints WHERE runner = $1", f"{RUNNER_NAME}:acme") == (
            await head(conn)
        )
        with pytest.raises(RunnerError, match="cannot share one database"):
            await drain(database_url)
    finally:
        await conn.close()


async def test_drain_folds_the_invictus_corpus(database_url: str) -> None:
    """A real account's CloudTrail (invictus-ir): every stored entry is folded and the checkpoint reaches the head."""
    conn = await connect(database_url)
    try:
        report = await ingest(conn, [CORPUS / "invictus-ir_aws_dataset"], now=lambda: datetime(2023, 7, 11, tzinfo=UTC))
        assert report.total().read == 2900
        stats = await drain(database_url)
        assert stats.position == await head(conn) > 0
        assert await conn.fetchval("SELECT position FROM checkpoints WHERE runner = $1", RUNNER_NAME) == stats.position
        rows = await ctgen.projection_rows(conn)
        assert len(rows["cost_events"]) > 0
        again = await drain(database_url)
        assert again.entries == 0
        assert await ctgen.projection_rows(conn) == rows
    finally:
        await conn.close()


async def wait_for_position(conn: object, position: int) -> None:
    sql = f"SELECT count(*) FROM checkpoints WHERE runner = '{RUNNER_NAME}' AND position >= {position}"
    await wait_until(conn, sql, 1)


async def wait_until(conn: object, sql: str, expected: int) -> None:
    """Poll a position in the database until it is reached (the test waits on state; 30 s is only a guard)."""
    async with asyncio.timeout(30):
        while True:
            if await conn.fetchval(sql) >= expected:  # type: ignore[attr-defined]
                return
            await asyncio.sleep(0.05)  # the position lives in Postgres: there is no Event to await


async def test_a_small_history_gives_hand_checked_rows(database_url: str) -> None:
    """alice launches 1 x m5.large, 2 x m5.large, 1 x c5.xlarge; bob terminates the first; a p4d launch fails."""
    t = datetime(2024, 5, 1, 8, tzinfo=UTC)
    records = [
        ctgen.run_instances(1, at=t),
        ctgen.run_instances(2, at=t + timedelta(hours=1), count=2),
        ctgen.run_instances(3, at=t + timedelta(hours=2), instance_type="c5.xlarge"),
        ctgen.terminate_instances(4, [ctgen.instance_id(1, 0)], at=t + timedelta(hours=3)),
        ctgen.run_instances(5, at=t + timedelta(hours=4), instance_type="p4d.24xlarge",
                            error="Client.VcpuLimitExceeded"),
    ]
    conn = await connect(database_url)
    try:
        await append(conn, ctgen.entries(records))
        stats = await drain(database_url)
        assert (stats.entries, stats.cost_events) == (5, 3)
        events = await conn.fetch("SELECT event_id, ordinal, hourly_cost, priced, data FROM cost_events ORDER BY seq")
        assert [(r["event_id"][-1], r["ordinal"], r["hourly_cost"], r["priced"]) for r in events] == [
            ("1", 0, 0.096, True),  # m5.large us-east-1 on-demand
            ("2", 0, 0.192, True),  # two of them in one call
            ("3", 0, 0.17, True),  # c5.xlarge
        ]
        assert events[1]["data"]["quantity"] == 2.0 and events[1]["data"]["priced"] is True

        b = await conn.fetchrow(
            "SELECT mean_hourly_cost, stddev, event_count, observed_actors, state FROM baselines"
            " WHERE tenant_id = 'default' AND account_id = '111122223333' AND resource_type = 'ec2_instance'"
        )
        # mean (0.096 + 0.192 + 0.17) / 3 = 0.15267; sample stddev sqrt(0.0050587 / 2) = 0.05029
        assert (str(b["mean_hourly_cost"]), str(b["stddev"]), b["event_count"]) == ("0.1527", "0.0503", 3)
        assert b["observed_actors"] == ["arn:aws:iam::111122223333:user/alice"]
        exact = welford.from_values([0.096, 0.192, 0.17])  # the exact floats survive the JSONB round trip
        assert b["state"]["stats"] == {"n": 3, "mean": exact.mean, "m2": exact.m2}

        resources = {r["resource_id"][-8:]: (r["state"], r["hourly_cost"]) for r in await conn.fetch(
            "SELECT resource_id, state, hourly_cost FROM resources")}
        assert resources == {
            "01000000": ("closed", 0.096),
            "02000000": ("running", 0.096),
            "02000001": ("running", 0.096),
            "03000000": ("running", 0.17),
        }
        burning = await conn.fetchval("SELECT sum(hourly_cost) FROM resources WHERE state = 'running'")
        assert round(burning, 6) == 0.362
        assert [tuple(r) for r in await conn.fetch("SELECT metric, label, value FROM fold_metrics")] == [
            ("failed_create_attempts", "Client.VcpuLimitExceeded", 1)
        ]
        # Cold start, learning: novelty alone is only `info` - the first ec2_instance ever, then a new family (c5).
        anomalies = await conn.fetch("SELECT severity, severity_rank, seq, data FROM anomalies ORDER BY feed_id")
        assert [
            (a["severity"], a["severity_rank"], a["data"]["event_ids"], [r["signal"] for r in a["data"]["reasons"]])
            for a in anomalies
        ] == [
            ("info", 0, [ctgen.event_id(1)], ["first_resource_type"]),
            ("info", 0, [ctgen.event_id(3)], ["new_family"]),
        ]
        seq_of = {r["event_id"]: r["seq"] for r in await conn.fetch("SELECT event_id, seq FROM log")}
        assert [a["seq"] for a in anomalies] == [seq_of[ctgen.event_id(1)], seq_of[ctgen.event_id(3)]]
    finally:
        await conn.close()


async def test_a_record_normalize_rejects_is_dead_lettered_once(database_url: str) -> None:
    broken = ctgen.run_instances(7, at=datetime(2024, 5, 1, 9, tzinfo=UTC))
    broken["responseElements"]["instancesSet"]["items"] = "nope"
    conn = await connect(database_url)
    try:
        await append(conn, ctgen.entries([ctgen.run_instances(6, at=datetime(2024, 5, 1, 8, tzinfo=UTC)), broken]))
        stats = await drain(database_url)
        assert (stats.entries, stats.cost_events, stats.rejected) == (2, 1, 1)
        await conn.execute("UPDATE checkpoints SET position = 0")
        await drain(database_url)  # replayed: not dead-lettered again
        rows = await conn.fetch("SELECT tenant_id, stage, source, locator, reason, raw FROM dead_letters")
        assert len(rows) == 1
        dead = rows[0]
        assert (dead["tenant_id"], dead["stage"], dead["source"]) == ("default", "normalize", "generated")
        assert dead["locator"] == f"eventID={ctgen.event_id(7)}"
        assert "responseElements.instancesSet.items must be a list" in dead["reason"]
        assert json.loads(dead["raw"])["eventID"] == ctgen.event_id(7)
    finally:
        await conn.close()


async def test_a_bad_policy_file_stops_the_worker_at_start_without_retrying(database_url: str, tmp_path: Path) -> None:
    """Even with nothing to fold: a typo in DD0C_POLICY_FILE is a configuration error, named at once."""
    policy = tmp_path / "typo.toml"
    policy.write_text("z_treshold = 2.0\n")
    runner = PostgresRunner(database_url, prices(), policy_file=policy, retry_delay=30)
    with pytest.raises(PolicyError, match="z_treshold"):
        await asyncio.wait_for(runner.run(drain=True), 10)
