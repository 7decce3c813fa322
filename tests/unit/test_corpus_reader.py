"""The public CloudTrail corpus (ops/corpus/cloudtrail) read folder by folder, with counts a person can check.

The expected numbers were worked out apart from the reader (whole-file `json.loads` plus a separate, simpler
classification, then the to_log_entry rules applied by hand) and compared with the per-folder totals in
SOURCES.md. Where they differ from SOURCES.md the comment on the folder says why: SOURCES.md counts every object
it unwrapped as a "record", including digest files, EC2 state-change events and S3-key notifications, and counts 0
for files json.loads cannot parse, while the reader skips the former and rescues what it can from the latter.

"entries" are LogEntry values from to_log_entry with ingested_at = 2026-06-01 (one Panther test record is dated
2026-01-11); "entry_rejected" are the records to_log_entry refuses (mostly: no eventID in hand-made fixtures).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from schemas.cloudtrail import RawRecord, Rejected, Skipped, read_path, to_log_entry
from schemas.events import LogEntry, LogKind
from tests.conftest import CORPUS

INGESTED = datetime(2026, 6, 1, tzinfo=UTC)
NOT_DATA = {"LICENSE", "SOURCES.md"}


@dataclass(frozen=True)
class Expect:
    files: int
    read: int
    entries: int
    read_only: int
    entry_rejected: int = 0
    rejected: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    insight: int = 0


EXPECTED = {
    # SOURCES.md: 55 files, 2900 records. Real delivery files; every record has readOnly.
    "invictus-ir_aws_dataset": Expect(files=55, read=2900, entries=2900, read_only=2326),
    # SOURCES.md: 35 files, 310 records (bare arrays).
    "stratus-red-team_detonation-logs": Expect(files=35, read=310, entries=310, read_only=261),
    # SOURCES.md: 464 records. 31 hand-made test logs cannot enter the log: 8 have no account, the rest no usable
    # eventTime (missing, or "redacted"). Records without an eventID get a content-derived id (34 of them enter
    # the log that way). read_only counts one readOnly "True" (capitalised) as true.
    "panther-analysis_rule-tests": Expect(files=1, read=464, entries=433, read_only=90, entry_rejected=31),
    # SOURCES.md: 94 files, 95 records — its 95 includes the 5 "EC2 Instance State-change Notification"
    # EventBridge events (ec2/cloudtrail/state_*.json), skipped here. 94 files = 88 one-record files + 5 state
    # changes + real_gz/get_object_xxx.gz (2 EventBridge records concatenated): 88 + 2 = 90 records.
    "stackstate_aws-topology": Expect(files=94, read=90, entries=90, read_only=0, skipped={"non_cloudtrail": 5}),
    # SOURCES.md: 24 records. event-cloud-trail-bedrock-create-customization-jobs.json has no eventTime.
    "cloud-custodian_cwe": Expect(files=24, read=24, entries=23, read_only=0, entry_rejected=1),
    # SOURCES.md: 44 records, each a pretty-printed record inside a "_raw" string.
    "criblpacks_aws-cloudtrail-logs": Expect(files=1, read=44, entries=44, read_only=6),
    # SOURCES.md: 27 records — its 27 includes the 2 digest files, skipped here. Of the 25 records, 5 are Insight
    # events (3 in the Records file, 2 in lookup-events output); 6 documentation examples have no eventID (they get a
    # content-derived id) and one of those has no eventTime either (Rejected).
    "awsdocs_cloudtrail-user-guide": Expect(
        files=3, read=25, entries=24, read_only=0, entry_rejected=1, skipped={"digest": 2}, insight=5
    ),
    # SOURCES.md: 43 records — its 43 counts SQSMessageBody (skipped here: it only names S3 keys) and
    # SQSMessageBodyWrongFormat (Rejected: no Message), and 0 for SerializerTestFileBadJsonFormat.json, whose
    # second record is rescued here after the first (broken) one is Rejected. Rejected: that broken record, the
    # wrong format SNS body, and the first record of BadFieldName / NewFieldName (keys like "eventVersionWrong",
    # "eventVersion1": nothing recognisable). 41 - 2 + 1 = 40 records read; none has an eventID (content-derived ids
    # instead); 2 cannot enter the log: one has no account, one eventTime "ThisIsAWrongEventTime".
    "aws_cloudtrail-processing-library": Expect(
        files=15, read=40, entries=38, read_only=0, entry_rejected=2, rejected=4, skipped={"s3_notification": 1}
    ),
    # SOURCES.md: 6 records (lookup-events JSONL, record as a JSON string in CloudTrailEvent).
    "plaso": Expect(files=1, read=6, entries=6, read_only=1),
    # SOURCES.md: 5 records (one gzipped delivery file, one pretty).
    "trailscraper": Expect(files=2, read=5, entries=5, read_only=3),
    # SOURCES.md: 11 records (incl. the hybrid {"Records":[{"CloudTrailEvent": "..."}]}).
    "coreos_grafiti": Expect(files=3, read=11, entries=11, read_only=0),
    # SOURCES.md: 2 records; bad_cloudtrail.json (cut inside its first record) is one Rejected.
    "cado-security_cloudgrep": Expect(files=3, read=2, entries=2, read_only=0, rejected=1),
}


def _data_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name not in NOT_DATA)


def _tally(folder: Path) -> tuple[Counter[str], list[LogEntry]]:
    counts: Counter[str] = Counter()
    entries: list[LogEntry] = []
    for path in _data_files(folder):
        counts["files"] += 1
        for item in read_path(path):
            if isinstance(item, RawRecord):
                counts["read"] += 1
                result = to_log_entry(item, tenant="corpus", ingested_at=INGESTED, source=str(path))
                if isinstance(result, LogEntry):
                    entries.append(result)
                else:
                    counts["entry_rejected"] += 1
            elif isinstance(item, Skipped):
                counts[f"skipped:{item.kind}"] += 1
            else:
                assert isinstance(item, Rejected)
                assert item.source == str(path) and item.reason
                counts["rejected"] += 1
    return counts, entries


def test_every_corpus_folder_has_expected_counts() -> None:
    folders = {p.name for p in CORPUS.iterdir() if p.is_dir()}
    assert folders == set(EXPECTED)


@pytest.mark.parametrize("folder", sorted(EXPECTED))
def test_corpus_folder_counts(folder: str) -> None:
    expect = EXPECTED[folder]
    counts, entries = _tally(CORPUS / folder)
    assert counts["files"] == expect.files
    assert counts["read"] == expect.read
    assert counts["rejected"] == expect.rejected
    assert {k.split(":", 1)[1]: v for k, v in counts.items() if k.startswith("skipped:")} == expect.skipped
    assert len(entries) == expect.entries
    assert counts["entry_rejected"] == expect.entry_rejected
    assert sum(e.read_only for e in entries) == expect.read_only
    assert sum(e.kind is LogKind.INSIGHT for e in entries) == expect.insight
    assert all(e.event_time.tzinfo is UTC for e in entries)


def _entries(path: Path) -> list[LogEntry]:
    out = []
    for item in read_path(path):
        assert isinstance(item, RawRecord)
        result = to_log_entry(item, tenant="corpus", ingested_at=INGESTED, source=str(path))
        assert isinstance(result, LogEntry)
        out.append(result)
    return out


def test_exact_values_from_an_invictus_delivery_file() -> None:
    path = CORPUS / "invictus-ir_aws_dataset" / "218007301253_CloudTrail_us-east-1_20230710T1145Z_7xgocspSowgK0Gto.json"
    entries = _entries(path)
    assert len(entries) == 29
    first = entries[0]
    assert first.event_id == "293ba626-3be5-4a26-ab1b-0f4c54f49959"
    assert first.account_id == "123837392027"  # from recipientAccountId, not the file name's 218007301253
    assert first.event_time == datetime(2023, 7, 10, 11, 42, 36, tzinfo=UTC)
    assert (first.event_source, first.event_name, first.region, first.read_only) == (
        "s3.amazonaws.com",
        "GetStorageLensConfiguration",
        "us-east-1",
        True,
    )


def test_exact_values_from_plaso_lookup_events_keep_the_leading_zero_account() -> None:
    first = _entries(CORPUS / "plaso" / "aws_cloudtrail.jsonl")[0]
    assert first.event_id == "0828c0d2-3589-4390-b954-c78b4a7df44b"
    assert first.account_id == "012345678901"
    # eventTime from the record inside CloudTrailEvent; the wrapper's EventTime "2022-02-08 09:23:37+11:00" is the
    # same instant in local time.
    assert first.event_time == datetime(2022, 2, 7, 22, 23, 37, tzinfo=UTC)
    assert first.record["readOnly"] is True


def test_exact_values_from_the_firehose_concatenated_gzip() -> None:
    entries = _entries(CORPUS / "stackstate_aws-topology" / "cloudtrail" / "real_gz" / "get_object_xxx.gz")
    assert [(e.event_name, e.account_id, e.event_time) for e in entries] == [
        ("UpdateFunctionConfiguration20150331v2", "120431062118", datetime(2021, 6, 11, 8, 1, 31, tzinfo=UTC)),
        ("PublishVersion20150331", "120431062118", datetime(2021, 6, 11, 8, 2, 44, tzinfo=UTC)),
    ]


def test_exact_values_panther_nanosecond_time_and_awsdocs_insight() -> None:
    panther = CORPUS / "panther-analysis_rule-tests" / "panther_cloudtrail_rule_test_logs.json"
    results = {
        item.record.get("eventID"): to_log_entry(item, tenant="t", ingested_at=INGESTED, source="p")
        for item in read_path(panther)
        if isinstance(item, RawRecord)
    }
    bedrock = results["28773860-a4fd-47c7-a215-6f0e6e6e532f"]
    assert isinstance(bedrock, LogEntry)
    assert bedrock.record["eventTime"] == "2025-01-21 17:49:47.000000000"
    assert bedrock.event_time == datetime(2025, 1, 21, 17, 49, 47, tzinfo=UTC)
    assert bedrock.account_id == "123123123123"
    lookup = _entries(CORPUS / "awsdocs_cloudtrail-user-guide" / "awsdocs_example_lookup_events.json")
    assert [(e.kind, e.event_source, e.event_name, e.event_time) for e in lookup] == [
        (
            LogKind.INSIGHT,
            "autoscaling.amazonaws.com",
            "CompleteLifecycleAction",
            datetime(2019, 10, 15, 21, 13, tzinfo=UTC),
        ),
        (
            LogKind.INSIGHT,
            "autoscaling.amazonaws.com",
            "CompleteLifecycleAction",
            datetime(2019, 10, 15, 21, 14, tzinfo=UTC),
        ),
    ]
