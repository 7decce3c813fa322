"""fold_metrics rows: (tenant, metric, label) -> value, added to in the runner's transaction."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import asyncpg

_ADD = """
INSERT INTO fold_metrics (tenant_id, metric, label, value)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[])
ON CONFLICT (tenant_id, metric, label) DO UPDATE SET value = fold_metrics.value + EXCLUDED.value
"""


async def add(conn: asyncpg.Connection, observations: Iterable[tuple[str, str, str]]) -> None:
    """Count each (tenant, metric, label) observation once."""
    counts = Counter(observations)
    if not counts:
        return
    keys = sorted(counts)
    await conn.execute(
        _ADD, [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys], [counts[k] for k in keys]
    )
