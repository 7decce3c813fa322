"""Field cases R11, R13, R14, R15: the zombie scan replayed from the recorded boto3 calls with botocore's Stubber.

The fixtures record `{service, region, operation, params, response | error}` with ISO-8601 strings where boto3
has datetimes; `Replay` converts them by the operation's output shape. Where the hunter asks differently from
the recording, the test translates the recording and says so:
* CloudWatch: the fixtures record one GetMetricStatistics per resource; the hunter batches every series of a
  check in one GetMetricData call. The recorded datapoints become that call's results, in recorded order, and
  the recorded window/period/statistic become its expected parameters.
* Calls the hunter must NOT make are left unqueued and asserted absent: a plain DescribeImages (hides disabled
  AMIs, R11), DescribeInstances (R13: NAT use is judged by traffic), anything in a not-opted-in region (R15).
* R11 does not record the source-volume lookup; the hunter's DescribeVolumes(volume-id filter) is answered with
  no volumes (the snapshots' volumes are gone, as the case describes them).

Prices come from the shipped snapshot (2026-07-20): EBS gp3 $0.08 and standard snapshots $0.05 per GB-month,
CLB $0.025/h, ALB $0.0225/h and NAT $0.045/h in us-east-1; 730 hours a month.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import botocore.session
import pytest
from botocore import xform_name
from botocore.stub import Stubber
from botocore.utils import parse_timestamp

from streams.prices.table import load_default_prices
from streams.zombies.pure import (
    CHECK_IDLE_LB,
    CHECK_IDLE_NAT,
    CHECK_ORPHANED_SNAPSHOT,
    CHECK_UNATTACHED_VOLUME,
)
from streams.zombies.scan import RegionError, ScanResult, scan_account
from tests.conftest import CASES

_SESSION = botocore.session.get_session()  # loading service models once keeps the file fast


def load_case(case_id: str) -> dict[str, Any]:
    return json.loads((CASES / f"{case_id}.json").read_text())


def case_now(case: Mapping[str, Any]) -> datetime:
    return datetime.fromisoformat(case["now"].replace("Z", "+00:00"))


def to_boto(shape: Any, value: Any) -> Any:
    """A recorded value in the shape boto3 returns: timestamps parsed, nulls dropped (boto3 omits them)."""
    if shape is None:
        return value
    kind = shape.type_name
    if kind == "structure":
        return {k: to_boto(shape.members.get(k), v) for k, v in value.items() if v is not None}
    if kind == "list":
        return [to_boto(shape.member, v) for v in value]
    if kind == "map":
        return {k: to_boto(shape.value, v) for k, v in value.items()}
    if kind == "timestamp" and isinstance(value, str):
        return parse_timestamp(value)
    return value


def to_params(value: Any) -> Any:
    """Recorded request parameters: ISO-8601 strings of the window become datetimes (how the hunter sends them)."""
    if isinstance(value, dict):
        return {k: to_params(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_params(v) for v in value]
    if isinstance(value, str) and len(value) == 20 and value.endswith("Z") and value[4] == "-":
        return parse_timestamp(value)
    return value


class Replay:
    """A client factory of stubbed botocore clients, one per (service, region); records every call sent."""

    def __init__(self, forbidden_regions: frozenset[str] = frozenset()) -> None:
        self.forbidden_regions = forbidden_regions
        self.clients: dict[tuple[str, str], Any] = {}
        self.stubbers: dict[tuple[str, str], Stubber] = {}
        self.sent: list[tuple[str, str, str, dict[str, Any]]] = []
        self.asked: list[tuple[str, str]] = []

    def __call__(self, service: str, region: str) -> Any:
        self.asked.append((service, region))
        if region in self.forbidden_regions:
            raise AssertionError(f"the hunter asked for a {service} client in {region}, which it must never call")
        return self._client(service, region)

    def _client(self, service: str, region: str) -> Any:
        key = (service, region)
        if key not in self.clients:
            client = _SESSION.create_client(
                service, region_name=region, aws_access_key_id="testing", aws_secret_access_key="testing"
            )

            def record(params: dict[str, Any], model: Any, **_: Any) -> None:
                self.sent.append((service, region, model.name, dict(params)))

            client.meta.events.register("provide-client-params", record)
            stubber = Stubber(client)
            stubber.activate()
            self.clients[key], self.stubbers[key] = client, stubber
        return self.clients[key]

    def respond(self, service: str, region: str, operation: str, params: Any, response: Mapping[str, Any]) -> None:
        client = self._client(service, region)
        shape = client.meta.service_model.operation_model(operation).output_shape
        self.stubbers[(service, region)].add_response(xform_name(operation), to_boto(shape, response), params)

    def fail(self, service: str, region: str, operation: str, params: Any, code: str, status: int = 403) -> None:
        self._client(service, region)
        self.stubbers[(service, region)].add_client_error(
            xform_name(operation),
            service_error_code=code,
            service_message=code,
            http_status_code=status,
            expected_params=params,
        )

    def queue(self, call: Mapping[str, Any]) -> None:
        """One recorded call, as recorded."""
        params = to_params(call["params"])
        if "error" in call:
            err = call["error"]
            self.fail(call["service"], call["region"], call["operation"], params, err["Code"], err["HTTPStatusCode"])
        else:
            self.respond(call["service"], call["region"], call["operation"], params, call["response"])

    def queue_metrics(self, region: str, recorded: list[Mapping[str, Any]]) -> None:
        """Recorded GetMetricStatistics calls -> the one GetMetricData call the hunter makes instead."""
        first = recorded[0]["params"]
        queries, results = [], []
        for i, call in enumerate(recorded):
            p = call["params"]
            assert (p["StartTime"], p["EndTime"], p["Period"]) == (
                first["StartTime"],
                first["EndTime"],
                first["Period"],
            )
            stat = p["Statistics"][0]
            queries.append(
                {
                    "Id": f"m{i}",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": p["Namespace"],
                            "MetricName": p["MetricName"],
                            "Dimensions": p["Dimensions"],
                        },
                        "Period": p["Period"],
                        "Stat": stat,
                    },
                }
            )
            points = sorted(call["response"]["Datapoints"], key=lambda d: d["Timestamp"])
            results.append(
                {
                    "Id": f"m{i}",
                    "Label": call["response"]["Label"],
                    "Timestamps": [d["Timestamp"] for d in points],
                    "Values": [d[stat] for d in points],
                    "StatusCode": "Complete",
                }
            )
        params = {"MetricDataQueries": queries, "StartTime": first["StartTime"], "EndTime": first["EndTime"]}
        self.respond("cloudwatch", region, "GetMetricData", to_params(params), {"MetricDataResults": results})

    def operations(self, region: str | None = None) -> list[str]:
        return [op for _, r, op, _ in self.sent if region is None or r == region]

    def verify(self) -> None:
        for stubber in self.stubbers.values():
            stubber.assert_no_pending_responses()


def no_sleep(_: float) -> None:
    raise AssertionError("nothing in this case is throttled: the hunter must not back off")


def run(replay: Replay, case: Mapping[str, Any], checks: tuple[str, ...], **kwargs: Any) -> ScanResult:
    """The scan over the replay with the case's account and frozen clock; sleeping fails the test."""
    kwargs.setdefault("sleep", no_sleep)
    return scan_account(
        replay, tenant="t-demo", account_id=case["account_id"], now=case_now(case), checks=checks, **kwargs
    )


