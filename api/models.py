"""Response and request models: what /openapi.json documents. Dollar figures are USD per hour as JSON numbers;
null means unknown (unpriced), never 0 and never NaN."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from api.pagination import Page
from schemas.events import Severity

Dollars = float | None


class LoginRequest(BaseModel):
    username: str = Field(min_length=1)
    password: str = Field(min_length=1)
    tenant: str | None = Field(default=None, description="needed only when the username exists in several tenants")


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = Field(default="bearer", description="send as `Authorization: Bearer <access_token>`")
    expires_in: int = Field(description="seconds until the token expires")


class Health(BaseModel):
    status: str = Field(description="ok | unavailable")
    database: str
    feed_listening: bool


class ReasonOut(BaseModel):
    signal: str = Field(
        description="zscore | absolute_band | new_actor | new_region | new_family | root_actor | first_resource_type"
    )
    text: str
    data: dict[str, Any] = Field(default_factory=dict)


class AnomalyOut(BaseModel):
    id: str
    feed_id: int = Field(description="position in the live feed (resume with /v1/feed?after=<feed_id>)")
    account_id: str
    resource_type: str
    region: str | None
    severity: Severity
    event_time: datetime
    detected_at: datetime
    event_ids: list[str] = Field(description="CloudTrail eventID(s) behind it")
    hourly_cost: Dollars = Field(description="USD/hour of what was created; null when unpriced")
    expected_hourly_cost: Dollars = Field(description="the baseline mean before this event")
    z: float | None
    baseline_stddev: Dollars
    baseline_n: int
    actor: str
    instance_type: str | None
    reasons: list[ReasonOut]
    backfill: bool = Field(description="an old event ingested late: history, not a live incident")
    learning: bool = Field(description="the account was still in its cold-start window")
    policy: str


class ActorOut(BaseModel):
    key: str
    kind: str
    detail: str = ""
    automation: bool = False


class CostEventOut(BaseModel):
    id: str
    account_id: str
    event_id: str = Field(description="the CloudTrail eventID")
    ordinal: int = Field(description="position among the cost events of one record")
    event_time: datetime
    region: str
    resource_type: str
    event_source: str
    event_name: str
    actor: ActorOut
    resource_ids: list[str]
    quantity: float | None
    unit: str
    instance_type: str | None
    family: str | None
    hourly_cost: Dollars
    priced: bool
    cost_status: str
    unpriced_reason: str | None
    attributes: dict[str, Any]
    seq: int = Field(description="log position of the CloudTrail record")


class BaselineOut(BaseModel):
    account_id: str
    resource_type: str
    mean_hourly_cost: Dollars
    stddev_hourly_cost: Dollars = Field(description="sample standard deviation; null below two priced events")
    event_count: int = Field(description="priced events in the statistics")
    events_seen: int = Field(description="all successful cost events, priced or not")
    observed_actors: list[str]
    regions: list[str]
    families: list[str]
    first_event_time: datetime | None
    last_event_time: datetime | None
    updated_at: datetime


class ResourceOut(BaseModel):
    account_id: str
    resource_id: str
    resource_type: str
    region: str
    state: str = Field(description="running | stopped | closed")
    hourly_cost: Dollars = Field(description="USD/hour while running; null when unpriced")
    burning_per_hour: Dollars = Field(description="USD/hour now: hourly_cost when running, 0 otherwise")
    instance_type: str | None
    opened_at: datetime
    changed_at: datetime
    opened_by_event: str
    last_event: str
    attributes: dict[str, Any]


class ResourcePage(Page[ResourceOut]):
    total_hourly_cost: float = Field(description="USD/hour burning now, over every matching resource")
    resource_count: int = Field(description="matching resources (all pages)")
    unpriced_running: int = Field(description="running resources without a price (not in the total)")


class AccountSummary(BaseModel):
    account_id: str
    cost_events: int
    priced_cost_events: int
    unpriced_cost_events: int
    created_hourly_cost: float = Field(description="USD/hour created by the priced cost events")
    anomalies: dict[str, int] = Field(description="count per severity (info, low, medium, high, critical)")
    anomalies_total: int
    running_resources: int
    unpriced_running_resources: int
    running_hourly_cost: float = Field(description="USD/hour the running resources burn now (priced ones)")


class SummaryTotals(BaseModel):
    cost_events: int
    priced_cost_events: int
    unpriced_cost_events: int
    created_hourly_cost: float
    anomalies: dict[str, int]
    anomalies_total: int
    running_resources: int
    unpriced_running_resources: int
    running_hourly_cost: float


class Summary(BaseModel):
    accounts: list[AccountSummary]
    totals: SummaryTotals


class AccountOut(BaseModel):
    account_id: str
    resource_types: list[str] = Field(description="resource types with a baseline")
    last_event_time: datetime | None = Field(description="newest cost event")


class AccountList(BaseModel):
    items: list[AccountOut]
