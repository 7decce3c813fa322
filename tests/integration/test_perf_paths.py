"""Ingest's fast paths (whole-file parse, read-only counting, files grouped per transaction, appends in the
background) and the runner's read-ahead change nothing: the same inputs give the same log rows (seq included),
read-only counts, dead letters (same order), file reports, messages and projections as the slow paths."""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ops.demo.generate import Params, delivery_files, ensure_history
from ops.ingest import IngestReport, ingest
from projections.db import connect
from streams.prices.table import load_default_prices
from streams.runner.postgres import PostgresRunner
from tests.conftest import CASES, CORPUS, _create_database, _drop_database

pytestmark = pytest.mark.integration

JUNE_1 = datetime(2024, 6, 1, tzinfo=UTC)

INGEST_TABLES = {
    "log": "SELECT * FROM log ORDER BY seq",
    "log_read_only_counts": "SELECT * FROM log_read_only_counts ORDER BY tenant_id, account_id, day",
    "dead_letters": "SELECT id, tenant_id, stage, source, locator, reason, raw FROM dead_letters ORDER BY id",
    "ingested_files": "SELECT tenant_id, sha256, source, report FROM ingested_files ORDER BY tenant_id, sha256",
}
FOLD_TABLES = {
    "cost_events": "SELECT * FROM cost_events ORDER BY id",
    "baselines": "SELECT tenant_id, account_id, resource_type, mean_hourly_cost, stddev, event_count,"
    " observed_actors, state, seq FROM baselines ORDER BY 1, 2, 3",
    "anomalies": "SELECT * FROM anomalies ORDER BY feed_id",
    "resources": "SELECT * FROM resources ORDER BY 1, 2, 3",
    "fold_metrics": "SELECT * FROM fold_metrics ORDER BY 1, 2, 3",
    "checkpoints": "SELECT runner, position, applied FROM checkpoints",
    "dead_letters": "SELECT id, stage, source, locator, reason, raw FROM dead_letters ORDER BY id",
}


@pytest.fixture
async def second_database() -> AsyncIterator[str]:
    url = await _create_database()
    try:
        yield url
    finally:
        await _drop_database(url)


async def tables(url: str, queries: dict[str, str]) -> dict[str, list[tuple[Any, ...]]]:
    conn = await connect(url)
    try:
        return {name: [tuple(r) for r in await conn.fetch(sql)] for name, sql in queries.items()}
    finally:
        await conn.close()


async def run_ingest(url: str, paths: list[Path], **kwargs: Any) -> tuple[IngestReport, str]:
    conn = await connect(url)
    err = io.StringIO()
    kwargs.setdefault("keep_read_only", False)
    try:
        report = await ingest(conn, paths, now=lambda: JUNE_1, err=err, **kwargs)
    finally:
        await conn.close()
    return report, err.getvalue()


def tricky_bucket(root: Path) -> list[Path]:
    """A small generated history plus every awkward thing a bucket copy holds, in one directory tree."""
    ensure_history(root / "gen", Params(days=7, accounts=2, records=4000, seed=11))
    extra = root / "extra"
    extra.mkdir()
    first = delivery_files(root / "gen")[3]
    # a re-delivery (stamped after everything, so it is read last): already ingested
    (extra / "a_same_bytes_again_20991231T2359Z_x.json.gz").write_bytes(first.read_bytes())
    records = json.loads(gzip.decompress(first.read_bytes()))["Records"]
    (extra / "b_same_events_other_bytes.json").write_text(json.dumps({"Records": records[::-1]}))  # duplicates
    read = {
        "eventVersion": "1.09", "eventTime": "2024-05-20T10:00:00Z", "eventSource": "ec2.amazonaws.com",
        "eventName": "DescribeInstances", "awsRegion": "us-east-1", "readOnly": True, "eventType": "AwsApiCall",
        "userIdentity": {"type": "IAMUser", "accountId": "111122223333", "userName": "alice"},
        "recipientAccountId": "111122223333",
    }
    write = {**read, "eventName": "CreateTags", "readOnly": False}
    odd = [
        {**read, "eventID": "odd-1", "readOnly": "true"},  # a read, counted by the full path
        {**read, "eventID": "odd-2", "recipientAccountId": None},  # a read, account from userIdentity
        {**write, "eventID": "odd-3", "x": 123456789012345678901234},  # an exact int the log cannot store
        {**write, "eventID": "odd-4", "userAgent": "a\u0000b"},  # Postgres cannot hold it: dead letter
        {**read, "eventID": ""},  # rejected by to_log_entry
        {**write, "eventID": "odd-6", "awsRegion": None},  # rejected by to_log_entry
    ]
    (extra / "c_odd_records.json").write_text(json.dumps({"Records": odd}))
    (extra / "d_broken.json").write_text('{"Records": [{"eventVersion": "1.09", "eventID": "x", "eventTime": ')
    (extra / "e_gone.json").symlink_to(extra / "deleted-meanwhile.json")  # unreadable
    (extra / "f_after_broken.json").write_text(json.dumps({"Records": [{**write, "eventID": "odd-7"}]}))
    return [root / "gen" / "AWSLogs", extra, CASES / "R08.json", CASES / "R06.json"]


