"""resources rows: the Resource document plus state / $-per-hour columns for the "burning now" queries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from projections.rows import document, dumps_document, from_jsonable
from schemas.events import Resource

ResourceKey = tuple[str, str, str]  # (tenant, account_id, resource_id)

_UPSERT = """
INSERT INTO resources (tenant_id, account_id, resource_id, resource_type, region, state, hourly_cost, opened_at,
                       changed_at, seq, data)
SELECT t.tenant_id, t.account_id, t.resource_id, t.resource_type, t.region, t.state, t.hourly_cost, t.opened_at,
       t.changed_at, t.seq, t.data::jsonb
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::float8[],
            $8::timestamptz[], $9::timestamptz[], $10::bigint[], $11::text[])
     AS t(tenant_id, account_id, resource_id, resource_type, region, state, hourly_cost, opened_at, changed_at, seq,
          data)
ON CONFLICT (tenant_id, account_id, resource_id) DO UPDATE SET
    resource_type = EXCLUDED.resource_type, region = EXCLUDED.region, state = EXCLUDED.state,
    hourly_cost = EXCLUDED.hourly_cost, opened_at = EXCLUDED.opened_at, changed_at = EXCLUDED.changed_at,
    seq = EXCLUDED.seq, data = EXCLUDED.data
"""


def to_document(resource: Resource) -> dict[str, Any]:
    doc: dict[str, Any] = document(resource)
    return doc


def from_document(data: dict[str, Any]) -> Resource:
    return from_jsonable(Resource, data)


async def upsert(conn: asyncpg.Connection, items: Sequence[tuple[Resource, int]]) -> None:
    """Write (resource, seq of the entry that last changed it) pairs, replacing the stored rows."""
    if not items:
        return
    columns: tuple[list[Any], ...] = tuple([] for _ in range(11))
    for r, seq in items:
        row = (
            r.tenant,
            r.account_id,
            r.resource_id,
            r.resource_type,
            r.region,
            r.state,
            r.hourly_cost,
            r.opened_at,
            r.changed_at,
            seq,
            dumps_document(r),
        )
        for column, value in zip(columns, row, strict=True):
            column.append(value)
    await conn.execute(_UPSERT, *columns)


async def load_open(conn: asyncpg.Connection, tenant: str | None = None) -> dict[ResourceKey, Resource]:
    """Every resource that is not closed (of one tenant, or all): what the ledger fold needs in memory."""
    rows = await conn.fetch(
        "SELECT data FROM resources WHERE state <> 'closed' AND ($1::text IS NULL OR tenant_id = $1)", tenant
    )
    loaded = (from_document(r["data"]) for r in rows)
    return {(r.tenant, r.account_id, r.resource_id): r for r in loaded}
