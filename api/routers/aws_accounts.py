"""/v1/aws-accounts: register, list, show, check and remove the tenant's AWS accounts (JWT, tenant-scoped).

(GET /v1/accounts, in summary.py, lists the accounts the tenant has *data* for; this is the registry.) Secrets go in
and never come out: responses show the access key id's last four characters or the role ARN, never the secret key
or the external id. The models use SecretStr, so a secret also stays out of repr and validation errors.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from api.deps import PoolDep, PrincipalDep, SettingsDep
from streams.accounts import (
    Account,
    AccountsError,
    SecretBox,
    SecretKeyError,
    TrailLocation,
    add_account,
    find_account,
    list_accounts,
    remove_account,
)

log = logging.getLogger("dd0c.api.accounts")

router = APIRouter(prefix="/v1/aws-accounts", tags=["aws-accounts"])

AccountId = Annotated[str, Path(pattern=r"^[0-9]{12}$", description="12-digit AWS account id")]


class AccountIn(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt field is an error, not silently dropped
    account_id: str = Field(pattern=r"^[0-9]{12}$")
    name: str = ""
    access_key_id: str | None = Field(default=None, description="with secret_access_key; or give role_arn")
    secret_access_key: SecretStr | None = None
    role_arn: str | None = Field(default=None, description="assumed through STS (with external_id)")
    external_id: SecretStr | None = None
    trail_bucket: str | None = None
    trail_prefix: str = ""
    org_id: str | None = Field(default=None, description="organization trail: keys are AWSLogs/<org-id>/<account>/")
    regions: list[str] = Field(default_factory=list, description="regions to poll; empty = every region found")
    queue_url: str | None = Field(default=None, description="SQS queue with the bucket's object notifications")


class AccountOut(BaseModel):
    account_id: str
    name: str
    auth: str = Field(description="access_key | role | none (the server's own credentials)")
    role_arn: str | None
    access_key: str | None = Field(description="the access key id's last four characters, e.g. '…WXYZ'")
    trail_bucket: str | None
    trail_prefix: str
    org_id: str | None
    regions: list[str]
    queue_url: str | None
    created_at: datetime | None
    updated_at: datetime | None


class AccountListOut(BaseModel):
    items: list[AccountOut]


class ProbeOut(BaseModel):
    action: str = Field(description="the IAM action probed, e.g. 's3:GetObject'")
    purpose: str = Field(description="poller | zombies | access")
    outcome: str = Field(description="ok | missing | error | not tried")
    detail: str


class CheckOut(BaseModel):
    account_id: str
    identity: str = Field(description="the ARN the probes ran as ('' when the credentials were refused)")
    ok: bool = Field(description="every permission the product needs is granted")
    missing: list[str] = Field(description="the IAM actions refused, to add to the account's policy")
    probes: list[ProbeOut]


def _out(account: Account) -> AccountOut:
    return AccountOut.model_validate(account.public())


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


@router.get("", response_model=AccountListOut, summary="Registered AWS accounts")
async def list_registered(pool: PoolDep, principal: PrincipalDep) -> AccountListOut:
    return AccountListOut(items=[_out(a) for a in await list_accounts(pool, principal.tenant)])


@router.post(
    "",
    response_model=AccountOut,
    status_code=status.HTTP_201_CREATED,
    summary="Register an AWS account (its credentials are encrypted at rest)",
    responses={409: {"description": "already registered (pass replace=true)"}, 422: {"description": "invalid"},
               503: {"description": "DD0C_SECRET_KEY missing or invalid"}},
)
async def register(
    body: AccountIn, pool: PoolDep, principal: PrincipalDep, settings: SettingsDep,
    replace: Annotated[bool, Query(description="overwrite an existing registration")] = False,
) -> AccountOut:
    needs_key = body.secret_access_key is not None or body.role_arn is not None
    try:
        box = SecretBox.from_settings(settings) if needs_key else None
    except SecretKeyError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from None
    if not replace and await find_account(pool, principal.tenant, body.account_id) is not None:
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"account {body.account_id} is already registered for tenant {principal.tenant}"
        )
    try:
        account = await add_account(
            pool, box, principal.tenant, body.account_id, name=body.name,
            access_key_id=body.access_key_id, secret_access_key=_secret(body.secret_access_key),
            role_arn=body.role_arn, external_id=_secret(body.external_id),
            trail=TrailLocation(bucket=body.trail_bucket, prefix=body.trail_prefix, org_id=body.org_id,
                                regions=tuple(body.regions), queue_url=body.queue_url),
            replace=replace,
        )
    except AccountsError as exc:
        code = status.HTTP_409_CONFLICT if "already registered" in str(exc) else status.HTTP_422_UNPROCESSABLE_ENTITY
        raise HTTPException(code, str(exc)) from None
    log.info("tenant %s registered account %s (%s)", principal.tenant, account.account_id, account.auth)
    return _out(account)


@router.get("/{account_id}", response_model=AccountOut, responses={404: {"description": "not registered"}})
async def show(account_id: AccountId, pool: PoolDep, principal: PrincipalDep) -> AccountOut:
    account = await find_account(pool, principal.tenant, account_id)
    if account is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"account {account_id} is not registered for tenant {principal.tenant}"
        )
    return _out(account)


@router.post(
    "/{account_id}/check",
    response_model=CheckOut,
    summary="Try each permission the poller and the zombie hunter need (read-only calls); name the missing ones",
    responses={404: {"description": "not registered"}, 503: {"description": "DD0C_SECRET_KEY missing or invalid"}},
)
async def check(
    account_id: AccountId, pool: PoolDep, principal: PrincipalDep, settings: SettingsDep,
    region: Annotated[str | None, Query(description="region of the zombie-hunter probes (default: the account's "
                                                    "first region)")] = None,
) -> CheckOut:
    from streams.accounts.check import check_account  # boto3: loaded on the first check, not at start

    account = await find_account(pool, principal.tenant, account_id)
    if account is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"account {account_id} is not registered for tenant {principal.tenant}"
        )
    try:
        box = SecretBox.from_settings(settings) if account.sealed is not None else None
    except SecretKeyError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from None
    # boto3 blocks: a thread keeps the event loop (and the live feed) moving during the probes
    report = await asyncio.to_thread(check_account, account, settings, box=box, region=region)
    log.info("tenant %s checked account %s: %s", principal.tenant, account_id,
             "ok" if report.ok else f"missing {', '.join(report.missing) or '-'}")
    return CheckOut(account_id=account_id, identity=report.identity, ok=report.ok, missing=report.missing,
                    probes=[ProbeOut(action=r.action, purpose=r.purpose, outcome=r.outcome, detail=r.detail)
                            for r in report.results])


@router.delete("/{account_id}", status_code=status.HTTP_204_NO_CONTENT, responses={404: {"description": "not found"}})
async def remove(account_id: AccountId, pool: PoolDep, principal: PrincipalDep) -> Response:
    if not await remove_account(pool, principal.tenant, account_id):
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"account {account_id} is not registered for tenant {principal.tenant}"
        )
    log.info("tenant %s removed account %s", principal.tenant, account_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
