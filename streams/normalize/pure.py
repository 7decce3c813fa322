"""OWNED BY the catalog helper: normalize(entry, prices) -> list[CostEvent] | Rejected."""

from __future__ import annotations

from schemas.events import CostEvent, LogEntry, Rejected
from streams.prices.table import PriceTable


def normalize(entry: LogEntry, prices: PriceTable) -> list[CostEvent] | Rejected:
    raise NotImplementedError


def observations(entry: LogEntry, events: list[CostEvent]) -> list[tuple[str, str]]:
    """Counters for the fold_metrics table: (metric, label), e.g. ("failed_create_attempts", errorCode)."""
    raise NotImplementedError
