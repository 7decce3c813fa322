"""What API users see of a replay: GET /v1/anomalies serves the rebuilt anomalies, and a live websocket client gets
one `replaced` message instead of the whole rebuilt history, then new anomalies as usual."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
from websockets.asyncio.client import connect as ws_connect

from projections.db import connect
from streams.log.postgres import append
from streams.replay.replay import ReplayOptions, replay
from tests.integration import ctgen
from tests.integration.test_api_rows import add_user, asgi_client, bearer, live_server, login, settings_for, wait_until
from tests.integration.test_feed_resume import OPTIONS, next_messages, token
from tests.integration.test_replay import RECORDS, drain, prices, strict


async def all_anomalies(client: httpx.AsyncClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 200} | ({"cursor": cursor} if cursor else {})
        response = await client.get("/v1/anomalies", params=params, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items


async def test_a_stricter_replay_changes_what_the_api_serves(database_url: str, tmp_path: Path) -> None:
    conn = await connect(database_url)
    try:
        await append(conn, ctgen.entries(RECORDS), keep_read_only=False)
        await drain(database_url)
        await add_user(database_url, "default", "alice", "pw")
        async with asgi_client(database_url) as (client, _app):
            headers = bearer(await login(client, "alice", "pw"))
            before = await all_anomalies(client, headers)
            kept = [a for a in before if a["severity"] in ("medium", "high", "critical")]
            assert (len(before), len(kept)) == (15, 6)  # see tests/integration/test_replay.py

            await replay(database_url, prices(), ReplayOptions(policy=strict(tmp_path)))

            after = await all_anomalies(client, headers)
            # exactly the medium/high ones survive (same ids: anomaly ids are uuid5 of tenant/account/event)
            assert sorted(a["id"] for a in after) == sorted(a["id"] for a in kept)
            assert Counter(a["severity"] for a in after) == Counter({"medium": 5, "high": 1})
            assert {a["policy"] for a in after} == {"strict"}
    finally:
        await conn.close()


async def test_a_live_feed_client_gets_replaced_not_the_rebuilt_history(database_url: str, tmp_path: Path) -> None:
    conn = await connect(database_url)
    try:
        await append(conn, ctgen.entries(RECORDS), keep_read_only=False)
        await drain(database_url)
        async with live_server(settings_for(database_url)) as (port, app):
            hub = app.state.hub
            client = await ws_connect(f"ws://127.0.0.1:{port}/v1/feed?token={token('default')}", **OPTIONS)
            await wait_until(lambda: hub.subscriber_count() == 1, 10, "the client to register")
            await wait_until(lambda: all(s.caught_up for s in hub.subscribers("default")), 10, "its catch-up")

            await replay(database_url, prices(), ReplayOptions(policy=strict(tmp_path)))
            top = await conn.fetchval("SELECT max(feed_id) FROM anomalies WHERE tenant_id = 'default'")
            [replaced] = await next_messages(client, 1)
            assert (replaced["type"], replaced["feed_id"], replaced["generation"]) == ("replaced", top, 1)

            # a new, expensive launch after the swap: the next message is exactly it, nothing rebuilt before it
            last = datetime.fromisoformat(RECORDS[-1]["eventTime"])
            big = ctgen.run_instances(10_000, at=last + timedelta(hours=1), instance_type="p4d.24xlarge")
            await append(conn, ctgen.entries([big]), keep_read_only=False)
            await drain(database_url)
            [message] = await next_messages(client, 1)
            assert message["type"] == "anomaly" and message["feed_id"] > top
            assert message["anomaly"]["event_ids"] == [big["eventID"]]
            assert message["anomaly"]["severity"] in ("high", "critical")
            assert message["anomaly"]["policy"] == "strict"  # the live worker reloaded the stored policy
            await client.close()

            # a client that connects after the swap and resumes from an id of the new table: nothing rebuilt either
            again = await ws_connect(f"ws://127.0.0.1:{port}/v1/feed?token={token('default')}&after={top}",
                                     **OPTIONS)
            assert [m["feed_id"] for m in await next_messages(again, 1)] == [message["feed_id"]]
            await again.close()
    finally:
        await conn.close()


async def test_hub_catch_up_across_a_swap_sends_replaced_once(database_url: str, tmp_path: Path) -> None:
    """A subscriber still catching up from the table when the swap commits jumps to the new end too."""
    conn = await connect(database_url)
    try:
        await append(conn, ctgen.entries(RECORDS), keep_read_only=False)
        await drain(database_url)
        async with asgi_client(database_url) as (_client, app):
            hub = app.state.hub
            sub = await hub.subscribe("default", 0)  # generation 0, position 0: everything is "to catch up"
            await replay(database_url, prices(), ReplayOptions(policy=strict(tmp_path)))
            got: list[dict[str, Any]] = []

            async def send(text: str) -> None:
                got.append(orjson.loads(text))

            task = asyncio.create_task(hub.stream(sub, send))
            await wait_until(lambda: sub.caught_up, 10, "the catch-up")
            top = await conn.fetchval("SELECT max(feed_id) FROM anomalies WHERE tenant_id = 'default'")
            assert got == [{"type": "replaced", "feed_id": top, "generation": 1,
                            "reason": "anomalies were rebuilt by a replay; re-read them (GET /v1/anomalies)"}]
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            hub.unsubscribe(sub)
    finally:
        await conn.close()
