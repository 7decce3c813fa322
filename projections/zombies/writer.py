"""zombies and zombie_scans rows: the runner's writer for decoded zombie events (FoldOutput.zombies).

Called inside the runner's commit transaction, after `generation.hold`, like every other writer. It keeps no
state in memory: it reads the rows the batch touches (one query), folds the batch's events into them in log order
with the pure `streams.zombies.fold.apply`, and upserts the results (one statement). So a restart, a kill -9 or a
swapped-in replay needs nothing reloaded, and a replayed position changes nothing (`apply` skips events at or
below a row's `seq`; scan rows are keyed by scan id).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from projections.rows import dumps_document, dumps_json, from_jsonable
from streams.zombies import events as ev
from streams.zombies.fold import ZombieRow
from streams.zombies.fold import apply as fold_row

_UPSERT = """
INSERT INTO zombies (tenant_id, zombie_id, account_id, region, resource_id, resource_type, check_name, status,
                     monthly_waste_usd, evidence, first_seen, last_seen, opened_at, resolved_at, acknowledged_at,
                     snoozed_until, seq, data)
SELECT t.tenant_id, t.zombie_id, t.account_id, t.region, t.resource_id, t.resource_type, t.check_name, t.status,
       t.waste, t.evidence::jsonb, t.first_seen, t.last_seen, t.opened_at, t.resolved_at, t.acknowledged_at,
       t.snoozed_until, t.seq, t.data::jsonb
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
            $9::float8[], $10::text[], $11::timestamptz[], $12::timestamptz[], $13::timestamptz[], $14::timestamptz[],
            $15::timestamptz[], $16::timestamptz[], $17::bigint[], $18::text[])
     AS t(tenant_id, zombie_id, account_id, region, resource_id, resource_type, check_name, status, waste, evidence,
          first_seen, last_seen, opened_at, resolved_at, acknowledged_at, snoozed_until, seq, data)
ON CONFLICT (tenant_id, zombie_id) DO UPDATE SET
    account_id = EXCLUDED.account_id, region = EXCLUDED.region, resource_id = EXCLUDED.resource_id,
    resource_type = EXCLUDED.resource_type, check_name = EXCLUDED.check_name, status = EXCLUDED.status,
    monthly_waste_usd = EXCLUDED.monthly_waste_usd, evidence = EXCLUDED.evidence, first_seen = EXCLUDED.first_seen,
    last_seen = EXCLUDED.last_seen, opened_at = EXCLUDED.opened_at, resolved_at = EXCLUDED.resolved_at,
    acknowledged_at = EXCLUDED.acknowledged_at, snoozed_until = EXCLUDED.snoozed_until, seq = EXCLUDED.seq,
    data = EXCLUDED.data
"""

_SCANS = """
INSERT INTO zombie_scans (tenant_id, scan_id, account_id, status, scanned_at, zombies_found, monthly_waste_usd, seq,
                          data)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::int[], $7::float8[],
                     $8::bigint[], $9::text[]::jsonb[])
ON CONFLICT (tenant_id, scan_id) DO NOTHING
"""

TABLES = ("zombies", "zombie_scans")  # what a reset / replay of this projection clears


async def load(conn: asyncpg.Connection, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], ZombieRow]:
    """The stored rows of (tenant, zombie_id) keys."""
    if not keys:
        return {}
    rows = await conn.fetch(
        "SELECT z.data FROM zombies z JOIN unnest($1::text[], $2::text[]) AS k(tenant_id, zombie_id)"
        " USING (tenant_id, zombie_id)",
        [k[0] for k in keys],
        [k[1] for k in keys],
    )
    loaded = (from_jsonable(ZombieRow, r["data"]) for r in rows)
    return {(z.tenant, z.zombie_id): z for z in loaded}


async def apply(conn: asyncpg.Connection, events: Sequence[ev.ZombieEvent]) -> int:
    """Fold a batch's zombie events into the projection; returns how many zombie rows changed."""
    if not events:
        return 0
    per_zombie = [e for e in events if e.name != ev.SCANNED]
    rows = await load(conn, list(dict.fromkeys((e.tenant, e.zombie_id) for e in per_zombie)))
    changed: dict[tuple[str, str], ZombieRow] = {}
    for event in per_zombie:
        key = (event.tenant, event.zombie_id)
        updated = fold_row(rows.get(key), event)
        if updated is not None:
            rows[key] = changed[key] = updated
    await _upsert(conn, list(changed.values()))
    await _scans(conn, [e for e in events if e.name == ev.SCANNED])
    return len(changed)


async def _upsert(conn: asyncpg.Connection, rows: Sequence[ZombieRow]) -> None:
    if not rows:
        return
    columns: tuple[list[Any], ...] = tuple([] for _ in range(18))
    for z in rows:
        values = (
            z.tenant, z.zombie_id, z.account_id, z.region, z.resource_id, z.resource_type, z.check, z.status,
            z.monthly_waste_usd, dumps_json(z.evidence), z.first_seen, z.last_seen, z.opened_at, z.resolved_at,
            z.acknowledged_at, z.snoozed_until, z.seq, dumps_document(z),
        )
        for column, value in zip(columns, values, strict=True):
            column.append(value)
    await conn.execute(_UPSERT, *columns)


async def _scans(conn: asyncpg.Connection, scans: Sequence[ev.ZombieEvent]) -> None:
    if not scans:
        return
    waste = [s.data.get("monthly_waste_usd") for s in scans]
    await conn.execute(
        _SCANS,
        [s.tenant for s in scans],
        [str(s.data["scan_id"]) for s in scans],
        [s.account_id for s in scans],
        [str(s.data["status"]) for s in scans],
        [s.at for s in scans],
        [int(s.data.get("zombies_found") or 0) for s in scans],
        [float(w) if isinstance(w, (int, float)) else None for w in waste],
        [s.seq for s in scans],
        [dumps_json(dict(s.data)) for s in scans],
    )
