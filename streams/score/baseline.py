"""The baseline fold: what is normal for one (tenant, account, resource_type), and whether it is still learning."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from schemas.events import Baseline, CostEvent
from streams.score import welford
from streams.score.policy import Policy


def fold(baseline: Baseline | None, event: CostEvent) -> Baseline:
    """Fold one cost event in. Unpriced events update what has been seen, never the spend statistics (R16)."""
    b = baseline if baseline is not None else Baseline(event.tenant, event.account_id, event.resource_type)
    stats = welford.update(b.stats, event.hourly_cost) if event.hourly_cost is not None else b.stats
    # min / max rather than first / last seen: backfilled history can arrive out of event-time order.
    first = event.event_time if b.first_event_time is None else min(b.first_event_time, event.event_time)
    last = event.event_time if b.last_event_time is None else max(b.last_event_time, event.event_time)
    return Baseline(
        tenant=b.tenant,
        account_id=b.account_id,
        resource_type=b.resource_type,
        stats=stats,
        actors=b.actors | {event.actor.key},
        regions=b.regions | {event.region},
        families=b.families | {event.family} if event.family else b.families,
        events_seen=b.events_seen + 1,
        first_event_time=first,
        last_event_time=last,
    )


@dataclass(frozen=True, slots=True)
class AccountHistory:
    """How long we have known an account, across all its resource types: what the learning window is about.

    Equal by construction to (min first_event_time, sum events_seen) over the account's baselines, so it is
    derived from them rather than stored.
    """

    first_event_time: datetime | None = None
    events_seen: int = 0


def account_history(baselines: Iterable[Baseline]) -> AccountHistory:
    mine = list(baselines)
    firsts = [b.first_event_time for b in mine if b.first_event_time is not None]
    seen = sum(b.events_seen for b in mine)
    return AccountHistory(min(firsts) if firsts else None, seen)


def fold_account(history: AccountHistory | None, event: CostEvent) -> AccountHistory:
    h = history or AccountHistory()
    first = event.event_time if h.first_event_time is None else min(h.first_event_time, event.event_time)
    return AccountHistory(first, h.events_seen + 1)


def is_learning(
    baseline: Baseline | None, event: CostEvent, policy: Policy, account: AccountHistory | None = None
) -> bool:
    """Too few events or too young (event time, never the clock): everything still looks new.

    With `account` given, the window is the account's (a new account's first days), not the resource type's:
    the first NAT gateway of an account we have watched for weeks is news, not learning.
    """
    first, seen = (
        (account.first_event_time, account.events_seen)
        if account is not None
        else (baseline.first_event_time, baseline.events_seen)
        if baseline is not None
        else (None, 0)
    )
    if first is None or seen < policy.learning_events:
        return True
    return event.event_time - first < policy.learning_period