def regions_call(region: str = "us-east-1", regions: tuple[str, ...] = ("us-east-1",)) -> dict[str, Any]:
    listed = [{"RegionName": r, "OptInStatus": "opt-in-not-required"} for r in regions]
    return {
        "service": "ec2",
        "region": region,
        "operation": "DescribeRegions",
        "params": {"AllRegions": True},
        "response": {"Regions": listed},
    }


PRICES = load_default_prices()
HOURS = 730.0


def usd(service: str, region: str, sku: str) -> float:
    found = PRICES.lookup_with_fallback(service, region, sku)
    assert not hasattr(found, "reason"), found
    return found.price  # type: ignore[union-attr]


# -- R11 ------------------------------------------------------------------------------------------------


def _r11_replay(images_denied: bool = False) -> tuple[Replay, dict[str, Any]]:
    case = load_case("R11")
    replay = Replay()
    replay.queue(regions_call())
    for call in case["calls"]:
        if call["operation"] == "DescribeImages" and not call["params"].get("IncludeDisabled"):
            continue  # the trap: a plain DescribeImages does not list disabled AMIs
        if call["operation"] == "DescribeImages" and images_denied:
            replay.fail("ec2", "us-east-1", "DescribeImages", call["params"], "UnauthorizedOperation")
            continue
        replay.queue(call)
    # Source volumes of the two old snapshots (0003c is too young to be looked at): gone.
    volumes = {"Filters": [{"Name": "volume-id", "Values": ["vol-0aaa1111bbbb0001a", "vol-0aaa1111bbbb0002b"]}]}
    replay.respond("ec2", "us-east-1", "DescribeVolumes", volumes, {"Volumes": []})
    return replay, case


