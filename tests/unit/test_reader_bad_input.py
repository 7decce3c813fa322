"""Bad input is a value: what survives, what is Rejected, and where the reader says it went wrong."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

from schemas.cloudtrail import Limits, RawRecord, Rejected, Skipped, read_bytes, read_path, read_stream
from tests.conftest import CORPUS


def record(n: int, **extra: object) -> dict[str, object]:
    base: dict[str, object] = {
        "eventVersion": "1.09",
        "eventID": f"id-{n}",
        "eventTime": "2024-05-01T08:00:00Z",
        "eventSource": "ec2.amazonaws.com",
        "eventName": "DescribeInstances",
        "awsRegion": "us-east-1",
        "recipientAccountId": "111122223333",
    }
    base.update(extra)
    return base


def ids(items: list[object]) -> list[str]:
    return [item.record["eventID"] for item in items if isinstance(item, RawRecord)]


def rejected(items: list[object]) -> list[Rejected]:
    return [item for item in items if isinstance(item, Rejected)]


def test_truncated_gzip_keeps_what_was_decoded_then_one_rejected_naming_file_and_offset(tmp_path: Path) -> None:
    recs = [record(n, padding="x" * 200) for n in range(2000)]
    body = json.dumps({"Records": recs}).encode()
    whole = gzip.compress(body)
    cut = whole[: len(whole) // 2]
    path = tmp_path / "111122223333_CloudTrail_us-east-1_20240501T0800Z_cut.json.gz"
    path.write_bytes(cut)
    items = list(read_path(path))
    got = ids(items)
    assert len(got) > 100  # a good part of the file was decoded before the cut
    assert got == [f"id-{n}" for n in range(len(got))]
    (bad,) = rejected(items)
    assert items[-1] is bad
    assert bad.source == str(path)
    assert bad.reason.startswith(f"truncated gzip: the compressed data ends at byte {len(cut)} ")
    assert bad.locator == f"record {len(got) + 1}"
    assert bad.raw.startswith(b'{"eventVersion": "1.09", "eventID": "id-')


def test_truncated_gzip_at_a_record_boundary_still_reports_the_truncation() -> None:
    body = json.dumps(record(1)).encode() + b"\n" + json.dumps(record(2)).encode() + b"\n"
    whole = gzip.compress(body)
    cut = whole[:-8]  # only the gzip trailer (CRC + size) is missing: all the text is there
    items = list(read_bytes(cut, "k"))
    assert ids(items) == ["id-1", "id-2"]
    (bad,) = rejected(items)
    assert "truncated gzip" in bad.reason and f"byte {len(cut)}" in bad.reason


def test_corrupt_gzip_is_one_rejected_with_the_input_bytes() -> None:
    data = b"\x1f\x8b\x08\x00" + b"\x00" * 6 + b"this is not deflate data at all"
    (bad,) = read_bytes(data, "k")
    assert isinstance(bad, Rejected)
    assert bad.reason.startswith("corrupt gzip data at or before compressed byte")
    assert bad.raw == data


def test_invalid_json_in_an_array_rejects_one_element_and_resynchronises() -> None:
    body = json.dumps({"Records": [record(n) for n in range(5)]}).encode()
    broken = body.replace(b'"id-2", "eventTime"', b'"id-2" "eventTime"')
    items = list(read_bytes(broken, "k"))
    assert ids(items) == ["id-0", "id-1", "id-3", "id-4"]
    (bad,) = rejected(items)
    offset = broken.index(b'"eventTime"', broken.index(b'"id-2"'))
    assert bad.locator == "record 3"
    assert bad.reason == f"invalid JSON at byte {offset} (Expecting ',' delimiter)"
    assert bad.raw.startswith(b'{"eventVersion": "1.09", "eventID": "id-2" "eventTime"')


def test_invalid_json_in_ndjson_resynchronises_at_the_next_line() -> None:
    lines = [json.dumps(record(n)) for n in range(4)]
    lines[1] = lines[1][:40]  # a line cut short
    items = list(read_bytes("\n".join(lines).encode(), "k"))
    assert ids(items) == ["id-0", "id-2", "id-3"]
    (bad,) = rejected(items)
    assert bad.locator == "line 2"
    assert bad.reason.startswith("invalid JSON at byte")
    assert bad.raw.strip() == lines[1].encode()


def test_broken_json_with_nothing_after_it_rejects_the_rest_once_with_the_offset() -> None:
    """cado-security_cloudgrep/bad_cloudtrail.json is a Records file cut inside its first record."""
    items = list(read_path(CORPUS / "cado-security_cloudgrep" / "bad_cloudtrail.json"))
    (bad,) = items
    assert isinstance(bad, Rejected)
    assert bad.locator == "record 1"
    assert bad.reason == "unexpected end of data at byte 965: record 1 is cut off"
    junk_after = json.dumps({"Records": [record(1)]}).encode() + b" trailing junk"
    items = list(read_bytes(junk_after, "k"))
    assert ids(items) == ["id-1"]
    (bad,) = rejected(items)
    assert bad.reason.startswith(
        f"invalid JSON at byte {len(junk_after) - len(b'trailing junk')} (expected a JSON value)"
    )
    assert bad.reason.endswith("no later record could be found, so the rest of the input is skipped")
    assert bad.raw == b"trailing junk"


def test_processing_library_bad_json_file_keeps_the_record_after_the_broken_one() -> None:
    items = list(read_path(CORPUS / "aws_cloudtrail-processing-library/resources/SerializerTestFileBadJsonFormat.json"))
    assert [type(item).__name__ for item in items] == ["Rejected", "RawRecord"]
    assert items[0].reason == "invalid JSON at byte 1293 (Expecting property name enclosed in double quotes)"
    assert items[1].record["eventName"] == "eventName2" and items[1].locator == "record 2"


def test_neither_gzip_nor_json_is_one_rejected() -> None:
    (zip_like,) = read_bytes(b"PK\x03\x04\x14\x00\x00\x00", "upload.zip")
    assert isinstance(zip_like, Rejected)
    assert (
        zip_like.reason
        == "neither gzip (no 1f 8b magic) nor JSON: the content starts with bytes 50 4b 03 04 14 00 00 00"
        " (a zip archive)"
    )
    (text,) = read_bytes(b"hello, this is a log line", "x")
    assert isinstance(text, Rejected) and text.reason.startswith("neither gzip (no 1f 8b magic) nor JSON")
    (gz_text,) = read_bytes(gzip.compress(b"<xml>not json</xml>"), "x.json.gz")
    assert isinstance(gz_text, Rejected)
    assert gz_text.reason.startswith("gzip data whose content is not JSON: the content starts with bytes 3c 78 6d 6c")


def test_non_utf8_bytes_reject_only_the_record_holding_them() -> None:
    body = json.dumps({"Records": [record(n) for n in range(4)]}).encode()
    bad_body = body.replace(b'"id-2"', b'"id-\xff\xfe2"')
    for data in (bad_body, gzip.compress(bad_body)):
        items = list(read_bytes(data, "k"))
        assert ids(items) == ["id-0", "id-1", "id-3"]
        (bad,) = rejected(items)
        assert bad.locator == "record 3"
        assert bad.reason == f"invalid UTF-8 bytes at byte {bad_body.index(0xFF)}; only this record is rejected"
        assert b'"id-\xff\xfe2"' in bad.raw  # the original bytes, not a replacement character
    # Non-ASCII that is valid UTF-8 is fine, even split across reads.
    korean = json.dumps({"Records": [record(1, userAgent="콘솔 🤖")]}, ensure_ascii=False).encode()
    items = list(read_stream(io.BytesIO(korean), "k", limits=Limits(chunk_bytes=3)))
    assert [item.record["userAgent"] for item in items] == ["콘솔 🤖"]


def test_record_over_the_limit_is_rejected_and_skipped_and_a_1_mb_record_reads() -> None:
    big = record(1, requestParameters={"blob": "a" * (9 * 1024 * 1024)})
    one_mb = record(2, requestParameters={"blob": "b" * (1024 * 1024)})
    body = json.dumps({"Records": [big, one_mb, record(3)]}).encode()
    items = list(read_bytes(body, "k"))
    assert ids(items) == ["id-2", "id-3"]
    assert len(items[1].record["requestParameters"]["blob"]) == 1024 * 1024
    (bad,) = rejected(items)
    assert bad.locator == "record 1"
    size = len(json.dumps(big))
    assert bad.reason == f"record larger than the {8 * 1024 * 1024} byte limit ({size} bytes); skipped"
    assert len(bad.raw) == 64 * 1024


def test_document_over_the_limit_is_rejected() -> None:
    # `Events` not first: the document must be parsed whole, which the (here tiny) document limit refuses.
    doc = {"NextToken": "t", "Events": [{"CloudTrailEvent": json.dumps(record(n))} for n in range(20)]}
    items = list(read_bytes(json.dumps(doc).encode(), "k", limits=Limits(document_bytes=2000, chunk_bytes=512)))
    (bad,) = items
    assert isinstance(bad, Rejected)
    assert bad.reason.startswith("record larger than the 2000 byte limit (")


def test_fifty_megabyte_file_streams_every_record(tmp_path: Path) -> None:
    template = json.dumps(
        record(0, requestParameters={"instancesSet": {"items": [{"instanceId": "i-0123456789abcdef0"}]}})
    )
    head, _, tail = template.partition('"id-0"')
    count = 50 * 1024 * 1024 // len(template) + 1
    path = tmp_path / "big.json"
    with path.open("w") as out:
        out.write('{"Records": [\n')
        out.write(",\n".join(f'{head}"id-{n}"{tail}' for n in range(count)))
        out.write("\n]}\n")
    assert path.stat().st_size > 50 * 1024 * 1024
    read = 0
    last = ""
    for item in read_path(path):
        assert isinstance(item, RawRecord)
        read += 1
        last = item.record["eventID"]
    assert read == count
    assert last == f"id-{count - 1}"


def test_wrong_shapes_inside_known_envelopes_are_rejected_with_the_reason() -> None:
    cases = {
        b'{"detail-type": "AWS API Call via CloudTrail", "detail": "nope"}': (
            "EventBridge 'AWS API Call via CloudTrail' event without a CloudTrail record in detail"
        ),
        b'{"CloudTrailEvent": "{not json"}': "CloudTrailEvent is a string that does not hold a JSON object",
        b'{"Records": {"eventID": "x"}}': "Records must be an array, got a JSON object",
        b'{"Type": "Notification", "Messagess": "{}"}': "SNS notification without a Message field",
        b'{"_raw": "plain text line"}': "wrapper field _raw does not hold a JSON object",
        b"[1]": "not a CloudTrail record: expected a JSON object, got a JSON number",
    }
    for body, reason in cases.items():
        (item,) = read_bytes(body, "k")
        assert isinstance(item, Rejected), body
        assert item.reason == reason


def test_skipped_items_carry_source_and_locator() -> None:
    body = b'[{"detail-type": "AWS Health Event", "source": "aws.health"}]'
    (item,) = read_bytes(body, "s3://b/k")
    assert item == Skipped(
        kind="non_cloudtrail",
        source="s3://b/k",
        locator="record 1",
        reason="EventBridge event 'AWS Health Event' from 'aws.health' is not a CloudTrail record",
    )


def test_json_nested_too_deep_for_the_decoder_is_rejected_not_raised() -> None:
    deep_then_good = b'{"a": ' * 100_000 + b"\n" + json.dumps(record(1)).encode()  # NDJSON: a line too deep
    items = list(read_bytes(deep_then_good, "k"))
    assert [type(item).__name__ for item in items] == ["Rejected", "RawRecord"]
    assert items[0].reason == "invalid JSON at byte 0 (JSON nested too deeply to decode)"
    assert items[0].locator == "line 1" and items[1].locator == "line 2"
    inside = b'{"Records": [' + b"[" * 100_000 + b"], " + json.dumps(record(2)).encode() + b"]}"
    items = list(read_bytes(inside, "k"))
    assert [type(item).__name__ for item in items] == ["Rejected", "RawRecord"]
    assert items[0].locator == "record 1" and ids(items) == ["id-2"]
