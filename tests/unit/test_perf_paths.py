"""The ingest fast paths give exactly what the slow paths give.

* `plain_records` (a delivery file parsed whole with orjson) = the streaming reader's RawRecords, value for value
  and type for type (an int stays an int, -0.0 stays -0.0), or None - and then nothing changes, because callers
  stream the file as before;
* `read_only_day` (count a read without building its LogEntry) = what `to_log_entry` + the log's counter say;
* `FileReport.as_json` = `to_jsonable` of its counting fields.
"""

from __future__ import annotations

import gzip
import io
import json
import math
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ops.demo.generate import Params, delivery_files, ensure_history
from ops.ingest import FileReport
from schemas.cloudtrail import (
    Item,
    Limits,
    RawRecord,
    Rejected,
    plain_records,
    read_bytes,
    read_only_day,
    read_path,
    read_stream,
    to_log_entry,
)
from schemas.cloudtrail.fields import _STRINGY_FIELDS
from schemas.codec import to_jsonable
from schemas.events import Dd0cError, LogEntry, LogKind
from tests.conftest import CASES, CORPUS

INGESTED = datetime(2024, 6, 1, tzinfo=UTC)


def typed(value: Any) -> Any:
    """`value` with the type of every leaf made explicit: 1 == 1.0 in Python, but they are not the same JSON."""
    if isinstance(value, dict):
        return {k: typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [typed(v) for v in value]
    if isinstance(value, float):
        return ("float", "nan" if math.isnan(value) else value.hex())
    return (type(value).__name__, value)


def streamed(data: bytes, source: str = "s", limits: Limits | None = None) -> list[Item]:
    return list(read_stream(io.BytesIO(data), source, limits=limits or Limits()))


def assert_same_as_streaming(data: bytes, source: str = "s", limits: Limits | None = None) -> list[Item]:
    """plain_records either declines or agrees with the streaming reader exactly; read_bytes always agrees."""
    slow = streamed(data, source, limits)
    fast = plain_records(data, source, limits=limits or Limits())
    if fast is not None:
        assert all(isinstance(item, RawRecord) for item in slow)
        assert typed(fast) == typed([item.record for item in slow])  # type: ignore[union-attr]
        assert [item.locator for item in slow] == [f"record {n}" for n in range(1, len(fast) + 1)]  # type: ignore[union-attr]
    via_bytes = list(read_bytes(data, source, limits=limits or Limits()))
    assert [(type(i), i.locator) for i in via_bytes] == [(type(i), i.locator) for i in slow]
    assert typed([i.record for i in via_bytes if isinstance(i, RawRecord)]) == typed(
        [i.record for i in slow if isinstance(i, RawRecord)]
    )
    assert [i for i in via_bytes if not isinstance(i, RawRecord)] == [i for i in slow if not isinstance(i, RawRecord)]
    return slow


def test_every_corpus_and_case_file_reads_the_same_whole_or_streamed() -> None:
    """All 257 shipped inputs: 79 ordinary delivery files take the fast path, every other one streams as before."""
    fast = 0
    files = [p for base in (CORPUS, CASES) for p in sorted(base.rglob("*")) if p.is_file() and p.suffix != ".md"]
    for path in files:
        data = path.read_bytes()
        assert_same_as_streaming(data, str(path))
        fast += plain_records(data, str(path)) is not None
        assert list(read_path(path)) == streamed(data, str(path))  # read_path tries the fast path too
    assert (len(files), fast) == (257, 79)


def test_generated_delivery_files_all_take_the_fast_path(tmp_path: Path) -> None:
    ensure_history(tmp_path, Params(days=7, accounts=2, records=3000, seed=3))
    files = delivery_files(tmp_path)
    total = 0
    for path in files:
        data = path.read_bytes()
        records = plain_records(data, str(path))
        assert records is not None, path
        assert_same_as_streaming(data, str(path))
        total += len(records)
    assert total == 3000


_R = b'{"eventVersion":"1.09","eventID":"a"}'


def _doc(*elements: bytes, tail: bytes = b"") -> bytes:
    return b'{"Records":[' + b",".join(elements) + b"]" + tail + b"}"


# Inputs the fast path must decline, with what the streaming reader makes of each (unchanged by this work).
UNUSUAL: dict[str, tuple[bytes, list[Any]]] = {
    "a 24-digit integer (orjson would make it a float)": (
        _doc(b'{"eventID":"a","n":123456789012345678901234}'),
        [{"eventID": "a", "n": 123456789012345678901234}],
    ),
    "a negative 20-digit integer": (
        _doc(b'{"eventID":"a","n": -98765432109876543210}'),
        [{"eventID": "a", "n": -98765432109876543210}],
    ),
    "NaN": (_doc(b'{"eventID":"a","x":NaN}'), [{"eventID": "a", "x": math.nan}]),
    "a number beyond a double": (_doc(b'{"eventID":"a","x":1e400}'), [{"eventID": "a", "x": math.inf}]),
    "a lone surrogate escape": (_doc(b'{"eventID":"a","x":"\\ud800"}'), [{"eventID": "a", "x": "\ud800"}]),
    "a byte order mark": (b"\xef\xbb\xbf" + _doc(_R), [{"eventVersion": "1.09", "eventID": "a"}]),
    "a trailing comma": (_doc(_R + b","), [{"eventVersion": "1.09", "eventID": "a"}]),
    "a second Records key": (
        _doc(_R, tail=b',"Records":[{"eventID":"b"}]'),
        [{"eventVersion": "1.09", "eventID": "a"}, {"eventID": "b"}],
    ),
    "another key after the list": (_doc(_R, tail=b',"NextToken":"x"'), [{"eventVersion": "1.09", "eventID": "a"}]),
    "a second object after the first": (
        _doc(_R) + _doc(b'{"eventID":"b"}'),
        [{"eventVersion": "1.09", "eventID": "a"}, {"eventID": "b"}],
    ),
    "two gzip members": (
        gzip.compress(b'{"Records":[' + _R + b",") + gzip.compress(b'{"eventID":"b"}]}'),
        [{"eventVersion": "1.09", "eventID": "a"}, {"eventID": "b"}],
    ),
    "zero padding after the gzip member": (
        gzip.compress(_doc(_R)) + b"\0\0\0",
        [{"eventVersion": "1.09", "eventID": "a"}],
    ),
    "an EventBridge envelope in the list": (
        _doc(b'{"detail-type":"AWS API Call via CloudTrail","detail":{"eventID":"c","eventVersion":"1.08"}}'),
        [{"eventID": "c", "eventVersion": "1.08"}],
    ),
    "a record as a JSON string in the list": (_doc(b'"{\\"eventID\\":\\"d\\"}"'), [{"eventID": "d"}]),
}


@pytest.mark.parametrize("name", sorted(UNUSUAL))
def test_unusual_input_is_left_to_the_streaming_reader(name: str) -> None:
    data, expected = UNUSUAL[name]
    assert plain_records(data, "s") is None
    slow = assert_same_as_streaming(data)
    got = [item.record for item in slow if isinstance(item, RawRecord)]
    assert json.dumps(got) == json.dumps(expected)  # NaN-safe, and exact about ints vs floats
    assert typed(got) == typed(expected)


def test_bad_bytes_and_limits_are_left_to_the_streaming_reader() -> None:
    whole = gzip.compress(_doc(*[_R] * 50))
    for data, limits, reason_start in (
        (whole[: len(whole) // 2], Limits(), "truncated gzip"),
        (_doc(b'{"eventID":"a","x":"caf\xe9"}'), Limits(), "invalid UTF-8 bytes"),
        (_doc(_R), Limits(record_bytes=20), "record larger than the 20 byte limit (37 bytes)"),
    ):
        assert plain_records(data, "s", limits=limits) is None
        slow = assert_same_as_streaming(data, limits=limits)
        assert any(isinstance(i, Rejected) and i.reason.startswith(reason_start) for i in slow), slow


def test_a_digest_key_is_skipped_by_name_not_parsed() -> None:
    key = "AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2024/05/01/d.json.gz"
    assert plain_records(gzip.compress(_doc(_R)), key) is None
    (item,) = read_bytes(gzip.compress(_doc(_R)), key)
    assert item.kind == "digest"  # type: ignore[union-attr]


_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
_leaf = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.sampled_from([2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1, 10**18, 10**19])
    | st.floats(allow_nan=False, allow_infinity=False)
    | _text
)
_json = st.recursive(_leaf, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
                     max_leaves=10)


@st.composite
def delivery_file(draw: st.DrawFn) -> bytes:
    records = []
    for n in range(draw(st.integers(0, 5))):
        record: dict[str, Any] = {"eventVersion": "1.09", "eventID": f"id-{n}"}
        record.update(draw(st.dictionaries(_text.map(lambda k: "x_" + k), _json, max_size=4)))
        records.append(record)
    text = json.dumps({"Records": records}, indent=draw(st.sampled_from([None, 1])),
                      ensure_ascii=draw(st.booleans()))
    data = text.encode()
    return gzip.compress(data) if draw(st.booleans()) else data


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=delivery_file())
def test_property_whole_file_parse_equals_streaming_for_any_payload(data: bytes) -> None:
    """Any payload (ints past 64 bits, subnormal floats, any Unicode): same records, types and locators."""
    assert_same_as_streaming(data)


# ---- read_only_day ------------------------------------------------------------------------------------------


def _read(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": {"type": "IAMUser", "accountId": "111122223333"},
        "eventTime": "2024-05-01T23:30:00Z",
        "eventSource": "ec2.amazonaws.com",
        "eventName": "DescribeInstances",
        "awsRegion": "us-east-1",
        "requestParameters": {"filterSet": {}},
        "responseElements": None,
        "eventID": "e-1",
        "readOnly": True,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": "111122223333",
    }
    for key, value in changes.items():
        if value is _DROP:
            record.pop(key, None)
        else:
            record[key] = value
    return record


_DROP = object()


def _full(record: dict[str, Any]) -> Any:
    return to_log_entry(RawRecord(record, "record 1"), tenant="t", ingested_at=INGESTED, source="s")


def test_read_only_day_of_an_ordinary_read_is_its_account_and_utc_day() -> None:
    assert read_only_day(_read(), INGESTED) == ("111122223333", datetime(2024, 5, 1).date())
    entry = _full(_read())
    assert isinstance(entry, LogEntry) and entry.read_only and entry.kind is LogKind.CLOUDTRAIL


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"readOnly": _DROP}, "inferred from the name by the full path"),
        ({"readOnly": "true"}, "a string the full path converts"),
        ({"recipientAccountId": _DROP}, "account only in userIdentity"),
        ({"recipientAccountId": 111122223333}, "a 12-digit number the full path accepts"),
        ({"eventTime": "2024-05-02T01:30:00+02:00"}, "an offset: 23:30Z the day before, by the full path"),
        ({"eventTime": "2024-05-01 23:30:00"}, "no offset: read as UTC by the full path"),
        ({"eventTime": 1714606200}, "epoch seconds"),
        ({"userIdentity": '{"type": "Root", "accountId": "111122223333"}'}, "userIdentity as a JSON string"),
        ({"eventCategory": "Insight"}, "an Insight"),
        ({"eventSource": "aws:s3"}, "maybe an S3 notification"),
    ],
)
def test_read_only_day_leaves_unusual_valid_records_to_the_full_path(change: dict[str, Any], why: str) -> None:
    assert read_only_day(_read(**change), INGESTED) is None, why


