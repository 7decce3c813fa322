"""Per-tenant API keys for machine senders (HTTP push; any ingest client): `dd0c_<key_id>_<secret>`.

The key is shown once, at creation. The table keeps its SHA-256 (the key carries 32 random bytes, so a fast hash
is enough and keeps a push cheap) and looks it up by key_id; comparison is constant-time. A revoked key stays in
the table (who had it, when) and never verifies again.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from streams.accounts.model import AccountsError
from streams.accounts.registry import Db

PREFIX = "dd0c"
_KEY = re.compile(r"^dd0c_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True, slots=True)
class ApiKey:
    key_id: str
    tenant: str
    name: str
    scope: str
    created_at: datetime
    revoked_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class IssuedKey:
    key: str  # the whole key: shown to the person once, never stored
    info: ApiKey

    def __repr__(self) -> str:
        return f"IssuedKey(key_id={self.info.key_id!r}, tenant={self.info.tenant!r})"


def _sha256(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def create_api_key(db: Db, tenant: str, *, name: str = "", scope: str = "ingest") -> IssuedKey:
    key_id = secrets.token_hex(6)
    key = f"{PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
    await db.execute(
        "INSERT INTO tenants (tenant_id, name) VALUES ($1, $1) ON CONFLICT (tenant_id) DO NOTHING", tenant
    )
    row = await db.fetchrow(
        "INSERT INTO api_keys (key_id, tenant_id, name, scope, key_sha256) VALUES ($1, $2, $3, $4, $5)"
        " RETURNING key_id, tenant_id, name, scope, created_at, revoked_at",
        key_id, tenant, name, scope, _sha256(key),
    )
    assert row is not None
    return IssuedKey(key=key, info=_info(row))


async def verify_api_key(db: Db, key: str, *, scope: str = "ingest") -> ApiKey | None:
    """The key's record when `key` is a live key of that scope; None otherwise (never says why)."""
    found = _KEY.match(key.strip()) if isinstance(key, str) else None
    if found is None:
        return None
    row = await db.fetchrow(
        "SELECT key_id, tenant_id, name, scope, created_at, revoked_at, key_sha256 FROM api_keys WHERE key_id = $1",
        found.group(1),
    )
    if row is None or row["revoked_at"] is not None or row["scope"] != scope:
        return None
    if not hmac.compare_digest(row["key_sha256"], _sha256(key.strip())):
        return None
    return _info(row)


async def list_api_keys(db: Db, tenant: str) -> list[ApiKey]:
    rows = await db.fetch(
        "SELECT key_id, tenant_id, name, scope, created_at, revoked_at FROM api_keys WHERE tenant_id = $1"
        " ORDER BY created_at, key_id",
        tenant,
    )
    return [_info(r) for r in rows]


async def revoke_api_key(db: Db, tenant: str, key_id: str) -> None:
    status = await db.execute(
        "UPDATE api_keys SET revoked_at = now() WHERE tenant_id = $1 AND key_id = $2 AND revoked_at IS NULL",
        tenant, key_id,
    )
    if not status.endswith(" 1"):
        raise AccountsError(f"no live API key {key_id!r} in tenant {tenant!r}")


def _info(row: asyncpg.Record) -> ApiKey:
    return ApiKey(
        key_id=row["key_id"], tenant=row["tenant_id"], name=row["name"], scope=row["scope"],
        created_at=row["created_at"], revoked_at=row["revoked_at"],
    )
