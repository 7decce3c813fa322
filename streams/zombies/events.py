"""Zombie facts as log entries (pure): what a scan found, what disappeared, what a person decided.

Every entry has kind `zombie`, event source `dd0c.zombies`, and one of these event names:

* `ZombieDetected` - a check found the resource idle (status `zombie`) in a scan. Id: the zombie, the UTC day of
  the scan and its monthly waste, so a re-scan of the same state on the same day is a duplicate the log drops,
  while the next day's scan (or a changed dollar figure) is a new fact that moves `last_seen`.
* `ZombieResolved` - an open zombie that a *complete* run of its check in its region no longer found (a denied,
  throttled or failed check resolves nothing - R15). Id: the zombie and the start of the episode it closes.
* `ZombieScanCompleted` - the run itself: ok / partial / failed with every region error, a `reason` sentence
  naming the account (e.g. its credentials expired), calls made, retries, and the candidates that were not
  judged (`insufficient_history`, `unknown`).
* `ZombieAcknowledged`, `ZombieSnoozed`, `ZombieReopened` - user actions (API / CLI), with who, when and why.
  They are log entries like the rest, so a replay rebuilds acknowledgements and snoozes with the zombies.

`decode` turns an entry back into a `ZombieEvent` (or `Rejected` with the reason); the fold (fold.py) and the
projection writer only ever see decoded events.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from schemas.events import LogEntry, LogKind, Rejected

if TYPE_CHECKING:  # the fold decodes entries without loading boto3
    from streams.zombies.pure import Zombie
    from streams.zombies.scan import ScanResult

SOURCE = "dd0c.zombies"
DETECTED = "ZombieDetected"
RESOLVED = "ZombieResolved"
SCANNED = "ZombieScanCompleted"
ACKNOWLEDGED = "ZombieAcknowledged"
SNOOZED = "ZombieSnoozed"
REOPENED = "ZombieReopened"
ZOMBIE_EVENTS = frozenset({DETECTED, RESOLVED, ACKNOWLEDGED, SNOOZED, REOPENED})
ALL_EVENTS = ZOMBIE_EVENTS | {SCANNED}
SCAN_REGION = "global"  # the log's region column for a whole-account run

_NS = uuid.UUID("8a1f3c52-2f0e-4c53-9a59-0d6c0c057e11")  # dd0c zombie ids; any fixed UUID, never change it


def zombie_id(tenant: str, account_id: str, region: str, check: str, resource_id: str) -> str:
    """One zombie = one resource as seen by one check (stable across scans and replays)."""
    return str(uuid.uuid5(_NS, f"zombie/{tenant}/{account_id}/{region}/{check}/{resource_id}"))


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class OpenZombie:
    """What a scan must know of the projection to resolve: an open zombie and when its episode started."""

    zombie_id: str
    region: str
    check: str
    opened_at: datetime


@dataclass(frozen=True, slots=True)
class ZombieEvent:
    """A decoded zombie entry. `zombie_id` is empty for `ZombieScanCompleted`."""

    name: str
    tenant: str
    account_id: str
    zombie_id: str
    at: datetime  # the entry's event time: the scan clock, or when the person acted
    data: Mapping[str, Any]
    seq: int
    event_id: str


def _entry(
    tenant: str, account_id: str, event_id: str, name: str, region: str, at: datetime, ingested_at: datetime,
    record: Mapping[str, Any], source: str,
) -> LogEntry:
    return LogEntry(
        tenant=tenant,
        event_id=event_id,
        account_id=account_id,
        event_time=at,
        ingested_at=ingested_at,
        event_source=SOURCE,
        event_name=name,
        region=region,
        read_only=False,  # read-only entries are only counted by the log; these must be stored
        kind=LogKind.ZOMBIE,
        record={"eventName": name, **record},
        source=source,
    )


def detected_entry(z: Zombie, now: datetime, ingested_at: datetime, scan_id: str) -> LogEntry:
    zid = zombie_id(z.tenant, z.account_id, z.region, z.check, z.resource_id)
    waste = None if z.monthly_waste_usd is None else round(z.monthly_waste_usd, 6)
    event_id = "zd-" + str(uuid.uuid5(_NS, f"detected/{zid}/{now.astimezone(UTC).date()}/{waste}"))
    record = {
        "zombie_id": zid,
        "scan_id": scan_id,
        "region": z.region,
        "resource_id": z.resource_id,
        "resource_type": z.resource_type,
        "check": z.check,
        "monthly_waste_usd": waste,
        "evidence": dict(z.evidence),
    }
    return _entry(z.tenant, z.account_id, event_id, DETECTED, z.region, now, ingested_at, record, f"scan:{scan_id}")


def resolved_entry(
    tenant: str, account_id: str, gone: OpenZombie, now: datetime, ingested_at: datetime, scan_id: str
) -> LogEntry:
    episode = _iso(gone.opened_at)
    event_id = "zr-" + str(uuid.uuid5(_NS, f"resolved/{gone.zombie_id}/{episode}"))
    record = {
        "zombie_id": gone.zombie_id,
        "scan_id": scan_id,
        "region": gone.region,
        "check": gone.check,
        "episode_opened_at": episode,
        "reason": f"not found by a complete {gone.check} scan of {gone.region}",
    }
    return _entry(tenant, account_id, event_id, RESOLVED, gone.region, now, ingested_at, record, f"scan:{scan_id}")


def scan_id_for(tenant: str, account_id: str, now: datetime, regions: Collection[str] | None,
                checks: Sequence[str]) -> str:
    """The run's id: the same account, clock, regions and checks give the same id (a repeated run dedupes)."""
    wanted = ",".join(sorted(regions)) if regions is not None else "*"
    return str(uuid.uuid5(_NS, f"scan/{tenant}/{account_id}/{_iso(now)}/{wanted}/{','.join(checks)}"))


