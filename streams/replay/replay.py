"""Replay: rebuild projections from the start of the log into shadow tables while live folding goes on, then
swap them in atomically.

The protocol
1. One replay at a time (advisory lock `dd0c-replay`). The shadow schema (streams/replay/shadow.py) is created,
   or resumed when a killed replay left one built with the same parameters (same projections, tenant, policy,
   prices, live generation and schema version); anything else is dropped and rebuilt.
2. A ShadowRunner (the stock runner, search_path = dd0c_shadow,public, its own lock and checkpoint) folds the log
   from the start into the shadow, chasing a target position until it is within two batches of it.
3. The shadow's secondary indexes are built; a last catch-up.
4. The swap, ONE transaction on a plain connection:
   a. `generation.bump` first: it waits for a live commit in flight, and every later live commit blocks on its
      `generation.hold` until we are done and then fails with StaleState and reloads (from the swapped tables).
      The live checkpoint therefore cannot move any more; it is also read FOR UPDATE.
   b. The shadow must correspond to exactly that live position P: if it is short, the gap (usually a batch or
      two) is folded into the shadow now, on the shadow's own connection, while the live worker stays blocked.
   c. Tables (or, with --tenant, the tenant's rows) are swapped; BIGSERIAL ownership is moved to the swapped-in
      column first, so dropping the old table does not drop `anomalies_feed_id_seq` with it.
   d. The policy / prices given are stored where the live worker reads them on reload; normalize dead letters
      (full mode) replace the live ones, so they never double; the live checkpoint is set (full mode); NOTIFY
      `dd0c_feed_replaced` tells the API's live feed; the old tables and the shadow schema are dropped.
   A kill at any point before the commit leaves the live projections exactly as they were.

Two modes, decided by what is swapped and which worker runs:
* full: --projection all and the live worker folds the same scope as the replay (all tenants, or the same single
  tenant). The shadow chases the head of the log; at the swap the live checkpoint becomes the shadow's position
  (>= P), so a live worker that lags behind is simply moved forward.
* partial: a subset of the projections, or one tenant of an all-tenant worker. The tables that stay must
  correspond to the same position as those swapped in, so the shadow chases the live checkpoint P and the swap
  happens at exactly P; the live checkpoint is left alone.
On the Kafka log (streams/replay/kafka.py) the shadow always lines up with the workers' stored positions, one per
partition, and the dedupe gate `kafka_folded` is swapped along in full mode.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import asyncpg

from projections.db import connect
from projections.generation import writer as generation
from schemas.events import Dd0cError
from streams.pipeline import RUNNER_NAME
from streams.prices.stored import fingerprint, store_prices
from streams.prices.table import PriceTable
from streams.replay import REPLACED_CHANNEL, shadow
from streams.replay.runner import ShadowRunner
from streams.runner.postgres import checkpoint_name
from streams.score import policy as score_policy

log = logging.getLogger("dd0c.replay")

LOCK_KEY = "dd0c-replay"
CATCH_UP_ROUNDS = 20  # chase a moving target at most this often before swapping (the rest is folded in the lock)
PARAMS_VERSION = 1


class ReplayError(Dd0cError):
    """The replay cannot run (another one is running, mixed worker modes, the live projections moved back)."""


class Progress(Protocol):
    def target(self, position: int) -> None: ...

    def at(self, position: int) -> None: ...

    def phase(self, text: str) -> None: ...


class _Silent:
    def target(self, position: int) -> None:
        pass

    def at(self, position: int) -> None:
        pass

    def phase(self, text: str) -> None:
        pass


@dataclass(frozen=True)
class ReplayOptions:
    projection: tuple[str, ...] = ("all",)  # names from shadow.PROJECTIONS
    tenant: str | None = None  # rebuild only this tenant's rows
    policy: Mapping[str, Any] | None = None  # complete policy mapping (policy_to_mapping) for `policy_tenant`
    policy_tenant: str = "default"
    prices: PriceTable | None = None  # another price snapshot; stored for the live worker by the swap
    batch: int | None = None
    kafka: Any = None  # a streams.log.kafka.KafkaSpec when the log is on Kafka (None: the Postgres log)

    @property
    def tables(self) -> tuple[str, ...]:
        wanted = {t for name in self.projection for t in shadow.PROJECTIONS[name]}
        return tuple(t for t in shadow.FOLDED if t in wanted)  # flow order


@dataclass
class ReplayResult:
    live_runner: str
    mode: str  # full | partial
    tables: tuple[str, ...]
    position: int  # the log position the swapped-in tables correspond to
    generation: int
    resumed: bool
    entries: int  # folded by this run (a resumed run does not count what the killed one folded)
    seconds: float
    anomalies_before: int = 0
    anomalies_after: int = 0
    gap_in_lock: int = 0  # entries folded while the live worker waited at the swap


async def replay(
    dsn: str, prices: PriceTable, options: ReplayOptions, progress: Progress | None = None
) -> ReplayResult:
    """Rebuild `options.tables` into the shadow and swap them in. `prices`: what the live worker would use when
    no snapshot is stored (the shipped one)."""
    began = time.monotonic()
    bar: Progress = progress or _Silent()
    conn = await connect(dsn)
    try:
        if not await conn.fetchval("SELECT pg_try_advisory_lock(hashtextextended($1, 0))", LOCK_KEY):
            raise ReplayError("another replay is running on this database")
        source: Source
        if options.kafka is not None:
            from streams.replay.kafka import KafkaSource  # aiokafka only when the log is on Kafka

            source = await KafkaSource.prepare(conn, dsn, prices, options, _overrides(options), bar)
        else:
            source = await PostgresSource.prepare(conn, dsn, prices, options, _overrides(options), bar)
        live_name, full = source.live_name, source.full
        params = await _params(conn, options, live_name, full)
        resumed = await shadow.meta(conn) == params
        if resumed:
            log.info("replay: resuming the shadow build left by an interrupted replay")
        else:
            if await shadow.exists(conn):
                log.info("replay: discarding a shadow build made with other parameters")
            async with conn.transaction():  # one transaction: a resumable shadow always has its prices
                await shadow.create(conn, params, copy_prices=options.prices is None, extra=source.support_tables)
                if options.prices is not None:
                    await conn.execute(f"SET LOCAL search_path = {shadow.SCHEMA}")
                    await store_prices(conn, options.prices)
        await source.open()
        try:
            bar.phase("rebuilding")
            await source.catch_up(conn)
            bar.phase("indexing")
            await shadow.build_indexes(conn)
            bar.phase("catching up")
            await source.catch_up(conn)
            bar.phase("swapping")
            result = await _swap(conn, source, options)
        finally:
            await source.close()
        result.resumed = resumed
        result.entries = source.entries
        result.seconds = time.monotonic() - began
        log.info("replay: %s swap of %s at %s %d (generation %d); %d entries folded in %.1fs", result.mode,
                 ", ".join(result.tables), live_name, result.position, result.generation, result.entries,
                 result.seconds)
        return result
    finally:
        await conn.close()  # also releases the replay lock


class Source(Protocol):
    """Where a replay reads the log from, and how the shadow lines up with the live worker's position."""

    live_name: str  # the live checkpoint (or, on Kafka, the prefix of the per-partition ones)
    full: bool
    support_tables: tuple[str, ...]  # more bookkeeping tables the shadow needs (Kafka: its dedupe gate)
    swap_tables: tuple[str, ...]  # more tables swapped in full mode

    @property
    def entries(self) -> int:
        """Entries folded into the shadow by this run."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def catch_up(self, conn: asyncpg.Connection) -> None:
        """Fold into the shadow until it is close to the live position (or the log head in full mode)."""

    async def line_up(self, conn: asyncpg.Connection) -> tuple[int, int]:
        """Inside the swap transaction, after generation.bump: lock the live position(s), fold the gap into the
        shadow. Returns (position the swapped tables correspond to, entries folded in the lock)."""

    async def set_live_position(self, conn: asyncpg.Connection, position: int) -> None:
        """Full mode: make the live checkpoint(s) say what the swapped-in tables contain."""


class PostgresSource:
    support_tables: tuple[str, ...] = ()
    swap_tables: tuple[str, ...] = ()

    def __init__(self, runner: ShadowRunner, live_name: str, full: bool, bar: Progress) -> None:
        self.runner, self.live_name, self.full, self.bar = runner, live_name, full, bar

    @classmethod
    async def prepare(cls, conn: asyncpg.Connection, dsn: str, prices: PriceTable, options: ReplayOptions,
                      overrides: Mapping[str, score_policy.Policy], bar: Progress) -> PostgresSource:
        live, full = await _live_runner(conn, options)
        runner = ShadowRunner(dsn, prices, tenant=options.tenant, batch=options.batch, policies=overrides,
                              on_commit=bar.at)
        return cls(runner, live, full, bar)

    @property
    def entries(self) -> int:
        return self.runner.stats.entries

    async def open(self) -> None:
        await self.runner.open()

    async def close(self) -> None:
        await self.runner.close()

    async def _target(self, conn: asyncpg.Connection) -> int:
        if self.full:  # the head of the log: the live checkpoint follows the shadow at the swap
            return int(await conn.fetchval("SELECT coalesce(max(seq), 0) FROM log"))
        return int(await conn.fetchval(
            "SELECT coalesce(max(position), 0) FROM checkpoints WHERE runner = $1", self.live_name
        ))

    async def catch_up(self, conn: asyncpg.Connection) -> None:
        runner, slack = self.runner, 2 * self.runner.batch
        for _ in range(CATCH_UP_ROUNDS):
            target = await self._target(conn)
            self.bar.target(target)
            if target <= runner.covered + (slack if runner.covered else 0):
                if target > runner.covered:
                    await runner.advance(target)
                return
            await runner.advance(target)

    async def line_up(self, conn: asyncpg.Connection) -> tuple[int, int]:
        runner = self.runner
        row = await conn.fetchrow("SELECT position FROM checkpoints WHERE runner = $1 FOR UPDATE", self.live_name)
        live_position = row["position"] if row is not None else 0
        before = runner.covered
        if runner.covered < live_position:
            await runner.advance(live_position)  # the shadow's own connection and transaction
        if not self.full and runner.covered > live_position:
            raise ReplayError(f"the live checkpoint {self.live_name} moved back to seq {live_position} (the shadow "
                              f"is at {runner.covered}): were the projections reset during the replay? rerun it")
        return max(runner.covered, live_position), runner.covered - before

    async def set_live_position(self, conn: asyncpg.Connection, position: int) -> None:
        await conn.execute(
            "INSERT INTO public.checkpoints (runner, position, applied, updated_at) VALUES ($1, $2, $2, now())"
            " ON CONFLICT (runner) DO UPDATE SET position = $2, applied = $2, updated_at = now()",
            self.live_name, position,
        )


async def _live_runner(conn: asyncpg.Connection, options: ReplayOptions) -> tuple[str, bool]:
    """The live checkpoint the swap must line up with, and whether the swap can be a full one."""
    names = [r["runner"] for r in await conn.fetch(
        "SELECT runner FROM checkpoints WHERE runner = $1 OR (runner LIKE $2 AND runner NOT LIKE $3)",
        RUNNER_NAME, f"{RUNNER_NAME}:%", f"{RUNNER_NAME}:kafka:%",
    )]
    per_tenant = [n for n in names if n != RUNNER_NAME]
    if options.tenant is None:
        if per_tenant:
            raise ReplayError(
                f"the workers fold per tenant ({', '.join(per_tenant)}): replay each tenant with --tenant"
            )
        live = RUNNER_NAME
    else:
        live = checkpoint_name(options.tenant) if per_tenant else RUNNER_NAME
    same_scope = (live == RUNNER_NAME) == (options.tenant is None)
    return live, same_scope and options.tables == shadow.FOLDED


def _overrides(options: ReplayOptions) -> dict[str, score_policy.Policy]:
    if options.policy is None:
        return {}
    # Built exactly as the live runner builds it from tenants.policy, so both score identically after the swap.
    tenant = options.policy_tenant
    return {tenant: score_policy.policy_from_mapping(options.policy, name=tenant,
                                                     source=f"replay policy of {tenant!r}")}


async def _params(conn: asyncpg.Connection, options: ReplayOptions, live_name: str, full: bool) -> dict[str, Any]:
    """What a shadow build depends on: a resumed build must have been made with exactly these."""
    live_prices = await conn.fetchval("SELECT sha256 FROM fold_prices")
    return {
        "version": PARAMS_VERSION,
        "tables": list(options.tables),
        "tenant": options.tenant,
        "live_runner": live_name,
        "full": full,
        "policy": {options.policy_tenant: dict(options.policy)} if options.policy is not None else {},
        "prices": fingerprint(options.prices) if options.prices is not None else live_prices,
        "generation": await generation.current(conn),
        "schema": await conn.fetchval("SELECT max(version) FROM schema_migrations"),
    }


async def _swap(conn: asyncpg.Connection, source: Source, options: ReplayOptions) -> ReplayResult:
    full, tenant = source.full, options.tenant
    tables = options.tables + (source.swap_tables if full else ())
    note = json.dumps({"by": "replay", "tenant": tenant, "tables": list(tables)})
    async with conn.transaction():
        gen = await generation.bump(conn, note)  # first: from here on the live worker waits for this commit
        position, gap = await source.line_up(conn)
        await source.close()  # idle connections only; the shadow tables are about to move
        before = await _count_anomalies(conn, tenant)
        if tenant is None:
            await _swap_tables(conn, tables)
        else:
            await _swap_rows(conn, tables, tenant)
        if full:
            await conn.execute(
                "DELETE FROM public.dead_letters WHERE stage = 'normalize' AND ($1::text IS NULL OR tenant_id = $1)",
                tenant,
            )
            await conn.execute(
                "INSERT INTO public.dead_letters (tenant_id, stage, source, locator, reason, raw, created_at)"
                f" SELECT tenant_id, stage, source, locator, reason, raw, created_at FROM {shadow.SCHEMA}.dead_letters"
                " WHERE stage = 'normalize' ORDER BY id"
            )
            await source.set_live_position(conn, position)
        if options.policy is not None:
            await conn.execute(
                "INSERT INTO public.tenants (tenant_id, name, policy) VALUES ($1, $1, $2::jsonb)"
                " ON CONFLICT (tenant_id) DO UPDATE SET policy = EXCLUDED.policy",
                options.policy_tenant, dict(options.policy),
            )
        if options.prices is not None:
            await store_prices(conn, options.prices)
        after = await _count_anomalies(conn, tenant)
        await conn.execute("SELECT pg_notify($1, $2)", REPLACED_CHANNEL, tenant or "*")
        await conn.execute(f"DROP SCHEMA IF EXISTS {shadow.RETIRED} CASCADE")
        await conn.execute(f"DROP SCHEMA {shadow.SCHEMA} CASCADE")
    return ReplayResult(
        live_runner=source.live_name, mode="full" if full else "partial", tables=tables, position=position,
        generation=gen, resumed=False, entries=0, seconds=0.0, anomalies_before=before, anomalies_after=after,
        gap_in_lock=gap,
    )


async def _count_anomalies(conn: asyncpg.Connection, tenant: str | None) -> int:
    return int(await conn.fetchval(
        "SELECT count(*) FROM public.anomalies WHERE $1::text IS NULL OR tenant_id = $1", tenant
    ))


async def _swap_tables(conn: asyncpg.Connection, tables: tuple[str, ...]) -> None:
    await conn.execute(f"DROP SCHEMA IF EXISTS {shadow.RETIRED} CASCADE")
    await conn.execute(f"CREATE SCHEMA {shadow.RETIRED}")
    for table in tables:
        # SET SCHEMA moves the sequences a table's columns own along with it: release them first, or the old table
        # would take anomalies_feed_id_seq into the retired schema and drop it with itself.
        owned = await shadow.owned_sequences(conn, "public", table)
        for seq, _column in owned:
            await conn.execute(f"ALTER SEQUENCE {seq} OWNED BY NONE")
        await conn.execute(f"ALTER TABLE public.{table} SET SCHEMA {shadow.RETIRED}")
        await conn.execute(f"ALTER TABLE {shadow.SCHEMA}.{table} SET SCHEMA public")
        for seq, column in owned:  # the shadow column's default already draws from it (LIKE ... INCLUDING ALL)
            await conn.execute(f'ALTER SEQUENCE {seq} OWNED BY public.{table}."{column}"')


async def _swap_rows(conn: asyncpg.Connection, tables: tuple[str, ...], tenant: str) -> None:
    # One tenant of shared tables: its rows are replaced (the shadow holds that tenant's rows only). Same MVCC
    # snapshot rule as a table swap: a reader sees all old rows or all new ones.
    for table in tables:
        await conn.execute(f"DELETE FROM public.{table} WHERE tenant_id = $1", tenant)
        await conn.execute(f"INSERT INTO public.{table} SELECT * FROM {shadow.SCHEMA}.{table}")
