"""/v1/zombies: resources that bill but do nothing (the zombies projection), and what people decide about them.

Acknowledge / snooze / reopen are facts in the log (`ZombieAcknowledged`, ...), like the scans' findings: the
route appends one and answers 202; the worker folds it into the list (within a batch's latency), and a replay
keeps it. Dollar figures here are USD per month.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.deps import PoolDep, PrincipalDep, SettingsDep
from api.pagination import DEFAULT_PAGE, Cursor, Limit, name_cursor, page
from projections.zombies import queries
from streams.log.writer import open_log_writer
from streams.zombies import events as ev
from streams.zombies.pure import ALL_CHECKS

router = APIRouter(prefix="/v1/zombies", tags=["zombies"])

_KIND = "zombies"
CheckName = Literal[
    "unattached_ebs_volume", "orphaned_ebs_snapshot", "unassociated_eip", "idle_nat_gateway", "idle_load_balancer",
    "stopped_instance", "stopped_instance_volume", "idle_ec2_instance", "idle_rds_instance",
]
assert set(CheckName.__args__) == set(ALL_CHECKS)  # type: ignore[attr-defined]  # one list of checks


@router.get("", summary="Zombies with their monthly waste; totals per account and per check")
async def list_zombies(
    pool: PoolDep,
    principal: PrincipalDep,
    status_: Annotated[
        Literal["open", "acknowledged", "snoozed", "resolved", "active", "all"],
        Query(alias="status", description="open (default): not resolved, acknowledged or snoozed; "
              "active: every unresolved one"),
    ] = "open",
    account: Annotated[str | None, Query(description="AWS account id")] = None,
    check: Annotated[CheckName | None, Query(description="the check that found it")] = None,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
) -> dict[str, Any]:
    now = datetime.now(UTC)
    filters: dict[str, Any] = {"account": account, "check": check, "status": status_, "now": now}
    rows = await queries.list_zombies(
        pool, principal.tenant, limit=limit + 1, after=name_cursor(_KIND, cursor), **filters
    )
    totals = await queries.zombie_totals(pool, principal.tenant, **filters)
    items, next_cursor = page(_KIND, rows, limit, ("account_id", "zombie_id"))
    return {"items": items, "next_cursor": next_cursor, **totals}


@router.get("/scans", summary="Latest scan runs: ok / partial / failed, region errors and their reasons")
async def list_scans(
    pool: PoolDep,
    principal: PrincipalDep,
    account: Annotated[str | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 20,
) -> dict[str, Any]:
    return {"items": await queries.list_scans(pool, principal.tenant, account=account, limit=limit)}


@router.get("/{zombie_id}", summary="One zombie: evidence, dollar figure, history of decisions")
async def get_zombie(zombie_id: str, pool: PoolDep, principal: PrincipalDep) -> dict[str, Any]:
    found = await queries.get_zombie(pool, principal.tenant, zombie_id)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such zombie")
    return found


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt field is an error, not silently dropped
    reason: str = Field(min_length=1, max_length=2000, description="why (kept in the log)")


class Snooze(Decision):
    days: float | None = Field(default=None, gt=0, le=3650, description="snooze this many days from now")
    until: datetime | None = Field(default=None, description="or until this time (UTC if naive)")

    @model_validator(mode="after")
    def one_end(self) -> Snooze:
        if (self.days is None) == (self.until is None):
            raise ValueError("give exactly one of days / until")
        return self


async def _decide(
    pool: Any, settings: Any, principal: Any, zombie_id: str, name: str, reason: str, until: datetime | None = None
) -> dict[str, Any]:
    account = await pool.fetchval(
        "SELECT account_id FROM zombies WHERE tenant_id = $1 AND zombie_id = $2", principal.tenant, zombie_id
    )
    if account is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such zombie")
    if not reason.strip():
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, "a reason is required")
    now = datetime.now(UTC)
    entry = ev.action_entry(
        principal.tenant, account, zombie_id, name, by=principal.username, reason=reason.strip(), at=now, until=until
    )
    async with open_log_writer(pool, settings) as writer:
        await writer.append([entry])
    return {"zombie_id": zombie_id, "action": name, "event_id": entry.event_id, "by": principal.username,
            "at": now, "until": until, "accepted": True}


@router.post("/{zombie_id}/acknowledge", status_code=status.HTTP_202_ACCEPTED,
             summary="Acknowledge (known, leave it): until the zombie resolves")
async def acknowledge(
    zombie_id: str, body: Decision, pool: PoolDep, principal: PrincipalDep, settings: SettingsDep
) -> dict[str, Any]:
    return await _decide(pool, settings, principal, zombie_id, ev.ACKNOWLEDGED, body.reason)


@router.post("/{zombie_id}/snooze", status_code=status.HTTP_202_ACCEPTED,
             summary="Snooze: out of the open list until a time, then open again by itself")
async def snooze(
    zombie_id: str, body: Snooze, pool: PoolDep, principal: PrincipalDep, settings: SettingsDep
) -> dict[str, Any]:
    if body.until is not None:
        until = body.until if body.until.tzinfo else body.until.replace(tzinfo=UTC)
    else:
        until = datetime.now(UTC) + timedelta(days=body.days or 0.0)
    return await _decide(pool, settings, principal, zombie_id, ev.SNOOZED, body.reason, until)


@router.post("/{zombie_id}/reopen", status_code=status.HTTP_202_ACCEPTED,
             summary="Undo an acknowledgement or a snooze")
async def reopen(
    zombie_id: str, body: Decision, pool: PoolDep, principal: PrincipalDep, settings: SettingsDep
) -> dict[str, Any]:
    return await _decide(pool, settings, principal, zombie_id, ev.REOPENED, body.reason)
