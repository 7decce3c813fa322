"""The live anomaly feed: one Postgres LISTEN per API process, fanned out to websocket clients per tenant.

Flow: the worker commits anomaly rows and `pg_notify('dd0c_feed', tenant)` in one transaction, so the
notification arrives only after the rows are visible. The hub reads rows with feed_id above its last one for
that tenant and offers each message to every live subscriber of the tenant.

Nobody can slow anyone else down:
* each subscriber has its own bounded queue and its own sender task; `publish` only ever `put_nowait`s, it
  never awaits a client;
* a subscriber whose queue is full is dropped (close code 1013, `ws_slow_client_disconnects`) - it can
  reconnect with `after=<last feed_id>` and catch up from the table;
* catch-up (resume) reads the table inside the subscriber's own sender task, not through the queue.

Every replica listens to Postgres itself, so fan-out across API replicas needs no extra broker.

A replay swaps rebuilt projection tables in (streams/replay): the anomalies it rebuilt have new feed ids, above
the ones clients have seen, and must not be sent as new. Every read of the table also reads the projection
generation in the same statement (so in the same snapshot); when it changed and the swap covered the tenant, the
reader jumps to the rebuilt table's last feed_id and the client gets one `{"type": "replaced", "feed_id": N}`
message (re-read GET /v1/anomalies; later anomalies follow as usual). The swap's NOTIFY on `dd0c_feed_replaced`
only wakes the hub early.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg

from projections.db import connect
from projections.generation import page as generation_page
from schemas.codec import dumps
from streams.pipeline import FEED_CHANNEL
from streams.replay import REPLACED_CHANNEL

log = logging.getLogger("dd0c.api.feed")


SendText = Callable[[str], Awaitable[None]]
RESET = -1  # queue item meaning "the projections were replaced: jump to Subscriber.reset"

Page = generation_page.Page  # the rows are (feed_id, Anomaly document)


async def read_page(db: Any, tenant: str, after: int, limit: int) -> Page[tuple[int, Any]]:
    """The generation, the tenant's last feed_id and a page after `after`, in one statement (one snapshot)."""
    return await generation_page.read_page(db, tenant, after, limit, columns=("feed_id", "data"),
                                           row=lambda r: (r["feed_id"], r["data"]))


def encode_replaced(feed_id: int, generation: int) -> str:
    return dumps({"type": "replaced", "feed_id": feed_id, "generation": generation,
                  "reason": "anomalies were rebuilt by a replay; re-read them (GET /v1/anomalies)"})


@dataclass
class FeedMetrics:
    slow_disconnects: int = 0
    messages_sent: int = 0


class Subscriber:
    """One websocket client: where it is in the feed and what is waiting to be sent to it."""

    def __init__(self, tenant: str, position: int, queue_max: int) -> None:
        self.tenant = tenant
        self.position = position  # the last feed_id sent to this client
        self.queue: asyncio.Queue[tuple[int, str]] = asyncio.Queue(maxsize=queue_max)
        self.live = False  # False while it catches up from the table: publish skips it
        self.caught_up = False  # True once it sends from its queue only
        self.close_code: int | None = None  # set when the hub drops it
        self.dropped = asyncio.Event()
        self.generation = 0  # projection generation its position refers to
        self.reset: tuple[int, int, str] | None = None  # (feed_id, generation, message) the hub queued a RESET for

    def __repr__(self) -> str:
        return f"<Subscriber {self.tenant} at {self.position} queued={self.queue.qsize()}>"


def encode(feed_id: int, anomaly: Any) -> str:
    """The wire message; serialised once per anomaly, whatever the number of clients."""
    return dumps({"type": "anomaly", "feed_id": feed_id, "anomaly": anomaly})


