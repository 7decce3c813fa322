"""Push -> websocket latency: with the worker and the API running, POST single CloudTrail records to
/v1/ingest/cloudtrail (a per-tenant API key) at a steady rate and time each one until its anomaly arrives on a
websocket client.

Every record is the `feed` part's: a RunInstances of one p4d.24xlarge by an IAM user never seen before (eventTime =
now), so each raises exactly one anomaly. Latency = time the anomaly message is received - time just before its
POST started (one process, one clock). POSTs are not serialised: each starts on its tick, as independent pushers
would send them, so a slow answer does not hold back the next event.

Baseline, same run, same requests: the POST round trip itself (start -> 200 answer: HTTP, the reader, admission,
the archive and the log commit). What the websocket figure adds on top is the fold, the projection commit and the
feed hop.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import websockets

from ops.bench.common import Server, child_env, create_database, drop_database, log
from ops.bench.feed import (
    TENANT,
    _paced,
    _record,
    _settle,
    _summary,
    create_bench_user,
    free_port,
    login,
    start_worker,
    stop,
    wait_http,
)
from ops.demo import records as R

PUSH = "/v1/ingest/cloudtrail"


def create_push_key(url: str) -> str:
    """A push API key for the bench tenant (streams/accounts, as `dd0c-cost accounts apikey create` makes one)."""
    from projections.db import connect
    from streams.accounts import create_api_key

    async def make() -> str:
        conn = await connect(url)
        try:
            return (await create_api_key(conn, TENANT, name="bench push")).key
        finally:
            await conn.close()

    return asyncio.run(make())


def start_api(url: str, port: int, archive: str) -> subprocess.Popen[bytes]:
    env = child_env(url) | {"DD0C_ARCHIVE_URL": archive}  # pushed batches are archived: keep them out of the tree
    return subprocess.Popen([sys.executable, "-m", "ops", "api", "--host", "127.0.0.1", "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def push_latency(port: int, token: str, key: str, rate: float, seconds: float) -> dict[str, Any]:
    ids = R.Ids(random.Random(os.getpid()))
    sent: dict[str, float] = {}
    latencies: list[float] = []
    round_trips: list[float] = []
    statuses: dict[int, int] = {}
    measuring = False
    sending_done = False
    done = asyncio.Event()
    base = f"http://127.0.0.1:{port}"
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with (
        httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client,
        websockets.connect(f"ws://127.0.0.1:{port}/v1/feed?token={token}", max_queue=None) as ws,
    ):

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

        reader = asyncio.create_task(receive())
        posts: set[asyncio.Task[None]] = set()

        async def post(body: bytes, started: float, measured: bool) -> None:
            answer = await client.post(PUSH, content=body, headers={"X-Api-Key": key,
                                                                   "Content-Type": "application/json"})
            if measured:
                round_trips.append((time.perf_counter() - started) * 1000)
                statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1

        def one(offset: int, measured: bool) -> Any:
            async def tick(i: int) -> None:
                when = datetime.now(UTC)
                rec = _record(ids, offset + i, when)
                body = orjson.dumps(rec)
                started = time.perf_counter()
                sent[rec["eventID"]] = started
                task = asyncio.create_task(post(body, started, measured))
                posts.add(task)
                task.add_done_callback(posts.discard)

            return tick

        async def send_all(n: int, offset: int, measured: bool) -> float:
            achieved = await _paced(n, rate, one(offset, measured))
            if posts:
                await asyncio.gather(*posts)
            return achieved

        # warm-up: the first anomalies load the worker's state and the API's pools; not measured
        await send_all(20, 1_000_000, False)
        sending_done = True
        if not sent:
            done.set()
        await _settle(done, 30)
        sent.clear()
        done.clear()
        sending_done, measuring = False, True
        n = int(rate * seconds)
        log(f"push: POSTing {n:,} single records at {rate:.0f}/s")
        achieved = await send_all(n, 0, True)
        sending_done = True
        if not sent:
            done.set()
        await _settle(done, 30)
        reader.cancel()
    return {"pipeline": {**_summary(latencies, n), "rate": round(achieved, 1), "lost_or_late_30s": len(sent)},
            "baseline_post": {**_summary(round_trips, n), "statuses": statuses}}


def push(server: Server, rate: float, seconds: float, *, keep: bool = False) -> dict[str, Any]:
    url = asyncio.run(create_database(server, "push"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="dd0c-bench-push-") as archive:
            password = create_bench_user(url)
            key = create_push_key(url)
            port = free_port()
            procs = [start_worker(url), start_api(url, port, archive)]
            wait_http(f"http://127.0.0.1:{port}/v1/health", procs)
            token = login(f"http://127.0.0.1:{port}", "bench", password)
            ours = asyncio.run(push_latency(port, token, key, rate, seconds))
            stop(procs)
        p, b = ours["pipeline"], ours["baseline_post"]
        log(f"push: p50 {p.get('p50_ms')} ms, p99 {p.get('p99_ms')} ms, {p.get('received')}/{p.get('sent')} "
            f"received; POST round trip p50 {b.get('p50_ms')} ms, p99 {b.get('p99_ms')} ms")
    finally:
        stop(procs)
        if not keep:
            asyncio.run(drop_database(server, url))
    return {"rate": rate, "seconds": seconds, **ours}


def table_rows(r: dict[str, Any], target_p99_ms: float) -> list[tuple[str, str, str, str, str]]:
    from ops.bench.__main__ import _fmt, _verdict

    p, b = r["pipeline"], r["baseline_post"]
    ok = p.get("p99_ms") is not None and p["received"] == p["sent"] and p["p99_ms"] <= target_p99_ms
    return [(f"push -> websocket @ {p.get('rate', 0):.0f}/s, p50 | p99",
             f"{_fmt(p.get('p50_ms'))} | {_fmt(p.get('p99_ms'))} ms ({p.get('received', 0)}/{p['sent']})",
             f"POST round trip {_fmt(b.get('p50_ms'))} | {_fmt(b.get('p99_ms'))} ms", f"p99 <= {target_p99_ms:.0f} ms",
             _verdict(ok))]
