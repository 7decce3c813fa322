"""anomalies rows: the Anomaly document plus the columns the API and the live feed query on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from projections.rows import document, dumps_document, from_jsonable
from schemas.events import Anomaly

_INSERT = """
INSERT INTO anomalies (id, tenant_id, account_id, resource_type, severity, severity_rank, event_time, detected_at,
                       hourly_cost, backfill, seq, data)
SELECT t.id, t.tenant_id, t.account_id, t.resource_type, t.severity, t.severity_rank, t.event_time, t.detected_at,
       t.hourly_cost, t.backfill, t.seq, t.data::jsonb
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::smallint[], $7::timestamptz[],
            $8::timestamptz[], $9::float8[], $10::bool[], $11::bigint[], $12::text[])
     WITH ORDINALITY AS t(id, tenant_id, account_id, resource_type, severity, severity_rank, event_time, detected_at,
                          hourly_cost, backfill, seq, data, ord)
ORDER BY t.ord
ON CONFLICT (id) DO NOTHING
RETURNING tenant_id
"""


def to_document(anomaly: Anomaly) -> dict[str, Any]:
    doc: dict[str, Any] = document(anomaly)
    return doc


def from_document(data: dict[str, Any]) -> Anomaly:
    return from_jsonable(Anomaly, data)


async def insert(conn: asyncpg.Connection, items: Sequence[tuple[Anomaly, int]]) -> list[str]:
    """Insert (anomaly, log seq) pairs in order; an id already stored is left alone (a replay never re-alerts).

    Returns the tenant of each row actually inserted, so the caller notifies the live feed only for new ones.
    """
    if not items:
        return []
    columns: tuple[list[Any], ...] = tuple([] for _ in range(12))
    for a, seq in items:
        row = (
            a.id,
            a.tenant,
            a.account_id,
            a.resource_type,
            a.severity.value,
            a.severity.rank,
            a.event_time,
            a.detected_at,
            a.hourly_cost,
            a.backfill,
            seq,
            dumps_document(a),
        )
        for column, value in zip(columns, row, strict=True):
            column.append(value)
    rows = await conn.fetch(_INSERT, *columns)
    return [r["tenant_id"] for r in rows]
