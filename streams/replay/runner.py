"""The shadow runner: the stock PostgresRunner folding into the shadow schema, up to a position it is given.

Nothing of the fold is forked: the same `_fold_and_commit` (same folds, same writers, rows + checkpoint in one
transaction) runs; only where it writes (search_path), its name (so its advisory lock and checkpoint are its
own, never the live worker's), the policies of the tenants the replay overrides, and how far it reads differ.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import asyncpg

from schemas.events import LogEntry
from streams.prices.table import PriceTable
from streams.replay.shadow import shadow_dsn
from streams.runner.postgres import PostgresRunner, checkpoint_name
from streams.score.policy import Policy


class ShadowRunner(PostgresRunner):
    def __init__(
        self,
        dsn: str,
        prices: PriceTable,
        *,
        tenant: str | None,
        batch: int | None,
        policies: Mapping[str, Policy],
        on_commit: Callable[[int], None] | None = None,
    ) -> None:
        super().__init__(shadow_dsn(dsn), prices, tenant=tenant, batch=batch)
        self.name = f"replay:{checkpoint_name(tenant)}"
        self._overrides = dict(policies)
        self._on_commit = on_commit
        self.limit = 0  # never fold an entry beyond this seq
        self.covered = 0  # every in-scope entry up to here is folded into the shadow

    async def open(self) -> None:
        """Connect, take the shadow runner's lock (free: the replay lock is held) and load the shadow's state."""
        if not await self._start(drain=True):
            raise RuntimeError("shadow runner stopped while starting")
        self.covered = max(self.covered, self._position)

    async def advance(self, limit: int) -> None:
        """Fold every in-scope entry with seq <= limit (committed batch by batch into the shadow)."""
        self.limit = max(self.limit, limit)
        while not await self._step(drain=True):
            pass
        self.covered = max(self.covered, self.limit)

    async def close(self) -> None:
        await self._close()

    # -- the PostgresRunner hooks this class changes ------------------------------------------------------

    async def _read_batch(self) -> list[LogEntry]:
        entries = await super()._read_batch()
        if entries and entries[-1].seq is not None and entries[-1].seq > self.limit:
            entries = [e for e in entries if e.seq is not None and e.seq <= self.limit]
        return entries

    async def _ensure_policies(self, conn: asyncpg.Connection, tenants: Iterable[str]) -> None:
        for tenant in tenants:
            if tenant in self._overrides:
                self._policies[tenant] = self._overrides[tenant]
        await super()._ensure_policies(conn, tenants)

    def _count(self, folded: int, new_events: int, new_anomalies: int, rejected: int) -> None:
        super()._count(folded, new_events, new_anomalies, rejected)
        if self._on_commit is not None:
            self._on_commit(self._position)
