"""The shadow schema a replay builds into: tables shaped exactly like the live ones, swapped in when complete.

`dd0c_shadow` holds a copy (structure only) of every table the runner writes - the projections, plus its own
`checkpoints`, `dead_letters`, `projection_generation` and `fold_prices` - so a stock PostgresRunner whose
connections put `dd0c_shadow` first on the search_path folds into it without knowing, while `log` and `tenants`
still resolve to the live ones. Its checkpoint lives in the shadow too, so a replay killed half-way resumes where
its last shadow commit stopped, and the live projections were never touched.

Secondary indexes are built once the bulk of the history is folded (inserting into a GIN index row by row costs
more than building it once), under the live indexes' own names, so after the swap the schema is exactly what the
migrations made. Primary keys and unique constraints come first: the writers' ON CONFLICT needs them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import asyncpg

from projections.zombies.writer import TABLES as ZOMBIE_TABLES
from schemas.events import Dd0cError

SCHEMA = "dd0c_shadow"
RETIRED = "dd0c_retired"  # the live tables go here inside the swap transaction, and are dropped in it

# What each --projection swaps. The runner always folds (and the shadow always holds) all of them: anomalies need
# the baselines they were scored against, and a shadow table nobody swaps in is simply dropped. Every table the
# runner writes must be here, or the shadow runner would write it in the live schema.
FOLDED = ("cost_events", "baselines", "anomalies", "resources", "fold_metrics", *ZOMBIE_TABLES)
PROJECTIONS: Mapping[str, tuple[str, ...]] = {
    "baselines": ("baselines",),
    "anomalies": ("anomalies",),
    "resources": ("resources",),
    "all": FOLDED,
}
# The runner's bookkeeping, shadowed so that it neither waits for nor disturbs the live runner's.
SUPPORT = ("checkpoints", "dead_letters", "projection_generation", "fold_prices")

_INDEX = re.compile(r"^CREATE (?P<unique>UNIQUE )?INDEX (?P<name>\S+) ON (?:ONLY )?(?P<table>\S+) (?P<rest>USING .+)$")


class ShadowError(Dd0cError):
    """The shadow schema cannot be used (built by another version, or the live schema changed under it)."""


async def exists(conn: asyncpg.Connection) -> bool:
    return bool(await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{SCHEMA}.replay_meta"))


async def meta(conn: asyncpg.Connection) -> dict[str, Any] | None:
    if not await exists(conn):
        return None
    value = await conn.fetchval(f"SELECT params FROM {SCHEMA}.replay_meta")
    return dict(value) if value is not None else None


async def drop(conn: asyncpg.Connection) -> None:
    await conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")


async def create(
    conn: asyncpg.Connection, params: Mapping[str, Any], *, copy_prices: bool, extra: tuple[str, ...] = ()
) -> None:
    """A fresh, empty shadow schema (one transaction: a kill during it leaves nothing, or a complete schema).

    `copy_prices`: start the shadow with the live stored price snapshot (a replay without --prices prices history
    with whatever the live worker uses); otherwise the caller stores the replay's snapshot in it.
    """
    async with conn.transaction():
        await conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        await conn.execute(f"CREATE SCHEMA {SCHEMA}")
        for table in FOLDED:
            await conn.execute(
                f"CREATE TABLE {SCHEMA}.{table} (LIKE public.{table} INCLUDING ALL EXCLUDING INDEXES)"
            )
            await _copy_key_constraints(conn, table)
        for table in SUPPORT + extra:
            await conn.execute(f"CREATE TABLE {SCHEMA}.{table} (LIKE public.{table} INCLUDING ALL)")
        await conn.execute(f"INSERT INTO {SCHEMA}.projection_generation (singleton) VALUES (true)")
        if copy_prices:
            await conn.execute(f"INSERT INTO {SCHEMA}.fold_prices SELECT * FROM public.fold_prices")
        # Last: its presence is what says "a usable shadow exists" (see `exists`).
        await conn.execute(f"CREATE TABLE {SCHEMA}.replay_meta (params JSONB NOT NULL)")
        await conn.execute(f"INSERT INTO {SCHEMA}.replay_meta (params) VALUES ($1::jsonb)", dict(params))


async def _copy_key_constraints(conn: asyncpg.Connection, table: str) -> None:
    """Primary key and unique constraints of the live table, under the same names (the shadow schema is empty)."""
    rows = await conn.fetch(
        "SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint"
        " WHERE conrelid = $1::regclass AND contype IN ('p', 'u') ORDER BY conname",
        f"public.{table}",
    )
    for row in rows:
        await conn.execute(f'ALTER TABLE {SCHEMA}.{table} ADD CONSTRAINT "{row["conname"]}" {row["def"]}')


async def build_indexes(conn: asyncpg.Connection) -> list[str]:
    """The live tables' other indexes on the shadow tables, same names. Idempotent (a resumed replay)."""
    built = []
    for table in FOLDED:
        rows = await conn.fetch(
            "SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS def FROM pg_index i"
            " WHERE i.indrelid = $1::regclass AND NOT EXISTS"
            " (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid)"
            " ORDER BY 1",
            f"public.{table}",
        )
        for row in rows:
            match = _INDEX.match(row["def"])
            if match is None:
                raise ShadowError(f"cannot copy index definition of {table}: {row['def']!r}")
            name = match["name"].rpartition(".")[2]
            await conn.execute(
                f"CREATE {match['unique'] or ''}INDEX IF NOT EXISTS {name} ON {SCHEMA}.{table} {match['rest']}"
            )
            built.append(name)
    return built


async def owned_sequences(conn: asyncpg.Connection, schema: str, table: str) -> list[tuple[str, str]]:
    """(sequence, column) pairs OWNED BY a column of schema.table (BIGSERIAL columns)."""
    rows = await conn.fetch(
        "SELECT d.objid::regclass::text AS seq, a.attname AS col FROM pg_depend d"
        " JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'"
        " JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid"
        " WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass"
        " AND d.refobjid = $1::regclass AND d.deptype = 'a'",
        f"{schema}.{table}",
    )
    return [(r["seq"], r["col"]) for r in rows]


def shadow_dsn(dsn: str) -> str:
    """The same database, with the shadow schema first on the search_path (asyncpg passes unknown query
    parameters to the server as settings)."""
    sep = "&" if "?" in dsn else "?"
    return f"{dsn}{sep}search_path={SCHEMA},public"
