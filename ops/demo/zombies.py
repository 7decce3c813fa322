"""The demo's zombies: five made-up leftovers across the demo accounts, appended to the log as a made-up scan.

The demo has no AWS account to scan, so it hands the hunter's own pure checks (streams/zombies/pure.py)
boto3-shaped responses it makes up: a describe result and, for the metric-judged ones, fourteen daily datapoints
of zero. The checks decide, price (the shipped price table, as the hunter does) and write the evidence; this
module only marks every zombie as synthetic and turns it into a log entry with `events.detected_entry`. The
worker then folds them into the `zombies` projection like a real scan's, so `GET /v1/zombies` shows them.

What is planted (account = preferred index modulo the number of accounts; ages counted back from the history's
end, which is the detection time; prices from the shipped snapshot, 730 h/month):

  prod     us-east-1  unattached 500 GiB gp3 volume, 60 days old   500 x $0.08/GB-month  = $40.00
  prod     us-east-1  orphaned snapshot of a deleted 200 GiB volume 200 x $0.05/GB-month = $10.00
  staging  us-west-2  idle NAT gateway, no bytes out for 14 days    $0.045/h x 730        = $32.85
  data     us-east-1  idle ALB, no requests and no targets          $0.0225/h x 730       = $16.425
  dev      us-west-2  unassociated Elastic IP                       $0.005/h x 730        = $3.65
                                                                                     total   $102.925

Deterministic: the same accounts and end give the same entries (event ids included), so a re-run of the demo
on a reused history appends only duplicates, which the log drops.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from schemas.events import LogEntry
from streams.prices.table import PriceTable
from streams.zombies import pure
from streams.zombies.events import DETECTED, scan_entries
from streams.zombies.pure import CheckThresholds, MetricSeries, Scope, Zombie
from streams.zombies.scan import ScanResult

SOURCE = "demo:generated"  # the log's source column: these were never found by a scan
SCAN_ID = "demo-generated"
SYNTHETIC = (
    "synthetic: made up by `dd0c-cost demo` (ops/demo/zombies.py) for its generated accounts; "
    "no AWS account was scanned"
)
DAY = timedelta(days=1)


def _hex(*parts: str, length: int = 17) -> str:
    """A stable AWS-looking id suffix (the same demo gives the same ids)."""
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


def _quiet(window: pure.MetricWindow) -> MetricSeries:
    """One datapoint of 0 per period of the window: a resource that CloudWatch saw doing nothing."""
    stamps = tuple(window.start + timedelta(seconds=i * window.period_seconds) for i in range(window.periods))
    return MetricSeries(stamps, tuple(0.0 for _ in stamps))


def _marked(found: Sequence[Zombie], **extra: Any) -> list[Zombie]:
    if len(found) != 1 or found[0].status != "zombie":  # the made-up responses are built to be one zombie each
        raise AssertionError(f"demo zombie not judged a zombie: {found}")
    return [replace(found[0], evidence={**found[0].evidence, **extra, "synthetic": SYNTHETIC})]


def demo_zombies(
    tenant: str,
    accounts: Sequence[Mapping[str, Any]],
    end: datetime,
    prices: PriceTable,
    thresholds: CheckThresholds | None = None,
) -> list[Zombie]:
    """The five demo zombies, judged and priced by the hunter's checks as of `end` (the detection time)."""
    limits = thresholds or CheckThresholds()
    ids = [str(a["account_id"]) for a in accounts]
    if not ids:
        return []

    def account(preferred: int) -> str:
        return ids[preferred % len(ids)]

    out: list[Zombie] = []

    prod = Scope(tenant, account(0), "us-east-1")
    volume = {
        "VolumeId": "vol-" + _hex(prod.account_id, "volume"), "State": "available", "Attachments": [],
        "CreateTime": end - 60 * DAY, "Size": 500, "VolumeType": "gp3", "Iops": 3000, "Throughput": 125,
        "AvailabilityZone": "us-east-1b",
    }
    out += _marked(pure.unattached_volumes(prod, [volume], end, limits, prices),
                   tags={"Name": "reporting-db-data-old"})

    snapshot = {
        "SnapshotId": "snap-" + _hex(prod.account_id, "snapshot"), "VolumeId": "vol-" + _hex(prod.account_id, "gone"),
        "State": "completed", "StartTime": end - 200 * DAY, "VolumeSize": 200, "StorageTier": "standard",
        "Description": "pre-migration backup of the billing database volume",
    }
    # The source volume is gone and no AMI or launch template uses it: empty answers, as DescribeVolumes /
    # DescribeImages(IncludeDisabled) / DescribeLaunchTemplateVersions would give.
    out += _marked(pure.orphaned_snapshots(prod, [snapshot], [], [], [], end, limits, prices))

    staging = Scope(tenant, account(1), "us-west-2")
    nat_id = "nat-" + _hex(staging.account_id, "nat")
    nat = {
        "NatGatewayId": nat_id, "State": "available", "CreateTime": end - 45 * DAY,
        "VpcId": "vpc-" + _hex(staging.account_id, "vpc"), "SubnetId": "subnet-" + _hex(staging.account_id, "subnet"),
        "NatGatewayAddresses": [{"AllocationId": "eipalloc-" + _hex(staging.account_id, "nat-eip"),
                                 "PublicIp": "198.51.100.23"}],
    }
    window = pure.metric_window(end, limits.nat_lookback_days, limits.metric_period_seconds)
    out += _marked(pure.idle_nat_gateways(staging, [nat], {nat_id: _quiet(window)}, window, limits, prices))

    data = Scope(tenant, account(2), "us-east-1")
    suffix = _hex(data.account_id, "alb", length=16)
    alb = {
        "LoadBalancerArn": f"arn:aws:elasticloadbalancing:us-east-1:{data.account_id}:loadbalancer/app/"
                           f"legacy-reports/{suffix}",
        "LoadBalancerName": "legacy-reports", "Type": "application", "State": {"Code": "active"},
        "CreatedTime": end - 120 * DAY, "Scheme": "internet-facing",
    }
    window = pure.metric_window(end, limits.lb_lookback_days, limits.metric_period_seconds)
    out += _marked(
        pure.idle_load_balancers(data, [], [alb], {alb["LoadBalancerArn"]: _quiet(window)}, window, limits, prices),
        target_groups=[{"target_group": f"arn:aws:elasticloadbalancing:us-east-1:{data.account_id}:targetgroup/"
                                         f"legacy-reports/{_hex(data.account_id, 'tg', length=16)}",
                        "registered": 0, "healthy": 0}],
    )

    dev = Scope(tenant, account(3), "us-west-2")
    address = {"AllocationId": "eipalloc-" + _hex(dev.account_id, "eip"), "PublicIp": "203.0.113.77", "Domain": "vpc"}
    out += _marked(pure.unassociated_eips(dev, [address], [], prices))
    return out


