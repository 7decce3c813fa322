"""Append -> websocket latency: with the worker and the API running, append anomalous events at a fixed rate
and time each one until its anomaly arrives on a websocket client.

Every appended record is a RunInstances of one p4d.24xlarge by an IAM user never seen before (eventTime = now),
so each one raises an anomaly (new actor, and a $22/h band or z-score) and reaches the feed exactly once.
Latency = time the anomaly message is received - time just before its append started (one process, one clock).

Baseline, same run, same database: a bare Postgres NOTIFY -> LISTEN round trip at the same rate. The pipeline
adds a fold, a projection commit and a websocket hop on top of that.
"""

from __future__ import annotations

import asyncio
import os
import random
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from typing import Any

import orjson
import websockets

from ops.bench.common import Server, child_env, create_database, drop_database, log, percentile
from ops.demo import records as R
from ops.demo.accounts import Actor
from schemas.events import LogEntry, LogKind

ACCOUNT = "999900001111"
TENANT = "default"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _record(ids: R.Ids, i: int, when: datetime) -> dict[str, Any]:
    name = f"bench-user-{i:06d}"
    actor = Actor(name, {"type": "IAMUser", "principalId": f"AIDABENCH{i:011d}",
                         "arn": f"arn:aws:iam::{ACCOUNT}:user/{name}", "accountId": ACCOUNT,
                         "accessKeyId": f"AKIABENCH{i:011d}", "userName": name},
                  "198.51.100.200", "aws-cli/2.15.30 Python/3.11.8 Linux/6.1.0")
    ms = int(when.timestamp() * 1000)
    req, resp = R.run_instances(ids, [ids.aws("i")], "p4d.24xlarge", "us-east-1a", ms, launch_template=False,
                                owner=ACCOUNT, name_tag="bench")
    return R.record(ids, actor, when.strftime("%Y-%m-%dT%H:%M:%SZ"), "ec2", "RunInstances", "us-east-1",
                    ACCOUNT, req, resp, False)


def _entry(rec: dict[str, Any], when: datetime) -> LogEntry:
    return LogEntry(
        tenant=TENANT, event_id=rec["eventID"], account_id=ACCOUNT, event_time=when.replace(microsecond=0),
        ingested_at=when, event_source=rec["eventSource"], event_name=rec["eventName"], region=rec["awsRegion"],
        read_only=False, kind=LogKind.CLOUDTRAIL, record=rec, source="bench-feed",
    )


def _summary(latencies_ms: list[float], sent: int) -> dict[str, Any]:
    if not latencies_ms:
        return {"sent": sent, "received": 0}
    return {
        "sent": sent,
        "received": len(latencies_ms),
        "p50_ms": round(percentile(latencies_ms, 50), 2),
        "p90_ms": round(percentile(latencies_ms, 90), 2),
        "p99_ms": round(percentile(latencies_ms, 99), 2),
        "max_ms": round(max(latencies_ms), 2),
    }


async def _paced(n: int, rate: float, action: Any) -> float:
    """Call `action(i)` n times at `rate` per second (never bursting to catch up); returns the achieved rate."""
    began = time.perf_counter()
    for i in range(n):
        delay = began + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await action(i)
    return n / (time.perf_counter() - began)


async def _settle(done: asyncio.Event, limit: float) -> None:
    try:
        await asyncio.wait_for(done.wait(), limit)
    except TimeoutError:
        pass  # what has not arrived by now is reported as lost or late


async def notify_baseline(url: str, rate: float, seconds: float) -> dict[str, Any]:
    import asyncpg

    listener = await asyncpg.connect(url)
    sender = await asyncpg.connect(url)
    sent: dict[str, float] = {}
    latencies: list[float] = []
    n = int(rate * seconds)
    done = asyncio.Event()

    def got(_c: Any, _pid: int, _channel: str, payload: str) -> None:
        at = sent.get(payload)
        if at is not None:
            latencies.append((time.perf_counter() - at) * 1000)
            if len(latencies) >= n:
                done.set()

    await listener.add_listener("dd0c_bench", got)

    async def one(i: int) -> None:
        sent[str(i)] = time.perf_counter()
        await sender.execute("SELECT pg_notify('dd0c_bench', $1)", str(i))

    achieved = await _paced(n, rate, one)
    await _settle(done, 5)
    await listener.close()
    await sender.close()
    return {**_summary(latencies, n), "rate": round(achieved, 1)}


def create_bench_user(url: str) -> str:
    """A `bench` user in the default tenant (through api.auth, as `dd0c-cost users add` does); its password."""
    from api.auth import create_user
    from projections.db import connect

    password = secrets.token_urlsafe(12)

    async def add() -> None:
        conn = await connect(url)
        try:
            await create_user(conn, TENANT, "bench", password)
        finally:
            await conn.close()

    asyncio.run(add())
    return password


