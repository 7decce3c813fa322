"""The raw archive: pushed batches land in CloudTrail's layout, locally or in S3 (moto over HTTP), and
`dd0c-cost ingest` of the archive rebuilds the same log in a fresh database."""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from ops.ingest import ingest
from streams.accounts import create_api_key
from streams.archive import ArchiveError, build_files, file_key
from tests.conftest import _create_database, _drop_database
from tests.integration.accounts.conftest import unique
from tests.integration.ctgen import describe_instances, generated_records, run_instances
from tests.integration.test_api_rows import asgi_client, db

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
PUSH = "/v1/ingest/cloudtrail"
NAME = re.compile(
    r"^acme/AWSLogs/(\d{12})/CloudTrail/([a-z0-9-]+)/(\d{4})/(\d{2})/(\d{2})/"
    r"\1_CloudTrail_\2_\d{8}T\d{4}Z_[0-9a-f]{16}\.json\.gz$"
)


@pytest.fixture
async def fresh_database_url() -> AsyncIterator[str]:
    url = await _create_database()
    try:
        yield url
    finally:
        await _drop_database(url)


def batches() -> list[list[dict[str, Any]]]:
    """40 generated records (two accounts, launches, terminations, failed launches, read-only noise) plus a second
    region, pushed as four batches; the last repeats two launches (duplicates: logged once, archived again)."""
    records = generated_records(40, start=T0)
    west = [run_instances(900 + n, at=T0, region="eu-west-1") for n in range(3)]
    return [records[:15], records[15:30] + west, records[30:], [records[0], west[0]]]


async def log_rows(url: str, tenant: str = "acme") -> list[tuple[Any, ...]]:
    async with db(url) as conn:
        rows = await conn.fetch(
            "SELECT account_id, event_id, event_time, kind, event_source, event_name, region, read_only, record"
            " FROM log WHERE tenant_id = $1 ORDER BY account_id, event_id",
            tenant,
        )
        counts = await conn.fetch(
            "SELECT account_id, day, events FROM log_read_only_counts WHERE tenant_id = $1 ORDER BY 1, 2", tenant
        )
    return [tuple(r) for r in rows] + [("read-only", *tuple(c)) for c in counts]


async def push_all(url: str, **settings: Any) -> list[dict[str, Any]]:
    async with db(url) as conn:
        key = (await create_api_key(conn, "acme")).key
    answers = []
    async with asgi_client(url, **settings) as (client, _app):
        for batch in batches():
            answer = await client.post(PUSH, headers={"X-Api-Key": key}, json={"Records": batch})
            assert answer.status_code == 200, answer.text
            answers.append(answer.json())
    return answers


def archive_files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.json.gz"))


async def test_push_then_ingest_of_the_local_archive_gives_the_same_log(
    database_url: str, fresh_database_url: str, tmp_path: Path
) -> None:
    answers = await push_all(database_url, archive_url=str(tmp_path))
    assert [(a["logged"], a["duplicate"]) for a in answers][3] == (0, 2)
    original = await log_rows(database_url)
    stored = [r for r in original if r[0] != "read-only"]
    assert len(stored) == sum(a["logged"] for a in answers) and len(stored) > 20

    files = archive_files(tmp_path)
    keys = [p.relative_to(tmp_path).as_posix() for p in files]
    assert all(NAME.match(k) for k in keys), keys
    assert sum(len(a["archived"]) for a in answers) == len(files)
    regions = {NAME.match(k).group(2) for k in keys}  # type: ignore[union-attr]
    assert regions == {"us-east-1", "eu-west-1"}
    first = json.loads(gzip.decompress(files[0].read_bytes()))
    assert list(first) == ["Records"] and first["Records"][0]["eventVersion"] == "1.09"

    async with db(fresh_database_url) as conn:
        report = await ingest(conn, [tmp_path / "acme"], tenant="acme")
    assert report.ok and report.total().rejected == 0
    assert await log_rows(fresh_database_url) == original


async def test_the_archive_in_an_s3_compatible_store_rebuilds_the_same_log(
    database_url: str, fresh_database_url: str, tmp_path: Path, moto_url: str, aws_env: None
) -> None:
    bucket = unique("dd0c-archive")
    s3 = boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1")
    s3.create_bucket(Bucket=bucket)
    answers = await push_all(database_url, archive_url=f"s3://{bucket}/raw", aws_endpoint_url=moto_url)
    listed = s3.list_objects_v2(Bucket=bucket)["Contents"]
    keys = sorted(o["Key"] for o in listed)
    assert len(keys) == sum(len(a["archived"]) for a in answers)
    assert all(k.startswith("raw/acme/AWSLogs/") and NAME.match(k.removeprefix("raw/")) for k in keys), keys

    local = tmp_path / "copy"
    for key in keys:  # what a restore would do: copy the bucket down (or point a poller at it)
        target = local / key
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    async with db(fresh_database_url) as conn:
        report = await ingest(conn, [local / "raw" / "acme"], tenant="acme")
    assert report.ok
    assert await log_rows(fresh_database_url) == await log_rows(database_url)


async def test_an_unwritable_archive_gets_503_and_nothing_is_logged(database_url: str, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the archive folder should be")
    async with db(database_url) as conn:
        key = (await create_api_key(conn, "acme")).key
    async with asgi_client(database_url, archive_url=str(blocker)) as (client, _app):
        answer = await client.post(PUSH, headers={"X-Api-Key": key}, json=run_instances(1, at=T0))
    assert answer.status_code == 503
    assert answer.json()["detail"].startswith(f"raw archive unavailable: cannot write {blocker}/acme/AWSLogs/")
    async with db(database_url) as conn:
        assert await conn.fetchval("SELECT count(*) FROM log") == 0


def test_files_are_split_per_account_and_region_and_named_like_cloudtrail() -> None:
    from tests.integration.ctgen import entries

    received = datetime(2024, 5, 2, 13, 7, 9, 123456, tzinfo=UTC)
    records = [run_instances(1, at=T0), describe_instances(2, at=T0), run_instances(3, at=T0, region="eu-west-1"),
               run_instances(4, at=T0, account="444455556666")]
    files = build_files("acme", entries(records, tenant="acme"), received)
    assert [(f.account_id, f.region, f.records) for f in files] == [
        ("111122223333", "us-east-1", 2), ("111122223333", "eu-west-1", 1), ("444455556666", "us-east-1", 1),
    ]
    assert files[0].key.startswith(
        "acme/AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/02/111122223333_CloudTrail_us-east-1_20240502T1307Z_"
        "09123456"
    )
    assert json.loads(gzip.decompress(files[0].data)) == {"Records": records[:2]}
    with pytest.raises(ArchiveError, match=re.escape("tenant '../x' cannot be part of an archive path")):
        file_key("../x", "111122223333", "us-east-1", received, "0" * 16)
