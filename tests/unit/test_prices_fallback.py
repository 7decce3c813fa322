"""The labelled regional fallback estimate (case R16's optional `estimated_fallback`).

The snapshot has EBS, EBS snapshot, ELB, OpenSearch and RDS storage prices for us-east-1 only. Elsewhere an event
may carry an estimate: us-east-1 price x the region's factor, where the factor is the median, over the EC2 types
priced in both regions, of price(region) / price(us-east-1) (rounded to 4 decimals). EC2 itself, every other
service with regional data, and regions without a factor are never estimated.

Factors used below (snapshot 2026-07-20), each the ratio of the EC2 type(s) at the middle of the sorted ratios:
    us-west-1       m7g.medium     0.0476 / 0.0408  = 1.16667 -> 1.1667   (m5.large 0.112 / 0.096, the same ratio)
    eu-west-1       m6gd.8xlarge   1.6128 / 1.4464  = 1.11504 -> 1.115
    ap-southeast-2  d3en.12xlarge  7.90752 / 6.30864 = 1.25344 -> 1.2534
    us-west-2, us-east-2: every common type costs the same as in us-east-1 -> 1.0
us-east-1 prices: EBS gp2 0.10 / gp3 0.08 per GB-month, gp3 extra IOPS 0.005 and MiB/s 0.04 per month,
snapshots 0.05 per GB-month, ALB 0.0225/h, RDS gp2 storage 0.115 per GB-month, c4.2xlarge.search 0.587/h,
OpenSearch gp2 0.135 per GB-month. A month is 730 hours.
"""

from __future__ import annotations

import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ops.prices.build_snapshot import SOURCES, build
from schemas.events import Rejected
from streams.normalize.pure import normalize, observations
from streams.prices.table import PriceFact, PriceMiss, PriceTable, PriceTableError, load_default_prices
from streams.score import baseline as baselines
from tests.unit.test_normalize_support import call, case, entry, events_of, fold, prices

H = 730
EC2 = "ec2.amazonaws.com"
RDS = "rds.amazonaws.com"
ELB = "elasticloadbalancing.amazonaws.com"


def _ec2_median_ratio(table: PriceTable, region: str) -> float:
    ec2 = table.services["ec2"].prices
    ref, here = ec2["us-east-1"], ec2[region]
    return statistics.median(here[sku] / ref[sku] for sku in here if here[sku] > 0 and ref.get(sku, 0) > 0)


# -- the factors (built into the snapshot) ------------------------------------------------------------------------
def test_factors_of_three_regions_are_the_median_ec2_ratio() -> None:
    table = load_default_prices()
    ec2 = table.services["ec2"].prices
    factors = table.regional.factors
    # the type at the middle of the sorted ratios, divided by hand
    assert ec2["us-west-1"]["m7g.medium"] / ec2["us-east-1"]["m7g.medium"] == pytest.approx(0.0476 / 0.0408)
    assert factors["us-west-1"] == round(0.0476 / 0.0408, 4) == 1.1667
    assert factors["eu-west-1"] == round(1.6128 / 1.4464, 4) == 1.115
    assert factors["ap-southeast-2"] == round(7.90752 / 6.30864, 4) == 1.2534
    assert factors["us-west-2"] == factors["us-east-2"] == 1.0
    # and the same numbers recomputed from the snapshot's EC2 prices over every common type
    for region in ("us-west-1", "eu-west-1", "ap-southeast-2", "us-west-2", "us-east-2"):
        assert factors[region] == round(_ec2_median_ratio(table, region), 4)


def test_factors_record_how_they_were_derived() -> None:
    detail = load_default_prices().regional.detail
    assert detail["reference_region"] == "us-east-1"
    assert list(detail["services"]) == ["ebs", "elb", "opensearch", "rds_storage"]
    assert detail["derived_on"] == "2026-07-20"
    assert detail["method"].startswith("median over the EC2 instance types priced in both regions")
    eu = detail["regions"]["eu-west-1"]
    assert (eu["ec2_types"], list(eu["median_of"]), eu["confidence"]) == (761, ["m6gd.8xlarge"], "medium")
    # cross-check: NAT gateway 0.048/0.045 and interface endpoint 0.011/0.01 lie within 15% of 1.115
    assert dict(eu["cross_check"]) == {"nat:nat_gateway_hour": 1.0667, "vpc:interface_endpoint_hour_per_az": 1.1}
    # sa-east-1: EC2 says 1.5929 but NAT/endpoints cost about 2.07x: marked low confidence
    sa = detail["regions"]["sa-east-1"]
    assert (sa["factor"], sa["confidence"]) == (1.5929, "low")
    # China (CNY, not used) and made-up regions have no factor
    assert "cn-north-1" not in detail["regions"] and "ca-northsouth-2r" not in detail["regions"]
    assert "us-east-1" not in detail["regions"]


