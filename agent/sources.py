"""Where the agent finds CloudTrail: a directory, an S3 bucket, SQS notifications of new objects.

Each source's `scan()` yields the objects it holds now that the spool has not read to the end, in CloudTrail's
delivery order; the reader thread (agent/batcher.py) calls it again every poll interval. An object up to
`whole_file_bytes` (almost every CloudTrail delivery file) is sent as it is, and the server reads it exactly as
`dd0c-cost ingest` reads a file; a bigger one is streamed through the project's CloudTrail reader here
(schemas/cloudtrail: gzip by magic bytes, digests skipped by key and by content, bad input as Rejected values)
and split into batches. Either way the agent never parses differently from `dd0c-cost ingest`.

* Directory: the same walk as `dd0c-cost ingest` (ops/ingest.find_log_files: log-file names, CloudTrail-Digest
  folders and hidden entries skipped). Put files in place atomically (write elsewhere or under a hidden name,
  then rename): a file is read once, when first seen complete by name.
* S3: list_objects_v2 under the prefix; an object is read as a stream (bounded memory whatever its size).
* SQS: S3 event notifications (direct, through SNS, or from EventBridge); a message is deleted once every
  object it names is in the spool (durable: the spool resends it), so a crash before that redelivers it and
  the already-read objects are skipped by their position.
"""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from schemas import cloudtrail

if TYPE_CHECKING:
    from agent.settings import AgentSettings
    from agent.spool import Spool

log = logging.getLogger("dd0c.agent")

DIGEST_KEY_PART = "/CloudTrail-Digest/"


Content = bytes | Iterator[cloudtrail.Item]


@dataclass
class SourceObject:
    """One file or object. `open(limit)` reads it from the start: its bytes when it holds at most `limit` bytes
    (sent whole, read by the server), else the reader's items, streamed (split into batches by the agent)."""

    key: str  # the spool's key and the `source` the log and dead letters name
    open: Callable[[int], Content]
    done: Callable[[], None] | None = None  # called once the object is read to the end and spooled
    # When it was delivered (Unix seconds; 0 unknown): sent with its parts for the server's lag metric. Known at
    # listing for files and bucket listings; for an SQS-notified object `open` fills it from the object.
    delivered_at: float = 0.0


class DirSource:
    def __init__(self, root: Path, spool: Spool, *, must_exist: bool = False) -> None:
        self.root = root
        self._spool = spool
        # A following agent waits for a directory to appear; a one-shot run (--once) would otherwise read nothing,
        # report success, and hide a mistyped path.
        self._must_exist = must_exist

    def scan(self) -> Iterator[SourceObject]:
        from ops.ingest import delivery_order, find_log_files  # the same walk and order as `dd0c-cost ingest`

        if not self.root.is_dir():
            what = "is not a directory" if self.root.exists() else "does not exist"
            if self._must_exist:
                raise FileNotFoundError(f"source directory {self.root} {what}")
            log.warning("source directory %s %s (yet); looking again in a while", self.root, what)
            return
        for path in delivery_order(find_log_files([self.root])):
            key = str(path)
            if not self._spool.position(key).complete:
                yield SourceObject(key, lambda limit, path=path, key=key: _open_file(path, key, limit),
                                   delivered_at=_mtime(path))


def _client(service: str, settings: AgentSettings) -> Any:
    import boto3  # only an agent reading S3 or SQS loads boto3 (its share of the footprint: see README)

    return boto3.session.Session().client(
        service, region_name=settings.aws_region, endpoint_url=settings.aws_endpoint_url
    )


# The reader's default chunk is 1 MiB of compressed input, which a CloudTrail file inflates to ~30 MB of text at
# once; 256 KiB keeps that near 8 MB. The chunk size changes no result of the reader, only its memory.
STREAM_LIMITS = cloudtrail.Limits(chunk_bytes=256 * 1024)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:  # gone since the walk: opening it names the error
        return 0.0


def _open_file(path: Path, source: str, limit: int) -> Content:
    with path.open("rb") as handle:
        if os.fstat(handle.fileno()).st_size <= limit:
            return handle.read()
    return _streamed_file(path, source)


def _streamed_file(path: Path, source: str) -> Iterator[cloudtrail.Item]:
    # read_stream, not read_path: read_path parses a file of up to 8 MB whole, which inflated can be hundreds of MB
    with path.open("rb") as handle:
        yield from cloudtrail.read_stream(handle, source, limits=STREAM_LIMITS)


def _open_object(s3: Any, bucket: str, key: str, source: str, limit: int,
                 obj: SourceObject | None = None) -> Content:
    if DIGEST_KEY_PART in "/" + key:  # a digest by its key: skipped by the reader without being fetched
        return cloudtrail.read_stream(io.BytesIO(b""), source)
    got = s3.get_object(Bucket=bucket, Key=key)
    if obj is not None and not obj.delivered_at and got.get("LastModified") is not None:
        obj.delivered_at = got["LastModified"].timestamp()
    body = got["Body"]
    if int(got.get("ContentLength", limit + 1)) <= limit:
        try:
            return bytes(body.read())
        finally:
            body.close()
    return _streamed(body, source)


