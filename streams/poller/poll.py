"""Wiring: for each target, region and day folder, list what is new after the stored position, read each new
object into the log, then move the position past it. Objects are read in key order (= delivery order in a day
folder) and one at a time, so a stop request (SIGTERM) is honoured between two objects and never inside one.

S3 and network failures are the environment, not bad input: they end the prefix (its position stays before the
object that failed, which the next poll reads again) and are listed in the report; the other prefixes go on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
from botocore.exceptions import BotoCoreError, ClientError

from ops.ingest import FileReport, IngestReport
from schemas.cloudtrail import DIGEST
from streams.accounts.admission import load_admission
from streams.archive import RawArchive
from streams.log.writer import LogWriter
from streams.poller import layout, positions
from streams.poller.objects import Dead, ObjectResult, Sink, read_object, s3_source
from streams.poller.source import S3Client, SessionFactory, Sessions, Target, s3_client

log = logging.getLogger("dd0c.poller")

AWS_ERRORS = (ClientError, BotoCoreError, OSError)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class ObjectRead:
    """One object the poller read (or passed over), for the caller's report and metrics."""

    target: Target
    key: str
    size: int
    last_modified: datetime | None
    report: FileReport
    logged_at: datetime  # when its entries were durable and its position moved
    committed: bool  # False: another poller had moved the position past it first (nothing counted twice)

    @property
    def lag_seconds(self) -> float | None:
        """Seconds from the object's delivery to the bucket to its entries being in the log."""
        if self.last_modified is None:
            return None
        return max(0.0, (self.logged_at - self.last_modified).total_seconds())


@dataclass
class PollReport:
    objects: list[ObjectRead] = field(default_factory=list)
    listings: int = 0  # day folders listed
    errors: list[str] = field(default_factory=list)  # S3 / network failures, by target and prefix
    stopped: bool = False  # a stop request ended the poll early (between two objects)

    def as_ingest_report(self) -> IngestReport:
        """The same shape `dd0c-cost ingest` reports in, so `format_report` prints it."""
        return IngestReport(files=[o.report for o in self.objects])

    @property
    def ok(self) -> bool:
        return not self.errors and self.as_ingest_report().rejected == 0


