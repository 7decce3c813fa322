"""Zombie checks (pure) for compute: stopped instances, their volumes, idle EC2 instances, idle RDS instances.

Same contract as pure.py: boto3-shaped responses in, `Zombie` values out, no I/O and no clock (`now` is given).

* `stopped_instance`: stopped for at least `stopped_instance_days`. EC2 keeps no stop time of its own; the
  `StateTransitionReason` text ("User initiated (2024-05-01 12:00:00 GMT)") carries it. An instance whose stop time
  cannot be read is `unknown`, never a zombie. A stopped instance bills no compute: its waste is the public IPv4
  addresses it still holds (Elastic IPs, billed idle while it is stopped), often $0.00. Its volumes are the
  `stopped_instance_volume` zombies, so nothing is counted twice.
* `stopped_instance_volume`: every volume attached to an instance stopped at least `stopped_volume_days`,
  priced like an unattached volume (GiB, IOPS and throughput).
* `idle_ec2_instance`: a running instance whose every daily CPUUtilization average and every day's
  NetworkIn + NetworkOut stay at or below the thresholds over the lookback. Priced at the on-demand hourly rate
  of its type (Linux, shared tenancy) x 730; its volumes are not included.
* `idle_rds_instance`: an available DB instance whose daily maximum DatabaseConnections never exceeds
  `rds_idle_connections`. Priced as class x (2 when Multi-AZ) x 730 + storage (the labelled regional estimate
  where the table only has us-east-1 storage rates).

Metric rule as for NAT gateways and load balancers (R14): absent datapoints count as zero only for a resource
that existed for the whole lookback; a younger one without activity is `insufficient_history`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from streams.normalize.catalog_rds import engine_key
from streams.normalize.ids import rds_instance
from streams.prices.table import PriceTable
from streams.zombies.pure import (
    CHECK_IDLE_EC2,
    CHECK_IDLE_RDS,
    CHECK_STOPPED_INSTANCE,
    CHECK_STOPPED_INSTANCE_VOLUME,
    CheckThresholds,
    MetricQuery,
    MetricSeries,
    MetricWindow,
    Scope,
    Status,
    Unavailable,
    Zombie,
    _age_days,
    _fact,
    _hourly_money,
    _iso,
    _Money,
    _num,
    _price_evidence,
    _volume_money,
    _zombie,
    as_datetime,
)

_STOP_TIME = re.compile(r"\((\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}) (?:GMT|UTC)\)")
_RDS_STORAGE = {"gp2": "gp2", "gp3": "gp3", "io1": "io1", "io2": "io1", "standard": "standard"}


def stopped_since(instance: Mapping[str, Any]) -> datetime | None:
    """When a stopped instance stopped, from its StateTransitionReason; None when the text carries no time."""
    found = _STOP_TIME.search(str(instance.get("StateTransitionReason") or ""))
    return as_datetime(found.group(1).replace(" ", "T") + "Z") if found else None


def _state(instance: Mapping[str, Any]) -> str:
    return str((instance.get("State") or {}).get("Name") or "")


def stopped_instances(
    scope: Scope,
    instances: Sequence[Mapping[str, Any]],
    addresses: Sequence[Mapping[str, Any]],
    volumes: Sequence[Mapping[str, Any]],
    now: datetime,
    thresholds: CheckThresholds,
    prices: PriceTable,
) -> list[Zombie]:
    """Instances stopped for at least `stopped_instance_days` (waste: their Elastic IPs; volumes listed apart)."""
    out: list[Zombie] = []
    for inst in instances:
        if _state(inst) != "stopped":
            continue
        iid = str(inst.get("InstanceId"))
        since = stopped_since(inst)
        days = _age_days(since, now)
        held = [a for a in addresses if a.get("InstanceId") == iid]
        attached = [v for v in volumes if any(att.get("InstanceId") == iid for att in v.get("Attachments") or ())]
        volume_money = [_volume_money(prices, scope.region, v).monthly for v in attached]
        evidence: dict[str, Any] = {
            "state": "stopped",
            "instance_type": inst.get("InstanceType"),
            "state_transition_reason": inst.get("StateTransitionReason"),
            "stopped_since": _iso(since),
            "stopped_days": None if days is None else round(days, 2),
            "threshold_days": thresholds.stopped_instance_days,
            "elastic_ips": [a.get("PublicIp") for a in held],
            "compute_billed": False,
            "volumes": [v.get("VolumeId") for v in attached],
            "volumes_monthly_usd_reported_separately": (
                round(sum(m for m in volume_money if m is not None), 6) if attached else 0.0
            ),
        }
        status: Status = "zombie"
        if days is None:
            status = "unknown"
            evidence["unknown_because"] = ["stop time not in StateTransitionReason"]
        elif days < thresholds.stopped_instance_days:
            continue
        if held:
            per_ip = _hourly_money(prices, scope.region, "vpc", "public_ipv4_idle_hour")
            money = _Money(
                None if per_ip.monthly is None else per_ip.monthly * len(held),
                {**per_ip.evidence, "elastic_ip_count": len(held)},
            )
        else:
            money = _Money(0.0, {"price": {"basis": "stopped: no compute billed, no Elastic IP held"}})
        out.append(_zombie(scope, iid, "ec2_instance", CHECK_STOPPED_INSTANCE, money, evidence, status))
    return out


def stopped_instance_ids(instances: Sequence[Mapping[str, Any]], now: datetime, days: int) -> list[str]:
    """Instances stopped at least `days` (known stop time): the ones whose volumes are worth listing."""
    out = []
    for inst in instances:
        age = _age_days(stopped_since(inst), now)
        if _state(inst) == "stopped" and age is not None and age >= days:
            out.append(str(inst.get("InstanceId")))
    return out


def stopped_instance_volumes(
    scope: Scope,
    instances: Sequence[Mapping[str, Any]],
    volumes: Sequence[Mapping[str, Any]],
    now: datetime,
    thresholds: CheckThresholds,
    prices: PriceTable,
) -> list[Zombie]:
    """Volumes attached to instances stopped for at least `stopped_volume_days`."""
    stopped = {str(i.get("InstanceId")): i for i in instances if _state(i) == "stopped"}
    out: list[Zombie] = []
    for vol in volumes:
        owner = next(
            (att.get("InstanceId") for att in vol.get("Attachments") or () if att.get("InstanceId") in stopped), None
        )
        if owner is None:
            continue
        since = stopped_since(stopped[owner])
        days = _age_days(since, now)
        if days is None or days < thresholds.stopped_volume_days:
            continue
        evidence = {
            "instance": owner,
            "instance_state": "stopped",
            "stopped_since": _iso(since),
            "stopped_days": round(days, 2),
            "threshold_days": thresholds.stopped_volume_days,
            "size_gib": vol.get("Size"),
            "volume_type": vol.get("VolumeType"),
        }
        money = _volume_money(prices, scope.region, vol)
        out.append(
            _zombie(scope, str(vol.get("VolumeId")), "ebs_volume", CHECK_STOPPED_INSTANCE_VOLUME, money, evidence)
        )
    return out


# -- metric-judged compute ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Rule:
    """One series and how it is judged: the daily `aggregate` (max over the window's days) at or below `limit`."""

    query: MetricQuery
    limit: float
    unit: str


def _daily(series: MetricSeries, window: MetricWindow) -> dict[datetime, float]:
    """Values inside the window by timestamp (several series are added per day by the caller)."""
    out: dict[datetime, float] = {}
    for t, v in zip(series.timestamps, series.values, strict=False):
        if window.start <= t < window.end:
            out[t] = out.get(t, 0.0) + v
    return out


def _judge(
    scope: Scope,
    resource_id: str,
    resource_type: str,
    check: str,
    created: datetime | None,
    rules: Sequence[tuple[str, Sequence[_Rule]]],
    series: Mapping[str, MetricSeries] | Unavailable,
    window: MetricWindow,
    money: _Money,
    extra: Mapping[str, Any],
) -> Zombie | None:
    """Idle when, for every named measure, the largest day (its series added together) is at or below its limit.

    `rules`: (measure name, the series that add up to it). Traffic on any measure above its limit = in use.
    """
    evidence: dict[str, Any] = {"created": _iso(created), **extra, "metrics": []}
    if isinstance(series, Unavailable):
        evidence["unknown_because"] = [f"{series.operation}: {series.code}"]
        return _zombie(scope, resource_id, resource_type, check, money, evidence, "unknown")
    incomplete: list[str] = []
    busy = False
    for measure, parts in rules:
        days: dict[datetime, float] = {}
        for rule in parts:
            got = series.get(rule.query.key, MetricSeries())
            if not got.complete:
                incomplete.append(f"GetMetricData: {got.status}")
            for t, v in _daily(got, window).items():
                days[t] = days.get(t, 0.0) + v
        peak = max(days.values(), default=0.0)
        limit = parts[0].limit
        evidence["metrics"].append(
            {
                "measure": measure,
                "series": [
                    {"namespace": r.query.namespace, "name": r.query.metric, "statistic": r.query.stat,
                     "dimensions": dict(r.query.dimensions)}
                    for r in parts
                ],
                "unit": parts[0].unit,
                "period_seconds": window.period_seconds,
                "window_start": _iso(window.start),
                "window_end": _iso(window.end),
                "datapoints": len(days),
                "expected_datapoints": window.periods,
                "absent_datapoints": max(0, window.periods - len(days)),
                "daily_values": [days[t] for t in sorted(days)],
                "peak_day": peak,
                "idle_at_most": limit,
            }
        )
        busy = busy or peak > limit
    if busy:
        return None
    if incomplete:
        evidence["unknown_because"] = sorted(set(incomplete))
        return _zombie(scope, resource_id, resource_type, check, money, evidence, "unknown")
    if created is None or created > window.start:
        evidence["insufficient_history"] = True
        return _zombie(scope, resource_id, resource_type, check, money, evidence, "insufficient_history")
    for metric in evidence["metrics"]:
        metric["absent_counted_as_zero"] = metric["absent_datapoints"] > 0
    return _zombie(scope, resource_id, resource_type, check, money, evidence, "zombie")


def _ec2_rules(iid: str, thresholds: CheckThresholds) -> list[tuple[str, list[_Rule]]]:
    dims = (("InstanceId", iid),)
    return [
        ("cpu_percent_daily_average",
         [_Rule(MetricQuery(f"{iid}|cpu", "AWS/EC2", "CPUUtilization", dims, "Average"), thresholds.ec2_cpu_percent,
                "Percent")]),
        ("network_bytes_per_day",
         [_Rule(MetricQuery(f"{iid}|in", "AWS/EC2", "NetworkIn", dims, "Sum"), thresholds.ec2_network_bytes_per_day,
                "Bytes"),
          _Rule(MetricQuery(f"{iid}|out", "AWS/EC2", "NetworkOut", dims, "Sum"), thresholds.ec2_network_bytes_per_day,
                "Bytes")]),
    ]


def _running(instances: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [i for i in instances if _state(i) == "running" and i.get("InstanceId")]


def ec2_metric_queries(instances: Sequence[Mapping[str, Any]], thresholds: CheckThresholds) -> list[MetricQuery]:
    """Three series per running instance: CPU average, NetworkIn and NetworkOut sums."""
    return [
        r.query for i in _running(instances) for _, rules in _ec2_rules(str(i["InstanceId"]), thresholds) for r in rules
    ]


def idle_ec2_instances(
    scope: Scope,
    instances: Sequence[Mapping[str, Any]],
    series: Mapping[str, MetricSeries] | Unavailable,
    window: MetricWindow,
    thresholds: CheckThresholds,
    prices: PriceTable,
) -> list[Zombie]:
    out: list[Zombie] = []
    for inst in _running(instances):
        iid = str(inst["InstanceId"])
        itype = str(inst.get("InstanceType") or "")
        money = _hourly_money(prices, scope.region, "ec2", itype)
        basis = "on-demand Linux, shared tenancy; EBS excluded"
        money = _Money(money.monthly, {**money.evidence, "price_basis": basis})
        extra = {"instance_type": itype, "launched": _iso(as_datetime(inst.get("LaunchTime")))}
        found = _judge(
            scope, iid, "ec2_instance", CHECK_IDLE_EC2, as_datetime(inst.get("LaunchTime")),
            _ec2_rules(iid, thresholds), series, window, money, extra,
        )
        if found is not None:
            out.append(found)
    return out


def _rds_live(databases: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [d for d in databases if d.get("DBInstanceStatus") == "available" and d.get("DBInstanceIdentifier")]


def _rds_rules(name: str, thresholds: CheckThresholds) -> list[tuple[str, list[_Rule]]]:
    query = MetricQuery(f"{name}|conn", "AWS/RDS", "DatabaseConnections", (("DBInstanceIdentifier", name),), "Maximum")
    return [("connections_daily_maximum", [_Rule(query, thresholds.rds_idle_connections, "Count")])]


def rds_metric_queries(databases: Sequence[Mapping[str, Any]], thresholds: CheckThresholds) -> list[MetricQuery]:
    return [
        r.query for d in _rds_live(databases) for _, rules in _rds_rules(str(d["DBInstanceIdentifier"]), thresholds)
        for r in rules
    ]


def _rds_money(prices: PriceTable, region: str, db: Mapping[str, Any]) -> _Money:
    db_class = str(db.get("DBInstanceClass") or "")
    key = engine_key(db.get("Engine"), db.get("LicenseModel"))
    aurora = bool(key and key.startswith("aurora"))
    copies = 2 if db.get("MultiAZ") and not aurora else 1
    sku = f"{db_class}|{key}"
    fact = _fact(prices, region, "rds", sku)
    if fact is None or key is None:
        return _Money(None, {"price": {"service": "rds", "sku": sku, "missing": True}})
    hours = prices.hours_per_month
    total = fact.price * hours * copies
    parts = [_price_evidence(prices, fact, hours * copies, "instance-hours/month")]
    storage = _num(db.get("AllocatedStorage"))
    stype = _RDS_STORAGE.get(str(db.get("StorageType") or "gp2").lower())
    if storage and stype and not aurora:
        sfact = _fact(prices, region, "rds_storage", f"{stype}_gb_month")
        if sfact is None:
            return _Money(None, {"price": {"service": "rds_storage", "sku": f"{stype}_gb_month", "missing": True}})
        total += sfact.price * storage * copies
        parts.append(_price_evidence(prices, sfact, storage * copies, "GiB"))
        iops = _num(db.get("Iops"))
        if stype == "io1" and iops:  # provisioned IOPS bill per month like the storage (twice for Multi-AZ)
            ifact = _fact(prices, region, "rds_storage", "io1_iops_month")
            if ifact is None:
                return _Money(None, {"price": {"service": "rds_storage", "sku": "io1_iops_month", "missing": True}})
            total += ifact.price * iops * copies
            parts.append(_price_evidence(prices, ifact, iops * copies, "IOPS"))
    return _Money(total, {"price": parts[0] if len(parts) == 1 else parts})


def idle_rds_instances(
    scope: Scope,
    databases: Sequence[Mapping[str, Any]],
    series: Mapping[str, MetricSeries] | Unavailable,
    window: MetricWindow,
    thresholds: CheckThresholds,
    prices: PriceTable,
) -> list[Zombie]:
    out: list[Zombie] = []
    for db in _rds_live(databases):
        name = str(db["DBInstanceIdentifier"])
        rid = str(db.get("DBInstanceArn") or rds_instance(scope.region, scope.account_id, name))
        created = as_datetime(db.get("InstanceCreateTime"))
        extra = {
            "name": name,
            "instance_class": db.get("DBInstanceClass"),
            "engine": db.get("Engine"),
            "multi_az": bool(db.get("MultiAZ")),
            "allocated_storage_gib": db.get("AllocatedStorage"),
        }
        found = _judge(
            scope, rid, "rds_instance", CHECK_IDLE_RDS, created, _rds_rules(name, thresholds), series, window,
            _rds_money(prices, scope.region, db), extra,
        )
        if found is not None:
            out.append(found)
    return out
