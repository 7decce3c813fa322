"""Shared by the API, feed and CLI tests (no tests here): projection rows as the worker writes them, built from
real schemas.events dataclasses with schemas.codec.to_jsonable, and ways to run the app (ASGI or real uvicorn)."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import uvicorn
from fastapi import FastAPI

from api.app import create_app, server_config
from api.auth import create_user
from ops.settings import Settings
from projections.anomalies import writer as anomalies_writer
from projections.cost_events import writer as cost_events_writer
from projections.db import connect
from projections.resources import writer as resources_writer
from schemas.codec import to_jsonable
from schemas.events import (
    Actor,
    Anomaly,
    Baseline,
    CostEvent,
    Reason,
    Resource,
    Severity,
    Welford,
)

SECRET = "test-secret-for-dd0c-api-tests-0123456789"
T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
ACCOUNT_A = "111122223333"
ACCOUNT_B = "444455556666"
ALICE = "arn:aws:iam::111122223333:user/alice"


def event_id(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


# ---------------------------------------------------------------------------------------------------- dataclasses


def anomaly(
    tenant: str,
    n: int,
    *,
    account: str = ACCOUNT_A,
    severity: Severity = Severity.HIGH,
    at: datetime = T0,
    hourly: float | None = 0.192,
    expected: float | None = 0.096,
    resource_type: str = "ec2_instance",
    backfill: bool = False,
) -> Anomaly:
    eid = event_id(n)
    return Anomaly(
        id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{tenant}/{account}/{eid}/0")),
        tenant=tenant,
        account_id=account,
        resource_type=resource_type,
        region="us-east-1",
        event_ids=(eid,),
        event_time=at,
        detected_at=at + timedelta(seconds=2),
        severity=severity,
        z=4.2,
        hourly_cost=hourly,
        expected_hourly_cost=expected,
        baseline_stddev=0.0229,
        baseline_n=30,
        actor=ALICE,
        instance_type="m5.xlarge",
        reasons=(
            Reason("zscore", "$0.1920/h is 4.2 standard deviations above the usual $0.0960/h", {"z": 4.2}),
            Reason("new_actor", "alice never created ec2_instance in this account before", {"actor": ALICE}),
        ),
        backfill=backfill,
        learning=False,
    )


def cost_event(
    tenant: str,
    n: int,
    *,
    account: str = ACCOUNT_A,
    at: datetime = T0,
    hourly: float | None = 0.192,
    resource_type: str = "ec2_instance",
    region: str = "us-east-1",
    seq: int = 1,
) -> CostEvent:
    return CostEvent(
        tenant=tenant,
        account_id=account,
        event_id=event_id(n),
        ordinal=0,
        event_time=at,
        ingested_at=at + timedelta(seconds=1),
        region=region,
        event_source="ec2.amazonaws.com",
        event_name="RunInstances",
        resource_type=resource_type,
        resource_ids=(f"i-{n:017x}",),
        actor=Actor(key=ALICE, kind="user"),
        quantity=1.0,
        unit="instance",
        instance_type="m5.xlarge" if hourly is not None else "zz9.plural",
        family="m5" if hourly is not None else "zz9",
        hourly_cost=hourly,
        cost_status="priced" if hourly is not None else "unpriced",
        unpriced_reason=None if hourly is not None else "unknown_instance_type",
        seq=seq,
    )


def baseline(tenant: str, account: str, resource_type: str, *, n: int, mean: float, m2: float) -> Baseline:
    return Baseline(
        tenant=tenant,
        account_id=account,
        resource_type=resource_type,
        stats=Welford(n=n, mean=mean, m2=m2),
        actors=frozenset({ALICE, "service:autoscaling.amazonaws.com"}),
        regions=frozenset({"us-east-1"}),
        families=frozenset({"m5"}),
        events_seen=n + 1,
        first_event_time=T0 - timedelta(days=10),
        last_event_time=T0,
    )


def resource(
    tenant: str,
    resource_id: str,
    *,
    account: str = ACCOUNT_A,
    state: str = "running",
    hourly: float | None = 0.192,
    resource_type: str = "ec2_instance",
) -> Resource:
    return Resource(
        tenant=tenant,
        account_id=account,
        resource_id=resource_id,
        resource_type=resource_type,
        region="us-east-1",
        state=state,
        hourly_cost=hourly,
        opened_at=T0,
        changed_at=T0 + timedelta(hours=1),
        instance_type="m5.xlarge",
        opened_by_event=event_id(1),
        last_event=event_id(2),
    )


# ---------------------------------------------------------------------------------------------------- rows


async def insert_anomalies(conn: asyncpg.Connection, items: Iterable[Anomaly], *, notify: bool = True) -> list[int]:
    """As the worker does it - the real writer, then pg_notify per tenant, in one transaction. Returns the feed_ids,
    in order."""
    made = list(items)
    async with conn.transaction():
        await anomalies_writer.insert(conn, [(a, seq) for seq, a in enumerate(made, start=1)])
        feed_ids: list[int] = [
            r["feed_id"]
            for r in await conn.fetch(
                "SELECT feed_id FROM anomalies WHERE id = ANY($1::uuid[]) ORDER BY feed_id",
                [uuid.UUID(a.id) for a in made],
            )
        ]
        if notify:
            for tenant in sorted({a.tenant for a in made}):
                await conn.execute("SELECT pg_notify('dd0c_feed', $1)", tenant)
    return feed_ids


async def insert_cost_events(conn: asyncpg.Connection, items: Iterable[CostEvent]) -> list[str]:
    """Through the worker's own writer, so the rows the API reads are exactly the rows the worker writes."""
    made = list(items)
    await cost_events_writer.insert(conn, made)
    return [str(cost_events_writer.row_id(e.tenant, e.account_id, e.event_id, e.ordinal)) for e in made]


