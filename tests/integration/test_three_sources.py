"""Issue 4's "done when": one tenant, three registered accounts, each delivering its CloudTrail another way - A's
trail bucket polled (moto over HTTP), B's files through the agent to the gRPC server (real TLS), C's pushed to
POST /v1/ingest/cloudtrail with an API key - folds to the same anomalies, cost events, baselines and resources as
the same records given to plain `dd0c-cost ingest` in a database of their own. Then every source delivers again
(positions forgotten, a fresh agent spool, the same pushes) and nothing changes.

Each account: one m5.large launched by alice every day from 2024-05-01 to 05-12 (and one DescribeInstances a day,
counted not stored; bob terminates the first instance on 05-03), then a p4d.24xlarge on 05-13. By hand, with
ops/policies/default.toml and the price table (m5.large $0.096/h, p4d.24xlarge $21.957642/h in us-east-1):
  * the first m5.large: info - everything is new, and the baseline is learning (novelty capped at info);
  * the other 11 m5.large: nothing - same actor, family and region, $0.096/h is under every band, z = 0;
  * the p4d: critical - z = (21.957642 - 0.096) / max(5% x 0.096, 0.001) = 4554.5 >= 6 with +$21.86/h >= $10/h,
    12 launches over 12 days so no longer learning, and a new family raises it (critical stays critical).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from cryptography.fernet import Fernet

from ops.devpki import Pki
from projections.db import connect, create_pool
from streams.accounts import SecretBox, TrailLocation, add_account, create_api_key, get_account
from streams.log.writer import open_log_writer
from streams.poller.poll import Poller, PollReport
from streams.poller.source import Sessions, Target
from streams.prices.table import load_default_prices
from streams.runner.postgres import PostgresRunner
from tests.conftest import ROOT, _create_database, _drop_database
from tests.integration import ctgen
from tests.integration.accounts.conftest import make_settings
from tests.integration.agent.conftest import TENANT, pki, token  # noqa: F401  (fixtures)
from tests.integration.agent.support import (
    Proc,
    agent_argv,
    agent_env,
    free_port,
    server_env,
    start_server,
)
from tests.integration.poller.conftest import delivery, key, moto_url, put, s3  # noqa: F401  (moto_url: fixture)
from tests.integration.test_api_rows import asgi_client

pytestmark = pytest.mark.integration

POLLED, AGENT, PUSHED = "111122223333", "444455556666", "777788889999"
FIRST_N = {POLLED: 1000, AGENT: 2000, PUSHED: 3000}  # event ids never collide across accounts
DAYS = [date(2024, 5, 1) + timedelta(days=i) for i in range(13)]  # 12 days of m5.large, the p4d on the 13th
PUSH = "/v1/ingest/cloudtrail"
P4D_US_EAST_1 = 21.957642  # $/h, streams/prices/data (us-east-1, Linux, on-demand)
M5_LARGE_US_EAST_1 = 0.096


def account_days(account: str) -> list[tuple[date, list[dict[str, Any]]]]:
    """One delivery per day: (day, records) in eventTime order."""
    first = FIRST_N[account]
    out = []
    for i, day in enumerate(DAYS):
        at = datetime(day.year, day.month, day.day, 9, tzinfo=UTC)
        n = first + 10 * i
        if day == DAYS[-1]:
            recs = [ctgen.run_instances(n, at=at, account=account, instance_type="p4d.24xlarge")]
        else:
            recs = [ctgen.run_instances(n, at=at, account=account),
                    ctgen.describe_instances(n + 1, at=at + timedelta(minutes=1), account=account)]
        if i == 2:  # bob terminates the first day's instance
            recs.append(ctgen.terminate_instances(n + 2, [ctgen.instance_id(first, 0)], at=at + timedelta(minutes=2),
                                                  account=account))
        out.append((day, recs))
    return out


def object_key(account: str, day: date) -> str:
    """The S3 key CloudTrail would give the day's delivery (09:05 UTC): also the relative path on disk."""
    return key(account, day, 5, hour=9)


def write_tree(root: Path, accounts: Sequence[str]) -> None:
    for account in accounts:
        for day, recs in account_days(account):
            path = root / object_key(account, day)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(delivery(recs))