@pytest.mark.parametrize("field", sorted(set(_STRINGY_FIELDS) - {"readOnly"}))
def test_read_only_day_declines_every_field_the_full_path_decodes_from_a_string(field: str) -> None:
    record = _read(**{field: '{"a": 1}' if field != "managementEvent" else "true"})
    assert read_only_day(record, INGESTED) is None
    entry = _full(record)
    assert isinstance(entry, LogEntry) and entry.read_only  # still counted: by the full path


def test_read_only_day_declines_what_the_full_path_rejects_and_it_is_still_rejected() -> None:
    for change, reason in (
        ({"eventID": ""}, "eventID is empty"),
        ({"awsRegion": 5}, "awsRegion must be a string, got a JSON number (5)"),
        ({"eventTime": "2012-12-31T23:59:59Z"}, "eventTime 2012-12-31T23:59:59+00:00 is before CloudTrail existed"),
        ({"eventTime": "2024-06-02T00:00:01Z"}, "eventTime 2024-06-02T00:00:01+00:00 is more than 1 day after"),
        ({"eventTime": "2024-02-30T00:00:00Z"}, "eventTime cannot be read as a time: '2024-02-30T00:00:00Z'"),
        ({"userIdentity": ["x"]}, "userIdentity must be an object, got a JSON array"),
        ({"readOnly": "yes"}, "readOnly must be true or false, got 'yes'"),
    ):
        record = _read(**change)
        assert read_only_day(record, INGESTED) is None
        rejected = _full(record)
        assert isinstance(rejected, Rejected) and rejected.reason.startswith(reason), (change, rejected)


