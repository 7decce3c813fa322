"""The faust worker on the Kafka log, against the real tansu broker and real Postgres.

One topic, one database and the `dd0c-cost worker` subprocesses are shared by the module (a group join costs
seconds); tests keep apart by tenant. Each test says how many workers it wants (`Workers.ensure`), so the order
the tests run in does not matter.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio

from projections.db import connect
from schemas.cloudtrail.fields import to_log_entry
from schemas.cloudtrail.items import RawRecord
from schemas.events import LogEntry
from streams.log import postgres as pglog
from streams.log.kafka import KafkaSpec, connect_admin, ensure_topic
from streams.prices.table import load_default_prices
from streams.runner.postgres import PostgresRunner
from tests.conftest import CASES, _create_database, _drop_database
from tests.integration import ctgen
from tests.integration.kafka.workers import Workers, produce, projections_of, wait_count, wait_folded, worker_env
from tests.kafka_broker import free_port

pytestmark = pytest.mark.integration

PARTITIONS = 4
INGESTED = datetime(2024, 5, 2, tzinfo=UTC)


@dataclass
class Cluster:
    bootstrap: str
    topic: str
    database_url: str
    conn: asyncpg.Connection
    workers: Workers


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def cluster(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    url = await _create_database()
    topic = f"dd0c-fold-{uuid.uuid4().hex[:8]}"
    spec = KafkaSpec(bootstrap=kafka_bootstrap, topic=topic, partitions=PARTITIONS, idempotent=False)
    admin = await connect_admin(spec)
    try:
        await ensure_topic(admin, spec)
    finally:
        await admin.close()
    # small batches: more transactions per test, so a kill -9 lands mid-stream
    env = worker_env(kafka_bootstrap, url, topic, PARTITIONS, DD0C_WORKER_BATCH="25")
    workers = Workers(env, tmp_path_factory.mktemp("workers"))
    conn = await asyncpg.connect(url)
    try:
        yield Cluster(kafka_bootstrap, topic, url, conn, workers)
    finally:
        workers.close()
        await conn.close()
        await _drop_database(url)


def tenant_name(what: str) -> str:
    return f"{what}-{uuid.uuid4().hex[:6]}"


def corpus(tenant: str, *, sets: int = 4, per_set: int = 80) -> list[LogEntry]:
    """ctgen's generated history, `sets` times over with other account ids: 2 * sets accounts, so that the
    accounts spread over the partitions (and, with 2 workers, over both workers)."""
    out: list[LogEntry] = []
    for k in range(sets):
        text = json.dumps(ctgen.generated_records(per_set, seed=11 + k))
        for n, account in enumerate(ctgen.ACCOUNTS):
            text = text.replace(account, f"{k + 1:02d}{n + 1:02d}00000000")
        out.extend(ctgen.entries(json.loads(text), tenant=tenant))
    return out


async def reference(database_url: str, entries: list[LogEntry]) -> asyncpg.Connection:
    """The same entries through the Postgres log and the PostgresRunner (drain): the projections to match."""
    conn = await connect(database_url)
    try:
        await pglog.append(conn, entries, keep_read_only=False)
    finally:
        await conn.close()
    await PostgresRunner(database_url, load_default_prices(), batch=40).run(drain=True)
    return await asyncpg.connect(database_url)


def r20_entries(tenant: str) -> list[LogEntry]:
    case = json.loads((CASES / "R20.json").read_text())
    out = []
    for message in case["messages"]:
        entry = to_log_entry(RawRecord(message["value"], f"offset {message['offset']}"), tenant=tenant,
                             ingested_at=INGESTED, source="R20.json")
        assert isinstance(entry, LogEntry)
        out.append(entry)
    return out


# -- R20: scale-out mid-stream ----------------------------------------------------------------------------------


async def test_r20_scale_out_mid_stream_counts_each_event_once(cluster: Cluster) -> None:
    await cluster.workers.ensure_joined(1)
    tenant = tenant_name("acme")
    e = r20_entries(tenant)
    first = await produce(cluster.bootstrap, cluster.topic, e[:3])
    await wait_folded(cluster.conn, cluster.topic, first, cluster.workers)
    # scale from 1 to 2 workers (a rebalance) while the rest arrives - and 101-102 again, as a consumer resuming
    # from a group offset that trailed (R20: w2 restarts from offset 100's commit) would see them
    cluster.workers.ensure(2)
    rest = await produce(cluster.bootstrap, cluster.topic, [*e[1:3], *e[3:]])
    await cluster.workers.ensure_joined(2)
    await wait_folded(cluster.conn, cluster.topic, rest, cluster.workers)
    c = cluster.conn
    assert await c.fetchval(
        "SELECT event_count FROM baselines WHERE tenant_id = $1 AND account_id = '111122223333'"
        " AND resource_type = 'ec2_instance'", tenant) == 5  # not 7
    assert await c.fetchval("SELECT count(*) FROM cost_events WHERE tenant_id = $1", tenant) == 5
    anomaly_events = await c.fetch("SELECT data->>'event_id' AS e FROM anomalies WHERE tenant_id = $1", tenant)
    assert len(anomaly_events) == len({r["e"] for r in anomaly_events})  # at most once per eventID
    # no offset skipped: all five eventIDs folded, each from the first copy on the topic
    folded = await c.fetch('SELECT event_id, "offset" FROM kafka_folded WHERE tenant_id = $1 ORDER BY "offset"',
                           tenant)
    assert [r["event_id"] for r in folded] == [x.event_id for x in e]
    (partition,) = first
    assert [r["offset"] for r in folded] == [first[partition] - 2, first[partition] - 1, first[partition],
                                             rest[partition] - 1, rest[partition]]


# -- equivalence ------------------------------------------------------------------------------------------------


async def test_same_input_gives_identical_projections_on_postgres_and_on_kafka_with_1_and_2_workers(
    cluster: Cluster, database_url: str
) -> None:
    one, two = tenant_name("eq1"), tenant_name("eq2")
    await cluster.workers.ensure_joined(1)
    await wait_folded(cluster.conn, cluster.topic, await produce(cluster.bootstrap, cluster.topic, corpus(one)),
                      cluster.workers)
    await cluster.workers.ensure_joined(2)  # both hold partitions: the accounts of `two` are split between them
    await wait_folded(cluster.conn, cluster.topic, await produce(cluster.bootstrap, cluster.topic, corpus(two)),
                      cluster.workers)
    ref = await reference(database_url, corpus(one) + corpus(two))
    try:
        for tenant in (one, two):
            expected = await projections_of(ref, tenant)
            got = await projections_of(cluster.conn, tenant)
            assert len(expected["cost_events"]) > 100 and len(expected["anomalies"]) > 0  # a meaningful corpus
            assert len(expected["baselines"]) >= 8  # 8 accounts
            for table in expected:
                assert got[table] == expected[table], f"{table} differs for {tenant}"
    finally:
        await ref.close()


# -- kill -9 ----------------------------------------------------------------------------------------------------


async def test_kill_9_mid_stream_then_restart_equals_a_clean_run(cluster: Cluster, database_url: str) -> None:
    await cluster.workers.ensure_joined(1)
    tenant = tenant_name("kill")
    entries = corpus(tenant, sets=4, per_set=250)
    victim = cluster.workers.alive()[0]
    last = await produce(cluster.bootstrap, cluster.topic, entries)
    total = len([e for e in entries if not e.read_only])
    seen = await wait_count(cluster.conn, "SELECT count(*) FROM kafka_folded WHERE tenant_id = $1", [tenant], 1)
    cluster.workers.kill9(victim)
    at_kill = await cluster.conn.fetchval("SELECT count(*) FROM kafka_folded WHERE tenant_id = $1", tenant)
    assert seen <= at_kill < total  # it died mid-stream
    cluster.workers.ensure(1)
    await wait_folded(cluster.conn, cluster.topic, last, cluster.workers)
    ref = await reference(database_url, entries)
    try:
        expected = await projections_of(ref, tenant)
        got = await projections_of(cluster.conn, tenant)
        for table in expected:
            assert got[table] == expected[table], f"{table} differs after kill -9"
    finally:
        await ref.close()


# -- poison and duplicates --------------------------------------------------------------------------------------


async def test_poison_message_is_dead_lettered_with_its_offset_and_the_good_ones_fold(cluster: Cluster) -> None:
    await cluster.workers.ensure_joined(1)
    tenant = tenant_name("poison")
    good = r20_entries(tenant)[:2]
    placed = await produce(cluster.bootstrap, cluster.topic, good[:1])
    (partition,) = placed
    key = f"{tenant}/111122223333".encode()
    last = await produce(cluster.bootstrap, cluster.topic,
                         [(key, b"\x00\xffnot json at all", partition), *good[1:]])
    await wait_folded(cluster.conn, cluster.topic, last, cluster.workers)
    rows = await cluster.conn.fetch(
        "SELECT stage, source, locator, reason FROM dead_letters WHERE tenant_id = $1", tenant)
    assert len(rows) == 1
    (row,) = rows
    assert row["stage"] == "read"
    assert row["source"] == f"kafka:{cluster.topic}"
    assert row["locator"] == f"partition={partition} offset={placed[partition] + 1}"
    assert row["reason"].startswith("undecodable log entry")
    assert await cluster.conn.fetchval("SELECT count(*) FROM cost_events WHERE tenant_id = $1", tenant) == 2


async def test_the_same_entries_produced_twice_are_counted_once(cluster: Cluster) -> None:
    await cluster.workers.ensure_joined(2)
    tenant = tenant_name("twice")
    entries = r20_entries(tenant)
    await produce(cluster.bootstrap, cluster.topic, entries)
    last = await produce(cluster.bootstrap, cluster.topic, entries)
    await wait_folded(cluster.conn, cluster.topic, last, cluster.workers)
    c = cluster.conn
    assert await c.fetchval("SELECT event_count FROM baselines WHERE tenant_id = $1", tenant) == 5
    assert await c.fetchval("SELECT count(*) FROM cost_events WHERE tenant_id = $1", tenant) == 5
    assert await c.fetchval("SELECT count(*) FROM kafka_folded WHERE tenant_id = $1", tenant) == 5
    # m5.large in us-east-1 at $0.096/h, five launches of one instance each
    assert await c.fetchval("SELECT sum(hourly_cost) FROM cost_events WHERE tenant_id = $1", tenant) == pytest.approx(
        5 * 0.096)


# -- the CLI ----------------------------------------------------------------------------------------------------


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(Path(sys.executable).parent / "dd0c-cost"), *args], env=env, capture_output=True,
                          text=True, timeout=120, check=False)


def test_broker_down_at_start_is_a_clear_error_after_bounded_retries(cluster: Cluster) -> None:
    port = free_port()  # nothing listens there
    env = worker_env(f"127.0.0.1:{port}", cluster.database_url, "nowhere", PARTITIONS,
                     DD0C_KAFKA_CONNECT_ATTEMPTS="3", DD0C_KAFKA_RETRY_BACKOFF="0.1")
    for command in (["worker"], ["ingest", str(CASES / "R20.json")]):
        done = _cli(command, env)
        assert done.returncode == 1, done.stderr[-2000:]
        assert f"Kafka at 127.0.0.1:{port} unreachable" in done.stderr
        assert "failed 3 times" in done.stderr
        assert "Traceback" not in done.stderr


async def test_ingest_cli_feeds_the_kafka_log_and_the_worker_folds_it(cluster: Cluster, tmp_path: Path) -> None:
    await cluster.workers.ensure_joined(1)
    tenant = tenant_name("cli")
    case = json.loads((CASES / "R20.json").read_text())
    path = tmp_path / "111122223333_CloudTrail_us-east-1_20240501T1505Z_r20.json"
    path.write_text(json.dumps({"Records": [m["value"] for m in case["messages"]]}))
    env = dict(cluster.workers.env, DD0C_TENANT=tenant)
    done = _cli(["ingest", str(path)], env)
    assert done.returncode == 0, done.stderr
    assert re.search(r"total\s+5\s+5\s+0\s+0\s+0\s+0", done.stdout), done.stdout
    await wait_count(cluster.conn, "SELECT count(*) FROM cost_events WHERE tenant_id = $1", [tenant], 5,
                     cluster.workers)
    assert await cluster.conn.fetchval("SELECT event_count FROM baselines WHERE tenant_id = $1", tenant) == 5
    again = _cli(["ingest", str(path)], env)  # the same file again: claimed in Postgres, nothing produced
    assert again.returncode == 0 and "already ingested" in again.stdout
