"""The price table: an immutable, dated snapshot of on-demand list prices, looked up by (service, region, sku).

A snapshot file (`streams/prices/data/prices-<date>.json.gz`, built by `ops/prices/build_snapshot.py`) holds
`services -> {unit, source, sources, region_source?, prices: {region: {sku: USD}}}` plus the attribution of every
source id. Units are per service (see each service's `unit`): `*_hour` keys are USD/hour, `*_month` keys are USD
per unit-month (the catalog divides by `hours_per_month`, 730).

Lookups never guess: a service without data for the region answers `unknown_region`, a region without the sku
answers `unknown_sku`. Nothing is borrowed from another region (case R16).

The one labelled exception is `lookup_with_fallback`: for the services the snapshot's `regional_factors` lists
(those whose only data is us-east-1: ebs, elb, opensearch, rds_storage) and a region that has a factor there, a
missing region is estimated as the reference price x the region's factor — a `PriceFact` with `estimated=True`,
which normalize turns into `cost_status="estimated_fallback"`. Every other service (EC2 above all), and any
region without a factor (made-up, China, ...), still answers `unknown_region`.

Service keys in the shipped snapshot: ec2, ebs, elb, nat, vpc, eks, rds, rds_storage, elasticache, redshift,
opensearch, msk, sagemaker, dynamodb.
"""

from __future__ import annotations

import functools
import gzip
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from schemas.events import Dd0cError

FORMAT = "dd0c-prices/1"
# The snapshot `load_default_prices` ships with. A refresh writes a new dated file; point this at it to adopt it.
DEFAULT_SNAPSHOT = "prices-2026-07-20.json.gz"
HOURS_PER_MONTH = 730.0


class PriceTableError(Dd0cError):
    """A snapshot file that cannot be used (missing, not JSON, wrong format, a non-finite or negative price)."""


@dataclass(frozen=True, slots=True)
class PriceFact:
    """One price and where it came from."""

    price: float
    service: str
    region: str
    sku: str
    source: str
    # Set only by `lookup_with_fallback` when the price is an estimate: reference_price x factor.
    estimated: bool = False
    reference_region: str | None = None
    factor: float | None = None
    reference_price: float | None = None


@dataclass(frozen=True, slots=True)
class PriceMiss:
    """Why there is no price: `unknown_service`, `unknown_region` or `unknown_sku`."""

    reason: str
    service: str
    region: str
    sku: str


@dataclass(frozen=True, slots=True)
class ServicePrices:
    unit: str
    source: str  # default source id of its prices
    region_source: Mapping[str, str]  # per-region override of `source`
    prices: Mapping[str, Mapping[str, float]]  # region -> sku -> USD
    extra: Mapping[str, Any]  # anything else the snapshot says about the service (notes, factors, confidence)

    def source_for(self, region: str) -> str:
        return self.region_source.get(region, self.source)


@dataclass(frozen=True, slots=True)
class RegionalFactors:
    """The snapshot's `regional_factors`: region -> factor against `reference_region`, for `services` only."""

    reference_region: str
    services: frozenset[str]
    factors: Mapping[str, float]  # region -> factor
    detail: Mapping[str, Any]  # the whole section as read (method, date, per-region type counts and cross-checks)

    def describe(self, region: str) -> str:
        """How the region's factor was made, in words for an event's `pricing`."""
        info = self.detail.get("regions", {}).get(region, {})
        types = info.get("ec2_types", "?")
        confidence = info.get("confidence", "unknown")
        return (
            f"median EC2 price ratio {region}/{self.reference_region} over {types} instance types "
            f"(derived {self.detail.get('derived_on', '?')}, confidence {confidence})"
        )


