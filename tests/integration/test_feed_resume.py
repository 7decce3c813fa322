"""The live feed: resume with `after`, authentication (1008), tenant isolation, ping timeout, and the hub's
publish path on its own."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect

from api.auth import LocalAuthProvider, Principal
from schemas.codec import loads
from tests.integration.test_api_rows import (
    SECRET,
    anomaly,
    asgi_client,
    db,
    insert_anomalies,
    live_server,
    settings_for,
    wait_until,
)

OPTIONS: dict[str, Any] = {"ping_interval": None, "compression": None}


def token(tenant: str = "acme", *, ttl: int = 3600, now: datetime | None = None) -> str:
    return LocalAuthProvider(None, SECRET, ttl).issue(Principal(tenant, "alice"), now=now).access_token  # type: ignore[arg-type]


async def next_messages(client: ClientConnection, count: int) -> list[dict[str, Any]]:
    return [loads(await asyncio.wait_for(client.recv(), 10)) for _ in range(count)]


async def closed_with(client: ClientConnection) -> tuple[int | None, str | None]:
    await asyncio.wait_for(client.wait_closed(), 10)
    return client.close_code, client.close_reason


async def test_feed_resumes_after_the_last_id_seen(database_url: str) -> None:
    """A client that reconnects with after=<last feed_id> receives exactly what it missed, then live ones."""
    made = [anomaly("acme", n) for n in range(1, 12)]
    async with db(database_url) as conn, live_server(settings_for(database_url)) as (port, app):
        hub = app.state.hub
        await insert_anomalies(conn, made[0:5])  # feed_ids 1..5, before anyone listens
        uri = f"ws://127.0.0.1:{port}/v1/feed"

        # first connection: token and position in the first message
        first = await connect(uri, **OPTIONS)
        await first.send(orjson.dumps({"type": "auth", "token": token(), "after": 2}).decode())
        caught_up = await next_messages(first, 3)
        assert [m["feed_id"] for m in caught_up] == [3, 4, 5]
        assert [m["anomaly"]["id"] for m in caught_up] == [a.id for a in made[2:5]]
        await insert_anomalies(conn, made[5:7])  # live: 6, 7
        assert [m["feed_id"] for m in await next_messages(first, 2)] == [6, 7]
        await first.close()
        await wait_until(lambda: hub.subscriber_count() == 0, 10, "the first connection to leave")

        await insert_anomalies(conn, made[7:10])  # 8, 9, 10 while disconnected

        # reconnect with the query form: exactly 8, 9, 10, then the live 11
        second = await connect(f"{uri}?token={token()}&after=7", **OPTIONS)
        missed = await next_messages(second, 3)
        assert [m["feed_id"] for m in missed] == [8, 9, 10]
        assert [m["anomaly"]["event_ids"] for m in missed] == [list(a.event_ids) for a in made[7:10]]
        await wait_until(lambda: hub.subscriber_count() == 1, 10, "the second connection to register")
        await insert_anomalies(conn, made[10:11])
        assert [m["feed_id"] for m in await next_messages(second, 1)] == [11]

        # without `after`: only what comes next
        fresh = await connect(f"{uri}?token={token()}", **OPTIONS)
        await wait_until(lambda: hub.subscriber_count() == 2, 10, "the third connection to register")
        await insert_anomalies(conn, [anomaly("acme", 12)])
        assert [m["feed_id"] for m in await next_messages(fresh, 1)] == [12]
        assert [m["feed_id"] for m in await next_messages(second, 1)] == [12]
        await second.close()
        await fresh.close()


async def test_feed_is_per_tenant(database_url: str) -> None:
    async with db(database_url) as conn, live_server(settings_for(database_url)) as (port, app):
        uri = f"ws://127.0.0.1:{port}/v1/feed"
        acme = await connect(f"{uri}?token={token('acme')}", **OPTIONS)
        globex = await connect(f"{uri}?token={token('globex')}", **OPTIONS)
        await wait_until(lambda: app.state.hub.subscriber_count() == 2, 10, "two subscribers")
        await insert_anomalies(conn, [anomaly("acme", 1), anomaly("acme", 2)])
        await insert_anomalies(conn, [anomaly("globex", 3)])
        assert [m["anomaly"]["tenant"] for m in await next_messages(globex, 1)] == ["globex"]
        assert [(m["feed_id"], m["anomaly"]["tenant"]) for m in await next_messages(acme, 2)] == [
            (1, "acme"), (2, "acme")
        ]
        await insert_anomalies(conn, [anomaly("acme", 4)])
        assert [m["feed_id"] for m in await next_messages(acme, 1)] == [4]
        await insert_anomalies(conn, [anomaly("globex", 5)])
        # globex's next message is its own 5: acme's 4 was never queued for it
        assert [m["feed_id"] for m in await next_messages(globex, 1)] == [5]
        await acme.close()
        await globex.close()


async def test_feed_refuses_bad_and_expired_tokens_with_1008(database_url: str) -> None:
    settings = settings_for(database_url, feed_ping_interval=0.5, feed_ping_timeout=0.5)
    async with live_server(settings) as (port, app):
        uri = f"ws://127.0.0.1:{port}/v1/feed"
        # a token with about a second left: accepted now, closed with 1008 when it expires
        short = token(ttl=2, now=datetime.now(UTC) - timedelta(seconds=1))
        expiring = await connect(f"{uri}?token={short}", **OPTIONS)

        code, reason = await closed_with(await connect(f"{uri}?token=not-a-token", **OPTIONS))
        assert (code, reason) == (1008, "invalid token")

        expired = token(now=datetime.now(UTC) - timedelta(hours=2))
        assert await closed_with(await connect(f"{uri}?token={expired}", **OPTIONS)) == (1008, "token expired")

        wrong_key = LocalAuthProvider(None, "some-other-secret-some-other-secret", 60)  # type: ignore[arg-type]
        client = await connect(uri, **OPTIONS)
        forged = wrong_key.issue(Principal("acme", "alice")).access_token
        await client.send(orjson.dumps({"type": "auth", "token": forged}).decode())
        assert await closed_with(client) == (1008, "invalid token")

        client = await connect(uri, **OPTIONS)
        await client.send("hello?")
        assert (await closed_with(client))[0] == 1008

        silent = await connect(uri, **OPTIONS)  # says nothing: closed once feed_ping_timeout has passed
        assert (await closed_with(silent))[0] == 1008

        for after in ("-1", "x"):
            client = await connect(f"{uri}?token={token()}&after={after}", **OPTIONS)
            assert await closed_with(client) == (1008, "after must be a feed_id (integer >= 0)")

        assert await closed_with(expiring) == (1008, "token expired")
        await wait_until(lambda: app.state.hub.subscriber_count() == 0, 10, "the registry to empty")


async def test_feed_drops_a_partitioned_client_at_the_ping_timeout(database_url: str) -> None:
    """R24's c2 as a real partition: no FIN, no close frame, no pong - only the server's ping finds it."""
    interval, timeout = 0.3, 0.3
    settings = settings_for(database_url, feed_ping_interval=interval, feed_ping_timeout=timeout)
    async with live_server(settings) as (port, app):
        hub = app.state.hub
        healthy = await connect(f"ws://127.0.0.1:{port}/v1/feed?token={token()}", **OPTIONS)
        gone = await connect(f"ws://127.0.0.1:{port}/v1/feed?token={token()}", **OPTIONS)
        await wait_until(lambda: hub.subscriber_count() == 2, 10, "two subscribers")
        gone.transport.pause_reading()  # the peer stops answering anything, the TCP connection stays up
        await wait_until(lambda: hub.subscriber_count() == 1, interval + timeout + 2.0, "the ping timeout")
        # the healthy client answered the same pings (its library does) and still gets the feed
        async with db(database_url) as conn:
            await insert_anomalies(conn, [anomaly("acme", 1)])
        assert [m["feed_id"] for m in await next_messages(healthy, 1)] == [1]
        assert hub.subscriber_count() == 1
        gone.transport.abort()
        await healthy.close()


async def test_hub_publish_drops_a_subscriber_whose_queue_is_full(database_url: str) -> None:
    """R24 through FeedHub.publish (no sockets): the fast subscriber gets every message, the one that stopped
    reading holds 10 sent + 1 in flight + 100 queued, and the 112th publish drops it with 1013."""
    async with asgi_client(database_url, feed_queue_max=100) as (_client, app):
        hub = app.state.hub
        fast = await hub.subscribe("acme", None)
        slow = await hub.subscribe("acme", None)
        fast_got: list[int] = []
        slow_got: list[int] = []
        never = asyncio.Event()

        async def fast_send(text: str) -> None:
            fast_got.append(loads(text)["feed_id"])

        async def slow_send(text: str) -> None:
            if len(slow_got) == 10:
                await never.wait()  # a peer that stopped reading: the send never completes
            slow_got.append(loads(text)["feed_id"])

        tasks = [asyncio.create_task(hub.stream(fast, fast_send)), asyncio.create_task(hub.stream(slow, slow_send))]
        await wait_until(lambda: fast.caught_up and slow.caught_up, 10, "both subscribers to catch up")
        for n in range(1, 301):
            assert hub.publish("acme", n, {"id": f"a{n}"}) == (2 if n <= 111 else 1)
            await wait_until(lambda n=n: fast_got[-1:] == [n], 10, f"fast to send {n}")
            if n == 111:
                assert slow.queue.qsize() == 100 and not slow.dropped.is_set()
            if n == 112:
                assert slow.dropped.is_set() and slow.close_code == 1013
        assert fast_got == list(range(1, 301))
        assert slow_got == list(range(1, 11))
        assert hub.metrics.slow_disconnects == 1
        assert hub.subscriber_count("acme") == 1
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        hub.unsubscribe(fast)
        assert hub.subscriber_count() == 0


async def test_catch_up_reads_the_table_not_the_queue(database_url: str) -> None:
    """More rows to catch up on than the queue holds: resuming must not count as being slow."""
    async with db(database_url) as conn:
        await insert_anomalies(conn, [anomaly("acme", n) for n in range(1, 251)], notify=False)
    async with asgi_client(database_url, feed_queue_max=5) as (_client, app):
        hub = app.state.hub
        for after in (0, 3, 250):
            sub = await hub.subscribe("acme", after)
            got: list[int] = []

            async def send(text: str, got: list[int] = got) -> None:
                got.append(loads(text)["feed_id"])

            task = asyncio.create_task(hub.stream(sub, send))
            await wait_until(lambda sub=sub: sub.caught_up, 10, "the catch-up")
            assert got == list(range(after + 1, 251))
            assert hub.metrics.slow_disconnects == 0
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            hub.unsubscribe(sub)
