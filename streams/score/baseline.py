"""The baseline fold: what is normal for one (tenant, account, resource_type), and whether it is still learning."""

from __future__ import annotations

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


def is_learning(baseline: Baseline | None, event: CostEvent, policy: Policy) -> bool:
    """Too few events or too young (event time, never the clock): everything still looks new."""
    if baseline is None or baseline.first_event_time is None:
        return True
    if baseline.events_seen < policy.learning_events:
        return True
    return event.event_time - baseline.first_event_time < policy.learning_period