@pytest.mark.parametrize(
    "variant",
    ["default", "tiny batches and one big group", "large files streamed on their own", "read-only records kept"],
)
async def test_fast_ingest_equals_the_slow_path_on_the_corpus_and_a_tricky_bucket(
    database_url: str, second_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variant: str
) -> None:
    paths = [CORPUS, CASES, *tricky_bucket(tmp_path)]
    keep = {"keep_read_only": variant == "read-only records kept"}
    with monkeypatch.context() as slow:
        slow.setattr("schemas.cloudtrail.whole.plain_records", lambda data, limits: None)
        slow.setattr("schemas.cloudtrail.read_only_day", lambda record, ingested_at: None)
        slow.setattr("ops.ingest.GROUP_FILES", 1)
        slow_report, slow_said = await run_ingest(second_database, paths, **keep)
    kwargs: dict[str, Any] = dict(keep)
    if variant == "tiny batches and one big group":
        kwargs["batch_size"] = 3
        monkeypatch.setattr("ops.ingest.GROUP_BYTES", 1 << 40)
        monkeypatch.setattr("ops.ingest.GROUP_FILES", 1 << 20)
    elif variant == "large files streamed on their own":
        monkeypatch.setattr("ops.ingest.WHOLE_FILE_BYTES", 3000)
    fast_report, fast_said = await run_ingest(database_url, paths, **kwargs)

    assert fast_report == slow_report
    assert fast_said == slow_said
    fast, slow_rows = await tables(database_url, INGEST_TABLES), await tables(second_database, INGEST_TABLES)
    for name in INGEST_TABLES:
        assert fast[name] == slow_rows[name], name
    total = fast_report.total()
    # Hand-checkable anchors: the re-delivered file was not read again; of the six odd records two reads are
    # counted (by the full path) and four are dead letters (two bad fields, one NUL, one 80-bit integer).
    by_name = {Path(f.file).name: f for f in fast_report.files}
    assert by_name["a_same_bytes_again_20991231T2359Z_x.json.gz"].status == "already ingested"
    assert by_name["e_gone.json"].status == "unreadable"
    odd = by_name["c_odd_records.json"]
    if keep["keep_read_only"]:
        assert (odd.read, odd.logged, odd.read_only_counted, odd.rejected) == (6, 2, 0, 4)
    else:
        assert (odd.read, odd.logged, odd.read_only_counted, odd.rejected) == (6, 0, 2, 4)
    assert total.read > 4000 and total.logged + total.duplicate + total.read_only_counted + total.rejected > 4000


async def test_read_ahead_folds_exactly_what_reading_batch_by_batch_folds(
    database_url: str, second_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ensure_history(tmp_path, Params(days=7, accounts=2, records=4000, seed=5))
    for url in (database_url, second_database):
        await run_ingest(url, delivery_files(tmp_path))
    prices = load_default_prices()
    await PostgresRunner(database_url, prices, batch=7, retry_delay=0.01).run(drain=True)
    monkeypatch.setattr(PostgresRunner, "_read_ahead", _no_read_ahead)
    await PostgresRunner(second_database, prices, batch=7, retry_delay=0.01).run(drain=True)

    with_ahead, without = await tables(database_url, FOLD_TABLES), await tables(second_database, FOLD_TABLES)
    for name in FOLD_TABLES:
        assert with_ahead[name] == without[name], name
    log_rows = (await tables(database_url, {"n": "SELECT count(*) FROM log"}))["n"][0][0]
    assert with_ahead["checkpoints"][0][1] > 0 and log_rows > 300
    assert len(with_ahead["cost_events"]) > 10


async def _no_read_ahead(self: PostgresRunner, after: int) -> None:
    return None
