"""The log on Postgres: append (deduplicated, read-only events counted), read after a position, dead letters.

Appends are serialised by a transaction-scoped advisory lock taken before the insert. Without it two
appenders could commit out of order (seq 11 visible before seq 10), and a runner that had already moved past
11 would never fold 10. With it, seq order is commit order.

Rows go in as one `INSERT ... SELECT FROM unnest(arrays)` per batch: one round trip and one statement plan
whatever the batch size, which is what lets ingest keep up with gunzip + JSON parsing. `append_runs` goes one
step further for the ingester: the entries of many small delivery files in one statement, each file still
getting its own result (which of its entries were new) from the keys the INSERT returns.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date

import asyncpg

from ops.settings import load_settings
from projections.rows import dumps_json
from schemas.codec import NotJsonSafe
from schemas.events import LogEntry, LogKind, Rejected
from streams.pipeline import LOG_CHANNEL

log = logging.getLogger("dd0c.log")

APPEND_LOCK_KEY = 0x0DD0C106  # any constant, distinct from the migration and runner locks

_INSERT = """
INSERT INTO log (tenant_id, account_id, event_id, event_time, ingested_at, kind, event_source, event_name,
                 region, read_only, source, version, record)
SELECT t.tenant_id, t.account_id, t.event_id, t.event_time, t.ingested_at, t.kind, t.event_source, t.event_name,
       t.region, t.read_only, t.source, t.version, t.record::jsonb
FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[], $6::text[], $7::text[],
            $8::text[], $9::text[], $10::bool[], $11::text[], $12::int[], $13::text[])
     WITH ORDINALITY AS t(tenant_id, account_id, event_id, event_time, ingested_at, kind, event_source, event_name,
                          region, read_only, source, version, record, ord)
ORDER BY t.ord
ON CONFLICT (tenant_id, account_id, event_id) DO NOTHING
RETURNING tenant_id, account_id, event_id
"""

# Shared with the Kafka backend, which counts read-only events in the same table so readers look in one place.
COUNT_READ_ONLY = """
INSERT INTO log_read_only_counts (tenant_id, account_id, day, events)
SELECT * FROM unnest($1::text[], $2::text[], $3::date[], $4::bigint[])
ON CONFLICT (tenant_id, account_id, day) DO UPDATE SET events = log_read_only_counts.events + EXCLUDED.events
"""

_SELECT = """
SELECT seq, tenant_id, account_id, event_id, event_time, ingested_at, kind, event_source, event_name, region,
       read_only, source, version, record
FROM log
WHERE seq > $1 AND ($3::text IS NULL OR tenant_id = $3)
ORDER BY seq
LIMIT $2
"""

# The runner's read: the same rows minus those the fold passes over - read-only CloudTrail calls, and calls no
# stage acts on ($4/$5: streams/fold.py FOLDED_CALLS) - so their records are neither sent as JSON nor decoded:
# with DD0C_KEEP_READ_ONLY that was nine rows in ten plus most writes (CreateTags, PutParameter, ...), and most of
# a replay's time. The last row of the range always comes back, passed over or not, so a reader's position (and
# the runner's checkpoint) moves exactly as far as with _SELECT; `scanned` says how many rows the range held, so
# "a full batch" still means what it did.
_SELECT_FOLDED = """
WITH batch AS MATERIALIZED (
    SELECT seq, kind = 'cloudtrail' AND (read_only OR (event_source, event_name) NOT IN (
               SELECT * FROM unnest($4::text[], $5::text[]))) AS passed_over
    FROM log
    WHERE seq > $1 AND ($3::text IS NULL OR tenant_id = $3)
    ORDER BY seq
    LIMIT $2
), span AS (SELECT count(*) AS scanned, max(seq) AS last FROM batch)
SELECT l.seq, l.tenant_id, l.account_id, l.event_id, l.event_time, l.ingested_at, l.kind, l.event_source,
       l.event_name, l.region, l.read_only, l.source, l.version, l.record, span.scanned
