"""Read-side SQL of the zombies projection, shared by the API, the CLI and the digest. Tenant first, always.

Statuses as a reader sees them (`effective status`, decided with the reader's clock, never stored):
* `open` - detected, not resolved, not acknowledged, no snooze in force: what people should act on
  (the digest's "open zombies", and the default list);
* `acknowledged` - a person said they know (until the zombie resolves; a new detection after that opens it again);
* `snoozed` - a person put it off until `snoozed_until`; after that it is `open` again by itself;
* `resolved` - a complete scan no longer finds it.
`active` = open + acknowledged + snoozed (everything not resolved).

Dollar figures are USD per month; totals count priced zombies only and say how many were unpriced.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

import asyncpg

from projections.queries import NameKey, dollar_sum, dollars
from projections.rows import from_jsonable
from streams.zombies.events import OpenZombie
from streams.zombies.fold import ZombieRow, effective_status

Db = asyncpg.Pool | asyncpg.Connection
StatusFilter = Literal["open", "acknowledged", "snoozed", "resolved", "active", "all"]
STATUSES: tuple[str, ...] = ("open", "acknowledged", "snoozed", "resolved", "active", "all")

_STATUS_SQL: Mapping[str, str] = {
    "open": "status = 'open' AND acknowledged_at IS NULL AND (snoozed_until IS NULL OR snoozed_until <= {now})",
    "acknowledged": "status = 'open' AND acknowledged_at IS NOT NULL",
    "snoozed": "status = 'open' AND acknowledged_at IS NULL AND snoozed_until > {now}",
    "resolved": "status = 'resolved'",
    "active": "status = 'open'",
    "all": "true",
}


def status_condition(status: StatusFilter, now_param: str) -> str:
    """The SQL condition of a status filter on `zombies`, `now_param` standing for the clock ("$2"): the one
    definition of `open` etc. that the API, the CLI and the digest share."""
    return _STATUS_SQL[status].replace("{now}", now_param)


class _Where:
    def __init__(self, tenant: str) -> None:
        self.parts = ["tenant_id = $1"]
        self.args: list[Any] = [tenant]

    def add(self, sql: str, *values: Any) -> None:
        names = []
        for value in values:
            self.args.append(value)
            names.append(f"${len(self.args)}")
        self.parts.append(sql.format(*names))

    @property
    def sql(self) -> str:
        return " AND ".join(self.parts)


def _where(
    tenant: str, *, account: str | None, check: str | None, status: StatusFilter, now: datetime
) -> _Where:
    if status not in _STATUS_SQL:
        raise ValueError(f"unknown zombie status filter {status!r}; use one of {', '.join(STATUSES)}")
    w = _Where(tenant)
    if account is not None:
        w.add("account_id = {}", account)
    if check is not None:
        w.add("check_name = {}", check)
    if "{now}" in _STATUS_SQL[status]:
        w.args.append(now)
        w.parts.append(_STATUS_SQL[status].replace("{now}", f"${len(w.args)}"))
    else:
        w.parts.append(_STATUS_SQL[status])
    return w


def zombie_item(data: Mapping[str, Any], now: datetime, *, detail: bool = False) -> dict[str, Any]:
    row = from_jsonable(ZombieRow, data)
    item: dict[str, Any] = {
        "zombie_id": row.zombie_id,
        "account_id": row.account_id,
        "region": row.region,
        "resource_id": row.resource_id,
        "resource_type": row.resource_type,
        "check": row.check,
        "status": effective_status(row, now),
        "monthly_waste_usd": dollars(row.monthly_waste_usd),
        "first_seen": row.first_seen,
        "last_seen": row.last_seen,
        "opened_at": row.opened_at,
        "resolved_at": row.resolved_at,
        "acknowledged": None if row.acknowledged_at is None else {
            "by": row.acknowledged_by, "at": row.acknowledged_at, "reason": row.acknowledge_reason},
        "snoozed": None if row.snoozed_until is None else {
            "by": row.snoozed_by, "at": row.snoozed_at, "until": row.snoozed_until, "reason": row.snooze_reason},
        "evidence": dict(row.evidence),
    }
    if detail:
        item.update(detections=row.detections, episodes=row.episodes, last_scan_id=row.last_scan_id,
                    history=[dict(h) for h in row.history])
    return item


async def list_zombies(
    db: Db,
    tenant: str,
    *,
    account: str | None = None,
    check: str | None = None,
    status: StatusFilter = "open",
    now: datetime | None = None,
    limit: int = 50,
    after: NameKey | None = None,
) -> list[dict[str, Any]]:
    """Zombies ordered by (account_id, zombie_id), keyset-paginated (ask for limit + 1)."""
    when = now or datetime.now(UTC)
    w = _where(tenant, account=account, check=check, status=status, now=when)
    if after is not None:
        w.add("(account_id, zombie_id) > ({}, {})", after.account_id, after.name)
    w.args.append(limit)
    rows = await db.fetch(
        f"SELECT data FROM zombies WHERE {w.sql} ORDER BY account_id, zombie_id LIMIT ${len(w.args)}", *w.args
    )
    return [zombie_item(r["data"], when) for r in rows]


async def zombie_totals(
    db: Db,
    tenant: str,
    *,
    account: str | None = None,
    check: str | None = None,
    status: StatusFilter = "open",
    now: datetime | None = None,
) -> dict[str, Any]:
    """Count and monthly waste of the filtered zombies, overall, per account and per check."""
    w = _where(tenant, account=account, check=check, status=status, now=now or datetime.now(UTC))
    rows = await db.fetch(
        f"""SELECT account_id, check_name, count(*) AS n, sum(monthly_waste_usd) AS waste,
                   count(*) FILTER (WHERE monthly_waste_usd IS NULL) AS unpriced
            FROM zombies WHERE {w.sql} GROUP BY GROUPING SETS ((account_id), (check_name), ())""",
        *w.args,
    )
    out: dict[str, Any] = {"count": 0, "monthly_waste_usd": 0.0, "unpriced": 0, "by_account": [], "by_check": []}
    for r in rows:
        figures = {"count": r["n"], "monthly_waste_usd": dollar_sum(r["waste"]), "unpriced": r["unpriced"]}
        if r["account_id"] is not None:
            out["by_account"].append({"account_id": r["account_id"], **figures})
        elif r["check_name"] is not None:
            out["by_check"].append({"check": r["check_name"], **figures})
        else:
            out.update(figures)
    out["by_account"].sort(key=lambda x: (-x["monthly_waste_usd"], x["account_id"]))
    out["by_check"].sort(key=lambda x: (-x["monthly_waste_usd"], x["check"]))
    return out


async def get_zombie(db: Db, tenant: str, zid: str, *, now: datetime | None = None) -> dict[str, Any] | None:
    row = await db.fetchrow("SELECT data FROM zombies WHERE tenant_id = $1 AND zombie_id = $2", tenant, zid)
    return None if row is None else zombie_item(row["data"], now or datetime.now(UTC), detail=True)


async def open_zombies(db: Db, tenant: str, *, now: datetime | None = None) -> list[dict[str, Any]]:
    """For the daily digest: every zombie in status `open` (not acknowledged, not snoozed), largest waste first.

    Each item is `zombie_item` (zombie_id, account_id, region, resource_id, resource_type, check,
    monthly_waste_usd (None = unpriced), first_seen, last_seen, evidence, ...); the total is the sum of the
    priced ones."""
    when = now or datetime.now(UTC)
    w = _where(tenant, account=None, check=None, status="open", now=when)
    rows = await db.fetch(
        f"SELECT data FROM zombies WHERE {w.sql} ORDER BY monthly_waste_usd DESC NULLS LAST, account_id, zombie_id",
        *w.args,
    )
    return [zombie_item(r["data"], when) for r in rows]


async def open_for_account(db: Db, tenant: str, account_id: str) -> list[OpenZombie]:
    """Every unresolved zombie of one account (acknowledged and snoozed too): what a scan may resolve."""
    rows = await db.fetch(
        "SELECT zombie_id, region, check_name, opened_at FROM zombies"
        " WHERE tenant_id = $1 AND account_id = $2 AND status = 'open' ORDER BY zombie_id",
        tenant,
        account_id,
    )
    return [OpenZombie(r["zombie_id"], r["region"], r["check_name"], r["opened_at"]) for r in rows]


async def list_scans(db: Db, tenant: str, *, account: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
    """The latest scan runs, newest first: status, errors (region, code, operation), calls, zombies found."""
    rows = await db.fetch(
        "SELECT data, account_id, scanned_at FROM zombie_scans WHERE tenant_id = $1"
        " AND ($2::text IS NULL OR account_id = $2) ORDER BY scanned_at DESC, scan_id LIMIT $3",
        tenant,
        account,
        limit,
    )
    return [{"account_id": r["account_id"], "scanned_at": r["scanned_at"], **dict(r["data"])} for r in rows]


async def thresholds_of(db: Db, tenant: str) -> dict[str, Any]:
    """The tenant's stored zombie thresholds ({} when none or no tenant row: every default applies)."""
    value = await db.fetchval("SELECT zombie_thresholds FROM tenants WHERE tenant_id = $1", tenant)
    return dict(value or {})