def test_builder_derives_the_factors_it_ships() -> None:
    snapshot = build(SOURCES)
    assert snapshot["regional_factors"] == PriceTable.from_dict(snapshot).to_dict()["regional_factors"]
    assert snapshot["regional_factors"]["regions"]["eu-west-1"]["factor"] == 1.115


# -- the lookup -----------------------------------------------------------------------------------------------------
def test_lookup_with_fallback_marks_the_estimate() -> None:
    table = load_default_prices()
    assert table.lookup("ebs", "eu-west-1", "gp3_gb_month").reason == "unknown_region"  # plain lookup unchanged
    assert table.lookup_with_fallback("ebs", "eu-west-1", "gp3_gb_month") == PriceFact(
        0.0892,  # 0.08 x 1.115
        "ebs",
        "eu-west-1",
        "gp3_gb_month",
        "I-ebs_volume_test",
        estimated=True,
        reference_region="us-east-1",
        factor=1.115,
        reference_price=0.08,
    )
    # us-east-1 itself: the real price, not an estimate
    assert table.lookup_with_fallback("ebs", "us-east-1", "gp3_gb_month") == table.lookup(
        "ebs", "us-east-1", "gp3_gb_month"
    )
    # a sku the reference region lacks is unknown_sku in the asked region
    assert table.lookup_with_fallback("elb", "eu-west-1", "gwlb_hour") == PriceMiss(
        "unknown_sku", "elb", "eu-west-1", "gwlb_hour"
    )
    assert table.has_region("ebs", "eu-west-1", fallback=True) and not table.has_region("ebs", "eu-west-1")


def test_no_estimate_for_services_with_regional_data_or_regions_without_a_factor() -> None:
    data = load_default_prices().to_dict()
    del data["services"]["ec2"]["prices"]["eu-west-1"]  # eu-west-1 keeps its factor, EC2 loses its prices
    del data["services"]["nat"]["prices"]["eu-west-1"]
    table = PriceTable.from_dict(data)
    assert table.lookup_with_fallback("ec2", "eu-west-1", "m5.large").reason == "unknown_region"
    assert table.lookup_with_fallback("nat", "eu-west-1", "nat_gateway_hour").reason == "unknown_region"
    assert table.lookup_with_fallback("dynamodb", "eu-west-1", "read_capacity_unit_hour").reason == "unknown_region"
    assert table.lookup_with_fallback("sagemaker", "eu-west-1", "ml.g4dn.xlarge").reason == "unknown_region"
    for region in ("ca-northsouth-2r", "cn-north-1", ""):
        assert table.lookup_with_fallback("ebs", region, "gp3_gb_month").reason == "unknown_region"
    # a table restricted to lack a region lacks its factor too
    restricted = load_default_prices().without(regions=["eu-west-1"])
    assert restricted.lookup_with_fallback("ebs", "eu-west-1", "gp3_gb_month").reason == "unknown_region"
    # no reference data: nothing to scale
    no_reference = load_default_prices().without(regions=["us-east-1"])
    assert no_reference.lookup_with_fallback("ebs", "eu-west-1", "gp3_gb_month").reason == "unknown_region"


@settings(max_examples=60, deadline=None)
@given(
    service=st.sampled_from(["ebs", "elb", "opensearch", "rds_storage", "ec2", "nat", "vpc", "rds", "dynamodb"]),
    region=st.sampled_from([*sorted(load_default_prices().regional.factors), "us-east-1", "cn-north-1", "xx-fake-9"]),
    data=st.data(),
)
def test_fallback_is_reference_times_factor_or_exactly_lookup(service: str, region: str, data) -> None:
    table = load_default_prices()
    sku = data.draw(st.sampled_from(sorted(table.skus(service, "us-east-1"))))
    plain = table.lookup(service, region, sku)
    found = table.lookup_with_fallback(service, region, sku)
    if service in {"ebs", "elb", "opensearch", "rds_storage"} and region in table.regional.factors:
        reference = table.price(service, "us-east-1", sku)
        assert isinstance(found, PriceFact) and found.estimated
        assert found.price == pytest.approx(reference * table.regional.factors[region])
        assert found.price > 0 or reference == 0
    else:
        assert found == plain


