"""The FastAPI application: `create_app(settings)`, and `server_config` for running it under uvicorn.

The app is thin: every route is a named-dependency function over `projections.queries`; the pool, the auth
provider and the feed hub live for the app's lifespan (one pool and one LISTEN connection per process).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from api.auth import LocalAuthProvider
from api.feed import FeedHub
from api.pagination import CodecJSONResponse, InvalidCursor
from api.push_metrics import PushMetrics
from api.routers import anomalies, auth, baselines, cost_events, dashboard, feed, health, resources, summary
from ops.runtime import database_url
from ops.settings import Settings, load_settings
from projections.db import create_pool

log = logging.getLogger("dd0c.api")

DESCRIPTION = """
AWS cost anomalies from CloudTrail, as they happen. Every route except login, health and metrics needs
`Authorization: Bearer <token>` (from `POST /v1/auth/login`) and reads only the token's tenant.

* Dollar figures are USD per hour as JSON numbers; `null` means the price is unknown (never 0, never NaN).
* Lists are newest first (or by account) and cursor-paginated: pass `next_cursor` back as `cursor`;
  `next_cursor` is null on the last page. `limit` is at most 500.
* `severity` on /v1/anomalies is a minimum: `severity=high` returns high and critical.
* Time filters: `since` is inclusive, `until` exclusive, both on the event time; a naive time means UTC, and an
  age (`90m`, `24h`, `7d`, `2w`) means that long before now.

**Live feed** (websocket, not listed below): `GET /v1/feed`. Send `{"type": "auth", "token": "<token>",
"after": <last feed_id>}` as the first message (or use `?token=...&after=...`; the query works too but puts the
token in URLs). A bad or expired token closes with 1008. Messages: `{"type": "anomaly", "feed_id": N,
"anomaly": {...}}` in feed_id order: what was missed after `after`, then live. Close 1013 means the client fell
behind: reconnect with `after` = the last feed_id received.
"""

_CLOSE_POOL_TIMEOUT = 10.0


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app. Refuses the built-in JWT secret unless DD0C_MODE=demo (raises Dd0cError)."""
    settings = settings if settings is not None else load_settings()
    settings.require_real_secret()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        dsn = settings.database_url or database_url()
        pool = await create_pool(dsn)
        hub = FeedHub(pool, dsn, queue_max=settings.feed_queue_max, poll_interval=settings.feed_ping_interval)
        app.state.pool = pool
        app.state.hub = hub
        app.state.auth = LocalAuthProvider(pool, settings.jwt_secret.get_secret_value(), settings.jwt_ttl_seconds)
        await hub.start()
        try:
            yield
        finally:
            await hub.stop()
            push_writer = getattr(app.state, "log_writer", None)  # opened by the first push (api/routers/push.py)
            if push_writer is not None:
                await push_writer.close()
            try:
                await asyncio.wait_for(pool.close(), _CLOSE_POOL_TIMEOUT)
            except TimeoutError:
                pool.terminate()

    app = FastAPI(
        title="dd0c/cost API",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        default_response_class=CodecJSONResponse,
        docs_url="/docs",
        openapi_url="/openapi.json",
    )
    app.state.settings = settings
    app.state.push_metrics = PushMetrics()  # counted by api/routers/push.py, shown by /v1/metrics
    for module in (auth, health, anomalies, cost_events, baselines, resources, summary, feed):
        app.include_router(module.router)
    from api.routers import aws_accounts, push  # the account registry and HTTP push (issue 4)

    app.include_router(aws_accounts.router)
    app.include_router(push.router)
    from api.routers import governance  # panic mode and notification settings (issue 5)

    app.include_router(governance.router)
    from api.routers import zombies  # the zombie hunter's findings and decisions (issue 5)

    app.include_router(zombies.router)
    dashboard.install(app)  # the dashboard page at / and its files at /assets

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI echoes the offending input in 422 bodies; for a login that input is the password. Keep the
        # location and the message, never the value.
        errors = [{k: v for k, v in e.items() if k not in ("input", "ctx", "url")} for e in exc.errors()]
        return JSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)

    @app.exception_handler(InvalidCursor)
    async def invalid_cursor(_request: Request, exc: InvalidCursor) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    return app


class RedactTokens(logging.Filter):
    """Access logs print the request path with its query; a feed token given as `?token=` must not end up there."""

    _TOKEN = re.compile(r"([?&]token=)[^&\s\"']+")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "token=" in message:
            record.msg, record.args = self._TOKEN.sub(r"\1<redacted>", message), ()
        return True


def install_log_redaction() -> None:
    for name in ("uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())


def server_config(
    app: FastAPI,
    settings: Settings,
    *,
    host: str | None = None,
    port: int | None = None,
) -> uvicorn.Config:
    """uvicorn settings for the API: protocol pings from the feed settings (dead clients are found by them),
    logging left to the caller's configuration, token redaction on uvicorn's loggers."""
    install_log_redaction()
    return uvicorn.Config(
        app,
        host=host or settings.api_host,
        port=port if port is not None else settings.api_port,
        ws_ping_interval=settings.feed_ping_interval,
        ws_ping_timeout=settings.feed_ping_timeout,
        log_config=None,
        lifespan="on",
        # A client that stopped reading keeps its connection open until its buffer drains: do not let it hold up
        # a shutdown for longer than a dead client may live.
        timeout_graceful_shutdown=max(10, int(settings.feed_ping_interval + settings.feed_ping_timeout)),
    )