def _streamed(body: Any, source: str) -> Iterator[cloudtrail.Item]:
    try:
        yield from cloudtrail.read_stream(body, source, limits=STREAM_LIMITS)
    finally:
        body.close()


class S3Source:
    def __init__(self, settings: AgentSettings, spool: Spool) -> None:
        assert settings.s3_bucket is not None
        self.bucket = settings.s3_bucket
        self.prefix = settings.s3_prefix
        self._spool = spool
        self._s3 = _client("s3", settings)

    def scan(self) -> Iterator[SourceObject]:
        from ops.ingest import delivery_order

        keys: list[str] = []
        delivered: dict[str, float] = {}
        for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix):
            for obj in page.get("Contents", ()):
                key = obj["Key"]
                if not key.endswith("/") and not self._spool.position(self._name(key)).complete:
                    keys.append(key)
                    if obj.get("LastModified") is not None:
                        delivered[key] = obj["LastModified"].timestamp()
        # by the delivery stamp in the names, as the directory source and `dd0c-cost ingest` order files
        for path in delivery_order([PurePosixPath(k) for k in keys]):  # type: ignore[misc]
            key = str(path)
            yield SourceObject(self._name(key), lambda limit, key=key: _open_object(self._s3, self.bucket, key,
                                                                                     self._name(key), limit),
                               delivered_at=delivered.get(key, 0.0))

    def _name(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"


class SQSSource:
    def __init__(self, settings: AgentSettings, spool: Spool) -> None:
        assert settings.sqs_queue_url is not None
        self.queue_url = settings.sqs_queue_url
        self.wait = settings.sqs_wait_seconds
        self._spool = spool
        self._s3 = _client("s3", settings)
        self._sqs = _client("sqs", settings)

    def scan(self) -> Iterator[SourceObject]:
        """Messages until the queue has none; each object of a message, then the message is deleted."""
        while True:
            got = self._sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10,
                                            WaitTimeSeconds=self.wait)
            messages = got.get("Messages", [])
            if not messages:
                return
            for message in messages:
                objects = notified_objects(message.get("Body", ""))
                if objects is None:
                    log.warning("SQS message %s is not an S3 object notification; deleted: %.200s",
                                message.get("MessageId"), message.get("Body", ""))
                handle = message["ReceiptHandle"]
                waiting = [(b, k) for b, k in objects or () if not self._spool.position(f"s3://{b}/{k}").complete]
                if not waiting:
                    self._delete(handle)
                    continue
                left = {f"s3://{b}/{k}" for b, k in waiting}
                for bucket, key in waiting:
                    name = f"s3://{bucket}/{key}"

                    def done(name: str = name, left: set[str] = left, handle: str = handle) -> None:
                        left.discard(name)
                        if not left:
                            self._delete(handle)

                    notified = SourceObject(name, lambda limit: b"", done)
                    notified.open = (lambda limit, b=bucket, k=key, n=name, o=notified:
                                     _open_object(self._s3, b, k, n, limit, o))
                    yield notified

    def _delete(self, handle: str) -> None:
        self._sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=handle)


def notified_objects(body: str) -> list[tuple[str, str]] | None:
    """(bucket, key) of every object an S3 notification names - sent to SQS directly, through SNS, or as an
    EventBridge "Object Created" event; [] for S3's test event; None when the body is none of these."""
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    if isinstance(doc, dict) and isinstance(doc.get("Message"), str) and doc.get("Type") == "Notification":
        return notified_objects(doc["Message"])  # SNS wraps the notification as a string
    if not isinstance(doc, dict):
        return None
    if doc.get("Event") == "s3:TestEvent":
        return []
    detail = doc.get("detail")
    if doc.get("source") == "aws.s3" and isinstance(detail, dict):
        try:
            return [(str(detail["bucket"]["name"]), str(detail["object"]["key"]))]
        except (KeyError, TypeError):
            return None
    records = doc.get("Records")
    if not isinstance(records, list):
        return None
    found = []
    for record in records:
        try:
            if str(record.get("eventName", "")).startswith("ObjectCreated"):
                found.append((str(record["s3"]["bucket"]["name"]), unquote_plus(str(record["s3"]["object"]["key"]))))
        except (KeyError, TypeError, AttributeError):
            return None
    return found


def open_sources(settings: AgentSettings, spool: Spool) -> list[DirSource | S3Source | SQSSource]:
    sources: list[DirSource | S3Source | SQSSource] = []
    if settings.dir is not None:
        sources.append(DirSource(settings.dir, spool, must_exist=bool(settings.once)))
    if settings.s3_bucket:
        sources.append(S3Source(settings, spool))
    if settings.sqs_queue_url:
        sources.append(SQSSource(settings, spool))
    return sources
