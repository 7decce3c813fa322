"""A tenant's anomalies after a feed position, read together with the projection generation.

A replay swaps rebuilt tables in (streams/replay) and bumps the generation in the same transaction: the rebuilt
anomalies get new feed ids, above every id a reader has seen, for the whole history. A reader that keeps a feed_id
position (the live feed in api/feed.py, the notifier's cursors) must therefore know which generation its position
refers to, and read the generation, the tenant's last feed_id and the rows in ONE statement (one snapshot): read
separately, a swap committing in between would pair the old generation with the rebuilt rows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from schemas.codec import loads

Row = TypeVar("Row")

_SQL = """
SELECT g.generation, g.note, (SELECT coalesce(max(feed_id), 0) FROM anomalies WHERE tenant_id = $1) AS top, a.*
FROM projection_generation g
LEFT JOIN LATERAL (SELECT {columns} FROM anomalies WHERE tenant_id = $1 AND feed_id > $2{where} ORDER BY feed_id
                   LIMIT $3) a ON true
ORDER BY a.feed_id
"""


@dataclass(frozen=True)
class Page(Generic[Row]):
    generation: int
    note: str  # the last swap's note (streams/replay: {"by": "replay", "tenant": ..., "tables": [...]})
    top: int  # the tenant's highest feed_id
    rows: list[Row]

    def replaces(self, tenant: str, known: int) -> bool:
        """Whether the tables changed since generation `known` in a way that rebuilt this tenant's anomalies."""
        if self.generation == known:
            return False
        if self.generation != known + 1:
            return True  # several swaps since: assume one covered the tenant
        try:
            scope = loads(self.note).get("tenant")
        except (ValueError, AttributeError):
            return True
        return scope is None or scope == tenant


async def read_page(
    db: Any,
    tenant: str,
    after: int,
    limit: int,
    *,
    columns: Sequence[str],
    row: Callable[[Mapping[str, Any]], Row],
    where: tuple[str, Any] | None = None,
) -> Page[Row]:
    """Up to `limit` anomalies of `tenant` after feed_id `after` (columns of `anomalies`, feed_id among them, each
    made into a Row by `row`), with the generation and the tenant's last feed_id of the same snapshot. `where`: one
    more condition on the rows, written with $4, and its value (`top` stays the tenant's last feed_id)."""
    if "feed_id" not in columns or not all(c.isidentifier() for c in columns):
        raise ValueError(f"columns {list(columns)!r}: plain column names of anomalies, feed_id among them")
    sql = _SQL.format(columns=", ".join(columns), where=f" AND {where[0]}" if where else "")
    rows = await db.fetch(sql, tenant, after, limit, *((where[1],) if where else ()))
    first = rows[0]
    return Page(first["generation"], first["note"] or "", first["top"],
                [row(r) for r in rows if r["feed_id"] is not None])