async def insert_baselines(conn: asyncpg.Connection, items: Iterable[tuple[Baseline, float, float | None]]) -> None:
    """(baseline, mean column, stddev column): the worker stores the rounded figures beside the exact state."""
    for b, mean, stddev in items:
        await conn.execute(
            "INSERT INTO baselines (tenant_id, account_id, resource_type, mean_hourly_cost, stddev, event_count,"
            " observed_actors, state, seq) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            b.tenant,
            b.account_id,
            b.resource_type,
            mean,
            stddev,
            b.stats.n,
            sorted(b.actors),
            to_jsonable(b),
            7,
        )


async def insert_resources(conn: asyncpg.Connection, items: Iterable[Resource]) -> None:
    await resources_writer.upsert(conn, [(r, 3) for r in items])


@asynccontextmanager
async def db(url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await connect(url)
    try:
        yield conn
    finally:
        await conn.close()


async def add_user(url: str, tenant: str, username: str, password: str) -> None:
    async with db(url) as conn:
        await create_user(conn, tenant, username, password)


# ---------------------------------------------------------------------------------------------------- running the app


def settings_for(url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"database_url": url, "jwt_secret": SECRET, "mode": "production"}
    values.update(overrides)
    return Settings(**values)


@asynccontextmanager
async def asgi_client(url: str, **overrides: Any) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI]]:
    """The app in-process (lifespan run by hand: httpx's ASGI transport does not run it)."""
    app = create_app(settings_for(url, **overrides))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://dd0c.test") as client:
            yield client, app


async def login(client: httpx.AsyncClient, username: str, password: str, tenant: str | None = None) -> str:
    body = {"username": username, "password": password} | ({"tenant": tenant} if tenant else {})
    response = await client.post("/v1/auth/login", json=body)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def wait_until(predicate: Callable[[], bool], within: float, what: str) -> None:
    """Wait on a condition, with a deadline (never sleep-and-hope)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    pause = 0.0  # first just yield (the awaited task is often one step away), then poll every 5 ms
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(pause)
        pause = 0.005


@asynccontextmanager
async def live_server(settings: Settings, *, sndbuf: int | None = None) -> AsyncIterator[tuple[int, FastAPI]]:
    """A real uvicorn server on a free loopback port (the socket is bound first: no port race).

    `sndbuf` caps the kernel send buffer of accepted connections (inherited from the listening socket), so that
    a client that stops reading backs up into the server after a few hundred kilobytes, as on a real network.
    """
    app = create_app(settings)
    server = uvicorn.Server(server_config(app, settings, host="127.0.0.1", port=0))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if sndbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await wait_until(lambda: server.started or task.done(), 10, "uvicorn to start")
        if task.done():
            task.result()
        yield port, app
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)
        sock.close()


def ids(items: Sequence[dict[str, Any]]) -> list[str]:
    return [i["id"] for i in items]
