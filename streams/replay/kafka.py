"""Replay from the Kafka log: the shadow is folded by the Kafka runner's own core (KafkaFolder, the same folds,
writers and dedupe gate as the live workers), fed by a consumer of our own.

* No consumer group: the consumer is assigned every partition of the topic and seeks explicitly, so offsets a
  group committed earlier (the live workers' hints) neither block nor steer the replay.
* Where to stop: at the live workers' stored positions (`fold-v1:kafka:<topic>:<partition>` checkpoints) - never
  at an end offset the broker reports (tansu's are not reliable, and a position a worker committed is the one the
  swap must line up with anyway). A partition the live workers have not folded anything of is done at once.
* The shadow's positions, dedupe gate (`kafka_folded`) and checkpoints live in the shadow schema; in full mode the
  gate is swapped in with the projections (it must describe the same folded entries), the live checkpoints stay:
  the shadow ends exactly at them.

One replay on Kafka is always lined up with the live positions (the "partial" rule of streams/replay/replay.py):
the live workers keep folding, and at the swap every partition is folded up to the live position inside the lock.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.log.kafka import KafkaSpec
from streams.prices.table import PriceTable
from streams.replay.replay import CATCH_UP_ROUNDS, Progress, ReplayError, ReplayOptions
from streams.replay.shadow import FOLDED, shadow_dsn
from streams.runner.kafka import TP, Folded, KafkaFolder, Message, Rewind, runner_name
from streams.score.policy import Policy

log = logging.getLogger("dd0c.replay.kafka")

POLL_MS = 500


class ShadowKafkaFolder(KafkaFolder):
    """KafkaFolder on the shadow schema, scoring the overridden tenants with the replay's policy."""

    def __init__(self, dsn: str, prices: PriceTable, *, watermarks: Any, policies: Mapping[str, Policy]) -> None:
        super().__init__(shadow_dsn(dsn), prices, watermarks=watermarks)
        self._overrides = dict(policies)

    async def _ensure_policies(self, conn: asyncpg.Connection, tenants: Iterable[str]) -> None:
        for tenant in tenants:
            if tenant in self._overrides:
                self._policies[tenant] = self._overrides[tenant]
        await super()._ensure_policies(conn, tenants)

    def position(self, tp: TP) -> int | None:
        return self._positions.get(tp)