def demo_entries(
    tenant: str,
    accounts: Sequence[Mapping[str, Any]],
    end: datetime,
    prices: PriceTable,
    *,
    ingested_at: datetime,
) -> list[LogEntry]:
    """The demo zombies as one made-up scan per account at `end`: its `ZombieDetected` entries, then the
    `ZombieScanCompleted` record (status ok, 0 AWS calls, its reason saying it is synthetic) - so `zombies scans`
    and `GET /v1/zombies/scans` show where the zombies came from. Every entry's log source says demo."""
    found = demo_zombies(tenant, accounts, end, prices)
    entries: list[LogEntry] = []
    for account in dict.fromkeys(z.account_id for z in found):
        mine = tuple(z for z in found if z.account_id == account)
        result = ScanResult(mine, (), "ok", 0, tuple(sorted({z.region for z in mine})), reason=SYNTHETIC)
        made = scan_entries(tenant, account, result, (), now=end, ingested_at=ingested_at,
                            scan_id=f"{SCAN_ID}:{account}", checks=sorted({z.check for z in mine}), started_at=end)
        entries += [replace(e, source=SOURCE) for e in made]
    return entries


def detections(entries: Sequence[LogEntry]) -> int:
    return sum(1 for e in entries if e.event_name == DETECTED)
