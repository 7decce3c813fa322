"""Read-side SQL shared by the API and the CLI: every function takes the tenant first and never crosses it.

Lists are keyset-paginated (no OFFSET, no COUNT per page): callers ask for `limit + 1` rows and turn the last
row they keep into the next cursor. Anomalies and cost events are ordered newest first, `(event_time DESC, id)`,
which is the order of the `*_tenant_time` indexes; the severity and account filters are answered by one index
range per severity rank merged by Postgres (Merge Append over `UNION ALL` branches), so "high and above" stays
an index walk that stops after `limit` rows however many anomalies are stored.

Rows come back as plain dicts of JSON-friendly values (datetimes stay datetimes). Dollar figures are floats or
None - never NaN: a non-finite value read from a float column is reported as unknown (None).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from schemas.events import Severity

Db = asyncpg.Pool | asyncpg.Connection

MAX_PAGE = 500  # the largest page any list returns
RESOURCE_STATES = ("running", "stopped", "closed")
_RANKS = len(Severity)


# ---------------------------------------------------------------------------------------------------- helpers


def dollars(value: Any) -> float | None:
    """A $ figure for the wire: float, or None when unknown (NULL, NaN, Infinity)."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def dollar_sum(value: Any) -> float:
    """An aggregated $ figure, rounded to micro-dollars so float summation order never shows (0.288, not ...03)."""
    number = dollars(value)
    return round(number, 6) if number is not None else 0.0


def _finite_sql(column: str) -> str:
    """SQL: the float column holds a real figure (NULL for NULL; false for NaN and +/-Infinity)."""
    return f"({column} > '-Infinity'::float8 AND {column} < 'Infinity'::float8)"


_PRICED_NOW = _finite_sql("hourly_cost")
_UNPRICED_NOW = f"NOT COALESCE({_PRICED_NOW}, false)"


def aware(value: datetime | None) -> datetime | None:
    """Filters are instants: a naive datetime is read as UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class TimeKey:
    """Keyset position in a newest-first list: the last row a page returned."""

    event_time: datetime
    id: str


@dataclass(frozen=True, slots=True)
class NameKey:
    """Keyset position in a list ordered by (account_id, name)."""

    account_id: str
    name: str


class _Where:
    """Builds `tenant_id = $1 AND ...` with numbered parameters."""

    def __init__(self, tenant: str) -> None:
        self.params: list[Any] = [tenant]
        self.clauses = ["tenant_id = $1"]

    def param(self, value: Any) -> str:
        self.params.append(value)
        return f"${len(self.params)}"

    def add(self, template: str, *values: Any) -> None:
        """`template` uses {0}, {1}, ... for the values' placeholders (a placeholder may appear twice)."""
        self.clauses.append(template.format(*(self.param(v) for v in values)))

    def opt(self, template: str, value: Any) -> None:
        if value is not None:
            self.add(template, value)

    @property
    def sql(self) -> str:
        return " AND ".join(self.clauses)


def _newest_first_after(w: _Where, after: TimeKey | None) -> None:
    # (event_time DESC, id ASC): rows strictly after the cursor. Written so that `event_time <= $t` is an index
    # bound and only the ties on event_time are filtered on id.
    if after is not None:
        w.add("event_time <= {0} AND (event_time < {0} OR id > {1})", aware(after.event_time), uuid.UUID(after.id))


# ---------------------------------------------------------------------------------------------------- anomalies


@dataclass(frozen=True, slots=True)
class AnomalyFilter:
    account: str | None = None
    min_severity: Severity | None = None  # this severity and everything above it
    resource_type: str | None = None
    since: datetime | None = None  # event_time >= since
    until: datetime | None = None  # event_time < until
    backfill: bool | None = None


_ANOMALY_COLUMNS = (
    "id, feed_id, account_id, resource_type, severity, event_time, detected_at, hourly_cost, backfill, data"
)


def _finite(value: Any) -> float | None:
    return dollars(value)