@pytest.mark.parametrize(
    ("factor", "message"),
    [(0, "finite positive factor"), ("1.1", "finite positive factor"), (True, "finite positive factor")],
)
def test_bad_factor_is_refused(factor, message: str) -> None:
    data = load_default_prices().to_dict()
    data["regional_factors"]["regions"]["eu-west-1"]["factor"] = factor
    with pytest.raises(PriceTableError, match=message):
        PriceTable.from_dict(data)


# -- normalize: events priced with the estimate -------------------------------------------------------------------
def test_gp3_volume_in_eu_west_1_is_estimated() -> None:
    record = call(EC2, "CreateVolume", {}, {"volumeId": "vol-1", "volumeType": "gp3", "size": 100}, region="eu-west-1")
    [event] = events_of(record)
    assert event.hourly_cost == pytest.approx(100 * 0.08 * 1.115 / H)  # 0.012219...
    assert (event.cost_status, event.unpriced_reason, event.priced) == ("estimated_fallback", None, True)
    pricing = event.pricing
    assert (pricing["basis"], pricing["base_basis"]) == ("regional_fallback", "on_demand")
    assert (pricing["reference_region"], pricing["factor"]) == ("us-east-1", 1.115)
    assert (pricing["estimated_unit_price"], pricing["reference_unit_price"]) == (0.0892, 0.08)
    assert pricing["unit_price"] == 0.0892
    assert "eu-west-1/us-east-1 over 761 instance types" in pricing["factor_derivation"]
    [component] = pricing["components"]
    assert (component["estimated"], component["price"], component["reference_price"]) == (True, 0.0892, 0.08)


def test_gp3_iops_and_throughput_parts_are_estimated_too() -> None:
    record = call(
        EC2,
        "CreateVolume",
        {},
        {"volumeId": "vol-2", "volumeType": "gp3", "size": 100, "iops": 4000, "throughput": 250},
        region="eu-west-1",
    )
    [event] = events_of(record)
    # (100 GiB x 0.08 + 1000 extra IOPS x 0.005 + 125 extra MiB/s x 0.04) x 1.115 / 730
    assert event.hourly_cost == pytest.approx((100 * 0.08 + 1000 * 0.005 + 125 * 0.04) * 1.115 / H)
    assert [c["estimated"] for c in event.pricing["components"]] == [True, True, True]


def test_application_load_balancer_in_us_west_2() -> None:
    record = call(
        ELB,
        "CreateLoadBalancer",
        {"name": "web", "type": "application"},
        {"loadBalancers": [{"loadBalancerArn": "arn:lb/app/web/1"}]},
        region="us-west-2",
    )
    [event] = events_of(record)
    # factor 1.0: the figure equals us-east-1's, but it is still an estimate and says so
    assert (event.hourly_cost, event.cost_status, event.family) == (0.0225, "estimated_fallback", "application")
    assert (event.pricing["basis"], event.pricing["base_basis"]) == ("regional_fallback", "hourly_excluding_lcu")
    assert event.pricing["factor"] == 1.0


def test_snapshot_in_ap_southeast_2() -> None:
    record = call(
        EC2,
        "CreateSnapshot",
        {"volumeId": "vol-1"},
        {"snapshotId": "snap-1", "volumeId": "vol-1", "volumeSize": "50"},
        region="ap-southeast-2",
    )
    [event] = events_of(record)
    assert event.hourly_cost == pytest.approx(50 * 0.05 * 1.2534 / H)
    assert (event.resource_type, event.cost_status) == ("ebs_snapshot", "estimated_fallback")
    assert (event.pricing["basis"], event.pricing["base_basis"]) == ("regional_fallback", "full_volume_size_ceiling")


def test_opensearch_domain_in_eu_west_1() -> None:
    record = call(
        "es.amazonaws.com",
        "CreateDomain",
        {
            "domainName": "logs",
            "clusterConfig": {"instanceType": "c4.2xlarge.search", "instanceCount": 2},
            "eBSOptions": {"eBSEnabled": True, "volumeType": "gp2", "volumeSize": 100},
        },
        {"domainStatus": {"domainName": "logs"}},
        region="eu-west-1",
    )
    [event] = events_of(record)
    assert event.hourly_cost == pytest.approx((2 * 0.587 + 2 * 100 * 0.135 / H) * 1.115)
    assert event.cost_status == "estimated_fallback"


