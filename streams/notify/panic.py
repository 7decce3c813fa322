"""Panic mode on / off: the Redis switch and its audit row, together (shared by the API and the CLI).

The audit row is written in a transaction that commits only after Redis took the switch, so the audit never
claims a panic that is not in force; when Redis is down the call fails (GovernanceUnavailable) and nothing is
recorded - notifications are held meanwhile anyway.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from streams.notify import store
from streams.notify.governance import Governance
from streams.notify.rules import NotifyError


async def switch(
    conn: asyncpg.Connection, gov: Governance, tenant: str | None, *, on: bool, actor: str, reason: str
) -> dict[str, Any]:
    """Set (on) or clear (off) panic for a tenant, or globally (tenant None). Returns the status afterwards."""
    if not reason.strip():
        raise NotifyError("panic needs a reason (who reads the audit later wants to know why)")
    if not actor.strip():
        raise NotifyError("panic needs an actor")
    async with conn.transaction():
        at = await store.audit_panic(conn, tenant, "on" if on else "off", actor, reason.strip())
        if on:
            await gov.set_panic(tenant, actor, reason.strip(), at)
        else:
            await gov.clear_panic(tenant)
    return await status(gov, tenant)


async def status(gov: Governance, tenant: str | None) -> dict[str, Any]:
    found = await gov.panic_status(tenant)

    def show(p: Any) -> dict[str, Any] | None:
        return None if p is None else {"actor": p.actor, "reason": p.reason, "at": p.at}

    out = {
        "active": any(v is not None for v in found.values()),
        "global": show(found["global"]),
        "tenant": show(found["tenant"]),
    }
    if tenant is None:  # the operator's view: the global switch is off, but tenants may still be silenced
        out["tenants"] = {t: show(p) for t, p in (await gov.tenant_panics()).items()}
    return out