def anomaly_item(row: Mapping[str, Any]) -> dict[str, Any]:
    """One anomaly for readers: the stored Anomaly document, with the indexed columns as the authority."""
    data: Mapping[str, Any] = row["data"] or {}
    return {
        "id": str(row["id"]),
        "feed_id": row["feed_id"],
        "account_id": row["account_id"],
        "resource_type": row["resource_type"],
        "region": data.get("region"),
        "severity": row["severity"],
        "event_time": row["event_time"],
        "detected_at": row["detected_at"],
        "event_ids": list(data.get("event_ids") or ()),
        "hourly_cost": dollars(row["hourly_cost"]),
        "expected_hourly_cost": dollars(data.get("expected_hourly_cost")),
        "z": _finite(data.get("z")),
        "baseline_stddev": dollars(data.get("baseline_stddev")),
        "baseline_n": int(data.get("baseline_n") or 0),
        "actor": data.get("actor") or "",
        "instance_type": data.get("instance_type"),
        "reasons": [
            {"signal": r.get("signal", ""), "text": r.get("text", ""), "data": dict(r.get("data") or {})}
            for r in data.get("reasons") or ()
        ],
        "backfill": row["backfill"],
        "learning": bool(data.get("learning", False)),
        "policy": data.get("policy") or "default",
    }


async def list_anomalies(
    db: Db, tenant: str, f: AnomalyFilter, *, limit: int, after: TimeKey | None = None
) -> list[dict[str, Any]]:
    """Newest first. With a severity or account filter each rank is its own index range, merged in order."""
    w = _Where(tenant)
    w.opt("account_id = {0}", f.account)
    w.opt("resource_type = {0}", f.resource_type)
    w.opt("event_time >= {0}", aware(f.since))
    w.opt("event_time < {0}", aware(f.until))
    if f.backfill is not None:
        w.clauses.append("backfill" if f.backfill else "NOT backfill")  # a literal: matches the partial index
    _newest_first_after(w, after)
    lim = w.param(limit)
    order = f"ORDER BY event_time DESC, id LIMIT {lim}"
    min_rank = f.min_severity.rank if f.min_severity is not None else 0
    if f.account is not None or min_rank > 0:
        branches = [
            f"(SELECT {_ANOMALY_COLUMNS} FROM anomalies WHERE {w.sql} AND severity_rank = {rank} {order})"
            for rank in range(min_rank, _RANKS)
        ]
        sql = f"SELECT * FROM ({' UNION ALL '.join(branches)}) AS ranked {order}"
    else:
        sql = f"SELECT {_ANOMALY_COLUMNS} FROM anomalies WHERE {w.sql} {order}"
    return [anomaly_item(r) for r in await db.fetch(sql, *w.params)]


async def get_anomaly(db: Db, tenant: str, anomaly_id: str) -> dict[str, Any] | None:
    row = await db.fetchrow(
        f"SELECT {_ANOMALY_COLUMNS} FROM anomalies WHERE tenant_id = $1 AND id = $2", tenant, uuid.UUID(anomaly_id)
    )
    return anomaly_item(row) if row is not None else None


async def max_feed_id(db: Db, tenant: str) -> int:
    """The live feed's current end for a tenant (0 when it has no anomalies yet)."""
    value = await db.fetchval("SELECT max(feed_id) FROM anomalies WHERE tenant_id = $1", tenant)
    return int(value or 0)


async def anomalies_after(db: Db, tenant: str, feed_id: int, limit: int) -> list[tuple[int, dict[str, Any]]]:
    """(feed_id, Anomaly document) in feed order, strictly after `feed_id`: what a feed client has not seen."""
    rows = await db.fetch(
        "SELECT feed_id, data FROM anomalies WHERE tenant_id = $1 AND feed_id > $2 ORDER BY feed_id LIMIT $3",
        tenant,
        feed_id,
        limit,
    )
    return [(r["feed_id"], r["data"]) for r in rows]


# ---------------------------------------------------------------------------------------------------- cost events


@dataclass(frozen=True, slots=True)
class CostEventFilter:
    account: str | None = None
    resource_type: str | None = None
    region: str | None = None
    priced: bool | None = None
    since: datetime | None = None
    until: datetime | None = None


