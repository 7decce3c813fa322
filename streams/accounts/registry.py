"""The account registry in Postgres (table aws_accounts, migration 0007): add, list, get, remove.

Secrets are sealed before they reach a query and opened only by `open_secrets` (for boto3_session / accounts check);
nothing here logs an argument.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
import orjson

from streams.accounts.crypto import SecretBox
from streams.accounts.model import (
    Account,
    AccountsError,
    AwsSecrets,
    TrailLocation,
    UnknownAccount,
    check_account_id,
    check_registration,
)

Db = asyncpg.Pool | asyncpg.Connection

_COLUMNS = (
    "tenant_id, account_id, name, auth, role_arn, key_hint, sealed, trail_bucket, trail_prefix, org_id, regions,"
    " queue_url, created_at, updated_at"
)

_UPSERT = f"""
INSERT INTO aws_accounts (tenant_id, account_id, name, auth, role_arn, key_hint, sealed, trail_bucket, trail_prefix,
                          org_id, regions, queue_url)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
ON CONFLICT (tenant_id, account_id) DO {{conflict}}
RETURNING {_COLUMNS}
"""

_REPLACE = """UPDATE SET name = EXCLUDED.name, auth = EXCLUDED.auth, role_arn = EXCLUDED.role_arn,
    key_hint = EXCLUDED.key_hint, sealed = EXCLUDED.sealed, trail_bucket = EXCLUDED.trail_bucket,
    trail_prefix = EXCLUDED.trail_prefix, org_id = EXCLUDED.org_id, regions = EXCLUDED.regions,
    queue_url = EXCLUDED.queue_url, updated_at = now()"""


async def add_account(
    db: Db,
    box: SecretBox | None,
    tenant: str,
    account_id: str,
    *,
    name: str = "",
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    role_arn: str | None = None,
    external_id: str | None = None,
    trail: TrailLocation | None = None,
    replace: bool = False,
) -> Account:
    """Register an account (creating the tenant if new). Already registered: an error unless `replace`.

    `box` may be None only when there is nothing to seal (auth "none": the process's own credentials)."""
    trail = trail or TrailLocation()
    auth = check_registration(
        account_id, access_key_id=access_key_id, secret_access_key=secret_access_key, role_arn=role_arn,
        external_id=external_id, trail=trail,
    )
    secrets: dict[str, str] = {}
    if auth == "access_key":
        assert access_key_id is not None and secret_access_key is not None
        secrets = {"access_key_id": access_key_id, "secret_access_key": secret_access_key}
    elif auth == "role" and external_id is not None:
        secrets = {"external_id": external_id}
    sealed: bytes | None = None
    if auth != "none":
        if box is None:
            raise AccountsError("a secret key is needed to store credentials")
        sealed = box.seal(orjson.dumps(secrets))
    key_hint = access_key_id[-4:] if access_key_id else ""
    await db.execute(
        "INSERT INTO tenants (tenant_id, name) VALUES ($1, $1) ON CONFLICT (tenant_id) DO NOTHING", tenant
    )
    row = await db.fetchrow(
        _UPSERT.format(conflict=_REPLACE if replace else "NOTHING"),
        tenant, account_id, name, auth, role_arn, key_hint, sealed, trail.bucket, trail.prefix, trail.org_id,
        list(trail.regions), trail.queue_url,
    )
    if row is None:
        raise AccountsError(
            f"account {account_id} is already registered for tenant {tenant} (use replace / --replace to change it)"
        )
    return _account(row)


async def list_accounts(db: Db, tenant: str) -> list[Account]:
    rows = await db.fetch(f"SELECT {_COLUMNS} FROM aws_accounts WHERE tenant_id = $1 ORDER BY account_id", tenant)
    return [_account(r) for r in rows]


async def find_account(db: Db, tenant: str, account_id: str) -> Account | None:
    row = await db.fetchrow(
        f"SELECT {_COLUMNS} FROM aws_accounts WHERE tenant_id = $1 AND account_id = $2", tenant, account_id
    )
    return _account(row) if row is not None else None


async def get_account(db: Db, tenant: str, account_id: str) -> Account:
    """The account, or UnknownAccount ("account 123 is not registered for tenant acme")."""
    check_account_id(account_id)
    found = await find_account(db, tenant, account_id)
    if found is None:
        raise UnknownAccount(tenant, account_id)
    return found


async def remove_account(db: Db, tenant: str, account_id: str) -> bool:
    """True when it was registered. The log keeps what it already holds for the account."""
    status = await db.execute("DELETE FROM aws_accounts WHERE tenant_id = $1 AND account_id = $2", tenant, account_id)
    return bool(status.endswith(" 1"))


async def registered_ids(db: Db, tenant: str) -> frozenset[str]:
    rows = await db.fetch("SELECT account_id FROM aws_accounts WHERE tenant_id = $1", tenant)
    return frozenset(r["account_id"] for r in rows)


async def all_accounts(db: Db, tenants: Sequence[str] | None = None) -> list[Account]:
    """Every registered account (of `tenants`, or of all tenants): what a poller schedules."""
    rows = await db.fetch(
        f"SELECT {_COLUMNS} FROM aws_accounts WHERE $1::text[] IS NULL OR tenant_id = ANY($1::text[])"
        " ORDER BY tenant_id, account_id",
        None if tenants is None else list(tenants),
    )
    return [_account(r) for r in rows]


def open_secrets(account: Account, box: SecretBox) -> AwsSecrets:
    if account.sealed is None:
        return AwsSecrets()
    what = f"the credentials of account {account.account_id} (tenant {account.tenant})"
    doc: dict[str, Any] = orjson.loads(box.open(account.sealed, what=what))
    return AwsSecrets(
        access_key_id=doc.get("access_key_id"),
        secret_access_key=doc.get("secret_access_key"),
        external_id=doc.get("external_id"),
    )


def _account(row: asyncpg.Record) -> Account:
    return Account(
        tenant=row["tenant_id"],
        account_id=row["account_id"],
        auth=row["auth"],
        name=row["name"],
        role_arn=row["role_arn"],
        key_hint=row["key_hint"],
        trail=TrailLocation(
            bucket=row["trail_bucket"],
            prefix=row["trail_prefix"],
            org_id=row["org_id"],
            regions=tuple(row["regions"] or ()),
            queue_url=row["queue_url"],
        ),
        sealed=bytes(row["sealed"]) if row["sealed"] is not None else None,
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )
