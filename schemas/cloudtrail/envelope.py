"""What a decoded JSON value holds: CloudTrail records, a container of them, something to skip, or nothing usable.

The same record reaches us in many envelopes (see the end of ops/corpus/cloudtrail/SOURCES.md, case R05):
bare, inside `{"Records": [...]}`, as EventBridge `detail`, as a JSON *string* in lookup-events'
`CloudTrailEvent`, or inside SIEM wrappers (`_raw`, `message`, `input.message`, Wazuh's `aws`). `unwrap` peels
every one of them and yields the records it finds, so the rest of the system only ever sees a record.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from schemas.cloudtrail.items import DIGEST, NON_CLOUDTRAIL, S3_NOTIFICATION, Item, RawRecord, Skipped
from schemas.events import Rejected

# A dict holding any of these at its top level is taken as a CloudTrail record (validation is to_log_entry's job).
RECORD_KEYS = ("eventID", "eventVersion", "eventName", "eventSource", "eventTime")
# SIEM / shipper wrappers: the record sits (often as a JSON string) under one of these paths.
_WRAPPER_PATHS: tuple[tuple[str, ...], ...] = (("_raw",), ("message",), ("input", "message"), ("aws",), ("event",))
_MAX_DEPTH = 8  # envelopes inside envelopes: beyond this it is garbage, not a shape seen in the wild

RawFn = Callable[[], bytes]


def is_insight(record: dict[str, Any]) -> bool:
    """CloudTrail Insight events carry eventSource/eventName inside `insightDetails`, not at the top."""
    return (
        record.get("eventCategory") == "Insight"
        or record.get("eventType") == "AwsCloudTrailInsight"
        or "insightDetails" in record
    )


def looks_like_record(value: dict[str, Any]) -> bool:
    return any(key in value for key in RECORD_KEYS) or is_insight(value)


def is_digest(value: dict[str, Any]) -> bool:
    """Digest files (integrity manifests, case R01) are recognised by content, whatever their name."""
    if "Records" in value:
        return False
    return "digestPublicKeyFingerprint" in value or ("logFiles" in value and "digestStartTime" in value)


def recognised(value: object) -> bool:
    """Does this value look like anything the reader knows (used to resynchronise after broken JSON)?"""
    if not isinstance(value, dict):
        return False
    if looks_like_record(value) or is_digest(value):
        return True
    keys = ("Records", "Events", "detail-type", "CloudTrailEvent", "s3ObjectKey", "Message", "_raw", "input", "aws")
    return any(key in value for key in keys)


def decode_json_string(text: str) -> tuple[bool, Any]:
    """A JSON document inside a JSON string (lookup-events, SIEM wrappers). (False, None) when it is not JSON."""
    stripped = text.strip()
    if not stripped or stripped[0] not in "{[":
        return False, None
    try:
        return True, json.loads(stripped)
    except (ValueError, RecursionError):
        return False, None


def json_kind(value: object) -> str:
    match value:
        case None:
            return "null"
        case bool():
            return "boolean"
        case int() | float():
            return "number"
        case str():
            return "string"
        case list():
            return "array"
        case dict():
            return "object"
        case _:
            return type(value).__name__


def unwrap(value: object, source: str, locator: str, raw: RawFn, depth: int = 0) -> Iterator[Item]:
    """Yield every record found in `value` (a decoded JSON value), or Skipped / Rejected saying why not."""

    def rejected(reason: str) -> Rejected:
        return Rejected(reason=reason, raw=raw(), source=source, locator=locator)

    def skipped(kind: str, reason: str) -> Skipped:
        return Skipped(kind=kind, source=source, locator=locator, reason=reason)

    def at(suffix: str) -> str:
        return f"{locator} {suffix}" if locator else suffix

    if depth > _MAX_DEPTH:
        yield rejected(f"envelopes nested more than {_MAX_DEPTH} deep")
        return

    if isinstance(value, str):
        ok, inner = decode_json_string(value)
        if not ok:
            yield rejected("not a CloudTrail record: a JSON string that does not hold a JSON object")
            return
        yield from unwrap(inner, source, locator, raw, depth + 1)
        return

    if isinstance(value, list):
        for index, element in enumerate(value, 1):
            yield from unwrap(element, source, at(f"item {index}"), raw, depth + 1)
        return

    if not isinstance(value, dict):
        yield rejected(f"not a CloudTrail record: expected a JSON object, got a JSON {json_kind(value)}")
        return

    if "Records" in value:
        records = value["Records"]
        if isinstance(records, str):
            ok, records = decode_json_string(records)
            if not ok:
                yield rejected("Records is a string that does not hold a JSON array")
                return
        if not isinstance(records, list):
            yield rejected(f"Records must be an array, got a JSON {json_kind(records)}")
            return
        for index, element in enumerate(records, 1):
            yield from unwrap(element, source, at(f"record {index}"), raw, depth + 1)
        return

    if is_digest(value):
        yield skipped(DIGEST, "CloudTrail digest file (integrity manifest, no Records)")
        return

    if value.get("eventSource") == "aws:s3" and "s3" in value:
        yield skipped(
            S3_NOTIFICATION, f"S3 event notification for {_s3_event_object(value)} (the records are in that object)"
        )
        return

    if looks_like_record(value):
        yield RawRecord(record=value, locator=locator)
        return

    if "detail-type" in value:
        yield from _eventbridge(value, source, locator, raw, depth)
        return

    if "CloudTrailEvent" in value:
        inner = value["CloudTrailEvent"]
        if isinstance(inner, str):
            ok, inner = decode_json_string(inner)
            if not ok:
                yield rejected("CloudTrailEvent is a string that does not hold a JSON object")
                return
        if not isinstance(inner, dict) or not looks_like_record(inner):
            yield rejected("CloudTrailEvent does not hold a CloudTrail record")
            return
        yield RawRecord(record=inner, locator=locator)
        return

    if isinstance(value.get("Events"), list):  # lookup-events CLI output: {"Events": [...], "NextToken": ...}
        for index, element in enumerate(value["Events"], 1):
            yield from unwrap(element, source, at(f"event {index}"), raw, depth + 1)
        return

    if "s3ObjectKey" in value or "s3Bucket" in value:
        keys = value.get("s3ObjectKey")
        names = ", ".join(str(k) for k in keys) if isinstance(keys, list) else str(keys)
        yield skipped(
            S3_NOTIFICATION,
            f"CloudTrail delivery notification naming S3 objects, not records: bucket {value.get('s3Bucket')!r}, "
            f"keys {names}",
        )
        return

    if value.get("Type") == "Notification" or "TopicArn" in value:
        message = value.get("Message")
        if message is None:
            yield rejected("SNS notification without a Message field")
            return
        yield from unwrap(message, source, locator, raw, depth + 1)
        return

    for path in _WRAPPER_PATHS:
        inner = _follow(value, path)
        if isinstance(inner, str | dict):
            if isinstance(inner, str):
                ok, inner = decode_json_string(inner)  # decoded once, here, and handed on as a value
                if not ok:
                    yield rejected(f"wrapper field {'.'.join(path)} does not hold a JSON object")
                    return
            yield from unwrap(inner, source, locator, raw, depth + 1)
            return

    shown = ", ".join(list(value)[:8]) or "none"
    yield rejected(
        "not a CloudTrail record: no eventName/eventID/eventVersion/eventSource/eventTime field and no known "
        f"envelope (Records, detail, CloudTrailEvent, Events, Message, _raw); top-level keys: {shown}"
    )


def _eventbridge(value: dict[str, Any], source: str, locator: str, raw: RawFn, depth: int) -> Iterator[Item]:
    """EventBridge: "AWS API Call via CloudTrail" (and the other "... via CloudTrail" types) carry the record in
    `detail`; every other detail-type (EC2 state changes, Health, GuardDuty, ...) is skipped, not an error."""
    detail_type = value.get("detail-type")
    if isinstance(detail_type, str) and detail_type.endswith("via CloudTrail"):
        detail = value.get("detail")
        if isinstance(detail, str):
            ok, detail = decode_json_string(detail)
            if not ok:
                detail = None
        if isinstance(detail, dict) and looks_like_record(detail):
            yield RawRecord(record=detail, locator=locator)
        else:
            yield Rejected(
                reason=f"EventBridge {detail_type!r} event without a CloudTrail record in detail",
                raw=raw(),
                source=source,
                locator=locator,
            )
        return
    yield Skipped(
        kind=NON_CLOUDTRAIL,
        source=source,
        locator=locator,
        reason=f"EventBridge event {detail_type!r} from {value.get('source')!r} is not a CloudTrail record",
    )


def _follow(value: dict[str, Any], path: tuple[str, ...]) -> object:
    node: object = value
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _s3_event_object(value: dict[str, Any]) -> str:
    s3 = value.get("s3")
    if not isinstance(s3, dict):
        return "an unknown object"
    bucket = s3.get("bucket", {}).get("name") if isinstance(s3.get("bucket"), dict) else None
    key = s3.get("object", {}).get("key") if isinstance(s3.get("object"), dict) else None
    return f"s3://{bucket}/{key}"
