"""The projection generation: which build of the projection tables a runner's in-memory state came from.

See migration 0004. Runners call `current` when they load and `hold` first thing in every commit; replay
calls `bump` in the transaction that swaps rebuilt tables in. `hold` takes a share lock on the row, so a
swap waits for commits in flight, and a commit that starts during a swap waits for it and then sees the new
number.
"""

from __future__ import annotations

import asyncpg

from schemas.events import Dd0cError


class StaleState(Dd0cError):
    """The projections were swapped (replay) since this runner loaded its state: roll back and reload."""


async def current(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT generation FROM projection_generation") or 0)


async def hold(conn: asyncpg.Connection, expected: int) -> None:
    """Inside the commit transaction: fail with StaleState unless the tables are still generation `expected`."""
    now = int(await conn.fetchval("SELECT generation FROM projection_generation FOR SHARE") or 0)
    if now != expected:
        raise StaleState(f"projections were replaced (generation {expected} -> {now}); reloading")


async def bump(conn: asyncpg.Connection, note: str) -> int:
    """Inside the swap transaction: the next generation; runners holding older state will reload."""
    return int(
        await conn.fetchval(
            "UPDATE projection_generation SET generation = generation + 1, swapped_at = now(), note = $1"
            " RETURNING generation",
            note,
        )
    )
