"""Per-tenant agent tokens (table agent_tokens, migration 0010), stored as their SHA-256.

A token is 32 random bytes (url-safe base64) behind a recognisable prefix; it is shown once, at creation. Only
its hash is stored, so a database dump does not hand out working tokens. A fast hash is enough: the token has 256
bits of entropy (a password hash's slowness protects guessable secrets, which this is not). `token_id` - "at_" and
the first 12 hex digits of the hash - names a token in logs and listings without revealing it.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

import asyncpg

TOKEN_PREFIX = "dd0c_agent_"


@dataclass(frozen=True, slots=True)
class TokenOwner:
    tenant: str
    token_id: str


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_id_of(token: str) -> str:
    return "at_" + token_sha256(token)[:12]


async def create_token(conn: asyncpg.Connection, tenant: str, name: str = "") -> tuple[str, str]:
    """A new token for `tenant` (created if new): returns (token_id, token). The token is not stored."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO tenants (tenant_id, name) VALUES ($1, $1) ON CONFLICT (tenant_id) DO NOTHING", tenant
        )
        await conn.execute(
            "INSERT INTO agent_tokens (token_id, tenant_id, token_sha256, name) VALUES ($1, $2, $3, $4)",
            token_id_of(token), tenant, token_sha256(token), name,
        )
    return token_id_of(token), token


async def find_token(conn: asyncpg.Connection, token: str) -> TokenOwner | None:
    """Who `token` belongs to, or None when it is unknown or revoked."""
    row = await conn.fetchrow(
        "SELECT tenant_id, token_id FROM agent_tokens WHERE token_sha256 = $1 AND revoked_at IS NULL",
        token_sha256(token),
    )
    return TokenOwner(row["tenant_id"], row["token_id"]) if row else None


async def revoke_token(conn: asyncpg.Connection, token_id: str) -> bool:
    done = await conn.fetchval(
        "UPDATE agent_tokens SET revoked_at = now() WHERE token_id = $1 AND revoked_at IS NULL RETURNING true",
        token_id,
    )
    return bool(done)


@dataclass(frozen=True, slots=True)
class TokenRow:
    token_id: str
    tenant: str
    name: str
    created_at: datetime
    revoked_at: datetime | None


async def list_tokens(conn: asyncpg.Connection, tenant: str | None = None) -> list[TokenRow]:
    rows = await conn.fetch(
        "SELECT token_id, tenant_id, name, created_at, revoked_at FROM agent_tokens"
        " WHERE $1::text IS NULL OR tenant_id = $1 ORDER BY tenant_id, created_at, token_id",
        tenant,
    )
    return [TokenRow(r["token_id"], r["tenant_id"], r["name"], r["created_at"], r["revoked_at"]) for r in rows]