_KEYS = ["readOnly", "recipientAccountId", "eventID", "awsRegion", "eventSource", "eventName", "userIdentity",
         "requestParameters", "responseElements", "serviceEventDetails", "additionalEventData", "managementEvent",
         "eventCategory", "eventType", "insightDetails", "eventTime", "s3"]
_VALUES = [_DROP, None, "", 0, True, False, "true", "True", "false", 111122223333, 11112222333, "000011112222",
           {}, [], {"accountId": "444455556666"}, '{"a": 1}', "not json", "Insight", "AwsCloudTrailInsight",
           "aws:s3", {"eventSource": "ec2.amazonaws.com", "eventName": "RunInstances"}, "2024-05-01T08:00:00Z",
           "2024-05-01T08:00:00.5+05:30", "2024-05-01T08:00:00", "2024-05-01", "Wed, 01 May 2024 08:00:00 GMT",
           1714550400, 1714550400000, "1714550400", "2012-12-31T23:59:59Z", "2024-06-02T00:00:00Z",
           "2024-06-02T00:00:00.000001Z", "2024-02-30T00:00:00Z", math.nan]


@settings(max_examples=400, deadline=None)
@given(changes=st.dictionaries(st.sampled_from(_KEYS), st.sampled_from(_VALUES), max_size=3))
def test_property_read_only_day_agrees_with_to_log_entry(changes: dict[str, Any]) -> None:
    """Whenever the cheap path counts a record, the full path accepts it as a read of that account and day."""
    record = _read(**changes)
    day = read_only_day(record, INGESTED)
    if day is not None:
        entry = _full(record)
        assert isinstance(entry, LogEntry) and entry.read_only
        assert (entry.account_id, entry.event_time.astimezone(UTC).date()) == day