def cost_event_item(row: Mapping[str, Any]) -> dict[str, Any]:
    data: Mapping[str, Any] = row["data"] or {}
    actor = data.get("actor") or {}
    return {
        "id": str(row["id"]),
        "account_id": row["account_id"],
        "event_id": row["event_id"],
        "ordinal": row["ordinal"],
        "event_time": row["event_time"],
        "region": row["region"],
        "resource_type": row["resource_type"],
        "event_source": data.get("event_source", ""),
        "event_name": data.get("event_name", ""),
        "actor": {
            "key": actor.get("key", ""),
            "kind": actor.get("kind", "unknown"),
            "detail": actor.get("detail", ""),
            "automation": bool(actor.get("automation", False)),
        },
        "resource_ids": list(data.get("resource_ids") or ()),
        "quantity": _finite(data.get("quantity")),
        "unit": data.get("unit", ""),
        "instance_type": data.get("instance_type"),
        "family": data.get("family"),
        "hourly_cost": dollars(row["hourly_cost"]),
        "priced": row["priced"],
        "cost_status": data.get("cost_status", "priced" if row["priced"] else "unpriced"),
        "unpriced_reason": data.get("unpriced_reason"),
        "attributes": dict(data.get("attributes") or {}),
        "seq": row["seq"],
    }


async def list_cost_events(
    db: Db, tenant: str, f: CostEventFilter, *, limit: int, after: TimeKey | None = None
) -> list[dict[str, Any]]:
    w = _Where(tenant)
    w.opt("account_id = {0}", f.account)
    w.opt("resource_type = {0}", f.resource_type)
    w.opt("region = {0}", f.region)
    w.opt("priced = {0}", f.priced)
    w.opt("event_time >= {0}", aware(f.since))
    w.opt("event_time < {0}", aware(f.until))
    _newest_first_after(w, after)
    lim = w.param(limit)
    sql = (
        "SELECT id, account_id, event_id, ordinal, event_time, region, resource_type, hourly_cost, priced, seq, data"
        f" FROM cost_events WHERE {w.sql} ORDER BY event_time DESC, id LIMIT {lim}"
    )
    return [cost_event_item(r) for r in await db.fetch(sql, *w.params)]


# ---------------------------------------------------------------------------------------------------- baselines


def baseline_item(row: Mapping[str, Any]) -> dict[str, Any]:
    state: Mapping[str, Any] = row["state"] or {}
    return {
        "account_id": row["account_id"],
        "resource_type": row["resource_type"],
        "mean_hourly_cost": dollars(row["mean_hourly_cost"]),
        "stddev_hourly_cost": dollars(row["stddev"]),
        "event_count": int(row["event_count"] or 0),
        "events_seen": int(state.get("events_seen") or 0),
        "observed_actors": list(row["observed_actors"] or ()),
        "regions": list(state.get("regions") or ()),
        "families": list(state.get("families") or ()),
        "first_event_time": state.get("first_event_time"),
        "last_event_time": state.get("last_event_time"),
        "updated_at": row["updated_at"],
    }


async def list_baselines(
    db: Db,
    tenant: str,
    *,
    account: str | None = None,
    resource_type: str | None = None,
    limit: int,
    after: NameKey | None = None,
) -> list[dict[str, Any]]:
    """Ordered by (account, resource type): the primary key's order."""
    w = _Where(tenant)
    w.opt("account_id = {0}", account)
    w.opt("resource_type = {0}", resource_type)
    if after is not None:
        w.add("(account_id, resource_type) > ({0}, {1})", after.account_id, after.name)
    lim = w.param(limit)
    sql = (
        "SELECT account_id, resource_type, mean_hourly_cost, stddev, event_count, observed_actors, state, updated_at"
        f" FROM baselines WHERE {w.sql} ORDER BY account_id, resource_type LIMIT {lim}"
    )
    return [baseline_item(r) for r in await db.fetch(sql, *w.params)]


# ---------------------------------------------------------------------------------------------------- resources


