"""Which anomaly goes to Slack now, which waits for the digest, which is dropped - and why (pure).

The tenant's flags come from Redis (streams/notify/governance.py); the clock is passed in. Panic mode and the
circuit breaker are not decided here: they must be checked against Redis right before each send.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from schemas.events import Dd0cError, Severity

Action = Literal["send", "suppress", "digest"]

_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


class NotifyError(Dd0cError):
    """Root of the notification package's errors (bad flag values, channel misconfiguration)."""


@dataclass(frozen=True, slots=True)
class QuietHours:
    """A daily window in the tenant's time zone; `start > end` wraps midnight (22:00-07:00)."""

    start: time
    end: time
    tz: str = "UTC"

    def __post_init__(self) -> None:
        zone(self.tz)  # refuse an unknown zone when the flag is set, not at 3 a.m. when it is first needed

    def contains(self, now: datetime) -> bool:
        if now.tzinfo is None:
            raise NotifyError("quiet hours need a timezone-aware time")
        local = now.astimezone(zone(self.tz)).time()
        if self.start == self.end:
            return False  # an empty window, not a 24-hour one
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def text(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M} {self.tz}"

    @classmethod
    def parse(cls, window: str, tz: str = "UTC") -> QuietHours:
        """`22:00-07:00` in zone `tz` (IANA name such as Europe/Berlin)."""
        parts = window.strip().split("-")
        if len(parts) != 2 or not all(_HHMM.match(p.strip()) for p in parts):
            raise NotifyError(f"quiet hours {window!r}: use HH:MM-HH:MM, e.g. 22:00-07:00")
        start, end = (time.fromisoformat(p.strip().zfill(5)) for p in parts)
        return cls(start, end, tz)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise NotifyError(f"unknown time zone {name!r} (use an IANA name such as Europe/Berlin)") from None


@dataclass(frozen=True, slots=True)
class Flags:
    """Per-tenant governance flags. The defaults are what a tenant gets before it sets any."""

    slack: bool = True
    email: bool = True
    severity_floor: Severity = Severity.HIGH
    quiet: QuietHours | None = None

    def channel_on(self, channel: str) -> bool:
        return self.slack if channel == "slack" else self.email


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    reason: str = ""


def decide(anomaly: Mapping[str, Any], flags: Flags, now: datetime, *, has_webhook: bool) -> Decision:
    """What to do with one anomaly (the API's anomaly shape) on the Slack channel."""
    severity = Severity.parse(str(anomaly["severity"]))
    if anomaly.get("backfill"):
        return Decision("suppress", "backfill: an old event ingested late is history, not a live incident")
    if not flags.slack:
        return Decision("suppress", "the tenant switched the slack channel off")
    if not has_webhook:
        return Decision("suppress", "no Slack webhook configured for the tenant")
    if severity.rank < flags.severity_floor.rank:
        return Decision("suppress", f"severity {severity.value} is below the tenant's floor {flags.severity_floor}")
    if flags.quiet is not None and severity is not Severity.CRITICAL and flags.quiet.contains(now):
        return Decision("digest", f"quiet hours {flags.quiet.text()}: non-critical, kept for the digest")
    return Decision("send")
