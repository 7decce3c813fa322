"""GET /v1/summary and GET /v1/accounts: the tenant at a glance, per AWS account."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import PoolDep, PrincipalDep
from api.models import AccountList, Summary
from api.params import TimeOrAge
from projections import queries

router = APIRouter(prefix="/v1", tags=["summary"])


@router.get("/summary", response_model=Summary, summary="Per account: cost events, anomalies, burning now")
async def summary(
    pool: PoolDep,
    principal: PrincipalDep,
    since: Annotated[TimeOrAge | None, Query(description="count cost events / anomalies with event_time >= since")]
    = None,
    until: Annotated[TimeOrAge | None, Query(description="... and event_time < until")] = None,
) -> dict[str, object]:
    accounts = await queries.summary(pool, principal.tenant, since=since, until=until)
    return {"accounts": accounts, "totals": queries.summary_totals(accounts)}


@router.get("/accounts", response_model=AccountList, summary="AWS accounts this tenant has data for")
async def accounts(pool: PoolDep, principal: PrincipalDep) -> dict[str, object]:
    return {"items": await queries.list_accounts(pool, principal.tenant)}
