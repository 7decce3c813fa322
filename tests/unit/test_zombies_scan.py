"""The scan's wiring over stubbed botocore clients: throttling and backoff, denied and expired credentials,
paging, CloudWatch batching, call counts. No sockets: every call is answered by botocore's Stubber."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from streams.zombies.pure import ALL_CHECKS, CHECK_IDLE_NAT, CHECK_UNATTACHED_VOLUME, ZombieError
from streams.zombies.scan import ScanResult, scan_account, session_client_factory
from tests.unit.test_zombies_cases import Replay

NOW = datetime(2024, 6, 1, tzinfo=UTC)
AVAILABLE = {"Filters": [{"Name": "status", "Values": ["available"]}]}


def regions(replay: Replay, *names: str) -> None:
    listed = [{"RegionName": n, "OptInStatus": "opt-in-not-required"} for n in names]
    replay.respond("ec2", "us-east-1", "DescribeRegions", {"AllRegions": True}, {"Regions": listed})


def vol(vid: str) -> dict[str, Any]:
    return {
        "VolumeId": vid,
        "Size": 10,
        "VolumeType": "gp2",
        "State": "available",
        "Attachments": [],
        "CreateTime": "2024-01-01T00:00:00Z",
    }


def scan(replay: Replay, checks: tuple[str, ...] = (CHECK_UNATTACHED_VOLUME,), **kwargs: Any) -> ScanResult:
    return scan_account(replay, tenant="t-1", account_id="111122223333", now=NOW, checks=checks, **kwargs)


def test_throttling_is_retried_with_exponential_backoff() -> None:
    """Two Throttling answers, then the page: slept 0.5 s then 1.0 s, 3 DescribeVolumes sent, zombie found."""
    replay = Replay()
    regions(replay, "us-east-1")
    replay.fail("ec2", "us-east-1", "DescribeVolumes", AVAILABLE, "Throttling", 400)
    replay.fail("ec2", "us-east-1", "DescribeVolumes", AVAILABLE, "RequestLimitExceeded", 503)
    replay.respond("ec2", "us-east-1", "DescribeVolumes", AVAILABLE, {"Volumes": [vol("vol-1")]})
    slept: list[float] = []
    result = scan(replay, sleep=slept.append)
    replay.verify()
    assert slept == [0.5, 1.0]
    assert (result.status, result.calls_made, result.retries) == ("ok", 4, 2)
    assert [z.resource_id for z in result.found] == ["vol-1"]


def test_throttling_gives_up_after_max_attempts_and_the_region_is_an_error() -> None:
    replay = Replay()
    regions(replay, "us-east-1")
    for _ in range(3):
        replay.fail("ec2", "us-east-1", "DescribeVolumes", AVAILABLE, "Throttling", 400)
    slept: list[float] = []
    result = scan(replay, sleep=slept.append, max_attempts=3)
    replay.verify()
    assert slept == [0.5, 1.0]
    assert [(e.region, e.code) for e in result.region_errors] == [("us-east-1", "Throttling")]
    assert result.status == "failed"  # the only region could not run its only check


def test_authorization_errors_are_never_retried() -> None:
    replay = Replay()
    regions(replay, "us-east-1", "us-west-2")
    replay.fail("ec2", "us-east-1", "DescribeVolumes", AVAILABLE, "UnauthorizedOperation")
    replay.respond("ec2", "us-west-2", "DescribeVolumes", AVAILABLE, {"Volumes": [vol("vol-2")]})
    result = scan(replay, sleep=lambda _: pytest.fail("slept on an authorization error"))
    replay.verify()
    assert (result.status, result.calls_made, result.retries) == ("partial", 3, 0)
    assert [z.resource_id for z in result.found] == ["vol-2"]


def test_expired_credentials_skip_the_rest_of_the_region() -> None:
    """ExpiredToken on the first check: the region's other checks are not attempted (one error, not five)."""
    replay = Replay()
    regions(replay, "us-east-1")
    replay.fail("ec2", "us-east-1", "DescribeVolumes", AVAILABLE, "ExpiredToken", 400)
    result = scan(replay, checks=ALL_CHECKS)
    replay.verify()
    assert [(e.region, e.code, e.check) for e in result.region_errors] == [
        ("us-east-1", "ExpiredToken", "unattached_ebs_volume")
    ]
    assert (result.status, result.calls_made) == ("failed", 2)


def test_expired_credentials_are_not_used_on_the_next_regions() -> None:
    """us-east-1 completes (vol-1), us-west-2 answers RequestExpired: eu-west-1 is recorded, never called (3 calls
    in all). Partial, and the reason names the account, "expired" and both regions lost."""
    replay = Replay()
    regions(replay, "us-east-1", "us-west-2", "eu-west-1")
    replay.respond("ec2", "us-east-1", "DescribeVolumes", AVAILABLE, {"Volumes": [vol("vol-1")]})
    replay.fail("ec2", "us-west-2", "DescribeVolumes", AVAILABLE, "RequestExpired", 400)
    result = scan(replay)
    replay.verify()
    assert (result.status, result.calls_made, [z.resource_id for z in result.found]) == ("partial", 3, ["vol-1"])
    assert [(e.region, e.code, e.operation) for e in result.region_errors] == [
        ("us-west-2", "RequestExpired", "DescribeVolumes"), ("eu-west-1", "RequestExpired", "(not called)")]
    assert result.completed == (("us-east-1", CHECK_UNATTACHED_VOLUME),)
    assert result.reason == ("the credentials of account 111122223333 expired (RequestExpired from DescribeVolumes "
                             "in us-west-2); regions not scanned: us-west-2, eu-west-1")


