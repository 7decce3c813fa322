"""From a raw CloudTrail record to the log envelope (`LogEntry`): the fields the log needs, checked and typed.

What is read, and what happens to a wrong type (everything else in the record is kept exactly as received —
the log is the truth):

* `eventID` — a non-empty string. Absent or null (AWS's own documentation examples and test fixtures trim it):
  the id is derived from the record's content, `sha256:<hex>` of its canonical JSON, so a re-delivery of the
  same record still deduplicates. Any other type, or "", is Rejected (a number could be coerced, but an id that
  is not a string means the record was rewritten by something we cannot trust to have kept it intact).
* account — `recipientAccountId`, else `userIdentity.accountId` (case R04: a service principal often has no
  accountId, the recipient always does). A string is kept as given, whatever its length (some corpora use 10, 11
  or 13 digits). A JSON number is accepted only with exactly 12 digits, where no leading zero can have been lost;
  any other number, or another type, is Rejected naming the field. Null or "" counts as absent.
* `eventTime` — see `parse_event_time`. Null, missing or unparseable is Rejected naming eventTime; so is a time
  before 2013-01-01 (before CloudTrail existed) or more than a day after `ingested_at` (a clock gone wrong).
* `awsRegion` — required, a non-empty string.
* `eventSource`, `eventName` — required non-empty strings for API records; Insight events take them from
  `insightDetails` (kind `insight`).
* `readOnly` — a JSON boolean, or the strings "true"/"false" (any case). Absent or null: inferred from the event
  name (Describe*, Get*, List*, Lookup*, Head*, BatchGet* are reads; an Insight event is never a read). Any
  other value is Rejected.
* `userIdentity` — an object or null/absent. A JSON *string* holding an object is decoded; anything else is
  Rejected (the actor is derived from it downstream).
* `requestParameters`, `responseElements`, `serviceEventDetails`, `additionalEventData` — when they arrive as
  JSON-encoded strings (Panther, some SIEM exports) they are decoded into objects; a string that is not JSON is
  kept as it is (these are payload, not envelope: normalisation copes with what it cannot read).
* `managementEvent` — "true"/"false" strings become booleans; other values are kept.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import orjson

from schemas.cloudtrail.envelope import decode_json_string, is_insight, json_kind
from schemas.cloudtrail.items import S3_NOTIFICATION, RawRecord, Skipped
from schemas.events import Dd0cError, LogEntry, LogKind, Rejected

CLOUDTRAIL_EPOCH = datetime(2013, 1, 1, tzinfo=UTC)  # nothing CloudTrail wrote can be older
MAX_FUTURE = timedelta(days=1)  # beyond this after ingest, the record's clock is wrong, not early
READ_PREFIXES = ("Describe", "Get", "List", "Lookup", "Head", "BatchGet")
_JSON_STRING_FIELDS = ("requestParameters", "responseElements", "serviceEventDetails", "additionalEventData")
_BOOL_STRING_FIELDS = ("readOnly", "managementEvent")
_STRINGY_FIELDS = _JSON_STRING_FIELDS + _BOOL_STRING_FIELDS
_MS_THRESHOLD = 1e11  # epoch values above this are milliseconds (1e11 seconds is the year 5138)
_RAW_CAP = 64 * 1024


def parse_event_time(value: object) -> datetime | None:
    """Any eventTime seen in the wild as a UTC-aware datetime, or None when it cannot be read.

    Accepted: ISO 8601 with `Z` or an offset (`2024-05-01T08:00:00Z`, `...T09:00:00.123Z`, `+11:00`), a space
    instead of `T` (lookup-events `EventTime` "2022-02-08 09:23:37+11:00"), Panther's nanoseconds
    ("2025-01-21 17:49:47.000000000", truncated to microseconds), RFC 2822 dates, and epoch seconds or
    milliseconds as numbers or digit strings. A time without an offset is UTC. A date without a time is refused:
    the hour matters to everything downstream.
    """
    if type(value) is str and len(value) >= 11 and value[4] == "-":
        # The usual case, "2024-05-01T08:00:00Z" and friends, without the detours below.
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return _parse_unusual(value)
        return _utc(parsed)
    return _parse_unusual(value)


def _utc(parsed: datetime) -> datetime:
    if parsed.tzinfo is UTC:
        return parsed
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _parse_unusual(value: object) -> datetime | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return _from_epoch(float(value))
    if not isinstance(value, str):
        return None
    text = value.strip()
    if _is_number_text(text):
        return _from_epoch(float(text))
    if len(text) < 11:  # shorter than "YYYY-MM-DDT": a bare date or junk
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        parsed = _fallback(text)
        if parsed is None:
            return None
    return _utc(parsed)


def _fallback(text: str) -> datetime | None:
    if text[-1] == "z":  # lower-case Zulu
        try:
            return datetime.fromisoformat(text[:-1] + "Z")
        except ValueError:
            pass
    try:
        return parsedate_to_datetime(text)  # RFC 2822, e.g. "Wed, 01 May 2024 08:00:00 GMT"
    except (TypeError, ValueError, IndexError):
        return None


def _is_number_text(text: str) -> bool:
    body = text[1:] if text.startswith("-") else text
    return body.replace(".", "", 1).isdigit()


def _from_epoch(number: float) -> datetime | None:
    if not math.isfinite(number):
        return None
    seconds = number / 1000.0 if abs(number) >= _MS_THRESHOLD else number
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def infer_read_only(event_name: str) -> bool:
    """When readOnly is absent: reads are the calls whose names say so (Describe*, Get*, List*, ...)."""
    return event_name.startswith(READ_PREFIXES)


class _Invalid(Exception):
    """Internal: the record cannot become a log entry (never leaves this module)."""


def _as_bool(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def _content_id(record: Mapping[str, Any]) -> str:
    """A stable id for a record that has none: equal content, equal id, whatever the key order."""
    canonical = orjson.dumps(record, option=orjson.OPT_SORT_KEYS, default=str)
    return "sha256:" + hashlib.sha256(canonical).hexdigest()


def _text(record: Mapping[str, Any], key: str, label: str | None = None) -> str:
    value = record.get(key)
    if type(value) is str and value:
        return value
    name = label or key
    if value is None:
        raise _Invalid(f"{name} is missing")
    if not isinstance(value, str):
        raise _Invalid(f"{name} must be a string, got a JSON {json_kind(value)} ({_short(value)})")
    raise _Invalid(f"{name} is empty")


def _account(value: object, name: str) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and len(str(value)) == 12:
        return str(value)
    if isinstance(value, int) and not isinstance(value, bool):
        raise _Invalid(f"{name} is a number with {len(str(value))} digits ({value}); leading zeros may be lost")
    raise _Invalid(f"{name} must be a string, got a JSON {json_kind(value)} ({_short(value)})")


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _raw_bytes(record: object) -> bytes:
    try:
        data = json.dumps(record, ensure_ascii=False, default=str).encode("utf-8", "surrogateescape")
    except (TypeError, ValueError, RecursionError):
        data = f"<unprintable {type(record).__name__}>".encode()
    return data[:_RAW_CAP]


def _normalised(record: dict[str, Any]) -> dict[str, Any]:
    """The record with string-encoded fields decoded; the same dict object when nothing needed changing."""
    get = record.get
    identity = get("userIdentity")
    if (identity is None or type(identity) is dict) and not any(type(get(key)) is str for key in _STRINGY_FIELDS):
        return record  # nearly always: nothing arrived as a string that should not be one
    fixes: dict[str, Any] = {}
    if isinstance(identity, str):
        decoded = _json_object(identity)
        if not isinstance(decoded, dict):
            raise _Invalid("userIdentity must be an object, got a string that does not hold a JSON object")
        fixes["userIdentity"] = decoded
    elif identity is not None and not isinstance(identity, dict):
        raise _Invalid(f"userIdentity must be an object, got a JSON {json_kind(identity)} ({_short(identity)})")
    for key in _JSON_STRING_FIELDS:
        value = record.get(key)
        if isinstance(value, str):
            decoded = _json_object(value)
            if decoded is not None:
                fixes[key] = decoded
    for key in _BOOL_STRING_FIELDS:
        value = record.get(key)
        if isinstance(value, str) and _as_bool(value) is not None:
            fixes[key] = _as_bool(value)
    if not fixes:
        return record
    return {key: fixes.get(key, value) for key, value in record.items()}


def _json_object(text: str) -> dict[str, Any] | list[Any] | None:
    ok, decoded = decode_json_string(text)
    return decoded if ok and isinstance(decoded, dict | list) else None


def to_log_entry(raw: RawRecord, *, tenant: str, ingested_at: datetime, source: str) -> LogEntry | Rejected | Skipped:
    """The log envelope for one record, or why it cannot be one (see the module docstring for each field)."""
    if ingested_at.tzinfo is None:
        raise Dd0cError(f"ingested_at must be timezone-aware (got {ingested_at!r})")
    record = raw.record
    if not isinstance(record, dict):
        return Rejected(f"not a CloudTrail record: a JSON {json_kind(record)}", _raw_bytes(record), source, raw.locator)
    if record.get("eventSource") == "aws:s3" and "s3" in record:
        return Skipped(S3_NOTIFICATION, source, raw.locator, "S3 event notification, not a CloudTrail record")
    try:
        return _entry(record, raw.locator, tenant=tenant, ingested_at=ingested_at, source=source)
    except _Invalid as invalid:
        return Rejected(str(invalid), _raw_bytes(record), source, raw.locator)


def read_only_day(record: dict[str, Any], ingested_at: datetime) -> tuple[str, date] | None:
    """(account, UTC day) of a record that `to_log_entry` would accept as a read-only CloudTrail entry - what the
    log counts it under instead of storing it - or None, which says nothing about the record: it may still be valid.

    The ingest fast path for the ~90 % of records that are reads: it checks exactly what makes `to_log_entry`
    accept such a record (the same tests, sometimes stricter) and builds nothing. Whatever it is unsure about -
    an account only in userIdentity, a numeric account, a field that arrived as a JSON string, an Insight, an S3
    notification, an eventTime that is not plain ISO 8601 in UTC or is out of range - returns None, and the caller
    takes the full path, so every bad record is still rejected by `to_log_entry` with its reason.
    """
    if ingested_at.tzinfo is None:
        raise Dd0cError(f"ingested_at must be timezone-aware (got {ingested_at!r})")
    if type(record) is not dict:
        return None
    get = record.get
    if get("readOnly") is not True:
        return None
    account, event_id, region = get("recipientAccountId"), get("eventID"), get("awsRegion")
    event_source, event_name, identity = get("eventSource"), get("eventName"), get("userIdentity")
    if not (
        type(account) is str and account
        and type(event_id) is str and event_id
        and type(region) is str and region
        and type(event_source) is str and event_source and event_source != "aws:s3"  # aws:s3 may be a notification
        and type(event_name) is str and event_name
        and (identity is None or type(identity) is dict)
        # a JSON string in one of these would be decoded (or rejected) by _normalised: leave it to the full path
        and type(get("requestParameters")) is not str
        and type(get("responseElements")) is not str
        and type(get("serviceEventDetails")) is not str
        and type(get("additionalEventData")) is not str
        and type(get("managementEvent")) is not str
        and get("eventCategory") != "Insight"
        and get("eventType") != "AwsCloudTrailInsight"
        and "insightDetails" not in record
    ):
        return None
    value = get("eventTime")
    # parse_event_time's own first branch, inlined; only a result already in UTC is taken (what it would return).
    if type(value) is not str or len(value) < 11 or value[4] != "-":
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    if when.tzinfo is not UTC or when < CLOUDTRAIL_EPOCH or when > ingested_at + MAX_FUTURE:
        return None
    return account, when.date()  # tzinfo is UTC: the same day as event_time.astimezone(UTC).date()


def _entry(record: dict[str, Any], locator: str, *, tenant: str, ingested_at: datetime, source: str) -> LogEntry:
    record = _normalised(record)
    event_id = _text(record, "eventID") if record.get("eventID") is not None else _content_id(record)
    account = _account(record.get("recipientAccountId"), "recipientAccountId")
    if account is None:
        identity = record.get("userIdentity")
        account = _account(identity.get("accountId") if identity else None, "userIdentity.accountId")
    if account is None:
        raise _Invalid("no account: recipientAccountId and userIdentity.accountId are both missing")
    event_time = _event_time(record.get("eventTime"), ingested_at)
    region = _text(record, "awsRegion")
    if is_insight(record):
        kind = LogKind.INSIGHT
        details = record.get("insightDetails")
        if isinstance(details, str):
            details = _json_object(details)
        if not isinstance(details, dict):
            raise _Invalid("Insight event without an insightDetails object")
        event_source = _text(details, "eventSource", "insightDetails.eventSource")
        event_name = _text(details, "eventName", "insightDetails.eventName")
    else:
        kind = LogKind.CLOUDTRAIL
        event_source = _text(record, "eventSource")
        event_name = _text(record, "eventName")
    read_only_value = record.get("readOnly")
    if read_only_value is None:
        # An Insight is not a call at all: it is never counted as a read.
        read_only = False if kind is LogKind.INSIGHT else infer_read_only(event_name)
    elif isinstance(read_only_value, bool):
        read_only = read_only_value
    else:
        raise _Invalid(f"readOnly must be true or false, got {_short(read_only_value)}")
    return LogEntry(
        tenant=tenant,
        event_id=event_id,
        account_id=account,
        event_time=event_time,
        ingested_at=ingested_at,
        event_source=event_source,
        event_name=event_name,
        region=region,
        read_only=read_only,
        kind=kind,
        record=record,
        source=source,
    )


def _event_time(value: object, ingested_at: datetime) -> datetime:
    if value is None:
        raise _Invalid("eventTime is missing")
    parsed = parse_event_time(value)
    if parsed is None:
        raise _Invalid(f"eventTime cannot be read as a time: {_short(value)}")
    if parsed < CLOUDTRAIL_EPOCH:
        raise _Invalid(f"eventTime {parsed.isoformat()} is before CloudTrail existed (2013-01-01)")
    if parsed > ingested_at + MAX_FUTURE:
        raise _Invalid(f"eventTime {parsed.isoformat()} is more than 1 day after ingested_at {ingested_at.isoformat()}")
    return parsed
