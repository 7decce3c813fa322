"""Backtest: what would a candidate policy have flagged? Folds the log in memory twice - with the live policies and
with the candidate for one tenant - through the same `fold_entry`, and compares the anomalies. Reads only: no
table is written, no lock is taken, the live worker is not disturbed.

Both folds see every entry from the start of the log (baselines need the whole history); --since / --until only
choose which anomalies (by event time) are compared. The log is read up to its head at the start, so a backtest
of a busy log is still a fixed, repeatable question.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg

from ops.gc_pause import gc_paused
from projections.db import connect
from schemas.events import Anomaly, LogEntry, Resource, Severity
from streams.fold import FoldOutput, FoldState, ResourceKey, fold_entry
from streams.log.postgres import read_after
from streams.prices.stored import stored_prices
from streams.prices.table import PriceTable
from streams.score import policy as score_policy

SEVERITIES = tuple(s.value for s in sorted(Severity, key=lambda s: s.rank))


class _OpenResources(dict[ResourceKey, Resource]):
    """Closed resources leave memory, exactly as in the Postgres runner (streams/runner/postgres.py says why):
    the backtest must fold as the live worker does, or it would answer for another fold."""

    def __setitem__(self, key: ResourceKey, value: Resource) -> None:
        if value.state == "closed":
            self.pop(key, None)
        else:
            super().__setitem__(key, value)


@dataclass
class Cell:
    live: int = 0
    candidate: int = 0
    gained: int = 0  # candidate anomalies at this severity that live did not have at this severity
    lost: int = 0  # live anomalies at this severity that the candidate does not have at this severity


@dataclass
class BacktestReport:
    candidate_policy: str
    policy_tenant: str
    policy_changes: dict[str, tuple[Any, Any]]  # key -> (live value, candidate value)
    entries: int
    position: int  # the log was folded up to this seq
    since: datetime | None
    until: datetime | None
    cells: dict[tuple[str, str, str], Cell] = field(default_factory=dict)  # (tenant, account, severity)
    gained: list[Anomaly] = field(default_factory=list)  # flagged by the candidate only
    lost: list[Anomaly] = field(default_factory=list)  # flagged live only (the live anomaly, with its reasons)
    changed: list[tuple[Anomaly, Anomaly]] = field(default_factory=list)  # (live, candidate), other severity

    @property
    def totals(self) -> dict[str, int]:
        return {
            "live": sum(c.live for c in self.cells.values()),
            "candidate": sum(c.candidate for c in self.cells.values()),
            "gained": len(self.gained),
            "lost": len(self.lost),
            "changed": len(self.changed),
        }


async def live_policies(
    conn: asyncpg.Connection, tenants: Iterable[str], fallback: score_policy.Policy
) -> dict[str, score_policy.Policy]:
    """Each tenant's policy exactly as the live runner builds it (tenants.policy, else the fallback)."""
    wanted = sorted(set(tenants))
    rows = await conn.fetch("SELECT tenant_id, policy FROM tenants WHERE tenant_id = ANY($1::text[])", wanted)
    stored = {r["tenant_id"]: r["policy"] for r in rows}
    return {
        t: score_policy.policy_from_mapping(stored[t], name=t, source=f"tenants.policy of {t!r}")
        if stored.get(t) else fallback
        for t in wanted
    }