def test_describe_regions_denied_fails_the_run() -> None:
    replay = Replay()
    replay.fail("ec2", "us-east-1", "DescribeRegions", {"AllRegions": True}, "UnauthorizedOperation")
    result = scan(replay)
    assert (result.status, result.zombies, result.regions_scanned) == ("failed", (), ())
    assert [(e.region, e.code, e.operation) for e in result.region_errors] == [
        ("us-east-1", "UnauthorizedOperation", "DescribeRegions")
    ]


def test_volumes_are_read_page_by_page() -> None:
    replay = Replay()
    regions(replay, "us-east-1")
    replay.respond("ec2", "us-east-1", "DescribeVolumes", AVAILABLE, {"Volumes": [vol("vol-1")], "NextToken": "p2"})
    replay.respond("ec2", "us-east-1", "DescribeVolumes", {**AVAILABLE, "NextToken": "p2"}, {"Volumes": [vol("vol-2")]})
    result = scan(replay)
    replay.verify()
    assert [z.resource_id for z in result.found] == ["vol-1", "vol-2"]
    assert result.calls_made == 3


def test_cloudwatch_is_asked_500_series_per_call() -> None:
    """501 NAT gateways: 1 DescribeNatGateways + 2 GetMetricData (500 + 1), not 501 metric calls."""
    replay = Replay()
    regions(replay, "us-east-1")
    nats = [
        {"NatGatewayId": f"nat-{i:04d}", "State": "available", "CreateTime": "2024-01-01T00:00:00Z"} for i in range(501)
    ]
    replay.respond("ec2", "us-east-1", "DescribeNatGateways", {}, {"NatGateways": nats})
    busy = {"Id": "m7", "Timestamps": ["2024-05-20T00:00:00Z"], "Values": [42.0], "StatusCode": "Complete"}
    replay.respond("cloudwatch", "us-east-1", "GetMetricData", None, {"MetricDataResults": [busy]})
    replay.respond("cloudwatch", "us-east-1", "GetMetricData", None, {"MetricDataResults": []})
    result = scan(replay, checks=(CHECK_IDLE_NAT,))
    replay.verify()
    assert result.calls_made == 4
    assert len(result.found) == 500 and "nat-0007" not in {z.resource_id for z in result.found}
    sent = [p for _, _, op, p in replay.sent if op == "GetMetricData"]
    assert [len(p["MetricDataQueries"]) for p in sent] == [500, 1]
    assert sent[0]["StartTime"] == NOW - timedelta(days=14) and sent[0]["EndTime"] == NOW


def test_every_check_in_one_region_reads_nat_gateways_once() -> None:
    """All checks over an account with nothing in it: one call per resource listing, NAT gateways listed once
    (shared by the EIP and NAT checks), no metric call without resources, and only read operations."""
    replay = Replay()
    regions(replay, "us-east-1")
    replay.respond("ec2", "us-east-1", "DescribeVolumes", AVAILABLE, {"Volumes": []})
    replay.respond("ec2", "us-east-1", "DescribeSnapshots", {"OwnerIds": ["self"]}, {"Snapshots": []})
    replay.respond(
        "ec2",
        "us-east-1",
        "DescribeAddresses",
        {},
        {"Addresses": [{"AllocationId": "eipalloc-1", "PublicIp": "198.51.100.7", "Domain": "vpc"}]},
    )
    replay.respond("ec2", "us-east-1", "DescribeNatGateways", {}, {"NatGateways": []})
    replay.respond("elb", "us-east-1", "DescribeLoadBalancers", {}, {"LoadBalancerDescriptions": []})
    replay.respond("elbv2", "us-east-1", "DescribeLoadBalancers", {}, {"LoadBalancers": []})
    # The three instance checks share one DescribeInstances; RDS lists its instances once.
    live = {"Filters": [{"Name": "instance-state-name", "Values": ["running", "stopped"]}]}
    replay.respond("ec2", "us-east-1", "DescribeInstances", live, {"Reservations": []})
    replay.respond("rds", "us-east-1", "DescribeDBInstances", {}, {"DBInstances": []})
    result = scan(replay, checks=ALL_CHECKS)
    replay.verify()
    assert result.status == "ok"
    assert [(z.resource_id, z.check) for z in result.found] == [("eipalloc-1", "unassociated_eip")]
    assert replay.operations() == [
        "DescribeRegions",
        "DescribeVolumes",
        "DescribeSnapshots",
        "DescribeAddresses",
        "DescribeNatGateways",
        "DescribeLoadBalancers",
        "DescribeLoadBalancers",
        "DescribeInstances",
        "DescribeDBInstances",
    ]
    assert all(op.startswith(("Describe", "Get")) for op in replay.operations())
    assert len(result.completed) == len(ALL_CHECKS)


def test_unknown_check_names_are_a_bug() -> None:
    with pytest.raises(ZombieError):
        scan(Replay(), checks=("idle_spaceships",))


def test_session_factory_switches_botocore_retries_off_and_caches_clients() -> None:
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")
    clients = session_client_factory(session)
    ec2 = clients("ec2", "eu-west-1")
    assert clients("ec2", "eu-west-1") is ec2
    assert ec2.meta.region_name == "eu-west-1"
    assert ec2.meta.config.retries["total_max_attempts"] == 1
