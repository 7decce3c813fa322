"""Who is calling: an AuthProvider port with one adapter, local users and HS256 JWTs.

Passwords are stored as `scrypt$N$r$p$salt$hash` (hashlib.scrypt, a random 16-byte salt per user), so the cost
parameters travel with each hash and can be raised later without invalidating old ones. Tokens carry `sub`
(username), `tenant`, `iat` and `exp`; the tenant in a verified token is the only tenant a request may read.

No FastAPI imports here: the CLI (`dd0c-cost users`) uses the same hashing and user storage.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, Protocol

import asyncpg
import jwt

from schemas.events import Dd0cError

_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1
_SCRYPT_MAXMEM = 64 * 1024 * 1024
_ALGORITHM = "HS256"
_REQUIRED_CLAIMS = ["sub", "tenant", "iat", "exp"]

Db = asyncpg.Pool | asyncpg.Connection


class AuthError(Dd0cError):
    """A token that is missing, malformed, signed with another key or expired."""


@dataclass(frozen=True, slots=True)
class Principal:
    """The verified caller. Every read is scoped to `tenant`."""

    tenant: str
    username: str
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class IssuedToken:
    access_token: str
    expires_in: int  # seconds
    token_type: str = "bearer"


class AuthProvider(Protocol):
    async def authenticate(self, username: str, password: str, tenant: str | None = None) -> Principal | None:
        """The principal for good credentials, None for bad ones (never says which part was wrong)."""
        ...

    def issue(self, principal: Principal, *, now: datetime | None = None) -> IssuedToken: ...

    def verify(self, token: str) -> Principal:
        """Raises AuthError for anything but a valid, unexpired token."""
        ...


# ---------------------------------------------------------------------------------------------------- passwords


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else os.urandom(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, maxmem=_SCRYPT_MAXMEM, dklen=32
    )
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=_SCRYPT_MAXMEM,
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


@cache
def _dummy_hash() -> str:
    """Verified against when the user does not exist, so a wrong username costs as long as a wrong password."""
    return hash_password("dd0c-no-such-user", salt=b"\0" * 16)


# ---------------------------------------------------------------------------------------------------- users


async def ensure_tenant(db: Db, tenant: str) -> bool:
    """Create the tenant row if missing; True when it was created."""
    status = await db.execute(
        "INSERT INTO tenants (tenant_id, name) VALUES ($1, $1) ON CONFLICT (tenant_id) DO NOTHING", tenant
    )
    return status.endswith(" 1")


async def create_user(
    db: Db, tenant: str, username: str, password: str, *, role: str = "admin", replace: bool = False
) -> None:
    """Add a user (and its tenant, if new). An existing user is an error unless `replace` resets its password."""
    if not username or not password:
        raise Dd0cError("username and password must not be empty")
    hashed = await asyncio.to_thread(hash_password, password)
    await ensure_tenant(db, tenant)
    conflict = (
        "DO UPDATE SET password_hash = EXCLUDED.password_hash, role = EXCLUDED.role" if replace else "DO NOTHING"
    )
    status = await db.execute(
        "INSERT INTO users (tenant_id, username, password_hash, role) VALUES ($1, $2, $3, $4)"
        f" ON CONFLICT (tenant_id, username) {conflict}",
        tenant,
        username,
        hashed,
        role,
    )
    if status.endswith(" 0"):
        raise Dd0cError(f"user {username!r} already exists in tenant {tenant!r} (use --replace to reset it)")


async def list_users(db: Db, tenant: str | None = None) -> list[dict[str, Any]]:
    rows = await db.fetch(
        "SELECT tenant_id, username, role, created_at FROM users"
        " WHERE $1::text IS NULL OR tenant_id = $1 ORDER BY tenant_id, username",
        tenant,
    )
    return [dict(r) for r in rows]


# ---------------------------------------------------------------------------------------------------- provider


class LocalAuthProvider:
    """Users in the `users` table, HS256 tokens signed with DD0C_JWT_SECRET."""

    def __init__(self, db: Db, secret: str, ttl_seconds: int) -> None:
        self._db = db
        self._secret = secret
        self._ttl = ttl_seconds

    async def authenticate(self, username: str, password: str, tenant: str | None = None) -> Principal | None:
        rows = await self._db.fetch(
            "SELECT tenant_id, password_hash FROM users WHERE username = $1 AND ($2::text IS NULL OR tenant_id = $2)",
            username,
            tenant,
        )
        # Without a tenant the username must be unique across tenants; otherwise the caller has to name one.
        row = rows[0] if len(rows) == 1 else None
        stored = row["password_hash"] if row is not None else _dummy_hash()
        ok = await asyncio.to_thread(verify_password, password, stored)  # scrypt must not block the event loop
        if row is None or not ok:
            return None
        return Principal(tenant=row["tenant_id"], username=username)

    def issue(self, principal: Principal, *, now: datetime | None = None) -> IssuedToken:
        issued = (now or datetime.now(UTC)).replace(microsecond=0)
        expires = issued + timedelta(seconds=self._ttl)
        claims = {
            "sub": principal.username,
            "tenant": principal.tenant,
            "iat": int(issued.timestamp()),
            "exp": int(expires.timestamp()),
        }
        return IssuedToken(access_token=jwt.encode(claims, self._secret, algorithm=_ALGORITHM), expires_in=self._ttl)

    def verify(self, token: str) -> Principal:
        try:
            claims = jwt.decode(token, self._secret, algorithms=[_ALGORITHM], options={"require": _REQUIRED_CLAIMS})
        except jwt.ExpiredSignatureError:
            raise AuthError("token expired") from None
        except jwt.InvalidTokenError:
            raise AuthError("invalid token") from None
        tenant, username = claims.get("tenant"), claims.get("sub")
        if not isinstance(tenant, str) or not tenant or not isinstance(username, str):
            raise AuthError("invalid token")
        return Principal(tenant=tenant, username=username, expires_at=datetime.fromtimestamp(claims["exp"], UTC))