class FeedHub:
    """Registry of subscribers per tenant, the LISTEN connection and the fan-out."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        dsn: str,
        *,
        queue_max: int = 100,
        poll_interval: float = 5.0,
        page_size: int = 200,
    ) -> None:
        self._pool = pool
        self._dsn = dsn
        self._queue_max = queue_max
        self._poll_interval = poll_interval  # also re-reads watched tenants, in case a notification was missed
        self._page = page_size
        self._subs: dict[str, set[Subscriber]] = {}
        self._last: dict[str, int] = {}  # per watched tenant: the highest feed_id already published
        self._generation: dict[str, int] = {}  # per watched tenant: the projection generation _last refers to
        self._locks: dict[str, asyncio.Lock] = {}
        self._dirty: set[str] = set()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._listening = False
        self.metrics = FeedMetrics()

    # ------------------------------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._listen_forever(), name="dd0c-feed-listen"),
            asyncio.create_task(self._drain_forever(), name="dd0c-feed-drain"),
        ]
        for task in self._tasks:
            task.add_done_callback(_report_crash)

    async def stop(self) -> None:
        await cancel_and_reap(*self._tasks)
        self._tasks = []
        for subs in list(self._subs.values()):
            for sub in list(subs):
                self._drop(sub, 1012)  # service restart: reconnect with after=<last feed_id>

    @property
    def listening(self) -> bool:
        return self._listening

    def subscribers(self, tenant: str) -> list[Subscriber]:
        return list(self._subs.get(tenant, ()))

    def subscriber_count(self, tenant: str | None = None) -> int:
        if tenant is not None:
            return len(self._subs.get(tenant, ()))
        return sum(len(s) for s in self._subs.values())

    # ------------------------------------------------------------------------------------------ registry

    def _lock(self, tenant: str) -> asyncio.Lock:
        return self._locks.setdefault(tenant, asyncio.Lock())

    async def subscribe(self, tenant: str, after: int | None) -> Subscriber:
        """Register a client that has seen everything up to `after` (None: only what comes next).

        It starts not live; `stream` catches it up from the table and then switches it to the queue.
        """
        async with self._lock(tenant):  # not while a drain for this tenant is half way
            if tenant not in self._last:
                # First watcher of this tenant: the hub publishes from here on. Rows at or below it are committed
                # already, so the subscriber's own catch-up will read them.
                page = await read_page(self._pool, tenant, 0, 0)
                self._last[tenant], self._generation[tenant] = page.top, page.generation
            position = self._last[tenant] if after is None else after
            sub = Subscriber(tenant, position, self._queue_max)
            sub.generation = self._generation[tenant]
            self._subs.setdefault(tenant, set()).add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        subs = self._subs.get(sub.tenant)
        if subs is None or sub not in subs:
            return
        subs.discard(sub)
        if not subs:
            # Nobody watches this tenant: stop tracking it; the next subscriber re-reads where the feed ends.
            del self._subs[sub.tenant]
            self._last.pop(sub.tenant, None)
            self._generation.pop(sub.tenant, None)
            self._dirty.discard(sub.tenant)

    def _drop(self, sub: Subscriber, code: int) -> None:
        self.unsubscribe(sub)
        sub.close_code = code
        sub.dropped.set()

    # ------------------------------------------------------------------------------------------ fan-out

    def publish(self, tenant: str, feed_id: int, anomaly: Any) -> int:
        """Offer one anomaly to every live subscriber of the tenant. Never awaits; returns how many took it."""
        text = encode(feed_id, anomaly)
        delivered = 0
        for sub in list(self._subs.get(tenant, ())):
            if not sub.live:
                continue
            try:
                sub.queue.put_nowait((feed_id, text))
                delivered += 1
            except asyncio.QueueFull:
                self.metrics.slow_disconnects += 1
                log.warning(
                    "feed: dropping slow client of tenant %s (queued=%d, last sent feed_id=%d)",
                    tenant,
                    sub.queue.qsize(),
                    sub.position,
                )
                self._drop(sub, 1013)
        return delivered

    async def stream(self, sub: Subscriber, send: SendText) -> None:
        """The subscriber's sender task: catch up from the table, go live, then send from its queue forever."""
        await self._send_stored(sub, send)
        sub.live = True
        # Rows committed while catching up: read them once more now that publish also queues for us. Anything
        # the hub publishes from here on is either read here too (and skipped below) or only queued.
        await self._send_stored(sub, send)
        sub.caught_up = True
        while True:
            feed_id, text = await sub.queue.get()
            if feed_id == RESET:
                reset, sub.reset = sub.reset, None
                if reset is not None and reset[1] != sub.generation:  # not already met in _send_stored
                    sub.position, sub.generation = reset[0], reset[1]
                    await send(reset[2])
                continue
            if feed_id <= sub.position:
                continue
            await send(text)
            sub.position = feed_id
            self.metrics.messages_sent += 1

    async def _send_stored(self, sub: Subscriber, send: SendText) -> None:
        while True:
            page = await read_page(self._pool, sub.tenant, sub.position, self._page)
            if page.generation != sub.generation:
                replaced = page.replaces(sub.tenant, sub.generation)
                sub.generation = page.generation
                if replaced:
                    sub.position = page.top
                    await send(encode_replaced(page.top, page.generation))
                    continue
            rows = page.rows
            for feed_id, anomaly in rows:
                await send(encode(feed_id, anomaly))
                sub.position = feed_id
                self.metrics.messages_sent += 1
            if len(rows) < self._page:
                return

    # ------------------------------------------------------------------------------------------ Postgres side

    def notify(self, tenant: str) -> None:
        """New anomalies were committed for `tenant` (ignored unless someone watches it)."""
        if tenant in self._subs:
            self._dirty.add(tenant)
            self._wake.set()

    def _on_notification(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self.notify(payload)

    async def _drain_forever(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self._poll_interval)
            except TimeoutError:
                self._dirty.update(self._subs)  # safety net for a notification lost with a dropped connection
            self._wake.clear()
            dirty, self._dirty = self._dirty, set()
            for tenant in sorted(dirty):
                try:
                    await self._drain(tenant)
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                    log.warning("feed: cannot read new anomalies of tenant %s: %s", tenant, exc)
                    self._dirty.add(tenant)  # retried at the next poll, not in a tight loop

    async def _drain(self, tenant: str) -> None:
        async with self._lock(tenant):
            while tenant in self._subs:
                page = await read_page(self._pool, tenant, self._last[tenant], self._page)
                if page.generation != self._generation[tenant]:
                    replaced = page.replaces(tenant, self._generation[tenant])
                    self._generation[tenant] = page.generation
                    if replaced:
                        self._replaced(tenant, page)
                        continue
                rows = page.rows
                for feed_id, anomaly in rows:
                    self.publish(tenant, feed_id, anomaly)
                    if tenant not in self._last:
                        return  # its last subscriber was just dropped
                    self._last[tenant] = feed_id
                if len(rows) < self._page:
                    return
                await asyncio.sleep(0)  # let the sender tasks empty their queues before the next page

    def _replaced(self, tenant: str, page: Page[tuple[int, Any]]) -> None:
        """The tenant's anomalies were rebuilt: publish from the new table's end, and tell every live client."""
        self._last[tenant] = page.top
        text = encode_replaced(page.top, page.generation)
        for sub in list(self._subs.get(tenant, ())):
            if not sub.live:
                continue  # still catching up from the table: its own read sees the new generation
            sub.reset = (page.top, page.generation, text)
            try:
                sub.queue.put_nowait((RESET, text))
            except asyncio.QueueFull:
                self.metrics.slow_disconnects += 1
                self._drop(sub, 1013)

    def _on_replaced(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        for tenant in list(self._subs) if payload == "*" else [payload]:
            self.notify(tenant)

    async def _listen_forever(self) -> None:
        backoff = 0.5
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await connect(self._dsn)
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _c, lost=lost: lost.set())
                await conn.add_listener(FEED_CHANNEL, self._on_notification)
                await conn.add_listener(REPLACED_CHANNEL, self._on_replaced)
                self._listening = True
                backoff = 0.5
                log.info("feed: listening on %s", FEED_CHANNEL)
                # Whatever was committed while not listening: re-read every watched tenant once.
                self._dirty.update(self._subs)
                self._wake.set()
                await lost.wait()
                log.warning("feed: LISTEN connection lost; reconnecting")
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("feed: cannot LISTEN on %s: %s; retrying in %.1fs", FEED_CHANNEL, exc, backoff)
            finally:
                self._listening = False
                if conn is not None and not conn.is_closed():
                    conn.terminate()  # synchronous: safe even while being cancelled
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)


def _report_crash(task: asyncio.Task[None]) -> None:
    # Both loops handle every expected failure themselves; ending any other way is a bug that stops the feed.
    if not task.cancelled() and task.exception() is not None:
        log.error("feed: %s stopped", task.get_name(), exc_info=task.exception())


async def cancel_and_reap(*tasks: asyncio.Task[Any]) -> None:
    """Cancel tasks and wait for them; their outcomes stay on the task objects for the caller to inspect."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