class Poller:
    """Polls targets into the log. One Poller serves one process; `stop` ends a poll between two objects."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        writer: LogWriter,
        *,
        session_for: SessionFactory | None = None,
        endpoint_url: str | None = None,
        keep_read_only: bool = False,
        archive: RawArchive | None = None,
        now: Callable[[], datetime] = utc_now,
        stop: asyncio.Event | None = None,
        on_object: Callable[[ObjectRead], Any] | None = None,
    ) -> None:
        self.pool = pool
        self.writer = writer
        self.session_for = session_for or Sessions()
        self.endpoint_url = endpoint_url
        self.keep_read_only = keep_read_only
        self.archive = archive
        self.now = now
        self.stop = stop or asyncio.Event()
        self.on_object = on_object

    async def poll(self, targets: Iterable[Target], days: Sequence[date] | None = None) -> PollReport:
        """Every target's new objects in `days` (default: yesterday and today, UTC)."""
        report = PollReport()
        chosen = list(days) if days is not None else list(layout.poll_days(self.now()))
        for target in targets:
            if self.stop.is_set():
                report.stopped = True
                break
            await self._poll_target(target, chosen, report)
        return report

    async def _poll_target(self, target: Target, days: Sequence[date], report: PollReport) -> None:
        try:
            # The session factory may call STS (an assumed role): off the event loop, like every S3 call.
            client = await asyncio.to_thread(lambda: s3_client(self.session_for(target), self.endpoint_url))
            regions = target.regions or await asyncio.to_thread(_regions, client, target)
        except AWS_ERRORS as exc:
            self._error(report, f"{target.describe()}: {_why(exc)}")
            return
        for day in days:
            for region in regions:
                if self.stop.is_set():
                    report.stopped = True
                    return
                await self._poll_prefix(client, target, region, day, report)

    async def _poll_prefix(self, client: S3Client, target: Target, region: str, day: date, report: PollReport) -> None:
        prefix = layout.day_prefix(target.root, region, day)
        where = f"s3://{target.bucket}/{prefix}"
        try:
            position = await positions.load(self.pool, target.tenant, target.bucket, prefix)
            listed = await asyncio.to_thread(_list_after, client, target.bucket, prefix, position.start_after())
        except AWS_ERRORS as exc:
            self._error(report, f"{target.describe()}: listing {where}: {_why(exc)}")
            return
        report.listings += 1
        for obj in listed:
            if position.has_read(str(obj["Key"])):  # listed again by the lookback (see layout.start_after)
                continue
            if self.stop.is_set():
                report.stopped = True
                return
            try:
                read = await self._read(client, target, region, day, prefix, obj)
            except AWS_ERRORS as exc:
                # The position stays before this object: the next poll starts with it again.
                self._error(report, f"{target.describe()}: reading {s3_source(target.bucket, obj['Key'])}: {_why(exc)}")
                return
            report.objects.append(read)
            if self.on_object is not None:
                self.on_object(read)

    async def _read(
        self, client: S3Client, target: Target, region: str, day: date, prefix: str, obj: dict[str, Any]
    ) -> ObjectRead:
        key, size = str(obj["Key"]), int(obj.get("Size") or 0)
        if layout.is_digest_key(key):  # never fetched: integrity manifests hold no events
            result = ObjectResult(report=FileReport(file=s3_source(target.bucket, key)))
            result.report.skipped[DIGEST] += 1
        else:
            sink = Sink(
                tenant=target.tenant, writer=self.writer, admission=await load_admission(self.pool, target.tenant),
                archive=self.archive, keep_read_only=self.keep_read_only,
                early_rejects=lambda held: self._write_rejects(target.tenant, held),
            )
            result = await read_object(client, target.bucket, key, size, sink=sink, ingested_at=self.now())
        for _, bad in result.rejected:
            log.warning("rejected %s", bad.describe())
        async with self.pool.acquire() as conn:
            committed = await positions.commit_object(
                conn, tenant=target.tenant, bucket=target.bucket, prefix=prefix, account_id=target.account_id,
                region=region, day=day, key=key, counted=result.counted, rejected=result.rejected,
            )
        if not committed:
            result.report.note = "already read by another poller"
        return ObjectRead(
            target=target, key=key, size=size, last_modified=obj.get("LastModified"), report=result.report,
            logged_at=self.now(), committed=committed,
        )

    async def _write_rejects(self, tenant: str, held: list[Dead]) -> None:
        # A file with this many bad records: written before the position moves, so a crash before it does would
        # write these again when the object is re-read. Bounded memory is worth that.
        for _, bad in held:
            log.warning("rejected %s", bad.describe())
        async with self.pool.acquire() as conn, conn.transaction():
            await positions.add_dead_letters(conn, tenant, held)

    def _error(self, report: PollReport, message: str) -> None:
        log.error("poll: %s", message)
        report.errors.append(message)


def _regions(client: S3Client, target: Target) -> list[str]:
    """The region folders under the account's CloudTrail folder (when its registration names none)."""
    found: list[str] = []
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=target.bucket, Prefix=target.root, Delimiter="/"):
        for common in page.get("CommonPrefixes", ()):
            region = layout.region_of(target.root, common["Prefix"])
            if region is not None:
                found.append(region)
    return sorted(found)


def _list_after(client: S3Client, bucket: str, prefix: str, after: str | None) -> list[dict[str, Any]]:
    """Objects under `prefix` whose keys sort after `after`, in key order (S3 lists in UTF-8 binary order)."""
    kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
    if after is not None:
        kwargs["StartAfter"] = after
    out: list[dict[str, Any]] = []
    for page in client.get_paginator("list_objects_v2").paginate(**kwargs):
        out.extend(page.get("Contents", ()))
    return out


def _why(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'error')}: {error.get('Message', '') or exc}"
    return f"{type(exc).__name__}: {exc}"
