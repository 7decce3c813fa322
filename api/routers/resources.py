"""GET /v1/resources: what runs now and what it burns per hour (the resources ledger)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from api.deps import PoolDep, PrincipalDep
from api.models import ResourcePage
from api.pagination import DEFAULT_PAGE, Cursor, Limit, name_cursor, page
from projections import queries

router = APIRouter(prefix="/v1/resources", tags=["resources"])

_KIND = "resources"


@router.get("", response_model=ResourcePage, summary="Resources and their $/hour (running ones by default)")
async def list_resources(
    pool: PoolDep,
    principal: PrincipalDep,
    state: Annotated[
        Literal["running", "stopped", "closed", "all"], Query(description="which resources; default: running now")
    ] = "running",
    account: Annotated[str | None, Query(description="AWS account id")] = None,
    resource_type: Annotated[str | None, Query()] = None,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
) -> dict[str, object]:
    wanted = None if state == "all" else state
    rows = await queries.list_resources(
        pool,
        principal.tenant,
        state=wanted,
        account=account,
        resource_type=resource_type,
        limit=limit + 1,
        after=name_cursor(_KIND, cursor),
    )
    totals = await queries.resource_totals(
        pool, principal.tenant, state=wanted, account=account, resource_type=resource_type
    )
    items, next_cursor = page(_KIND, rows, limit, ("account_id", "resource_id"))
    return {"items": items, "next_cursor": next_cursor, **totals}
