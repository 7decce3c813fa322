"""Properties: any records, in any container shape, in any read size, come back equal; no bytes make it raise."""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.cloudtrail import Limits, RawRecord, Rejected, Skipped, read_bytes, read_stream, to_log_entry

# JSON text without lone surrogates (they cannot be written as UTF-8, which is what CloudTrail files are).
_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20)
_json_leaf = (
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False) | _text
)
_json = st.recursive(
    _json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=12,
)


@st.composite
def records(draw: st.DrawFn) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "eventVersion": draw(st.sampled_from(["1.05", "1.08", "1.11"])),
        "eventID": draw(st.uuids()).hex,
        "eventTime": draw(st.datetimes(min_value=datetime(2014, 1, 1), max_value=datetime(2030, 1, 1))).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        ),
        "eventSource": draw(st.sampled_from(["ec2.amazonaws.com", "s3.amazonaws.com", "rds.amazonaws.com"])),
        "eventName": draw(st.sampled_from(["RunInstances", "GetObject", "CreateDBInstance", "DescribeVpcs"])),
        "awsRegion": draw(st.sampled_from(["us-east-1", "eu-west-1", "ap-southeast-2"])),
        "recipientAccountId": draw(st.from_regex(r"[0-9]{12}", fullmatch=True)),
    }
    # Extra payload under a prefix, so that no generated key collides with an envelope key ("Records", ...).
    extra = draw(st.dictionaries(_text.map(lambda key: "x_" + key), _json, max_size=4))
    rec.update(extra)
    return rec


def _records_doc(recs: list[dict[str, Any]], indent: int | None, ascii_only: bool) -> bytes:
    return json.dumps({"Records": recs}, indent=indent, ensure_ascii=ascii_only).encode()


def _lookup_item(rec: dict[str, Any]) -> dict[str, Any]:
    return {"EventId": rec["eventID"], "EventName": rec["eventName"], "CloudTrailEvent": json.dumps(rec)}


SHAPES: dict[str, Callable[[list[dict[str, Any]]], bytes]] = {
    "records": lambda recs: _records_doc(recs, None, True),
    "records_pretty_utf8": lambda recs: _records_doc(recs, 2, False),
    "records_gzip": lambda recs: gzip.compress(_records_doc(recs, None, False)),
    "array": lambda recs: json.dumps(recs, ensure_ascii=False).encode(),
    "ndjson": lambda recs: "\n".join(json.dumps(r, ensure_ascii=False) for r in recs).encode(),
    "concatenated": lambda recs: "".join(json.dumps(r, separators=(",", ":")) for r in recs).encode(),
    "eventbridge_firehose_gzip": lambda recs: gzip.compress(
        "".join(json.dumps({"detail-type": "AWS API Call via CloudTrail", "detail": r}) for r in recs).encode()
    ),
    "lookup_events": lambda recs: json.dumps({"Events": [_lookup_item(r) for r in recs], "NextToken": "n"}).encode(),
    "lookup_events_jsonl": lambda recs: "\n".join(json.dumps(_lookup_item(r)) for r in recs).encode(),
}


class _Trickle(io.RawIOBase):
    """A stream that hands out at most `step` bytes per read, as sockets and decompressors may."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data, self._at, self._step = data, 0, step

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        take = self._step if size < 0 else min(size, self._step)
        out = self._data[self._at : self._at + take]
        self._at += len(out)
        return out


def _normal(value: Any) -> Any:
    # What a JSON round trip does to the value (tuples → lists, -0.0 stays; floats are exact in Python's json).
    return json.loads(json.dumps(value))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    recs=st.lists(records(), min_size=1, max_size=6),
    shape=st.sampled_from(sorted(SHAPES)),
    step=st.integers(1, 64),
)
def test_records_round_trip_through_every_container_shape(recs: list[dict[str, Any]], shape: str, step: int) -> None:
    data = SHAPES[shape](recs)
    expected = [_normal(r) for r in recs]
    whole = list(read_bytes(data, "s"))
    assert all(isinstance(item, RawRecord) for item in whole), [i for i in whole if not isinstance(i, RawRecord)]
    assert [item.record for item in whole] == expected
    trickled = list(read_stream(_Trickle(data, step), "s", limits=Limits(chunk_bytes=step)))
    assert [item.record for item in trickled if isinstance(item, RawRecord)] == expected
    assert [item.locator for item in trickled] == [item.locator for item in whole]


_valid_docs = st.lists(records(), min_size=1, max_size=3).flatmap(
    lambda recs: st.sampled_from(sorted(SHAPES)).map(lambda shape: SHAPES[shape](recs))
)


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    """A valid document with a few bytes cut, inserted or changed: the shapes broken files actually have."""
    data = bytearray(draw(_valid_docs))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["cut", "insert", "truncate"]))
        if action == "cut":
            del data[at : at + draw(st.integers(1, 30))]
        elif action == "insert":
            data[at:at] = draw(
                st.sampled_from([b"{", b"}", b"]", b",", b'"', b"\\", b"\n", b"\xff", b"}{", b"\x1f\x8b"])
            )
        else:
            del data[at:]
    return bytes(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.binary(max_size=300) | _mutated() | st.binary(max_size=60).map(lambda b: b"\x1f\x8b" + b),
    step=st.integers(1, 40),
    record_limit=st.sampled_from([40, 400, 8 * 1024 * 1024]),
)
def test_arbitrary_bytes_never_raise(data: bytes, step: int, record_limit: int) -> None:
    limits = Limits(chunk_bytes=step, record_bytes=record_limit, document_bytes=record_limit * 4)
    for items in (list(read_bytes(data, "fuzz")), list(read_stream(_Trickle(data, step), "fuzz", limits=limits))):
        assert all(isinstance(item, RawRecord | Rejected | Skipped) for item in items)
        for item in items:
            if isinstance(item, RawRecord):
                result = to_log_entry(item, tenant="t", ingested_at=datetime(2024, 6, 1, tzinfo=UTC), source="fuzz")
                assert type(result).__name__ in ("LogEntry", "Rejected", "Skipped")
            elif isinstance(item, Rejected):
                assert item.reason and item.source == "fuzz" and len(item.raw) <= 64 * 1024
