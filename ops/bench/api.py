"""Anomaly-list latency through a real uvicorn server, with >= 1M cost events stored.

Folding a million cost events takes far longer than a benchmark should, so the rows are SYNTHETIC, bulk-loaded
with COPY in the exact shapes the fold writes (the Anomaly / CostEvent documents plus their indexed columns);
the output says so. Two tenants share the tables, so every query has to stay inside its tenant's index range.

Requests: a sequential keep-alive HTTP client cycles through filters (none, minimum severity, account,
account + severity, resource type, time window, live only) and follows `next_cursor` a few pages deep.
Baselines in the same run: GET /v1/health on the same server (HTTP stack + `SELECT 1`), and the same list
queries sent straight to Postgres through `projections.queries` (no HTTP, no JSON).
"""

from __future__ import annotations

import asyncio
import http.client
import random
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import asyncpg
import orjson

from ops.bench.common import Server, create_database, drop_database, log, percentile
from ops.bench.feed import create_bench_user, free_port, login, start_api, stop, wait_http
from schemas.events import Severity

TENANT, OTHER = "default", "other-tenant"
SEVERITIES = [(Severity.INFO, 50), (Severity.LOW, 25), (Severity.MEDIUM, 15), (Severity.HIGH, 8),
              (Severity.CRITICAL, 2)]
RESOURCE_TYPES = [("ec2_instance", 70), ("ebs_volume", 20), ("rds_instance", 5), ("nat_gateway", 5)]
REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2")
NOW = datetime(2024, 6, 1, tzinfo=UTC)
SPAN = timedelta(days=90)


def _accounts(tenant: str) -> list[str]:
    base = 310000000000 if tenant == TENANT else 820000000000
    return [str(base + 1111 * i) for i in range(8)]


def _pick(rng: random.Random, table: list[tuple[Any, int]]) -> Any:
    return rng.choices([k for k, _ in table], weights=[w for _, w in table])[0]


def _actor(rng: random.Random, account: str) -> str:
    return f"arn:aws:iam::{account}:user/{rng.choice(('alice', 'bob', 'carol', 'ci', 'dave'))}"


def cost_event_rows(n: int, seed: int) -> Iterator[tuple[Any, ...]]:
    rng = random.Random(seed)
    for i in range(n):
        tenant = TENANT if rng.random() < 0.7 else OTHER
        account = rng.choice(_accounts(tenant))
        rtype = _pick(rng, RESOURCE_TYPES)
        region = rng.choice(REGIONS)
        at = NOW - SPAN * rng.random()
        event_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        cost = round(rng.uniform(0.01, 2.0), 4) if rng.random() > 0.03 else None
        doc = {
            "tenant": tenant, "account_id": account, "event_id": event_id, "ordinal": 0,
            "event_time": at.isoformat().replace("+00:00", "Z"), "ingested_at": at.isoformat().replace("+00:00", "Z"),
            "region": region, "event_source": "ec2.amazonaws.com", "event_name": "RunInstances",
            "resource_type": rtype, "resource_ids": [f"i-{rng.getrandbits(68):017x}"],
            "actor": {"key": _actor(rng, account), "kind": "user", "detail": "", "automation": False},
            "quantity": 1.0, "unit": "instance", "instance_type": "m5.large", "family": "m5",
            "hourly_cost": cost, "cost_status": "priced" if cost is not None else "unpriced",
            "unpriced_reason": None if cost is not None else "unknown_region",
            "pricing": {}, "attributes": {}, "seq": i + 1,
        }
        yield (uuid.UUID(int=rng.getrandbits(128), version=4), tenant, account, orjson.dumps(doc).decode(),
               event_id, 0, i + 1, at, rtype, region, cost, cost is not None)


