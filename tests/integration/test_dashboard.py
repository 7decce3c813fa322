"""The dashboard: the real API app serves the page and its files, and every route and field the page's script
uses exists and answers (real Postgres, rows as the worker writes them)."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import orjson
from websockets.asyncio.client import connect

from api.dashboard import ASSETS, INDEX
from api.routers.dashboard import content_security_policy
from schemas.codec import loads
from schemas.events import Severity
from tests.integration.test_api_rows import (
    ACCOUNT_A,
    ACCOUNT_B,
    add_user,
    anomaly,
    asgi_client,
    bearer,
    db,
    insert_anomalies,
    insert_resources,
    live_server,
    login,
    resource,
    settings_for,
    wait_until,
)

SCRIPT = (ASSETS / "app.js").read_text()
ROUTES_USED = {"/v1/auth/login", "/v1/summary", "/v1/accounts", "/v1/anomalies", "/v1/resources", "/v1/zombies",
               "/v1/feed"}

# Fields the script reads from each response (as `a.<field>` / `r.<field>` / `t.<field>` in app.js).
ANOMALY_FIELDS = (
    "id", "feed_id", "severity", "account_id", "resource_type", "region", "instance_type", "hourly_cost",
    "expected_hourly_cost", "z", "actor", "reasons", "event_time", "detected_at", "backfill", "learning",
    "baseline_n", "baseline_stddev", "event_ids", "policy",
)
RESOURCE_FIELDS = (
    "account_id", "resource_id", "resource_type", "instance_type", "region", "hourly_cost", "opened_at",
    "opened_by_event",
)
TOTALS_FIELDS = (
    "running_hourly_cost", "running_resources", "unpriced_running_resources", "anomalies_total", "anomalies",
    "cost_events", "priced_cost_events", "unpriced_cost_events", "created_hourly_cost",
)


async def test_the_api_serves_the_page_and_its_files(database_url: str) -> None:
    async with asgi_client(database_url) as (client, _app):
        page = await client.get("/")  # no token: the page itself holds no data
        assert page.status_code == 200
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert page.text == INDEX.read_text()
        assert page.headers["content-security-policy"] == content_security_policy("dd0c.test")
        assert "connect-src 'self' ws://dd0c.test wss://dd0c.test;" in page.headers["content-security-policy"]
        assert "script-src 'self';" in page.headers["content-security-policy"]
        for ref in ('src="assets/app.js"', 'href="assets/app.css"', 'href="assets/favicon.svg"'):
            assert ref in page.text

        expected = {"app.js": "text/javascript", "app.css": "text/css", "favicon.svg": "image/svg+xml"}
        for name, media_type in expected.items():
            asset = await client.get(f"/assets/{name}")
            assert asset.status_code == 200, name
            assert asset.headers["content-type"].split(";")[0] in (media_type, "application/javascript"), name
            assert asset.content == (ASSETS / name).read_bytes()

        assert (await client.get("/assets/nothing.js")).status_code == 404
        assert (await client.get("/assets/../app.py")).status_code == 404
        # the page is not an API route: it stays out of the OpenAPI document
        assert "/" not in (await client.get("/openapi.json")).json()["paths"]


async def test_a_host_header_that_is_not_a_host_is_not_echoed_into_the_policy() -> None:
    assert content_security_policy("cost.example.com:8443").count("cost.example.com:8443") == 2
    assert "connect-src 'self';" in content_security_policy("evil.test; script-src *")
    assert "connect-src 'self';" in content_security_policy(None)


def test_the_page_loads_nothing_from_elsewhere() -> None:
    for path in (INDEX, ASSETS / "app.js", ASSETS / "app.css"):
        text = path.read_text()
        assert not re.search(r"https?://", text), f"{path.name} names another origin"
        assert "@import" not in text and "innerHTML" not in text, path.name


async def test_every_route_the_script_calls_exists(database_url: str) -> None:
    called = set(re.findall(r'"(/v1/[a-z/\-]+)"', SCRIPT))
    assert called == ROUTES_USED
    async with asgi_client(database_url) as (client, _app):
        paths = (await client.get("/openapi.json")).json()["paths"]
    assert "post" in paths["/v1/auth/login"]
    for path in ("/v1/summary", "/v1/accounts", "/v1/anomalies", "/v1/resources", "/v1/zombies"):
        assert "get" in paths[path], path
    # /v1/feed is a websocket (not in OpenAPI): test_the_feed_answers_the_hello_the_page_sends connects to it.
    # The page authenticates with the first message, as the protocol prefers (the token stays out of URLs).
    assert 'type: "auth", token: session.token' in SCRIPT


async def test_the_calls_the_page_makes_answer_with_what_it_reads(database_url: str) -> None:
    await add_user(database_url, "acme", "alice", "pw")
    async with db(database_url) as conn:
        await insert_anomalies(
            conn,
            [
                anomaly("acme", 1, severity=Severity.CRITICAL, hourly=21.96, expected=0.10),
                anomaly("acme", 2, severity=Severity.LOW, hourly=0.045),  # below the page's default "medium"
                anomaly("acme", 3, account=ACCOUNT_B, severity=Severity.HIGH, hourly=None, expected=None),
            ],
        )
        await insert_resources(
            conn,
            [
                resource("acme", "i-0p4d", hourly=21.96),
                resource("acme", "i-0m5", hourly=0.192),
                resource("acme", "i-0old", state="closed", hourly=3.0),
                resource("acme", "i-0odd", account=ACCOUNT_B, hourly=None),
            ],
        )
    async with asgi_client(database_url) as (client, _app):
        token = await login(client, "alice", "pw")  # the body the login form posts: {username, password}
        auth = bearer(token)

        # the page's first anomalies request: severity >= medium, live only, 50 a page
        page = (await client.get("/v1/anomalies?severity=medium&backfill=false&limit=50", headers=auth)).json()
        assert [(a["severity"], a["account_id"], a["hourly_cost"]) for a in page["items"]] == [
            ("critical", ACCOUNT_A, 21.96),
            ("high", ACCOUNT_B, None),
        ]
        for field in ANOMALY_FIELDS:
            assert f"a.{field}" in SCRIPT, field
            assert field in page["items"][0], field
        assert page["items"][0]["reasons"][0]["signal"] == "zscore"

        resources = (await client.get("/v1/resources?state=running&limit=500", headers=auth)).json()
        assert sorted(r["resource_id"] for r in resources["items"]) == ["i-0m5", "i-0odd", "i-0p4d"]
        assert resources["total_hourly_cost"] == 22.152  # 21.96 + 0.192; the unpriced one is counted apart
        assert (resources["resource_count"], resources["unpriced_running"]) == (3, 1)
        for field in RESOURCE_FIELDS:
            assert f"r.{field}" in SCRIPT and field in resources["items"][0], field

        summary = (await client.get("/v1/summary", headers=auth)).json()
        totals = summary["totals"]
        assert (totals["running_hourly_cost"], totals["running_resources"], totals["anomalies_total"]) == (
            22.152, 3, 3,
        )
        assert totals["anomalies"]["critical"] == 1
        for field in TOTALS_FIELDS:
            assert f"t.{field}" in SCRIPT and field in totals, field

        accounts = (await client.get("/v1/accounts", headers=auth)).json()
        assert "items" in accounts and "a.resource_types" in SCRIPT and "a.last_event_time" in SCRIPT


async def test_the_feed_answers_the_hello_the_page_sends(database_url: str) -> None:
    """The script's first message on /v1/feed, verbatim in shape: then anomalies arrive as the panel reads them."""
    await add_user(database_url, "acme", "alice", "pw")
    async with db(database_url) as conn, live_server(settings_for(database_url)) as (port, app):
        async with asgi_client(database_url) as (client, _):
            token = await login(client, "alice", "pw")
        ws = await connect(f"ws://127.0.0.1:{port}/v1/feed", ping_interval=None, compression=None)
        try:
            await ws.send(orjson.dumps({"type": "auth", "token": token}).decode())
            await wait_until(lambda: app.state.hub.subscriber_count() == 1, 10, "the page's socket to subscribe")
            await insert_anomalies(conn, [anomaly("acme", 7, severity=Severity.CRITICAL, hourly=21.96)])
            message: dict[str, Any] = loads(await asyncio.wait_for(ws.recv(), 10))
        finally:
            await ws.close()
    assert (message["type"], message["feed_id"]) == ("anomaly", 1)
    assert (message["anomaly"]["severity"], message["anomaly"]["hourly_cost"]) == ("critical", 21.96)
    for field in ("type", "feed_id", "anomaly"):
        assert f"message.{field}" in SCRIPT, field