def test_r11_snapshot_of_disabled_ami_is_not_a_zombie() -> None:
    """R11: only snap-...0002b (500 GiB, 213 days, used by nothing) is a zombie: 500 x $0.05 = $25.00/month."""
    replay, case = _r11_replay()
    result = run(replay, case, (CHECK_ORPHANED_SNAPSHOT,))
    replay.verify()

    assert result.status == "ok" and result.region_errors == ()
    assert [z.resource_id for z in result.zombies] == ["snap-0aaa1111bbbb0002b"]
    zombie = result.zombies[0]
    assert (zombie.status, zombie.check, zombie.resource_type) == ("zombie", "orphaned_ebs_snapshot", "ebs_snapshot")
    assert zombie.monthly_waste_usd == pytest.approx(500 * usd("ebs", "us-east-1", "snapshot_standard_gb_month"))
    assert zombie.monthly_waste_usd == pytest.approx(25.0)
    assert zombie.evidence["age_days"] == 213.0
    assert zombie.evidence["source_volume_exists"] is False
    assert zombie.evidence["used_by_ami"] is False
    # AMIs were listed with IncludeDisabled=True and never without it; nothing but reads were sent.
    images = [p for _, _, op, p in replay.sent if op == "DescribeImages"]
    assert images == [{"Owners": ["self"], "IncludeDisabled": True}]
    assert replay.operations() == [
        "DescribeRegions",
        "DescribeSnapshots",
        "DescribeImages",
        "DescribeLaunchTemplates",
        "DescribeVolumes",
    ]
    assert result.calls_made == 5


def test_r11_denied_ami_listing_makes_snapshots_unknown() -> None:
    """R11: when DescribeImages is not permitted, no snapshot can be cleared: both old ones are `unknown`."""
    replay, case = _r11_replay(images_denied=True)
    result = run(replay, case, (CHECK_ORPHANED_SNAPSHOT,))
    replay.verify()

    assert result.found == []
    assert [(z.resource_id, z.status) for z in result.zombies] == [
        ("snap-0aaa1111bbbb0001a", "unknown"),
        ("snap-0aaa1111bbbb0002b", "unknown"),
    ]
    assert result.zombies[0].evidence["mentions_ami"] == "ami-0aaa1111bbbb0001a"
    assert result.zombies[0].evidence["unknown_because"] == ["DescribeImages: UnauthorizedOperation"]
    assert result.status == "partial"
    assert [(e.region, e.code, e.operation) for e in result.region_errors] == [
        ("us-east-1", "UnauthorizedOperation", "DescribeImages")
    ]


# -- R13 ------------------------------------------------------------------------------------------------