def test_ec2_instance_in_a_region_missing_from_the_table_is_still_unknown_region() -> None:
    data = prices().to_dict()
    del data["services"]["ec2"]["prices"]["eu-west-1"]  # the region's factor stays: EC2 must not use it
    table = PriceTable.from_dict(data)
    record = call(
        EC2,
        "RunInstances",
        {"instanceType": "m5.large"},
        {"instancesSet": {"items": [{"instanceId": "i-1", "instanceType": "m5.large"}]}},
        region="eu-west-1",
    )
    [event] = events_of(record, table)
    assert (event.hourly_cost, event.cost_status, event.unpriced_reason) == (None, "unpriced", "unknown_region")


def test_fake_region_is_still_unpriced() -> None:
    volume = call(
        EC2, "CreateVolume", {}, {"volumeId": "vol-1", "volumeType": "gp3", "size": 100}, region="ca-northsouth-2r"
    )
    balancer = call(
        ELB,
        "CreateLoadBalancer",
        {"name": "web"},
        {"loadBalancers": [{"loadBalancerArn": "arn:lb/app/web/1"}]},
        region="ca-northsouth-2r",
    )
    for record in (volume, balancer):
        [event] = events_of(record)
        assert (event.hourly_cost, event.cost_status, event.unpriced_reason) == (None, "unpriced", "unknown_region")
        assert event.pricing["basis"] != "regional_fallback"
        assert observations(entry(record), [event]) == [("unpriced_events", "unknown_region")]


def test_R16_ec2_events_stay_unpriced_even_where_a_factor_exists() -> None:
    """R16: the fallback never reaches EC2 — with the case's EC2 prices removed but the factors kept, the three
    RunInstances stay unpriced with the same reasons."""
    data = prices().to_dict()
    ec2 = data["services"]["ec2"]["prices"]
    del ec2["eu-south-1"], ec2["ap-southeast-3"]
    ec2["us-east-1"] = {sku: p for sku, p in ec2["us-east-1"].items() if not sku.startswith("c8g.")}
    table = PriceTable.from_dict(data)
    assert {"eu-south-1", "ap-southeast-3"} <= set(table.regional.factors)
    events = [e for r in case("R16") for e in events_of(r, table)]
    assert [e.hourly_cost for e in events] == [None, None, None]
    assert [e.cost_status for e in events] == ["unpriced"] * 3
    assert [e.unpriced_reason for e in events] == ["unknown_region", "unknown_region", "unknown_instance_type"]


# -- downstream: ledger, resume, scoring --------------------------------------------------------------------------
def test_rds_storage_estimate_survives_stop_and_start() -> None:
    create = call(
        RDS,
        "CreateDBInstance",
        {"dBInstanceIdentifier": "db1", "dBInstanceClass": "db.t3.micro", "engine": "mysql", "allocatedStorage": 20},
        None,
        region="us-west-1",
    )
    stop = call(RDS, "StopDBInstance", {"dBInstanceIdentifier": "db1"}, None, region="us-west-1", event_id="e2")
    start = call(RDS, "StartDBInstance", {"dBInstanceIdentifier": "db1"}, None, region="us-west-1", event_id="e3")
    ledger, events = fold([create, stop, start])
    hourly = 0.022 + 20 * 0.115 * 1.1667 / H  # us-west-1 db.t3.micro MySQL + estimated gp2 storage
    [row] = ledger.values()
    assert (row.state, row.hourly_cost, row.attributes["cost_status"]) == (
        "running",
        pytest.approx(hourly),
        "estimated_fallback",
    )
    assert [(e.event_name, e.cost_status) for e in events] == [
        ("CreateDBInstance", "estimated_fallback"),
        ("StartDBInstance", "estimated_fallback"),  # resumes at the ledger's rate, still labelled an estimate
    ]


def test_estimated_volumes_enter_the_baseline() -> None:
    """Scoring treats `hourly_cost` as the figure: estimated volumes in eu-west-1 build a consistent baseline."""
    baseline = None
    for n, size in enumerate((100, 100, 200), start=1):
        record = call(
            EC2,
            "CreateVolume",
            {},
            {"volumeId": f"vol-{n}", "volumeType": "gp3", "size": size},
            region="eu-west-1",
            event_id=f"e{n}",
        )
        result = normalize(entry(record), prices())
        assert not isinstance(result, Rejected)
        [event] = result
        baseline = baselines.fold(baseline, event)
    assert baseline.stats.n == 3
    assert baseline.stats.mean == pytest.approx((100 + 100 + 200) * 0.08 * 1.115 / H / 3)
