"""Keyset pagination: pages follow each other with no duplicate and no gap, ties on event_time included."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from schemas.events import Severity
from tests.integration.test_api_rows import (
    ACCOUNT_A,
    ACCOUNT_B,
    T0,
    add_user,
    anomaly,
    asgi_client,
    bearer,
    cost_event,
    db,
    insert_anomalies,
    insert_cost_events,
    insert_resources,
    login,
    resource,
)

M = timedelta(minutes=1)


async def pages(client: httpx.AsyncClient, auth: dict[str, str], path: str, **params: Any) -> list[list[dict]]:
    """Follow next_cursor to the end; every page must be full except the last."""
    out: list[list[dict]] = []
    cursor = None
    while True:
        query = params | ({"cursor": cursor} if cursor else {})
        response = await client.get(path, params=query, headers=auth)
        assert response.status_code == 200, response.text
        body = response.json()
        out.append(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return out
        assert len(body["items"]) == params["limit"]


async def test_anomalies_three_pages_no_duplicates_no_gaps(database_url: str) -> None:
    # 7 anomalies; 4 of them share one event_time so the id tie-break is what separates the pages.
    severities = [Severity.LOW, Severity.HIGH, Severity.CRITICAL, Severity.MEDIUM, Severity.HIGH, Severity.INFO,
                  Severity.CRITICAL]
    times = [T0, T0, T0, T0, T0 + M, T0 - M, T0 + 2 * M]
    made = [
        anomaly("acme", n, severity=s, at=t, account=ACCOUNT_A if n % 2 else ACCOUNT_B)
        for n, (s, t) in enumerate(zip(severities, times, strict=True), start=1)
    ]
    await add_user(database_url, "acme", "alice", "pw")
    async with db(database_url) as conn:
        await insert_anomalies(conn, made)
    # the order the API promises: event_time newest first, then id ascending
    expected = sorted(made, key=lambda a: (-a.event_time.timestamp(), a.id))
    async with asgi_client(database_url) as (client, _app):
        auth = bearer(await login(client, "alice", "pw"))
        got = await pages(client, auth, "/v1/anomalies", limit=3)
        assert [len(p) for p in got] == [3, 3, 1]
        assert [a["id"] for p in got for a in p] == [a.id for a in expected]

        # the same through the per-severity merge: high and above, two per page
        high = [a for a in expected if a.severity.rank >= Severity.HIGH.rank]
        got = await pages(client, auth, "/v1/anomalies", limit=2, severity="high")
        assert [len(p) for p in got] == [2, 2]
        assert [a["id"] for p in got for a in p] == [a.id for a in high]

        # and through the per-account merge
        only_a = [a for a in expected if a.account_id == ACCOUNT_A]
        got = await pages(client, auth, "/v1/anomalies", limit=3, account=ACCOUNT_A)
        assert [a["id"] for p in got for a in p] == [a.id for a in only_a]


async def test_cost_events_resources_and_baselines_page_too(database_url: str) -> None:
    await add_user(database_url, "acme", "alice", "pw")
    async with db(database_url) as conn:
        made = [cost_event("acme", n, at=T0 + (n // 2) * M) for n in range(1, 8)]  # pairs share a minute
        row_ids = await insert_cost_events(conn, made)
        await insert_resources(
            conn,
            [resource("acme", f"i-{n:04d}", account=ACCOUNT_A if n < 4 else ACCOUNT_B, hourly=0.5) for n in range(7)],
        )
    async with asgi_client(database_url) as (client, _app):
        auth = bearer(await login(client, "alice", "pw"))
        got = await pages(client, auth, "/v1/cost-events", limit=3)
        assert [len(p) for p in got] == [3, 3, 1]
        expected = sorted(zip(made, row_ids, strict=True), key=lambda e: (-e[0].event_time.timestamp(), e[1]))
        assert [e["id"] for p in got for e in p] == [row_id for _, row_id in expected]
        assert sorted(e["event_id"][-2:] for p in got for e in p) == ["01", "02", "03", "04", "05", "06", "07"]

        got = await pages(client, auth, "/v1/resources", limit=3)
        assert [r["resource_id"] for p in got for r in p] == [f"i-{n:04d}" for n in range(7)]


async def test_bad_cursor_and_limit(database_url: str) -> None:
    await add_user(database_url, "acme", "alice", "pw")
    async with db(database_url) as conn:
        await insert_cost_events(conn, [cost_event("acme", n) for n in range(1, 4)])
    async with asgi_client(database_url) as (client, _app):
        auth = bearer(await login(client, "alice", "pw"))
        cost_cursor = (await client.get("/v1/cost-events?limit=1", headers=auth)).json()["next_cursor"]
        assert cost_cursor is not None
        # a cursor of another list, and garbage, are 400s
        wrong_list = await client.get("/v1/anomalies", params={"cursor": cost_cursor}, headers=auth)
        assert wrong_list.status_code == 400
        assert (await client.get("/v1/anomalies?cursor=bm9wZQ", headers=auth)).status_code == 400
        assert (await client.get("/v1/anomalies?cursor=%%%", headers=auth)).status_code == 400
        assert (await client.get("/v1/anomalies?limit=501", headers=auth)).status_code == 422
        assert (await client.get("/v1/anomalies?limit=0", headers=auth)).status_code == 422
        assert (await client.get("/v1/anomalies?limit=500", headers=auth)).status_code == 200