def test_r13_nat_gateway_judged_by_traffic_only() -> None:
    """R13: nat-...0002 (14 zero days) is the one zombie at $0.045 x 730 = $32.85/month; 0001 carries traffic
    with no EC2 instance anywhere; 0003 (2 days old) is insufficient_history; deleted 0004 is ignored."""
    case = load_case("R13")
    replay = Replay()
    replay.queue(regions_call())
    replay.queue(next(c for c in case["calls"] if c["operation"] == "DescribeNatGateways"))
    replay.queue_metrics("us-east-1", [c for c in case["calls"] if c["operation"] == "GetMetricStatistics"])
    result = run(replay, case, (CHECK_IDLE_NAT,))
    replay.verify()

    assert result.status == "ok"
    assert [z.resource_id for z in result.found] == ["nat-0aaa1111bbbb0002"]
    assert [(z.resource_id, z.status) for z in result.zombies] == [
        ("nat-0aaa1111bbbb0002", "zombie"),
        ("nat-0aaa1111bbbb0003", "insufficient_history"),
    ]
    zombie = result.found[0]
    assert zombie.monthly_waste_usd == pytest.approx(usd("nat", "us-east-1", "nat_gateway_hour") * HOURS)
    assert zombie.monthly_waste_usd == pytest.approx(32.85)
    metric = zombie.evidence["metric"]
    assert (metric["name"], metric["total"], metric["datapoints"], metric["absent_datapoints"]) == (
        "BytesOutToDestination",
        0.0,
        14,
        0,
    )
    assert (metric["window_start"], metric["window_end"], metric["period_seconds"]) == (
        "2024-05-18T00:00:00Z",
        "2024-06-01T00:00:00Z",
        86400,
    )
    assert "DescribeInstances" not in replay.operations()
    # Three NAT gateways' traffic in one CloudWatch call, not one call each.
    assert replay.operations() == ["DescribeRegions", "DescribeNatGateways", "GetMetricData"]


# -- R14 ------------------------------------------------------------------------------------------------


def test_r14_idle_load_balancers_absent_datapoints() -> None:
    """R14: legacy-web (CLB, $0.025 x 730 = $18.25) and old-admin (ALB, $0.0225 x 730 = $16.425) are zombies:
    no RequestCount datapoints at all, both older than the 14-day lookback. brand-new is insufficient_history;
    busy-api is in use."""
    case = load_case("R14")
    replay = Replay()
    replay.queue(regions_call())
    for call in case["calls"]:
        if call["operation"] == "DescribeLoadBalancers":
            replay.queue(call)
    replay.queue_metrics("us-east-1", [c for c in case["calls"] if c["operation"] == "GetMetricStatistics"])
    result = run(replay, case, (CHECK_IDLE_LB,))
    replay.verify()

    assert result.status == "ok"
    assert [z.evidence["name"] for z in result.found] == ["legacy-web", "old-admin"]
    assert [z.resource_id for z in result.found] == [
        "arn:aws:elasticloadbalancing:us-east-1:111122223333:loadbalancer/legacy-web",
        "arn:aws:elasticloadbalancing:us-east-1:111122223333:loadbalancer/app/old-admin/0123456789abcdef",
    ]
    assert [(z.evidence["name"], z.status) for z in result.zombies] == [
        ("legacy-web", "zombie"),
        ("brand-new", "insufficient_history"),
        ("old-admin", "zombie"),
    ]
    legacy, admin = result.found
    assert legacy.monthly_waste_usd == pytest.approx(usd("elb", "us-east-1", "clb_hour") * HOURS)
    assert legacy.monthly_waste_usd == pytest.approx(18.25)
    assert admin.monthly_waste_usd == pytest.approx(usd("elb", "us-east-1", "alb_hour") * HOURS)
    assert admin.monthly_waste_usd == pytest.approx(16.425)
    # The registered backend does not make legacy-web used; its 14 days were absent and counted as zero.
    assert legacy.evidence["registered_instances"] == 1
    assert legacy.evidence["metric"]["absent_datapoints"] == 14
    assert legacy.evidence["metric"]["absent_counted_as_zero"] is True
    assert admin.evidence["metric"]["dimensions"] == {"LoadBalancer": "app/old-admin/0123456789abcdef"}
    assert replay.operations() == ["DescribeRegions", "DescribeLoadBalancers", "DescribeLoadBalancers", "GetMetricData"]


