"""Issue 3, "broker restart mid-stream": the Kafka broker dies under a running faust worker and comes back.

The session broker (tests/kafka_broker.py) keeps its topics in memory, so a restart would lose them; this module
starts its own tansu on S3 storage - moto in server mode as the S3 - so a broker restarted on the same port with the
same bucket still has the topic and its offsets. One scenario, run once by the module fixture:

    first half --KafkaLog--> topic;  one `dd0c-cost worker` folds part of it;  kill -9 the broker;
    the worker notices;  restart tansu (same port, same bucket);  second half --KafkaLog--> topic;
    wait until the worker's Postgres positions reach the end of every partition.

The tests then check that the worker never exited and that the projections are those of a clean run of the whole
input through the Postgres log: nothing lost, nothing counted twice.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import boto3
import pytest
import pytest_asyncio
from moto.server import ThreadedMotoServer

from schemas.events import LogEntry
from streams.log.kafka import KafkaLog, KafkaSpec
from streams.runner.kafka import runner_name
from tests.conftest import _create_database, _drop_database
from tests.integration.kafka.test_kafka_worker import corpus, reference
from tests.integration.kafka.workers import DEADLINE, Workers, projections_of, wait_count, worker_env
from tests.kafka_broker import free_port, start_tansu, stop_tansu

pytestmark = pytest.mark.integration

PARTITIONS = 4
BUCKET = "tansu"
# What tansu's S3 storage needs: moto takes any keys; plain HTTP to the loopback endpoint must be allowed.
S3_KEYS = {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y", "AWS_DEFAULT_REGION": "us-east-1"}


@dataclass
class Restarted:
    tenant: str
    entries: list[LogEntry]
    conn: asyncpg.Connection
    workers: Workers
    worker: subprocess.Popen[bytes]
    names: list[str]  # the checkpoint rows of the topic's partitions
    folded_before_kill: int  # offsets folded (sum over partitions) when the broker was killed
    produced_first: int  # messages on the topic before the kill
    produced: int  # messages on the topic in the end (read-only entries are counted, not produced)


def positions_sql() -> str:
    """Offsets folded so far, over all partitions of the topic ($1: the runner names): position + 1 each."""
    return "SELECT coalesce(sum(position + 1), 0) FROM checkpoints WHERE runner = ANY($1::text[])"


async def append(spec: KafkaSpec, entries: list[LogEntry]) -> int:
    async with KafkaLog(spec, keep_read_only=False) as kafka_log:  # as the Postgres reference keeps them
        result = await kafka_log.append(entries)
    assert not result.rejected
    return result.logged


async def wait_log_grows(workers: Workers, worker: subprocess.Popen[bytes], size: int) -> None:
    """Until the worker wrote to its log after the kill (it saw the broker go): the outage is then noticed."""
    path = workers.log_of[worker.pid]
    deadline = time.monotonic() + DEADLINE
    while path.stat().st_size <= size:
        if worker.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"worker exited or stayed silent after the broker died\n{workers.logs()}")
        await asyncio.sleep(0.1)  # a poll interval: the log growing is what is waited on


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def restarted(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Restarted]:
    werkzeug = logging.getLogger("werkzeug")  # moto's request log: one line per S3 call of tansu
    level = werkzeug.level
    werkzeug.setLevel(logging.WARNING)
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    try:
        async for state in _scenario(moto, tmp_path_factory.mktemp("restart")):
            yield state
    finally:
        moto.stop()
        werkzeug.setLevel(level)


async def _scenario(moto: ThreadedMotoServer, logs: Path) -> AsyncIterator[Restarted]:
    host, moto_port = moto.get_host_and_port()
    endpoint = f"http://{host}:{moto_port}"
    boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="x", aws_secret_access_key="y",
                 region_name="us-east-1").create_bucket(Bucket=BUCKET)
    s3_env = {**S3_KEYS, "AWS_ENDPOINT": endpoint, "AWS_ALLOW_HTTP": "true"}
    port = free_port()

    async def tansu() -> tuple[subprocess.Popen[bytes], str]:
        return await start_tansu(logs / "tansu.log", port=port, storage=f"s3://{BUCKET}/",
                                 cluster_id="dd0c-restart", env=s3_env)

    broker, bootstrap = await tansu()
    url = await _create_database()
    topic = f"dd0c-restart-{uuid.uuid4().hex[:8]}"
    spec = KafkaSpec(bootstrap=bootstrap, topic=topic, partitions=PARTITIONS, idempotent=False,
                     connect_attempts=3, retry_backoff=0.2)
    # small batches: many commits, so the broker dies between two of them rather than after the last
    workers = Workers(worker_env(bootstrap, url, topic, PARTITIONS, DD0C_WORKER_BATCH="25"), logs)
    conn = await asyncpg.connect(url)
    names = [runner_name(topic, p) for p in range(PARTITIONS)]
    try:
        tenant = f"restart-{uuid.uuid4().hex[:6]}"
        entries = corpus(tenant, sets=2, per_set=160)
        half = len(entries) // 2
        produced_first = await append(spec, entries[:half])
        worker = workers.start()
        await workers.wait_assigned(worker)
        await wait_count(conn, positions_sql(), [names], 1, workers)  # it folded part of the first half
        size = workers.log_of[worker.pid].stat().st_size
        broker.send_signal(signal.SIGKILL)
        broker.wait(timeout=10)
        folded_before_kill = int(await conn.fetchval(positions_sql(), names))
        await wait_log_grows(workers, worker, size)
        broker, _ = await tansu()  # same port, same bucket: the topic and its offsets are still there
        produced = produced_first + await append(spec, entries[half:])
        # Offsets are dense from 0 in every partition, so "every position reached its partition's end" is "the
        # positions add up to all that was produced". The broker is not asked for its end offsets: KafkaLog does
        # not return them, and tansu on S3 answers list-offsets with a trailing high watermark (0 for a partition
        # holding 139 messages, in the worker's log).
        await wait_count(conn, positions_sql(), [names], produced, workers)
        yield Restarted(tenant, entries, conn, workers, worker, names, folded_before_kill, produced_first, produced)
    finally:
        workers.close()
        stop_tansu(broker)
        await conn.close()
        await _drop_database(url)


async def test_the_worker_rides_out_the_broker_restart_without_exiting(restarted: Restarted) -> None:
    assert restarted.worker.poll() is None, restarted.workers.logs()  # still the first process: no crash loop
    assert len(restarted.workers.procs) == 1
    # killed mid-stream: part of the first half was folded, none of the second half had been produced yet
    assert restarted.folded_before_kill >= 1  # read right after the kill: the worker had folded part of it
    assert restarted.produced_first < restarted.produced == len([e for e in restarted.entries if not e.read_only])
    # nothing folded past the end: the positions add up to exactly what was produced, both halves
    assert await restarted.conn.fetchval(positions_sql(), restarted.names) == restarted.produced


async def test_projections_equal_a_clean_postgres_run_of_the_whole_input(
    restarted: Restarted, database_url: str
) -> None:
    ref = await reference(database_url, restarted.entries)
    try:
        expected = await projections_of(ref, restarted.tenant)
        got = await projections_of(restarted.conn, restarted.tenant)
        assert len(expected["cost_events"]) > 100 and len(expected["anomalies"]) > 0  # a meaningful corpus
        for table in expected:
            assert got[table] == expected[table], f"{table} differs after the broker restart"
    finally:
        await ref.close()


async def test_cost_events_and_dollars_per_hour_counted_once(restarted: Restarted) -> None:
    c, tenant = restarted.conn, restarted.tenant
    # 281 entries produced (320 generated minus 39 read-only DescribeInstances), each through the gate once
    assert restarted.produced == 281
    assert await c.fetchval("SELECT count(*) FROM kafka_folded WHERE tenant_id = $1", tenant) == 281
    # one cost event per successful RunInstances call: 158 (the other 123 are 104 TerminateInstances calls and
    # 19 launches refused with Client.VcpuLimitExceeded), each once although the broker died in between
    assert await c.fetchval("SELECT count(*) FROM cost_events WHERE tenant_id = $1", tenant) == 158
    rows = await c.fetch(
        "SELECT data->>'instance_type' AS type, sum((data->>'quantity')::float8)::int AS instances,"
        " sum(hourly_cost) AS hourly FROM cost_events WHERE tenant_id = $1 GROUP BY 1", tenant)
    launched = {r["type"]: r["instances"] for r in rows}
    # instances launched by type, counted in the generated records; us-east-1 on-demand prices of the snapshot
    assert launched == {"m5.large": 127, "r5.2xlarge": 46, "c5.xlarge": 39, "t3.micro": 37}
    hourly = {r["type"]: r["hourly"] for r in rows}
    assert hourly == pytest.approx({"m5.large": 127 * 0.096, "r5.2xlarge": 46 * 0.504, "c5.xlarge": 39 * 0.17,
                                    "t3.micro": 37 * 0.0104})
    # 12.192 + 23.184 + 6.63 + 0.3848 = $42.3908/h launched in total
    assert await c.fetchval("SELECT sum(hourly_cost) FROM cost_events WHERE tenant_id = $1", tenant
                            ) == pytest.approx(42.3908)
