"""One S3 object -> the log: read with the shared CloudTrail reader, entries appended, the rest collected.

The reader is `schemas.cloudtrail` (gzip or not decided by the first bytes; digests, empty and non-CloudTrail
documents skipped; bad records and truncated gzip rejected as values). An object up to WHOLE_OBJECT_BYTES is
fetched whole and parsed by the reader's whole-file fast path; a larger one is streamed from the response body,
chunk by chunk, so memory stays bounded by the reader's limits plus one sort chunk of entries (STREAM_SORT_CHUNK),
whatever its size.

Per record, the same decisions as `dd0c-cost ingest` (ops/ingest.py `_Writer.read`): a read-only record is
counted under (tenant, account, UTC day) unless DD0C_KEEP_READ_ONLY, everything else becomes a LogEntry; entries
are sorted by (eventTime, eventID) per chunk - records inside one delivery file are not in time order (case R06) -
and appended in batches through the LogWriter. The ingester's own writer is bound to one Postgres transaction and
its file-hash claim; this one appends through either log backend and leaves counts and dead letters to the caller,
who writes them with the object's position (streams/poller/positions.py).

Two more checks every source makes: a record for an account its tenant has not registered is rejected
(streams/accounts/admission.py, dead-letter stage "admit"), and each batch is written to the raw archive
(streams/archive) before it is appended - read-only records included, so the archive can rebuild the counts too.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ops.ingest import APPEND_BATCH, SORT_CHUNK, FileReport
from schemas import cloudtrail
from schemas.events import LogEntry, Rejected
from streams.accounts.admission import STAGE as ADMIT_STAGE
from streams.accounts.admission import Admission
from streams.archive import RawArchive, archive_entries_async
from streams.log.postgres import ReadOnlyKey
from streams.log.writer import LogWriter
from streams.poller.source import S3Client

MIB = 1024 * 1024
WHOLE_OBJECT_BYTES = 8 * MIB  # up to this size an object is fetched whole (the reader's fast path applies)
STREAM_SORT_CHUNK = 1_000  # entries sorted together in a streamed object: ~15 MB of parsed records at most
PULL_ITEMS = 2_000  # reader items taken per hop to the worker thread (the reader blocks on the network)
HELD_REJECTS = 1_000  # dead letters held until the position moves; beyond that they are handed over early


READ_STAGE = "read"
Dead = tuple[str, Rejected]  # (dead-letter stage, what was refused)


@dataclass
class ObjectResult:
    """What reading one object gave: its report, plus what the caller writes with the position."""

    report: FileReport
    counted: Counter[ReadOnlyKey] = field(default_factory=Counter)
    rejected: list[Dead] = field(default_factory=list)  # read, admission and unstorable refusals, in input order


def s3_source(bucket: str, key: str) -> str:
    """How an object is named in reports, log entries and dead letters."""
    return f"s3://{bucket}/{key}"


@dataclass(frozen=True, slots=True)
class Sink:
    """Where one object's entries go, and the rules on the way."""

    tenant: str
    writer: LogWriter
    admission: Admission
    archive: RawArchive | None = None
    keep_read_only: bool = False
    early_rejects: Callable[[list[Dead]], Any] | None = None  # awaitable; see HELD_REJECTS


async def read_object(
    client: S3Client, bucket: str, key: str, size: int, *, sink: Sink, ingested_at: datetime
) -> ObjectResult:
    """Read `key` and append its entries; counts and refusals are returned, not written.

    Raises botocore / OSError on an S3 or network failure: the object then stays unread (its position does not
    move) and the next poll reads it again; what was already appended is deduplicated then."""
    source = s3_source(bucket, key)
    result = ObjectResult(report=FileReport(file=source))
    # One thread of its own fetches and parses the object: the reader's generator is advanced by that thread
    # only, and the event loop (metrics, the gRPC server) stays free while a streamed object waits on the network.
    reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="s3-object")
    loop = asyncio.get_running_loop()
    try:
        response = await loop.run_in_executor(reader, lambda: client.get_object(Bucket=bucket, Key=key))
    except BaseException:
        reader.shutdown(wait=False)
        raise
    body = response["Body"]
    try:
        if size <= WHOLE_OBJECT_BYTES:
            # In memory anyway: sorted in the chunks `dd0c-cost ingest` uses, so the log gets the same order.
            data = await loop.run_in_executor(reader, body.read)
            items: Iterator[cloudtrail.Item] = iter(cloudtrail.read_bytes(data, source))
            del data  # the reader holds what it needs
            sort_chunk = SORT_CHUNK
        else:
            items = cloudtrail.read_stream(body, source)  # botocore's StreamingBody is a file with read(n)
            sort_chunk = STREAM_SORT_CHUNK
        await _Consumer(result, sink, source, ingested_at, sort_chunk).run(lambda: loop.run_in_executor(
            reader, _take, items, PULL_ITEMS))
    finally:
        body.close()
        reader.shutdown(wait=False)
    return result


