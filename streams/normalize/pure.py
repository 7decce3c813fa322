"""OWNED BY the catalog helper: normalize(entry, prices, known) -> list[CostEvent] | Rejected."""

from __future__ import annotations

from collections.abc import Mapping

from schemas.events import CostEvent, LogEntry, Rejected, Resource
from streams.prices.table import PriceTable

ResourceKey = tuple[str, str, str]  # (tenant, account_id, resource_id)


def normalize(
    entry: LogEntry, prices: PriceTable, known: Mapping[ResourceKey, Resource] | None = None
) -> list[CostEvent] | Rejected:
    """`known` is the ledger as it stands before this entry (StartInstances, CreateEndpoint need it)."""
    raise NotImplementedError


def observations(entry: LogEntry, events: list[CostEvent]) -> list[tuple[str, str]]:
    """Counters for the fold_metrics table: (metric, label), e.g. ("failed_create_attempts", errorCode)."""
    raise NotImplementedError
