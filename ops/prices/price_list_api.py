"""Refresh the EC2 part of a price snapshot from the AWS Price List API (boto3 `pricing` client).

Not run by tests or by the product: it needs AWS credentials with `pricing:GetProducts` and network access.

    .venv/bin/python -m ops.prices.price_list_api --regions us-east-1 eu-west-1 --date 2026-09-01

reads the shipped snapshot, replaces `services.ec2.prices[<region>]` for each region asked for with the Linux /
shared-tenancy / on-demand prices the API returns, records the refresh as a source (`A-price-list-api`), and
writes `streams/prices/data/prices-<date>.json.gz`. Every other service keeps the shipped values. To make the
product use the new file, point `streams.prices.table.DEFAULT_SNAPSHOT` at it (or pass `--prices FILE` to
replay/backtest).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ops.prices.build_snapshot import DATA_DIR, encode
from streams.prices.table import PriceTable, load_default_prices

SOURCE_ID = "A-price-list-api"
_FILTERS = {
    "operatingSystem": "Linux",
    "tenancy": "Shared",
    "preInstalledSw": "NA",
    "capacitystatus": "Used",
    "licenseModel": "No License required",
}


def _products(client: Any, region: str) -> Iterator[dict[str, Any]]:
    filters = [{"Type": "TERM_MATCH", "Field": k, "Value": v} for k, v in _FILTERS.items()]
    filters.append({"Type": "TERM_MATCH", "Field": "regionCode", "Value": region})
    paginator = client.get_paginator("get_products")
    for page in paginator.paginate(ServiceCode="AmazonEC2", Filters=filters, FormatVersion="aws_v1"):
        for item in page.get("PriceList", []):
            yield json.loads(item) if isinstance(item, str) else item


def ec2_prices(products: Iterable[dict[str, Any]]) -> dict[str, float]:
    """instance type -> on-demand USD/hour, from Price List API product documents."""
    out: dict[str, float] = {}
    for product in products:
        itype = product.get("product", {}).get("attributes", {}).get("instanceType")
        for term in product.get("terms", {}).get("OnDemand", {}).values():
            for dim in term.get("priceDimensions", {}).values():
                usd = dim.get("pricePerUnit", {}).get("USD")
                if itype and usd is not None and dim.get("unit") == "Hrs":
                    price = float(usd)
                    if price > 0:
                        out[itype] = price
    return out


def refresh_from_price_list_api(
    regions: Iterable[str],
    snapshot_date: str | None = None,
    out_dir: Path = DATA_DIR,
    base: PriceTable | None = None,
    client: Any = None,
) -> Path:
    """Write a new dated snapshot with fresh EC2 prices for `regions`; returns its path."""
    if client is None:
        import boto3  # only here: the product never calls AWS for prices

        client = boto3.client("pricing", region_name="us-east-1")
    date = snapshot_date or dt.date.today().isoformat()
    data = (base or load_default_prices()).to_dict()
    ec2 = data["services"]["ec2"]
    region_source = ec2.setdefault("region_source", {})
    for region in regions:
        prices = ec2_prices(_products(client, region))
        if prices:
            ec2["prices"][region] = prices
            region_source[region] = SOURCE_ID
    ec2["sources"] = sorted({*ec2.get("sources", []), SOURCE_ID})
    data["sources"][SOURCE_ID] = {
        "source": "AWS Price List API (pricing:GetProducts, ServiceCode AmazonEC2)",
        "data_date": date,
        "description": f"EC2 Linux/shared/on-demand prices for {sorted(regions)}",
        "confidence": "high",
    }
    data["snapshot_date"] = date
    PriceTable.from_dict(data)  # validate before writing
    out = Path(out_dir) / f"prices-{date}.json.gz"
    out.write_bytes(encode(data))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Refresh EC2 prices from the AWS Price List API.")
    parser.add_argument("--regions", nargs="+", required=True)
    parser.add_argument("--date", default=None, help="snapshot date (default: today)")
    parser.add_argument("--out-dir", type=Path, default=DATA_DIR)
    args = parser.parse_args(argv)
    print(refresh_from_price_list_api(args.regions, args.date, args.out_dir))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
