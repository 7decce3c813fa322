"""The whole fold for one log entry, composed from the three pure stages (no I/O, no clock).

Runners (Postgres today, Kafka later) own loading and saving `FoldState`; this module owns the order of the
stages, so every runner folds identically.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from schemas.events import Anomaly, Baseline, CostEvent, LogEntry, LogKind, Rejected, Resource
from streams.ledger import lifecycle
from streams.ledger import pure as ledger
from streams.normalize import catalog
from streams.normalize.pure import normalize, observations
from streams.prices.table import PriceTable
from streams.score.baseline import AccountHistory, account_history, fold_account
from streams.score.policy import Policy
from streams.score.pure import score
from streams.zombies.events import ZombieEvent
from streams.zombies.events import decode as decode_zombie

BaselineKey = tuple[str, str, str]  # (tenant, account_id, resource_type)
ResourceKey = tuple[str, str, str]  # (tenant, account_id, resource_id)

# Every CloudTrail call a stage acts on: priced calls (normalize), creates that price nothing (their failures are
# counted by observations), lifecycle steps (the ledger). Any other call folds to nothing - fold_entry returns
# before the stages see it - so a runner may leave such entries unread (streams/log/postgres.py
# read_folded_after). A stage that starts acting on another call must add it here.
FOLDED_CALLS: frozenset[tuple[str, str]] = frozenset(catalog.CATALOG) | catalog.CREATES_WITHOUT_COST | lifecycle.STEPPED


@dataclass
class FoldState:
    """Projection state the folds read. `dirty_*` name what the runner must write back.

    Runners keep every baseline and every resource that is not closed in memory (loaded once at start,
    then kept current), so the pure stages never wait on I/O.
    """

    baselines: dict[BaselineKey, Baseline] = field(default_factory=dict)
    resources: dict[ResourceKey, Resource] = field(default_factory=dict)
    dirty_baselines: set[BaselineKey] = field(default_factory=set)
    dirty_resources: set[ResourceKey] = field(default_factory=set)
    # Derived from `baselines` on first use, then kept current; never stored (see AccountHistory).
    accounts: dict[tuple[str, str], AccountHistory] = field(default_factory=dict)

    def account(self, tenant: str, account_id: str) -> AccountHistory:
        if not self.accounts and self.baselines:
            # first use after a (re)load: derive every account in one pass over the baselines
            grouped: dict[tuple[str, str], list[Baseline]] = {}
            for (t, a, _), b in self.baselines.items():
                grouped.setdefault((t, a), []).append(b)
            self.accounts.update((key, account_history(bs)) for key, bs in grouped.items())
        return self.accounts.get((tenant, account_id)) or AccountHistory()


@dataclass
class FoldOutput:
    cost_events: list[CostEvent] = field(default_factory=list)
    anomalies: list[Anomaly] = field(default_factory=list)
    metrics: list[tuple[str, str, str]] = field(default_factory=list)  # (tenant, metric, label)
    rejected: list[Rejected] = field(default_factory=list)
    zombies: list[ZombieEvent] = field(default_factory=list)  # for projections/zombies/writer.apply, in log order


def fold_entry(
    state: FoldState,
    entry: LogEntry,
    prices: PriceTable,
    policy_for: Callable[[str], Policy],
    out: FoldOutput,
) -> None:
    """Fold one entry into `state`, appending what it produced to `out`. Baselines see events in log order."""
    if entry.kind is LogKind.ZOMBIE:
        decoded = decode_zombie(entry)  # its row fold (streams/zombies/fold.py) runs in projections/zombies/writer
        if isinstance(decoded, Rejected):
            out.rejected.append(decoded)
        else:
            out.zombies.append(decoded)
        return
    if entry.kind is not LogKind.CLOUDTRAIL:
        return  # Insight events are kept in the log and served, never priced
    if entry.read_only or (entry.event_source, entry.event_name) not in FOLDED_CALLS:
        # A read-only call creates, changes and ends nothing billable (normalize gives [] for it too): by default
        # the log does not even store them (it counts them), and with DD0C_KEEP_READ_ONLY they fold as if it did
        # not. Calls outside FOLDED_CALLS (CreateTags, PutParameter, ...) reach no stage. Both are what the
        # Postgres runner's read leaves out (read_folded_after): nine rows in ten of a kept log, and most writes.
        return
    result = normalize(entry, prices, state.resources)
    if isinstance(result, Rejected):
        out.rejected.append(result)
        return
    events = result  # normalize stamps each event with entry.seq
    policy = policy_for(entry.tenant)
    for event in events:
        key = (event.tenant, event.account_id, event.resource_type)
        history = state.account(event.tenant, event.account_id)
        baseline, anomaly = score(state.baselines.get(key), event, policy, history)
        state.baselines[key] = baseline
        state.accounts[(event.tenant, event.account_id)] = fold_account(history, event)
        state.dirty_baselines.add(key)
        if anomaly is not None:
            out.anomalies.append(anomaly)
    out.cost_events.extend(events)
    for change in ledger.changes(entry, events):
        rkey = (change.tenant, change.account_id, change.resource_id)
        updated = ledger.apply(state.resources.get(rkey), change)
        if updated is not None:
            state.resources[rkey] = updated
            state.dirty_resources.add(rkey)
    out.metrics.extend((entry.tenant, metric, label) for metric, label in observations(entry, events))