@dataclass(frozen=True, slots=True, eq=False)
class PriceTable:
    """Immutable: every mapping inside is read-only. Build one with `PriceTable.from_dict` or the loaders."""

    snapshot_date: str
    currency: str
    hours_per_month: float
    sources: Mapping[str, Mapping[str, Any]]
    services: Mapping[str, ServicePrices]
    origin: str = ""  # file it was loaded from, for logs ("" when built in memory)
    regional: RegionalFactors | None = None  # factors for the labelled fallback estimate (None: no estimates)

    # -- lookups -------------------------------------------------------------------------------------------
    def lookup(self, service: str, region: str, sku: str) -> PriceFact | PriceMiss:
        table = self.services.get(service)
        if table is None:
            return PriceMiss("unknown_service", service, region, sku)
        regional = table.prices.get(region)
        if not regional:
            return PriceMiss("unknown_region", service, region, sku)
        price = regional.get(sku)
        if price is None:
            return PriceMiss("unknown_sku", service, region, sku)
        return PriceFact(price, service, region, sku, table.source_for(region))

    def lookup_with_fallback(self, service: str, region: str, sku: str) -> PriceFact | PriceMiss:
        """`lookup`, except that a region missing from a fallback service is estimated from the reference region.

        Only `unknown_region` misses are estimated, and only when the service is listed in `regional_factors` and
        the region has a factor; a sku the reference region lacks is `unknown_sku`. Anything else is returned
        exactly as `lookup` answers it.
        """
        found = self.lookup(service, region, sku)
        if isinstance(found, PriceFact) or found.reason != "unknown_region":
            return found
        factor = self.fallback_factor(service, region)
        if factor is None or self.regional is None:
            return found
        reference = self.lookup(service, self.regional.reference_region, sku)
        if isinstance(reference, PriceMiss):
            return PriceMiss("unknown_sku", service, region, sku) if reference.reason == "unknown_sku" else found
        return PriceFact(
            round(reference.price * factor, 10),  # drop float noise (0.1 x 1.1667 -> 0.11667, not ...000001)
            service,
            region,
            sku,
            reference.source,
            estimated=True,
            reference_region=reference.region,
            factor=factor,
            reference_price=reference.price,
        )

    def fallback_factor(self, service: str, region: str) -> float | None:
        """The factor `lookup_with_fallback` would use for (service, region); None when it would not estimate."""
        regional = self.regional
        if regional is None or service not in regional.services or region == regional.reference_region:
            return None
        if self.has_region(service, region) or not self.has_region(service, regional.reference_region):
            return None
        return regional.factors.get(region)

    def price(self, service: str, region: str, sku: str) -> float | None:
        fact = self.lookup(service, region, sku)
        return fact.price if isinstance(fact, PriceFact) else None

    def has_region(self, service: str, region: str, *, fallback: bool = False) -> bool:
        """Whether the service has prices for the region (`fallback=True`: or can estimate them)."""
        table = self.services.get(service)
        if table is not None and bool(table.prices.get(region)):
            return True
        return fallback and self.fallback_factor(service, region) is not None

    def regions(self, service: str) -> frozenset[str]:
        table = self.services.get(service)
        return frozenset(table.prices) if table is not None else frozenset()

    def skus(self, service: str, region: str) -> frozenset[str]:
        table = self.services.get(service)
        if table is None:
            return frozenset()
        return frozenset(table.prices.get(region, {}))

    def describe(self) -> str:
        count = sum(len(t) for s in self.services.values() for t in s.prices.values())
        return f"prices {self.snapshot_date} ({count} prices, {len(self.services)} services) {self.origin}".strip()

    # -- (de)serialisation ---------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping[str, Any], origin: str = "") -> PriceTable:
        """Validate and freeze a snapshot dict. Raises PriceTableError on anything a lookup could trip over."""
        where = origin or "price snapshot"
        if not isinstance(data, Mapping) or data.get("format") != FORMAT:
            got = data.get("format") if isinstance(data, Mapping) else type(data).__name__
            raise PriceTableError(f"{where}: not a {FORMAT} snapshot (format={got!r})")
        if data.get("currency") != "USD":
            raise PriceTableError(f"{where}: currency must be USD, got {data.get('currency')!r}")
        services_in = data.get("services")
        if not isinstance(services_in, Mapping):
            raise PriceTableError(f"{where}: 'services' must be an object")
        services = {str(name): _service(where, str(name), body) for name, body in services_in.items()}
        sources_in = data.get("sources", {})
        if not isinstance(sources_in, Mapping):
            raise PriceTableError(f"{where}: 'sources' must be an object")
        hours = data.get("hours_per_month", HOURS_PER_MONTH)
        if isinstance(hours, bool) or not isinstance(hours, (int, float)) or not hours > 0:
            raise PriceTableError(f"{where}: hours_per_month must be a positive number")
        return cls(
            snapshot_date=str(data.get("snapshot_date", "")),
            currency="USD",
            hours_per_month=float(hours),
            sources=_freeze(sources_in),
            services=MappingProxyType(services),
            origin=origin,
            regional=_regional(where, data.get("regional_factors")),
        )

    def to_dict(self) -> dict[str, Any]:
        """A mutable deep copy in snapshot form (tests edit it to build restricted tables)."""
        services: dict[str, Any] = {}
        for name, svc in self.services.items():
            body: dict[str, Any] = _thaw(svc.extra)
            body.update(
                {
                    "unit": svc.unit,
                    "source": svc.source,
                    "prices": {r: dict(t) for r, t in svc.prices.items()},
                }
            )
            if svc.region_source:
                body["region_source"] = dict(svc.region_source)
            services[name] = body
        out: dict[str, Any] = {
            "format": FORMAT,
            "snapshot_date": self.snapshot_date,
            "currency": self.currency,
            "hours_per_month": self.hours_per_month,
            "sources": _thaw(self.sources),
            "services": services,
        }
        if self.regional is not None:
            out["regional_factors"] = _thaw(self.regional.detail)
        return out

    def without(
        self,
        regions: Iterable[str] = (),
        sku_prefixes: Iterable[str] = (),
        services: Iterable[str] = (),
    ) -> PriceTable:
        """A copy lacking whole regions (every service), skus starting with a prefix, or whole services."""
        drop_regions, prefixes, drop_services = set(regions), tuple(sku_prefixes), set(services)
        data = self.to_dict()
        data["services"] = {
            name: {
                **body,
                "prices": {
                    region: {sku: p for sku, p in table.items() if not (prefixes and sku.startswith(prefixes))}
                    for region, table in body["prices"].items()
                    if region not in drop_regions
                },
            }
            for name, body in data["services"].items()
            if name not in drop_services
        }
        regional = data.get("regional_factors")
        if regional is not None:  # a dropped region is unknown everywhere: no estimate for it either
            regional["regions"] = {r: v for r, v in regional.get("regions", {}).items() if r not in drop_regions}
            regional["services"] = [s for s in regional.get("services", []) if s not in drop_services]
        return PriceTable.from_dict(data, origin=f"{self.origin} (restricted)".strip())


