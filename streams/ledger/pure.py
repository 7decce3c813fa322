"""Stage 3 — the resources ledger: what each account runs now and what it burns per hour (pure).

`changes(entry, events)` reads one successful record (a failed one changes nothing):
* a creating call (RunInstances, Create*, Restore*, AllocateAddress, ...) -> `open`, one per resource id of its
  cost events, at the event's $/hour split evenly over its ids (every cost event groups resources that cost the
  same each). EBS volumes from a RunInstances block-device mapping open only when the response names their ids
  (at launch it usually does not: they then live in the cost event, not in the ledger).
* a pricing change on something that exists: StartInstances / StartDBInstance / ResumeCluster /
  StartNotebookInstance -> `start` (with the $/hour when known); ModifyInstanceAttribute (type), ModifyVolume,
  ModifyDBInstance, Modify/ResizeCluster, UpdateTable, UpdateEndpoint -> `resize` with the new $/hour.
* Terminate / Delete* / Release / DeleteNatGateway / DeleteLoadBalancer / ... -> `close`; Stop* / Pause -> `stop`
  (see `lifecycle.py` for the list).
* CreateEndpointConfig -> `define`: a `sagemaker_endpoint_config` row in state "defined" (burning nothing) with
  the config's production variants in `attributes["variants"]`, which the later CreateEndpoint prices from.
* an on-demand DynamoDB table -> `open` with `hourly_cost=None` and `attributes["billing_mode"]`.

`apply(resource, change)` is the fold. States: running | stopped | closed (| defined). Rules:
* None + open -> running; None + define -> defined.
* running + stop -> stopped (compute burns 0; `hourly_cost` keeps the running rate); stopped + start -> running.
* any + close -> closed (terminal: a closed row ignores stop/start/resize).
* resize -> new `hourly_cost` / `instance_type` (an unknown new price becomes None, not the old price).
* A close / stop / start / resize for a resource the ledger never saw returns a row with what is known (state
  closed / stopped / running, `hourly_cost` None unless the change has one, `attributes["seen_open"]=False`),
  so the ledger can still show it. Nothing raises for an unknown id.
* Out-of-order logs (CloudTrail files are not time-ordered): a change older than the row's last change does not
  move its state — except close, which always wins — but an older `open` still fills in what the row lacks
  (price, type, open time). An `open` newer than a close re-opens the id (a named resource re-created).
* Re-applying the change that produced the row (same event id and action) returns the row unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from schemas.events import CostEvent, Dd0cError, LogEntry, LogKind, Resource, ResourceChange
from streams.ledger import lifecycle
from streams.normalize import catalog
from streams.normalize.fields import FieldError
from streams.normalize.pure import error_code

RUNNING, STOPPED, CLOSED, DEFINED = "running", "stopped", "closed", "defined"
_START_NAMES = frozenset({"StartInstances", "StartDBInstance", "ResumeCluster", "StartNotebookInstance"})


class LedgerError(Dd0cError):
    """A ResourceChange with an action the ledger does not know: a bug in whoever built it."""


def changes(entry: LogEntry, events: list[CostEvent]) -> list[ResourceChange]:
    if entry.kind is not LogKind.CLOUDTRAIL or not isinstance(entry.record, Mapping):
        return []
    if error_code(entry.record) is not None:
        return []
    spec = catalog.lookup(entry.event_source, entry.event_name)
    if spec is None:
        priced_action = None
    elif spec.kind == "create":
        priced_action = "open"
    else:
        priced_action = "start" if entry.event_name in _START_NAMES else "resize"
    out: list[ResourceChange] = []
    covered: set[str] = set()
    for event in events:
        if priced_action is None or not event.resource_ids:
            continue
        each = event.hourly_cost / len(event.resource_ids) if event.hourly_cost is not None else None
        attributes = _row_attributes(event)
        for resource_id in dict.fromkeys(event.resource_ids):
            covered.add(resource_id)
            out.append(
                _change(entry, resource_id, event.resource_type, priced_action, each, event.instance_type, attributes)
            )
    try:
        steps = lifecycle.steps(entry)
    except FieldError:
        steps = []  # a malformed delete/stop names no resource we can trust; the record stays in the log
    for step in steps:
        if step.resource_id not in covered:
            out.append(_change(entry, step.resource_id, step.resource_type, step.action, None, None, step.attributes))
    return out


def _row_attributes(event: CostEvent) -> dict[str, Any]:
    attributes = dict(event.attributes)
    attributes.update(
        family=event.family,
        cost_status=event.cost_status,
        unpriced_reason=event.unpriced_reason,
        actor=event.actor.key,
    )
    return attributes


def _change(
    entry: LogEntry,
    resource_id: str,
    resource_type: str,
    action: str,
    hourly_cost: float | None,
    instance_type: str | None,
    attributes: Mapping[str, Any],
) -> ResourceChange:
    return ResourceChange(
        tenant=entry.tenant,
        account_id=entry.account_id,
        resource_id=resource_id,
        resource_type=resource_type,
        region=entry.region,
        action=action,
        at=entry.event_time,
        event_id=entry.event_id,
        hourly_cost=hourly_cost,
        instance_type=instance_type,
        attributes=dict(attributes),
    )


def _new(change: ResourceChange, state: str, seen_open: bool) -> Resource:
    attributes = dict(change.attributes)
    if not seen_open:
        attributes["seen_open"] = False
    return Resource(
        tenant=change.tenant,
        account_id=change.account_id,
        resource_id=change.resource_id,
        resource_type=change.resource_type,
        region=change.region,
        state=state,
        hourly_cost=change.hourly_cost,
        opened_at=change.at,
        changed_at=change.at,
        instance_type=change.instance_type,
        opened_by_event=change.event_id if seen_open else "",
        last_event=change.event_id,
        attributes=attributes,
    )


def apply(resource: Resource | None, change: ResourceChange) -> Resource | None:
    """Fold one change into the resource's row (pure; never raises for an unknown id)."""
    if change.action not in ("open", "define", "close", "stop", "start", "resize"):
        raise LedgerError(f"unknown ledger action {change.action!r} for {change.resource_id}")
    if resource is None:
        match change.action:
            case "open":
                return _new(change, RUNNING, True)
            case "define":
                return _new(change, DEFINED, True)
            case "close":
                return _new(change, CLOSED, False)
            case "stop":
                return _new(change, STOPPED, False)
            case "start" | "resize":
                return _new(change, RUNNING, False)
    assert resource is not None
    if resource.last_event == change.event_id and _same_step(resource, change):
        return resource  # the change that produced this row, applied again
    stale = change.at < resource.changed_at
    match change.action:
        case "open" | "define":
            if stale:
                return _backfill(resource, change)
            return _new(change, _opened_state(change), True)  # new, or a closed name re-created
        case "close":
            if resource.state == CLOSED:
                return resource
            return _moved(resource, change, CLOSED)
        case "stop":
            if resource.state == CLOSED or stale:
                return resource
            return _moved(resource, change, STOPPED)
        case "start":
            if resource.state == CLOSED or stale:
                return resource
            moved = _moved(resource, change, RUNNING)
            return moved if change.hourly_cost is None else replace(moved, hourly_cost=change.hourly_cost)
        case "resize":
            if resource.state == CLOSED or stale:
                return resource
            return replace(
                resource,
                hourly_cost=change.hourly_cost,
                instance_type=change.instance_type or resource.instance_type,
                changed_at=change.at,
                last_event=change.event_id,
                attributes={**resource.attributes, **change.attributes},
            )
        case _:  # pragma: no cover - guarded above
            raise LedgerError(f"unknown ledger action {change.action!r}")