async def backtest(
    dsn: str,
    prices: PriceTable,
    candidate: Mapping[str, Any],
    *,
    policy_tenant: str,
    tenant: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    fallback_policy_file: Path | None = None,
    batch: int = 5000,
) -> BacktestReport:
    """`candidate`: a complete policy mapping (policy_to_mapping) for `policy_tenant`; other tenants keep theirs."""
    fallback = (score_policy.load_policy(fallback_policy_file) if fallback_policy_file is not None
                else score_policy.DEFAULT_POLICY)
    proposed = score_policy.policy_from_mapping(candidate, name=policy_tenant, source="candidate policy")
    conn = await connect(dsn)
    try:
        table = await stored_prices(conn, prices)
        head = int(await conn.fetchval("SELECT coalesce(max(seq), 0) FROM log"))
        live_by_tenant: dict[str, score_policy.Policy] = {}
        states = (FoldState(resources=_OpenResources()), FoldState(resources=_OpenResources()))
        found: tuple[dict[str, Anomaly], dict[str, Anomaly]] = ({}, {})

        def live_for(t: str) -> score_policy.Policy:
            return live_by_tenant[t]

        def candidate_for(t: str) -> score_policy.Policy:
            return proposed if t == policy_tenant else live_by_tenant[t]

        policy_fns: tuple[Callable[[str], score_policy.Policy], ...] = (live_for, candidate_for)
        position, entries = 0, 0
        while position < head:
            with gc_paused():
                batch_entries = [e for e in await read_after(conn, position, batch, tenant=tenant)
                                 if e.seq is not None and e.seq <= head]
                if not batch_entries:
                    break
                missing = {e.tenant for e in batch_entries} - live_by_tenant.keys()
                if missing:
                    live_by_tenant.update(await live_policies(conn, missing, fallback))
                for state, policy_for, anomalies in zip(states, policy_fns, found, strict=True):
                    _fold(state, batch_entries, table, policy_for, anomalies, since, until)
            entries += len(batch_entries)
            position = batch_entries[-1].seq or position
        live_policy = live_by_tenant.get(policy_tenant) or (await live_policies(conn, [policy_tenant], fallback))[
            policy_tenant]
    finally:
        await conn.close()
    report = BacktestReport(
        candidate_policy=proposed.name,
        policy_tenant=policy_tenant,
        policy_changes=_policy_changes(live_policy, proposed),
        entries=entries,
        position=position,
        since=since,
        until=until,
    )
    _compare(report, *found)
    return report


def _fold(
    state: FoldState,
    entries: list[LogEntry],
    prices: PriceTable,
    policy_for: Callable[[str], score_policy.Policy],
    anomalies: dict[str, Anomaly],
    since: datetime | None,
    until: datetime | None,
) -> None:
    out = FoldOutput()
    for entry in entries:
        fold_entry(state, entry, prices, policy_for, out)
    state.dirty_baselines.clear()  # nothing is written back: only the anomalies matter here
    state.dirty_resources.clear()
    for a in out.anomalies:
        if (since is None or a.event_time >= since) and (until is None or a.event_time < until):
            anomalies.setdefault(a.id, a)  # first wins, as ON CONFLICT (id) DO NOTHING does in the table


def _compare(report: BacktestReport, live: dict[str, Anomaly], candidate: dict[str, Anomaly]) -> None:
    def cell(a: Anomaly) -> Cell:
        return report.cells.setdefault((a.tenant, a.account_id, a.severity.value), Cell())

    for a in live.values():
        cell(a).live += 1
    for a in candidate.values():
        cell(a).candidate += 1
    for key, a in candidate.items():
        before = live.get(key)
        if before is None:
            report.gained.append(a)
        elif before.severity is not a.severity:
            report.changed.append((before, a))
        if before is None or before.severity is not a.severity:
            cell(a).gained += 1
    for key, a in live.items():
        after = candidate.get(key)
        if after is None:
            report.lost.append(a)
        if after is None or after.severity is not a.severity:
            cell(a).lost += 1
    def order(a: Anomaly) -> tuple[datetime, str]:
        return a.event_time, a.id

    report.gained.sort(key=order)
    report.lost.sort(key=order)
    report.changed.sort(key=lambda pair: order(pair[1]))
    report.cells = dict(sorted(report.cells.items(), key=lambda kv: (kv[0][0], kv[0][1],
                                                                     SEVERITIES.index(kv[0][2]))))


def _policy_changes(live: score_policy.Policy, candidate: score_policy.Policy) -> dict[str, tuple[Any, Any]]:
    a, b = score_policy.policy_to_mapping(live), score_policy.policy_to_mapping(candidate)
    return {k: (a[k], b[k]) for k in a if k != "name" and a[k] != b[k]}
