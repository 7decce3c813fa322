"""Stage 1 — normalize: one log entry -> the cost events it started (pure: no I/O, no clock, no globals).

* Only successful CloudTrail calls listed in the cost catalog (`catalog.py`, keyed on eventSource AND eventName)
  produce cost events; everything else gives `[]`. A record with `errorCode` created nothing: `[]` (case R09),
  and `observations` counts it as a failed create attempt.
* A read-only call (`readOnly: true`) never creates anything billable, whatever its name: `[]`. The default log
  does not even store reads (it counts them); with DD0C_KEEP_READ_ONLY both settings fold alike.
* `hourly_cost` is USD/hour for everything the record created (count x unit price; storage as GB-month / 730).
  Unknown price -> `hourly_cost=None`, `cost_status="unpriced"` and an `unpriced_reason` (`unknown_region`,
  `unknown_instance_type`, `unknown_sku`, `unknown_volume_size`, `unknown_resource`, `usage_based`, ...); never
  0.0 (case R16).
* A field with the wrong type (an `instancesSet` that is a string, a `volumeSize` of "abc") -> `Rejected` naming
  the field, with the record's eventID as locator; never an exception. `responseElements: null` is just absent.
* `known` is the resources ledger before this entry, keyed (tenant, account_id, resource_id): StartInstances,
  ModifyInstanceAttribute, ModifyDBInstance and CreateEndpoint price against it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from schemas.codec import NotJsonSafe, dumps
from schemas.events import CostEvent, LogEntry, LogKind, Rejected, Resource
from streams.normalize import catalog
from streams.normalize.actor import actor_of
from streams.normalize.draft import Ctx, Draft
from streams.normalize.fields import FieldError
from streams.prices.table import PriceTable

ResourceKey = tuple[str, str, str]  # (tenant, account_id, resource_id)

_EMPTY: Mapping[ResourceKey, Resource] = {}


def error_code(record: Mapping[str, Any]) -> str | None:
    """The record's errorCode when the call failed (an empty string means it did not)."""
    code = record.get("errorCode")
    if code is None or code == "":
        return None
    return code if isinstance(code, str) else str(code)


def normalize(
    entry: LogEntry, prices: PriceTable, known: Mapping[ResourceKey, Resource] | None = None
) -> list[CostEvent] | Rejected:
    """`known` is the ledger as it stands before this entry (StartInstances, CreateEndpoint need it)."""
    if entry.kind is not LogKind.CLOUDTRAIL or entry.read_only or not isinstance(entry.record, Mapping):
        return []
    if error_code(entry.record) is not None:
        return []
    spec = catalog.lookup(entry.event_source, entry.event_name)
    if spec is None:
        return []
    ctx = Ctx(entry, prices, known if known is not None else _EMPTY)
    try:
        drafts = spec.handler(ctx)
    except FieldError as exc:
        return _rejected(entry, str(exc))
    actor = actor_of(entry.record)
    return [_event(entry, actor, ordinal, d) for ordinal, d in enumerate(drafts)]


def _event(entry: LogEntry, actor: Any, ordinal: int, d: Draft) -> CostEvent:
    return CostEvent(
        tenant=entry.tenant,
        account_id=entry.account_id,
        event_id=entry.event_id,
        ordinal=ordinal,
        event_time=entry.event_time,
        ingested_at=entry.ingested_at,
        region=entry.region,
        event_source=entry.event_source,
        event_name=entry.event_name,
        resource_type=d.resource_type,
        resource_ids=d.resource_ids,
        actor=actor,
        quantity=float(d.quantity),
        unit=d.unit,
        instance_type=d.instance_type,
        family=d.family,
        hourly_cost=d.hourly_cost,
        cost_status=d.cost_status,
        unpriced_reason=d.unpriced_reason,
        pricing=d.pricing,
        attributes=d.attributes,
        seq=entry.seq,
    )


def _rejected(entry: LogEntry, problem: str) -> Rejected:
    try:
        raw = dumps(entry.record).encode()
    except NotJsonSafe:
        raw = repr(entry.record).encode()
    reason = f"{entry.event_source} {entry.event_name}: {problem} (eventID {entry.event_id})"
    return Rejected(reason=reason, raw=raw, source=entry.source or "log", locator=f"eventID={entry.event_id}")


def observations(entry: LogEntry, events: list[CostEvent]) -> list[tuple[str, str]]:
    """Counters for the fold_metrics table: (metric, label).

    ("failed_create_attempts", errorCode) for a failed call that would have created something billable;
    ("unpriced_events", reason) for each cost event without a price (so the table can be refreshed).
    """
    out: list[tuple[str, str]] = []
    if isinstance(entry.record, Mapping):
        code = error_code(entry.record)
        if code is not None and catalog.is_create(entry.event_source, entry.event_name):
            out.append(("failed_create_attempts", code))
    out.extend(("unpriced_events", e.unpriced_reason or "unknown") for e in events if e.hourly_cost is None)
    return out
