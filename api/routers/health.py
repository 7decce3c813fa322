"""GET /v1/health (checks the database) and GET /v1/metrics (Prometheus text format: the live feed, and the HTTP
push endpoint's intake counters). Both unauthenticated: neither says anything about any tenant's data."""

from __future__ import annotations

import asyncio
import logging

import asyncpg
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from api.deps import HubDep, PoolDep
from api.models import Health
from api.push_metrics import PushMetrics
from ops.prometheus import MEDIA_TYPE, Family, render

router = APIRouter(prefix="/v1", tags=["operations"])
log = logging.getLogger("dd0c.api.health")

_HEALTH_TIMEOUT = 2.0


@router.get("/health", response_model=Health, responses={503: {"model": Health, "description": "database down"}})
async def health(pool: PoolDep, hub: HubDep) -> Health | JSONResponse:
    try:
        await asyncio.wait_for(pool.fetchval("SELECT 1"), _HEALTH_TIMEOUT)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        log.warning("health: database check failed: %s", exc)
        body = Health(status="unavailable", database=f"error: {type(exc).__name__}", feed_listening=hub.listening)
        return JSONResponse(body.model_dump(), status_code=503)
    return Health(status="ok", database="ok", feed_listening=hub.listening)


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text exposition format 0.0.4"}},
)
async def metrics(request: Request, hub: HubDep) -> PlainTextResponse:
    feed = [
        Family("dd0c_feed_subscribers", "gauge", "Websocket feed clients connected to this API process.",
               {(): hub.subscriber_count()}),
        Family("dd0c_ws_slow_client_disconnects_total", "counter",
               "Feed clients dropped (close 1013) because their queue was full.", {(): hub.metrics.slow_disconnects}),
        Family("dd0c_ws_messages_sent_total", "counter", "Anomaly messages sent to feed clients.",
               {(): hub.metrics.messages_sent}),
        Family("dd0c_feed_listening", "gauge", "1 while the LISTEN connection to Postgres is up.",
               {(): int(hub.listening)}),
    ]
    push: PushMetrics = request.app.state.push_metrics
    return PlainTextResponse(render([*feed, *push.families()]), media_type=MEDIA_TYPE)
