"""Counters of the HTTP push endpoint, rendered by GET /v1/metrics.

The push endpoint lives in the API process, not in the ingestion service, so its figures are kept here. They use
the ingestion service's family names with `source="push"` (dd0c_ingest_events_total, ...), so one dashboard query
sums every source across both processes; requests are counted by outcome because a sender with a revoked key or
an oversized body shows up only there (nothing reaches the log).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

from ops.prometheus import Family, ingest_families
from streams.intake.receive import Received

Outcome = Literal["ok", "unauthorized", "too_large", "not_cloudtrail", "archive_unavailable"]
OUTCOMES: tuple[Outcome, ...] = ("ok", "unauthorized", "too_large", "not_cloudtrail", "archive_unavailable")

_PUSH = (("source", "push"),)


@dataclass
class PushMetrics:
    """Only the event loop updates these (one API process, one loop), so plain integers suffice."""

    requests: Counter[str] = field(default_factory=Counter)
    body_bytes: int = 0
    events: int = 0
    duplicates: int = 0
    rejects: int = 0
    read_only: int = 0
    skipped: int = 0

    def refused(self, outcome: Outcome) -> None:
        self.requests[outcome] += 1

    def received(self, got: Received, size: int) -> None:
        """A body that was read and handed to the log (200, or 422 when nothing in it was CloudTrail)."""
        self.requests["ok" if got.usable else "not_cloudtrail"] += 1
        self.body_bytes += size
        self.events += got.logged
        self.duplicates += got.duplicate
        self.rejects += len(got.rejected)
        self.read_only += got.read_only_counted
        self.skipped += sum(got.skipped.values())

    def families(self) -> list[Family]:
        return [
            Family("dd0c_push_requests_total", "counter", "POST /v1/ingest/cloudtrail requests by outcome.",
                   {(("outcome", o),): self.requests[o] for o in OUTCOMES}),
            Family("dd0c_push_body_bytes_total", "counter",
                   "Bytes of push bodies read (a body refused for its key or its size is not read).",
                   {(): self.body_bytes}),
            *ingest_families(events={_PUSH: self.events}, duplicates={_PUSH: self.duplicates},
                             rejects={_PUSH: self.rejects}, read_only={_PUSH: self.read_only},
                             skipped={_PUSH: self.skipped}),
        ]
