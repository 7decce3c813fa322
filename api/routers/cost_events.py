"""GET /v1/cost-events: what was created and what it costs per hour, newest first, cursor-paginated."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import PoolDep, PrincipalDep
from api.models import CostEventOut
from api.pagination import DEFAULT_PAGE, Cursor, Limit, Page, PageResponse, page, time_cursor
from api.params import TimeOrAge
from projections import queries

router = APIRouter(prefix="/v1/cost-events", tags=["cost events"])

_KIND = "cost-events"


@router.get("", response_model=Page[CostEventOut], summary="List cost events, newest first")
async def list_cost_events(
    pool: PoolDep,
    principal: PrincipalDep,
    account: Annotated[str | None, Query(description="AWS account id")] = None,
    resource_type: Annotated[str | None, Query()] = None,
    region: Annotated[str | None, Query(description="e.g. us-east-1")] = None,
    priced: Annotated[bool | None, Query(description="false: only events whose price is unknown")] = None,
    since: Annotated[TimeOrAge | None, Query(description="event_time >= since (ISO-8601 or an age: 24h, 7d)")] = None,
    until: Annotated[TimeOrAge | None, Query(description="event_time < until")] = None,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
) -> PageResponse:
    f = queries.CostEventFilter(account, resource_type, region, priced, since, until)
    rows = await queries.list_cost_events(
        pool, principal.tenant, f, limit=limit + 1, after=time_cursor(_KIND, cursor)
    )
    items, next_cursor = page(_KIND, rows, limit, ("event_time", "id"))
    # Rows are already in the documented shape (tests check them against the model): skip re-validating up to
    # 500 items on the hot path and serialise them in one go.
    return PageResponse({"items": items, "next_cursor": next_cursor})