def test_read_only_day_refuses_a_naive_ingest_time_like_to_log_entry() -> None:
    with pytest.raises(Dd0cError):
        read_only_day(_read(), datetime(2024, 6, 1))


# ---- small pieces ---------------------------------------------------------------------------------------------


def test_file_report_json_is_what_to_jsonable_gives() -> None:
    report = FileReport("a.json.gz", sha256="ab", read=10, logged=2, duplicate=1, read_only_counted=7, rejected=1,
                        note="over 3 records")
    report.skipped["digest"] += 2
    stored = ("file", "sha256", "status", "earlier_rejected")  # not part of the stored report
    expected = to_jsonable({k: v for k, v in report.__dict__.items() if k not in stored})
    assert report.as_json() == expected == {
        "read": 10, "logged": 2, "duplicate": 1, "read_only_counted": 7, "skipped": {"digest": 2}, "rejected": 1,
        "note": "over 3 records",
    }


def test_log_entry_still_takes_any_aware_time_and_refuses_a_naive_one() -> None:
    plus_two = datetime(2024, 5, 1, 10, tzinfo=timezone(timedelta(hours=2)))
    fields = dict(tenant="t", event_id="e", account_id="a", event_source="s", event_name="n", region="r",
                  read_only=False, kind=LogKind.CLOUDTRAIL, record={})
    assert LogEntry(event_time=plus_two, ingested_at=INGESTED, **fields).event_time == plus_two  # type: ignore[arg-type]
    with pytest.raises(Dd0cError, match="event_time must be timezone-aware"):
        LogEntry(event_time=datetime(2024, 5, 1), ingested_at=INGESTED, **fields)  # type: ignore[arg-type]