def _service(where: str, name: str, body: Any) -> ServicePrices:
    if not isinstance(body, Mapping):
        raise PriceTableError(f"{where}: service {name!r} must be an object")
    prices_in = body.get("prices")
    if not isinstance(prices_in, Mapping):
        raise PriceTableError(f"{where}: service {name!r} has no 'prices' object")
    prices: dict[str, Mapping[str, float]] = {}
    for region, table in prices_in.items():
        if not isinstance(table, Mapping):
            raise PriceTableError(f"{where}: {name}/{region} must be an object")
        regional: dict[str, float] = {}
        for sku, value in table.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise PriceTableError(f"{where}: {name}/{region}/{sku} is not a finite non-negative price: {value!r}")
            regional[str(sku)] = float(value)
        prices[str(region)] = MappingProxyType(regional)
    region_source = body.get("region_source", {})
    if not isinstance(region_source, Mapping):
        raise PriceTableError(f"{where}: service {name!r} region_source must be an object")
    known = {"unit", "source", "prices", "region_source"}
    return ServicePrices(
        unit=str(body.get("unit", "")),
        source=str(body.get("source", "")),
        region_source=MappingProxyType({str(k): str(v) for k, v in region_source.items()}),
        prices=MappingProxyType(prices),
        extra=_freeze({k: v for k, v in body.items() if k not in known}),
    )


def _regional(where: str, body: Any) -> RegionalFactors | None:
    if body is None:
        return None
    if not isinstance(body, Mapping):
        raise PriceTableError(f"{where}: 'regional_factors' must be an object")
    reference = body.get("reference_region")
    services = body.get("services")
    regions = body.get("regions")
    if not isinstance(reference, str) or not reference:
        raise PriceTableError(f"{where}: regional_factors.reference_region must be a region name")
    if not isinstance(services, list) or not all(isinstance(s, str) for s in services):
        raise PriceTableError(f"{where}: regional_factors.services must be a list of service names")
    if not isinstance(regions, Mapping):
        raise PriceTableError(f"{where}: regional_factors.regions must be an object")
    factors: dict[str, float] = {}
    for region, info in regions.items():
        value = info.get("factor") if isinstance(info, Mapping) else None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise PriceTableError(f"{where}: regional_factors {region} needs a finite positive factor, got {value!r}")
        factors[str(region)] = float(value)
    return RegionalFactors(
        reference_region=reference,
        services=frozenset(services),
        factors=MappingProxyType(factors),
        detail=_freeze(body),
    )


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return MappingProxyType({str(k): _freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


def _read(data: bytes, where: str) -> PriceTable:
    if data[:2] == b"\x1f\x8b":  # decide by magic bytes, not by the file name
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise PriceTableError(f"{where}: broken gzip: {exc}") from None
    try:
        parsed = json.loads(data)
    except ValueError as exc:
        raise PriceTableError(f"{where}: not JSON: {exc}") from None
    return PriceTable.from_dict(parsed, origin=where)


def load_prices(path: Path) -> PriceTable:
    """A snapshot file, gzipped or plain JSON (what replay/backtest `--prices FILE` uses)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise PriceTableError(f"cannot read price snapshot {path}: {exc}") from None
    return _read(data, str(path))


@functools.cache
def load_default_prices() -> PriceTable:
    """The shipped dated snapshot, loaded once per process."""
    resource = resources.files("streams.prices.data").joinpath(DEFAULT_SNAPSHOT)
    try:
        data = resource.read_bytes()
    except OSError as exc:
        raise PriceTableError(f"shipped price snapshot {DEFAULT_SNAPSHOT} is missing: {exc}") from None
    return _read(data, f"streams/prices/data/{DEFAULT_SNAPSHOT}")