def anomaly_rows(n: int, seed: int) -> Iterator[tuple[Any, ...]]:
    rng = random.Random(seed)
    for i in range(n):
        tenant = TENANT if rng.random() < 0.67 else OTHER
        account = rng.choice(_accounts(tenant))
        severity = _pick(rng, SEVERITIES)
        rtype = _pick(rng, RESOURCE_TYPES)
        at = NOW - SPAN * rng.random()
        cost = round(rng.uniform(0.5, 200.0), 3)
        backfill = rng.random() < 0.3
        event_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        anomaly_id = uuid.UUID(int=rng.getrandbits(128), version=4)
        doc = {
            "id": str(anomaly_id), "tenant": tenant, "account_id": account, "resource_type": rtype,
            "region": rng.choice(REGIONS), "event_ids": [event_id],
            "event_time": at.isoformat().replace("+00:00", "Z"),
            "detected_at": (at + timedelta(minutes=5)).isoformat().replace("+00:00", "Z"),
            "severity": severity.value, "z": round(rng.uniform(3, 400), 2), "hourly_cost": cost,
            "expected_hourly_cost": 0.096, "baseline_stddev": 0.02, "baseline_n": rng.randrange(10, 900),
            "actor": _actor(rng, account), "instance_type": "p4d.24xlarge",
            "reasons": [{"signal": "zscore", "text": f"${cost}/h is far above the usual $0.10/h",
                         "data": {"z": 12.5}},
                        {"signal": "new_family", "text": "first p4d instance in this account", "data": {}}],
            "backfill": backfill, "learning": False, "policy": "default",
        }
        yield (anomaly_id, tenant, account, rtype, severity.value, severity.rank, at, at + timedelta(minutes=5),
               cost, backfill, i + 1, orjson.dumps(doc).decode())


_CE_COLUMNS = ("id", "tenant_id", "account_id", "data", "event_id", "ordinal", "seq", "event_time",
               "resource_type", "region", "hourly_cost", "priced")
_AN_COLUMNS = ("id", "tenant_id", "account_id", "resource_type", "severity", "severity_rank", "event_time",
               "detected_at", "hourly_cost", "backfill", "seq", "data")


