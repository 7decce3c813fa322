"""The Kafka runner's core: consumed messages of one partition -> folds -> projections + position, one transaction.

The faust app (streams/runner/faust_app.py) only wires: it hands this module each partition's batch of messages
and seeks where it is told. Everything that makes the result exactly-once lives here, with the same folds
(streams/fold.py) and the same projection writers as the Postgres runner:

* **Position per (topic, partition) in Postgres** - a checkpoints row named `fold-v1:kafka:<topic>:<partition>`
  whose `position` is the last offset folded - written in the transaction that writes the rows. The Kafka group
  offset is only a hint: on assignment the runner seeks to position + 1, and any message at or below the stored
  position is skipped, so a group offset committed behind (R20: w2 re-reads 101-102) changes nothing.
* **No offset skipped** (faust#216): a batch that does not start at position + 1 is not folded. If the missing
  offsets still exist the runner says where to seek back to; only when retention deleted them (the partition's
  low watermark is above position + 1, case R21) is the hole recorded as a dead letter and passed over.
* **Dedupe gate** (migration 0005): a second copy of an entry on the topic (a re-sent file, a producer retry)
  must not fold into a Welford baseline twice, so every entry's (tenant, account, eventID) is inserted into
  `kafka_folded` first and only the newly inserted ones are folded.
* **A fence per partition.** Two workers can briefly both hold a partition around a rebalance. Each commit takes
  a transaction lock on the partition's checkpoint name and checks that the stored position is still the one
  this worker's state was built on; if another worker moved it, the batch is rolled back, that partition's
  state is dropped and the runner rewinds to the new position.
* **State per account, loaded lazily** from the projection tables on first sight inside the commit transaction
  (after `generation.hold`, so it is the generation being written) and dropped when its partition is revoked.

`seq` for Kafka entries: projection rows carry the log position of the entry that produced them. A Kafka log
has no single sequence, so seq = partition * 2**40 + offset (`kafka_seq`): unique within the topic, increasing
within a partition - i.e. within an account, which is all that order means on Kafka - and decodable back to the
message (`seq_position`). It is not comparable across partitions, nor with Postgres-log seqs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from ops.settings import load_settings
from projections.anomalies import writer as anomalies
from projections.baselines import writer as baselines
from projections.checkpoints import writer as checkpoints
from projections.cost_events import writer as cost_events
from projections.db import connect
from projections.generation import writer as generation
from projections.metrics import writer as metrics
from projections.resources import writer as resources
from schemas.events import Baseline, Dd0cError, LogEntry, Rejected, Resource
from streams.fold import FoldOutput, FoldState, fold_entry
from streams.log.kafka import decode_message
from streams.log.postgres import dead_letters
from streams.pipeline import FEED_CHANNEL, RUNNER_NAME
from streams.prices.stored import stored_prices
from streams.prices.table import PriceTable
from streams.runner.postgres import RunnerError, _Baselines, _OpenResources
from streams.score import policy as score_policy
from streams.score.baseline import account_history

log = logging.getLogger("dd0c.runner.kafka")

SEQ_PARTITION_SHIFT = 40  # offsets below 2**40 (a trillion messages per partition) fit under the partition
READ_STAGE = "read"
NORMALIZE_STAGE = "normalize"
GAP_STAGE = "read"  # a retention gap is input that can no longer be read: same stage as an undecodable message

TP = tuple[str, int]  # (topic, partition)
Watermarks = Callable[[str, int], Awaitable[tuple[int, int]]]  # (topic, partition) -> (low, high)


def contiguous_after(messages: Sequence[Message], done: int) -> tuple[list[Message], bool]:
    """The messages past offset `done`, in offset order, one per offset, up to the first missing offset; and
    whether any were left past such a hole.

    One partition's batch can hold messages read before and after a seek: stale ones faust had buffered from the
    group's committed offset, then the re-read from the stored position. Sorted together they repeat offsets,
    or leave a hole where the stale read stopped and a later one went on. A repeated offset must be folded once;
    folding across a hole would store a position past offsets that were never folded, and lose them for good.
    Only the first message may lie beyond done + 1: that is the caller's rewind or retention-gap case.
    """
    run: list[Message] = []
    for m in sorted(messages, key=lambda m: m.offset):
        if m.offset <= done or (run and m.offset == run[-1].offset):
            continue
        if run and m.offset != run[-1].offset + 1:
            return run, True
        run.append(m)
    return run, False


def kafka_seq(partition: int, offset: int) -> int:
    return (partition << SEQ_PARTITION_SHIFT) | offset


def seq_position(seq: int) -> tuple[int, int]:
    """kafka_seq's inverse: (partition, offset)."""
    return seq >> SEQ_PARTITION_SHIFT, seq & ((1 << SEQ_PARTITION_SHIFT) - 1)