FROM batch CROSS JOIN span JOIN log l ON l.seq = batch.seq
WHERE NOT batch.passed_over OR batch.seq = span.last
ORDER BY l.seq
"""


@dataclass(frozen=True, slots=True)
class AppendResult:
    logged: int = 0  # new rows in the log
    duplicate: int = 0  # already in the log (same tenant, account, eventID): dropped
    read_only_counted: int = 0  # read-only events counted per account and day instead of stored
    rejected: tuple[Rejected, ...] = ()  # entries Postgres could not hold (see storable_record); the rest were appended

    def __add__(self, other: AppendResult) -> AppendResult:
        return AppendResult(
            self.logged + other.logged,
            self.duplicate + other.duplicate,
            self.read_only_counted + other.read_only_counted,
            self.rejected + other.rejected,
        )


ReadOnlyKey = tuple[str, str, date]  # (tenant, account_id, UTC day of eventTime)


async def append(
    conn: asyncpg.Connection, entries: Sequence[LogEntry], *, keep_read_only: bool | None = None
) -> AppendResult:
    """Append `entries` in their order, in one transaction (a savepoint if the caller holds one open).

    `keep_read_only` overrides `Settings.keep_read_only` (store read-only events whole instead of counting).
    Listeners on `dd0c_log` are notified, per tenant, when the transaction commits.
    """
    if not entries:
        return AppendResult()
    (result,) = await append_runs(conn, [entries], keep_read_only=keep_read_only)
    return result


async def append_runs(
    conn: asyncpg.Connection,
    runs: Sequence[Sequence[LogEntry]],
    *,
    keep_read_only: bool | None = None,
    counted: Mapping[ReadOnlyKey, int] | None = None,
) -> list[AppendResult]:
    """`append` for several runs of entries at once (the ingester: one run per delivery file or chunk of one).

    One transaction and one INSERT for all of them, in order; result i is exactly what `append(runs[i])` would
    have returned had the runs been appended one after another. `counted` adds read-only events the caller has
    already reduced to counts (without building their entries) to the same upsert; they belong to no run.
    """
    if keep_read_only is None:
        keep_read_only = load_settings().keep_read_only
    stored: list[tuple[LogEntry, str]] = []
    owner: list[int] = []  # run index of each stored entry
    rejected: list[list[Rejected]] = [[] for _ in runs]
    counted_per_run = [0] * len(runs)
    read_only: Counter[ReadOnlyKey] = Counter(counted or {})
    for index, entries in enumerate(runs):
        for entry in entries:
            if entry.read_only and not keep_read_only:
                read_only[(entry.tenant, entry.account_id, entry.event_time.astimezone(UTC).date())] += 1
                counted_per_run[index] += 1
                continue
            encoded = storable_record(entry)
            if isinstance(encoded, Rejected):
                rejected[index].append(encoded)
            else:
                stored.append((entry, encoded))
                owner.append(index)
    if not stored and not read_only:
        return [AppendResult(rejected=tuple(r)) for r in rejected]
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", APPEND_LOCK_KEY)
        new_keys = await _insert(conn, stored) if stored else set()
        if read_only:
            keys = list(read_only)
            await conn.execute(
                COUNT_READ_ONLY,
                [k[0] for k in keys],
                [k[1] for k in keys],
                [k[2] for k in keys],
                [read_only[k] for k in keys],
            )
        if new_keys:
            for tenant in sorted({key[0] for key in new_keys}):
                await conn.execute("SELECT pg_notify($1, $2)", LOG_CHANNEL, tenant)
    logged = [0] * len(runs)
    for (entry, _), index in zip(stored, owner, strict=True):
        # ON CONFLICT DO NOTHING inserts the first row with a key (in `ord` order) and skips later copies, so a
        # returned key belongs to its first occurrence; every other occurrence was a duplicate.
        key = (entry.tenant, entry.account_id, entry.event_id)
        if key in new_keys:
            new_keys.discard(key)
            logged[index] += 1
    stored_per_run = Counter(owner)
    return [
        AppendResult(
            logged=logged[i],
            duplicate=stored_per_run[i] - logged[i],
            read_only_counted=counted_per_run[i],
            rejected=tuple(rejected[i]),
        )
        for i in range(len(runs))
    ]


# A JSON \u0000 escape that is not itself escaped (an even run of backslashes before it): Postgres JSONB and
# text cannot hold NUL, and one such record would otherwise fail the whole batch's INSERT.
_NUL_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


def storable_record(entry: LogEntry) -> str | Rejected:
    """The record as JSON text Postgres will accept, or why not (a value, so the good entries still go in).

    Both log backends apply it, so the same input gives the same projections whichever log it went through.
    """
    try:
        text = dumps_json(entry.record)  # = schemas.codec.dumps: refuses NaN/Infinity before the query is sent
    except (NotJsonSafe, TypeError, ValueError) as exc:  # orjson: lone UTF-16 surrogates are not valid text
        reason = f"record {entry.event_id!r} cannot be stored as JSON: {exc}"
        return Rejected(reason, _raw(entry), entry.source, entry.event_id)
    nul = "\x00" in "".join((entry.account_id, entry.event_id, entry.event_source, entry.event_name, entry.region))
    if nul or ("\\u0000" in text and _NUL_ESCAPE.search(text)):
        reason = f"record {entry.event_id!r} contains a NUL character, which Postgres cannot store"
        return Rejected(reason, text.encode("utf-8", "replace")[:65536], entry.source, entry.event_id)
    return text


def _raw(entry: LogEntry) -> bytes:
    return repr(entry.record).encode("utf-8", "backslashreplace")[:65536]


async def _insert(conn: asyncpg.Connection, entries: Sequence[tuple[LogEntry, str]]) -> set[tuple[str, str, str]]:
    columns: tuple[list[object], ...] = tuple([] for _ in range(13))
    for e, record in entries:
        for column, value in zip(
            columns,
            (
                e.tenant,
                e.account_id,
                e.event_id,
                e.event_time,
                e.ingested_at,
                e.kind.value,
                e.event_source,
                e.event_name,
                e.region,
                e.read_only,
                e.source,
                e.version,
                record,
            ),
            strict=True,
        ):
            column.append(value)
    rows = await conn.fetch(_INSERT, *columns)
    return {(r[0], r[1], r[2]) for r in rows}  # the keys (tenant, account, event_id) of the rows actually inserted


async def read_after(
    conn: asyncpg.Connection, position: int, limit: int, *, tenant: str | None = None
) -> list[LogEntry]:
    """Up to `limit` entries with seq > position, in seq order (optionally one tenant's only)."""
    rows = await conn.fetch(_SELECT, position, limit, tenant)
    return [_entry(row) for row in rows]


async def read_folded_after(
    conn: asyncpg.Connection,
    position: int,
    limit: int,
    *,
    calls: Collection[tuple[str, str]],
    tenant: str | None = None,
) -> tuple[list[LogEntry], int]:
    """`read_after` for the runner: (the entries the fold acts on, how many log rows the read covered).

    The entries are those of `read_after(conn, position, limit, tenant=tenant)` minus the CloudTrail calls that are
    read-only or whose (eventSource, eventName) is not in `calls`, except the last one, which is always kept: it
    ends the range, so `entries[-1].seq` is where to resume. Other kinds (Insight, zombie) always come back.
    """
    sources, names = [c[0] for c in calls], [c[1] for c in calls]
    rows = await conn.fetch(_SELECT_FOLDED, position, limit, tenant, sources, names)
    return [_entry(row) for row in rows], rows[0][14] if rows else 0


_KINDS = {kind.value: kind for kind in LogKind}


def _entry(row: asyncpg.Record) -> LogEntry:
    # Positional unpacking (the column order of _SELECT) and a dict for the kind: this runs for every entry the
    # runner folds, and name lookups plus an Enum call were a tenth of the fold.
    seq, tenant, account, event_id, event_time, ingested_at, kind, event_source, event_name, region, read_only, \
        source, version, record = row[:14]
    return LogEntry(
        tenant=tenant,
        event_id=event_id,
        account_id=account,
        event_time=event_time,
        ingested_at=ingested_at,
        event_source=event_source,
        event_name=event_name,
        region=region,
        read_only=read_only,
        kind=_KINDS.get(kind) or LogKind(kind),  # an unknown kind still raises ValueError, as before
        record=record,
        source=source,
        version=version,
        seq=seq,
    )


async def head(conn: asyncpg.Connection) -> int:
    """The highest position in the log (0 when empty)."""
    return int(await conn.fetchval("SELECT coalesce(max(seq), 0) FROM log"))


async def dead_letter(conn: asyncpg.Connection, tenant: str, stage: str, rejected: Rejected) -> int:
    """Store one rejected input with its reason and raw bytes; returns the dead letter's id."""
    return int(
        await conn.fetchval(
            "INSERT INTO dead_letters (tenant_id, stage, source, locator, reason, raw)"
            " VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            tenant,
            stage,
            rejected.source,
            rejected.locator,
            rejected.reason,
            bytes(rejected.raw),
        )
    )


async def dead_letters(conn: asyncpg.Connection, items: Sequence[tuple[str, str, Rejected]]) -> None:
    """Many dead letters at once: (tenant, stage, rejected) each."""
    if not items:
        return
    await conn.executemany(
        "INSERT INTO dead_letters (tenant_id, stage, source, locator, reason, raw) VALUES ($1, $2, $3, $4, $5, $6)",
        [(t, s, r.source, r.locator, r.reason, bytes(r.raw)) for t, s, r in items],
    )
