"""to_log_entry and parse_event_time: the envelope fields, every time format seen, every wrong type (R04, R06)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from schemas.cloudtrail import RawRecord, Rejected, Skipped, parse_event_time, read_path, to_log_entry
from schemas.events import Dd0cError, LogEntry, LogKind
from tests.conftest import CASES

INGESTED = datetime(2024, 6, 1, tzinfo=UTC)


def record(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "eventVersion": "1.09",
        "userIdentity": {"type": "IAMUser", "accountId": "444455556666", "userName": "alice"},
        "eventTime": "2024-05-01T08:00:00Z",
        "eventSource": "ec2.amazonaws.com",
        "eventName": "RunInstances",
        "awsRegion": "us-east-1",
        "eventID": "00000000-0000-4000-8000-000000000001",
        "readOnly": False,
        "recipientAccountId": "111122223333",
    }
    base.update(changes)
    return {key: value for key, value in base.items() if value is not _DROP}


_DROP = object()


def entry(rec: dict[str, object]) -> LogEntry | Rejected | Skipped:
    return to_log_entry(RawRecord(rec, "record 7"), tenant="acme", ingested_at=INGESTED, source="s3://b/k.json.gz")


def reason(rec: dict[str, object]) -> str:
    result = entry(rec)
    assert isinstance(result, Rejected), result
    assert result.source == "s3://b/k.json.gz" and result.locator == "record 7"
    assert json.loads(result.raw) == json.loads(json.dumps(rec))  # the record as received
    return result.reason


def test_a_plain_record_becomes_the_log_envelope() -> None:
    rec = record()
    result = entry(rec)
    assert result == LogEntry(
        tenant="acme",
        event_id="00000000-0000-4000-8000-000000000001",
        account_id="111122223333",
        event_time=datetime(2024, 5, 1, 8, 0, tzinfo=UTC),
        ingested_at=INGESTED,
        event_source="ec2.amazonaws.com",
        event_name="RunInstances",
        region="us-east-1",
        read_only=False,
        kind=LogKind.CLOUDTRAIL,
        record=rec,
        source="s3://b/k.json.gz",
    )
    assert result.record is rec  # nothing needed decoding: the record is kept as received


def test_R06_timestamps_parse_to_exact_utc_and_ingest_time_is_kept_apart() -> None:
    """R06: whole seconds, milliseconds, next day; event_time from eventTime, ingested_at from the clock."""
    items = list(read_path(CASES / "R06.json"))
    entries = [to_log_entry(item, tenant="t", ingested_at=INGESTED, source="R06.json") for item in items]
    assert [e.event_time for e in entries] == [
        datetime(2024, 5, 1, 8, 0, 0, tzinfo=UTC),
        datetime(2024, 5, 1, 9, 0, 0, 123000, tzinfo=UTC),
        datetime(2024, 5, 2, 10, 0, 0, tzinfo=UTC),
    ]
    assert all(e.ingested_at == datetime(2024, 6, 1, tzinfo=UTC) for e in entries)
    assert all(e.event_time.tzinfo is UTC for e in entries)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-05-01T08:00:00Z", datetime(2024, 5, 1, 8, 0, tzinfo=UTC)),
        ("2024-05-01T09:00:00.123Z", datetime(2024, 5, 1, 9, 0, 0, 123000, tzinfo=UTC)),
        ("2024-05-01T08:00:00+00:00", datetime(2024, 5, 1, 8, 0, tzinfo=UTC)),
        ("2024-05-01T19:00:00+11:00", datetime(2024, 5, 1, 8, 0, tzinfo=UTC)),
        ("2022-02-08 09:23:37+11:00", datetime(2022, 2, 7, 22, 23, 37, tzinfo=UTC)),  # lookup-events EventTime
        ("2025-01-21 17:49:47.000000000", datetime(2025, 1, 21, 17, 49, 47, tzinfo=UTC)),  # Panther, naive
        ("2025-01-21T17:49:47.123456789Z", datetime(2025, 1, 21, 17, 49, 47, 123456, tzinfo=UTC)),
        ("2021-10-14 21:25:20", datetime(2021, 10, 14, 21, 25, 20, tzinfo=UTC)),
        ("2024-05-01t08:00:00z", datetime(2024, 5, 1, 8, 0, tzinfo=UTC)),
        ("20240501T080000Z", datetime(2024, 5, 1, 8, 0, tzinfo=UTC)),
        ("Wed, 01 May 2024 08:00:00 GMT", datetime(2024, 5, 1, 8, 0, tzinfo=UTC)),
        (" 2024-05-01T08:00:00Z ", datetime(2024, 5, 1, 8, 0, tzinfo=UTC)),
        (1714550400, datetime(2024, 5, 1, 8, 0, tzinfo=UTC)),  # epoch seconds
        (1714550400123, datetime(2024, 5, 1, 8, 0, 0, 123000, tzinfo=UTC)),  # epoch milliseconds
        (1714550400.5, datetime(2024, 5, 1, 8, 0, 0, 500000, tzinfo=UTC)),
        ("1714550400", datetime(2024, 5, 1, 8, 0, tzinfo=UTC)),
        ("ThisIsAWrongEventTime", None),
        ("2024-05-01", None),  # a date without a time of day
        ("redacted", None),
        ("", None),
        (None, None),
        (True, None),
        (float("nan"), None),
        (10**30, None),
        ({"t": 1}, None),
    ],
)
def test_parse_event_time(value: object, expected: datetime | None) -> None:
    parsed = parse_event_time(value)
    assert parsed == expected
    if parsed is not None:
        assert parsed.utcoffset() == timedelta(0)


def test_R04_account_comes_from_recipient_account_id_for_every_identity_shape() -> None:
    """R04: recipientAccountId is present in all six records, userIdentity.accountId is not."""
    entries = [
        to_log_entry(item, tenant="t", ingested_at=INGESTED, source="R04") for item in read_path(CASES / "R04.json")
    ]
    assert [e.account_id for e in entries] == ["111122223333"] * 6
    assert [e.event_id[-4:] for e in entries] == ["0401", "0402", "0403", "0404", "0405", "0406"]


def test_account_falls_back_to_user_identity_and_keeps_odd_ids_as_given() -> None:
    assert entry(record(recipientAccountId=_DROP)).account_id == "444455556666"
    assert entry(record(recipientAccountId=None)).account_id == "444455556666"
    assert entry(record(recipientAccountId="")).account_id == "444455556666"
    assert entry(record(recipientAccountId="1010101010101")).account_id == "1010101010101"  # 13 digits (elastic)
    assert entry(record(recipientAccountId="007")).account_id == "007"
    assert entry(record(recipientAccountId=111122223333)).account_id == "111122223333"  # 12-digit number: nothing lost
    assert reason(record(recipientAccountId=_DROP, userIdentity={"type": "AWSService", "invokedBy": "x"})) == (
        "no account: recipientAccountId and userIdentity.accountId are both missing"
    )


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"eventID": 42}, "eventID must be a string, got a JSON number (42)"),
        ({"eventID": ""}, "eventID is empty"),
        ({"eventID": ["a"]}, "eventID must be a string, got a JSON array (['a'])"),
        ({"eventTime": _DROP}, "eventTime is missing"),
        ({"eventTime": None}, "eventTime is missing"),
        ({"eventTime": "ThisIsAWrongEventTime"}, "eventTime cannot be read as a time: 'ThisIsAWrongEventTime'"),
        ({"eventTime": True}, "eventTime cannot be read as a time: True"),
        ({"eventTime": [2024]}, "eventTime cannot be read as a time: [2024]"),
        (
            {"eventTime": "2012-12-31T23:59:59Z"},
            "eventTime 2012-12-31T23:59:59+00:00 is before CloudTrail existed (2013-01-01)",
        ),
        ({"eventTime": 0}, "eventTime 1970-01-01T00:00:00+00:00 is before CloudTrail existed (2013-01-01)"),
        (
            {"eventTime": "2024-06-02T00:00:01Z"},
            "eventTime 2024-06-02T00:00:01+00:00 is more than 1 day after ingested_at 2024-06-01T00:00:00+00:00",
        ),
        ({"awsRegion": _DROP}, "awsRegion is missing"),
        ({"awsRegion": 1}, "awsRegion must be a string, got a JSON number (1)"),
        ({"eventSource": _DROP}, "eventSource is missing"),
        ({"eventName": {"x": 1}}, "eventName must be a string, got a JSON object ({'x': 1})"),
        (
            {"recipientAccountId": 12345},
            "recipientAccountId is a number with 5 digits (12345); leading zeros may be lost",
        ),
        ({"recipientAccountId": True}, "recipientAccountId must be a string, got a JSON boolean (True)"),
        ({"recipientAccountId": ["1"]}, "recipientAccountId must be a string, got a JSON array (['1'])"),
        (
            {"recipientAccountId": _DROP, "userIdentity": {"accountId": 7.5}},
            "userIdentity.accountId must be a string, got a JSON number (7.5)",
        ),
        ({"userIdentity": "alice"}, "userIdentity must be an object, got a string that does not hold a JSON object"),
        ({"userIdentity": ["alice"]}, "userIdentity must be an object, got a JSON array (['alice'])"),
        ({"userIdentity": 5}, "userIdentity must be an object, got a JSON number (5)"),
        ({"readOnly": "maybe"}, "readOnly must be true or false, got 'maybe'"),
        ({"readOnly": 1}, "readOnly must be true or false, got 1"),
    ],
)
def test_wrong_types_and_missing_fields_are_rejected_naming_the_field(
    changes: dict[str, object], expected: str
) -> None:
    assert reason(record(**changes)) == expected


def test_string_encoded_fields_are_decoded_and_the_rest_kept_exactly() -> None:
    rec = record(
        userIdentity=json.dumps({"type": "Root", "accountId": "444455556666"}),
        requestParameters=json.dumps({"instanceType": "m5.large"}),
        responseElements=json.dumps({"instancesSet": {"items": []}}),
        serviceEventDetails=json.dumps({"state": "ok"}),
        additionalEventData=json.dumps({"MFAUsed": "No"}),
        readOnly="false",
        managementEvent="TRUE",
        errorMessage='{"not": "decoded"}',  # not one of the listed fields: kept as a string
        sourceIPAddress="AWS Internal",
    )
    result = entry(rec)
    assert isinstance(result, LogEntry)
    assert result.record["userIdentity"] == {"type": "Root", "accountId": "444455556666"}
    assert result.record["requestParameters"] == {"instanceType": "m5.large"}
    assert result.record["responseElements"] == {"instancesSet": {"items": []}}
    assert result.record["serviceEventDetails"] == {"state": "ok"}
    assert result.record["additionalEventData"] == {"MFAUsed": "No"}
    assert result.record["readOnly"] is False and result.record["managementEvent"] is True
    assert result.record["errorMessage"] == '{"not": "decoded"}'
    assert list(result.record) == list(rec)  # same keys, same order
    assert rec["readOnly"] == "false"  # the RawRecord's dict is not modified
    # A payload field that is a string but not JSON is kept as it came.
    assert entry(record(responseElements="OK")).record["responseElements"] == "OK"


def test_read_only_from_the_field_or_inferred_from_the_event_name() -> None:
    assert entry(record(readOnly=True)).read_only is True
    assert entry(record(readOnly="true")).read_only is True
    assert entry(record(readOnly="False")).read_only is False
    inferred = {
        name: entry(record(readOnly=_DROP, eventName=name)).read_only
        for name in (
            "DescribeInstances",
            "GetObject",
            "ListBuckets",
            "LookupEvents",
            "HeadObject",
            "BatchGetSecretValue",
        )
    }
    assert inferred == dict.fromkeys(inferred, True)
    for name in ("RunInstances", "CreateVolume", "Decrypt", "ConsoleLogin"):
        assert entry(record(readOnly=None, eventName=name)).read_only is False


def test_s3_notification_record_is_skipped_and_non_dict_is_rejected() -> None:
    s3 = {"eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": {}}
    assert isinstance(entry(s3), Skipped)
    result = to_log_entry(RawRecord(["x"], "line 1"), tenant="t", ingested_at=INGESTED, source="s")  # type: ignore[arg-type]
    assert isinstance(result, Rejected) and result.reason == "not a CloudTrail record: a JSON array"


def test_naive_ingest_time_is_a_bug_not_bad_input() -> None:
    with pytest.raises(Dd0cError):
        to_log_entry(RawRecord(record(), "r"), tenant="t", ingested_at=datetime(2024, 6, 1), source="s")
    aware = datetime(2024, 6, 1, 10, tzinfo=timezone(timedelta(hours=10)))
    assert isinstance(to_log_entry(RawRecord(record(), "r"), tenant="t", ingested_at=aware, source="s"), LogEntry)


def test_a_record_without_event_id_gets_a_stable_content_derived_id() -> None:
    """AWS's documentation examples and test fixtures trim eventID; a re-delivery must still deduplicate."""
    when = datetime(2024, 5, 2, tzinfo=UTC)
    body = {
        "eventTime": "2024-05-01T08:00:00Z",
        "eventSource": "ec2.amazonaws.com",
        "eventName": "RunInstances",
        "awsRegion": "us-east-1",
        "recipientAccountId": "111122223333",
    }
    reordered = dict(reversed(list(body.items())))
    first = to_log_entry(RawRecord(body, "record 1"), tenant="acme", ingested_at=when, source="a.json")
    again = to_log_entry(RawRecord(reordered, "record 9"), tenant="acme", ingested_at=when, source="b.json")
    other = to_log_entry(
        RawRecord({**body, "awsRegion": "eu-west-1"}, "record 2"), tenant="acme", ingested_at=when, source="a.json"
    )
    assert isinstance(first, LogEntry) and isinstance(again, LogEntry) and isinstance(other, LogEntry)
    assert first.event_id.startswith("sha256:") and len(first.event_id) == len("sha256:") + 64
    assert first.event_id == again.event_id
    assert other.event_id != first.event_id
    assert "eventID" not in first.record  # the record itself is kept exactly as received
