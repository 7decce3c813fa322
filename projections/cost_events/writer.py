"""cost_events rows: the CostEvent document plus the columns the API filters and sorts on."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg
import orjson

from projections import rows
from projections.rows import from_jsonable
from schemas.events import CostEvent, Dd0cError


def row_id(tenant: str, account_id: str, event_id: str, ordinal: int) -> uuid.UUID:
    """Deterministic: a replayed record writes the same id, so ON CONFLICT keeps the first row."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"{tenant}/{account_id}/{event_id}/{ordinal}")


def to_document(event: CostEvent) -> dict[str, Any]:
    """`schemas.codec.to_jsonable(event)` plus `priced` (NaN / Infinity refused)."""
    doc: dict[str, Any] = orjson.loads(dumps_document(event))
    return doc


def dumps_document(event: CostEvent) -> str:
    """The row's `data` as JSON text: the event's document with `"priced"` appended as its last key."""
    text = rows.dumps_document(event)  # always a JSON object: "{...}"
    return f'{text[:-1]},"priced":{"true" if event.priced else "false"}}}'


def from_document(data: dict[str, Any]) -> CostEvent:
    return from_jsonable(CostEvent, {k: v for k, v in data.items() if k != "priced"})


_INSERT = """
INSERT INTO cost_events (id, tenant_id, account_id, data, created_at, event_id, ordinal, seq, event_time,
                         resource_type, region, hourly_cost, priced)
SELECT t.id, t.tenant_id, t.account_id, t.data::jsonb, t.created_at, t.event_id, t.ordinal, t.seq, t.event_time,
       t.resource_type, t.region, t.hourly_cost, t.priced
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[], $7::int[],
            $8::bigint[], $9::timestamptz[], $10::text[], $11::text[], $12::float8[], $13::bool[])
     AS t(id, tenant_id, account_id, data, created_at, event_id, ordinal, seq, event_time, resource_type, region,
          hourly_cost, priced)
ON CONFLICT DO NOTHING
"""


async def insert(conn: asyncpg.Connection, events: Sequence[CostEvent]) -> int:
    """Insert new cost events (a replayed one is ignored); returns how many rows were new."""
    if not events:
        return 0
    columns: tuple[list[Any], ...] = tuple([] for _ in range(13))
    for e in events:
        if e.seq is None:
            raise Dd0cError(f"cost event {e.event_id}/{e.ordinal} has no log position")
        row = (
            row_id(e.tenant, e.account_id, e.event_id, e.ordinal),
            e.tenant,
            e.account_id,
            dumps_document(e),
            e.ingested_at,  # created_at: when the record reached us, so replay writes the same value
            e.event_id,
            e.ordinal,
            e.seq,
            e.event_time,
            e.resource_type,
            e.region,
            e.hourly_cost,
            e.priced,
        )
        for column, value in zip(columns, row, strict=True):
            column.append(value)
    status = await conn.execute(_INSERT, *columns)
    return int(status.rsplit(" ", 1)[1])
