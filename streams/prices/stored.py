"""The price snapshot stored in Postgres (`fold_prices`, migration 0020), which wins over the shipped one.

`dd0c-cost replay --prices FILE` rebuilds history with another snapshot and stores it in the swap transaction;
every runner reads it whenever it (re)loads its state, so new events are priced exactly as the rebuilt history.
A snapshot is parsed once per process and content hash: a reload after a swap costs one small query when the
snapshot did not change.
"""

from __future__ import annotations

import hashlib
import json

import asyncpg

from streams.prices.table import PriceTable

_parsed: dict[str, PriceTable] = {}  # sha256 -> table; snapshots are immutable, so this never goes stale


def fingerprint(table: PriceTable) -> str:
    """sha256 of the snapshot's canonical JSON: equal for equal prices, whatever file they came from."""
    canonical = json.dumps(table.to_dict() | {"origin": None}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


async def stored_prices(conn: asyncpg.Connection, fallback: PriceTable) -> PriceTable:
    """The stored snapshot, or `fallback` (what the runner was started with) when none is stored."""
    row = await conn.fetchrow("SELECT sha256, origin FROM fold_prices")
    if row is None:
        return fallback
    sha, origin = row["sha256"], row["origin"]
    table = _parsed.get(sha)
    if table is None:
        data = await conn.fetchval("SELECT snapshot FROM fold_prices")
        table = PriceTable.from_dict(data, origin=f"{origin} (stored by replay)")
        _parsed[sha] = table
    return table


async def store_prices(conn: asyncpg.Connection, table: PriceTable) -> str:
    """Make `table` the snapshot every runner folds with (inside the caller's transaction). Returns its sha256."""
    sha = fingerprint(table)
    await conn.execute(
        "INSERT INTO fold_prices (singleton, sha256, origin, snapshot) VALUES (true, $1, $2, $3::jsonb)"
        " ON CONFLICT (singleton) DO UPDATE SET sha256 = EXCLUDED.sha256, origin = EXCLUDED.origin,"
        " snapshot = EXCLUDED.snapshot, stored_at = now()",
        sha,
        table.origin,
        table.to_dict(),
    )
    _parsed[sha] = table
    return sha
