"""Panic mode and notification settings: GET/POST /v1/panic, GET/PUT /v1/notifications, GET .../deliveries.

Panic for the caller's tenant is open to every user of it; the global switch (every tenant) only to users of the
operator's tenant (DD0C_TENANT). The Slack webhook URL is write-only: reads say whether one is set, never which.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field

from api.deps import PoolDep, PrincipalDep, SettingsDep
from schemas.events import Severity
from streams.notify import panic, store
from streams.notify.governance import Governance, GovernanceUnavailable
from streams.notify.rules import Flags, NotifyError, QuietHours

router = APIRouter(tags=["governance"])


async def get_governance(settings: SettingsDep) -> AsyncIterator[Governance]:
    """A short-lived Redis client per request: panic and settings calls are rare, and a Redis that is down must
    answer 503 on this request rather than break the app's start-up."""
    try:
        gov = Governance.from_settings(settings)
    except GovernanceUnavailable as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from None
    try:
        yield gov
    finally:
        await gov.aclose()


GovernanceDep = Annotated[Governance, Depends(get_governance)]


class PanicHolder(BaseModel):
    actor: str
    reason: str
    at: datetime


class PanicStatus(BaseModel):
    active: bool = Field(description="true when notifications of this tenant are stopped (global or tenant)")
    global_: PanicHolder | None = Field(alias="global", default=None)
    tenant: PanicHolder | None = None
    audit: list[dict[str, Any]] = Field(default_factory=list, description="latest switches, newest first")

    model_config = {"populate_by_name": True}


class PanicSwitch(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt field is an error, not silently dropped
    on: bool = Field(description="true stops every notification; false resumes")
    reason: str = Field(min_length=1, max_length=1000, description="why - kept in the audit with who and when")
    scope: Literal["tenant", "global"] = "tenant"


class QuietIn(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt field is an error, not silently dropped
    start: str = Field(pattern=r"^\d{1,2}:\d{2}$", examples=["22:00"])
    end: str = Field(pattern=r"^\d{1,2}:\d{2}$", examples=["07:00"])
    tz: str = Field(default="UTC", examples=["Europe/Berlin"])


class NotificationSettingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt field is an error, not silently dropped
    slack_webhook_url: str | None = Field(default=None, description="write-only; \"\" removes it")
    email_to: list[str] | None = None
    slack: bool | None = None
    email: bool | None = None
    severity_floor: Severity | None = None
    quiet_hours: QuietIn | None = None
    clear_quiet_hours: bool = False


def _unavailable(exc: Exception) -> HTTPException:
    return HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc))


async def _panic_status(pool: Any, gov: Governance, tenant: str) -> dict[str, Any]:
    try:
        state = await panic.status(gov, tenant)
    except GovernanceUnavailable as exc:
        raise _unavailable(exc) from None
    return {**state, "audit": await store.panic_history(pool, tenant, limit=10)}


@router.get("/v1/panic", response_model=PanicStatus, response_model_by_alias=True, summary="Panic mode status")
async def get_panic(pool: PoolDep, principal: PrincipalDep, gov: GovernanceDep) -> dict[str, Any]:
    return await _panic_status(pool, gov, principal.tenant)


@router.post(
    "/v1/panic",
    response_model=PanicStatus,
    response_model_by_alias=True,
    summary="Switch panic mode on or off (stops every notification immediately), audited",
    responses={403: {"description": "global scope from a tenant other than the operator's"},
               503: {"description": "Redis is unavailable: nothing was switched or audited"}},
)
async def switch_panic(
    body: PanicSwitch, pool: PoolDep, principal: PrincipalDep, gov: GovernanceDep, settings: SettingsDep
) -> dict[str, Any]:
    if body.scope == "global" and principal.tenant != settings.tenant:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only the operator's tenant may switch global panic mode")
    target = None if body.scope == "global" else principal.tenant
    try:
        async with pool.acquire() as conn:
            await panic.switch(conn, gov, target, on=body.on, actor=f"api:{principal.username}", reason=body.reason)
    except GovernanceUnavailable as exc:
        raise _unavailable(exc) from None
    except NotifyError as exc:
        raise HTTPException(422, str(exc)) from None
    return await _panic_status(pool, gov, principal.tenant)


def _settings_out(channels: store.Channels | None, flags: Flags) -> dict[str, Any]:
    quiet = flags.quiet
    return {
        **(channels.public() if channels else {"slack_webhook_configured": False, "email_to": []}),
        "slack": flags.slack,
        "email": flags.email,
        "severity_floor": flags.severity_floor.value,
        "quiet_hours": None if quiet is None else {"start": f"{quiet.start:%H:%M}", "end": f"{quiet.end:%H:%M}",
                                                   "tz": quiet.tz},
    }


@router.get("/v1/notifications", summary="Channels and flags (the webhook URL is never returned)")
async def get_notifications(pool: PoolDep, principal: PrincipalDep, gov: GovernanceDep) -> dict[str, Any]:
    try:
        flags = await gov.flags(principal.tenant)
    except GovernanceUnavailable as exc:
        raise _unavailable(exc) from None
    return _settings_out(await store.get_channels(pool, principal.tenant), flags)


@router.put("/v1/notifications", summary="Change channels and flags (fields left out stay as they are)")
async def put_notifications(
    body: NotificationSettingsIn, pool: PoolDep, principal: PrincipalDep, gov: GovernanceDep
) -> dict[str, Any]:
    tenant = principal.tenant
    try:
        flags = await gov.flags(tenant)
        changed = flags
        if body.slack is not None:
            changed = replace(changed, slack=body.slack)
        if body.email is not None:
            changed = replace(changed, email=body.email)
        if body.severity_floor is not None:
            changed = replace(changed, severity_floor=body.severity_floor)
        if body.clear_quiet_hours:
            changed = replace(changed, quiet=None)
        elif body.quiet_hours is not None:
            q = body.quiet_hours
            changed = replace(changed, quiet=QuietHours.parse(f"{q.start}-{q.end}", q.tz))
        if changed != flags:
            await gov.set_flags(tenant, changed)
    except GovernanceUnavailable as exc:
        raise _unavailable(exc) from None
    except NotifyError as exc:
        raise HTTPException(422, str(exc)) from None
    changes: dict[str, Any] = {}
    if body.slack_webhook_url is not None:
        if body.slack_webhook_url and not body.slack_webhook_url.startswith(("https://", "http://")):
            raise HTTPException(422, "slack_webhook_url must be an http(s) URL")
        changes["slack_webhook_url"] = body.slack_webhook_url or None
    if body.email_to is not None:
        changes["email_to"] = body.email_to
    async with pool.acquire() as conn:
        channels = await store.set_channels(conn, tenant, **changes) if changes else await store.get_channels(
            conn, tenant
        )
    return _settings_out(channels, changed)


@router.get("/v1/notifications/deliveries", summary="Delivery records: sent, failed, suppressed, held - and why")
async def get_deliveries(
    pool: PoolDep,
    principal: PrincipalDep,
    status_: Annotated[
        Literal["sent", "failed", "suppressed", "held"] | None, Query(alias="status", description="only this status")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    return {"items": await store.list_deliveries(pool, principal.tenant, limit=limit, status=status_)}
