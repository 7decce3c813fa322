"""The zombie checks as pure decisions: thresholds, absent vs zero datapoints, EIPs held by NAT gateways, prices.

Prices from the shipped snapshot (us-east-1): gp2 $0.10, gp3 $0.08 (+$0.005/IOPS above 3,000, +$0.04 per MiB/s
above 125), standard snapshot $0.05 per GB-month; NAT $0.045/h; idle public IPv4 $0.005/h; 730 hours a month.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.prices.table import load_default_prices
from streams.zombies.pure import (
    CheckThresholds,
    MetricSeries,
    Scope,
    Unavailable,
    ZombieError,
    idle_load_balancers,
    idle_nat_gateways,
    metric_window,
    nat_metric_queries,
    orphaned_snapshots,
    unassociated_eips,
    unattached_volumes,
)

PRICES = load_default_prices()
NOW = datetime(2024, 6, 1, tzinfo=UTC)
SCOPE = Scope("t-demo", "111122223333", "us-east-1")
LIMITS = CheckThresholds()
WINDOW = metric_window(NOW, 14, 86400)


def days_ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def volume(vid: str, age_days: float, **extra: object) -> dict[str, object]:
    return {
        "VolumeId": vid,
        "State": "available",
        "Attachments": [],
        "CreateTime": days_ago(age_days),
        "Size": 100,
        "VolumeType": "gp2",
        **extra,
    }


# -- thresholds --------------------------------------------------------------------------------------------


def test_unattached_volume_age_threshold() -> None:
    """Default 7 days: 6-day-old volume is left alone, an 8-day-old 100 GiB gp2 costs 100 x $0.10 = $10/month."""
    found = unattached_volumes(SCOPE, [volume("vol-young", 6), volume("vol-old", 8)], NOW, LIMITS, PRICES)
    assert [(z.resource_id, z.status, z.monthly_waste_usd) for z in found] == [("vol-old", "zombie", 10.0)]
    stricter = CheckThresholds.from_mapping({"unattached_volume_days": 30})
    assert unattached_volumes(SCOPE, [volume("vol-old", 8)], NOW, stricter, PRICES) == []


def test_attached_or_in_use_volume_is_never_a_zombie() -> None:
    vols = [volume("vol-a", 50, State="in-use"), volume("vol-b", 50, Attachments=[{"InstanceId": "i-1"}])]
    assert unattached_volumes(SCOPE, vols, NOW, LIMITS, PRICES) == []


def test_gp3_volume_waste_includes_provisioned_extras() -> None:
    """500 GiB gp3 with 6,000 IOPS and 250 MiB/s: 500 x 0.08 + 3,000 x 0.005 + 125 x 0.04 = 40 + 15 + 5 = $60."""
    vol = volume("vol-gp3", 30, VolumeType="gp3", Size=500, Iops=6000, Throughput=250)
    [zombie] = unattached_volumes(SCOPE, [vol], NOW, LIMITS, PRICES)
    assert zombie.monthly_waste_usd == pytest.approx(60.0)


def test_unknown_price_is_none_never_zero() -> None:
    """A region the table cannot price (made-up) or a volume type it does not know: waste None."""
    nowhere = Scope("t-demo", "111122223333", "xx-nowhere-1")
    [zombie] = unattached_volumes(nowhere, [volume("vol-x", 30)], NOW, LIMITS, PRICES)
    assert zombie.status == "zombie" and zombie.monthly_waste_usd is None
    assert zombie.evidence["price"] == {"service": "ebs", "sku": "gp2_gb_month", "missing": True}
    [odd] = unattached_volumes(SCOPE, [volume("vol-y", 30, VolumeType="gp9")], NOW, LIMITS, PRICES)
    assert odd.monthly_waste_usd is None


def test_thresholds_from_mapping_refuses_nonsense() -> None:
    assert CheckThresholds.from_mapping({}) == CheckThresholds()
    assert CheckThresholds.from_mapping({"snapshot_age_days": 30}).snapshot_age_days == 30
    assert (LIMITS.unattached_volume_days, LIMITS.snapshot_age_days, LIMITS.nat_lookback_days) == (7, 90, 14)
    for bad in (
        {"snapshot_days": 3},
        {"nat_lookback_days": -1},
        {"lb_lookback_days": True},
        {"unattached_volume_days": 1.5},
        {"metric_period_seconds": 90},
        {"nat_idle_bytes": "0"},
    ):
        with pytest.raises(ZombieError):
            CheckThresholds.from_mapping(bad)


# -- snapshots ---------------------------------------------------------------------------------------------


def snapshot(sid: str, vid: str, age_days: float, size: int = 20) -> dict[str, object]:
    return {
        "SnapshotId": sid,
        "VolumeId": vid,
        "VolumeSize": size,
        "State": "completed",
        "StartTime": days_ago(age_days),
        "StorageTier": "standard",
    }


def test_snapshot_of_a_live_volume_or_used_by_a_launch_template_is_not_a_zombie() -> None:
    """Of four 120-day-old snapshots only snap-d (volume gone, used by nothing) is one: 20 x $0.05 = $1/month."""
    snaps = [
        snapshot("snap-a", "vol-live", 120),
        snapshot("snap-b", "vol-gone", 120),
        snapshot("snap-c", "vol-gone", 120),
        snapshot("snap-d", "vol-ffffffff", 120),
    ]
    images = [{"ImageId": "ami-1", "State": "available", "BlockDeviceMappings": [{"Ebs": {"SnapshotId": "snap-b"}}]}]
    templates = [
        {
            "LaunchTemplateId": "lt-1",
            "VersionNumber": 3,
            "LaunchTemplateData": {"BlockDeviceMappings": [{"Ebs": {"SnapshotId": "snap-c"}}]},
        }
    ]
    found = orphaned_snapshots(SCOPE, snaps, [{"VolumeId": "vol-live"}], images, templates, NOW, LIMITS, PRICES)
    assert [(z.resource_id, z.status, z.monthly_waste_usd) for z in found] == [("snap-d", "zombie", 1.0)]


def test_snapshot_age_threshold_and_denied_volume_lookup() -> None:
    """89 days is too young at the default 90; a denied volume lookup leaves the old one `unknown`."""
    snaps = [snapshot("snap-young", "vol-1", 89), snapshot("snap-old", "vol-2", 91)]
    denied = Unavailable("DescribeVolumes", "UnauthorizedOperation")
    found = orphaned_snapshots(SCOPE, snaps, denied, [], [], NOW, LIMITS, PRICES)
    assert [(z.resource_id, z.status) for z in found] == [("snap-old", "unknown")]
    assert found[0].evidence["source_volume_exists"] is None


# -- Elastic IPs -------------------------------------------------------------------------------------------


def test_eip_held_by_nat_gateway_or_eni_is_in_use() -> None:
    """eipalloc-nat shows no association itself but a NAT gateway holds it; only eipalloc-free is a zombie,
    at $0.005 x 730 = $3.65/month."""
    addresses = [
        {"AllocationId": "eipalloc-nat", "PublicIp": "203.0.113.1", "Domain": "vpc"},
        {"AllocationId": "eipalloc-eni", "PublicIp": "203.0.113.2", "NetworkInterfaceId": "eni-1"},
        {"AllocationId": "eipalloc-ec2", "PublicIp": "203.0.113.3", "AssociationId": "eipassoc-1", "InstanceId": "i-1"},
        {"AllocationId": "eipalloc-free", "PublicIp": "203.0.113.4", "Domain": "vpc"},
    ]
    nats = [
        {
            "NatGatewayId": "nat-1",
            "State": "available",
            "NatGatewayAddresses": [{"AllocationId": "eipalloc-nat", "PublicIp": "203.0.113.1"}],
        }
    ]
    found = unassociated_eips(SCOPE, addresses, nats, PRICES)
    assert [(z.resource_id, z.status) for z in found] == [("eipalloc-free", "zombie")]
    assert found[0].monthly_waste_usd == pytest.approx(0.005 * 730)
    # Without the NAT list nobody can tell whether a gateway holds it.
    unknown = unassociated_eips(SCOPE, addresses, Unavailable("DescribeNatGateways", "AccessDenied"), PRICES)
    assert [(z.resource_id, z.status) for z in unknown] == [("eipalloc-nat", "unknown"), ("eipalloc-free", "unknown")]


# -- metrics: absent vs zero -------------------------------------------------------------------------------


def nat(nid: str, age_days: float, state: str = "available") -> dict[str, object]:
    return {"NatGatewayId": nid, "State": state, "CreateTime": days_ago(age_days)}


def daily(values: list[float]) -> MetricSeries:
    stamps = tuple(WINDOW.start + timedelta(days=i) for i in range(len(values)))
    return MetricSeries(stamps, tuple(values))


def test_absent_datapoints_count_as_zero_only_for_old_resources() -> None:
    """Old + absent -> zombie; old + zeros -> zombie; young + absent -> insufficient_history; young + traffic ->
    in use; old + a single byte on one day -> in use."""
    nats = [
        nat("nat-old-absent", 60),
        nat("nat-old-zero", 60),
        nat("nat-young", 5),
        nat("nat-young-busy", 5),
        nat("nat-old-trickle", 60),
    ]
    series = {
        "nat-old-zero": daily([0.0] * 14),
        "nat-young-busy": daily([1e6] * 5),
        "nat-old-trickle": daily([0.0] * 13 + [1.0]),
    }
    found = idle_nat_gateways(SCOPE, nats, series, WINDOW, LIMITS, PRICES)
    assert [(z.resource_id, z.status) for z in found] == [
        ("nat-old-absent", "zombie"),
        ("nat-old-zero", "zombie"),
        ("nat-young", "insufficient_history"),
    ]
    absent, zero, _ = found
    assert (absent.evidence["metric"]["absent_datapoints"], absent.evidence["metric"]["absent_counted_as_zero"]) == (
        14,
        True,
    )
    assert (zero.evidence["metric"]["absent_datapoints"], zero.evidence["metric"]["absent_counted_as_zero"]) == (
        0,
        False,
    )
    assert absent.monthly_waste_usd == pytest.approx(0.045 * 730)


def test_a_resource_exactly_as_old_as_the_lookback_is_judged() -> None:
    found = idle_nat_gateways(SCOPE, [nat("nat-14d", 14), nat("nat-13d", 13.9)], {}, WINDOW, LIMITS, PRICES)
    assert [(z.resource_id, z.status) for z in found] == [("nat-14d", "zombie"), ("nat-13d", "insufficient_history")]


def test_deleted_nat_is_not_queried_and_failed_metrics_are_unknown() -> None:
    nats = [nat("nat-gone", 60, state="deleted"), nat("nat-1", 60), nat("nat-2", 60)]
    assert [q.key for q in nat_metric_queries(nats)] == ["nat-1", "nat-2"]
    partial = {"nat-2": MetricSeries(complete=False, status="Forbidden")}
    found = idle_nat_gateways(SCOPE, nats, partial, WINDOW, LIMITS, PRICES)
    assert [(z.resource_id, z.status) for z in found] == [("nat-1", "zombie"), ("nat-2", "unknown")]
    denied = idle_nat_gateways(SCOPE, nats, Unavailable("GetMetricData", "AccessDenied"), WINDOW, LIMITS, PRICES)
    assert [z.status for z in denied] == ["unknown", "unknown"]


def test_lb_idle_threshold_and_datapoints_outside_the_window() -> None:
    """A tenant tolerating 100 requests in 14 days: a CLB with 3 x 20 = 60 is idle; 150 requests just before the
    window do not count."""
    classic = [{"LoadBalancerName": "quiet", "CreatedTime": days_ago(400), "Instances": []}]
    before = WINDOW.start - timedelta(days=1)
    series = {
        "arn:aws:elasticloadbalancing:us-east-1:111122223333:loadbalancer/quiet": MetricSeries(
            (before, WINDOW.start, WINDOW.start + timedelta(days=1), WINDOW.start + timedelta(days=2)),
            (150.0, 20.0, 20.0, 20.0),
        )
    }
    tolerant = CheckThresholds.from_mapping({"lb_idle_requests": 100})
    [zombie] = idle_load_balancers(SCOPE, classic, [], series, WINDOW, tolerant, PRICES)
    assert (zombie.status, zombie.evidence["metric"]["total"], zombie.monthly_waste_usd) == (
        "zombie",
        60.0,
        pytest.approx(0.025 * 730),
    )
    assert idle_load_balancers(SCOPE, classic, [], series, WINDOW, LIMITS, PRICES) == []


def test_nlb_uses_new_flow_count_and_provisioning_lbs_are_skipped() -> None:
    v2 = [
        {
            "LoadBalancerArn": "arn:aws:elasticloadbalancing:us-east-1:111122223333:loadbalancer/net/tcp/abc",
            "LoadBalancerName": "tcp",
            "Type": "network",
            "State": {"Code": "active"},
            "CreatedTime": days_ago(100),
        },
        {
            "LoadBalancerArn": "arn:aws:elasticloadbalancing:us-east-1:111122223333:loadbalancer/app/new/def",
            "LoadBalancerName": "new",
            "Type": "application",
            "State": {"Code": "provisioning"},
            "CreatedTime": days_ago(100),
        },
    ]
    [zombie] = idle_load_balancers(SCOPE, [], v2, {}, WINDOW, LIMITS, PRICES)
    assert zombie.evidence["metric"]["name"] == "NewFlowCount"
    assert zombie.evidence["metric"]["dimensions"] == {"LoadBalancer": "net/tcp/abc"}
    assert zombie.monthly_waste_usd == pytest.approx(0.0225 * 730)


@given(
    age=st.floats(min_value=0, max_value=400),
    values=st.lists(st.sampled_from([0.0, 0.0, 1.0, 5e8]), max_size=14),
)
def test_property_traffic_decides_before_age(age: float, values: list[float]) -> None:
    """Any traffic -> never reported; no traffic -> zombie iff the NAT existed for the whole window."""
    found = idle_nat_gateways(SCOPE, [nat("nat-p", age)], {"nat-p": daily(values)}, WINDOW, LIMITS, PRICES)
    if sum(values) > 0:
        assert found == []
    else:
        expected = "zombie" if days_ago(age) <= WINDOW.start else "insufficient_history"
        assert [z.status for z in found] == [expected]
