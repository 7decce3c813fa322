"""The Postgres runner: log -> folds -> projections + checkpoint, one transaction per batch.

Exactly-once effect without broker transactions: the rows a batch produced and the checkpoint that covers them
commit together, so after a crash (kill -9 included) the runner resumes from the last committed position with
the state that position implies. The in-memory state is never allowed to run ahead of the database: after any
failure it is thrown away and reloaded before the batch is retried.

One runner folds at a time (a session advisory lock); a second one waits as a hot standby and takes over when
the first one's session ends.

While a batch is folded, the next one is already being read on a third connection (Postgres runs the query on
another core), so a backlog costs one query's latency per batch less. A read-ahead is only a hint: it is used
when it starts exactly where the committed position now is and came back full; otherwise (short, empty, failed,
thrown away with the state after a failure) the batch is read again the usual way, so live entries are never
held back a batch by a stale read.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from ops.gc_pause import gc_paused
from ops.settings import load_settings
from projections.anomalies import writer as anomalies
from projections.baselines import writer as baselines
from projections.checkpoints import writer as checkpoints
from projections.cost_events import writer as cost_events
from projections.db import connect
from projections.generation import writer as generation
from projections.metrics import writer as metrics
from projections.resources import writer as resources
from projections.zombies import writer as zombies
from schemas.events import Baseline, Dd0cError, LogEntry, Rejected, Resource
from streams.fold import FOLDED_CALLS, BaselineKey, FoldOutput, FoldState, ResourceKey, fold_entry
from streams.log.postgres import dead_letters, read_folded_after
from streams.pipeline import FEED_CHANNEL, LOG_CHANNEL, RUNNER_NAME
from streams.prices.stored import stored_prices
from streams.prices.table import PriceTable
from streams.score import policy as score_policy

log = logging.getLogger("dd0c.runner")

DRAIN_STALL_SECONDS = 300.0  # --drain behind another worker: give up if it does not move for this long
DRAIN_ATTEMPTS = 3  # --drain gives up (exit 1) after this many failed tries of one batch


class RunnerError(Dd0cError):
    """The runner cannot start or continue (mixed runner modes, a batch that keeps failing under --drain)."""


class _Baselines(dict[BaselineKey, Baseline]):
    """All baselines; remembers which ones the current batch changed, and at which log position."""

    def __init__(self, items: dict[BaselineKey, Baseline]) -> None:
        super().__init__(items)
        self.seq = 0
        self.changed: dict[BaselineKey, tuple[Baseline, int]] = {}

    def __setitem__(self, key: BaselineKey, value: Baseline) -> None:
        self.changed[key] = (value, self.seq)
        super().__setitem__(key, value)


class _OpenResources(dict[ResourceKey, Resource]):
    """The open resources only - exactly what a reload from the table gives - plus this batch's changes.

    A resource that closes leaves memory at once (it is still written). Otherwise a closed resource would be
    visible to later entries of the same batch but not after a restart, and the projections would depend on
    where batch boundaries fell: a kill -9 and a clean run would disagree.
    """

    def __init__(self, items: dict[ResourceKey, Resource]) -> None:
        super().__init__(items)
        self.seq = 0
        self.changed: dict[ResourceKey, tuple[Resource, int]] = {}

    def __setitem__(self, key: ResourceKey, value: Resource) -> None:
        self.changed[key] = (value, self.seq)
        if value.state == "closed":
            self.pop(key, None)
        else:
            super().__setitem__(key, value)


@dataclass
class RunStats:
    batches: int = 0
    entries: int = 0  # entries folded (skipped replays, and rows the read passed over, not counted)
    cost_events: int = 0  # rows inserted
    anomalies: int = 0  # rows inserted
    rejected: int = 0
    position: int = 0
    started: float = field(default_factory=time.monotonic)


def checkpoint_name(tenant: str | None) -> str:
    return RUNNER_NAME if tenant is None else f"{RUNNER_NAME}:{tenant}"


class PostgresRunner:
    """Folds the log into the projections. `run(drain=True)` stops when the log is exhausted."""

    def __init__(
        self,
        dsn: str,
        prices: PriceTable,
        *,
        tenant: str | None = None,
        batch: int | None = None,
        poll_interval: float = 5.0,
        policy_file: Path | None = None,
        retry_delay: float = 0.5,
    ) -> None:
        settings = load_settings()
        self.dsn = dsn
        self.prices = prices
        self._given_prices = prices  # used unless a replay stored another snapshot (streams/prices/stored.py)
        self.tenant = tenant
        self.name = checkpoint_name(tenant)
        self.batch = batch or settings.worker_batch
        self.poll_interval = poll_interval
        self.retry_delay = retry_delay  # first back-off after a failed batch; doubles up to 30 s
        self.policy_file = policy_file if policy_file is not None else settings.policy_file
        self.stats = RunStats()
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._conn: asyncpg.Connection | None = None
        self._listen: asyncpg.Connection | None = None
        self._reader: asyncpg.Connection | None = None  # read-ahead of the next batch
        self._ahead: asyncio.Future[tuple[list[LogEntry], int]] | None = None
        self._ahead_after = 0
        self._policies: dict[str, score_policy.Policy] = {}
        self._fallback_policy: score_policy.Policy | None = None
        self._state = FoldState()
        self._baselines = _Baselines({})
        self._resources = _OpenResources({})
        self._position = 0
        self._applied = 0
        self._generation = 0  # of the tables the state was loaded from (projections/generation)
        self._last_report = time.monotonic()

    # -- control -------------------------------------------------------------------------------------------

    def stop(self) -> None:
        """Finish the batch in hand, then return from run() (signal handlers call this)."""
        self._stop.set()
        self._wake.set()

    async def run(self, *, drain: bool = False) -> RunStats:
        failures = 0
        try:
            while not self._stop.is_set():
                try:
                    if self._conn is None:
                        if not await self._start(drain):
                            break  # stopped while waiting as standby
                    if await self._step(drain):
                        break
                    failures = 0
                except (RunnerError, score_policy.PolicyError):
                    raise  # a configuration problem: retrying cannot help
                except generation.StaleState as exc:  # a replay swapped the tables: not a failure
                    log.info("runner %s: %s", self.name, exc)
                    await self._close()
                except Exception as exc:  # any failure: roll back (the transaction did), reload, retry
                    failures += 1
                    log.exception("batch after seq %d failed (attempt %d); reloading state", self._position, failures)
                    await self._close()  # state is reloaded on the next _start(): never ahead of the database
                    if drain and failures >= DRAIN_ATTEMPTS:
                        raise RunnerError(f"giving up after {failures} failed attempts at seq {self._position}: "
                                          f"{exc}") from exc
                    await self._sleep(min(30.0, self.retry_delay * 2 ** (failures - 1)))
        finally:
            await self._close()
        self.stats.position = self._position
        return self.stats

    # -- session -------------------------------------------------------------------------------------------

    async def _start(self, drain: bool = False) -> bool:
        self._default_policy()  # a bad DD0C_POLICY_FILE stops the worker now, not at the first event it scores
        conn = await connect(self.dsn)
        self._conn = conn
        if not await self._acquire_lock(conn, standby=not drain):
            return False
        await self._check_mode(conn)
        self._listen = await connect(self.dsn)
        await self._listen.add_listener(LOG_CHANNEL, self._on_log)
        self._reader = await connect(self.dsn)
        await self._load(conn)
        return True

    async def _acquire_lock(self, conn: asyncpg.Connection, *, standby: bool = True) -> bool:
        key = f"dd0c-runner:{self.name}"
        if await conn.fetchval("SELECT pg_try_advisory_lock(hashtextextended($1, 0))", key):
            log.info("runner %s active", self.name)
            return True
        if not standby:
            return await self._drain_behind_another(conn, key)
        log.info("another worker holds runner %s; waiting as hot standby", self.name)
        lock = asyncio.ensure_future(conn.execute("SELECT pg_advisory_lock(hashtextextended($1, 0))", key))
        stopped = asyncio.ensure_future(self._stop.wait())
        done, _ = await asyncio.wait({lock, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if lock in done:
            stopped.cancel()
            lock.result()
            log.info("runner %s: lock acquired, taking over", self.name)
            return True
        lock.cancel()
        return False

    async def _drain_behind_another(self, conn: asyncpg.Connection, key: str) -> bool:
        """--drain while a following worker holds the log: wait until it has folded what is in the log now.

        Scripts (`ingest && worker --drain && anomalies`) then work whether or not a worker is running. If that
        worker goes away meanwhile, take its place and drain here (True); if it folds up to the head, done (False).
        """
        target = await conn.fetchval(
            "SELECT coalesce(max(seq), 0) FROM log WHERE $1::text IS NULL OR tenant_id = $1", self.tenant
        )
        log.info("another worker is folding runner %s; waiting for it to reach seq %d", self.name, target)
        last_progress, last_position = time.monotonic(), -1
        while not self._stop.is_set():
            if await conn.fetchval("SELECT pg_try_advisory_lock(hashtextextended($1, 0))", key):
                log.info("runner %s: the other worker left; draining here", self.name)
                return True
            position = (await checkpoints.load(conn, self.name)).position
            if position >= target:
                log.info("runner %s: the other worker has folded up to seq %d; nothing left to drain", self.name,
                         position)
                self._position = position
                return False
            if position != last_position:
                last_progress, last_position = time.monotonic(), position
            elif time.monotonic() - last_progress > DRAIN_STALL_SECONDS:
                raise RunnerError(f"the worker holding runner {self.name} made no progress for "
                                  f"{DRAIN_STALL_SECONDS:.0f}s (stuck at seq {position}, log at {target})")
            await self._sleep(0.2)
        return False

    async def _check_mode(self, conn: asyncpg.Connection) -> None:
        # An all-tenants runner and a per-tenant runner would fold the same entries twice into the baselines.
        others = [n for n in await checkpoints.names(conn) if n.startswith(RUNNER_NAME) and n != self.name]
        clash = [n for n in others if (self.tenant is None) != (n == RUNNER_NAME)]
        if clash:
            raise RunnerError(
                f"checkpoint(s) {', '.join(clash)} exist: all-tenant and per-tenant workers cannot share one "
                f"database (start the worker {'with' if self.tenant is None else 'without'} --tenant)"
            )

    async def _load(self, conn: asyncpg.Connection) -> None:
        """(Re)build the in-memory state from what is committed."""
        self._generation = await generation.current(conn)
        self.prices = await stored_prices(conn, self._given_prices)
        cp = await checkpoints.load(conn, self.name)
        self._position, self._applied = cp.position, cp.applied
        self._baselines = _Baselines(await baselines.load(conn, self.tenant))
        self._resources = _OpenResources(await resources.load_open(conn, self.tenant))
        self._state = FoldState(baselines=self._baselines, resources=self._resources)
        self._policies = {}
        self._fallback_policy = None
        log.info(
            "runner %s: loaded %d baselines, %d open resources; resuming after seq %d",
            self.name, len(self._baselines), len(self._resources), self._position,
        )

    async def _close(self) -> None:
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            ahead.cancel()
            await asyncio.gather(ahead, return_exceptions=True)
        for conn in (self._reader, self._listen, self._conn):
            if conn is not None and not conn.is_closed():
                try:
                    await conn.close(timeout=5)
                except (OSError, asyncpg.PostgresError, TimeoutError):
                    conn.terminate()
        self._reader = self._listen = self._conn = None

    def _on_log(self, *_: object) -> None:
        self._wake.set()

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stop.wait(), seconds)
        except TimeoutError:
            pass

    # -- the loop ------------------------------------------------------------------------------------------

    async def _step(self, drain: bool) -> bool:
        """One batch; returns True when a drain is done."""
        assert self._conn is not None
        self._wake.clear()  # before reading: a NOTIFY arriving after the read still wakes the wait below
        with gc_paused():  # one batch of entries, read and folded: see ops/gc_pause.py
            entries = await self._read_batch()
            if entries:
                await self._read_ahead(entries[-1].seq)
                await self._fold_and_commit(self._conn, entries)
                return False
        if drain:
            return True
        try:
            await asyncio.wait_for(self._wake.wait(), self.poll_interval)
        except TimeoutError:
            pass  # poll anyway: a lost LISTEN connection must not stall the runner
        return False

    async def _read_batch(self) -> list[LogEntry]:
        assert self._conn is not None
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            try:
                entries, scanned = await ahead
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("runner %s: read-ahead failed (%s); reading the batch again", self.name, exc)
                entries, scanned = [], 0
            # Only a full batch is taken: then the log has a backlog and the read-ahead costs nothing in freshness.
            # A short (or empty) one is from before whatever was appended while this batch was folded - the live
            # case, where a fresh read picks that up in the same batch instead of one commit later.
            if scanned >= self.batch and self._ahead_after == self._position:
                return entries
        # Entries the fold passes over (read-only calls, calls outside FOLDED_CALLS) are left out of the read; the
        # last row of the range always comes back, so the position still moves over them.
        entries, _ = await read_folded_after(self._conn, self._position, self.batch, calls=FOLDED_CALLS,
                                             tenant=self.tenant)
        return entries

    async def _read_ahead(self, after: int) -> None:
        if self._reader is None:
            return
        self._ahead_after = after
        self._ahead = asyncio.ensure_future(
            read_folded_after(self._reader, after, self.batch, calls=FOLDED_CALLS, tenant=self.tenant)
        )
        await asyncio.sleep(0)  # send the query now, so that Postgres runs it while this batch is folded

    async def _fold_and_commit(self, conn: asyncpg.Connection, entries: Sequence[LogEntry]) -> None:
        await self._ensure_policies(conn, {e.tenant for e in entries})
        out = FoldOutput()
        anomaly_seqs: list[int] = []
        rejected: list[tuple[str, str, Rejected]] = []
        folded = 0
        for entry in entries:
            assert entry.seq is not None
            if entry.seq <= self._applied:
                continue  # already in the projections: a replayed position changes nothing
            self._baselines.seq = self._resources.seq = entry.seq
            n_anomalies, n_rejected = len(out.anomalies), len(out.rejected)
            fold_entry(self._state, entry, self.prices, self._policy_for, out)
            anomaly_seqs.extend([entry.seq] * (len(out.anomalies) - n_anomalies))
            rejected.extend((entry.tenant, "normalize", r) for r in out.rejected[n_rejected:])
            folded += 1
        last = entries[-1].seq
        assert last is not None
        self._check_tracking()
        async with conn.transaction():
            await generation.hold(conn, self._generation)  # first: a swap since _load makes this state stale
            new_events = await cost_events.insert(conn, out.cost_events)
            await baselines.upsert(conn, list(self._baselines.changed.values()))
            alerted = await anomalies.insert(conn, list(zip(out.anomalies, anomaly_seqs, strict=True)))
            await resources.upsert(conn, list(self._resources.changed.values()))
            await zombies.apply(conn, out.zombies)
            await metrics.add(conn, out.metrics)
            await dead_letters(conn, rejected)
            await checkpoints.save(conn, self.name, last)
            for tenant in sorted(set(alerted)):
                await conn.execute("SELECT pg_notify($1, $2)", FEED_CHANNEL, tenant)
        for tenant, _stage, bad in rejected:  # named here too: an operator should not need psql to see why
            log.warning("rejected (tenant %s) %s", tenant, bad.describe())
        # Committed: only now does the in-memory state count as the truth.
        self._baselines.changed.clear()
        self._resources.changed.clear()
        self._state.dirty_baselines.clear()
        self._state.dirty_resources.clear()
        self._position = last
        self._applied = max(self._applied, last)
        self._count(folded, new_events, len(alerted), len(rejected))

    def _check_tracking(self) -> None:
        # fold.py names what changed in the dirty sets; the dicts above also saw every write (with its seq). If
        # fold.py ever wrote the state another way, rows would silently go unwritten: fail loudly instead.
        if self._baselines.changed.keys() != self._state.dirty_baselines or (
            self._resources.changed.keys() != self._state.dirty_resources
        ):
            raise RunnerError("fold state changed outside item assignment; the runner cannot track what to write")

    def _count(self, folded: int, new_events: int, new_anomalies: int, rejected: int) -> None:
        s = self.stats
        s.batches += 1
        s.entries += folded
        s.cost_events += new_events
        s.anomalies += new_anomalies
        s.rejected += rejected
        s.position = self._position
        now = time.monotonic()
        if now - self._last_report >= 10.0:
            self._last_report = now
            log.info(
                "runner %s at seq %d: %d entries folded, %d cost events, %d anomalies, %d rejected",
                self.name, s.position, s.entries, s.cost_events, s.anomalies, s.rejected,
            )

    # -- policies ------------------------------------------------------------------------------------------

    async def _ensure_policies(self, conn: asyncpg.Connection, tenants: Iterable[str]) -> None:
        missing = sorted(set(tenants) - self._policies.keys())
        if not missing:
            return
        rows = await conn.fetch("SELECT tenant_id, policy FROM tenants WHERE tenant_id = ANY($1::text[])", missing)
        stored = {r["tenant_id"]: r["policy"] for r in rows}
        for tenant in missing:
            data = stored.get(tenant) or {}
            if data:
                self._policies[tenant] = score_policy.policy_from_mapping(
                    data, name=tenant, source=f"tenants.policy of {tenant!r}"
                )
            else:
                self._policies[tenant] = self._default_policy()

    def _default_policy(self) -> score_policy.Policy:
        if self._fallback_policy is None:
            if self.policy_file is not None:
                self._fallback_policy = score_policy.load_policy(Path(self.policy_file))
            else:
                self._fallback_policy = score_policy.DEFAULT_POLICY
        return self._fallback_policy

    def _policy_for(self, tenant: str) -> score_policy.Policy:
        return self._policies[tenant]


async def reset_projections(conn: asyncpg.Connection, tenant: str | None = None) -> None:
    """Drop what the runner built (all tenants, or one) so that the next run rebuilds it from the log.

    Anomalies get new feed ids on rebuild; everything else comes back identical.
    """
    async with conn.transaction():
        for table in ("cost_events", "baselines", "anomalies", "resources", "fold_metrics", *zombies.TABLES):
            await conn.execute(f"DELETE FROM {table} WHERE $1::text IS NULL OR tenant_id = $1", tenant)
        await conn.execute(
            "DELETE FROM dead_letters WHERE stage = 'normalize' AND ($1::text IS NULL OR tenant_id = $1)", tenant
        )
        await conn.execute("DELETE FROM checkpoints WHERE runner = $1", checkpoint_name(tenant))
