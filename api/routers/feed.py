"""WS /v1/feed: the tenant's anomalies as they are committed, resumable by feed_id.

Protocol (also in the OpenAPI description):
* authenticate with the first message `{"type": "auth", "token": "<access_token>", "after": <feed_id>}` (preferred:
  the token stays out of URLs and access logs) or with the query `?token=<access_token>&after=<feed_id>`;
  a missing, bad or expired token closes the connection with 1008. `after` is optional: without it only new
  anomalies are sent.
* then the server sends `{"type": "anomaly", "feed_id": N, "anomaly": {...}}` in feed_id order: first what was
  missed after `after`, then live. Remember the last feed_id and reconnect with `after=<it>` to miss nothing.
* close codes: 1013 the client fell `feed_queue_max` messages behind (reconnect with `after`); 1008 the token
  expired; 1011 the database is unavailable; 1012 the server is restarting. Protocol pings every
  DD0C_FEED_PING_INTERVAL seconds; a client that does not answer within DD0C_FEED_PING_TIMEOUT is dropped.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Annotated, Any

import asyncpg
import orjson
from fastapi import APIRouter, Query, WebSocket
from starlette.websockets import WebSocketDisconnect, WebSocketState

from api.auth import AuthError, AuthProvider, Principal
from api.feed import FeedHub, Subscriber, cancel_and_reap
from ops.settings import Settings

router = APIRouter(tags=["feed"])
log = logging.getLogger("dd0c.api.feed")

_GONE = object()  # the client left before authenticating
_INVALID = object()


class ClientGone(Exception):
    """The connection cannot take another message (closed by the peer, the server or a ping timeout)."""


def _sender(ws: WebSocket) -> Any:
    async def send(text: str) -> None:
        try:
            await ws.send_text(text)
        # RuntimeError: the ASGI server refuses a send after its own close (e.g. after a ping timeout).
        except (WebSocketDisconnect, OSError, RuntimeError) as exc:
            raise ClientGone(str(exc)) from None

    return send


async def _close(ws: WebSocket, code: int, reason: str, grace: float) -> None:
    """Close with a code, but never wait on a peer that does not read: after `grace` seconds just let go."""
    if WebSocketState.DISCONNECTED in (ws.client_state, ws.application_state):
        return
    try:
        await asyncio.wait_for(ws.close(code, reason), grace)
    except (TimeoutError, WebSocketDisconnect, OSError, RuntimeError) as exc:
        log.debug("feed: close %d not delivered: %r", code, exc)


def _feed_id(value: Any) -> Any:
    """`after` from the query (text) or the first message (a JSON number): None, an int >= 0, or _INVALID."""
    if value is None:
        return None
    if isinstance(value, str) and value.isdecimal():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return _INVALID


async def _hello(ws: WebSocket, wait: float) -> Any:
    """The first message, when the token was not in the query: {"type": "auth", "token": ..., "after": ...}."""
    try:
        message = await asyncio.wait_for(ws.receive(), wait)
    except TimeoutError:
        return None
    if message["type"] == "websocket.disconnect":
        return _GONE
    raw = message.get("text") if message.get("text") is not None else message.get("bytes")
    try:
        hello = orjson.loads(raw or b"")
    except orjson.JSONDecodeError:
        return None
    return hello if isinstance(hello, dict) and hello.get("type") == "auth" else None


async def _until_disconnect(ws: WebSocket) -> None:
    # Keeps reading so that a peer that went away is noticed (and, with uvicorn, so that pongs are read at all:
    # it stops reading the socket while a received message waits for the app). Client messages are ignored.
    while (await ws.receive())["type"] != "websocket.disconnect":
        pass


async def _serve(ws: WebSocket, hub: FeedHub, sub: Subscriber, principal: Principal) -> tuple[int, str] | None:
    """Run until the client leaves (None) or must be closed ((code, reason))."""
    sender = asyncio.create_task(hub.stream(sub, _sender(ws)))
    receiver = asyncio.create_task(_until_disconnect(ws))
    dropped = asyncio.create_task(sub.dropped.wait())
    waiters = [sender, receiver, dropped]
    expiry = None
    if principal.expires_at is not None:
        seconds = (principal.expires_at - datetime.now(UTC)).total_seconds()
        expiry = asyncio.create_task(asyncio.sleep(max(seconds, 0.0)))
        waiters.append(expiry)
    try:
        done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        await cancel_and_reap(*waiters)
    resume = f"reconnect with after={sub.position}"
    if receiver in done:
        return None
    if dropped in done:
        code = sub.close_code or 1013
        return code, ("too slow; " if code == 1013 else "server restarting; ") + resume
    if sender in done:
        exc = sender.exception()
        if isinstance(exc, ClientGone):
            log.debug("feed: client of tenant %s gone: %s", sub.tenant, exc)
            return None
        if isinstance(exc, (OSError, asyncpg.PostgresError, asyncpg.InterfaceError)):
            log.warning("feed: database error while streaming to tenant %s: %s", sub.tenant, exc)
            return 1011, f"feed unavailable; {resume}"
        if exc is not None:
            raise exc
    return 1008, "token expired"


@router.websocket("/v1/feed")
async def feed(
    websocket: WebSocket,
    token: Annotated[str | None, Query(description="access token (or send it in the first message)")] = None,
    after: Annotated[str | None, Query(description="last feed_id already seen")] = None,
) -> None:
    # Parameters are checked here, after accept, so that a bad one closes with 1008 like a bad token does
    # (a validation error before accept would be an HTTP 403 without a reason).
    settings: Settings = websocket.app.state.settings
    hub: FeedHub = websocket.app.state.hub
    auth: AuthProvider = websocket.app.state.auth
    grace = settings.feed_ping_interval + settings.feed_ping_timeout
    await websocket.accept()  # before any close, so that the client sees our close code (not an HTTP 403)

    position: Any = after
    if token is None:
        hello = await _hello(websocket, settings.feed_ping_timeout)
        if hello is _GONE:
            return
        token = hello.get("token") if hello else None
        position = hello.get("after", after) if hello else after
    position = _feed_id(position)
    if position is _INVALID:
        await _close(websocket, 1008, "after must be a feed_id (integer >= 0)", grace)
        return
    try:
        principal = auth.verify(token if isinstance(token, str) else "")
    except AuthError as exc:
        await _close(websocket, 1008, str(exc), grace)
        return

    try:
        sub = await hub.subscribe(principal.tenant, position)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        log.warning("feed: cannot subscribe tenant %s: %s", principal.tenant, exc)
        await _close(websocket, 1011, "feed unavailable; try again", grace)
        return
    try:
        outcome = await _serve(websocket, hub, sub, principal)
    finally:
        hub.unsubscribe(sub)
    if outcome is not None:
        await _close(websocket, *outcome, grace)