async def register(url: str, box: SecretBox, bucket: str) -> None:
    """A: an access key pair and its trail bucket; B and C: no credentials (they are not polled)."""
    conn = await connect(url)
    try:
        await add_account(conn, box, TENANT, POLLED, name="polled", access_key_id="AKIATESTPOLLED000001",
                          secret_access_key="testing",
                          trail=TrailLocation(bucket=bucket, regions=("us-east-1",)))
        await add_account(conn, None, TENANT, AGENT, name="agent")
        await add_account(conn, None, TENANT, PUSHED, name="push")
    finally:
        await conn.close()


async def poll_bucket(url: str, moto: str, secret: str) -> PollReport:
    """Account A's registration -> Target -> its sealed key pair -> moto: the ingestion service's poll, once, for
    the 13 day folders (a backfill: the days are long past)."""
    settings = make_settings(url, secret_key=secret, aws_endpoint_url=moto)
    pool = await create_pool(url)
    try:
        target = Target.of_account(await get_account(pool, TENANT, POLLED))
        assert target is not None
        async with open_log_writer(pool) as writer:
            poller = Poller(pool, writer, session_for=Sessions(settings))
            return await poller.poll([target], DAYS)
    finally:
        await pool.close()


async def run_agent(token_: str, port: int, trail: Path, spool: Path, pki_: Pki, log: Path) -> str:
    agent = Proc(agent_argv("--once", "--dir", str(trail)), agent_env(token_, port, spool, pki_), log)
    assert await agent.exited() == 0, agent.output[-3000:]
    return agent.output


async def push_all(url: str, archive: Path) -> list[tuple[int, int, int, int, int]]:
    """Account C's deliveries, one POST each (gzipped file bodies), in order: (status, read, logged, duplicate,
    read_only_counted) per POST."""
    conn = await connect(url)
    try:
        api_key = (await create_api_key(conn, TENANT, name="push")).key
    finally:
        await conn.close()
    answers = []
    async with asgi_client(url, archive_url=str(archive)) as (client, _app):
        for _day, recs in account_days(PUSHED):
            r = await client.post(PUSH, headers={"X-Api-Key": api_key, "Content-Type": "application/gzip"},
                                  content=delivery(recs))
            body = r.json()
            answers.append((r.status_code, body["read"], body["logged"], body["duplicate"],
                            body["read_only_counted"]))
    return answers


async def drain(url: str) -> None:
    await PostgresRunner(url, load_default_prices(), retry_delay=0.01).run(drain=True)


# Every projection row, without what legitimately depends on how and when a record arrived: log positions (seq,
# feed_id), wall-clock stamps (created_at, updated_at, ingested_at / detected_at) and the source name.
CONSISTENT = {
    "log": "SELECT tenant_id, account_id, event_id, event_time, kind, event_source, event_name, region, read_only,"
    " version, record FROM log ORDER BY tenant_id, account_id, event_id",
    "read_only_counts": "SELECT tenant_id, account_id, day, events FROM log_read_only_counts ORDER BY 1, 2, 3",
    "cost_events": "SELECT id, tenant_id, account_id, data - 'seq' - 'ingested_at', severity, event_id, ordinal,"
    " event_time, resource_type, region, hourly_cost, priced FROM cost_events ORDER BY tenant_id, account_id,"
    " event_id, ordinal",
    "baselines": "SELECT tenant_id, account_id, resource_type, mean_hourly_cost, stddev, event_count,"
    " observed_actors, state FROM baselines ORDER BY tenant_id, account_id, resource_type",
    "anomalies": "SELECT id, tenant_id, account_id, resource_type, severity, severity_rank, event_time,"
    " hourly_cost, backfill, data - 'detected_at' FROM anomalies ORDER BY tenant_id, account_id, event_time",
    "resources": "SELECT tenant_id, account_id, resource_id, resource_type, region, state, hourly_cost, opened_at,"
    " changed_at, data FROM resources ORDER BY tenant_id, account_id, resource_id",
    "fold_metrics": "SELECT tenant_id, metric, label, value FROM fold_metrics ORDER BY tenant_id, metric, label",
    "dead_letters": "SELECT tenant_id, stage, source, locator, reason FROM dead_letters ORDER BY id",
}


async def consistent_rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
    conn = await asyncpg.connect(url)
    try:
        return {table: [tuple(r) for r in await conn.fetch(sql)] for table, sql in CONSISTENT.items()}
    finally:
        await conn.close()


