"""The agent's AWS sources against moto in server mode (HTTP on loopback, never AWS): a bucket listed for new
objects - one of them big and streamed - and an SQS queue of object-created notifications."""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import asyncpg
import boto3
import orjson
import pytest
from moto.server import ThreadedMotoServer

from tests.conftest import CASES
from tests.integration.agent.support import (
    Pki,
    Proc,
    agent_argv,
    agent_env,
    free_port,
    log_counts,
    records,
    server_env,
    start_server,
)

pytestmark = pytest.mark.integration

CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"}
DAY_PREFIX = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/01/"
BIG_RECORDS = 30_000  # ~20 MB of JSON, ~1 MB gzipped: stands in for a 100 MB object (same streaming code path)


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def _client(service: str, url: str) -> Any:
    return boto3.session.Session(**CREDENTIALS).client(service, endpoint_url=url)


def _aws_env(env: dict[str, str], url: str) -> dict[str, str]:
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", DD0C_AGENT_AWS_REGION="us-east-1",
               DD0C_AGENT_AWS_ENDPOINT_URL=url)
    return env


def _name(n: int) -> str:
    return f"{DAY_PREFIX}111122223333_CloudTrail_us-east-1_20240501T09{n:02d}Z_{n:016x} copy=1.json.gz"


def _body(recs: list[dict[str, Any]]) -> bytes:
    return gzip.compress(orjson.dumps({"Records": recs}), mtime=0)


async def test_s3_bucket_with_a_big_object_streamed(database_url: str, token: str, pki: Pki, tmp_path: Path,
                                                    moto_url: str) -> None:
    s3 = _client("s3", moto_url)
    bucket = f"trail-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    for n in range(1, 4):  # 3 ordinary delivery objects, 10 records each: ids 1..30
        s3.put_object(Bucket=bucket, Key=_name(n), Body=_body(records(1 + (n - 1) * 10, 10)))
    big = _body(records(100_001, BIG_RECORDS, reads_every=2))  # ids 100001..130000, every even one read-only
    s3.put_object(Bucket=bucket, Key=_name(10), Body=big)
    digest_key = ("AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2024/05/01/"
                  "111122223333_CloudTrail-Digest_us-east-1_trail_us-east-1_20240501T1200Z.json.gz")
    s3.put_object(Bucket=bucket, Key=digest_key, Body=(CASES / "R01.json.gz").read_bytes())
    port = free_port()
    server = await start_server(server_env(database_url, port, pki), tmp_path / "server.log")
    env = _aws_env(agent_env(token, port, tmp_path / "spool", pki, s3_bucket=bucket, s3_prefix="AWSLogs/",
                             whole_file_bytes=str(64 * 1024)), moto_url)  # the small ones whole, the big one split
    try:
        first = Proc(agent_argv("--once"), env, tmp_path / "agent1.log")
        assert await first.exited() == 0, first.output[-3000:]
        again = Proc(agent_argv("--once"), env, tmp_path / "agent2.log")
        assert await again.exited() == 0, again.output[-3000:]
    finally:
        server.terminate()
    assert 64 * 1024 < len(big) < 2 * 1024 * 1024  # gzipped; ~20 MB once inflated, read as a stream in 1 MiB chunks
    counts = await log_counts(database_url)
    assert counts["rows"] == 30 + BIG_RECORDS // 2  # 30 small + 15000 RunInstances of the big object
    assert counts["event_ids"] == 15_030
    assert counts["read_only"] == BIG_RECORDS // 2  # 15000 DescribeInstances, counted once
    assert counts["dead_letters"] == 0
    assert f"s3://{bucket}/{digest_key}: skipped (digest)" in first.output
    # the digest (skipped by its key, never fetched) and the big object read here, 500 records a batch
    assert "reader: 3 object(s) sent whole, 2 split (30000 record(s)), in 60 batch(es)" in first.output
    assert "reader: 0 object(s) sent whole, 0 split (0 record(s)), in 0 batch(es)" in again.output  # remembered
    conn = await asyncpg.connect(database_url)
    try:
        sources = await conn.fetchval("SELECT count(DISTINCT source) FROM log")
        big_source = await conn.fetchval("SELECT source FROM log WHERE event_id = $1",
                                         "00000000-0000-4000-8000-000000100001")
    finally:
        await conn.close()
    assert sources == 4
    assert big_source == f"s3://{bucket}/{_name(10)}"


def _s3_notification(bucket: str, key: str) -> str:
    """As S3 sends it: the key URL-encoded (form style)."""
    return json.dumps({"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                                    "s3": {"bucket": {"name": bucket},
                                           "object": {"key": quote_plus(key, safe="/"), "size": 1}}}]})


async def test_sqs_notifications_of_new_objects(database_url: str, token: str, pki: Pki, tmp_path: Path,
                                                moto_url: str) -> None:
    s3, sqs = _client("s3", moto_url), _client("sqs", moto_url)
    bucket = f"trail-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    queue_url = sqs.create_queue(QueueName=f"trail-{uuid.uuid4().hex[:12]}",
                                 Attributes={"VisibilityTimeout": "60"})["QueueUrl"]
    for n in range(1, 5):  # 4 objects, 5 records each: ids 1..20
        s3.put_object(Bucket=bucket, Key=_name(n), Body=_body(records(1 + (n - 1) * 5, 5)))
    bodies = [
        _s3_notification(bucket, _name(1)),  # as S3 sends it (key URL-encoded)
        json.dumps({"Type": "Notification", "Message": _s3_notification(bucket, _name(2))}),  # through SNS
        json.dumps({"source": "aws.s3", "detail-type": "Object Created",  # through EventBridge
                    "detail": {"bucket": {"name": bucket}, "object": {"key": _name(3)}}}),
        _s3_notification(bucket, _name(4)),
        _s3_notification(bucket, _name(4)),  # the same object notified twice: read once
        json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": bucket}),
        "not json at all",
    ]
    for body in bodies:
        sqs.send_message(QueueUrl=queue_url, MessageBody=body)
    port = free_port()
    server = await start_server(server_env(database_url, port, pki), tmp_path / "server.log")
    env = _aws_env(agent_env(token, port, tmp_path / "spool", pki, sqs_queue_url=queue_url, sqs_wait_seconds="0"),
                   moto_url)
    try:
        agent = Proc(agent_argv("--once"), env, tmp_path / "agent.log")
        assert await agent.exited() == 0, agent.output[-3000:]
    finally:
        server.terminate()
    counts = await log_counts(database_url)
    assert (counts["rows"], counts["event_ids"], counts["dead_letters"]) == (20, 20, 0)
    left = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    assert left == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}  # all deleted
    assert "is not an S3 object notification; deleted: not json at all" in agent.output
    # object 4, notified twice, read once
    assert "reader: 4 object(s) sent whole, 0 split (0 record(s)), in 1 batch(es)" in agent.output
