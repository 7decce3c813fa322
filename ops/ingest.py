"""Ingest CloudTrail files into the log: walk, hash, read, sort, append, report.

Per file: claim its content hash in `ingested_files` (a re-delivered file is reported as `already ingested` and
not read again, so its read-only events are not counted twice), read it with the CloudTrail reader, sort its
entries by (event_time, event_id), append them, dead-letter what was rejected, store its report - all in the
transaction that holds the claim. Records inside one delivery file are not in time order (case R06); sorting per
file makes baselines see each file in event-time order and keeps replay independent of the worker's batch size.

Speed (see ops/bench): a bucket holds thousands of small files, and a transaction, a commit and ten round trips
per file cost more than reading it. So files up to WHOLE_FILE_BYTES are read into memory and committed in groups
(about GROUP_BYTES of files per transaction): one claim statement, one INSERT per APPEND_BATCH entries and one
report update per group. Each file is still all-or-nothing (its group is), gets the same report, the same log
rows in the same order and the same dead letters as when it had a transaction of its own; a crash loses the
uncommitted group, which the next run ingests again. Larger files are streamed, one transaction each. Read-only
records (~90 %) are counted without building a LogEntry (`read_only_day`), and ordinary delivery files are
parsed whole (`plain_records`); both fall back to the full path for anything unusual.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import os
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import asyncpg
import orjson
from tqdm import tqdm

from ops.gc_pause import gc_paused
from ops.settings import load_settings
from schemas.events import Dd0cError, LogEntry, Rejected
from streams.log.postgres import COUNT_READ_ONLY, AppendResult, ReadOnlyKey, append_runs, dead_letters

if TYPE_CHECKING:
    from schemas.cloudtrail import Item, Skipped
    from streams.accounts.admission import Admission
    from streams.log.kafka import KafkaLog

log = logging.getLogger("dd0c.ingest")

APPEND_BATCH = 2000  # entries per INSERT: big enough to amortise the round trip, small enough to stay cheap
SORT_CHUNK = 100_000  # a file with more records than this is sorted (and appended) in chunks of this size
DIGEST_DIR = "CloudTrail-Digest"  # S3 layout: integrity digests, not events
LOG_SUFFIXES = (".json", ".json.gz", ".gz", ".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz", ".log", ".log.gz")
READ_STAGE = "read"
MIB = 1024 * 1024
WHOLE_FILE_BYTES = 8 * MIB  # a file up to this size on disk is read into memory and shares its group's transaction
GROUP_BYTES = 8 * MIB  # a group is closed once its files hold this many bytes on disk (~80k gzipped records) ...
GROUP_FILES = 2000  # ... or this many files. Each group end costs ~50 ms of waiting (last append, reports, commit);
# a group holds the append lock for up to about a second, which other appenders (push) then wait
PUMP_RECORDS = 100  # records read between two turns of the event loop while an append is in flight
NOTES_PENDING = 256  # rejections held back (to keep dead letters in input order) before the queue is written


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class FileReport:
    file: str
    sha256: str = ""
    status: str = "ingested"  # ingested | already ingested | unreadable
    read: int = 0  # records the reader found
    logged: int = 0
    duplicate: int = 0
    read_only_counted: int = 0
    skipped: Counter[str] = field(default_factory=Counter)  # by kind (digest, not_cloudtrail, ...)
    rejected: int = 0
    note: str = ""
    earlier_rejected: int = 0  # an already-ingested file's rejections from its first ingest (still dead letters)

    def add(self, result: AppendResult) -> None:
        self.logged += result.logged
        self.duplicate += result.duplicate
        self.read_only_counted += result.read_only_counted
        self.rejected += len(result.rejected)

    def as_json(self) -> dict[str, Any]:
        # = to_jsonable of the counting fields (ints, a str, the Counter as a dict), built directly: this runs for
        # every file of a bucket. tests/unit/test_perf_paths.py checks it against to_jsonable.
        doc: dict[str, Any] = {name: getattr(self, name) for name in _REPORT_FIELDS}
        doc["skipped"] = {str(kind): n for kind, n in self.skipped.items()}
        return doc


_REPORT_FIELDS = tuple(
    f.name for f in fields(FileReport) if f.name not in ("file", "sha256", "status", "earlier_rejected")
)


@dataclass
class IngestReport:
    files: list[FileReport] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)  # files in walked directories that are not log files

    @property
    def rejected(self) -> int:
        return sum(f.rejected for f in self.files)

    @property
    def unreadable(self) -> int:
        return sum(1 for f in self.files if f.status == "unreadable")

    @property
    def earlier_rejected(self) -> int:
        return sum(f.earlier_rejected for f in self.files)

    @property
    def ok(self) -> bool:
        """Nothing rejected - now or when an already-ingested file was first read - and something was found.

        So a scheduled re-run over the same folder keeps saying that it holds input that could not be read.
        """
        return bool(self.files) and self.rejected == 0 and self.unreadable == 0 and self.earlier_rejected == 0

    def total(self) -> FileReport:
        t = FileReport(file="total")
        for f in self.files:
            t.read += f.read
            t.logged += f.logged
            t.duplicate += f.duplicate
            t.read_only_counted += f.read_only_counted
            t.skipped.update(f.skipped)
            t.rejected += f.rejected
        return t


def find_log_files(paths: Iterable[Path], ignored: list[str] | None = None) -> Iterator[Path]:
    """Files named on the command line as they are; directories walked recursively in name order.

    Inside directories: S3 layout `AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/...` (and organization trails,
    `AWSLogs/<org-id>/<account>/...`) needs nothing special; `CloudTrail-Digest` folders and hidden entries are
    skipped, and files that are not log files by name (README, LICENSE) are listed in `ignored`.
    """
    for path in paths:
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if d != DIGEST_DIR and not d.startswith("."))
                for name in sorted(files):
                    if name.startswith("."):
                        continue
                    if name.lower().endswith(LOG_SUFFIXES):
                        yield Path(root) / name
                    elif ignored is not None:
                        ignored.append(str(Path(root) / name))
        elif path.exists():
            yield path
        else:
            raise Dd0cError(f"no such file or directory: {path}")


_DELIVERY_STAMP = re.compile(r"_(\d{8}T\d{4}Z)_")  # <account>_CloudTrail_<region>_20240501T0905Z_<unique>.json.gz


def delivery_order(files: Iterable[Path]) -> list[Path]:
    """Files in the order CloudTrail delivered them, by the timestamp in their names, whatever the folder layout.

    Why: the S3 layout sorts by account, then region, then date. Walked by name, a multi-region bucket would teach
    the baselines one region at a time - us-west-2's May after us-east-1's June. Names without a stamp keep their
    walk order, ahead of the stamped ones (a stable sort).
    """
    listed = list(files)

    def stamp(path: Path) -> str:
        found = _DELIVERY_STAMP.search(path.name)
        return found.group(1) if found else ""

    return sorted(listed, key=stamp)


def file_sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


async def ensure_tenant(conn: asyncpg.Connection, tenant: str) -> None:
    await conn.execute(
        "INSERT INTO tenants (tenant_id, name) VALUES ($1, $1) ON CONFLICT (tenant_id) DO NOTHING", tenant
    )


async def ingest(
    conn: asyncpg.Connection,
    paths: Sequence[Path | str],
    *,
    tenant: str | None = None,
    now: Callable[[], datetime] = utc_now,
    keep_read_only: bool | None = None,
    batch_size: int = APPEND_BATCH,
    progress: bool | None = False,
    err: TextIO | None = None,
    kafka: KafkaLog | None = None,
) -> IngestReport:
    """Ingest files and directories for `tenant` (default: Settings.tenant).

    `now` stamps `ingested_at` (once per file); tests freeze it. `progress=None` shows tqdm bars only on a
    terminal. Every rejected record is dead-lettered and named on `err` (stderr by default).

    `kafka`: a started KafkaLog (DD0C_LOG_URL=kafka://...): entries go to the raw topic instead of the `log` table;
    file claims, reports, read-only counts and dead letters stay in Postgres, in the same transaction, which
    commits only after the broker acknowledged the file's entries. A failure leaves the file unclaimed, and
    sending it again is safe (the Kafka workers dedupe on tenant + account + eventID, so `duplicate` is 0 here).
    """
    settings = load_settings()
    tenant = tenant or settings.tenant
    keep = settings.keep_read_only if keep_read_only is None else keep_read_only
    err = err if err is not None else sys.stderr
    report = IngestReport()
    files = delivery_order(find_log_files([Path(p) for p in paths], report.ignored))
    await ensure_tenant(conn, tenant)
    with (
        tqdm(total=len(files), unit="file", desc="files", file=sys.stderr, disable=_no_bar(progress)) as file_bar,
        tqdm(unit="rec", desc="records", file=sys.stderr, disable=_no_bar(progress), position=1) as rec_bar,
    ):

        def say(message: str) -> None:
            if file_bar.disable:
                print(message, file=err, flush=True)
            else:
                tqdm.write(message, file=err)

        group: list[tuple[Path, bytes]] = []
        group_bytes = 0

        def done(file_report: FileReport) -> None:
            report.files.append(file_report)
            file_bar.update(1)
            rec_bar.update(file_report.read)

        async def flush_group() -> None:
            nonlocal group_bytes
            if group:
                with gc_paused():  # a group is bounded (GROUP_BYTES): see ops/gc_pause.py
                    reports = await _ingest_group(
                        conn, group, tenant=tenant, now=now, keep_read_only=keep, batch_size=batch_size, say=say,
                        kafka=kafka,
                    )
                for file_report in reports:
                    done(file_report)
                group.clear()
                group_bytes = 0

        for path in files:
            try:
                data = _read_small(path)
            except OSError as exc:  # the environment (permissions, a vanished file), not bad input: no dead letter
                await flush_group()  # files before it first: reports and messages stay in file order
                done(_unreadable(path, exc, say))
                continue
            if data is not None:
                group.append((path, data))
                group_bytes += len(data)
                if group_bytes >= GROUP_BYTES or len(group) >= GROUP_FILES:
                    await flush_group()
                continue
            await flush_group()
            try:
                file_report = await ingest_file(
                    conn, path, tenant=tenant, now=now, keep_read_only=keep, batch_size=batch_size, say=say,
                    kafka=kafka,
                )
            except OSError as exc:
                file_report = _unreadable(path, exc, say)
            done(file_report)
        await flush_group()
    await _recall_earlier_rejections(conn, tenant, report)
    return report


async def _recall_earlier_rejections(conn: asyncpg.Connection, tenant: str, report: IngestReport) -> None:
    again = {f.sha256: f for f in report.files if f.status == "already ingested"}
    if not again:
        return
    rows = await conn.fetch(
        "SELECT sha256, coalesce((report->>'rejected')::int, 0) AS rejected FROM ingested_files"
        " WHERE tenant_id = $1 AND sha256 = ANY($2::text[])",
        tenant, list(again),
    )
    for row in rows:
        if row["rejected"]:
            f = again[row["sha256"]]
            f.earlier_rejected = row["rejected"]
            f.note = f"already ingested; {row['rejected']} rejected then (see dead_letters)"


def _no_bar(progress: bool | None) -> bool | None:
    return None if progress is None else not progress


def _read_small(path: Path) -> bytes | None:
    """The file's bytes when it is at most WHOLE_FILE_BYTES (one open, one fstat, one read), else None."""
    with open(path, "rb") as handle:
        if os.fstat(handle.fileno()).st_size > WHOLE_FILE_BYTES:
            return None
        return handle.read()


def _unreadable(path: Path, exc: OSError, say: Callable[[str], None]) -> FileReport:
    say(f"dd0c-cost ingest: cannot read {path}: {exc.strerror or exc}")
    return FileReport(file=str(path), status="unreadable", note=f"unreadable: {exc.strerror or exc}")


async def ingest_file(
    conn: asyncpg.Connection,
    path: Path,
    *,
    tenant: str,
    now: Callable[[], datetime] = utc_now,
    keep_read_only: bool = False,
    batch_size: int = APPEND_BATCH,
    say: Callable[[str], None] | None = None,
    kafka: KafkaLog | None = None,
) -> FileReport:
    """One file, streamed, one transaction: the claim on its hash, its log entries, its dead letters and its report."""
    from schemas import cloudtrail  # the reader; imported here so `--help` does not load it
    from streams.accounts.admission import load_admission

    say = say or (lambda message: print(message, file=sys.stderr))
    source = str(path)
    report = FileReport(file=source, sha256=file_sha256(path))
    if await _already_ingested(conn, tenant, report.sha256):
        report.status = "already ingested"
        return report
    ingested_at = now()
    async with conn.transaction():
        if not await _claim(conn, tenant, [report]):  # another ingester committed the same content meanwhile
            report.status = "already ingested"
            return report
        writer = _Writer(conn, tenant, keep_read_only=keep_read_only, batch_size=batch_size, say=say, kafka=kafka,
                         admission=await load_admission(conn, tenant))
        try:
            await writer.read(report, cloudtrail.read_path(path, source), None, ingested_at)
            await writer.finish()
        finally:
            await writer.close()
        await _save_reports(conn, tenant, [report])
    return report


async def _ingest_group(
    conn: asyncpg.Connection,
    files: Sequence[tuple[Path, bytes]],
    *,
    tenant: str,
    now: Callable[[], datetime],
    keep_read_only: bool,
    batch_size: int,
    say: Callable[[str], None],
    kafka: KafkaLog | None = None,
) -> list[FileReport]:
    """Files already in memory, in one transaction, each with the outcome it would have had on its own."""
    from schemas import cloudtrail
    from streams.accounts.admission import load_admission

    reports = [FileReport(file=str(path), sha256=hashlib.sha256(data).hexdigest()) for path, data in files]
    async with conn.transaction():
        claimed = await _claim(conn, tenant, reports)
        writer = _Writer(conn, tenant, keep_read_only=keep_read_only, batch_size=batch_size, say=say, kafka=kafka,
                         admission=await load_admission(conn, tenant))
        try:
            for (_, data), report in zip(files, reports, strict=True):
                if report.sha256 not in claimed:  # ingested before, or earlier in this group (same bytes twice)
                    report.status = "already ingested"
                    continue
                claimed.discard(report.sha256)
                ingested_at = now()
                records = cloudtrail.plain_records(data, report.file)
                items = None if records is not None else cloudtrail.read_stream(io.BytesIO(data), report.file)
                await writer.read(report, items, records, ingested_at)
                await writer.pump(report.read)
            await writer.finish()
        finally:
            await writer.close()
        await _save_reports(conn, tenant, [r for r in reports if r.status == "ingested"])
    return reports


_CLAIM = """
INSERT INTO ingested_files (tenant_id, sha256, source, report)
SELECT $1, t.sha256, t.source, '{}'::jsonb
FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS t(sha256, source, ord)
ORDER BY t.ord
ON CONFLICT (tenant_id, sha256) DO NOTHING
RETURNING sha256
"""

_SAVE_REPORTS = """
UPDATE ingested_files AS f SET report = t.report::jsonb
FROM unnest($2::text[], $3::text[]) AS t(sha256, report)
WHERE f.tenant_id = $1 AND f.sha256 = t.sha256
"""


async def _claim(conn: asyncpg.Connection, tenant: str, reports: Sequence[FileReport]) -> set[str]:
    """Claim the files' hashes in order; returns the hashes this transaction claimed (a hash twice: the first)."""
    rows = await conn.fetch(_CLAIM, tenant, [r.sha256 for r in reports], [r.file for r in reports])
    return {row["sha256"] for row in rows}


async def _save_reports(conn: asyncpg.Connection, tenant: str, reports: Sequence[FileReport]) -> None:
    if reports:
        # as_json is already what to_jsonable gives (ints, a str, a dict of ints), so orjson writes exactly what
        # schemas.codec.dumps would, without walking it again - once per file.
        texts = [orjson.dumps(r.as_json()).decode() for r in reports]
        await conn.execute(_SAVE_REPORTS, tenant, [r.sha256 for r in reports], texts)


class _Run:
    """Entries of one file (a sorted chunk of it, at most one append batch) waiting to be appended."""

    __slots__ = ("done", "entries", "report", "result")

    def __init__(self, report: FileReport, entries: list[LogEntry]) -> None:
        self.report = report
        self.entries = entries
        self.result = AppendResult()
        self.done = False


class _Writer:
    """Writes what the files of one transaction produce, in file order, with few round trips.

    Sorted chunks are queued as runs and appended `batch_size` entries at a time across file boundaries (the
    concatenation - hence every seq - is what per-file appends would give). Read-only records that passed
    `read_only_day` are only counted, into the same upsert. Rejections wait in `notes` next to the runs so that
    messages and dead letters come out in the order the per-file ingester produced them: a file's read
    rejections, then the entries of its chunk that Postgres could not hold, and so on.

    An append runs in the background while the next files are parsed (Postgres works on another core; `pump`
    lets its round trips advance between files). Only one statement is ever in flight on the connection: every
    other query here first waits for it (`_settle`), and `close` waits for it before the transaction ends, also
    when reading failed.
    """

    def __init__(
        self, conn: asyncpg.Connection, tenant: str, *, keep_read_only: bool, batch_size: int,
        say: Callable[[str], None], kafka: KafkaLog | None = None, admission: Admission | None = None,
    ) -> None:
        self.conn = conn
        # A tenant without registered accounts admits every account: then skip the check altogether.
        self.admission = admission if admission is not None and not admission.open else None
        self.kafka = kafka
        self.tenant = tenant
        self.keep_read_only = keep_read_only
        self.batch_size = max(1, batch_size)
        self.say = say
        self.runs: list[_Run] = []
        self.queued = 0
        self.counted: Counter[ReadOnlyKey] = Counter()
        self.notes: list[Rejected | _Run] = []
        self._pending: asyncio.Future[list[AppendResult]] | None = None
        self._pending_runs: list[_Run] = []
        self._since_pump = 0

    async def read(
        self,
        report: FileReport,
        items: Iterable[Item] | None,
        records: list[dict[str, Any]] | None,
        ingested_at: datetime,
    ) -> None:
        """One file: its records from the whole-file fast path (`records`), else the reader's `items`."""
        from schemas import cloudtrail

        raw_record, to_entry = cloudtrail.RawRecord, cloudtrail.to_log_entry
        read_only_day = None if self.keep_read_only else cloudtrail.read_only_day
        tenant, source, counted = self.tenant, report.file, self.counted
        admission = self.admission  # records of accounts the tenant has not registered are rejected
        chunk: list[LogEntry] = []
        fill = 0  # entries in this chunk, counted ones included: SORT_CHUNK means what it always meant
        chunks = 0
        if records is not None:
            # The same logic as the loop over reader items below, without building a RawRecord and a locator
            # string for each read-only record.
            report.read += len(records)
            for number, record in enumerate(records, 1):
                day = read_only_day(record, ingested_at) if read_only_day is not None else None
                if day is not None and (admission is None or admission.admits(day[0])):
                    counted[(tenant, day[0], day[1])] += 1
                    report.read_only_counted += 1
                else:
                    entry = to_entry(raw_record(record, f"record {number}"), tenant=tenant, ingested_at=ingested_at,
                                     source=source)
                    if admission is not None and isinstance(entry, LogEntry):
                        entry = admission.check(entry, f"record {number}")
                    if not isinstance(entry, LogEntry):
                        await self._not_logged(report, entry)
                        continue
                    chunk.append(entry)
                fill += 1
                if fill >= SORT_CHUNK:
                    chunks += 1
                    await self._queue(report, chunk)
                    chunk, fill = [], 0
        for item in items or ():
            if isinstance(item, raw_record):
                report.read += 1
                day = read_only_day(item.record, ingested_at) if read_only_day is not None else None
                if day is not None and (admission is None or admission.admits(day[0])):
                    counted[(tenant, day[0], day[1])] += 1
                    report.read_only_counted += 1
                    fill += 1
                    if fill >= SORT_CHUNK:
                        chunks += 1
                        await self._queue(report, chunk)
                        chunk, fill = [], 0
                    continue
                locator = item.locator
                item = to_entry(item, tenant=tenant, ingested_at=ingested_at, source=source)
                if admission is not None and isinstance(item, LogEntry):
                    item = admission.check(item, locator)
            if not isinstance(item, LogEntry):
                await self._not_logged(report, item)
                continue
            chunk.append(item)
            fill += 1
            if fill >= SORT_CHUNK:
                chunks += 1
                await self._queue(report, chunk)
                chunk, fill = [], 0
        if fill or not chunks:
            chunks += 1
            await self._queue(report, chunk)
        if chunks > 1:
            report.note = f"over {SORT_CHUNK} records: sorted in chunks of {SORT_CHUNK}"
            log.warning("%s: %s", source, report.note)

    async def _not_logged(self, report: FileReport, item: Rejected | Skipped) -> None:
        if isinstance(item, Rejected):
            report.rejected += 1
            self.notes.append(item)
            if len(self.notes) >= NOTES_PENDING:  # bounded memory for a file full of bad records
                await self.flush()
        else:
            report.skipped[item.kind] += 1

    async def _queue(self, report: FileReport, chunk: list[LogEntry]) -> None:
        chunk.sort(key=_order)
        for start in range(0, len(chunk), self.batch_size):
            run = _Run(report, chunk[start : start + self.batch_size])
            self.runs.append(run)
            self.notes.append(run)
            self.queued += len(run.entries)
            if self.queued >= self.batch_size:
                await self.flush()

    async def flush(self) -> None:
        """Collect the append in flight, write the rejections that are due, and start appending what is queued."""
        await self._settle()
        await self._write_notes()
        if self.runs or self.counted:
            self._pending_runs = self.runs
            runs = [run.entries for run in self.runs]
            self._pending = asyncio.ensure_future(
                append_runs(self.conn, runs, keep_read_only=self.keep_read_only, counted=self.counted)
                if self.kafka is None
                else _append_runs_kafka(self.kafka, self.conn, runs, keep_read_only=self.keep_read_only,
                                        counted=self.counted)
            )
            self.runs, self.queued, self.counted = [], 0, Counter()
            await asyncio.sleep(0)  # let it send its first statement before parsing goes on

    async def pump(self, records: int) -> None:
        """Between files: give the append in flight a chance to take its next round trip (a turn of the event
        loop, with an epoll call, costs as much as reading a few records: so once per PUMP_RECORDS records)."""
        self._since_pump += records
        if self._since_pump >= PUMP_RECORDS and self._pending is not None and not self._pending.done():
            self._since_pump = 0
            await asyncio.sleep(0)

    async def finish(self) -> None:
        await self.flush()
        await self._settle()
        await self._write_notes()

    async def close(self) -> None:
        """After a failure: wait for the append in flight (its outcome no longer matters: the transaction is
        rolled back) so the connection is free for the rollback."""
        pending, self._pending = self._pending, None
        if pending is not None:
            await asyncio.gather(pending, return_exceptions=True)

    async def _settle(self) -> None:
        if self._pending is None:
            return
        pending, self._pending = self._pending, None
        for run, result in zip(self._pending_runs, await pending, strict=True):
            run.result, run.entries, run.done = result, [], True
            run.report.add(result)
        self._pending_runs = []

    async def _write_notes(self) -> None:
        """Say and dead-letter the held-back rejections, in order, up to the first run still being appended."""
        dead: list[tuple[str, str, Rejected]] = []
        taken = 0
        for note in self.notes:
            if isinstance(note, _Run):
                if not note.done:
                    break
                bad_ones: tuple[Rejected, ...] = note.result.rejected
            else:
                bad_ones = (note,)
            taken += 1
            for bad in bad_ones:
                self.say(f"dd0c-cost ingest: rejected {bad.describe()}")
                dead.append((self.tenant, READ_STAGE, bad))
        del self.notes[:taken]
        await dead_letters(self.conn, dead)


async def _append_runs_kafka(
    kafka: KafkaLog,
    conn: asyncpg.Connection,
    runs: Sequence[Sequence[LogEntry]],
    *,
    keep_read_only: bool,
    counted: Mapping[ReadOnlyKey, int],
) -> list[AppendResult]:
    """`append_runs` with the Kafka log: entries to the topic, read-only counts to Postgres (this transaction)."""
    read_only: Counter[ReadOnlyKey] = Counter(counted)
    kept_runs = []
    for entries in runs:
        kept = []
        for entry in entries:
            if entry.read_only and not keep_read_only:
                read_only[(entry.tenant, entry.account_id, entry.event_time.astimezone(UTC).date())] += 1
            else:
                kept.append(entry)
        kept_runs.append(kept)
    produced = await kafka.append_runs(kept_runs)  # one round of acks for all runs, order kept
    results = [
        AppendResult(logged=p.logged, duplicate=0, read_only_counted=len(entries) - len(kept), rejected=p.rejected)
        for p, entries, kept in zip(produced, runs, kept_runs, strict=True)
    ]
    if read_only:
        keys = list(read_only)
        await conn.execute(COUNT_READ_ONLY, [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys],
                           [read_only[k] for k in keys])
    return results


def _order(entry: LogEntry) -> tuple[datetime, str]:
    return entry.event_time, entry.event_id


async def _already_ingested(conn: asyncpg.Connection, tenant: str, sha256: str) -> bool:
    found = await conn.fetchval(
        "SELECT true FROM ingested_files WHERE tenant_id = $1 AND sha256 = $2", tenant, sha256
    )
    return bool(found)


_COLUMNS = ("read", "logged", "duplicate", "read-only", "skipped", "rejected")


def format_report(report: IngestReport) -> str:
    """A plain-text table: one line per file, then the totals."""
    rows = [_row(f) for f in report.files]
    total = report.total()
    total_row = _row(total)
    width = max([len(r[0]) for r in rows] + [len("file"), len(total_row[0])])
    widths = [max(len(name), *(len(r[i + 1]) for r in [*rows, total_row])) for i, name in enumerate(_COLUMNS)]

    def line(cells: Sequence[str]) -> str:
        parts = [cells[0].ljust(width)] + [c.rjust(w) for c, w in zip(cells[1:7], widths, strict=True)]
        return "  ".join(parts + ([cells[7]] if cells[7] else [])).rstrip()

    out = [line(["file", *_COLUMNS, "note"]), *(line(r) for r in rows), line(total_row)]
    if total.skipped:
        out.append("skipped: " + ", ".join(f"{kind} {n}" for kind, n in sorted(total.skipped.items())))
    if report.ignored:
        out.append(f"ignored {len(report.ignored)} file(s) that are not log files by name: "
                   + ", ".join(report.ignored[:5]) + (" ..." if len(report.ignored) > 5 else ""))
    if report.earlier_rejected:
        out.append(f"{report.earlier_rejected} record(s) in already-ingested files were rejected when first read")
    if not report.files:
        out.append("no log files found")
    out.append(
        "read: records found; read-only: counted per account and day, not stored; skipped: whole documents that are "
        "not events (digests, non-CloudTrail EventBridge events); rejected: records or unreadable parts of a file"
    )
    return "\n".join(out)


def _row(f: FileReport) -> list[str]:
    note = f.note or (f.status if f.status != "ingested" else "")
    return [
        f.file,
        str(f.read),
        str(f.logged),
        str(f.duplicate),
        str(f.read_only_counted),
        str(sum(f.skipped.values())),
        str(f.rejected),
        note,
    ]
