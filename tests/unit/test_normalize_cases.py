"""Field cases R02, R04, R09, R16 through normalize (and observations)."""

from __future__ import annotations

import pytest

from schemas.events import LogKind
from streams.normalize.pure import normalize, observations
from tests.unit.test_normalize_support import by_event_id, case, entry, events_of, prices

HOURS = 730


def test_R02_one_m5_large_in_us_east_1_at_the_table_price() -> None:
    [record] = case("R02")
    [event] = events_of(record)
    assert event.event_id == "00000000-0000-4000-8000-000000000201"
    assert (event.resource_type, event.instance_type, event.family) == ("ec2_instance", "m5.large", "m5")
    assert event.region == "us-east-1" and event.account_id == "111122223333"
    assert event.resource_ids == ("i-0020100aaaabbbbcc",)
    assert event.quantity == 1 and event.unit == "instance"
    assert event.hourly_cost == prices().price("ec2", "us-east-1", "m5.large") == 0.096
    assert event.cost_status == "priced" and event.priced
    assert event.pricing["source"] == "K-aws" and event.pricing["snapshot"] == "2026-07-20"
    assert event.ordinal == 0


def test_R04_three_hourly_events_and_one_storage_event_with_canonical_actors() -> None:
    records = case("R04")
    events = [e for r in records for e in events_of(r)]
    assert [(e.event_id[-4:], e.resource_type) for e in events] == [
        ("0401", "ec2_instance"),
        ("0402", "ec2_instance"),
        ("0403", "ebs_volume"),
        ("0404", "ec2_instance"),
    ]
    t3_micro, m5_large, volume, c5_large = events
    assert t3_micro.hourly_cost == 0.0104
    assert m5_large.hourly_cost == 0.096
    assert c5_large.hourly_cost == 0.085
    # 100 GiB gp3 at $0.08 per GB-month; 3,000 IOPS and 125 MiB/s are the free gp3 baseline
    assert volume.hourly_cost == pytest.approx(100 * 0.08 / HOURS)
    assert (volume.quantity, volume.unit, volume.family) == (100, "GiB", "gp3")
    assert volume.resource_ids == ("vol-0aaa1111bbbb0403c",)
    assert [e.actor.key for e in events] == [
        "arn:aws:iam::111122223333:user/alice",
        "service:autoscaling.amazonaws.com",
        "arn:aws:iam::111122223333:root",
        "arn:aws:iam::111122223333:role/deploy-role",
    ]
    assert m5_large.actor.automation and not t3_micro.actor.automation
    assert c5_large.actor.detail == "bob"
    # 0405 (sso CreateToken) and 0406 (sts AssumeRole) create nothing
    for event_id in ("00000000-0000-4000-8000-000000000405", "00000000-0000-4000-8000-000000000406"):
        assert events_of(by_event_id(records, event_id)) == []
    # the account comes from recipientAccountId (0406 has no userIdentity.accountId)
    assert entry(by_event_id(records, "00000000-0000-4000-8000-000000000406")).account_id == "111122223333"


def test_R09_failed_creates_make_no_cost_event_but_are_counted() -> None:
    records = case("R09")
    results = [(r, normalize(entry(r), prices())) for r in records]
    priced = [(r, evs) for r, evs in results if evs]
    assert len(priced) == 1
    [(record, [event])] = priced
    assert record["eventID"] == "00000000-0000-4000-8000-000000000901"
    assert (event.instance_type, event.hourly_cost) == ("m5.large", 0.096)
    counted = [obs for r, evs in results for obs in observations(entry(r), evs)]
    assert counted == [
        ("failed_create_attempts", "Client.UnauthorizedOperation"),
        ("failed_create_attempts", "Server.InsufficientInstanceCapacity"),
        ("failed_create_attempts", "Client.VolumeLimitExceeded"),
    ]
    # responseElements: null on the failed records is not a problem
    assert all(r["responseElements"] is None for r in records[1:])


def test_R16_missing_region_or_type_is_unpriced_never_zero() -> None:
    table = prices().without(regions=["eu-south-1", "ap-southeast-3"], sku_prefixes=["c8g."])
    events = [e for r in case("R16") for e in events_of(r, table)]
    assert [(e.region, e.instance_type, e.family) for e in events] == [
        ("eu-south-1", "m5.2xlarge", "m5"),
        ("ap-southeast-3", "m5.large", "m5"),
        ("us-east-1", "c8g.large", "c8g"),
    ]
    assert [e.hourly_cost for e in events] == [None, None, None]
    assert [e.cost_status for e in events] == ["unpriced"] * 3
    assert [e.unpriced_reason for e in events] == ["unknown_region", "unknown_region", "unknown_instance_type"]
    assert not any(e.priced for e in events)
    counted = [obs for r in case("R16") for obs in observations(entry(r), events_of(r, table))]
    assert counted == [
        ("unpriced_events", "unknown_region"),
        ("unpriced_events", "unknown_region"),
        ("unpriced_events", "unknown_instance_type"),
    ]


def test_R16_with_the_shipped_table_the_same_records_are_priced() -> None:
    events = [e for r in case("R16") for e in events_of(r)]
    assert [e.hourly_cost for e in events] == [0.448, 0.12, 0.07976]


def test_insight_entries_are_never_priced() -> None:
    [record] = case("R02")
    insight = entry(record)
    insight = type(insight)(**{**{f: getattr(insight, f) for f in insight.__slots__}, "kind": LogKind.INSIGHT})
    assert normalize(insight, prices()) == []