async def fetch(url: str, sql: str) -> list[tuple[Any, ...]]:
    conn = await asyncpg.connect(url)
    try:
        return [tuple(r) for r in await conn.fetch(sql)]
    finally:
        await conn.close()


async def file_ingest_of_everything(tmp_path: Path, bucket: str) -> dict[str, list[tuple[Any, ...]]]:
    """The same 39 deliveries in one folder, through the `dd0c-cost ingest` command into a fresh database with the
    same three accounts registered, then folded the same way."""
    folder = tmp_path / "all"
    write_tree(folder, (POLLED, AGENT, PUSHED))
    url = await _create_database()
    try:
        await register(url, SecretBox([Fernet.generate_key().decode()]), bucket)
        env = {k: v for k, v in os.environ.items() if not k.startswith("DD0C_")}
        env.update(DATABASE_URL=url, DD0C_TENANT=TENANT)
        cmd = [str(Path(sys.executable).with_name("dd0c-cost")), "ingest", str(folder)]
        done = await asyncio.to_thread(subprocess.run, cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                                      timeout=300)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        total = next(line.split() for line in done.stdout.splitlines() if line.startswith("total"))
        #                   read logged dup read-only skipped rejected
        assert total[1:7] == ["78", "42", "0", "36", "0", "0"]  # 3 x (13 launches + 12 reads + 1 terminate)
        await drain(url)
        return await consistent_rows(url)
    finally:
        await _drop_database(url)


def expected_anomalies() -> list[tuple[str, str, str, str, str, float]]:
    """(account, event id, resource type, severity, instance type, $/h) per account, in event-time order."""
    out = []
    for account in (POLLED, AGENT, PUSHED):
        first, p4d = FIRST_N[account], FIRST_N[account] + 10 * (len(DAYS) - 1)
        out.append((account, ctgen.event_id(first), "ec2_instance", "info", "m5.large", M5_LARGE_US_EAST_1))
        out.append((account, ctgen.event_id(p4d), "ec2_instance", "critical", "p4d.24xlarge", P4D_US_EAST_1))
    return out


