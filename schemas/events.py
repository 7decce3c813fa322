"""The typed shapes that flow through dd0c/cost.

Everything here is a frozen dataclass with UTC-aware datetimes only. The envelope (`LogEntry`) is kept apart
from its payload (the raw CloudTrail record), and carries a schema version so that the log can outlive the
code that wrote it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

SCHEMA_VERSION = 1


class Dd0cError(Exception):
    """Root of every exception dd0c/cost raises on purpose. Bad input is never an exception: see Rejected."""


class Severity(StrEnum):
    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_ORDER.index(self)

    @classmethod
    def parse(cls, value: str) -> Severity:
        try:
            return cls(value.lower())
        except ValueError:
            raise Dd0cError(f"unknown severity {value!r}; use one of {', '.join(s.value for s in cls)}") from None


_SEVERITY_ORDER = [Severity.INFO, Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL]


class LogKind(StrEnum):
    """What a log entry holds. Only `cloudtrail` records are normalised into cost events."""

    CLOUDTRAIL = "cloudtrail"
    INSIGHT = "insight"  # CloudTrail Insight events: kept, never priced
    ZOMBIE = "zombie"  # zombie hunter facts and user actions (streams/zombies/events.py), folded into `zombies`


def _require_utc(name: str, value: datetime) -> None:
    if value.tzinfo is UTC:  # the usual case, decided without calling utcoffset() (this runs for every entry)
        return
    if value.tzinfo is None or value.utcoffset() is None:
        raise Dd0cError(f"{name} must be timezone-aware (got naive {value!r})")


@dataclass(frozen=True, slots=True)
class Rejected:
    """Bad input as a value: why, where it came from, and the raw bytes. Goes to the dead-letter table."""

    reason: str
    raw: bytes
    source: str  # file path, S3 key, "push", ...
    locator: str = ""  # record index / byte offset / line number inside the source

    def describe(self) -> str:
        where = f"{self.source}#{self.locator}" if self.locator else self.source
        return f"{where}: {self.reason}"


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One CloudTrail (or Insight) record as it sits in the append-only log.

    `seq` is the log position, set once the entry has been appended. Dedup key: (tenant, account_id, event_id).
    `ingested_at` is stamped by the ingester (not by the folds) so that replay sees the same value.
    """

    tenant: str
    event_id: str
    account_id: str  # recipientAccountId (falls back to userIdentity.accountId)
    event_time: datetime
    ingested_at: datetime
    event_source: str
    event_name: str
    region: str
    read_only: bool
    kind: LogKind
    record: Mapping[str, Any]
    source: str = ""
    version: int = SCHEMA_VERSION
    seq: int | None = None

    def __post_init__(self) -> None:
        _require_utc("event_time", self.event_time)
        _require_utc("ingested_at", self.ingested_at)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who did it, in one canonical key (see case R04), plus its class for tuning novelty rules."""

    key: str  # e.g. arn:aws:iam::111122223333:user/alice, service:autoscaling.amazonaws.com
    kind: str  # user | role | root | service | federated | idc | account | unknown
    detail: str = ""  # e.g. the role session name
    automation: bool = False  # AWS services acting on their own (Auto Scaling, EKS node groups, ...)


@dataclass(frozen=True, slots=True)
class CostEvent:
    """A priced (or knowingly unpriced) thing that started billing by the hour.

    `hourly_cost` is USD per hour for everything this event created (count x unit price, storage as
    GB-month / 730). It is None - never 0 - when the price is unknown; `cost_status` then says why.
    """

    tenant: str
    account_id: str
    event_id: str
    ordinal: int  # position among the cost events one record produced (instances, then their volumes, ...)
    event_time: datetime
    ingested_at: datetime
    region: str
    event_source: str
    event_name: str
    resource_type: str  # ec2_instance, ebs_volume, nat_gateway, rds_instance, ... (the baseline key)
    resource_ids: tuple[str, ...]
    actor: Actor
    quantity: float  # instances, GiB, nodes, ...
    unit: str  # "instance", "GiB", "node", "gateway", ...
    instance_type: str | None
    family: str | None  # m5, p4d, db.r6g, cache.m6g, ...
    hourly_cost: float | None
    cost_status: str  # "priced" | "unpriced" | "estimated_fallback"
    unpriced_reason: str | None = None  # unknown_region | unknown_instance_type | unknown_service | ...
    pricing: Mapping[str, Any] = field(default_factory=dict)  # unit price, basis, price-table source
    attributes: Mapping[str, Any] = field(default_factory=dict)  # spot, tenancy, multi_az, storage, ...
    seq: int | None = None  # log position of the record it came from

    @property
    def priced(self) -> bool:
        return self.hourly_cost is not None

    def __post_init__(self) -> None:
        _require_utc("event_time", self.event_time)
        _require_utc("ingested_at", self.ingested_at)


@dataclass(frozen=True, slots=True)
class Welford:
    """Running count / mean / M2 (sum of squared deviations). Never (sum, sum of squares): see case R17."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0


