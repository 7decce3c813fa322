"""Zombie checks (pure): decide, from API responses already fetched, which resources bill but do nothing.

Every check takes the boto3-shaped responses (dicts as boto3 returns them; datetimes may also be ISO-8601
strings), the frozen clock `now`, the tenant's `CheckThresholds` and the price table, and returns `Zombie`
values. Nothing here calls AWS, reads a clock or deletes anything: `scan.py` fetches, these decide.

Statuses:
* `zombie` - bills and does nothing by the check's rule; `monthly_waste_usd` is what deleting it saves.
* `insufficient_history` - younger than the metric lookback and no traffic seen yet: not judged (R13, R14).
* `unknown` - a call the decision needs was denied or failed, so it cannot be called a zombie (R11).
The dollar figure is computed for every status (what it costs if it is a zombie); totals of waste must count
status `zombie` only. An unknown price gives `monthly_waste_usd=None`, never 0.

Metric-based checks (NAT gateways, load balancers): CloudWatch publishes nothing for a period without traffic
(RequestCount of an idle ELB is absent, not 0 - R14), so absent datapoints count as zero, but only for a resource
that existed for the whole lookback window; a younger one without traffic is `insufficient_history`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from schemas.events import Dd0cError
from streams.normalize.ids import classic_load_balancer
from streams.prices.table import PriceFact, PriceTable

Status = Literal["zombie", "insufficient_history", "unknown"]

CHECK_UNATTACHED_VOLUME = "unattached_ebs_volume"
CHECK_ORPHANED_SNAPSHOT = "orphaned_ebs_snapshot"
CHECK_UNASSOCIATED_EIP = "unassociated_eip"
CHECK_IDLE_NAT = "idle_nat_gateway"
CHECK_IDLE_LB = "idle_load_balancer"
# Instance and database checks live in pure_compute.py.
CHECK_STOPPED_INSTANCE = "stopped_instance"
CHECK_STOPPED_INSTANCE_VOLUME = "stopped_instance_volume"
CHECK_IDLE_EC2 = "idle_ec2_instance"
CHECK_IDLE_RDS = "idle_rds_instance"
# The order scan.py runs them in, per region.
ALL_CHECKS: tuple[str, ...] = (
    CHECK_UNATTACHED_VOLUME,
    CHECK_ORPHANED_SNAPSHOT,
    CHECK_UNASSOCIATED_EIP,
    CHECK_IDLE_NAT,
    CHECK_IDLE_LB,
    CHECK_STOPPED_INSTANCE,
    CHECK_STOPPED_INSTANCE_VOLUME,
    CHECK_IDLE_EC2,
    CHECK_IDLE_RDS,
)

# EBS volume types the price table knows as `<type>_gb_month`.
VOLUME_TYPES = frozenset({"gp2", "gp3", "io1", "io2", "st1", "sc1", "standard"})
GP3_FREE_IOPS = 3000
GP3_FREE_THROUGHPUT = 125
# Snapshot copies and some AMI snapshots carry this placeholder instead of a real source volume.
NO_VOLUME = "vol-ffffffff"
_AMI_IN_TEXT = re.compile(r"\bami-[0-9a-f]{8,17}\b")


class ZombieError(Dd0cError):
    """A zombie-hunter bug or an unusable configuration (bad threshold mapping)."""


@dataclass(frozen=True, slots=True)
class CheckThresholds:
    """Every threshold of the hunt, one frozen object per tenant; keys a tenant leaves out keep these defaults."""

    # An available (unattached) volume is a zombie once it is this old. EBS keeps no detach time, so the age is
    # counted from CreateTime; a week leaves room for volumes detached on purpose for a short migration.
    unattached_volume_days: int = 7
    # A completed snapshot whose volume is gone and that no AMI or launch template uses is a zombie from this age
    # (younger ones are usually the current backup rotation).
    snapshot_age_days: int = 90
    # Traffic lookback of NAT gateways: BytesOutToDestination summed over this window; at or below
    # `nat_idle_bytes` is idle. Any use of a NAT (even a TCP handshake) sends bytes to a destination.
    nat_lookback_days: int = 14
    nat_idle_bytes: float = 0.0
    # Request lookback of load balancers: RequestCount (CLB, ALB) / NewFlowCount (NLB, GWLB) at or below
    # `lb_idle_requests` over the window is idle. Registered backends do not count as use (R14).
    lb_lookback_days: int = 14
    lb_idle_requests: float = 0.0
    # An instance stopped at least this long (stop time read from StateTransitionReason) is a zombie; so are the
    # volumes attached to an instance stopped at least `stopped_volume_days` (they bill while it sleeps).
    stopped_instance_days: int = 30
    stopped_volume_days: int = 30
    # Running EC2 instances over this lookback: idle when every daily CPUUtilization average is at or below
    # `ec2_cpu_percent` and every day's NetworkIn + NetworkOut is at or below `ec2_network_bytes_per_day`
    # (the shape of the usual "low utilization" advice: a few % CPU and a few MB of traffic a day).
    ec2_lookback_days: int = 14
    ec2_cpu_percent: float = 5.0
    ec2_network_bytes_per_day: float = 5_000_000.0
    # RDS instances over this lookback: idle when the daily maximum of DatabaseConnections never exceeds this.
    rds_lookback_days: int = 14
    rds_idle_connections: float = 0.0
    # CloudWatch period of the metric queries; daily keeps one datapoint per day of the window.
    metric_period_seconds: int = 86400

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> CheckThresholds:
        """A tenant's stored thresholds (JSONB mapping); unknown keys and wrong types raise ZombieError."""
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, raw in data.items():
            if key not in known:
                raise ZombieError(f"zombie thresholds: unknown key {key!r}")
            default = getattr(cls(), key)
            if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw) or raw < 0:
                raise ZombieError(f"zombie thresholds: {key} must be a finite non-negative number, got {raw!r}")
            if isinstance(default, int) and raw != int(raw):
                raise ZombieError(f"zombie thresholds: {key} must be a whole number, got {raw!r}")
            values[key] = type(default)(raw)
        out = cls(**values)
        if out.metric_period_seconds < 60 or out.metric_period_seconds % 60:
            raise ZombieError("zombie thresholds: metric_period_seconds must be a multiple of 60")
        return out


