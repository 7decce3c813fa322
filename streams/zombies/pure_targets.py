"""Load balancers that carry requests but have nothing behind them (pure; part of check `idle_load_balancer`).

pure.idle_load_balancers judges use by requests. A load balancer that does get requests yet has no registered
or no healthy target answers every one of them with an error and still bills by the hour: it is a zombie too,
reported under the same check and resource id with `reason` saying which rule found it.

* Classic: no registered instance (the description lists them; no extra call).
* ALB / NLB / GWLB: at least one target group forwards to it and none of them has a healthy target
  (`DescribeTargetHealth`, one call per target group: the API has no multi-group form). A load balancer with no
  target group at all is left alone: its listeners may only redirect or answer fixed responses, which is use.
* Only load balancers older than the request lookback are judged (a new one is still being set up, R14's
  `brand-new`), and only those with traffic (idle ones are already reported by requests).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from streams.prices.table import PriceTable
from streams.zombies.pure import (
    _LB_KINDS,
    CHECK_IDLE_LB,
    CheckThresholds,
    Scope,
    Status,
    Unavailable,
    Zombie,
    _age_days,
    _hourly_money,
    _iso,
    _load_balancers,
    _zombie,
)


def target_groups_by_lb(target_groups: Sequence[Mapping[str, Any]]) -> dict[str, list[str]]:
    """load balancer ARN -> ARNs of the target groups that forward to it."""
    out: dict[str, list[str]] = {}
    for tg in target_groups:
        for lb in tg.get("LoadBalancerArns") or ():
            out.setdefault(str(lb), []).append(str(tg.get("TargetGroupArn")))
    return out


def lbs_to_check(
    scope: Scope,
    classic: Sequence[Mapping[str, Any]],
    v2: Sequence[Mapping[str, Any]],
    idle_ids: Collection[str],
    now: datetime,
    thresholds: CheckThresholds,
) -> tuple[list[str], list[str]]:
    """(classic ids, v2 ARNs) of load balancers with traffic, old enough to be judged by their targets."""
    old_busy = [
        lb for lb in _load_balancers(scope, classic, v2)
        if lb.resource_id not in idle_ids and (_age_days(lb.created, now) or 0.0) >= thresholds.lb_lookback_days
    ]
    return [lb.resource_id for lb in old_busy if lb.kind == "classic"], [
        lb.resource_id for lb in old_busy if lb.kind != "classic"
    ]


def lbs_without_targets(
    scope: Scope,
    classic: Sequence[Mapping[str, Any]],
    v2: Sequence[Mapping[str, Any]],
    idle_ids: Collection[str],
    target_groups: Sequence[Mapping[str, Any]] | Unavailable,
    health: Mapping[str, Sequence[Mapping[str, Any]] | Unavailable],
    now: datetime,
    thresholds: CheckThresholds,
    prices: PriceTable,
) -> list[Zombie]:
    """`health`: target group ARN -> its TargetHealthDescriptions (or Unavailable when that call failed)."""
    classic_ids, v2_ids = lbs_to_check(scope, classic, v2, idle_ids, now, thresholds)
    wanted = set(classic_ids) | set(v2_ids)
    groups = {} if isinstance(target_groups, Unavailable) else target_groups_by_lb(target_groups)
    out: list[Zombie] = []
    for lb in _load_balancers(scope, classic, v2):
        if lb.resource_id not in wanted:
            continue
        money = _hourly_money(prices, scope.region, "elb", _LB_KINDS[lb.kind][0])
        evidence: dict[str, Any] = {
            "name": lb.name,
            "load_balancer_type": lb.kind,
            "created": _iso(lb.created),
            "has_requests": True,
        }
        status: Status = "zombie"
        if lb.kind == "classic":
            if lb.backends:
                continue
            evidence.update(reason="no_registered_instances", registered_instances=0)
        else:
            if isinstance(target_groups, Unavailable):
                evidence.update(reason="no_healthy_targets", unknown_because=[
                    f"{target_groups.operation}: {target_groups.code}"])
                out.append(_zombie(scope, lb.resource_id, "load_balancer", CHECK_IDLE_LB, money, evidence, "unknown"))
                continue
            arns = groups.get(lb.resource_id, [])
            if not arns:
                continue  # redirect / fixed-response listeners only: in use
            per_group: list[dict[str, Any]] = []
            failed: list[str] = []
            for arn in arns:
                found = health.get(arn, Unavailable("DescribeTargetHealth", "NotAsked"))
                if isinstance(found, Unavailable):
                    failed.append(f"{found.operation}: {found.code}")
                    per_group.append({"target_group": arn, "registered": None, "healthy": None})
                    continue
                states = [str((d.get("TargetHealth") or {}).get("State")) for d in found]
                per_group.append(
                    {"target_group": arn, "registered": len(states), "healthy": states.count("healthy"),
                     "states": sorted(set(states))}
                )
            if any(g["healthy"] for g in per_group):
                continue
            registered = sum(g["registered"] or 0 for g in per_group)
            evidence.update(
                reason="no_registered_targets" if registered == 0 and not failed else "no_healthy_targets",
                target_groups=per_group,
            )
            if failed:
                status = "unknown"
                evidence["unknown_because"] = sorted(set(failed))
        out.append(_zombie(scope, lb.resource_id, "load_balancer", CHECK_IDLE_LB, money, evidence, status))
    return out
