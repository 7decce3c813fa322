"""The shipped price snapshot, its loader and its builder (no network)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from types import MappingProxyType

import pytest

from ops.prices.build_snapshot import SOURCES, build, encode
from ops.prices.price_list_api import ec2_prices, refresh_from_price_list_api
from streams.prices.table import (
    DEFAULT_SNAPSHOT,
    PriceFact,
    PriceMiss,
    PriceTable,
    PriceTableError,
    load_default_prices,
    load_prices,
)

SHIPPED = Path(__file__).resolve().parents[2] / "streams" / "prices" / "data" / DEFAULT_SNAPSHOT


def test_default_snapshot_is_dated_and_cited() -> None:
    table = load_default_prices()
    assert DEFAULT_SNAPSHOT == "prices-2026-07-20.json.gz"
    assert table.snapshot_date == "2026-07-20"
    assert table.currency == "USD"
    assert table.hours_per_month == 730
    assert set(table.services) == {
        "ec2",
        "ebs",
        "elb",
        "nat",
        "vpc",
        "eks",
        "rds",
        "rds_storage",
        "elasticache",
        "redshift",
        "opensearch",
        "msk",
        "sagemaker",
        "dynamodb",
    }
    # every service names sources that the snapshot describes
    for service in table.services.values():
        assert service.source in table.sources
        for region_source in service.region_source.values():
            for part in region_source.split("+"):
                assert part in table.sources
    assert "karpenter-provider-aws" in table.sources["K-aws"]["source"]
    assert table.sources["M-dynamodb"]["source"].startswith("aws.amazon.com/dynamodb/pricing")
    assert SHIPPED.stat().st_size < 300_000


def test_loaded_once_per_process() -> None:
    assert load_default_prices() is load_default_prices()


def test_known_prices_and_their_source() -> None:
    table = load_default_prices()
    assert table.lookup("ec2", "us-east-1", "m5.large") == PriceFact(0.096, "ec2", "us-east-1", "m5.large", "K-aws")
    assert table.lookup("ec2", "us-gov-west-1", "m5.large") == PriceFact(
        0.121, "ec2", "us-gov-west-1", "m5.large", "K-aws-us-gov"
    )
    assert table.lookup("ec2", "eu-south-1", "m5.2xlarge") == PriceFact(
        0.448, "ec2", "eu-south-1", "m5.2xlarge", "L-ec2"
    )
    assert table.price("ebs", "us-east-1", "gp3_gb_month") == 0.08
    assert table.price("nat", "eu-west-1", "nat_gateway_hour") is not None
    assert table.price("rds", "us-east-1", "db.t3.micro|mysql") == 0.017
    assert table.price("dynamodb", "us-east-1", "write_capacity_unit_hour") == 0.00065
    assert table.price("dynamodb", "us-east-1", "read_capacity_unit_hour") == 0.00013


def test_missing_region_is_unknown_never_borrowed_from_us_east_1() -> None:
    table = load_default_prices()
    # EBS / ELB data exists for us-east-1 only: another region is unknown, not priced with us-east-1's rate
    assert table.lookup("ebs", "eu-west-1", "gp3_gb_month") == PriceMiss(
        "unknown_region", "ebs", "eu-west-1", "gp3_gb_month"
    )
    assert table.lookup("elb", "eu-west-1", "alb_hour").reason == "unknown_region"
    assert table.lookup("ec2", "cn-north-1", "m5.large").reason == "unknown_region"  # CNY data is not used
    assert table.lookup("ec2", "us-east-1", "m99.huge").reason == "unknown_sku"
    assert table.lookup("lightsail", "us-east-1", "x").reason == "unknown_service"
    assert not table.has_region("ebs", "eu-west-1")


def test_table_is_immutable() -> None:
    table = load_default_prices()
    with pytest.raises(AttributeError):
        table.snapshot_date = "2030-01-01"  # type: ignore[misc]
    assert isinstance(table.services, MappingProxyType)
    with pytest.raises(TypeError):
        table.services["ec2"].prices["us-east-1"]["m5.large"] = 0.0  # type: ignore[index]


def test_without_builds_a_restricted_table() -> None:
    """R16 needs a table lacking eu-south-1, ap-southeast-3 and the c8g family."""
    restricted = load_default_prices().without(regions=["eu-south-1", "ap-southeast-3"], sku_prefixes=["c8g."])
    assert restricted.lookup("ec2", "eu-south-1", "m5.2xlarge").reason == "unknown_region"
    assert restricted.lookup("ec2", "ap-southeast-3", "m5.large").reason == "unknown_region"
    assert restricted.lookup("ec2", "us-east-1", "c8g.large").reason == "unknown_sku"
    assert restricted.price("ec2", "us-east-1", "m5.large") == 0.096
    assert load_default_prices().price("ec2", "us-east-1", "c8g.large") == 0.07976  # original untouched


def test_load_prices_reads_plain_and_gzipped_files(tmp_path: Path) -> None:
    data = load_default_prices().to_dict()
    data["services"] = {"ec2": data["services"]["ec2"]}
    plain = tmp_path / "prices.json"
    plain.write_text(json.dumps(data))
    zipped = tmp_path / "prices.bin"  # gzip decided by magic bytes, not by the name
    zipped.write_bytes(gzip.compress(plain.read_bytes()))
    for path in (plain, zipped):
        table = load_prices(path)
        assert table.price("ec2", "us-east-1", "m5.large") == 0.096
        assert table.origin == str(path)
        assert set(table.services) == {"ec2"}


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(format="other/9"), "not a dd0c-prices/1 snapshot"),
        (lambda d: d.update(currency="EUR"), "currency must be USD"),
        (lambda d: d["services"]["ec2"]["prices"]["us-east-1"].update({"m5.large": -1}), "finite non-negative"),
        (lambda d: d["services"]["ec2"]["prices"]["us-east-1"].update({"m5.large": "0.1"}), "finite non-negative"),
        (lambda d: d["services"]["ec2"].pop("prices"), "has no 'prices' object"),
    ],
)
def test_bad_snapshot_is_refused(tmp_path: Path, mutate, message: str) -> None:
    data = load_default_prices().to_dict()
    mutate(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(PriceTableError, match=message):
        load_prices(path)


def test_unreadable_snapshot_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PriceTableError, match="cannot read"):
        load_prices(tmp_path / "absent.json.gz")
    junk = tmp_path / "junk.json"
    junk.write_bytes(b"\x00\x01 not json")
    with pytest.raises(PriceTableError, match="not JSON"):
        load_prices(junk)


def test_builder_reproduces_the_shipped_snapshot_from_repo_copies() -> None:
    """One command rebuilds the shipped file byte for byte, reading only ops/prices/sources/."""
    assert SOURCES.parts[-2:] == ("prices", "sources")
    assert encode(build(SOURCES)) == SHIPPED.read_bytes()


def test_builder_precedence() -> None:
    snapshot = build(SOURCES)
    ec2 = snapshot["services"]["ec2"]
    assert ec2["region_source"]["us-east-1"] == "K-aws"
    assert ec2["region_source"]["eu-west-1"] == "L-ec2"
    assert "us-east-1-bos-1" not in ec2["prices"]  # Local Zones never appear as awsRegion
    # m6g.metal: Karpenter (newer) wins over the older pricing-page feed
    assert ec2["prices"]["us-east-1"]["m6g.metal"] == 2.6112
    # RDS us-east-1: infracost sample overrides vantage; BYOL Oracle editions share one key
    assert snapshot["services"]["rds"]["prices"]["us-east-1"]["db.t3.large|oracle:byol"] == 0.136
    assert snapshot["services"]["rds"]["multi_az_factor"] == 2.0


class _FakePricing:
    """Stands in for boto3's pricing client: one page with two products."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def get_paginator(self, name: str) -> _FakePricing:
        assert name == "get_products"
        return self

    def paginate(self, **kwargs) -> list[dict]:
        self.calls.append(kwargs)
        return [{"PriceList": [json.dumps(_product("m5.large", "0.0999")), json.dumps(_product("zz.tiny", "0"))]}]