def runner_name(topic: str, partition: int) -> str:
    return f"{RUNNER_NAME}:kafka:{topic}:{partition}"


@dataclass(frozen=True, slots=True)
class Message:
    """What the runner needs of a consumed message (faust's, aiokafka's and the tests' all reduce to this)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


# -- where to start (pure) --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StartPlan:
    """Where a partition's consumption starts, from the stored position and the partition's watermarks."""

    seek_to: int
    gap: tuple[int, int] | None = None  # (first, last) offsets retention deleted before they were folded
    caught_up: bool = False  # nothing to read now (an empty partition: low == high)
    beyond_end: bool = False  # the stored position is past the partition's end: the topic was recreated?


def plan_start(position: int | None, low: int, high: int) -> StartPlan:
    """position: last offset folded (None: nothing yet). Never waits for offsets that no longer exist (R21)."""
    wanted = 0 if position is None else position + 1
    if wanted < low:
        return StartPlan(seek_to=low, gap=(wanted, low - 1), caught_up=low >= high)
    return StartPlan(seek_to=wanted, caught_up=wanted >= high, beyond_end=wanted > high)


# -- results ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Folded:
    position: int  # last offset now stored
    entries: int  # newly folded (past the gate)
    duplicates: int  # entries the gate refused (already folded from another copy)
    rejected: int
    anomalies: int
    skipped: int = 0  # messages at or below the stored position (a re-read), or repeating an offset
    resume_at: int | None = None  # the batch had a hole: messages past it were left; seek here to read them again


@dataclass(frozen=True, slots=True)
class Rewind:
    """Do not fold this batch: seek the partition to `offset` and consume from there."""

    offset: int
    reason: str


@dataclass
class KafkaStats:
    batches: int = 0
    entries: int = 0
    duplicates: int = 0
    rejected: int = 0
    anomalies: int = 0
    gaps: int = 0
    rewinds: int = 0
    started: float = field(default_factory=time.monotonic)


class _Moved(Dd0cError):
    def __init__(self, tp: TP, stored: int | None) -> None:
        super().__init__(f"partition {tp[0]}:{tp[1]} was moved to offset {stored} by another worker")
        self.stored = stored


# -- SQL --------------------------------------------------------------------------------------------------------

_GATE = """
INSERT INTO kafka_folded (tenant_id, account_id, event_id, topic, partition, "offset")
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::bigint[])
ON CONFLICT DO NOTHING
RETURNING "offset"
"""

_ACCOUNT_BASELINES = """
SELECT b.state FROM baselines b JOIN unnest($1::text[], $2::text[]) AS k(tenant_id, account_id)
  ON b.tenant_id = k.tenant_id AND b.account_id = k.account_id
"""

_ACCOUNT_RESOURCES = """
SELECT r.data FROM resources r JOIN unnest($1::text[], $2::text[]) AS k(tenant_id, account_id)
  ON r.tenant_id = k.tenant_id AND r.account_id = k.account_id
