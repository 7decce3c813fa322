"""Ingest CloudTrail files into the log: walk, hash, read, sort, append, report.

Per file, in one transaction: claim its content hash in `ingested_files` (a re-delivered file is reported as
`already ingested` and not read again, so its read-only events are not counted twice), read it with the
CloudTrail reader, sort its entries by (event_time, event_id), append them in batches, dead-letter what was
rejected. Records inside one delivery file are not in time order (case R06); sorting per file makes baselines
see each file in event-time order and keeps replay independent of the worker's batch size.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import asyncpg
from tqdm import tqdm

from ops.settings import load_settings
from schemas.codec import to_jsonable
from schemas.events import Dd0cError, LogEntry, Rejected
from streams.log.postgres import AppendResult, append, dead_letter

log = logging.getLogger("dd0c.ingest")

APPEND_BATCH = 2000  # entries per INSERT: big enough to amortise the round trip, small enough to stay cheap
SORT_CHUNK = 100_000  # a file with more records than this is sorted (and appended) in chunks of this size
DIGEST_DIR = "CloudTrail-Digest"  # S3 layout: integrity digests, not events
LOG_SUFFIXES = (".json", ".json.gz", ".gz", ".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz", ".log", ".log.gz")
READ_STAGE = "read"


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

    def add(self, result: AppendResult) -> None:
        self.logged += result.logged
        self.duplicate += result.duplicate
        self.read_only_counted += result.read_only_counted
        self.rejected += len(result.rejected)

    def as_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = to_jsonable(
            {k: v for k, v in self.__dict__.items() if k not in ("file", "sha256", "status")}
        )
        return doc


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
    def ok(self) -> bool:
        return self.rejected == 0 and self.unreadable == 0

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
) -> IngestReport:
    """Ingest files and directories for `tenant` (default: Settings.tenant).

    `now` stamps `ingested_at` (once per file); tests freeze it. `progress=None` shows tqdm bars only on a
    terminal. Every rejected record is dead-lettered and named on `err` (stderr by default).
    """
    settings = load_settings()
    tenant = tenant or settings.tenant
    keep = settings.keep_read_only if keep_read_only is None else keep_read_only
    err = err if err is not None else sys.stderr
    report = IngestReport()
    files = list(find_log_files([Path(p) for p in paths], report.ignored))
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

        for path in files:
            try:
                file_report = await ingest_file(
                    conn, path, tenant=tenant, now=now, keep_read_only=keep, batch_size=batch_size, say=say
                )
            except OSError as exc:  # the environment (permissions, a vanished file), not bad input: no dead letter
                say(f"dd0c-cost ingest: cannot read {path}: {exc.strerror or exc}")
                file_report = FileReport(file=str(path), status="unreadable", note=f"unreadable: {exc.strerror or exc}")
            report.files.append(file_report)
            file_bar.update(1)
            rec_bar.update(file_report.read)
    return report


def _no_bar(progress: bool | None) -> bool | None:
    return None if progress is None else not progress


async def ingest_file(
    conn: asyncpg.Connection,
    path: Path,
    *,
    tenant: str,
    now: Callable[[], datetime] = utc_now,
    keep_read_only: bool = False,
    batch_size: int = APPEND_BATCH,
    say: Callable[[str], None] | None = None,
) -> FileReport:
    """One file, one transaction: the claim on its hash, its log entries, its dead letters and its report."""
    from schemas import cloudtrail  # the reader; imported here so `--help` does not load it

    say = say or (lambda message: print(message, file=sys.stderr))
    source = str(path)
    report = FileReport(file=source, sha256=file_sha256(path))
    if await _already_ingested(conn, tenant, report.sha256):
        report.status = "already ingested"
        return report
    ingested_at = now()
    async with conn.transaction():
        claimed = await conn.fetchval(
            "INSERT INTO ingested_files (tenant_id, sha256, source, report) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (tenant_id, sha256) DO NOTHING RETURNING true",
            tenant, report.sha256, source, {},
        )
        if not claimed:  # another ingester committed the same content meanwhile
            report.status = "already ingested"
            return report
        entries: list[LogEntry] = []
        chunks = 0

        async def flush() -> None:
            # Sorted per chunk: a whole delivery file is one chunk; only a file over SORT_CHUNK records is split.
            nonlocal chunks
            chunks += 1
            entries.sort(key=lambda e: (e.event_time, e.event_id))
            for start in range(0, len(entries), batch_size):
                result = await append(conn, entries[start : start + batch_size], keep_read_only=keep_read_only)
                report.add(result)
                for bad in result.rejected:  # readable, but not storable (e.g. invalid Unicode): same path as above
                    say(f"dd0c-cost ingest: rejected {bad.describe()}")
                    await dead_letter(conn, tenant, READ_STAGE, bad)
            entries.clear()

        for item in cloudtrail.read_path(path, source):
            if isinstance(item, cloudtrail.RawRecord):
                report.read += 1
                item = cloudtrail.to_log_entry(item, tenant=tenant, ingested_at=ingested_at, source=source)
            if isinstance(item, LogEntry):
                entries.append(item)
                if len(entries) >= SORT_CHUNK:
                    await flush()
            elif isinstance(item, Rejected):
                say(f"dd0c-cost ingest: rejected {item.describe()}")
                report.rejected += 1
                await dead_letter(conn, tenant, READ_STAGE, item)
            else:
                report.skipped[item.kind] += 1
        if entries or not chunks:
            await flush()
        if chunks > 1:
            report.note = f"over {SORT_CHUNK} records: sorted in chunks of {SORT_CHUNK}"
            log.warning("%s: %s", source, report.note)
        await conn.execute(
            "UPDATE ingested_files SET report = $3 WHERE tenant_id = $1 AND sha256 = $2",
            tenant, report.sha256, report.as_json(),
        )
    return report


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
    if not report.files:
        out.append("no log files found")
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
