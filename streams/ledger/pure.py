"""OWNED BY the catalog helper: changes(entry, cost_events) and apply(resource, change)."""

from __future__ import annotations

from schemas.events import CostEvent, LogEntry, Resource, ResourceChange


def changes(entry: LogEntry, events: list[CostEvent]) -> list[ResourceChange]:
    raise NotImplementedError


def apply(resource: Resource | None, change: ResourceChange) -> Resource | None:
    raise NotImplementedError
