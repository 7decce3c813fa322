"""The poller's positions in Postgres (table s3_poll_positions, migration 0008): per day folder, the newest key
read and the keys read within the lookback before it (see `layout.start_after`: objects put late in a minute).

`commit_object` is the one write: it moves a prefix's position past an object together with what the log does
not deduplicate for that object - its read-only counts and its dead letters - in one transaction. It runs after
the object's entries are durable in the log, so a crash anywhere re-reads at most that object, and the re-read
changes nothing (entries: deduplicated by the log; counts and dead letters: not yet written).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import asyncpg

from schemas.events import Rejected
from streams.log.postgres import COUNT_READ_ONLY, ReadOnlyKey, dead_letters
from streams.poller import layout


@dataclass(frozen=True, slots=True)
class Position:
    """Where a folder stands: the newest key read, and the keys read within the lookback before it."""

    last_key: str | None = None
    recent: frozenset[str] = frozenset()

    def start_after(self) -> str | None:
        return layout.start_after(self.last_key)

    def has_read(self, key: str) -> bool:
        """True for a key this folder has read: remembered, or older than the lookback window."""
        if key in self.recent or self.last_key is None:
            return key in self.recent
        since = self.start_after()
        return since is not None and key <= since


async def load(db: asyncpg.Pool | asyncpg.Connection, tenant: str, bucket: str, prefix: str) -> Position:
    row = await db.fetchrow(
        "SELECT last_key, recent FROM s3_poll_positions WHERE tenant_id = $1 AND bucket = $2 AND prefix = $3",
        tenant, bucket, prefix,
    )
    return Position() if row is None else Position(row["last_key"] or None, frozenset(row["recent"]))


async def last_key(db: asyncpg.Pool | asyncpg.Connection, tenant: str, bucket: str, prefix: str) -> str | None:
    """The newest key read under `prefix`, None when nothing was read yet."""
    return (await load(db, tenant, bucket, prefix)).last_key


# A folder's first object: a row to lock, so that two pollers racing on it serialise (it commits, or rolls back,
# with the transaction that inserted it: nobody sees it empty).
_CLAIM_ROW = """
INSERT INTO s3_poll_positions (tenant_id, bucket, prefix, account_id, region, day, last_key, objects)
VALUES ($1, $2, $3, $4, $5, $6, '', 0)
ON CONFLICT (tenant_id, bucket, prefix) DO NOTHING
"""

_LOCK = """
SELECT last_key, recent FROM s3_poll_positions WHERE tenant_id = $1 AND bucket = $2 AND prefix = $3 FOR UPDATE
"""

_SAVE = """
INSERT INTO s3_poll_positions (tenant_id, bucket, prefix, account_id, region, day, last_key, recent, objects)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1)
ON CONFLICT (tenant_id, bucket, prefix) DO UPDATE
SET last_key = EXCLUDED.last_key, recent = EXCLUDED.recent, objects = s3_poll_positions.objects + 1,
    updated_at = now()
"""


async def add_dead_letters(conn: asyncpg.Connection, tenant: str, rejected: Sequence[tuple[str, Rejected]]) -> None:
    """(stage, rejected) pairs: "read" for what the reader refused, "admit" for an unregistered account."""
    await dead_letters(conn, [(tenant, stage, r) for stage, r in rejected])


async def commit_object(
    conn: asyncpg.Connection,
    *,
    tenant: str,
    bucket: str,
    prefix: str,
    account_id: str,
    region: str,
    day: date,
    key: str,
    counted: Mapping[ReadOnlyKey, int],
    rejected: Sequence[tuple[str, Rejected]],
) -> bool:
    """One transaction: `key` recorded as read in its folder's position, with the object's read-only counts and
    dead letters.

    Returns False (and writes nothing) when the position says `key` was read already: another poller (a backfill
    racing the schedule) committed this object first, so its counts are in already."""
    async with conn.transaction():
        # Serialise with any other poller of this folder (a backfill racing the schedule).
        await conn.execute(_CLAIM_ROW, tenant, bucket, prefix, account_id, region, day)
        row = await conn.fetchrow(_LOCK, tenant, bucket, prefix)
        position = Position(row["last_key"] or None, frozenset(row["recent"]))
        if position.has_read(key):
            return False
        newest = key if position.last_key is None or key > position.last_key else position.last_key
        recent = layout.recent_keys({*position.recent, key}, newest)
        await conn.execute(_SAVE, tenant, bucket, prefix, account_id, region, day, newest, sorted(recent))
        if counted:
            keys = list(counted)
            await conn.execute(
                COUNT_READ_ONLY, [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys],
                [counted[k] for k in keys],
            )
        await add_dead_letters(conn, tenant, rejected)
    return True