# -- R15 ------------------------------------------------------------------------------------------------


def _r15_replay() -> tuple[Replay, dict[str, Any]]:
    case = load_case("R15")
    replay = Replay(forbidden_regions=frozenset({"eu-south-1"}))
    for call in case["calls"]:
        if call["region"] != "eu-south-1":  # the recording holds its error: it must never be reached
            replay.queue(call)
    return replay, case


def test_r15_one_denied_region_makes_the_run_partial() -> None:
    """R15: the unattached 200 GiB gp3 volumes of us-east-1 (200 x $0.08 = $16.00) and ap-east-1 (200 x the
    labelled estimate $0.08 x 1.3254 = $21.2064) are found; me-south-1's UnauthorizedOperation is one region
    error, not retried; eu-south-1 (not opted in) is never called."""
    replay, case = _r15_replay()
    result = run(replay, case, (CHECK_UNATTACHED_VOLUME,))
    replay.verify()

    assert result.status == "partial"
    assert result.region_errors == (
        RegionError(
            "me-south-1", "UnauthorizedOperation", "DescribeVolumes", "unattached_ebs_volume", "UnauthorizedOperation"
        ),
    )
    assert [(z.region, z.resource_id, z.status) for z in result.zombies] == [
        ("us-east-1", "vol-0aaa1111bbbb0001a", "zombie"),
        ("ap-east-1", "vol-0aaa1111bbbb0002b", "zombie"),
    ]
    east, hk = result.zombies
    assert east.monthly_waste_usd == pytest.approx(200 * usd("ebs", "us-east-1", "gp3_gb_month"))
    assert east.monthly_waste_usd == pytest.approx(16.0)
    assert hk.monthly_waste_usd == pytest.approx(200 * usd("ebs", "ap-east-1", "gp3_gb_month"))
    assert hk.monthly_waste_usd == pytest.approx(21.2064)
    assert hk.evidence["price"]["estimated"] is True
    assert east.evidence["age_days"] == 92.0
    assert result.regions_scanned == ("us-east-1", "ap-east-1", "me-south-1")
    assert all(region != "eu-south-1" for _, region in replay.asked)
    assert all(region != "eu-south-1" for _, region, _, _ in replay.sent)
    # DescribeRegions + one DescribeVolumes per visited region; the denied call was sent once (no retry).
    assert result.calls_made == 4 and result.retries == 0
    assert replay.operations("me-south-1") == ["DescribeVolumes"]


def test_r15_asking_for_a_not_opted_in_region_records_it_without_calling_it() -> None:
    """R15: `--region eu-south-1` style requests never reach a not-opted-in region; the run says why."""
    replay, case = _r15_replay()
    case = {**case}
    result = scan_account(
        replay,
        tenant="t-demo",
        account_id=case["account_id"],
        now=case_now(case),
        checks=(CHECK_UNATTACHED_VOLUME,),
        regions=["eu-south-1", "us-east-1"],
        sleep=no_sleep,
    )
    assert [z.resource_id for z in result.found] == ["vol-0aaa1111bbbb0001a"]
    assert [(e.region, e.code) for e in result.region_errors] == [("eu-south-1", "RegionNotEnabled")]
    assert result.status == "partial"
    assert all(region != "eu-south-1" for _, region in replay.asked)


def test_case_fixtures_are_the_ones_described() -> None:
    """R11 R13 R14 R15: the frozen clocks the assertions above are computed from."""
    for case_id in ("R11", "R13", "R14", "R15"):
        assert case_now(load_case(case_id)) == datetime(2024, 6, 1, tzinfo=UTC)
