"""Build the dated price snapshot shipped in `streams/prices/data/` from the raw copies in `ops/prices/sources/`.

    .venv/bin/python -m ops.prices.build_snapshot            # writes streams/prices/data/prices-<date>.json.gz
    .venv/bin/python -m ops.prices.build_snapshot --out X    # somewhere else

Reproducible: the same sources give byte-identical output (sorted keys, gzip mtime 0). Reads nothing outside
`ops/prices/sources/`.

Which source wins where two overlap (and why):
* ec2 — Karpenter (generated 2026-07-20) for us-east-1 and GovCloud; the AWS pricing-page feed (L-ec2, 2025-11)
  for every other region. L and Karpenter agree on all 801 shared us-east-1 types except 9 `*.metal`; Karpenter
  is newer and covers 1,367 types. Local/Wavelength zones are dropped: CloudTrail's awsRegion never names them.
  China (CNY) is left out: the table is USD only, so cn-* regions are unknown.
* rds — vantage (2021-08) single-AZ prices per engine and region; for us-east-1 the infracost samples (2024-2026)
  override the same class/engine. Oracle BYOL prices do not depend on the edition, so every BYOL Oracle engine
  shares the key `oracle:byol`.
* elasticache — vantage (2022-02, filtered for corruption upstream); infracost samples override us-east-1.
* redshift — L-redshift per region; infracost adds ds2.8xlarge for us-east-1 (retired from the feed).
* ebs, elb, opensearch, rds_storage — us-east-1 only (infracost). Other regions are unknown, never us-east-1's.
* nat, vpc, eks, msk — L feeds per region.
* dynamodb — hand-typed us-east-1 list prices in `manual_prices.json` (no generated source has DynamoDB).
* sagemaker — the hand-copied GPU table (region assumed us-east-1, low confidence).

Regional factors (`regional_factors`): for ebs, elb, opensearch and rds_storage, whose only data is us-east-1, the
product may show an *estimate* elsewhere: the us-east-1 price x the region's factor, labelled
`estimated_fallback` (case R16). No regional price is typed by hand: a region's factor is the median, over the EC2
instance types priced in both regions, of price(region) / price(us-east-1), rounded to 4 decimals (EC2 is the one
service with data for every region). The NAT gateway and interface-endpoint hourly ratios are stored next to it as
a cross-check; a region where either differs from the factor by more than 15% (or that has neither) is marked
`confidence: low`. A region with fewer than 20 shared EC2 types gets no factor, so it stays unknown. DynamoDB
(hand-typed) and SageMaker (region not stated by its source) get no estimate.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import re
import statistics
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "sources"
REPO = HERE.parent.parent
DATA_DIR = REPO / "streams" / "prices" / "data"
FORMAT = "dd0c-prices/1"
HOURS_PER_MONTH = 730

# Real region codes only (us-east-1, us-gov-west-1, ap-southeast-7); drops Local/Wavelength zone codes.
_REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d+$")

# vantage RDS file name -> AWS API engine name (what CreateDBInstance carries in `engine`).
_RDS_ENGINES = {
    "rds_mysql": "mysql",
    "rds_postgresql": "postgres",
    "rds_mariadb": "mariadb",
    "rds_aurora_mysql": "aurora-mysql",
    "rds_aurora_postgresql": "aurora-postgresql",
    "rds_oracle_se2": "oracle-se2",
    "rds_oracle_se2_byol": "oracle:byol",
    "rds_oracle_se_byol": "oracle:byol",
    "rds_sqlserver_ee": "sqlserver-ee",
    "rds_sqlserver_se": "sqlserver-se",
    "rds_sqlserver_ex": "sqlserver-ex",
    "rds_sqlserver_web": "sqlserver-web",
}

# infracost engine label -> our engine key (labels of BYOL Oracle editions all price the same).
_INFRACOST_RDS_ENGINES = {
    "mysql": "mysql",
    "postgres": "postgres",
    "mariadb": "mariadb",
    "aurora": "aurora-mysql",
    "aurora-mysql": "aurora-mysql",
    "aurora-postgresql": "aurora-postgresql",
    "oracle-se2": "oracle-se2",
    "oracle-se2-cdb": "oracle-se2-cdb",
    "oracle-se1": "oracle-se1",
    "oracle-ee": "oracle:byol",
    "oracle-ee-cdb": "oracle:byol",
    "oracle-se": "oracle:byol",
    "oracle-se1(byol)": "oracle:byol",
    "sqlserver-ee": "sqlserver-ee",
    "sqlserver-se": "sqlserver-se",
    "sqlserver-ex": "sqlserver-ex",
    "sqlserver-web": "sqlserver-web",
}

_RDS_STORAGE_KEYS = {  # infracost key -> snapshot key (all single-AZ, per GB-month / IOPS-month / ACU-hour)
    "gp2_gb_month_single_az": "gp2_gb_month",
    "gp3_gb_month_single_az": "gp3_gb_month",
    "io1_gb_month_single_az": "io1_gb_month",
    "io1_iops_month_single_az": "io1_iops_month",
    "magnetic_gb_month_single_az": "standard_gb_month",
    "gp3_iops_month_above_baseline_single_az": "gp3_iops_month_above_baseline",
    "aurora_storage_gb_month": "aurora_storage_gb_month",
    "aurora_serverless_v2_acu_hour": "aurora_serverless_v2_acu_hour",
}

_OPENSEARCH_STORAGE_KEYS = {
    "storage_gp2_gb_month": "gp2_gb_month",
    "storage_gp3_gb_month": "gp3_gb_month",
    "storage_io1_gb_month": "io1_gb_month",
    "storage_standard_gb_month": "standard_gb_month",
    "io1_iops_month": "io1_iops_month",
}

_EBS_KEYS = (
    "gp2_gb_month",
    "gp3_gb_month",
    "gp3_iops_month_above_3000",
    "gp3_throughput_mibps_month_above_125",
    "io1_gb_month",
    "io1_iops_month",
    "io2_gb_month",
    "io2_iops_month",
    "st1_gb_month",
    "sc1_gb_month",
    "standard_gb_month",
    "snapshot_standard_gb_month",
)

_ELB_KEYS = ("alb_hour", "nlb_hour", "clb_hour")

# Regional fallback (see the module docstring): which services may be estimated outside the reference region,
# from which EC2 ratios, and what cross-checks them.
REFERENCE_REGION = "us-east-1"
FALLBACK_SERVICES = ("ebs", "elb", "opensearch", "rds_storage")
FACTOR_MIN_TYPES = 20
_CROSS_CHECKS = (("nat", "nat_gateway_hour"), ("vpc", "interface_endpoint_hour_per_az"))
_CROSS_CHECK_TOLERANCE = 0.15


class BuildError(Exception):
    pass


def _check_price(where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise BuildError(f"{where}: not a finite non-negative price: {value!r}")
    return float(value)


def _put(prices: dict[str, dict[str, float]], region: str, sku: str, value: Any, where: str) -> None:
    prices.setdefault(region, {})[sku] = _check_price(f"{where} {region} {sku}", value)


def _real_regions(table: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r: v for r, v in table.items() if _REGION.match(r)}


def _service(
    unit: str, source: str, prices: dict[str, dict[str, float]], also: tuple[str, ...] = (), **extra: Any
) -> dict[str, Any]:
    """`source` is the id a price is attributed to by default (`region_source` overrides it per region);
    `sources` lists every id the service draws on."""
    out: dict[str, Any] = {"unit": unit, "source": source, "sources": sorted({source, *also}), "prices": prices}
    out.update(extra)
    return out


def _ec2(karpenter: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    prices: dict[str, dict[str, float]] = {}
    region_source: dict[str, str] = {}
    for region, table in _real_regions(other["ec2_linux_ondemand"]).items():
        for sku, value in table.items():
            _put(prices, region, sku, value, "L-ec2")
        region_source[region] = "L-ec2"
    for region, table in karpenter["regions"].items():
        prices[region] = {}  # Karpenter replaces L for its regions wholesale (newer and a superset)
        for sku, value in table.items():
            _put(prices, region, sku, value, "karpenter")
        region_source[region] = "K-aws" if region == "us-east-1" else "K-aws-us-gov"
    return _service(
        "USD per instance-hour (Linux, shared tenancy, on-demand)",
        "L-ec2",
        prices,
        also=("K-aws", "K-aws-us-gov"),
        region_source=region_source,
    )


def _rds(other: dict[str, Any]) -> dict[str, Any]:
    prices: dict[str, dict[str, float]] = {}
    for name, engine in _RDS_ENGINES.items():
        for region, table in _real_regions(other[name]).items():
            for cls, value in table.items():
                _put(prices, region, f"{cls}|{engine}", value, name)
    for key, value in other["rds_instance_samples"]["us-east-1"].items():
        cls, label, deployment = key.split("|")
        if deployment == "multi-az":
            continue  # used only as the cross-check that multi-AZ = 2 x single-AZ
        _put(prices, "us-east-1", f"{cls}|{_INFRACOST_RDS_ENGINES[label]}", value, "rds_instance_samples")
    return _service(
        "USD per instance-hour, Single-AZ, on-demand; sku = '<class>|<engine>' (engine as the RDS API names it; "
        "'oracle:byol' for every bring-your-own-license Oracle edition)",
        "V-rds",
        prices,
        also=("I-db_instance_test", "I-rds_cluster_instance_test"),
        region_source={"us-east-1": "I-db_instance_test+V-rds"},
        multi_az_factor=2.0,
    )


def _rds_storage(other: dict[str, Any]) -> dict[str, Any]:
    prices: dict[str, dict[str, float]] = {}
    for src, dst in _RDS_STORAGE_KEYS.items():
        _put(prices, "us-east-1", dst, other["rds_storage"]["us-east-1"][src], "rds_storage")
    return _service(
        "USD per GB-month / IOPS-month (single-AZ; multi-AZ is 2x) or per ACU-hour",
        "I-db_instance_test",
        prices,
    )


def _elasticache(other: dict[str, Any]) -> dict[str, Any]:
    prices: dict[str, dict[str, float]] = {}
    for region, table in _real_regions(other["elasticache_node"]).items():
        for sku, value in table.items():
            _put(prices, region, sku, value, "V-cache")
    for sku, value in other["elasticache_samples"]["us-east-1"].items():
        if sku.startswith("cache."):
            _put(prices, "us-east-1", sku, value, "elasticache_samples")
    return _service(
        "USD per node-hour (Redis OSS / Memcached)",
        "V-cache",
        prices,
        also=("I-elasticache_cluster_test", "I-elasticache_replication_group_test"),
        region_source={"us-east-1": "I-elasticache_cluster_test+V-cache"},
    )


def _redshift(other: dict[str, Any]) -> dict[str, Any]:
    prices: dict[str, dict[str, float]] = {}
    for region, table in _real_regions(other["redshift"]).items():
        for sku, value in table.items():
            _put(prices, region, sku, value, "L-redshift")
    for sku, value in other["redshift_samples"]["us-east-1"].items():
        if "." in sku and sku not in prices["us-east-1"]:
            _put(prices, "us-east-1", sku, value, "redshift_samples")
    return _service("USD per node-hour", "L-redshift", prices, also=("I-redshift_cluster_test",))


def _per_region(other: dict[str, Any], name: str, unit: str, source: str) -> dict[str, Any]:
    prices: dict[str, dict[str, float]] = {}
    for region, table in _real_regions(other[name]).items():
        for sku, value in table.items():
            _put(prices, region, sku, value, name)
    return _service(unit, source, prices)


def _msk(other: dict[str, Any]) -> dict[str, Any]:
    prices: dict[str, dict[str, float]] = {}
    for name in ("msk_broker", "msk_express_broker", "msk_other"):
        for region, table in _real_regions(other[name]).items():
            for sku, value in table.items():
                _put(prices, region, sku, value, name)
    return _service(
        "USD per broker-hour (kafka.* / express.*); broker_storage_gb_month per GB-month",
        "L-msk",
        prices,
    )


def _us_east_1_only(
    other: dict[str, Any], name: str, keys: dict[str, str], unit: str, source: str, also: tuple[str, ...] = ()
) -> dict[str, Any]:
    prices: dict[str, dict[str, float]] = {}
    for src, dst in keys.items():
        _put(prices, "us-east-1", dst, other[name]["us-east-1"][src], name)
    return _service(unit, source, prices, also=also)


def _opensearch(other: dict[str, Any]) -> dict[str, Any]:
    table = other["opensearch"]["us-east-1"]
    prices: dict[str, dict[str, float]] = {}
    for sku, value in table.items():
        if sku.endswith(".search"):
            _put(prices, "us-east-1", sku, value, "opensearch")
    for src, dst in _OPENSEARCH_STORAGE_KEYS.items():
        _put(prices, "us-east-1", dst, table[src], "opensearch")
    return _service(
        "USD per instance-hour (<type>.search); storage per GB-month, io1 per IOPS-month",
        "I-opensearch_domain_test",
        prices,
        also=("I-elasticsearch_domain_test",),
    )


def _sagemaker(other: dict[str, Any]) -> dict[str, Any]:
    prices: dict[str, dict[str, float]] = {}
    for sku, value in other["sagemaker_secondary"]["us-east-1"].items():
        _put(prices, "us-east-1", sku, value, "sagemaker_secondary")
    return _service(
        "USD per instance-hour (ml.*; component and region not stated by the source)",
        "S-goerlitz",
        prices,
        confidence="low",
    )


def _manual(manual: dict[str, Any]) -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = {}
    for fact in manual["facts"]:
        service = services.setdefault(fact["service"], _service(fact["unit"], fact["source"], {}, notes=[]))
        _put(service["prices"], fact["region"], fact["sku"], fact["price"], "manual")
        service["notes"].append(f"{fact['sku']}: {fact['from']}")
    return services


def _region_factor(services: dict[str, dict[str, Any]], region: str) -> dict[str, Any] | None:
    """One region's factor against REFERENCE_REGION, or None when too few EC2 types are priced in both."""
    ec2 = services["ec2"]
    ref, here = ec2["prices"][REFERENCE_REGION], ec2["prices"][region]
    ratios = sorted((price / ref[sku], sku) for sku, price in here.items() if price > 0 and ref.get(sku, 0) > 0)
    count = len(ratios)
    if count < FACTOR_MIN_TYPES:
        return None
    factor = round(statistics.median(ratio for ratio, _ in ratios), 4)
    checks: dict[str, float] = {}
    for service, sku in _CROSS_CHECKS:
        prices = services[service]["prices"]
        there, mine = prices.get(REFERENCE_REGION, {}).get(sku), prices.get(region, {}).get(sku)
        if there and mine:
            checks[f"{service}:{sku}"] = round(mine / there, 4)
    agree = bool(checks) and all(abs(v / factor - 1) <= _CROSS_CHECK_TOLERANCE for v in checks.values())
    sources = ec2["region_source"]
    return {
        "factor": factor,
        "ec2_types": count,
        # the type(s) at the middle of the sorted ratios, so a person can redo the division by hand
        "median_of": sorted({ratios[(count - 1) // 2][1], ratios[count // 2][1]}),
        "ec2_sources": [sources.get(region, ec2["source"]), sources.get(REFERENCE_REGION, ec2["source"])],
        "cross_check": checks,
        "confidence": "medium" if agree else "low",
    }


def _regional_factors(services: dict[str, dict[str, Any]], snapshot_date: str) -> dict[str, Any]:
    for name in FALLBACK_SERVICES:
        if not services[name]["prices"].get(REFERENCE_REGION):
            raise BuildError(f"fallback service {name} has no {REFERENCE_REGION} prices")
    regions: dict[str, Any] = {}
    for region in sorted(services["ec2"]["prices"]):
        if region != REFERENCE_REGION:
            found = _region_factor(services, region)
            if found is not None:
                regions[region] = found
    return {
        "reference_region": REFERENCE_REGION,
        "services": list(FALLBACK_SERVICES),
        "method": f"median over the EC2 instance types priced in both regions of price(region) / "
        f"price({REFERENCE_REGION}), rounded to 4 decimals; at least {FACTOR_MIN_TYPES} types",
        "cross_check": "the same ratio for " + " and ".join(f"{s}:{k}" for s, k in _CROSS_CHECKS) + "; confidence "
        f"is low when one differs from the factor by more than {_CROSS_CHECK_TOLERANCE:.0%} or none exists",
        "use": "estimate = reference-region price x factor, only where the service has no price for the region; "
        "events priced this way are cost_status estimated_fallback",
        "derived_on": snapshot_date,
        "regions": regions,
    }


def _sources(karpenter: dict[str, Any], other: dict[str, Any], manual: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in other["sources"]:
        out[item["id"]] = {k: v for k, v in item.items() if k != "id"}
    ids = {"zz_generated.pricing_aws.go": "K-aws", "zz_generated.pricing_aws_us_gov.go": "K-aws-us-gov"}
    for item in karpenter["files"]:
        for suffix, sid in ids.items():
            if suffix in item["source"] and item["source"].split("@")[0].endswith(suffix):
                out[sid] = {
                    "source": item["source"],
                    "data_date": item["generated"],
                    "description": "Karpenter's generated initial on-demand price table "
                    f"({item['variable']}; regions {sorted(item['regions'])})",
                    "confidence": "high",
                }
    for item in manual["sources"]:
        out[item["id"]] = {k: v for k, v in item.items() if k != "id"}
    return out


def build(sources_dir: Path = SOURCES) -> dict[str, Any]:
    """The whole snapshot as a plain dict (what gets written, gzipped)."""
    karpenter = json.loads((sources_dir / "ec2_ondemand.json").read_text())
    other = json.loads((sources_dir / "other_prices.json").read_text())
    manual = json.loads((sources_dir / "manual_prices.json").read_text())
    if karpenter.get("currency") != "USD" or other.get("currency") != "USD":
        raise BuildError("sources must be in USD")
    services: dict[str, dict[str, Any]] = {
        "ec2": _ec2(karpenter, other),
        "ebs": _us_east_1_only(
            other,
            "ebs",
            {k: k for k in _EBS_KEYS},
            "USD per GB-month, per provisioned IOPS-month or per MiB/s-month (gp3 above its free baseline)",
            "I-ebs_volume_test",
            also=("I-ebs_snapshot_test",),
        ),
        "elb": _us_east_1_only(
            other, "elb", {k: k for k in _ELB_KEYS}, "USD per load-balancer-hour", "I-lb_test", also=("I-elb_test",)
        ),
        "nat": _per_region(other, "nat_gateway", "USD per gateway-hour (per GB for *_gb)", "L-nat"),
        "vpc": _per_region(other, "vpc_network", "USD per hour (per GB for *_gb)", "L-vpc"),
        "eks": _per_region(other, "eks", "USD per cluster-hour", "L-eks"),
        "rds": _rds(other),
        "rds_storage": _rds_storage(other),
        "elasticache": _elasticache(other),
        "redshift": _redshift(other),
        "opensearch": _opensearch(other),
        "msk": _msk(other),
        "sagemaker": _sagemaker(other),
    }
    services.update(_manual(manual))
    used = {sid for service in services.values() for sid in service["sources"]}
    sources = _sources(karpenter, other, manual)
    missing = used - set(sources)
    if missing:
        raise BuildError(f"services cite unknown source ids: {sorted(missing)}")
    dates = [karpenter["generated"][:10]]
    snapshot_date = max(dates)
    return {
        "format": FORMAT,
        "snapshot_date": snapshot_date,
        "currency": "USD",
        "hours_per_month": HOURS_PER_MONTH,
        "notes": "On-demand list prices. Built by ops/prices/build_snapshot.py from ops/prices/sources/. A region or "
        "sku missing here is unknown (the event is stored unpriced), never borrowed from another region; the only "
        "exception is the labelled estimate of regional_factors (services listed there, regions with a factor).",
        "sources": {sid: sources[sid] for sid in sorted(used)},
        "services": services,
        "regional_factors": _regional_factors(services, snapshot_date),
    }


def encode(snapshot: dict[str, Any]) -> bytes:
    """Deterministic bytes: sorted keys, compact separators, gzip with mtime 0."""
    text = json.dumps(snapshot, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return gzip.compress(text.encode(), compresslevel=9, mtime=0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=Path, default=SOURCES, help="folder with the raw source copies")
    parser.add_argument("--out", type=Path, default=None, help="output file (default: streams/prices/data/...)")
    args = parser.parse_args(argv)
    snapshot = build(args.sources)
    out = args.out or DATA_DIR / f"prices-{snapshot['snapshot_date']}.json.gz"
    out.parent.mkdir(parents=True, exist_ok=True)
    data = encode(snapshot)
    out.write_bytes(data)
    count = sum(len(t) for s in snapshot["services"].values() for t in s["prices"].values())
    print(f"wrote {out} ({len(data):,} bytes, {count:,} prices, {len(snapshot['services'])} services)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