async def _copy(conn: asyncpg.Connection, table: str, columns: tuple[str, ...], rows: Iterator[tuple[Any, ...]],
                chunk: int = 50_000) -> int:
    total = 0
    batch: list[tuple[Any, ...]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= chunk:
            await conn.copy_records_to_table(table, records=batch, columns=columns)
            total += len(batch)
            batch = []
    if batch:
        await conn.copy_records_to_table(table, records=batch, columns=columns)
        total += len(batch)
    return total


async def load(url: str, cost_events: int, anomalies: int) -> dict[str, Any]:
    began = time.perf_counter()
    conn = await asyncpg.connect(url)  # no JSON codec: documents go in as text, COPY stays binary and fast
    try:
        await conn.execute("INSERT INTO tenants (tenant_id, name) VALUES ($1, $1), ($2, $2) ON CONFLICT DO NOTHING",
                           TENANT, OTHER)
        ce = await _copy(conn, "cost_events", _CE_COLUMNS, cost_event_rows(cost_events, 1))
        an = await _copy(conn, "anomalies", _AN_COLUMNS, anomaly_rows(anomalies, 2))
        await conn.execute("ANALYZE cost_events; ANALYZE anomalies")
        mine = await conn.fetchval("SELECT count(*) FROM anomalies WHERE tenant_id = $1", TENANT)
    finally:
        await conn.close()
    return {"cost_events": ce, "anomalies": an, "anomalies_of_tenant": mine, "synthetic": True,
            "load_seconds": round(time.perf_counter() - began, 1)}


def request_mix(n: int, seed: int = 11) -> list[dict[str, str]]:
    """Filter sets for the first page of each walk; cursors are followed live."""
    rng = random.Random(seed)
    accounts = _accounts(TENANT)
    shapes = []
    for _ in range(n):
        kind = rng.randrange(7)
        q: dict[str, str] = {"limit": str(rng.choice((20, 50, 100)))}
        if kind == 1:
            q["severity"] = rng.choice(("low", "medium", "high", "critical"))
        elif kind == 2:
            q["account"] = rng.choice(accounts)
        elif kind == 3:
            q["account"] = rng.choice(accounts)
            q["severity"] = rng.choice(("medium", "high"))
        elif kind == 4:
            q["resource_type"] = rng.choice(("ec2_instance", "ebs_volume", "rds_instance", "nat_gateway"))
        elif kind == 5:
            start = NOW - SPAN * rng.random()
            q["since"] = start.isoformat()
            q["until"] = (start + timedelta(days=rng.choice((1, 7)))).isoformat()
        elif kind == 6:
            q["backfill"] = "false"
        shapes.append(q)
    return shapes


class _Client:
    def __init__(self, port: int, token: str | None = None) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def get(self, path: str) -> tuple[float, int, bytes]:
        began = time.perf_counter()
        self.conn.request("GET", path, headers=self.headers)
        resp = self.conn.getresponse()
        body = resp.read()
        return (time.perf_counter() - began) * 1000, resp.status, body


def _walks(client: _Client, shapes: list[dict[str, str]], total: int, rng: random.Random) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    items = 0
    i = 0
    while len(latencies) < total:
        q = dict(shapes[i % len(shapes)])
        i += 1
        for _ in range(rng.choice((1, 1, 2, 3, 5))):  # first page, sometimes a few more
            ms, status, body = client.get("/v1/anomalies?" + urlencode(q))
            latencies.append(ms)
            statuses[status] = statuses.get(status, 0) + 1
            if status != 200:
                break
            page = orjson.loads(body)
            items += len(page["items"])
            if not page.get("next_cursor") or len(latencies) >= total:
                break
            q["cursor"] = page["next_cursor"]
    return {"requests": len(latencies), "statuses": statuses, "items": items, **_stats(latencies)}


def _stats(latencies: list[float]) -> dict[str, float]:
    return {"p50_ms": round(percentile(latencies, 50), 2), "p90_ms": round(percentile(latencies, 90), 2),
            "p99_ms": round(percentile(latencies, 99), 2), "max_ms": round(max(latencies), 2)}


async def _direct_sql(url: str, shapes: list[dict[str, str]], total: int) -> dict[str, Any]:
    from projections import queries
    from projections.db import create_pool

    pool = await create_pool(url, min_size=1, max_size=2)
    latencies = []
    try:
        for i in range(total):
            q = shapes[i % len(shapes)]
            f = queries.AnomalyFilter(
                q.get("account"), Severity(q["severity"]) if "severity" in q else None, q.get("resource_type"),
                datetime.fromisoformat(q["since"]) if "since" in q else None,
                datetime.fromisoformat(q["until"]) if "until" in q else None,
                False if q.get("backfill") == "false" else None,
            )
            began = time.perf_counter()
            await queries.list_anomalies(pool, TENANT, f, limit=int(q["limit"]) + 1)
            latencies.append((time.perf_counter() - began) * 1000)
    finally:
        await pool.close()
    return {"requests": total, **_stats(latencies)}


def api(server: Server, cost_events: int, anomalies: int, requests: int, *, keep: bool = False) -> dict[str, Any]:
    url = asyncio.run(create_database(server, "api"))
    proc = None
    try:
        log(f"api: COPY {cost_events:,} synthetic cost events and {anomalies:,} anomalies")
        stored = asyncio.run(load(url, cost_events, anomalies))
        log(f"api: loaded in {stored['load_seconds']}s")
        password = create_bench_user(url)
        port = free_port()
        proc = start_api(url, port)
        wait_http(f"http://127.0.0.1:{port}/v1/health", [proc])
        token = login(f"http://127.0.0.1:{port}", "bench", password)
        shapes = request_mix(500)
        client = _Client(port, token)
        _walks(client, shapes, 200, random.Random(5))  # warm-up: pool connections, plans, page cache
        ours = _walks(client, shapes, requests, random.Random(6))
        health_client = _Client(port)
        health = [health_client.get("/v1/health")[0] for _ in range(min(requests, 2000))]
        direct = asyncio.run(_direct_sql(url, shapes, min(requests, 2000)))
        log(f"api: /v1/anomalies p50 {ours['p50_ms']} ms p99 {ours['p99_ms']} ms; /v1/health p99 "
            f"{_stats(health)['p99_ms']} ms; SQL only p99 {direct['p99_ms']} ms")
    finally:
        if proc is not None:
            stop([proc])
        if not keep:
            asyncio.run(drop_database(server, url))
    return {"stored": stored, "anomalies_list": ours, "baseline_health": {"requests": len(health), **_stats(health)},
            "baseline_sql": direct}