@dataclass(frozen=True, slots=True)
class Scope:
    """Where a batch of responses came from: every zombie found in it carries these."""

    tenant: str
    account_id: str
    region: str


@dataclass(frozen=True, slots=True)
class Zombie:
    tenant: str
    account_id: str
    region: str
    resource_id: str
    resource_type: str
    check: str
    monthly_waste_usd: float | None
    evidence: Mapping[str, Any]
    status: Status = "zombie"


@dataclass(frozen=True, slots=True)
class Unavailable:
    """A response the decision needed but could not get (the call was denied or failed): decide `unknown`."""

    operation: str
    code: str


@dataclass(frozen=True, slots=True)
class MetricWindow:
    start: datetime
    end: datetime
    period_seconds: int

    @property
    def periods(self) -> int:
        return int((self.end - self.start).total_seconds() // self.period_seconds)


@dataclass(frozen=True, slots=True)
class MetricQuery:
    """One CloudWatch series to ask for: `key` is the resource id the answer belongs to."""

    key: str
    namespace: str
    metric: str
    dimensions: tuple[tuple[str, str], ...]
    stat: str = "Sum"


@dataclass(frozen=True, slots=True)
class MetricSeries:
    """What CloudWatch answered for one query. `complete=False`: the answer is partial or failed (-> unknown)."""

    timestamps: tuple[datetime, ...] = ()
    values: tuple[float, ...] = ()
    complete: bool = True
    status: str = "Complete"


@dataclass(frozen=True, slots=True)
class _Money:
    monthly: float | None
    evidence: Mapping[str, Any] = field(default_factory=dict)


# -- shared helpers ---------------------------------------------------------------------------------------


def as_datetime(value: Any) -> datetime | None:
    """boto3 gives datetimes; recorded fixtures and some string fields (Image.CreationDate) give ISO-8601."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def _age_days(created: datetime | None, now: datetime) -> float | None:
    return None if created is None else (now - created).total_seconds() / 86400.0


def metric_window(now: datetime, lookback_days: int, period_seconds: int) -> MetricWindow:
    """The lookback ending at the last whole period before `now` (CloudWatch aligns periods to the epoch)."""
    epoch = int(now.timestamp())
    end = datetime.fromtimestamp(epoch - epoch % period_seconds, tz=UTC)
    return MetricWindow(end - timedelta(days=lookback_days), end, period_seconds)


def _fact(prices: PriceTable, region: str, service: str, sku: str) -> PriceFact | None:
    # The labelled regional estimate is accepted (EBS/ELB only have us-east-1 data); the evidence says so.
    found = prices.lookup_with_fallback(service, region, sku)
    return found if isinstance(found, PriceFact) else None


def _price_evidence(prices: PriceTable, fact: PriceFact, quantity: float, unit: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "service": fact.service,
        "sku": fact.sku,
        "unit_price_usd": fact.price,
        "quantity": quantity,
        "unit": unit,
        "source": fact.source,
    }
    # the source id alone ("I-ebs_volume_test") means nothing to a reader: say where the price was read, and when
    origin = prices.sources.get(fact.source) or {}
    if origin.get("source"):
        out["source_ref"] = origin["source"]
    if origin.get("data_date"):
        out["source_date"] = origin["data_date"]
    if fact.estimated:
        out.update(estimated=True, reference_region=fact.reference_region, factor=fact.factor)
    return out


def _hourly_money(prices: PriceTable, region: str, service: str, sku: str) -> _Money:
    fact = _fact(prices, region, service, sku)
    if fact is None:
        return _Money(None, {"price": {"service": service, "sku": sku, "missing": True}})
    hours = prices.hours_per_month
    return _Money(fact.price * hours, {"price": _price_evidence(prices, fact, hours, "hours/month")})


def _monthly_money(prices: PriceTable, region: str, items: Sequence[tuple[str, float, str]]) -> _Money:
    """Sum of quantity x USD/unit-month over `(sku, quantity, unit)` from the `ebs` service; any miss -> None."""
    total = 0.0
    parts: list[dict[str, Any]] = []
    for sku, quantity, unit in items:
        if quantity <= 0 and parts:  # a free extra (gp3 baseline IOPS) needs no price
            continue
        fact = _fact(prices, region, "ebs", sku)
        if fact is None:
            return _Money(None, {"price": {"service": "ebs", "sku": sku, "missing": True}})
        total += fact.price * quantity
        parts.append(_price_evidence(prices, fact, quantity, unit))
    return _Money(total, {"price": parts[0] if len(parts) == 1 else parts})


def _zombie(
    scope: Scope,
    resource_id: str,
    resource_type: str,
    check: str,
    money: _Money,
    evidence: Mapping[str, Any],
    status: Status = "zombie",
) -> Zombie:
    return Zombie(
        tenant=scope.tenant,
        account_id=scope.account_id,
        region=scope.region,
        resource_id=resource_id,
        resource_type=resource_type,
        check=check,
        monthly_waste_usd=money.monthly,
        evidence={**evidence, **money.evidence},
        status=status,
    )


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


# -- EBS volumes ------------------------------------------------------------------------------------------


def _volume_money(prices: PriceTable, region: str, volume: Mapping[str, Any]) -> _Money:
    """Monthly price of a volume: GiB x $/GB-month plus provisioned IOPS / throughput (as the catalog does)."""
    vtype = str(volume.get("VolumeType") or "gp2").lower()
    size = _num(volume.get("Size"))
    if vtype not in VOLUME_TYPES or size is None:
        return _Money(None, {"price": {"service": "ebs", "sku": f"{vtype}_gb_month", "missing": True}})
    items: list[tuple[str, float, str]] = [(f"{vtype}_gb_month", size, "GiB")]
    iops = _num(volume.get("Iops")) or 0.0
    if vtype == "gp3":
        throughput = _num(volume.get("Throughput")) or 0.0
        items.append(("gp3_iops_month_above_3000", max(0.0, iops - GP3_FREE_IOPS), "IOPS"))
        items.append(("gp3_throughput_mibps_month_above_125", max(0.0, throughput - GP3_FREE_THROUGHPUT), "MiB/s"))
    elif vtype in ("io1", "io2"):
        items.append((f"{vtype}_iops_month", iops, "IOPS"))
    return _monthly_money(prices, region, items)


def unattached_volumes(
    scope: Scope,
    volumes: Sequence[Mapping[str, Any]],
    now: datetime,
    thresholds: CheckThresholds,
    prices: PriceTable,
) -> list[Zombie]:
    """Volumes in state `available` with no attachment, at least `unattached_volume_days` old."""
    out: list[Zombie] = []
    for vol in volumes:
        if vol.get("State") != "available" or vol.get("Attachments"):
            continue
        created = as_datetime(vol.get("CreateTime"))
        age = _age_days(created, now)
        if age is None or age < thresholds.unattached_volume_days:
            continue  # too young (or no date): possibly detached on purpose a moment ago
        evidence = {
            "state": "available",
            "attachments": 0,
            "created": _iso(created),
            "age_days": round(age, 2),
            "threshold_days": thresholds.unattached_volume_days,
            "size_gib": vol.get("Size"),
            "volume_type": vol.get("VolumeType"),
        }
        money = _volume_money(prices, scope.region, vol)
        out.append(_zombie(scope, str(vol.get("VolumeId")), "ebs_volume", CHECK_UNATTACHED_VOLUME, money, evidence))
    return out


# -- EBS snapshots ----------------------------------------------------------------------------------------


def old_snapshots(
    snapshots: Sequence[Mapping[str, Any]], now: datetime, thresholds: CheckThresholds
) -> list[Mapping[str, Any]]:
    """Completed snapshots at least `snapshot_age_days` old: the only ones worth the follow-up calls."""
    out = []
    for snap in snapshots:
        age = _age_days(as_datetime(snap.get("StartTime")), now)
        if snap.get("State") == "completed" and age is not None and age >= thresholds.snapshot_age_days:
            out.append(snap)
    return out


def snapshot_source_volumes(snapshots: Sequence[Mapping[str, Any]]) -> list[str]:
    """The real source volume ids of `snapshots`, in order, once each (what DescribeVolumes must look for)."""
    seen: dict[str, None] = {}
    for snap in snapshots:
        vid = snap.get("VolumeId")
        if isinstance(vid, str) and vid and vid != NO_VOLUME:
            seen.setdefault(vid, None)
    return list(seen)


def _snapshot_users(
    images: Sequence[Mapping[str, Any]], template_versions: Sequence[Mapping[str, Any]]
) -> dict[str, str]:
    """snapshot id -> what uses it (`ami-...` incl. disabled AMIs, or `lt-...:vN`)."""
    users: dict[str, str] = {}
    for image in images:
        for bdm in image.get("BlockDeviceMappings") or ():
            sid = (bdm.get("Ebs") or {}).get("SnapshotId")
            if sid:
                users.setdefault(sid, f"{image.get('ImageId')} ({image.get('State', '?')})")
    for version in template_versions:
        data = version.get("LaunchTemplateData") or {}
        for bdm in data.get("BlockDeviceMappings") or ():
            sid = (bdm.get("Ebs") or {}).get("SnapshotId")
            if sid:
                users.setdefault(sid, f"{version.get('LaunchTemplateId')}:v{version.get('VersionNumber')}")
    return users


def orphaned_snapshots(
    scope: Scope,
    snapshots: Sequence[Mapping[str, Any]],
    volumes: Sequence[Mapping[str, Any]] | Unavailable,
    images: Sequence[Mapping[str, Any]] | Unavailable,
    template_versions: Sequence[Mapping[str, Any]] | Unavailable,
    now: datetime,
    thresholds: CheckThresholds,
    prices: PriceTable,
) -> list[Zombie]:
    """Old completed snapshots whose source volume is gone and that no AMI (disabled ones included, R11) nor
    launch template uses.

    `volumes`: DescribeVolumes for the snapshots' source volume ids; `images`: DescribeImages(Owners=[self],
    IncludeDisabled=True) - a plain DescribeImages hides disabled AMIs, whose snapshots are still in use;
    `template_versions`: the latest/default launch template versions. When any of them is `Unavailable` a
    candidate cannot be cleared, so it is `unknown`, never `zombie`. Price: full volume size x the standard
    snapshot rate, an upper bound (snapshots are incremental).
    """
    candidates = old_snapshots(snapshots, now, thresholds)
    live_volumes = None if isinstance(volumes, Unavailable) else {v.get("VolumeId") for v in volumes}
    users = _snapshot_users(
        () if isinstance(images, Unavailable) else images,
        () if isinstance(template_versions, Unavailable) else template_versions,
    )
    out: list[Zombie] = []
    for snap in candidates:
        sid = str(snap.get("SnapshotId"))
        vid = snap.get("VolumeId")
        if sid in users:
            continue
        if live_volumes is not None and vid in live_volumes:
            continue  # a backup of a volume that still exists is a backup, not a leftover
        started = as_datetime(snap.get("StartTime"))
        evidence: dict[str, Any] = {
            "created": _iso(started),
            "age_days": round(_age_days(started, now) or 0.0, 2),
            "threshold_days": thresholds.snapshot_age_days,
            "size_gib": snap.get("VolumeSize"),
            "storage_tier": snap.get("StorageTier", "standard"),
            "source_volume": vid,
            "source_volume_exists": None if live_volumes is None else False,
            "used_by_ami": None if isinstance(images, Unavailable) else False,
            "used_by_launch_template": None if isinstance(template_versions, Unavailable) else False,
            "amis_listed_with_include_disabled": not isinstance(images, Unavailable),
        }
        blockers = [u for u in (volumes, images, template_versions) if isinstance(u, Unavailable)]
        status: Status = "zombie"
        if blockers:
            status = "unknown"
            evidence["unknown_because"] = [f"{b.operation}: {b.code}" for b in blockers]
            mentioned = _AMI_IN_TEXT.search(str(snap.get("Description") or ""))
            if mentioned:
                evidence["mentions_ami"] = mentioned.group(0)
        tier = str(snap.get("StorageTier") or "standard").lower()
        size = _num(snap.get("VolumeSize"))
        if size is None:
            money = _Money(None, {"price": {"service": "ebs", "sku": f"snapshot_{tier}_gb_month", "missing": True}})
        else:
            money = _monthly_money(prices, scope.region, [(f"snapshot_{tier}_gb_month", size, "GiB")])
            evidence["price_basis"] = "full_volume_size_ceiling"
        out.append(_zombie(scope, sid, "ebs_snapshot", CHECK_ORPHANED_SNAPSHOT, money, evidence, status))
    return out


# -- Elastic IPs ------------------------------------------------------------------------------------------


def unassociated_eips(
    scope: Scope,
    addresses: Sequence[Mapping[str, Any]],
    nat_gateways: Sequence[Mapping[str, Any]] | Unavailable,
    prices: PriceTable,
) -> list[Zombie]:
    """Elastic IPs with no association. Held by an instance, an ENI, a NAT gateway (listed among the NAT's
    addresses even when the address itself shows no association) or a service (`ServiceManaged`) = in use.
    When the NAT gateways could not be listed, an address without association is `unknown`.
    Priced as an idle public IPv4 address-hour x 730."""
    held_by_nat: dict[str, str] = {}
    if not isinstance(nat_gateways, Unavailable):
        for nat in nat_gateways:
            if nat.get("State") in ("deleted", "failed"):
                continue
            for addr in nat.get("NatGatewayAddresses") or ():
                for key in ("AllocationId", "PublicIp"):
                    if addr.get(key):
                        held_by_nat[str(addr[key])] = str(nat.get("NatGatewayId"))
    out: list[Zombie] = []
    for addr in addresses:
        if any(addr.get(k) for k in ("AssociationId", "InstanceId", "NetworkInterfaceId", "ServiceManaged")):
            continue
        alloc, ip = addr.get("AllocationId"), addr.get("PublicIp")
        if (alloc and alloc in held_by_nat) or (ip and ip in held_by_nat):
            continue
        evidence: dict[str, Any] = {
            "public_ip": ip,
            "association": None,
            "instance": None,
            "network_interface": None,
            "domain": addr.get("Domain"),
        }
        status: Status = "zombie"
        if isinstance(nat_gateways, Unavailable):
            status = "unknown"
            evidence["unknown_because"] = [f"{nat_gateways.operation}: {nat_gateways.code}"]
        money = _hourly_money(prices, scope.region, "vpc", "public_ipv4_idle_hour")
        rid = str(alloc or ip)
        out.append(_zombie(scope, rid, "elastic_ip", CHECK_UNASSOCIATED_EIP, money, evidence, status))
    return out


# -- metric-judged resources ------------------------------------------------------------------------------


def _judge_traffic(
    scope: Scope,
    resource_id: str,
    resource_type: str,
    check: str,
    created: datetime | None,
    query: MetricQuery,
    series: Mapping[str, MetricSeries] | Unavailable,
    window: MetricWindow,
    idle_at_most: float,
    money: _Money,
) -> Zombie | None:
    evidence: dict[str, Any] = {
        "created": _iso(created),
        "metric": {
            "namespace": query.namespace,
            "name": query.metric,
            "dimensions": dict(query.dimensions),
            "statistic": query.stat,
            "period_seconds": window.period_seconds,
            "window_start": _iso(window.start),
            "window_end": _iso(window.end),
        },
    }
    if isinstance(series, Unavailable):
        evidence["unknown_because"] = [f"{series.operation}: {series.code}"]
        return _zombie(scope, resource_id, resource_type, check, money, evidence, "unknown")
    got = series.get(query.key, MetricSeries())
    inside = [v for t, v in zip(got.timestamps, got.values, strict=False) if window.start <= t < window.end]
    # Timestamps are optional in hand-built series; then every value counts.
    values = inside if got.timestamps else list(got.values)
    total = float(sum(values))
    evidence["metric"].update(
        datapoints=len(values),
        expected_datapoints=window.periods,
        absent_datapoints=max(0, window.periods - len(values)),
        total=total,
        values=values,
        idle_at_most=idle_at_most,
    )
    if total > idle_at_most:
        return None  # traffic seen: in use, whatever its age
    if not got.complete:
        evidence["unknown_because"] = [f"GetMetricData: {got.status}"]
        return _zombie(scope, resource_id, resource_type, check, money, evidence, "unknown")
    if created is None or created > window.start:
        # No traffic yet, but it did not exist for the whole window: absent data proves nothing (R13, R14).
        evidence["insufficient_history"] = True
        return _zombie(scope, resource_id, resource_type, check, money, evidence, "insufficient_history")
    evidence["metric"]["absent_counted_as_zero"] = evidence["metric"]["absent_datapoints"] > 0
    return _zombie(scope, resource_id, resource_type, check, money, evidence, "zombie")


def nat_metric_queries(nat_gateways: Sequence[Mapping[str, Any]]) -> list[MetricQuery]:
    """One BytesOutToDestination series per available NAT gateway (deleted / failed / pending ones are skipped)."""
    return [
        MetricQuery(
            str(nat["NatGatewayId"]),
            "AWS/NATGateway",
            "BytesOutToDestination",
            (("NatGatewayId", str(nat["NatGatewayId"])),),
        )
        for nat in nat_gateways
        if nat.get("State") == "available" and nat.get("NatGatewayId")
    ]


def idle_nat_gateways(
    scope: Scope,
    nat_gateways: Sequence[Mapping[str, Any]],
    series: Mapping[str, MetricSeries] | Unavailable,
    window: MetricWindow,
    thresholds: CheckThresholds,
    prices: PriceTable,
) -> list[Zombie]:
    """NAT gateways judged by their own traffic only - never by EC2 instances in their subnet (R13: Lambda and
    other private-subnet users leave no instance behind). Priced as NAT gateway-hours x 730 (+0 data processed)."""
    by_id = {str(n.get("NatGatewayId")): n for n in nat_gateways}
    out: list[Zombie] = []
    for query in nat_metric_queries(nat_gateways):
        nat = by_id[query.key]
        money = _hourly_money(prices, scope.region, "nat", "nat_gateway_hour")
        found = _judge_traffic(
            scope,
            query.key,
            "nat_gateway",
            CHECK_IDLE_NAT,
            as_datetime(nat.get("CreateTime")),
            query,
            series,
            window,
            thresholds.nat_idle_bytes,
            money,
        )
        if found is not None:
            out.append(found)
    return out


# Load balancer type -> (price sku, CloudWatch namespace, metric of use).
_LB_KINDS: Mapping[str, tuple[str, str, str]] = {
    "classic": ("clb_hour", "AWS/ELB", "RequestCount"),
    "application": ("alb_hour", "AWS/ApplicationELB", "RequestCount"),
    "network": ("nlb_hour", "AWS/NetworkELB", "NewFlowCount"),
    "gateway": ("gwlb_hour", "AWS/GatewayELB", "NewFlowCount"),
}


@dataclass(frozen=True, slots=True)
class _Lb:
    resource_id: str
    name: str
    kind: str
    created: datetime | None
    query: MetricQuery
    backends: int | None


def _load_balancers(scope: Scope, classic: Sequence[Mapping[str, Any]], v2: Sequence[Mapping[str, Any]]) -> list[_Lb]:
    # Ids as the resources ledger builds them: the ARN (a classic LB has none in the API: the same synthesized one).
    out: list[_Lb] = []
    for lb in classic:
        name = str(lb.get("LoadBalancerName"))
        _, ns, metric = _LB_KINDS["classic"]
        rid = classic_load_balancer(scope.region, scope.account_id, name)
        query = MetricQuery(rid, ns, metric, (("LoadBalancerName", name),))
        created = as_datetime(lb.get("CreatedTime"))
        out.append(_Lb(rid, name, "classic", created, query, len(lb.get("Instances") or ())))
    for lb in v2:
        kind = str(lb.get("Type") or "application")
        state = (lb.get("State") or {}).get("Code", "active")
        arn = str(lb.get("LoadBalancerArn") or "")
        if kind not in _LB_KINDS or state not in ("active", "active_impaired") or ":loadbalancer/" not in arn:
            continue
        _, ns, metric = _LB_KINDS[kind]
        # The CloudWatch dimension is the ARN's tail: app/<name>/<id> (net/..., gwy/...).
        query = MetricQuery(arn, ns, metric, (("LoadBalancer", arn.split(":loadbalancer/", 1)[1]),))
        name = str(lb.get("LoadBalancerName") or arn.rsplit("/", 2)[-2])
        out.append(_Lb(arn, name, kind, as_datetime(lb.get("CreatedTime")), query, None))
    return out


def lb_metric_queries(
    scope: Scope, classic: Sequence[Mapping[str, Any]], v2: Sequence[Mapping[str, Any]]
) -> list[MetricQuery]:
    """One usage series per load balancer: classic first, then ALB / NLB / GWLB, each in response order."""
    return [lb.query for lb in _load_balancers(scope, classic, v2)]


def idle_load_balancers(
    scope: Scope,
    classic: Sequence[Mapping[str, Any]],
    v2: Sequence[Mapping[str, Any]],
    series: Mapping[str, MetricSeries] | Unavailable,
    window: MetricWindow,
    thresholds: CheckThresholds,
    prices: PriceTable,
) -> list[Zombie]:
    """Load balancers with no requests (flows for NLB / GWLB) over the lookback. Registered instances do not make
    one used (R14: `legacy-web` has a backend and no requests). Classic ones are identified by name, the others by
    ARN. Priced as LB-hours x 730 (LCU charges are 0 when idle)."""
    out: list[Zombie] = []
    for lb in _load_balancers(scope, classic, v2):
        sku = _LB_KINDS[lb.kind][0]
        money = _hourly_money(prices, scope.region, "elb", sku)
        found = _judge_traffic(
            scope,
            lb.resource_id,
            "load_balancer",
            CHECK_IDLE_LB,
            lb.created,
            lb.query,
            series,
            window,
            thresholds.lb_idle_requests,
            money,
        )
        if found is not None:
            extra: dict[str, Any] = {"name": lb.name, "load_balancer_type": lb.kind}
            if lb.backends is not None:
                extra["registered_instances"] = lb.backends
            out.append(_with_evidence(found, **extra))
    return out


def _with_evidence(z: Zombie, **extra: Any) -> Zombie:
    return replace(z, evidence={**z.evidence, **extra})


def only_zombies(found: Collection[Zombie]) -> list[Zombie]:
    """The report proper: status `zombie` only (not `insufficient_history` / `unknown`)."""
    return [z for z in found if z.status == "zombie"]
