"""Every container shape CloudTrail arrives in gives the same records back (cases R01, R02, R05)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from schemas.cloudtrail import (
    DIGEST,
    EMPTY,
    NON_CLOUDTRAIL,
    S3_NOTIFICATION,
    RawRecord,
    Rejected,
    Skipped,
    read_bytes,
    read_path,
    to_log_entry,
)
from schemas.events import LogKind
from tests.conftest import CASES


def record(n: int, **extra: object) -> dict[str, object]:
    base: dict[str, object] = {
        "eventVersion": "1.09",
        "eventID": f"00000000-0000-4000-8000-{n:012d}",
        "eventTime": "2024-05-01T08:00:00Z",
        "eventSource": "ec2.amazonaws.com",
        "eventName": "RunInstances",
        "awsRegion": "us-east-1",
        "recipientAccountId": "111122223333",
    }
    base.update(extra)
    return base


def records_of(items: list[object]) -> list[dict[str, object]]:
    return [item.record for item in items if isinstance(item, RawRecord)]


def kinds(items: list[object]) -> list[str]:
    return [type(item).__name__ for item in items]


RECS = [record(i) for i in range(1, 4)]


def test_records_pretty_single_line_and_gzipped_give_the_same_three_records() -> None:
    pretty = json.dumps({"Records": RECS}, indent=2).encode()
    single = json.dumps({"Records": RECS}).encode()
    for body in (pretty, single, gzip.compress(pretty), gzip.compress(single)):
        items = list(read_bytes(body, "s3://bucket/key.json.gz"))
        assert records_of(items) == RECS
        assert [item.locator for item in items] == ["record 1", "record 2", "record 3"]


def test_bare_array_ndjson_and_concatenated_objects() -> None:
    array = json.dumps(RECS).encode()
    ndjson = "\n".join(json.dumps(r) for r in RECS).encode() + b"\n"
    concatenated = b"".join(json.dumps(r, separators=(",", ":")).encode() for r in RECS)
    assert records_of(list(read_bytes(array, "a"))) == RECS
    nd_items = list(read_bytes(ndjson, "n"))
    assert records_of(nd_items) == RECS
    assert [item.locator for item in nd_items] == ["line 1", "line 2", "line 3"]
    cat_items = list(read_bytes(concatenated, "c"))
    assert records_of(cat_items) == RECS
    # Concatenated objects share one line: they are located by byte offset instead.
    first_len = len(json.dumps(RECS[0], separators=(",", ":")))
    assert [item.locator for item in cat_items] == ["line 1", f"byte {first_len}", f"byte {2 * first_len}"]


def test_empty_array_and_empty_records_yield_nothing_and_empty_file_is_skipped() -> None:
    assert list(read_bytes(b"[]", "a")) == []
    assert list(read_bytes(b'{"Records": []}', "r")) == []
    assert list(read_bytes(b'{\n  "Records" : [ ]\n}\n', "r")) == []
    for body in (b"", b"  \n\t", gzip.compress(b"")):
        (item,) = read_bytes(body, "e")
        assert isinstance(item, Skipped) and item.kind == EMPTY


def test_eventbridge_envelopes_firehose_concatenated_and_other_detail_types_skipped() -> None:
    envelopes = [
        {"version": "0", "detail-type": "AWS API Call via CloudTrail", "source": "aws.ec2", "detail": r} for r in RECS
    ]
    state = {"version": "0", "detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2"}
    firehose = gzip.compress(b"".join(json.dumps(e).encode() for e in [envelopes[0], state, *envelopes[1:]]))
    items = list(read_bytes(firehose, "firehose/object"))
    assert kinds(items) == ["RawRecord", "Skipped", "RawRecord", "RawRecord"]
    assert records_of(items) == RECS
    skipped = items[1]
    assert isinstance(skipped, Skipped) and skipped.kind == NON_CLOUDTRAIL
    assert "EC2 Instance State-change Notification" in skipped.reason


def test_lookup_events_cli_output_jsonl_and_hybrid_records() -> None:
    items_of = [
        {"EventId": r["eventID"], "EventTime": "2024-05-01 18:00:00+10:00", "CloudTrailEvent": json.dumps(r)}
        for r in RECS
    ]
    cli = json.dumps({"Events": items_of, "NextToken": "abc"}).encode()
    cli_token_first = json.dumps({"NextToken": "abc", "Events": items_of}).encode()
    jsonl = "\n".join(json.dumps(i) for i in items_of).encode()
    hybrid = json.dumps({"Records": items_of}).encode()
    for body in (cli, cli_token_first, jsonl, hybrid):
        assert records_of(list(read_bytes(body, "lookup"))) == RECS


def test_siem_wrappers_raw_input_message_and_wazuh_aws() -> None:
    cribl = json.dumps([{"_raw": json.dumps(RECS[0], indent=2), "_time": 1714550400}]).encode()
    sekoia = json.dumps({"input": {"message": json.dumps(RECS[1])}}).encode()
    wazuh_aws = dict(RECS[2], log_info={"s3bucket": "trail-bucket"})
    wazuh = json.dumps({"integration": "aws", "aws": wazuh_aws}).encode()
    assert records_of(list(read_bytes(cribl, "cribl"))) == [RECS[0]]
    assert records_of(list(read_bytes(sekoia, "sekoia"))) == [RECS[1]]
    assert records_of(list(read_bytes(wazuh, "wazuh"))) == [wazuh_aws]


def test_sns_delivery_notification_is_skipped_naming_the_keys() -> None:
    message = {
        "s3Bucket": "trail-bucket",
        "s3ObjectKey": ["AWSLogs/1/CloudTrail/a.json.gz", "AWSLogs/1/CloudTrail/b.json.gz"],
    }
    body = json.dumps({"Type": "Notification", "TopicArn": "arn:aws:sns:us-east-1:1:t", "Message": json.dumps(message)})
    (item,) = read_bytes(body.encode(), "sqs")
    assert isinstance(item, Skipped) and item.kind == S3_NOTIFICATION
    assert "AWSLogs/1/CloudTrail/a.json.gz" in item.reason and "AWSLogs/1/CloudTrail/b.json.gz" in item.reason
    s3_event = {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": "trail-bucket"}, "object": {"key": "AWSLogs/x.json.gz"}},
            }
        ]
    }
    (item,) = read_bytes(json.dumps(s3_event).encode(), "sqs")
    assert (
        isinstance(item, Skipped)
        and item.kind == S3_NOTIFICATION
        and "s3://trail-bucket/AWSLogs/x.json.gz" in item.reason
    )


def test_insight_event_is_a_record_and_becomes_an_insight_entry() -> None:
    from datetime import UTC, datetime

    insight = {
        "eventVersion": "1.07",
        "eventTime": "2019-10-15T21:13:00Z",
        "awsRegion": "us-east-1",
        "eventID": "insight-1",
        "eventType": "AwsCloudTrailInsight",
        "recipientAccountId": "123456789012",
        "insightDetails": {
            "state": "Start",
            "eventSource": "autoscaling.amazonaws.com",
            "eventName": "CompleteLifecycleAction",
        },
        "eventCategory": "Insight",
    }
    (item,) = read_bytes(json.dumps({"Records": [insight]}).encode(), "s")
    assert isinstance(item, RawRecord)
    entry = to_log_entry(item, tenant="t", ingested_at=datetime(2024, 1, 1, tzinfo=UTC), source="s")
    assert not isinstance(entry, Rejected | Skipped)
    assert entry.kind == LogKind.INSIGHT
    assert (entry.event_source, entry.event_name, entry.read_only) == (
        "autoscaling.amazonaws.com",
        "CompleteLifecycleAction",
        False,
    )


def test_R01_digest_skipped_by_key_and_by_content_and_empty_records_is_valid(tmp_path: Path) -> None:
    """R01: a digest file is skipped (not an error) whether its key says so or only its content does."""
    digest_bytes = (CASES / "R01.json.gz").read_bytes()
    key = (
        "AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2024/05/01/"
        "111122223333_CloudTrail-Digest_us-east-1_org-trail_us-east-1_20240501T120000Z.json.gz"
    )
    (by_key,) = read_path(CASES / "R01.json.gz", source=key)
    assert isinstance(by_key, Skipped) and by_key.kind == DIGEST and "CloudTrail-Digest" in by_key.reason
    (by_bytes_key,) = read_bytes(digest_bytes, "s3://trail-bucket/" + key)
    assert isinstance(by_bytes_key, Skipped) and by_bytes_key.kind == DIGEST
    renamed = tmp_path / "111122223333_CloudTrail_us-east-1_20240501T1200Z_abc.json.gz"
    renamed.write_bytes(digest_bytes)
    (by_content,) = read_path(renamed)
    assert isinstance(by_content, Skipped) and by_content.kind == DIGEST
    assert by_content.source == str(renamed)
    assert "digest" in by_content.reason
    # A digest recognised by logFiles + digestStartTime alone (no fingerprint), e.g. a hand-made copy.
    minimal = {"awsAccountId": "111122223333", "digestStartTime": "2024-05-01T11:00:00Z", "logFiles": []}
    (by_fields,) = read_bytes(json.dumps(minimal).encode(), "x.json")
    assert isinstance(by_fields, Skipped) and by_fields.kind == DIGEST
    # Empty is not malformed.
    assert list(read_bytes(gzip.compress(b'{"Records": []}'), "AWSLogs/1/CloudTrail/x.json.gz")) == []


def test_R02_gzip_decided_by_magic_bytes_never_by_name(tmp_path: Path) -> None:
    """R02: a .json.gz holding plain JSON, gzip bytes under .json, plain .json, and corrupt bytes."""
    plain_under_gz = (CASES / "R02.json.gz").read_bytes()
    assert plain_under_gz[:2] != b"\x1f\x8b"
    (item,) = read_path(CASES / "R02.json.gz")
    assert isinstance(item, RawRecord)
    assert item.record["eventID"] == "00000000-0000-4000-8000-000000000201"
    assert item.record["eventName"] == "RunInstances"
    gzip_under_json = tmp_path / "R02.json"
    gzip_under_json.write_bytes(gzip.compress(plain_under_gz))
    plain_json = tmp_path / "plain.json"
    plain_json.write_bytes(plain_under_gz)
    for path in (gzip_under_json, plain_json):
        (again,) = read_path(path)
        assert isinstance(again, RawRecord) and again.record == item.record
    corrupt = tmp_path / "corrupt.json.gz"
    corrupt.write_bytes(b"\x00\x01\x02 this is neither gzip nor JSON \xfe\xff")
    (bad,) = read_path(corrupt)
    assert isinstance(bad, Rejected)
    assert bad.reason.startswith("neither gzip (no 1f 8b magic) nor JSON: the content starts with bytes 00 01 02 20")
    assert bad.source == str(corrupt) and bad.raw.startswith(b"\x00\x01\x02")


def test_R05_push_bodies_reader_part() -> None:
    """R05: envelope, bare and Records bodies give the same record; state-change skipped; hello rejected."""
    payloads = json.loads((CASES / "R05.json").read_text())["payloads"]
    results = [list(read_bytes(json.dumps(body).encode(), f"push/{n}")) for n, body in enumerate(payloads, 1)]
    first, second, third = (r[0] for r in results[:3])
    assert all(len(r) == 1 for r in results)
    assert isinstance(first, RawRecord) and isinstance(second, RawRecord) and isinstance(third, RawRecord)
    assert first.record == second.record == third.record
    assert first.record["eventID"].endswith("000000000501")
    # The record's own eventTime is kept, not EventBridge's `time`.
    assert first.record["eventTime"] == payloads[1]["eventTime"]
    fourth, fifth = results[3][0], results[4][0]
    assert isinstance(fourth, Skipped) and fourth.kind == NON_CLOUDTRAIL
    assert isinstance(fifth, Rejected)
    assert fifth.reason.startswith("not a CloudTrail record: no eventName/eventID")
    assert "top-level keys: hello" in fifth.reason
    assert fifth.raw == b'{"hello": "world"}' and fifth.source == "push/5"


def test_inflates_beyond_counts_every_member_and_leaves_plain_or_corrupt_input_to_the_reader() -> None:
    from schemas.cloudtrail.containers import inflates_beyond

    blanks = gzip.compress(b'{"Records": [' + b" " * 200_000 + b"]}")  # 200,015 bytes inflated, a few hundred sent
    half = b'{"Records": [' + b'{"eventID": "x"}, ' * 3_000 + b"{}]}"  # 54,017 bytes
    assert [inflates_beyond(gzip.compress(half), 54_016), inflates_beyond(gzip.compress(half), 54_017)] == [True, False]
    assert inflates_beyond(gzip.compress(half) + gzip.compress(half), 100_000) is True  # 108,034 across 2 members
    assert inflates_beyond(blanks, 200_014) is True and inflates_beyond(blanks, 200_015) is False
    assert inflates_beyond(half, 10) is False  # not gzip: the reader reads it as it is
    assert inflates_beyond(b"\x1f\x8bjunk", 10) is False  # corrupt: the reader rejects it with its reason