async def test_three_accounts_three_sources_one_consistent_set_of_anomalies(
    database_url: str, token: str, pki: Pki, moto_url: str, tmp_path: Path,  # noqa: F811  (imported fixtures)
) -> None:
    secret = Fernet.generate_key().decode()
    bucket = f"trail-three-{os.urandom(5).hex()}"
    s3(moto_url).create_bucket(Bucket=bucket)
    await register(database_url, SecretBox([secret]), bucket)

    # A: the trail delivers to the bucket; the poller reads it.
    for day, recs in account_days(POLLED):
        put(moto_url, bucket, object_key(POLLED, day), delivery(recs))
    polled = await poll_bucket(database_url, moto_url, secret)
    t = polled.as_ingest_report().total()
    assert polled.errors == [] and len(polled.objects) == 13
    assert (t.logged, t.duplicate, t.read_only_counted, t.rejected) == (14, 0, 12, 0)

    # B: the agent next to the account reads its directory and streams it over TLS to the gRPC server.
    trail = tmp_path / "trail"
    write_tree(trail, (AGENT,))
    port = free_port()
    server = await start_server(server_env(database_url, port, pki), tmp_path / "server.log")
    try:
        said = await run_agent(token, port, trail, tmp_path / "spool", pki, tmp_path / "agent1.log")
        assert "reader: 13 object(s) sent whole" in said, said[-3000:]

        # C: pushed, one POST per delivery.
        pushed = await push_all(database_url, tmp_path / "archive")
        assert [p[0] for p in pushed] == [200] * 13
        assert [sum(p[i] for p in pushed) for i in (1, 2, 3, 4)] == [26, 14, 0, 12]

        await drain(database_url)
        three_sources = await consistent_rows(database_url)

        # Every source delivers everything again: the poller forgets its positions (a crash before they moved),
        # the agent loses its spool (a new machine), the pusher retries every POST.
        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute("DELETE FROM s3_poll_positions")
        finally:
            await conn.close()
        again = await poll_bucket(database_url, moto_url, secret)
        t = again.as_ingest_report().total()
        assert len(again.objects) == 13 and (t.logged, t.duplicate, t.rejected) == (0, 14, 0)
        said = await run_agent(token, port, trail, tmp_path / "spool2", pki, tmp_path / "agent2.log")
        assert "reader: 13 object(s) sent whole" in said, said[-3000:]
        repushed = await push_all(database_url, tmp_path / "archive")
        assert [sum(p[i] for p in repushed) for i in (1, 2, 3)] == [26, 0, 14]
    finally:
        server.terminate()
    await drain(database_url)
    redelivered = await consistent_rows(database_url)

    # The anomalies, by hand (see the module docstring), and nothing else.
    anomalies = await fetch(database_url, "SELECT account_id, data->'event_ids'->>0, resource_type, severity,"
                            " data->>'instance_type', hourly_cost FROM anomalies ORDER BY account_id, event_time")
    assert anomalies == expected_anomalies()
    p4d = await fetch(database_url, "SELECT account_id, z, expected, reasons FROM ("
                      " SELECT account_id, round((data->>'z')::numeric, 1) AS z,"
                      " (data->>'expected_hourly_cost')::float AS expected,"
                      " array(SELECT r->>'signal' FROM jsonb_array_elements(data->'reasons') r) AS reasons"
                      " FROM anomalies WHERE severity = 'critical') a ORDER BY account_id")
    z = round((P4D_US_EAST_1 - M5_LARGE_US_EAST_1) / (0.05 * M5_LARGE_US_EAST_1), 1)
    assert [(a, float(zz), e, r) for a, zz, e, r in p4d] == [
        (account, z, M5_LARGE_US_EAST_1, ["zscore", "new_family"]) for account in (POLLED, AGENT, PUSHED)]

    # Per account: 13 cost events (12 m5.large + the p4d), 12 instances running (the first was terminated), the
    # $/h of what runs now: 11 x $0.096 + $21.957642.
    per_account = await fetch(database_url, "SELECT account_id, count(*) FROM cost_events GROUP BY 1 ORDER BY 1")
    assert per_account == [(POLLED, 13), (AGENT, 13), (PUSHED, 13)]
    running = await fetch(database_url, "SELECT account_id, count(*), round(sum(hourly_cost)::numeric, 6)"
                          " FROM resources WHERE state = 'running' GROUP BY 1 ORDER BY 1")
    burn = round(11 * M5_LARGE_US_EAST_1 + P4D_US_EAST_1, 6)
    assert [(a, n, float(s)) for a, n, s in running] == [(a, 12, burn) for a in (POLLED, AGENT, PUSHED)]
    sources = await fetch(database_url, "SELECT account_id, min(split_part(source, ':', 1)), count(*) FROM log"
                          " GROUP BY 1 ORDER BY 1")
    assert [(a, n) for a, _, n in sources] == [(POLLED, 14), (AGENT, 14), (PUSHED, 14)]  # once each
    assert sources[0][1] == "s3" and sources[2][1] == "push"
    assert three_sources["dead_letters"] == []

    # Redelivery changed nothing; and the three sources give what one file ingest of all records gives, row by row.
    # Read-only events are counted per day, not stored, so a redelivery from outside a source's own memory (positions
    # forgotten, a new spool) counts them again; a retried POST does not (its body is remembered: see the test
    # below). Everything else holds.
    assert {k: v for k, v in redelivered.items() if k != "read_only_counts"} == \
        {k: v for k, v in three_sources.items() if k != "read_only_counts"}
    assert three_sources == await file_ingest_of_everything(tmp_path, bucket)


async def test_a_retried_push_does_not_count_its_read_only_events_twice(database_url: str, tmp_path: Path) -> None:
    at = datetime(2024, 5, 1, 9, tzinfo=UTC)
    batch = [ctgen.run_instances(1, at=at, account=PUSHED), ctgen.describe_instances(2, at=at, account=PUSHED)]
    conn = await connect(database_url)
    try:
        api_key = (await create_api_key(conn, TENANT, name="push")).key
    finally:
        await conn.close()
    async with asgi_client(database_url, archive_url=str(tmp_path)) as (client, _app):
        for _ in range(2):  # the client timed out on the first answer and sends the same body again
            answer = await client.post(PUSH, headers={"X-Api-Key": api_key}, content=delivery(batch))
            assert answer.status_code == 200
    assert await fetch(database_url, "SELECT count(*) FROM log") == [(1,)]
    assert await fetch(database_url, "SELECT account_id, events FROM log_read_only_counts") == [(PUSHED, 1)]
