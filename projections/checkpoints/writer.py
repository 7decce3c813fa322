"""checkpoints rows: (runner, position, applied). See migration 0002 for why there are two numbers."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg


@dataclass(frozen=True, slots=True)
class Checkpoint:
    runner: str
    position: int = 0  # read after this seq next
    applied: int = 0  # every entry up to here is already in the projections (never decreases)


async def load(conn: asyncpg.Connection, runner: str) -> Checkpoint:
    row = await conn.fetchrow("SELECT position, applied FROM checkpoints WHERE runner = $1", runner)
    if row is None:
        return Checkpoint(runner)
    return Checkpoint(runner, row["position"], row["applied"])


async def save(conn: asyncpg.Connection, runner: str, position: int) -> None:
    """Move the runner to `position`; `applied` follows it up, never down."""
    await conn.execute(
        "INSERT INTO checkpoints (runner, position, applied, updated_at) VALUES ($1, $2, $2, now())"
        " ON CONFLICT (runner) DO UPDATE SET position = EXCLUDED.position,"
        " applied = GREATEST(checkpoints.applied, EXCLUDED.applied), updated_at = now()",
        runner,
        position,
    )


async def names(conn: asyncpg.Connection) -> list[str]:
    return [r["runner"] for r in await conn.fetch("SELECT runner FROM checkpoints ORDER BY runner")]
