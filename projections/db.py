"""Postgres connections with JSON codecs on every connection (case R23).

asyncpg hands JSONB back as text unless a codec is registered per connection, so the pool registers json and
jsonb codecs in `init` - which also runs for connections the pool opens later, after a reconnect. Encoding
goes through schemas.codec.dumps, which refuses NaN before the query is sent.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from schemas.codec import dumps, loads


async def init_connection(conn: asyncpg.Connection) -> None:
    for typename in ("json", "jsonb"):
        await conn.set_type_codec(typename, encoder=dumps, decoder=loads, schema="pg_catalog", format="text")


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10, **kwargs: Any) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size, init=init_connection, **kwargs)
    assert pool is not None
    return pool


async def connect(dsn: str) -> asyncpg.Connection:
    """A single connection with the same codecs (for LISTEN, migrations and scripts)."""
    conn = await asyncpg.connect(dsn)
    await init_connection(conn)
    return conn