def resource_item(row: Mapping[str, Any]) -> dict[str, Any]:
    data: Mapping[str, Any] = row["data"] or {}
    hourly = dollars(row["hourly_cost"])
    return {
        "account_id": row["account_id"],
        "resource_id": row["resource_id"],
        "resource_type": row["resource_type"],
        "region": row["region"],
        "state": row["state"],
        "hourly_cost": hourly,
        # What it costs right now: compute stops billing once stopped, nothing once closed.
        "burning_per_hour": hourly if row["state"] == "running" else 0.0,
        "instance_type": data.get("instance_type"),
        "opened_at": row["opened_at"],
        "changed_at": row["changed_at"],
        "opened_by_event": data.get("opened_by_event", ""),
        "last_event": data.get("last_event", ""),
        "attributes": dict(data.get("attributes") or {}),
    }


def _resource_where(
    tenant: str, state: str | None, account: str | None, resource_type: str | None
) -> _Where:
    w = _Where(tenant)
    w.opt("state = {0}", state)
    w.opt("account_id = {0}", account)
    w.opt("resource_type = {0}", resource_type)
    return w


async def list_resources(
    db: Db,
    tenant: str,
    *,
    state: str | None = "running",
    account: str | None = None,
    resource_type: str | None = None,
    limit: int,
    after: NameKey | None = None,
) -> list[dict[str, Any]]:
    """`state=None` lists every state. Ordered by (account, resource id)."""
    w = _resource_where(tenant, state, account, resource_type)
    if after is not None:
        w.add("(account_id, resource_id) > ({0}, {1})", after.account_id, after.name)
    lim = w.param(limit)
    sql = (
        "SELECT account_id, resource_id, resource_type, region, state, hourly_cost, opened_at, changed_at, data"
        f" FROM resources WHERE {w.sql} ORDER BY account_id, resource_id LIMIT {lim}"
    )
    return [resource_item(r) for r in await db.fetch(sql, *w.params)]


async def resource_totals(
    db: Db, tenant: str, *, state: str | None = "running", account: str | None = None, resource_type: str | None = None
) -> dict[str, Any]:
    """Over every matching resource (not one page): how many, how many unpriced, and $/h burning now."""
    w = _resource_where(tenant, state, account, resource_type)
    row = await db.fetchrow(
        "SELECT count(*) AS n,"
        f" count(*) FILTER (WHERE state = 'running' AND {_UNPRICED_NOW}) AS unpriced,"
        f" sum(hourly_cost) FILTER (WHERE state = 'running' AND {_PRICED_NOW}) AS burning"
        f" FROM resources WHERE {w.sql}",
        *w.params,
    )
    assert row is not None
    return {
        "resource_count": int(row["n"]),
        "unpriced_running": int(row["unpriced"]),
        "total_hourly_cost": dollar_sum(row["burning"]),
    }


# ---------------------------------------------------------------------------------------------------- summary


def _empty_account(account_id: str) -> dict[str, Any]:
    return {
        "account_id": account_id,
        "cost_events": 0,
        "priced_cost_events": 0,
        "unpriced_cost_events": 0,
        "created_hourly_cost": 0.0,
        "anomalies": {s.value: 0 for s in Severity},
        "anomalies_total": 0,
        "running_resources": 0,
        "unpriced_running_resources": 0,
        "running_hourly_cost": 0.0,
    }


