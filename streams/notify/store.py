"""Postgres side of notifications: channel config, the notifier's cursors, delivery records, the panic audit, and
the digest's reads (new anomalies, open zombies, top accounts).

A delivery record and the cursor move in one transaction (`commit_outcome`), so after a restart the notifier
resumes after the last recorded outcome; the unique (anomaly_id, channel) row is the second guard.

Both cursors (alerts and the digest) remember the projection generation their feed_id refers to. A replay rebuilds
the anomalies with new, higher feed ids (and, with another policy, anomalies nobody was told about for events long
past); `follow` moves the cursors of a tenant the swap covered to the rebuilt table's end, so that history is
neither sent to Slack nor listed as new in the digest. What the live worker commits after the swap is sent as usual.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from projections import queries
from projections.generation.page import Page, read_page
from streams.notify.digest import DigestAccount, DigestAnomaly, DigestZombie
from streams.notify.messages import resource_text
from streams.pipeline import RUNNER_NAME

log = logging.getLogger("dd0c.notify")

Db = asyncpg.Pool | asyncpg.Connection

TERMINAL = ("sent", "failed", "suppressed")  # decided for good; `held` is decided again when Redis is back
_UNSET: Any = object()

_ANOMALY_COLUMNS = (
    "id", "feed_id", "account_id", "resource_type", "severity", "event_time", "detected_at", "hourly_cost", "backfill",
    "data",
)
_ANOMALY_SQL = f"SELECT {', '.join(_ANOMALY_COLUMNS)} FROM anomalies"


@dataclass(frozen=True, slots=True)
class Channels:
    tenant: str
    slack_webhook_url: str | None
    email_to: tuple[str, ...]

    def public(self) -> dict[str, Any]:
        """What the API may show: never the webhook URL (whoever holds it can post into the channel)."""
        return {"slack_webhook_configured": bool(self.slack_webhook_url), "email_to": list(self.email_to)}


# ---------------------------------------------------------------------------------------------------- config


async def get_channels(db: Db, tenant: str) -> Channels | None:
    row = await db.fetchrow(
        "SELECT slack_webhook_url, email_to FROM notify_channels WHERE tenant_id = $1", tenant
    )
    if row is None:
        return None
    return Channels(tenant, row["slack_webhook_url"], tuple(row["email_to"] or ()))


async def set_channels(
    conn: asyncpg.Connection, tenant: str, *, slack_webhook_url: str | None = _UNSET, email_to: Sequence[str] = _UNSET
) -> Channels:
    """Create or change a tenant's channels. The first time, both cursors start at the tenant's current newest
    anomaly: configuring Slack does not replay history into the channel."""
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO notify_channels (tenant_id) VALUES ($1) ON CONFLICT (tenant_id) DO NOTHING", tenant
        )
        if slack_webhook_url is not _UNSET:
            await conn.execute(
                "UPDATE notify_channels SET slack_webhook_url = $2, updated_at = now() WHERE tenant_id = $1",
                tenant,
                slack_webhook_url or None,
            )
        if email_to is not _UNSET:
            await conn.execute(
                "UPDATE notify_channels SET email_to = $2, updated_at = now() WHERE tenant_id = $1",
                tenant,
                [e.strip() for e in email_to if e.strip()],
            )
        end = await pending(conn, tenant, 0, 0)  # the newest feed_id and its generation, one snapshot
        await conn.execute(
            "INSERT INTO notify_cursors (tenant_id, feed_id, generation) VALUES ($1, $2, $3)"
            " ON CONFLICT (tenant_id) DO NOTHING",
            tenant,
            end.top,
            end.generation,
        )
        await conn.execute(
            "INSERT INTO notify_digests (tenant_id, feed_id, generation) VALUES ($1, $2, $3)"
            " ON CONFLICT (tenant_id) DO NOTHING",
            tenant,
            end.top,
            end.generation,
        )
    channels = await get_channels(conn, tenant)
    assert channels is not None
    return channels


async def notify_tenants(db: Db, only: str | None = None) -> list[str]:
    rows = await db.fetch(
        "SELECT tenant_id FROM notify_channels WHERE $1::text IS NULL OR tenant_id = $1 ORDER BY tenant_id", only
    )
    return [r["tenant_id"] for r in rows]


# ---------------------------------------------------------------------------------------------------- alerts


async def cursor(db: Db, tenant: str) -> int:
    value = await db.fetchval("SELECT feed_id FROM notify_cursors WHERE tenant_id = $1", tenant)
    return int(value or 0)


async def pending(db: Db, tenant: str, after: int, limit: int,
                  beyond: Mapping[str, Any] | None = None) -> Page[dict[str, Any]]:
    """Committed anomalies after the cursor (and beyond `beyond`, the alert cursor's horizon after a replay), in
    feed order, in the API's shape - with the projection generation and the tenant's newest feed_id read in the
    same statement (see projections/generation/page.py)."""
    where = (_BEYOND.replace("$N", "$4"), beyond) if beyond is not None else None
    return await read_page(db, tenant, after, limit, columns=_ANOMALY_COLUMNS, row=queries.anomaly_item,
                           where=where)


async def caught_up(db: Db, tenant: str, horizon: Mapping[str, Any], page: Page[Any]) -> None:
    """The alert pass has decided every anomaly of `page`'s snapshot after its cursor: remember `horizon` (read
    before that page, so everything up to it is in it) for a replay to start from, and - when the cursor was past a
    replay's history - put it at the page's end, since every row up to there was decided or is history."""
    await db.execute(
        "UPDATE notify_cursors SET horizon = $2::jsonb, updated_at = now(),"
        " feed_id = CASE WHEN since_horizon IS NULL THEN feed_id ELSE GREATEST(feed_id, $3) END,"
        " since_horizon = NULL WHERE tenant_id = $1 AND generation = $4",
        tenant, horizon, page.top, page.generation,
    )


@dataclass(frozen=True, slots=True)
class Position:
    feed_id: int  # the alert cursor
    generation: int  # the projection generation it refers to
    digest_generation: int  # the one the digest cursor refers to
    since_horizon: dict[str, Any] | None = None  # after a replay: only anomalies beyond it are news

    def behind(self, generation: int) -> bool:
        """Whether a cursor refers to a generation before `generation` (`follow` has work to do)."""
        return min(self.generation, self.digest_generation) < generation


async def position(db: Db, tenant: str) -> Position:
    """The alert cursor with the projection generations of both cursors, read together (one statement): a cursor
    read apart from its generation could be paired with a generation another process already moved it past."""
    row = await db.fetchrow(
        "SELECT c.feed_id, c.generation, c.since_horizon, d.generation AS digest_generation FROM notify_cursors c"
        " LEFT JOIN notify_digests d USING (tenant_id) WHERE c.tenant_id = $1",
        tenant,
    )
    if row is None:
        return Position(0, 0, 0)
    digest = row["digest_generation"]
    return Position(int(row["feed_id"]), int(row["generation"]), int(row["generation"] if digest is None else digest),
                    row["since_horizon"])


def replaced_reason(generation: int) -> str:
    return f"projections replaced by replay at generation {generation}; history not re-sent"


async def follow(pool: asyncpg.Pool, tenant: str, page: Page[Any]) -> bool:
    """Bring both cursors to `page`'s generation. Where the swap(s) since a cursor's generation rebuilt this tenant's
    anomalies, that cursor jumps to `page.top` (the rebuilt table's end): nothing up to it is sent or listed as new.
    A swap that did not cover the tenant only changes the stored generation. Returns whether a cursor jumped.

    The cursor rows are locked while deciding, and one already at (or past) `page.generation` is left alone."""
    async with pool.acquire() as conn, conn.transaction():
        moved: dict[str, int] = {}
        for table in ("notify_cursors", "notify_digests"):
            row = await conn.fetchrow(f"SELECT feed_id, generation FROM {table} WHERE tenant_id = $1 FOR UPDATE",
                                      tenant)
            if row is None or row["generation"] >= page.generation:
                continue  # up to date, or moved on by a process that read a newer generation than `page`
            if page.replaces(tenant, row["generation"]):
                await _follow_rebuilt(conn, table, tenant, page)
                moved[table] = int(row["feed_id"])
            else:
                await conn.execute(f"UPDATE {table} SET generation = $2 WHERE tenant_id = $1", tenant,
                                   page.generation)
        if not moved:
            return False
        reason = replaced_reason(page.generation)
        # An alert held for Redis is part of the rebuilt history now (same id, new feed_id at or below page.top):
        # it is not decided again, so it must not stay `held` for ever.
        await conn.execute(
            "UPDATE notify_deliveries SET status = 'suppressed', reason = $2, updated_at = now()"
            " WHERE tenant_id = $1 AND status = 'held' AND anomaly_id IS NOT NULL",
            tenant,
            reason,
        )
        detail = {"generation": page.generation, "feed_id": page.top, "note": page.note,
                  "alerts_from_feed_id": moved.get("notify_cursors"),
                  "digest_from_feed_id": moved.get("notify_digests")}
        await record(conn, Record(tenant, "slack", "replay", "suppressed", reason, feed_id=page.top, detail=detail))
    log.info("notify: tenant %s: %s (cursors moved to feed_id %d)", tenant, reason, page.top)
    return True


async def _follow_rebuilt(conn: asyncpg.Connection, table: str, tenant: str, page: Page[Any]) -> None:
    """A cursor across a swap that rebuilt the tenant's anomalies. Its feed_id means nothing in the new table; what
    it stood for is its horizon (how far the folds had read when the last digest was built / the alert pass last
    caught up). So it restarts at 0 with that horizon: the rebuilt anomalies of log entries beyond it - those that
    arrived since, under their new verdicts - are news, none of the history is. An alert decided after its horizon
    is found again under the same id and not sent twice (notify_deliveries_once).
    No horizon: a digest cursor that never sent starts at 0 (its first digest lists everything, as it would have);
    otherwise (nothing recorded yet, or a row from before migration 0021) the rebuilt table's end, as before."""
    first = "last_sent_at IS NULL" if table == "notify_digests" else "false"
    await conn.execute(
        f"UPDATE {table} SET generation = $3,"
        f" feed_id = CASE WHEN horizon IS NOT NULL OR {first} THEN 0 ELSE $2 END,"
        " since_horizon = horizon WHERE tenant_id = $1",
        tenant, page.top, page.generation,
    )


async def resource_ids(db: Db, tenant: str, anomaly: Mapping[str, Any]) -> list[str]:
    """The resources the anomaly's CloudTrail event created (from its cost events); an anomaly has no id of its own."""
    rows = await db.fetch(
        "SELECT data->'resource_ids' AS ids FROM cost_events WHERE tenant_id = $1 AND account_id = $2"
        " AND event_id = ANY($3::text[]) AND resource_type = $4 ORDER BY event_id, ordinal",
        tenant,
        anomaly["account_id"],
        list(anomaly.get("event_ids") or ()),
        anomaly["resource_type"],
    )
    found: list[str] = []
    for r in rows:
        for rid in r["ids"] or ():
            if rid not in found:
                found.append(str(rid))
    return found


async def delivery_status(db: Db, anomaly_id: str, channel: str) -> str | None:
    value = await db.fetchval(
        "SELECT status FROM notify_deliveries WHERE anomaly_id = $1 AND channel = $2", uuid.UUID(anomaly_id), channel
    )
    return str(value) if value is not None else None


@dataclass(frozen=True, slots=True)
class Record:
    tenant: str
    channel: str
    kind: str  # alert | storm | digest
    status: str
    reason: str = ""
    attempts: int = 0
    anomaly_id: str | None = None
    feed_id: int | None = None
    severity: str | None = None
    detail: Mapping[str, Any] | None = None


async def record(conn: asyncpg.Connection, r: Record) -> None:
    """Insert, or for an anomaly already recorded as `held`, overwrite with the outcome decided now."""
    args = (
        r.tenant, uuid.UUID(r.anomaly_id) if r.anomaly_id else None, r.feed_id, r.channel, r.kind, r.status,
        r.reason, r.attempts, r.severity, dict(r.detail or {}),
    )
    sql = (
        "INSERT INTO notify_deliveries (tenant_id, anomaly_id, feed_id, channel, kind, status, reason, attempts,"
        " severity, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    )
    if r.anomaly_id is None:
        await conn.execute(sql, *args)
        return
    await conn.execute(
        sql + " ON CONFLICT (anomaly_id, channel) WHERE anomaly_id IS NOT NULL DO UPDATE SET status = EXCLUDED.status,"
        " reason = EXCLUDED.reason, attempts = EXCLUDED.attempts, detail = EXCLUDED.detail, updated_at = now()"
        " WHERE notify_deliveries.status = 'held'",
        *args,
    )


async def commit_outcome(pool: asyncpg.Pool, records: Sequence[Record], tenant: str, feed_id: int | None) -> None:
    """The delivery records and (unless the outcome is `held`) the cursor past this anomaly, in one transaction."""
    async with pool.acquire() as conn, conn.transaction():
        for r in records:
            await record(conn, r)
        if feed_id is not None:
            await conn.execute(
                "INSERT INTO notify_cursors (tenant_id, feed_id) VALUES ($1, $2) ON CONFLICT (tenant_id)"
                " DO UPDATE SET feed_id = GREATEST(notify_cursors.feed_id, EXCLUDED.feed_id), updated_at = now()",
                tenant,
                feed_id,
            )


async def list_deliveries(db: Db, tenant: str, *, limit: int = 50, status: str | None = None) -> list[dict[str, Any]]:
    rows = await db.fetch(
        "SELECT id, anomaly_id, feed_id, channel, kind, status, reason, attempts, severity, detail, created_at,"
        " updated_at FROM notify_deliveries WHERE tenant_id = $1 AND ($2::text IS NULL OR status = $2)"
        " ORDER BY id DESC LIMIT $3",
        tenant,
        status,
        limit,
    )
    return [{**dict(r), "anomaly_id": str(r["anomaly_id"]) if r["anomaly_id"] else None} for r in rows]


# ---------------------------------------------------------------------------------------------------- panic audit


async def audit_panic(conn: asyncpg.Connection, tenant: str | None, action: str, actor: str, reason: str) -> datetime:
    at: datetime = await conn.fetchval(
        "INSERT INTO panic_audit (tenant_id, action, actor, reason) VALUES ($1, $2, $3, $4) RETURNING at",
        tenant,
        action,
        actor,
        reason,
    )
    return at


async def panic_history(db: Db, tenant: str | None, *, limit: int = 20) -> list[dict[str, Any]]:
    """Entries for the tenant and the global ones (tenant None: global only), newest first."""
    rows = await db.fetch(
        "SELECT tenant_id, action, actor, reason, at FROM panic_audit"
        " WHERE tenant_id IS NULL OR tenant_id = $1 ORDER BY at DESC, id DESC LIMIT $2",
        tenant,
        limit,
    )
    return [{**dict(r), "scope": r["tenant_id"] or "global"} for r in rows]


# ---------------------------------------------------------------------------------------------------- digest


@dataclass(frozen=True, slots=True)
class DigestState:
    feed_id: int
    last_sent_at: datetime | None
    last_run_at: datetime | None
    generation: int = 0  # the projection generation feed_id refers to
    since_horizon: dict[str, Any] | None = None  # after a replay: only anomalies beyond it are new (migration 0021)


async def digest_state(db: Db, tenant: str) -> DigestState:
    row = await db.fetchrow(
        "SELECT feed_id, last_sent_at, last_run_at, generation, since_horizon FROM notify_digests"
        " WHERE tenant_id = $1",
        tenant,
    )
    if row is None:
        return DigestState(0, None, None)
    return DigestState(int(row["feed_id"]), row["last_sent_at"], row["last_run_at"], int(row["generation"]),
                       row["since_horizon"])


async def fold_horizon(db: Db, tenant: str) -> dict[str, Any]:
    """How far the folds have read the log, from their checkpoints: {"log": seq} for the Postgres runner (the
    all-tenant one or the tenant's own), {"kafka": {"<partition>": last offset folded}} for the Kafka workers.
    Read in the same snapshot as the anomalies, every anomaly of an entry up to here is in that snapshot."""
    rows = await db.fetch(
        "SELECT runner, position FROM checkpoints WHERE runner = ANY($1::text[]) OR runner LIKE $2",
        [RUNNER_NAME, f"{RUNNER_NAME}:{tenant}"],
        f"{RUNNER_NAME}:kafka:%",
    )
    horizon: dict[str, Any] = {"kafka": {}}
    for r in rows:
        if r["runner"].startswith(f"{RUNNER_NAME}:kafka:"):
            partition = r["runner"].rsplit(":", 1)[1]
            horizon["kafka"][partition] = max(int(r["position"]), horizon["kafka"].get(partition, -1))
        else:
            horizon["log"] = max(int(r["position"]), horizon.get("log", 0))
    return horizon


# Whether an anomaly's log entry lies beyond a horizon ($N, JSONB; NULL = no horizon, everything counts). A Kafka
# entry's seq is partition * 2**40 + offset (streams/runner/kafka.py `kafka_seq`); a deployment uses one log.
_BEYOND = """($N::jsonb IS NULL OR CASE
  WHEN $N::jsonb -> 'kafka' <> '{}'::jsonb
  THEN (seq & 1099511627775) > coalesce(($N::jsonb -> 'kafka' ->> (seq >> 40)::text)::bigint, -1)
  ELSE seq > coalesce(($N::jsonb ->> 'log')::bigint, 0) END)"""


@dataclass(frozen=True, slots=True)
class NewAnomalies:
    listed: list[DigestAnomaly]
    total: int
    by_severity: dict[str, int]
    newest_feed_id: int  # where the next digest starts once this one is delivered


async def new_anomalies(db: Db, tenant: str, after: int, *, limit: int,
                        beyond: Mapping[str, Any] | None = None) -> NewAnomalies:
    """Anomalies after the digest cursor (and, after a replay, beyond the last digest's horizon): counts over all,
    the `limit` most severe (then oldest) listed, each with what the Slack channel did with it."""
    counts = await db.fetch(
        "SELECT severity, count(*) AS n, max(feed_id) AS newest FROM anomalies WHERE tenant_id = $1 AND feed_id > $2"
        f" AND {_BEYOND.replace('$N', '$3')} GROUP BY severity",
        tenant,
        after,
        beyond,
    )
    by_severity = {r["severity"]: int(r["n"]) for r in counts}
    top = await db.fetchval("SELECT coalesce(max(feed_id), 0) FROM anomalies WHERE tenant_id = $1", tenant)
    newest = max([after, int(top)])  # the digest covers the table up to here, listed or not
    rows = await db.fetch(
        f"SELECT a.*, d.status AS slack_status, d.reason AS slack_reason FROM ({_ANOMALY_SQL}"
        f" WHERE tenant_id = $1 AND feed_id > $2 AND feed_id <= $3 AND {_BEYOND.replace('$N', '$6')}) AS a"
        " LEFT JOIN notify_deliveries d ON d.anomaly_id = a.id AND d.channel = 'slack'"
        " ORDER BY array_position($5::text[], a.severity), a.event_time, a.feed_id LIMIT $4",
        tenant,
        after,
        newest,
        limit,
        ["critical", "high", "medium", "low", "info"],
        beyond,
    )
    listed = []
    for r in rows:
        item = queries.anomaly_item(r)
        slack = r["slack_status"] or "no alert recorded"  # e.g. not decided yet, or a preview
        if r["slack_reason"]:
            slack = f"{slack} ({r['slack_reason']})"
        listed.append(
            DigestAnomaly(
                id=item["id"],
                severity=item["severity"],
                account_id=item["account_id"],
                resource=resource_text(item, ()),
                hourly_cost=item["hourly_cost"],
                expected_hourly_cost=item["expected_hourly_cost"],
                event_time=item["event_time"],
                slack=slack,
            )
        )
    return NewAnomalies(listed, sum(by_severity.values()), by_severity, newest)


async def running_accounts(db: Db, tenant: str) -> list[DigestAccount]:
    """Every account by what its running resources burn per hour now (the resources projection), costliest first:
    the digest lists the first few and totals all of them."""
    rows = await db.fetch(
        "SELECT account_id, count(*) AS n, sum(hourly_cost) FILTER (WHERE hourly_cost IS NOT NULL"
        " AND hourly_cost <> 'NaN'::float8) AS burning FROM resources WHERE tenant_id = $1 AND state = 'running'"
        " GROUP BY account_id ORDER BY burning DESC NULLS LAST, account_id",
        tenant,
    )
    return [DigestAccount(r["account_id"], int(r["n"]), queries.dollar_sum(r["burning"])) for r in rows]


async def open_zombies(db: Db, tenant: str, now: datetime) -> list[DigestZombie]:
    """Open zombies for the digest. [] while there is no `zombies` table (the zombie hunter brings it).

    `open` as the API and the CLI mean it (projections/zombies/queries.py): detected, not resolved, not
    acknowledged, no snooze in force - so the digest's count and waste are the ones `GET /v1/zombies` shows. If the
    projection changes shape, a mismatch is logged and the digest still goes out without the section.
    """
    from projections.zombies.queries import status_condition

    if await db.fetchval("SELECT to_regclass('zombies')") is None:
        return []
    try:
        rows = await db.fetch(
            "SELECT account_id, resource_id, resource_type, check_name, monthly_waste_usd FROM zombies"
            f" WHERE tenant_id = $1 AND {status_condition('open', '$2')}"
            " ORDER BY monthly_waste_usd DESC NULLS LAST, account_id, resource_id",
            tenant,
            now,
        )
    except (asyncpg.UndefinedColumnError, asyncpg.UndefinedFunctionError) as exc:
        log.warning("notify: zombies table has another shape (%s); digest sent without zombies", exc)
        return []
    return [
        DigestZombie(r["account_id"], r["resource_id"], r["resource_type"], r["check_name"],
                     queries.dollars(r["monthly_waste_usd"]))
        for r in rows
    ]


async def finish_digest(
    pool: asyncpg.Pool, r: Record, tenant: str, *, now: datetime, delivered_to: int | None, ran: bool,
    generation: int = 0, horizon: Mapping[str, Any] | None = None,
) -> None:
    """Record the digest's outcome; a delivered digest moves "new since" on, a run (delivered or failed) waits for
    tomorrow, a held one (Redis down) is tried again at the next tick. `delivered_to` is a feed_id of projection
    generation `generation`, `horizon` how far the folds had read when the digest was built (fold_horizon). When a
    replay swapped tables in meanwhile, `follow` owns the cursor: only the horizon moves, so the next digest lists
    the rebuilt anomalies beyond what this one covered."""
    async with pool.acquire() as conn, conn.transaction():
        await record(conn, r)
        await conn.execute(
            "INSERT INTO notify_digests (tenant_id, feed_id) VALUES ($1, 0) ON CONFLICT (tenant_id) DO NOTHING", tenant
        )
        if delivered_to is not None:
            await conn.execute(
                "UPDATE notify_digests SET last_sent_at = $3, horizon = $5::jsonb,"
                " feed_id = CASE WHEN generation = $4 THEN $2 ELSE feed_id END,"
                " since_horizon = CASE WHEN generation = $4 THEN NULL ELSE $5::jsonb END WHERE tenant_id = $1",
                tenant,
                delivered_to,
                now,
                generation,
                horizon,
            )
        if ran:
            await conn.execute("UPDATE notify_digests SET last_run_at = $2 WHERE tenant_id = $1", tenant, now)
