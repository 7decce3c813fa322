"""baselines rows: `state` holds the exact Baseline (Welford n, mean, M2 and the seen sets, case R17); the
NUMERIC columns are rounded copies for people and SQL, never read back by the folds."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import asyncpg
import orjson

from projections.rows import document, dumps_document, from_jsonable
from schemas.events import Baseline
from streams.score import welford

log = logging.getLogger("dd0c.projections.baselines")

BaselineKey = tuple[str, str, str]  # (tenant, account_id, resource_type)

_NUMERIC_LIMIT = Decimal("1e8")  # NUMERIC(12,4) holds |x| < 10^8
_FOUR_PLACES = Decimal("0.0001")

_UPSERT = """
INSERT INTO baselines (tenant_id, account_id, resource_type, mean_hourly_cost, stddev, event_count,
                       observed_actors, state, seq, updated_at)
SELECT t.tenant_id, t.account_id, t.resource_type, t.mean, t.stddev, t.n, t.actors::jsonb, t.state::jsonb, t.seq,
       now()
FROM unnest($1::text[], $2::text[], $3::text[], $4::numeric[], $5::numeric[], $6::int[], $7::text[], $8::text[],
            $9::bigint[]) AS t(tenant_id, account_id, resource_type, mean, stddev, n, actors, state, seq)
ON CONFLICT (tenant_id, account_id, resource_type) DO UPDATE SET
    mean_hourly_cost = EXCLUDED.mean_hourly_cost, stddev = EXCLUDED.stddev, event_count = EXCLUDED.event_count,
    observed_actors = EXCLUDED.observed_actors, state = EXCLUDED.state, seq = EXCLUDED.seq, updated_at = now()
"""


def stddev(baseline: Baseline) -> float | None:
    """Sample standard deviation (n - 1) for the seed's `stddev` column; None below two samples.

    The raw figure (welford.variance), not welford.stddev: its float-noise rule belongs to scoring, not storage.
    """
    variance = welford.variance(baseline.stats)
    return None if variance is None else math.sqrt(variance)


def _numeric(value: float | None, what: str, baseline: Baseline) -> Decimal | None:
    if value is None:
        return None
    rounded = Decimal(repr(value)).quantize(_FOUR_PLACES)
    if abs(rounded) >= _NUMERIC_LIMIT:
        # The column cannot hold it; the exact value stays in `state`. Writing would fail the whole batch.
        log.warning("baseline %s/%s/%s: %s %s exceeds NUMERIC(12,4); column left NULL",
                    baseline.tenant, baseline.account_id, baseline.resource_type, what, value)
        return None
    return rounded


def to_state(baseline: Baseline) -> dict[str, Any]:
    state: dict[str, Any] = document(baseline)  # == schemas.codec.to_jsonable(baseline)
    return state


def from_state(state: dict[str, Any]) -> Baseline:
    return from_jsonable(Baseline, state)


async def upsert(conn: asyncpg.Connection, items: Sequence[tuple[Baseline, int]]) -> None:
    """Write (baseline, seq of the last entry folded into it) pairs, replacing the stored rows."""
    if not items:
        return
    columns: tuple[list[Any], ...] = tuple([] for _ in range(9))
    for baseline, seq in items:
        n = baseline.stats.n
        row = (
            baseline.tenant,
            baseline.account_id,
            baseline.resource_type,
            _numeric(baseline.stats.mean, "mean", baseline) if n >= 1 else None,
            _numeric(stddev(baseline), "stddev", baseline),
            n,
            orjson.dumps(sorted(baseline.actors)).decode(),
            dumps_document(baseline),
            seq,
        )
        for column, value in zip(columns, row, strict=True):
            column.append(value)
    await conn.execute(_UPSERT, *columns)


async def load(conn: asyncpg.Connection, tenant: str | None = None) -> dict[BaselineKey, Baseline]:
    """Every stored baseline (of one tenant, or all), decoded exactly from `state`."""
    rows = await conn.fetch(
        "SELECT state FROM baselines WHERE $1::text IS NULL OR tenant_id = $1", tenant
    )
    loaded = (from_state(r["state"]) for r in rows)
    return {(b.tenant, b.account_id, b.resource_type): b for b in loaded}
