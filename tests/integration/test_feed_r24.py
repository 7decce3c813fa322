"""R24 - dead and slow websocket clients must not block or leak the broadcaster.

A real uvicorn server on a free loopback port, real websocket clients (the `websockets` library), and the real
path for the 1000 messages: anomaly rows inserted with pg_notify in the same transaction, as the worker does;
the hub LISTENs, reads the rows and fans out.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from schemas.codec import loads
from schemas.events import Severity
from tests.integration.test_api_rows import (
    add_user,
    anomaly,
    db,
    insert_anomalies,
    live_server,
    settings_for,
    wait_until,
)

MESSAGES = 1000
BATCH = 10


async def small_window_socket(port: int) -> socket.socket:
    """A client socket with a tiny receive buffer: once its reader stops, the server backs up quickly."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    return sock


async def read(client: ClientConnection, into: list[dict[str, Any]], count: int) -> None:
    while len(into) < count:
        into.append(loads(await client.recv()))


async def test_r24_dead_and_slow_clients_do_not_block_the_feed(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """R24: c1 gets all 1000 in order; c2 (vanished, no close frame) and c3 (stopped reading, dropped at 100
    queued with 1013, counted in ws_slow_client_disconnects) leave the registry; nothing logged at ERROR."""
    caplog.set_level(logging.INFO)
    await add_user(database_url, "acme", "alice", "pw")
    # R24's server settings: ping every 5 s, 5 s to answer, 100 messages per client queue.
    settings = settings_for(database_url, feed_queue_max=100, feed_ping_interval=5.0, feed_ping_timeout=5.0)
    async with live_server(settings, sndbuf=16384) as (port, app):
        hub = app.state.hub
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            login = await http.post("/v1/auth/login", json={"username": "alice", "password": "pw"})
            token = login.json()["access_token"]
            uri = f"ws://127.0.0.1:{port}/v1/feed?token={token}"
            # No permessage-deflate: 1000 near-identical messages would compress to almost nothing, and c3 must
            # really back up. No client pings: only the server's keepalive is under test.
            options: dict[str, Any] = {"ping_interval": None, "compression": None}
            c1 = await connect(uri, **options)
            c2 = await connect(uri, **options)
            c3 = await connect(uri, sock=await small_window_socket(port), **options)
            await wait_until(
                lambda: [s.caught_up for s in hub.subscribers("acme")] == [True] * 3, 10, "three live subscribers"
            )

            got1: list[dict[str, Any]] = []
            got2: list[dict[str, Any]] = []
            got3: list[dict[str, Any]] = []
            reader1 = asyncio.create_task(read(c1, got1, MESSAGES))
            reader2 = asyncio.create_task(read(c2, got2, 10))
            reader3 = asyncio.create_task(read(c3, got3, 10))

            made = [anomaly("acme", n, severity=Severity.HIGH) for n in range(1, MESSAGES + 1)]
            feed_ids: list[int] = []
            async with db(database_url) as conn:
                for start in range(0, MESSAGES, BATCH):
                    feed_ids += await insert_anomalies(conn, made[start : start + BATCH])
                    if start == 10 * BATCH:
                        # c2 read its 10 and vanishes: TCP gone without a websocket close frame
                        await reader2
                        c2.transport.abort()
                    # the producer keeps pace with the healthy client (R24's 200/s is a rate, not a burst)
                    sent = len(feed_ids)
                    await wait_until(lambda n=sent: len(got1) >= n, 10, f"c1 to receive {sent}")
            await reader1
            await reader3

            # c1: all 1000, in order, each the anomaly that was inserted
            assert [m["feed_id"] for m in got1] == feed_ids == list(range(1, MESSAGES + 1))
            assert [m["anomaly"]["id"] for m in got1] == [a.id for a in made]
            assert {m["type"] for m in got1} == {"anomaly"}
            assert got1[0]["anomaly"]["event_ids"] == ["00000000-0000-4000-8000-000000000001"]

            # c2 and c3 are gone from the registry (c2 well within ping interval + timeout = 10 s); c1 stays
            await wait_until(lambda: hub.subscriber_count() == 1, 10, "the registry to shrink to c1")
            assert hub.metrics.slow_disconnects == 1
            dropped = [r.getMessage() for r in caplog.records if "dropping slow client" in r.getMessage()]
            assert len(dropped) == 1 and "tenant acme (queued=100," in dropped[0]

            # c3 reads again: a gap-free prefix of the feed, then the 1013 close
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    got3.append(loads(await c3.recv()))
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
            assert 10 < len(got3) < MESSAGES
            assert [m["feed_id"] for m in got3] == list(range(1, len(got3) + 1))

            metrics = (await http.get("/v1/metrics")).text
            assert "dd0c_feed_subscribers 1\n" in metrics
            assert "dd0c_ws_slow_client_disconnects_total 1\n" in metrics
            assert f"dd0c_ws_messages_sent_total {hub.metrics.messages_sent}\n" in metrics
            assert hub.metrics.messages_sent >= MESSAGES + 10 + len(got3)

            await c1.close()
            await wait_until(lambda: hub.subscriber_count() == 0, 10, "c1 to leave")
    assert not [r for r in caplog.records if token in r.getMessage()]  # the query token is redacted in logs
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
