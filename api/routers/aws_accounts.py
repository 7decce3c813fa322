"""/v1/aws-accounts: register, list, show and remove the tenant's AWS accounts (JWT, tenant-scoped).

(GET /v1/accounts, in summary.py, lists the accounts the tenant has *data* for; this is the registry.) Secrets go in
and never come out: responses show the access key id's last four characters or the role ARN, never the secret key
or the external id. The models use SecretStr, so a secret also stays out of repr and validation errors.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Response, status
from pydantic import BaseModel, Field, SecretStr

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


@router.delete("/{account_id}", status_code=status.HTTP_204_NO_CONTENT, responses={404: {"description": "not found"}})
async def remove(account_id: AccountId, pool: PoolDep, principal: PrincipalDep) -> Response:
    if not await remove_account(pool, principal.tenant, account_id):
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"account {account_id} is not registered for tenant {principal.tenant}"
        )
    log.info("tenant %s removed account %s", principal.tenant, account_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
