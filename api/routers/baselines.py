"""GET /v1/baselines: what is normal per (account, resource type)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import PoolDep, PrincipalDep
from api.models import BaselineOut
from api.pagination import DEFAULT_PAGE, Cursor, Limit, Page, name_cursor, page
from projections import queries

router = APIRouter(prefix="/v1/baselines", tags=["baselines"])

_KIND = "baselines"


@router.get("", response_model=Page[BaselineOut], summary="List baselines by account and resource type")
async def list_baselines(
    pool: PoolDep,
    principal: PrincipalDep,
    account: Annotated[str | None, Query(description="AWS account id")] = None,
    resource_type: Annotated[str | None, Query()] = None,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
) -> dict[str, object]:
    rows = await queries.list_baselines(
        pool,
        principal.tenant,
        account=account,
        resource_type=resource_type,
        limit=limit + 1,
        after=name_cursor(_KIND, cursor),
    )
    items, next_cursor = page(_KIND, rows, limit, ("account_id", "resource_type"))
    return {"items": items, "next_cursor": next_cursor}
