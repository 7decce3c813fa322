"""GET /v1/anomalies (newest first, cursor-paginated) and GET /v1/anomalies/{id}."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query, status

from api.deps import PoolDep, PrincipalDep
from api.models import AnomalyOut
from api.pagination import DEFAULT_PAGE, Cursor, Limit, Page, PageResponse, page, time_cursor
from api.params import TimeOrAge
from projections import queries
from schemas.events import Severity

router = APIRouter(prefix="/v1/anomalies", tags=["anomalies"])

_KIND = "anomalies"


@router.get("", response_model=Page[AnomalyOut], summary="List anomalies, newest first")
async def list_anomalies(
    pool: PoolDep,
    principal: PrincipalDep,
    account: Annotated[str | None, Query(description="AWS account id")] = None,
    severity: Annotated[
        Severity | None,
        Query(description="minimum severity: `high` returns high and critical; `info` (or none) returns all"),
    ] = None,
    resource_type: Annotated[str | None, Query(description="e.g. ec2_instance, nat_gateway")] = None,
    since: Annotated[
        TimeOrAge | None, Query(description="event_time >= since (ISO-8601, naive means UTC; or an age: 24h, 7d)")
    ] = None,
    until: Annotated[TimeOrAge | None, Query(description="event_time < until")] = None,
    backfill: Annotated[bool | None, Query(description="true: only late-ingested history; false: only live")] = None,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
) -> PageResponse:
    f = queries.AnomalyFilter(account, severity, resource_type, since, until, backfill)
    rows = await queries.list_anomalies(pool, principal.tenant, f, limit=limit + 1, after=time_cursor(_KIND, cursor))
    items, next_cursor = page(_KIND, rows, limit, ("event_time", "id"))
    # Rows are already in the documented shape (tests check them against the model): skip re-validating up to
    # 500 items on the hot path and serialise them in one go.
    return PageResponse({"items": items, "next_cursor": next_cursor})


@router.get(
    "/{anomaly_id}",
    response_model=AnomalyOut,
    responses={404: {"description": "no such anomaly for your tenant"}},
    summary="One anomaly with its reasons",
)
async def get_anomaly(anomaly_id: UUID, pool: PoolDep, principal: PrincipalDep) -> dict[str, object]:
    item = await queries.get_anomaly(pool, principal.tenant, str(anomaly_id))
    if item is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "anomaly not found")
    return item
