"""Helpers shared by the normalize / ledger / actor tests (no tests here).

Builds LogEntry objects straight from CloudTrail record dicts (the reader is another stage's job) and loads the
field cases and corpus files with plain `json`.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from schemas.events import CostEvent, LogEntry, LogKind, Rejected, Resource
from streams.ledger.pure import apply, changes
from streams.normalize.pure import normalize
from streams.prices.table import PriceTable, load_default_prices

ROOT = Path(__file__).resolve().parents[2]
CASES = ROOT / "tests" / "cases"
CORPUS = ROOT / "ops" / "corpus" / "cloudtrail"
INGESTED = datetime(2024, 6, 1, tzinfo=UTC)
TENANT = "acme"


def prices() -> PriceTable:
    return load_default_prices()


def parse_time(value: Any) -> datetime:
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
        except ValueError:
            pass
    return INGESTED


def entry(record: Mapping[str, Any], tenant: str = TENANT, seq: int | None = None) -> LogEntry:
    identity = record.get("userIdentity")
    account = record.get("recipientAccountId") or (identity.get("accountId") if isinstance(identity, dict) else None)
    return LogEntry(
        tenant=tenant,
        event_id=str(record.get("eventID") or "no-event-id"),
        account_id=str(account or "000000000000"),
        event_time=parse_time(record.get("eventTime")),
        ingested_at=INGESTED,
        event_source=str(record.get("eventSource") or ""),
        event_name=str(record.get("eventName") or ""),
        region=str(record.get("awsRegion") or ""),
        read_only=bool(record.get("readOnly") is True),
        kind=LogKind.CLOUDTRAIL,
        record=record,
        source="test",
        seq=seq,
    )


def call(
    source: str,
    name: str,
    request: Any = None,
    response: Any = None,
    *,
    region: str = "us-east-1",
    account: str = "111122223333",
    event_id: str = "evt-1",
    when: str = "2024-05-01T10:00:00Z",
    identity: Mapping[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A minimal CloudTrail record for one API call."""
    record: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": dict(
            identity
            or {
                "type": "IAMUser",
                "arn": f"arn:aws:iam::{account}:user/alice",
                "accountId": account,
                "userName": "alice",
            }
        ),
        "eventTime": when,
        "eventSource": source,
        "eventName": name,
        "awsRegion": region,
        "requestParameters": request,
        "responseElements": response,
        "eventID": event_id,
        "recipientAccountId": account,
    }
    record.update(extra)
    return record


def events_of(
    record: Mapping[str, Any],
    table: PriceTable | None = None,
    known: Mapping[tuple[str, str, str], Resource] | None = None,
) -> list[CostEvent]:
    result = normalize(entry(record), table or prices(), known)
    assert not isinstance(result, Rejected), result.reason
    return result


def read_records(path: Path) -> list[dict[str, Any]]:
    """Records of a case/corpus file: {"Records": [...]}, a bare list, one record, or an EventBridge envelope."""
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    doc = json.loads(data)
    if isinstance(doc, dict) and "Records" in doc:
        doc = doc["Records"]
    docs = doc if isinstance(doc, list) else [doc]
    return [d["detail"] if isinstance(d.get("detail"), dict) else d for d in docs if isinstance(d, dict)]


def case(name: str) -> list[dict[str, Any]]:
    for suffix in (".json", ".json.gz"):
        path = CASES / f"{name}{suffix}"
        if path.exists():
            return read_records(path)
    raise FileNotFoundError(name)


def by_event_id(records: Iterable[Mapping[str, Any]], event_id: str) -> dict[str, Any]:
    found = [r for r in records if r.get("eventID") == event_id]
    assert len(found) == 1, f"{event_id}: {len(found)} records"
    return dict(found[0])


def fold(
    records: Iterable[Mapping[str, Any]], table: PriceTable | None = None
) -> tuple[dict[tuple[str, str, str], Resource], list[CostEvent]]:
    """normalize -> ledger for records in the given order, as streams/fold.py composes them."""
    ledger: dict[tuple[str, str, str], Resource] = {}
    all_events: list[CostEvent] = []
    for record in records:
        e = entry(record)
        result = normalize(e, table or prices(), ledger)
        assert not isinstance(result, Rejected), result.reason
        all_events.extend(result)
        for change in changes(e, result):
            key = (change.tenant, change.account_id, change.resource_id)
            updated = apply(ledger.get(key), change)
            if updated is not None:
                ledger[key] = updated
    return ledger, all_events
