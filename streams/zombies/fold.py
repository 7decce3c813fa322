"""The zombies projection as a pure fold: `apply(row | None, event) -> row | None` (None: nothing to write).

A row is one zombie (one resource as seen by one check). Lifecycle, in log order:

* `ZombieDetected`: a new row is `open` (first_seen = last_seen = opened_at = the scan time). On an open row it
  refreshes waste, evidence and `last_seen`; on a `resolved` row it opens a new episode (`opened_at` moves,
  acknowledgement and snooze are cleared: the person decided about the previous episode, not this one).
* `ZombieResolved`: closes the open episode it names (`episode_opened_at`); one for an older episode (the
  resource came back meanwhile) changes nothing.
* `ZombieAcknowledged` / `ZombieSnoozed` / `ZombieReopened`: the person's decision, kept on the row.

A snooze is stored as its end time; whether it is still in force is decided when the row is read (the fold has
no clock, so replay gives identical rows). Events at or before the row's `seq` change nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from streams.zombies import events as ev


@dataclass(frozen=True, slots=True)
class ZombieRow:
    tenant: str
    account_id: str
    zombie_id: str
    region: str
    resource_id: str
    resource_type: str
    check: str
    status: str  # open | resolved
    monthly_waste_usd: float | None
    evidence: Mapping[str, Any]
    first_seen: datetime
    last_seen: datetime
    opened_at: datetime  # start of the current (or last) episode
    seq: int
    detections: int = 1
    episodes: int = 1
    resolved_at: datetime | None = None
    last_scan_id: str = ""
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    acknowledge_reason: str | None = None
    snoozed_until: datetime | None = None
    snoozed_by: str | None = None
    snoozed_at: datetime | None = None
    snooze_reason: str | None = None
    history: tuple[Mapping[str, Any], ...] = field(default_factory=tuple)  # the person's actions, in order


def _cleared(row: ZombieRow) -> ZombieRow:
    return replace(
        row,
        acknowledged_by=None,
        acknowledged_at=None,
        acknowledge_reason=None,
        snoozed_until=None,
        snoozed_by=None,
        snoozed_at=None,
        snooze_reason=None,
    )


def apply(row: ZombieRow | None, event: ev.ZombieEvent) -> ZombieRow | None:
    """The row after `event`; None when the event changes nothing (write nothing)."""
    if row is not None and event.seq and event.seq <= row.seq:
        return None  # already folded (a replayed position)
    data = event.data
    match event.name:
        case ev.DETECTED:
            waste = data.get("monthly_waste_usd")
            fresh = {
                "region": str(data["region"]),
                "resource_id": str(data["resource_id"]),
                "resource_type": str(data["resource_type"]),
                "check": str(data["check"]),
                "monthly_waste_usd": None if waste is None else float(waste),
                "evidence": dict(data["evidence"]),
                "last_scan_id": str(data.get("scan_id") or ""),
                "seq": event.seq,
            }
            if row is None:
                return ZombieRow(
                    tenant=event.tenant, account_id=event.account_id, zombie_id=event.zombie_id, status="open",
                    first_seen=event.at, last_seen=event.at, opened_at=event.at, **fresh,
                )
            if row.status == "resolved":
                reopened = _cleared(row)
                return replace(
                    reopened, status="open", opened_at=event.at, resolved_at=None, last_seen=event.at,
                    detections=row.detections + 1, episodes=row.episodes + 1, **fresh,
                )
            return replace(row, last_seen=max(row.last_seen, event.at), detections=row.detections + 1, **fresh)
        case ev.RESOLVED:
            episode = ev.parse_time(data["episode_opened_at"])
            if row is None or row.status != "open" or episode != row.opened_at:
                return None
            return replace(row, status="resolved", resolved_at=event.at, seq=event.seq,
                           last_scan_id=str(data.get("scan_id") or row.last_scan_id))
        case ev.ACKNOWLEDGED | ev.SNOOZED | ev.REOPENED:
            if row is None:
                return None  # an action on a zombie the log never detected: nothing to decide about
            note = {"action": event.name, "by": data["by"], "reason": data["reason"], "at": event.at.isoformat()}
            if event.name == ev.SNOOZED:
                note["until"] = data["until"]
            base = replace(row, seq=event.seq, history=(*row.history, note))
            if event.name == ev.ACKNOWLEDGED:
                return replace(base, acknowledged_by=str(data["by"]), acknowledged_at=event.at,
                               acknowledge_reason=str(data["reason"]))
            if event.name == ev.SNOOZED:
                return replace(base, snoozed_until=ev.parse_time(data["until"]), snoozed_by=str(data["by"]),
                               snoozed_at=event.at, snooze_reason=str(data["reason"]))
            return _cleared(base)
        case _:
            raise ValueError(f"not a zombie row event: {event.name}")


def effective_status(row: ZombieRow, now: datetime) -> str:
    """What a reader shows: resolved, acknowledged, snoozed (until its end) or open."""
    if row.status == "resolved":
        return "resolved"
    if row.acknowledged_at is not None:
        return "acknowledged"
    if row.snoozed_until is not None and row.snoozed_until > now:
        return "snoozed"
    return "open"