def scan_entries(
    tenant: str,
    account_id: str,
    result: ScanResult,
    open_now: Sequence[OpenZombie],
    *,
    now: datetime,
    ingested_at: datetime,
    scan_id: str,
    checks: Sequence[str],
    started_at: datetime | None = None,
) -> list[LogEntry]:
    """The entries one account's scan appends: detections, resolutions, then the run record (in that order)."""
    entries = [detected_entry(z, now, ingested_at, scan_id) for z in result.found]
    seen = {zombie_id(z.tenant, z.account_id, z.region, z.check, z.resource_id) for z in result.zombies}
    complete = set(result.completed)
    for gone in open_now:
        # Still seen in any status (an `unknown` is not proof of absence), or its check did not run to the end.
        if gone.zombie_id in seen or (gone.region, gone.check) not in complete:
            continue
        entries.append(resolved_entry(tenant, account_id, gone, now, ingested_at, scan_id))
    not_judged = [
        {"region": z.region, "resource_id": z.resource_id, "check": z.check, "status": z.status,
         "monthly_waste_usd": z.monthly_waste_usd,
         "why": z.evidence.get("unknown_because") if z.status == "unknown" else ["younger than the lookback"]}
        for z in result.zombies
        if z.status != "zombie"
    ]
    record = {
        "scan_id": scan_id,
        "status": result.status,
        "checks": list(checks),
        "regions_scanned": list(result.regions_scanned),
        "completed": [list(pair) for pair in result.completed],
        "errors": [
            {"region": e.region, "code": e.code, "operation": e.operation, "check": e.check, "message": e.message}
            for e in result.region_errors
        ],
        "reason": result.reason,
        "calls_made": result.calls_made,
        "retries": result.retries,
        "zombies_found": len(result.found),
        "resolved": sum(1 for e in entries if e.event_name == RESOLVED),
        "monthly_waste_usd": round(sum(z.monthly_waste_usd or 0.0 for z in result.found), 6),
        "not_judged": not_judged,
        "started_at": _iso(started_at or now),
    }
    entries.append(
        _entry(tenant, account_id, "zs-" + scan_id, SCANNED, SCAN_REGION, now, ingested_at, record, f"scan:{scan_id}")
    )
    return entries


def action_entry(
    tenant: str,
    account_id: str,
    zid: str,
    name: str,
    *,
    by: str,
    reason: str,
    at: datetime,
    until: datetime | None = None,
) -> LogEntry:
    """A person's acknowledge / snooze / reopen of one zombie. Every action is its own fact (random id)."""
    if name not in (ACKNOWLEDGED, SNOOZED, REOPENED):
        raise ValueError(f"not a zombie action: {name}")
    record: dict[str, Any] = {"zombie_id": zid, "by": by, "reason": reason}
    if name == SNOOZED:
        if until is None:
            raise ValueError("a snooze needs an end")
        record["until"] = _iso(until)
    event_id = f"za-{uuid.uuid4()}"
    return _entry(tenant, account_id, event_id, name, SCAN_REGION, at, at, record, f"action:{by}")


# -- decoding -------------------------------------------------------------------------------------------------

_REQUIRED: Mapping[str, tuple[str, ...]] = {
    DETECTED: ("zombie_id", "region", "resource_id", "resource_type", "check", "evidence"),
    RESOLVED: ("zombie_id", "episode_opened_at"),
    SCANNED: ("scan_id", "status"),
    ACKNOWLEDGED: ("zombie_id", "by", "reason"),
    SNOOZED: ("zombie_id", "by", "reason", "until"),
    REOPENED: ("zombie_id", "by", "reason"),
}


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None


def decode(entry: LogEntry) -> ZombieEvent | Rejected:
    """A zombie entry as an event, or why it cannot be one (to the dead letters; the fold goes on)."""
    record = entry.record
    where = f"log seq {entry.seq} ({entry.event_id})"

    def bad(reason: str) -> Rejected:
        return Rejected(f"{where}: {reason}", repr(record).encode("utf-8", "backslashreplace")[:65536],
                        SOURCE, entry.event_id)

    if entry.event_name not in ALL_EVENTS:
        return bad(f"unknown zombie event {entry.event_name!r}")
    if not isinstance(record, Mapping):
        return bad("record is not an object")
    missing = [k for k in _REQUIRED[entry.event_name] if record.get(k) in (None, "")]
    if missing:
        return bad(f"{entry.event_name} without {', '.join(missing)}")
    waste = record.get("monthly_waste_usd")
    if entry.event_name == DETECTED and waste is not None and (
        isinstance(waste, bool) or not isinstance(waste, (int, float)) or waste < 0
    ):
        return bad(f"monthly_waste_usd must be a non-negative number or null, got {waste!r}")
    for key in ("episode_opened_at", "until"):
        if key in record and parse_time(record[key]) is None:
            return bad(f"{key} is not an ISO-8601 time with a zone: {record[key]!r}")
    return ZombieEvent(
        name=entry.event_name,
        tenant=entry.tenant,
        account_id=entry.account_id,
        zombie_id=str(record.get("zombie_id") or ""),
        at=entry.event_time,
        data=record,
        seq=entry.seq or 0,
        event_id=entry.event_id,
    )
