"""The agent's and the ingestion server's pure parts: backoff, notifications, record encoding, the spool's
bookkeeping (a SQLite file, no sockets), and decoding a batch on the server."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from pathlib import Path

import orjson

from agent.batcher import encode_record
from agent.sender import backoff_delay
from agent.sources import notified_objects
from agent.spool import Position, Spool
from schemas.events import LogEntry
from schemas.ingest_pb2 import Batch, Part, Reject
from streams.ingest_grpc.batches import decode
from streams.ingest_grpc.tokens import TOKEN_PREFIX, token_id_of, token_sha256
from tests.integration import ctgen

AT = datetime(2024, 5, 1, 9, tzinfo=UTC)


def test_backoff_doubles_to_the_cap_with_jitter_in_the_upper_half() -> None:
    rng = random.Random(1)
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (7, 30.0), (60, 30.0)]:
        for _ in range(50):
            delay = backoff_delay(attempt, 0.5, 30.0, rng)
            assert ceiling / 2 <= delay < ceiling


def test_notified_objects_in_every_shape() -> None:
    s3 = {"Records": [{"eventName": "ObjectCreated:Put",
                       "s3": {"bucket": {"name": "trail"}, "object": {"key": "AWSLogs/a+b%3Dc.json.gz"}}},
                      {"eventName": "ObjectRemoved:Delete",
                       "s3": {"bucket": {"name": "trail"}, "object": {"key": "gone.json.gz"}}}]}
    assert notified_objects(json.dumps(s3)) == [("trail", "AWSLogs/a b=c.json.gz")]  # decoded; deletes ignored
    sns = {"Type": "Notification", "Message": json.dumps(s3)}
    assert notified_objects(json.dumps(sns)) == [("trail", "AWSLogs/a b=c.json.gz")]
    bridge = {"source": "aws.s3", "detail": {"bucket": {"name": "trail"}, "object": {"key": "k.json.gz"}}}
    assert notified_objects(json.dumps(bridge)) == [("trail", "k.json.gz")]
    assert notified_objects(json.dumps({"Event": "s3:TestEvent"})) == []
    assert notified_objects("not json") is None
    assert notified_objects(json.dumps({"hello": 1})) is None


def test_encode_record_falls_back_for_what_orjson_refuses() -> None:
    assert encode_record({"a": 1}) == b'{"a":1}'
    huge = {"n": 2**70, "s": "\ud800"}  # an integer over 64 bits, a lone surrogate: Python's json reads both
    assert json.loads(encode_record(huge)) == huge


def test_spool_positions_ack_and_settling(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    agent_id = spool.agent_id
    assert spool.next_seq() == 1
    first = spool.put(1, b"one", 3, {"a": Position(3, complete=True), "b": Position(2)})
    second = spool.put(2, b"two", 4, {"b": Position(5, complete=True)})
    assert (first.batch_id, second.batch_id) == (f"{agent_id}:1", f"{agent_id}:2")
    assert [b.seq for b in spool.pending()] == [1, 2]
    assert spool.position("a") == Position(3, complete=True, acked=False)
    assert spool.ack(1) is True
    assert spool.position("a") == Position(3, complete=True, acked=True)  # nothing of "a" waits any more
    assert spool.position("b") == Position(5, complete=True, acked=False)  # batch 2 still holds some of "b"
    assert spool.ack(1) is False  # a second ack of the same batch changes nothing
    assert spool.ack(2) is True
    assert spool.counts() == {"sources": 2, "complete": 2, "acked": 2, "unacked_batches": 0}
    assert sorted(spool.batches.iterdir()) == []  # the batch files went with their acks
    spool.complete("c", 0)  # read to its end with nothing to send (a digest): acknowledged at once
    assert spool.position("c") == Position(0, complete=True, acked=True)
    third = spool.put(3, b"three", 1, {"d": Position(1)})
    assert spool.payload(third.seq) == b"three"
    (spool.batches / "000000000004.batch").write_bytes(b"written, never recorded")  # a crash before the commit
    spool.close()
    again = Spool(tmp_path, sync_acks=False)  # a restart: the same agent id, the sequence goes on
    assert (again.agent_id, again.next_seq()) == (agent_id, 4)
    assert again.remove_orphans() == 1
    assert [p.name for p in again.batches.iterdir()] == ["000000000003.batch"]
    assert [b.batch_id for b in again.pending()] == [f"{agent_id}:3"]
    again.close()


def _part(source: str, records: list[dict], locators: list[str], **more: object) -> Part:
    document = b'{"Records":[' + b",".join(orjson.dumps(r) for r in records) + b"]}"
    return Part(source=source, document=document, locators=locators, **more)  # type: ignore[arg-type]


def test_decode_sorts_per_part_and_names_records_by_their_place_in_the_source() -> None:
    late = ctgen.run_instances(2, at=AT.replace(hour=10))
    early = ctgen.run_instances(1, at=AT)
    bad = {"eventVersion": "1.09", "eventName": "RunInstances"}  # no eventID, no eventTime
    batch = Batch(batch_id="x:1", sequence=1, parts=[
        _part("s3://trail/a.json.gz", [late, bad, early], ["record 7", "record 8", "record 9"],
              rejects=[Reject(reason="gzip stream truncated", raw=b"\x1f\x8b", locator="byte 900")]),
        _part("s3://trail/b.json.gz", [ctgen.describe_instances(3, at=AT)], ["line 1"], skipped={"digest": 0}),
        Part(source="s3://trail/digest.json.gz", skipped={"digest": 1}),
    ])
    out = decode(batch, tenant="acme", ingested_at=AT, keep_read_only=True)  # every record a whole entry
    assert [(e.event_id[-2:], e.source) for e in out.entries] == [
        ("01", "s3://trail/a.json.gz"), ("02", "s3://trail/a.json.gz"), ("03", "s3://trail/b.json.gz")]
    assert all(isinstance(e, LogEntry) and e.tenant == "acme" for e in out.entries)
    assert [(r.source, r.locator) for r in out.rejected] == [
        ("s3://trail/a.json.gz", "byte 900"), ("s3://trail/a.json.gz", "record 8")]
    assert out.skipped == 1


def test_tokens_are_hashed_and_named_without_revealing_them() -> None:
    token = TOKEN_PREFIX + "abc"
    assert len(token_sha256(token)) == 64 and token_sha256(token) != token
    assert token_id_of(token) == "at_" + token_sha256(token)[:12]


def test_decode_counts_read_only_records_as_ingest_does() -> None:
    read = ctgen.describe_instances(3, at=AT.replace(hour=23, minute=59))
    write = ctgen.run_instances(4, at=AT)
    batch = Batch(batch_id="x:1", sequence=1, parts=[_part("f", [read, write], ["record 1", "record 2"])])
    out = decode(batch, tenant="acme", ingested_at=AT.replace(day=2))
    counted = [e for e in out.entries if not e.event_id]
    whole = [e for e in out.entries if e.event_id]
    assert len(counted) == 1 and len(whole) == 1
    # all that counting reads (tenant, account, UTC day, read_only); nothing that could be stored
    c = counted[0]
    assert (c.tenant, c.account_id, c.event_time.date().isoformat(), c.read_only, c.record) == (
        "acme", "111122223333", "2024-05-01", True, {})
    assert whole[0].event_id == "00000000-0000-4000-8000-000000000004" and not whole[0].read_only


def test_decode_archives_documents_as_they_came_one_file_per_account_and_region() -> None:
    """The raw archive of the agent's batches: a delivery file (one account and region) is kept byte for byte as
    a gzip member, read-only records included and still only counted for the log; a document mixing accounts is
    split by (account, region); each (account, region) of the batch is one file, its members one after the other,
    which the reader reads back as every record. Nothing unreadable is archived on its own."""
    import gzip

    from schemas import cloudtrail

    one = _part("AWSLogs/a.json.gz", [ctgen.describe_instances(1, at=AT), ctgen.run_instances(2, at=AT)],
                ["record 1", "record 2"])
    as_delivered = gzip.compress(one.document, mtime=0)
    delivered = Part(source=one.source, document=as_delivered, locators=one.locators)
    other = ctgen.run_instances(3, at=AT)
    other["recipientAccountId"] = other["userIdentity"]["accountId"] = "444455556666"
    mixed = _part("push", [ctgen.run_instances(4, at=AT), other], ["record 1", "record 2"])
    empty = _part("junk", [{"eventName": "nothing"}], ["record 1"])
    batch = Batch(batch_id="x:1", sequence=1, parts=[delivered, mixed, empty])
    out = decode(batch, tenant="acme", ingested_at=AT, archive_documents=True)
    assert sum(1 for e in out.entries if not e.event_id) == 1  # the read-only record: counted, not stored
    files = out.archive_files
    assert [(f.account_id, f.region, f.records) for f in files] == [
        ("111122223333", "us-east-1", 3), ("444455556666", "us-east-1", 1)]
    assert files[0].data.startswith(as_delivered)  # the delivery file byte for byte: no re-encoding
    assert files[0].key.startswith("acme/AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/01/111122223333_CloudTrail_")
    read_back = [[item.record["eventID"][-2:] for item in cloudtrail.read_bytes(f.data, f.key)] for f in files]
    assert read_back == [["01", "02", "04"], ["03"]]
    assert decode(batch, tenant="acme", ingested_at=AT).archive_files == []  # no archive: nothing built