class KafkaSource:
    support_tables: tuple[str, ...] = ("kafka_folded",)
    swap_tables: tuple[str, ...] = ("kafka_folded",)

    def __init__(self, dsn: str, prices: PriceTable, spec: KafkaSpec, full: bool,
                 policies: Mapping[str, Policy], bar: Progress, batch: int) -> None:
        self.spec = spec
        self.live_name = f"{runner_name(spec.topic, 0).rpartition(':')[0]}:*"  # one checkpoint per partition
        self.full = full
        self.bar = bar
        self.batch = batch
        self._consumer: AIOKafkaConsumer | None = None
        self.folder = ShadowKafkaFolder(dsn, prices, watermarks=self._watermarks, policies=policies)
        self.partitions: list[int] = []

    @classmethod
    async def prepare(cls, conn: asyncpg.Connection, dsn: str, prices: PriceTable, options: ReplayOptions,
                      overrides: Mapping[str, Policy], bar: Progress) -> KafkaSource:
        if options.tenant is not None:
            raise ReplayError("--tenant is not supported on the Kafka log: a partition holds many tenants, and the "
                              "shadow must fold every entry of it to line up with the live positions")
        return cls(dsn, prices, options.kafka, options.tables == FOLDED, overrides, bar, options.batch or 2000)

    @property
    def entries(self) -> int:
        return self.folder.stats.entries

    async def _watermarks(self, topic: str, partition: int) -> tuple[int, int]:
        assert self._consumer is not None
        tp = TopicPartition(topic, partition)
        low = (await self._consumer.beginning_offsets([tp]))[tp]
        high = (await self._consumer.end_offsets([tp]))[tp]
        return int(low), int(high)

    async def open(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.spec.bootstrap, group_id=None, enable_auto_commit=False,
            client_id="dd0c-replay", auto_offset_reset="earliest", max_poll_records=self.batch,
        )
        await consumer.start()
        self._consumer = consumer
        await consumer.topics()  # fetch the cluster metadata, so that the topic's partitions are known
        found = consumer.partitions_for_topic(self.spec.topic)
        if not found:
            raise ReplayError(f"topic {self.spec.topic!r} does not exist on {self.spec.bootstrap}")
        self.partitions = sorted(found)
        consumer.assign([TopicPartition(self.spec.topic, p) for p in self.partitions])
        plans = await self.folder.assign([(self.spec.topic, p) for p in self.partitions])
        for (topic, partition), plan in plans.items():
            consumer.seek(TopicPartition(topic, partition), plan.seek_to)

    async def close(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()
        await self.folder.close()

    async def _live_positions(self, conn: asyncpg.Connection, *, lock: bool = False) -> dict[int, int | None]:
        names = [runner_name(self.spec.topic, p) for p in self.partitions]
        rows = await conn.fetch(
            "SELECT runner, position FROM checkpoints WHERE runner = ANY($1::text[]) ORDER BY runner"
            + (" FOR UPDATE" if lock else ""),
            names,
        )
        stored = {r["runner"]: int(r["position"]) for r in rows}
        return {p: stored.get(runner_name(self.spec.topic, p)) for p in self.partitions}

    def _behind(self, targets: Mapping[int, int | None]) -> dict[int, int]:
        """Partitions whose shadow position is short of the target: partition -> target offset."""
        out = {}
        for p, target in targets.items():
            have = self.folder.position((self.spec.topic, p))
            if target is not None and (have is None or have < target):
                out[p] = target
        return out

    async def advance(self, targets: Mapping[int, int | None]) -> None:
        """Consume and fold every partition up to its target offset (inclusive)."""
        assert self._consumer is not None
        consumer, topic = self._consumer, self.spec.topic
        behind = self._behind(targets)
        for p in self.partitions:
            tp = TopicPartition(topic, p)
            if p in behind:
                consumer.resume(tp)
            else:
                consumer.pause(tp)
        while behind:
            batches = await consumer.getmany(timeout_ms=POLL_MS, max_records=self.batch)
            for tp, records in batches.items():
                target = behind.get(tp.partition)
                if target is None:
                    continue
                messages = [Message(r.topic, r.partition, r.offset, r.key, r.value)
                            for r in records if r.offset <= target]
                if not messages:
                    continue
                result = await self.folder.fold(messages)
                if isinstance(result, Rewind):
                    consumer.seek(tp, result.offset)
                    continue
                assert isinstance(result, Folded)
                self.bar.at(sum((self.folder.position((topic, q)) or -1) + 1 for q in self.partitions))
                if records[-1].offset > result.position:  # fetched past the target: read from there next time
                    consumer.seek(tp, result.position + 1)
                if result.position >= target:
                    consumer.pause(tp)
                    del behind[tp.partition]

    async def catch_up(self, conn: asyncpg.Connection) -> None:
        for _ in range(CATCH_UP_ROUNDS):
            targets = await self._live_positions(conn)
            self.bar.target(sum((t or -1) + 1 for t in targets.values()))
            behind = self._behind(targets)
            gap = sum(t - (self.folder.position((self.spec.topic, p)) or -1) for p, t in behind.items())
            if gap <= 2 * self.batch:
                return  # the rest is folded in the swap's lock
            await self.advance(targets)

    async def line_up(self, conn: asyncpg.Connection) -> tuple[int, int]:
        before = self.entries
        targets = await self._live_positions(conn, lock=True)
        await self.advance(targets)
        for p, target in targets.items():
            have = self.folder.position((self.spec.topic, p))
            if (have if have is not None else -1) > (target if target is not None else -1):
                raise ReplayError(f"the live position of partition {p} moved back to {target} (the shadow is at "
                                  f"{have}): were the projections reset during the replay? rerun it")
        folded = sum((t or -1) + 1 for t in targets.values())  # messages up to the live positions, all partitions
        return folded, self.entries - before

    async def set_live_position(self, conn: asyncpg.Connection, position: int) -> None:
        pass  # the shadow ends exactly at the live positions: they stay as they are