def _product(itype: str, usd: str) -> dict:
    return {
        "product": {"attributes": {"instanceType": itype}},
        "terms": {"OnDemand": {"T": {"priceDimensions": {"D": {"unit": "Hrs", "pricePerUnit": {"USD": usd}}}}}},
    }


def test_price_list_api_refresh_writes_a_new_dated_snapshot(tmp_path: Path) -> None:
    assert ec2_prices([_product("c5.large", "0.085")]) == {"c5.large": 0.085}
    client = _FakePricing()
    out = refresh_from_price_list_api(["eu-west-1"], "2026-09-01", tmp_path, client=client)
    assert out.name == "prices-2026-09-01.json.gz"
    table = load_prices(out)
    assert table.snapshot_date == "2026-09-01"
    assert table.lookup("ec2", "eu-west-1", "m5.large") == PriceFact(
        0.0999, "ec2", "eu-west-1", "m5.large", "A-price-list-api"
    )
    assert table.lookup("ec2", "eu-west-1", "zz.tiny").reason == "unknown_sku"  # a zero price is not a price
    assert table.price("ec2", "us-east-1", "m5.large") == 0.096  # other regions keep the shipped values
    filters = {f["Field"]: f["Value"] for f in client.calls[0]["Filters"]}
    assert filters["regionCode"] == "eu-west-1" and filters["tenancy"] == "Shared"


def test_to_dict_round_trip_is_equal() -> None:
    table = load_default_prices()
    again = PriceTable.from_dict(table.to_dict())
    assert again.to_dict() == table.to_dict()