@dataclass(frozen=True, slots=True)
class Baseline:
    """What is normal for (tenant, account, resource_type): spend statistics plus what has been seen."""

    tenant: str
    account_id: str
    resource_type: str
    stats: Welford = Welford()
    actors: frozenset[str] = frozenset()
    regions: frozenset[str] = frozenset()
    families: frozenset[str] = frozenset()
    events_seen: int = 0  # all successful cost events, priced or not (cold start counts these)
    first_event_time: datetime | None = None
    last_event_time: datetime | None = None


@dataclass(frozen=True, slots=True)
class Reason:
    """One signal that fired, in words a person can read, with the numbers behind it."""

    signal: str  # zscore | absolute_band | new_actor | new_region | new_family | root_actor | first_resource_type
    text: str
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Anomaly:
    """An explained anomaly. `detected_at` is the ingest time of the record (pure: no clock in the folds)."""

    id: str  # deterministic: uuid5 of tenant/account/event_id/ordinal, so replay gives the same id
    tenant: str
    account_id: str
    resource_type: str
    region: str
    event_ids: tuple[str, ...]
    event_time: datetime
    detected_at: datetime
    severity: Severity
    z: float | None
    hourly_cost: float | None
    expected_hourly_cost: float | None  # baseline mean before this event
    baseline_stddev: float | None
    baseline_n: int
    actor: str
    instance_type: str | None
    reasons: tuple[Reason, ...]
    backfill: bool  # event far older than its ingest: history, not a live incident (case R06)
    learning: bool  # the account is still in its cold-start window
    policy: str = "default"  # name of the policy that scored it


@dataclass(frozen=True, slots=True)
class ResourceChange:
    """A lifecycle step for one resource, derived from a record: open, close, stop, start or resize."""

    tenant: str
    account_id: str
    resource_id: str
    resource_type: str
    region: str
    action: str  # open | close | stop | start | resize
    at: datetime  # the record's eventTime
    event_id: str
    hourly_cost: float | None = None  # $/h while running, when this change knows it (open, resize)
    instance_type: str | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Resource:
    """The resources ledger's row: what an account runs now and what it burns per hour."""

    tenant: str
    account_id: str
    resource_id: str
    resource_type: str
    region: str
    state: str  # running | stopped | closed
    hourly_cost: float | None  # $/h while running (None: unpriced)
    opened_at: datetime
    changed_at: datetime
    instance_type: str | None = None
    opened_by_event: str = ""
    last_event: str = ""
    attributes: Mapping[str, Any] = field(default_factory=dict)

    @property
    def burning_per_hour(self) -> float | None:
        """What it costs right now: nothing once closed; compute stops while stopped."""
        return self.hourly_cost if self.state == "running" else 0.0
