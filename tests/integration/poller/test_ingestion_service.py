"""`dd0c-cost ingestion`: registered accounts polled, /healthz and /metrics after a poll, the gRPC server alongside,
and SIGTERM finishing the object being read before the process exits."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from ops.ingestion import IngestionService
from ops.settings import load_settings
from projections.db import connect, create_pool
from streams.accounts.model import TrailLocation
from streams.accounts.registry import add_account
from streams.log.writer import open_log_writer
from streams.poller.poll import Poller
from streams.poller.source import Sessions
from tests.conftest import CASES, ROOT
from tests.integration.poller.conftest import A1, A2, delivery, key, put, records
from tests.integration.poller.test_poller_kill import _MID_OBJECT

pytestmark = pytest.mark.integration

DD0C_COST = str(Path(sys.executable).with_name("dd0c-cost"))
TENANT = "t-ingestion"


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[object]:
    p = await create_pool(database_url)
    try:
        yield p
    finally:
        await p.close()


async def register(db: object, bucket: str, *accounts: str) -> None:
    for account in accounts:  # auth "none": the process's own credentials (here: moto's)
        await add_account(db, None, TENANT, account, trail=TrailLocation(bucket=bucket, regions=("us-east-1",)))  # type: ignore[arg-type]


def sample(metrics: str, name: str, source: str | None = None) -> float:
    label = f'{{source="{source}"}}' if source else ""
    found = re.search(rf"^{re.escape(name + label)} (\S+)$", metrics, re.MULTILINE)
    assert found, f"{name}{label} not in /metrics"
    return float(found.group(1))


async def test_healthz_and_metrics_after_a_poll(pool: object, aws_env: str, bucket: str, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    today = datetime.now(UTC).date()  # the service polls yesterday and today by the clock
    await register(pool, bucket, A1, A2)
    put(aws_env, bucket, key(A1, today, 1), delivery(records(100, A1, today)))
    put(aws_env, bucket, key(A1, today, 2), delivery(records(110, A1, today)))
    put(aws_env, bucket, key(A2, today, 1), delivery(records(200, A2, today)))
    put(aws_env, bucket, key(A2, today, 2), delivery(records(200, A2, today, reads=0)))  # re-delivered: 2 duplicates
    put(aws_env, bucket, key(A2, today, 3), (CASES / "R01.json.gz").read_bytes())  # digest content: skipped
    monkeypatch.setenv("DD0C_ARCHIVE_URL", str(tmp_path / "archive"))
    monkeypatch.setenv("DD0C_GRPC_INSECURE", "true")
    settings = load_settings().model_copy(update={"ingestion_port": 0, "grpc_port": 0})

    async with open_log_writer(pool, settings) as writer:  # type: ignore[arg-type]
        poller = Poller(pool, writer, session_for=Sessions(settings))  # type: ignore[arg-type]
        service = IngestionService(pool, poller, settings, grpc=True)  # type: ignore[arg-type]
        await service.start()
        try:
            report = await service.run(once=True)
            assert report is not None and report.errors == []
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{service.http_port}") as client:
                health = await client.get("/healthz")
                metrics = await client.get("/metrics")
                missing = await client.get("/nope")
                # an account whose bucket cannot be read: the service keeps running, and says so
                await register(pool, "no-such-bucket-here", "333344445555")
                second = await service.run(once=True)
                assert second is not None and len(second.errors) == 2  # yesterday's and today's folder
                degraded = (await client.get("/healthz")).json()
        finally:
            await service.close()
    assert (degraded["status"], degraded["polls"], degraded["last_poll_errors"]) == ("degraded", 2, 2)
    assert "NoSuchBucket" in degraded["first_errors"][0] and "no-such-bucket-here" in degraded["first_errors"][0]

    assert health.status_code == 200
    doc = health.json()
    assert (doc["status"], doc["database"], doc["polls"], doc["grpc"]) == ("ok", "ok", 1, "serving")
    assert (doc["last_poll_errors"], doc["first_errors"]) == (0, [])
    assert missing.status_code == 404
    assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = metrics.text
    assert sample(text, "dd0c_poll_objects_total", "s3") == 5
    assert sample(text, "dd0c_ingest_events_total", "s3") == 6  # 3 objects x 2 RunInstances
    assert sample(text, "dd0c_ingest_duplicates_total", "s3") == 2
    assert sample(text, "dd0c_ingest_read_only_total", "s3") == 3
    assert sample(text, "dd0c_ingest_skipped_total", "s3") == 1
    assert sample(text, "dd0c_ingest_rejects_total", "s3") == 0
    assert sample(text, "dd0c_poll_errors_total", "s3") == 0
    assert sample(text, "dd0c_ingest_lag_seconds", "s3") >= 0
    assert sample(text, "dd0c_polls_total") == 1  # /metrics was read after the first poll
    assert sample(text, "dd0c_grpc_serving") == 1
    assert sample(text, "dd0c_ingest_events_total", "grpc") == 0  # no agent connected
    assert "# TYPE dd0c_ingest_lag_seconds gauge" in text
    assert 'dd0c_ingest_lag_seconds{source="grpc"}' not in text  # no agent batch yet: no delivery time to measure
    assert await pool.fetchval("SELECT count(*) FROM log WHERE tenant_id = $1", TENANT) == 6  # type: ignore[attr-defined]


def service(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([DD0C_COST, "ingestion", "--port", "0", "--no-grpc", "--interval", "3600"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


async def test_sigterm_finishes_the_object_being_read_then_exits(
    database_url: str, aws_env: str, bucket: str, tmp_path: Path
) -> None:
    today = datetime.now(UTC).date()
    objects, writes = 10, 3000
    conn = await connect(database_url)
    try:
        await register(conn, bucket, A1)
        for i in range(1, objects + 1):
            put(aws_env, bucket, key(A1, today, i), delivery(records(i * 10_000, A1, today, writes=writes, reads=0)))
        env = {**os.environ, "DATABASE_URL": database_url, "DD0C_ARCHIVE_URL": str(tmp_path / "archive")}
        proc = service(env)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 120
        try:
            while await conn.fetchval(_MID_OBJECT) == 0:  # some entries of an object logged, its position not moved
                assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
                assert loop.time() < deadline, "the service never got mid-object"
                await asyncio.sleep(0.005)
        finally:
            proc.send_signal(signal.SIGTERM)
            _, err = await loop.run_in_executor(None, proc.communicate)
        assert proc.returncode == 0, err.decode()
        assert "(stopped)" in err.decode()

        read = await conn.fetchval("SELECT objects FROM s3_poll_positions")
        assert 1 <= read < objects  # it stopped early ...
        assert await conn.fetchval(_MID_OBJECT) == 0  # ... but not inside an object: each one logged is committed
        assert await conn.fetchval("SELECT count(*) FROM log") == read * writes
    finally:
        await conn.close()
