"""What a catalog handler returns (a `Draft`), the context it reads (`Ctx`) and the pricing arithmetic (`Bill`).

A handler turns one record into drafts; `pure.normalize` stamps them into `CostEvent`s (tenant, times, actor,
ordinal). Every draft groups resources that cost the same each (one instance type, one volume spec), so the
ledger can split `hourly_cost` evenly over `resource_ids`.

`Bill` adds up priced components. Monthly prices are turned into hourly ones as price x quantity / 730. A
required component without a price makes the whole draft unpriced (`hourly_cost=None`, never 0.0, with the
miss's reason); an optional one is left out and listed under `pricing["unpriced_parts"]`.

Prices are looked up with `PriceTable.lookup_with_fallback`: for the services whose only data is us-east-1 (EBS,
ELB, OpenSearch, RDS storage) a region with a regional factor gets an estimate (us-east-1 price x factor). A draft
with such a component is `cost_status="estimated_fallback"` with `pricing["basis"]="regional_fallback"`, the
reference region, the factor, the estimated and the reference unit price (the handler's own basis is kept as
`pricing["base_basis"]`). EC2 and every other service with regional data never take this path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from schemas.events import LogEntry, Resource
from streams.normalize.fields import Node, root
from streams.prices.table import PriceFact, PriceMiss, PriceTable

ResourceKey = tuple[str, str, str]  # (tenant, account_id, resource_id)

PRICED = "priced"
UNPRICED = "unpriced"
ESTIMATED = "estimated_fallback"


@dataclass(frozen=True, slots=True)
class Draft:
    resource_type: str
    resource_ids: tuple[str, ...]
    quantity: float
    unit: str
    hourly_cost: float | None
    cost_status: str
    unpriced_reason: str | None = None
    instance_type: str | None = None
    family: str | None = None
    pricing: Mapping[str, Any] = field(default_factory=dict)
    attributes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Ctx:
    """One record as a handler sees it: typed request/response nodes, the price table and the ledger so far."""

    entry: LogEntry
    prices: PriceTable
    known: Mapping[ResourceKey, Resource]

    @property
    def record(self) -> Node:
        return root(self.entry.record)

    @property
    def req(self) -> Node:
        return self.record.get("requestParameters")

    @property
    def resp(self) -> Node:
        return self.record.get("responseElements")

    @property
    def region(self) -> str:
        return self.entry.region

    @property
    def account(self) -> str:
        return self.entry.account_id

    def known_resource(self, resource_id: str) -> Resource | None:
        return self.known.get((self.entry.tenant, self.entry.account_id, resource_id))


@dataclass
class Bill:
    """Accumulates the priced components of one draft (mutable only while a handler builds it)."""

    prices: PriceTable
    region: str
    components: list[dict[str, Any]] = field(default_factory=list)
    miss: str | None = None  # reason of the first required component without a price
    unpriced_parts: list[str] = field(default_factory=list)

    def hourly(
        self, service: str, sku: str, quantity: float, *, instance: bool = False, optional: bool = False
    ) -> None:
        """Add `quantity` x the $/hour price of `sku`."""
        self._add(service, sku, quantity, 1.0, "hour", instance, optional)

    def monthly(self, service: str, sku: str, quantity: float, *, optional: bool = False) -> None:
        """Add `quantity` x the $/month price of `sku`, as $/hour (/ hours_per_month)."""
        self._add(service, sku, quantity, self.prices.hours_per_month, "month", False, optional)

    def missing(self, reason: str) -> None:
        """Mark the draft unpriced for a reason found before any lookup (no type in the record, ...)."""
        if self.miss is None:
            self.miss = reason

    def _add(
        self, service: str, sku: str, quantity: float, per: float, unit: str, instance: bool, optional: bool
    ) -> None:
        if quantity == 0:
            return
        found = self.prices.lookup_with_fallback(service, self.region, sku)
        if isinstance(found, PriceMiss):
            reason = _reason(found, instance)
            if optional:
                self.unpriced_parts.append(f"{service}:{sku}: {reason}")
            elif self.miss is None:
                self.miss = reason
            return
        self.components.append(_component(found, quantity, per, unit))

    @property
    def total(self) -> float | None:
        if self.miss is not None:
            return None
        return sum(c["hourly"] for c in self.components)

    @property
    def estimated(self) -> bool:
        """Priced, and some part of the figure is a regional fallback estimate."""
        return self.miss is None and any(c.get("estimated") for c in self.components)

    def pricing(self, basis: str = "on_demand", **extra: Any) -> dict[str, Any]:
        out: dict[str, Any] = {
            "snapshot": self.prices.snapshot_date,
            "basis": basis,
            "components": list(self.components),
        }
        if self.components:
            out["unit_price"] = self.components[0]["price"]
            out["source"] = self.components[0]["source"]
        if self.unpriced_parts:
            out["unpriced_parts"] = list(self.unpriced_parts)
        if self.estimated:
            out.update(self._fallback(basis))
        out.update(extra)
        return out

    def _fallback(self, basis: str) -> dict[str, Any]:
        first = next(c for c in self.components if c.get("estimated"))
        regional = self.prices.regional
        return {
            "basis": "regional_fallback",
            "base_basis": basis,
            "reference_region": first["reference_region"],
            "factor": first["factor"],
            "estimated_unit_price": first["price"],
            "reference_unit_price": first["reference_price"],
            "factor_derivation": regional.describe(self.region) if regional is not None else "",
        }


def _reason(miss: PriceMiss, instance: bool) -> str:
    if miss.reason == "unknown_sku" and instance:
        return "unknown_instance_type"
    return miss.reason


def _component(fact: PriceFact, quantity: float, per: float, unit: str) -> dict[str, Any]:
    hourly = fact.price * quantity if per == 1.0 else fact.price * quantity / per
    out: dict[str, Any] = {
        "service": fact.service,
        "sku": fact.sku,
        "price": fact.price,
        "per": unit,
        "quantity": quantity,
        "hourly": hourly,
        "source": fact.source,
    }
    if fact.estimated:
        out.update(
            estimated=True,
            reference_region=fact.reference_region,
            factor=fact.factor,
            reference_price=fact.reference_price,
        )
    return out


def draft(
    bill: Bill,
    resource_type: str,
    resource_ids: tuple[str, ...],
    quantity: float,
    unit: str,
    *,
    instance_type: str | None = None,
    family: str | None = None,
    attributes: Mapping[str, Any] | None = None,
    basis: str = "on_demand",
    status: str = PRICED,
    pricing_extra: Mapping[str, Any] | None = None,
) -> Draft:
    """Close a bill into a draft: unpriced (with its reason) if a required price was missing.

    A total of exactly 0.0 (nothing billable was counted: zero nodes, zero GiB) is reported as unpriced
    (`zero_quantity`) so that no event ever carries a 0.0 that would drag a baseline down.
    """
    total = bill.total
    if total == 0.0:
        bill.missing("zero_quantity")
        total = None
    return Draft(
        resource_type=resource_type,
        resource_ids=resource_ids,
        quantity=quantity,
        unit=unit,
        hourly_cost=total,
        cost_status=UNPRICED if total is None else (ESTIMATED if bill.estimated else status),
        unpriced_reason=bill.miss,
        instance_type=instance_type,
        family=family,
        pricing=bill.pricing(basis, **(pricing_extra or {})),
        attributes=dict(attributes or {}),
    )


def resume(ctx: Ctx, resource_id: str, resource_type: str, unit: str = "instance") -> list[Draft]:
    """A stopped resource starts billing again at the $/hour the ledger holds for it.

    Nothing when the ledger already has it running; unpriced (`unknown_resource`) when the ledger never saw it.
    """
    known = ctx.known_resource(resource_id)
    if known is not None and known.state == "running":
        return []
    itype = known.instance_type if known is not None else None
    hourly = known.hourly_cost if known is not None else None
    reason = None
    status = PRICED
    if hourly is None:
        reason = "unknown_resource" if known is None else str(known.attributes.get("unpriced_reason") or "unpriced")
        status = UNPRICED
    elif known is not None and known.attributes.get("cost_status") == ESTIMATED:
        status = ESTIMATED  # an estimate stays labelled as one when the resource resumes at the ledger's rate
    return [
        Draft(
            resource_type=resource_type,
            resource_ids=(resource_id,),
            quantity=1,
            unit=unit,
            hourly_cost=hourly,
            cost_status=status,
            unpriced_reason=reason,
            instance_type=itype,
            family=family_of(itype),
            pricing={"snapshot": ctx.prices.snapshot_date, "basis": "ledger"},
            attributes={},
        )
    ]


_FAMILY_PREFIXES = ("db.", "cache.", "kafka.", "ml.", "express.")


def family_of(instance_type: str | None) -> str | None:
    """`m5.large` -> `m5`, `db.r6g.large` -> `db.r6g`, `cache.m6g.xlarge` -> `cache.m6g`, `c4.large.search` -> `c4`."""
    if not instance_type:
        return None
    for prefix in _FAMILY_PREFIXES:
        if instance_type.startswith(prefix):
            rest = instance_type[len(prefix) :]
            return prefix + rest.split(".", 1)[0] if rest else None
    return instance_type.split(".", 1)[0] or None
