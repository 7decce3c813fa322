"""Stage 2 - score: one cost event against its (tenant, account, resource_type) baseline, then fold it in.

Pure: no clock, no I/O. The event is scored against the baseline as it was BEFORE the event, so an event never
makes itself look normal. Signals: zscore (enough priced history), absolute_band (cold start), and novelty.
"""

from __future__ import annotations

import math
import uuid

from schemas.events import Anomaly, Baseline, CostEvent, Reason, Severity
from streams.score import baseline as baselines
from streams.score import severity as sev
from streams.score import welford
from streams.score.baseline import AccountHistory
from streams.score.novelty import novelty
from streams.score.policy import Policy
from streams.score.text import usd, what, z_text
from streams.score.zscore import ScoreError, ZScore, zscore

# Fixed namespace for anomaly ids: replaying the log gives every anomaly the same id again.
ANOMALY_NAMESPACE = uuid.UUID("5c0f2d7e-3a51-5b8e-9d0c-c0575c0de001")


def anomaly_id(tenant: str, account_id: str, event_id: str, ordinal: int, resource_type: str) -> str:
    # \x1f (unit separator) cannot occur in these ids, so distinct tuples never share a name.
    name = "\x1f".join((tenant, account_id, event_id, str(ordinal), resource_type))
    return str(uuid.uuid5(ANOMALY_NAMESPACE, name))


def score(
    baseline: Baseline | None, event: CostEvent, policy: Policy, account: AccountHistory | None = None
) -> tuple[Baseline, Anomaly | None]:
    """(baseline with the event folded in, the anomaly it raised or None).

    `account` is the account's history before this event (all resource types); the learning window uses it
    when given, else the baseline's own history.
    """
    cost = event.hourly_cost
    if cost is not None and not (math.isfinite(cost) and cost >= 0):
        # normalize prices are finite or None; anything else is a bug, and must not reach the statistics
        raise ScoreError(f"event {event.event_id}#{event.ordinal}: hourly_cost must be finite and >= 0, got {cost!r}")
    key = (event.tenant, event.account_id, event.resource_type)
    if baseline is not None and (baseline.tenant, baseline.account_id, baseline.resource_type) != key:
        raise ScoreError(f"event {event.event_id}#{event.ordinal} for {key} scored against the baseline of another key")
    stats = baseline.stats if baseline is not None else welford.EMPTY
    learning = baselines.is_learning(baseline, event, policy, account)

    reasons: list[Reason] = []
    zs = zscore(stats, event.hourly_cost, policy)
    base: Severity | None = None
    if zs is not None:
        base = sev.z_severity(zs, policy)
        if base is not None:
            reasons.append(_z_reason(zs, event, policy))
    elif event.hourly_cost is not None:
        hit = sev.band(event.hourly_cost, policy)
        if hit is not None:
            base = hit[0]
            reasons.append(_band_reason(hit, stats.n, event, policy))
    novel = novelty(baseline, event, policy)
    reasons.extend(novel)
    level = sev.combine(base, [r.signal for r in novel], learning=learning, policy=policy)
    if base is not None and level is not None and level.rank > base.rank and reasons:
        # Say why the verdict is above what the first reason's own numbers give ("medium band ... -> high").
        first = reasons[0]
        raised_by = ", ".join(r.signal.replace("_", " ") for r in novel)
        reasons[0] = Reason(first.signal, f"{first.text}; {base.value} raised to {level.value} by {raised_by}",
                            {**first.data, "raised_from": base.value, "raised_to": level.value})

    folded = baselines.fold(baseline, event)
    if level is None or level.rank < policy.record_floor.rank:
        return folded, None
    anomaly = Anomaly(
        id=anomaly_id(event.tenant, event.account_id, event.event_id, event.ordinal, event.resource_type),
        tenant=event.tenant,
        account_id=event.account_id,
        resource_type=event.resource_type,
        region=event.region,
        event_ids=(event.event_id,),
        event_time=event.event_time,
        detected_at=event.ingested_at,
        severity=level,
        z=zs.z if zs is not None else None,
        hourly_cost=event.hourly_cost,
        expected_hourly_cost=stats.mean if stats.n >= 1 else None,
        baseline_stddev=welford.stddev(stats, noise_rel=policy.std_noise_rel),
        baseline_n=stats.n,
        actor=event.actor.key,
        instance_type=event.instance_type,
        reasons=tuple(reasons),
        backfill=event.ingested_at - event.event_time > policy.backfill_after,
        learning=learning,
        policy=policy.name,
    )
    return folded, anomaly


def _z_reason(zs: ZScore, event: CostEvent, policy: Policy) -> Reason:
    cost = event.hourly_cost if event.hourly_cost is not None else 0.0  # zs exists only for priced events
    return Reason(
        "zscore",
        # "per event": the baseline is what one such event usually starts, not the account's total spend
        f"{usd(cost)}/h vs a typical {usd(zs.mean)}/h per event (z={z_text(zs.z)} over {zs.n} events)"
        f" for {what(event)}",
        {
            "actual_hourly": cost,
            "expected_hourly": zs.mean,
            "increase_hourly": zs.increase,
            "z": zs.z,
            "z_threshold": policy.z_threshold,
            "baseline_n": zs.n,
            "baseline_mean": zs.mean,
            "baseline_stddev": zs.stddev,
            "effective_stddev": zs.effective_stddev,
        },
    )


def _band_reason(hit: tuple[Severity, float], n: int, event: CostEvent, policy: Policy) -> Reason:
    level, edge = hit
    cost = event.hourly_cost if event.hourly_cost is not None else 0.0  # bands apply to priced events only
    return Reason(
        "absolute_band",
        f"{usd(cost)}/h for {what(event)}, at or above the {level.value} band of {usd(edge)}/h "
        f"(too early for a z-score: {n} of the {policy.cold_start_count} priced events it needs)",
        {
            "actual_hourly": cost,
            "band": level.value,
            "band_hourly": edge,
            "baseline_n": n,
            "cold_start_count": policy.cold_start_count,
        },
    )