def _opened_state(change: ResourceChange) -> str:
    return DEFINED if change.action == "define" else RUNNING


def _same_step(resource: Resource, change: ResourceChange) -> bool:
    """Whether `resource` already reflects `change` (same event, and the state that action leads to)."""
    target = {"open": RUNNING, "define": DEFINED, "close": CLOSED, "stop": STOPPED, "start": RUNNING}.get(change.action)
    return target is None or resource.state == target


def _moved(resource: Resource, change: ResourceChange, state: str) -> Resource:
    return replace(resource, state=state, changed_at=change.at, last_event=change.event_id)


def _backfill(resource: Resource, change: ResourceChange) -> Resource:
    """An open older than what the row knows: keep the state, fill in what was missing."""
    attributes = {**change.attributes, **resource.attributes}
    attributes.pop("seen_open", None)
    return replace(
        resource,
        hourly_cost=resource.hourly_cost if resource.hourly_cost is not None else change.hourly_cost,
        instance_type=resource.instance_type or change.instance_type,
        opened_at=min(resource.opened_at, change.at),
        opened_by_event=resource.opened_by_event or change.event_id,
        attributes=attributes,
    )


def running_cost_per_hour(resources: Mapping[Any, Resource] | list[Resource]) -> float:
    """What the ledger's resources burn right now (unpriced running resources count as unknown, i.e. 0 here)."""
    rows = resources.values() if isinstance(resources, Mapping) else resources
    return sum(r.hourly_cost for r in rows if r.state == RUNNING and r.hourly_cost is not None)