WHERE r.state <> 'closed'
"""


async def stored_position(conn: asyncpg.Connection, topic: str, partition: int) -> int | None:
    """The last offset folded, or None when nothing of the partition was folded yet."""
    value = await conn.fetchval("SELECT position FROM checkpoints WHERE runner = $1", runner_name(topic, partition))
    return None if value is None else int(value)


async def record_gap(conn: asyncpg.Connection, topic: str, partition: int, gap: tuple[int, int], tenant: str) -> None:
    """A retention gap as a dead letter: the offsets that were deleted before this runner folded them."""
    first, last = gap
    reason = (f"offsets {first}-{last} ({last - first + 1} messages) were deleted by retention before they were "
              f"folded; continuing at {last + 1}. Projections miss them: replay cannot bring them back")
    await dead_letters(conn, [(tenant, GAP_STAGE, Rejected(reason, b"", f"kafka:{topic}",
                                                           f"partition={partition} offsets={first}-{last}"))])


def _tenant_of_key(key: bytes | None, fallback: str) -> str:
    """Messages are keyed "<tenant>/<account>": an undecodable value is still charged to its tenant when it can be."""
    if key:
        tenant, sep, _ = key.decode("utf-8", "replace").partition("/")
        if sep and tenant:
            return tenant
    return fallback


class KafkaFolder:
    """Folds batches of one partition at a time into the projections (see the module docstring)."""

    def __init__(
        self,
        dsn: str,
        prices: PriceTable,
        *,
        watermarks: Watermarks,
        policy_file: Path | None = None,
    ) -> None:
        settings = load_settings()
        self.dsn = dsn
        self.prices = prices
        self._given_prices = prices
        self.watermarks = watermarks
        self.policy_file = policy_file if policy_file is not None else settings.policy_file
        self.default_tenant = settings.tenant
        self.stats = KafkaStats()
        self._conn: asyncpg.Connection | None = None
        # One connection, used by the agent (fold) and by faust's rebalance callbacks (assign), which run
        # concurrently: the lock makes them take turns, so no statement ever lands inside another's transaction.
        self._lock = asyncio.Lock()
        self._generation = 0
        self._positions: dict[TP, int | None] = {}  # the stored position this worker's state is built on
        self._owner: dict[tuple[str, str], TP] = {}  # loaded accounts -> the partition they came from
        self._baselines = _Baselines({})
        self._resources = _OpenResources({})
        self._state = FoldState(baselines=self._baselines, resources=self._resources)
        self._policies: dict[str, score_policy.Policy] = {}
        self._fallback: score_policy.Policy | None = None

    # -- connection and state ------------------------------------------------------------------------------

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is None or self._conn.is_closed():
            self.default_policy()
            self._conn = await connect(self.dsn)
            self._generation = await generation.current(self._conn)
            # as the Postgres runner: a snapshot stored by `replay --prices` wins over the one we were started with
            self.prices = await stored_prices(self._conn, self._given_prices)
        return self._conn

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            try:
                await conn.close(timeout=5)
            except (OSError, asyncpg.PostgresError, TimeoutError):
                conn.terminate()

    def reset(self) -> None:
        """Forget all state and positions (after a failed commit or a projection swap): reloaded on demand."""
        self._positions.clear()
        self._owner.clear()
        self._baselines = _Baselines({})
        self._resources = _OpenResources({})
        self._state = FoldState(baselines=self._baselines, resources=self._resources)
        self._policies.clear()

    def partitions(self) -> set[TP]:
        """The partitions this folder currently treats as its own."""
        return set(self._positions)

    def drop(self, tps: Iterable[TP]) -> None:
        """A revoked partition: its accounts' state and its position leave memory (another worker owns them)."""
        gone = set(tps)
        for tp in gone:
            self._positions.pop(tp, None)
        accounts = {acc for acc, tp in self._owner.items() if tp in gone}
        if not accounts:
            return
        for acc in accounts:
            del self._owner[acc]
            self._state.accounts.pop(acc, None)
        for bkey in [k for k in self._baselines if (k[0], k[1]) in accounts]:
            dict.__delitem__(self._baselines, bkey)
        for rkey in [k for k in self._resources if (k[0], k[1]) in accounts]:
            dict.__delitem__(self._resources, rkey)

    async def revoke(self, tps: Iterable[TP]) -> None:
        """Partitions taken away: forget them, but only between two batches (never under a fold in progress)."""
        async with self._lock:
            self.drop(tps)

    async def assign(self, tps: Iterable[TP], *, only: bool = False) -> dict[TP, StartPlan]:
        """Partitions now owned: load their positions, plan where each starts, record retention gaps.

        `only`: `tps` is the whole new assignment; partitions held before and missing from it are dropped.
        Waits for a fold in progress: faust's rebalance callbacks run concurrently with the agent, and dropping
        an account's state in the middle of its batch would write rows folded without it.
        """
        tps = set(tps)
        async with self._lock:
            if only:
                self.drop(self.partitions() - tps)
            try:
                return await self._assign(tps)
            except BaseException:
                self._discard_connection()
                raise

    async def _assign(self, tps: Iterable[TP]) -> dict[TP, StartPlan]:
        conn = await self._connection()
        plans: dict[TP, StartPlan] = {}
        for topic, partition in sorted(set(tps)):
            low, high = await self.watermarks(topic, partition)
            position = await stored_position(conn, topic, partition)
            plan = plan_start(position, low, high)
            if (topic, partition) not in self._positions or self._positions[(topic, partition)] != position:
                self.drop([(topic, partition)])  # someone else folded it meanwhile: its accounts' state is stale
            self._positions[(topic, partition)] = position
            if plan.gap is not None:
                await self._skip_gap(conn, topic, partition, plan.gap)
            if plan.beyond_end:
                log.warning(
                    "partition %s:%d: the broker says it ends at %d but offset %s is already folded - was the topic "
                    "recreated? Offsets up to %s are skipped as folded", topic, partition, high, position, position,
                )
            log.info("partition %s:%d assigned: stored position %s, watermarks %d..%d -> start at %d%s",
                     topic, partition, position, low, high, plan.seek_to, " (caught up)" if plan.caught_up else "")
            plans[(topic, partition)] = plan
        return plans

    async def _skip_gap(self, conn: asyncpg.Connection, topic: str, partition: int, gap: tuple[int, int]) -> None:
        """Record a retention gap and move the stored position past it (one transaction, fenced)."""
        name = runner_name(topic, partition)
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", name)
            stored = await stored_position(conn, topic, partition)
            if (stored if stored is not None else -1) >= gap[0]:
                return  # another worker recorded it meanwhile
            await record_gap(conn, topic, partition, gap, self.default_tenant)
            await checkpoints.save(conn, name, gap[1])
        self._positions[(topic, partition)] = gap[1]
        self.stats.gaps += 1
        log.warning("partition %s:%d: offsets %d-%d were deleted by retention before they were folded; "
                    "recorded as a dead letter, continuing at %d", topic, partition, gap[0], gap[1], gap[1] + 1)

    # -- one batch -----------------------------------------------------------------------------------------

    async def fold(self, messages: Sequence[Message]) -> Folded | Rewind:
        """Fold one partition's consecutive messages (in offset order) and store the new position, atomically.

        On any exception nothing was stored and the state was dropped: calling again with the same messages is
        the retry.
        """
        if not messages:
            raise RunnerError("KafkaFolder.fold needs at least one message")
        topic, partition = messages[0].topic, messages[0].partition
        tp = (topic, partition)
        if any((m.topic, m.partition) != tp for m in messages):
            raise RunnerError("KafkaFolder.fold takes the messages of one partition at a time")
        async with self._lock:
            return await self._fold_locked(tp, messages)

    async def _fold_locked(self, tp: TP, messages: Sequence[Message]) -> Folded | Rewind:
        topic, partition = tp
        try:
            conn = await self._connection()
            if tp not in self._positions:  # not (or no longer) known as ours: whatever state it left is suspect
                self.drop([tp])
                self._positions[tp] = await stored_position(conn, topic, partition)
            return await self._fold(conn, tp, messages)
        except _Moved as moved:
            self.drop([tp])
            self._positions[tp] = moved.stored
            self.stats.rewinds += 1
            return Rewind(0 if moved.stored is None else moved.stored + 1, str(moved))
        except generation.StaleState as exc:
            log.info("%s", exc)
            self.reset()  # reloaded lazily, with the generation read again on the next connection
            self._discard_connection()
            raise
        except BaseException:
            self.reset()  # the in-memory state may be ahead of what committed: never trust it
            self._discard_connection()  # nor a connection a failure (or a cancellation) left mid-statement
            raise

    def _discard_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            conn.terminate()

    async def _fold(self, conn: asyncpg.Connection, tp: TP, messages: Sequence[Message]) -> Folded | Rewind:
        topic, partition = tp
        position = self._positions[tp]
        done = -1 if position is None else position
        fresh, cut = contiguous_after(messages, done)
        if not fresh:
            return Folded(done, 0, 0, 0, 0, skipped=len(messages))
        expected = done + 1
        gap: tuple[int, int] | None = None
        if fresh[0].offset > expected:
            low, _high = await self.watermarks(topic, partition)
            if low <= expected:  # the offsets are there: we were handed a batch from too far ahead
                self.stats.rewinds += 1
                return Rewind(expected, f"batch starts at {fresh[0].offset}, position is {done}")
            gap = (expected, min(low, fresh[0].offset) - 1)
            if fresh[0].offset > low:  # deleted up to low, but low..first-1 still exist: read them first
                await self._skip_gap(conn, topic, partition, gap)
                self.stats.rewinds += 1
                return Rewind(low, f"retention gap {gap[0]}-{gap[1]}")
        name = runner_name(topic, partition)
        last = fresh[-1].offset
        out = FoldOutput()
        anomaly_seqs: list[int] = []
        rejected: list[tuple[str, str, Rejected]] = []
        async with conn.transaction():
            await generation.hold(conn, self._generation)  # first: a swap since we loaded makes the state stale
            await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", name)  # the fence
            stored = await stored_position(conn, topic, partition)
            if stored != position:
                raise _Moved(tp, stored)
            if gap is not None:
                await record_gap(conn, topic, partition, gap, self.default_tenant)
            entries: list[tuple[Message, LogEntry]] = []
            for m in fresh:
                decoded = decode_message(m.topic, m.partition, m.offset, m.value)
                if isinstance(decoded, Rejected):
                    rejected.append((_tenant_of_key(m.key, self.default_tenant), READ_STAGE, decoded))
                else:
                    entries.append((m, decoded))
            new = await self._gate(conn, tp, entries)
            await self._load_accounts(conn, tp, [e for _, e in new])
            await self._ensure_policies(conn, {e.tenant for _, e in new})
            for m, entry in new:
                seq = kafka_seq(partition, m.offset)
                entry = _with_seq(entry, seq)
                self._baselines.seq = self._resources.seq = seq
                n_anomalies, n_rejected = len(out.anomalies), len(out.rejected)
                fold_entry(self._state, entry, self.prices, self._policy_for, out)
                anomaly_seqs.extend([seq] * (len(out.anomalies) - n_anomalies))
                rejected.extend((entry.tenant, NORMALIZE_STAGE, r) for r in out.rejected[n_rejected:])
            self._check_tracking()
            await cost_events.insert(conn, out.cost_events)
            await baselines.upsert(conn, list(self._baselines.changed.values()))
            # api/feed.py serves anomalies in feed_id order and assumes that is commit order per tenant. With two
            # workers, one tenant's accounts are folded in two processes at once, so feed ids (a sequence, taken at
            # insert) could commit out of order. One transaction lock per tenant, taken just before the insert and
            # held to commit, makes the inserts of a tenant's anomalies - and so their feed ids - commit in order.
            # Sorted, so two workers with the same tenants take them in the same order (no deadlock).
            for tenant in sorted({a.tenant for a in out.anomalies}):
                await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"dd0c-feed:{tenant}")
            alerted = await anomalies.insert(conn, list(zip(out.anomalies, anomaly_seqs, strict=True)))
            await resources.upsert(conn, list(self._resources.changed.values()))
            await metrics.add(conn, out.metrics)
            await dead_letters(conn, rejected)
            await checkpoints.save(conn, name, last)
            for tenant in sorted(set(alerted)):
                await conn.execute("SELECT pg_notify($1, $2)", FEED_CHANNEL, tenant)
        for tenant, stage, bad in rejected:  # named in the log too: an operator should not need psql to see why
            log.warning("rejected at %s (tenant %s) %s", stage, tenant, bad.describe())
        self._baselines.changed.clear()
        self._resources.changed.clear()
        self._state.dirty_baselines.clear()
        self._state.dirty_resources.clear()
        self._positions[tp] = last
        if gap is not None:
            self.stats.gaps += 1
            log.warning("partition %s:%d: offsets %d-%d deleted by retention before they were folded (dead letter)",
                        topic, partition, gap[0], gap[1])
        s = self.stats
        s.batches += 1
        s.entries += len(new)
        s.duplicates += len(entries) - len(new)
        s.rejected += len(rejected)
        s.anomalies += len(alerted)
        if cut:
            log.info("partition %s:%d: batch has a hole after offset %d; re-reading from %d", topic, partition, last,
                     last + 1)
        return Folded(last, len(new), len(entries) - len(new), len(rejected), len(alerted),
                      skipped=len([m for m in messages if m.offset <= last]) - len(fresh),
                      resume_at=last + 1 if cut else None)

    async def _gate(
        self, conn: asyncpg.Connection, tp: TP, entries: Sequence[tuple[Message, LogEntry]]
    ) -> list[tuple[Message, LogEntry]]:
        """The entries whose (tenant, account, eventID) was not folded before (the first copy within the batch)."""
        if not entries:
            return []
        rows = await conn.fetch(
            _GATE,
            [e.tenant for _, e in entries],
            [e.account_id for _, e in entries],
            [e.event_id for _, e in entries],
            [tp[0]] * len(entries),
            [tp[1]] * len(entries),
            [m.offset for m, _ in entries],
        )
        won = {r["offset"] for r in rows}  # a key twice in one batch: ON CONFLICT keeps the first row it inserts
        return [(m, e) for m, e in entries if m.offset in won]

    async def _load_accounts(self, conn: asyncpg.Connection, tp: TP, entries: Sequence[LogEntry]) -> None:
        """Bring the baselines and open resources of accounts seen for the first time into memory."""
        missing = sorted({(e.tenant, e.account_id) for e in entries} - self._owner.keys())
        if not missing:
            return
        tenants, accounts = [t for t, _ in missing], [a for _, a in missing]
        grouped: dict[tuple[str, str], list[Baseline]] = {}
        for row in await conn.fetch(_ACCOUNT_BASELINES, tenants, accounts):
            b = baselines.from_state(row["state"])
            dict.__setitem__(self._baselines, (b.tenant, b.account_id, b.resource_type), b)
            grouped.setdefault((b.tenant, b.account_id), []).append(b)
        for row in await conn.fetch(_ACCOUNT_RESOURCES, tenants, accounts):
            r: Resource = resources.from_document(row["data"])
            dict.__setitem__(self._resources, (r.tenant, r.account_id, r.resource_id), r)
        for acc in missing:
            self._owner[acc] = tp
            if acc in grouped:
                self._state.accounts[acc] = account_history(grouped[acc])

    def _check_tracking(self) -> None:
        if self._baselines.changed.keys() != self._state.dirty_baselines or (
            self._resources.changed.keys() != self._state.dirty_resources
        ):
            raise RunnerError("fold state changed outside item assignment; the runner cannot track what to write")

    # -- policies (as the Postgres runner: tenants.policy, else the policy file, else the default) ------------

    async def _ensure_policies(self, conn: asyncpg.Connection, tenants: Iterable[str]) -> None:
        missing = sorted(set(tenants) - self._policies.keys())
        if not missing:
            return
        rows = await conn.fetch("SELECT tenant_id, policy FROM tenants WHERE tenant_id = ANY($1::text[])", missing)
        stored = {r["tenant_id"]: r["policy"] for r in rows}
        for tenant in missing:
            data = stored.get(tenant) or {}
            self._policies[tenant] = (
                score_policy.policy_from_mapping(data, name=tenant, source=f"tenants.policy of {tenant!r}")
                if data else self.default_policy()
            )

    def default_policy(self) -> score_policy.Policy:
        """The fallback policy; loading it early makes a bad DD0C_POLICY_FILE stop the worker at start."""
        if self._fallback is None:
            self._fallback = (
                score_policy.load_policy(Path(self.policy_file)) if self.policy_file is not None
                else score_policy.DEFAULT_POLICY
            )
        return self._fallback

    def _policy_for(self, tenant: str) -> score_policy.Policy:
        return self._policies[tenant]


def _with_seq(entry: LogEntry, seq: int) -> LogEntry:
    from dataclasses import replace

    return replace(entry, seq=seq)