def login(base: str, username: str, password: str) -> str:
    body = orjson.dumps({"username": username, "password": password})
    req = urllib.request.Request(f"{base}/v1/auth/login", data=body, headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return str(orjson.loads(resp.read())["access_token"])


def wait_http(url: str, procs: list[subprocess.Popen[bytes]], limit: float = 60) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        for p in procs:
            if p.poll() is not None:
                raise RuntimeError(f"a child exited early with status {p.returncode}")
        try:
            with urllib.request.urlopen(url, None, 2):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {limit}s")


def start_api(url: str, port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "ops", "api", "--host", "127.0.0.1", "--port", str(port)],
                            env=child_env(url), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_worker(url: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "ops", "worker", "--poll", "1"], env=child_env(url),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


async def pipeline_latency(url: str, port: int, token: str, rate: float, seconds: float) -> dict[str, Any]:
    from projections.db import connect
    from streams.log.postgres import append

    conn = await connect(url)
    ids = R.Ids(random.Random(os.getpid()))
    sent: dict[str, float] = {}
    latencies: list[float] = []
    measuring = False
    done = asyncio.Event()
    try:
        async with websockets.connect(f"ws://127.0.0.1:{port}/v1/feed?token={token}", max_queue=None) as ws:

            async def receive() -> None:
                async for message in ws:
                    got = time.perf_counter()
                    msg = orjson.loads(message)
                    if msg.get("type") != "anomaly":
                        continue
                    for eid in msg["anomaly"]["event_ids"]:
                        at = sent.pop(eid, None)
                        if at is not None and measuring:
                            latencies.append((got - at) * 1000)
                    if not sent and sending_done:
                        done.set()

            sending_done = False
            reader = asyncio.create_task(receive())

            pending: list[LogEntry] = []
            wake = asyncio.Event()
            batches: list[int] = []

            async def one(i: int) -> None:
                # an event "arrives": its clock starts now, whether or not the appender is free
                when = datetime.now(UTC)
                rec = _record(ids, i, when)
                sent[rec["eventID"]] = time.perf_counter()
                pending.append(_entry(rec, when))
                wake.set()

            async def appender(stop: asyncio.Event) -> None:
                # One append in flight at a time; whatever arrived meanwhile goes in the next one (a push
                # endpoint under load batches the same way). Queueing time is part of the measured latency.
                while not (stop.is_set() and not pending):
                    if not pending:
                        wake.clear()
                        await asyncio.wait({asyncio.ensure_future(wake.wait()), asyncio.ensure_future(stop.wait())},
                                           return_when=asyncio.FIRST_COMPLETED)
                        continue
                    batch = pending[:]
                    del pending[:]
                    batches.append(len(batch))
                    await append(conn, batch, keep_read_only=False)

            async def send_all(n: int, offset: int) -> float:
                stop = asyncio.Event()
                task = asyncio.create_task(appender(stop))
                achieved = await _paced(n, rate, lambda i: one(offset + i))
                stop.set()
                wake.set()
                await task
                return achieved

            # warm-up: the first anomalies load the worker's state and the API's pool; not measured
            await send_all(20, 1_000_000)
            sending_done = True
            if not sent:
                done.set()
            await _settle(done, 30)
            sent.clear()
            done.clear()
            batches.clear()
            sending_done, measuring = False, True
            n = int(rate * seconds)
            log(f"feed: appending {n:,} anomalous events at {rate:.0f}/s")
            achieved = await send_all(n, 0)
            sending_done = True
            if not sent:
                done.set()
            await _settle(done, 30)
            reader.cancel()
        return {**_summary(latencies, n), "rate": round(achieved, 1), "lost_or_late_30s": len(sent),
                "appends": len(batches), "mean_events_per_append": round(n / max(len(batches), 1), 2)}
    finally:
        await conn.close()


def feed(server: Server, rate: float, seconds: float, *, keep: bool = False) -> dict[str, Any]:
    url = asyncio.run(create_database(server, "feed"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        baseline = asyncio.run(notify_baseline(url, rate, min(seconds, 10)))
        log(f"feed baseline (NOTIFY->LISTEN): p50 {baseline.get('p50_ms')} ms, p99 {baseline.get('p99_ms')} ms")
        password = create_bench_user(url)
        port = free_port()
        procs = [start_worker(url), start_api(url, port)]
        wait_http(f"http://127.0.0.1:{port}/v1/health", procs)
        token = login(f"http://127.0.0.1:{port}", "bench", password)
        ours = asyncio.run(pipeline_latency(url, port, token, rate, seconds))
        log(f"feed: p50 {ours.get('p50_ms')} ms, p99 {ours.get('p99_ms')} ms, "
            f"{ours.get('received')}/{ours.get('sent')} received")
    finally:
        stop(procs)
        if not keep:
            asyncio.run(drop_database(server, url))
    return {"rate": rate, "seconds": seconds, "pipeline": ours, "baseline_notify": baseline}