class _Consumer:
    def __init__(self, result: ObjectResult, sink: Sink, source: str, ingested_at: datetime, sort_chunk: int) -> None:
        self.result, self.sink, self.source, self.ingested_at = result, sink, source, ingested_at
        self.sort_chunk = sort_chunk
        # The fast path counts a read-only record without building its entry; the archive needs the entry.
        self.read_only_day = None if sink.keep_read_only or sink.archive is not None else cloudtrail.read_only_day
        self.chunk: list[LogEntry] = []

    async def run(self, next_batch: Callable[[], Awaitable[list[cloudtrail.Item]]]) -> None:
        report, counted, tenant, admission = self.result.report, self.result.counted, self.sink.tenant, \
            self.sink.admission
        while batch := await next_batch():
            for item in batch:
                if isinstance(item, cloudtrail.RawRecord):
                    report.read += 1
                    day = self.read_only_day(item.record, self.ingested_at) if self.read_only_day else None
                    if day is not None and admission.admits(day[0]):
                        counted[(tenant, day[0], day[1])] += 1
                        report.read_only_counted += 1
                        continue
                    locator = item.locator
                    item = cloudtrail.to_log_entry(item, tenant=tenant, ingested_at=self.ingested_at,
                                                   source=self.source)
                    if isinstance(item, LogEntry):
                        item = admission.check(item, locator)
                        if isinstance(item, Rejected):
                            report.rejected += 1
                            await self.reject(ADMIT_STAGE, item)
                            continue
                if isinstance(item, LogEntry):
                    self.chunk.append(item)
                    if len(self.chunk) >= self.sort_chunk:
                        await self.flush()
                elif isinstance(item, Rejected):
                    report.rejected += 1
                    await self.reject(READ_STAGE, item)
                else:
                    report.skipped[item.kind] += 1
        await self.flush()

    async def reject(self, stage: str, bad: Rejected) -> None:
        held = self.result.rejected
        held.append((stage, bad))
        if len(held) >= HELD_REJECTS and self.sink.early_rejects is not None:
            self.result.rejected = []
            await self.sink.early_rejects(held)

    async def flush(self) -> None:
        """Sort the chunk, then per append batch: archive it, count its read-only entries, append the rest."""
        chunk, self.chunk = self.chunk, []
        chunk.sort(key=lambda e: (e.event_time, e.event_id))
        sink, report, counted = self.sink, self.result.report, self.result.counted
        for start in range(0, len(chunk), APPEND_BATCH):
            batch = chunk[start : start + APPEND_BATCH]
            if sink.archive is not None:
                await archive_entries_async(sink.archive, sink.tenant, batch, received_at=self.ingested_at)
            if not sink.keep_read_only:
                stored = []
                for entry in batch:
                    if entry.read_only:
                        counted[(entry.tenant, entry.account_id, entry.event_time.astimezone(UTC).date())] += 1
                        report.read_only_counted += 1
                    else:
                        stored.append(entry)
                batch = stored
            if batch:
                appended = await sink.writer.append(batch)
                report.add(appended)  # counts the entries the log could not hold as rejected, too
                for bad in appended.rejected:
                    await self.reject(READ_STAGE, bad)


def _take(items: Iterator[cloudtrail.Item], n: int) -> list[cloudtrail.Item]:
    return list(itertools.islice(items, n))
