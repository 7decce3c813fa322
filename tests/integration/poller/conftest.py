"""moto in server mode over HTTP (S3 only, never AWS) for the poller and ingestion-service tests, and helpers to
lay out a trail bucket the way CloudTrail does."""

from __future__ import annotations

import gzip
import socket
import uuid
import zlib
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime
from typing import Any

import boto3
import orjson
import pytest
from moto.server import ThreadedMotoServer

from tests.integration import ctgen

A1, A2 = ctgen.ACCOUNTS  # 111122223333, 444455556666
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws_env(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The process's own credentials and endpoint point at moto (for code that builds its own sessions)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("DD0C_AWS_ENDPOINT_URL", moto_url)
    return moto_url


def session(_: object = None) -> boto3.Session:
    return boto3.Session(**CREDENTIALS)


def s3(moto_url: str) -> Any:
    return session().client("s3", endpoint_url=moto_url)


@pytest.fixture
def bucket(moto_url: str) -> str:
    """A new, empty bucket (random names instead of cleanup)."""
    name = f"trail-{uuid.uuid4().hex[:12]}"
    s3(moto_url).create_bucket(Bucket=name)
    return name


def key(account: str, day: date, n: int, *, region: str = "us-east-1", org: str | None = None,
        prefix: str = "", hour: int = 0) -> str:
    """A CloudTrail object key: [prefix/]AWSLogs/[org/]<account>/CloudTrail/<region>/YYYY/MM/DD/<name>."""
    head = f"{prefix}/" if prefix else ""
    org_part = f"{org}/" if org else ""
    name = f"{account}_CloudTrail_{region}_{day:%Y%m%d}T{hour:02d}{n:02d}Z_{n:016x}.json.gz"
    return f"{head}AWSLogs/{org_part}{account}/CloudTrail/{region}/{day:%Y/%m/%d}/{name}"


def delivery(records: Sequence[dict[str, Any]]) -> bytes:
    return gzip.compress(orjson.dumps({"Records": list(records)}), mtime=0)


def truncated(records: Sequence[dict[str, Any]], cut_before_event: str) -> bytes:
    """A gzip upload cut off partway: the stream is flushed up to the middle of the record with `cut_before_event`
    and then simply ends (no gzip trailer), as an interrupted copy leaves it."""
    raw = orjson.dumps({"Records": list(records)})
    pos = raw.index(b'"eventID":"' + cut_before_event.encode())
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
    return compressor.compress(raw[:pos]) + compressor.flush(zlib.Z_SYNC_FLUSH)


def records(first: int, account: str, day: date, *, writes: int = 2, reads: int = 1,
            region: str = "us-east-1") -> list[dict[str, Any]]:
    """`writes` RunInstances then `reads` DescribeInstances, event ids first, first+1, ..."""
    at = datetime(day.year, day.month, day.day, 1, tzinfo=UTC)
    out = [ctgen.run_instances(first + i, at=at, account=account, region=region) for i in range(writes)]
    out += [ctgen.describe_instances(first + writes + i, at=at, account=account) for i in range(reads)]
    return out


def put(moto_url: str, bucket: str, key_: str, body: bytes) -> None:
    s3(moto_url).put_object(Bucket=bucket, Key=key_, Body=body)