async def summary(
    db: Db, tenant: str, *, since: datetime | None = None, until: datetime | None = None
) -> list[dict[str, Any]]:
    """Per account: cost events and the $/h they created, anomalies by severity (both within [since, until) of
    event time), and what runs right now with its $/h. Ordered by account id."""
    accounts: dict[str, dict[str, Any]] = {}

    def acc(account_id: str) -> dict[str, Any]:
        return accounts.setdefault(account_id, _empty_account(account_id))

    w = _Where(tenant)
    w.opt("event_time >= {0}", aware(since))
    w.opt("event_time < {0}", aware(until))
    for r in await db.fetch(
        "SELECT account_id, count(*) AS n, count(*) FILTER (WHERE priced) AS priced,"
        f" sum(hourly_cost) FILTER (WHERE priced AND {_PRICED_NOW}) AS created"
        f" FROM cost_events WHERE {w.sql} GROUP BY account_id",
        *w.params,
    ):
        a = acc(r["account_id"])
        a["cost_events"] = int(r["n"])
        a["priced_cost_events"] = int(r["priced"])
        a["unpriced_cost_events"] = int(r["n"]) - int(r["priced"])
        a["created_hourly_cost"] = dollar_sum(r["created"])
    for r in await db.fetch(
        f"SELECT account_id, severity, count(*) AS n FROM anomalies WHERE {w.sql} GROUP BY account_id, severity",
        *w.params,
    ):
        a = acc(r["account_id"])
        a["anomalies"][r["severity"]] = a["anomalies"].get(r["severity"], 0) + int(r["n"])
        a["anomalies_total"] += int(r["n"])
    for r in await db.fetch(
        f"SELECT account_id, count(*) AS n, count(*) FILTER (WHERE {_UNPRICED_NOW}) AS unpriced,"
        f" sum(hourly_cost) FILTER (WHERE {_PRICED_NOW}) AS burning"
        " FROM resources WHERE tenant_id = $1 AND state = 'running' GROUP BY account_id",
        tenant,
    ):
        a = acc(r["account_id"])
        a["running_resources"] = int(r["n"])
        a["unpriced_running_resources"] = int(r["unpriced"])
        a["running_hourly_cost"] = dollar_sum(r["burning"])
    return [accounts[k] for k in sorted(accounts)]


def summary_totals(per_account: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The same figures over all accounts."""
    total = _empty_account("*")
    del total["account_id"]
    for a in per_account:
        for key in ("cost_events", "priced_cost_events", "unpriced_cost_events", "anomalies_total",
                    "running_resources", "unpriced_running_resources"):
            total[key] += a[key]
        for key in ("created_hourly_cost", "running_hourly_cost"):
            total[key] = round(total[key] + a[key], 6)
        for sev, n in a["anomalies"].items():
            total["anomalies"][sev] = total["anomalies"].get(sev, 0) + n
    return total


def _distinct_accounts(table: str) -> str:
    """Distinct account ids of one tenant by hopping through a (tenant_id, account_id, ...) index: one probe per
    account instead of reading every row (a million cost events, hundreds of thousands of anomalies)."""
    return f"""
        SELECT account_id FROM (
            WITH RECURSIVE hop(account_id) AS (
                (SELECT account_id FROM {table} WHERE tenant_id = $1 ORDER BY account_id LIMIT 1)
                UNION ALL
                SELECT (SELECT t.account_id FROM {table} t WHERE t.tenant_id = $1 AND t.account_id > hop.account_id
                        ORDER BY t.account_id LIMIT 1)
                FROM hop WHERE hop.account_id IS NOT NULL
            ) SELECT account_id FROM hop
        ) AS {table}_accounts WHERE account_id IS NOT NULL"""


async def list_accounts(db: Db, tenant: str) -> list[dict[str, Any]]:
    """Every account the tenant has data for, with the resource types learned and the latest event time."""
    rows = await db.fetch(
        f"""
        WITH ids AS (
            {_distinct_accounts("cost_events")}
            UNION {_distinct_accounts("anomalies")}
            UNION SELECT account_id FROM baselines WHERE tenant_id = $1
            UNION SELECT account_id FROM resources WHERE tenant_id = $1
        )
        SELECT ids.account_id,
               COALESCE((SELECT array_agg(b.resource_type ORDER BY b.resource_type) FROM baselines b
                         WHERE b.tenant_id = $1 AND b.account_id = ids.account_id), '{{}}') AS resource_types,
               (SELECT c.event_time FROM cost_events c WHERE c.tenant_id = $1 AND c.account_id = ids.account_id
                ORDER BY c.event_time DESC LIMIT 1) AS last_event_time
        FROM ids ORDER BY ids.account_id
        """,
        tenant,
    )
    return [
        {
            "account_id": r["account_id"],
            "resource_types": list(r["resource_types"]),
            "last_event_time": r["last_event_time"],
        }
        for r in rows
    ]
