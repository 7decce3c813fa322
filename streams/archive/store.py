"""Where archive files are put: a local folder (default `<DD0C_DATA_DIR>/archive`) or an S3-compatible bucket.

DD0C_ARCHIVE_URL: unset -> the local default; a path or file:///path -> that folder; s3://bucket[/prefix] -> the
bucket (DD0C_AWS_ENDPOINT_URL points boto3 at MinIO or another S3-compatible store; credentials are the
process's own). A put returns once the file is durable: fsynced and renamed into place locally, acknowledged by
the store for S3 - so a caller may write the log entry after it and know the archive can rebuild it.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from ops.settings import Settings, load_settings
from schemas.events import LogEntry
from streams.archive.layout import ArchiveError, ArchiveFile, build_files


class RawArchive(Protocol):
    location: str  # shown in logs and the CLI: a folder or s3://bucket/prefix

    def put(self, key: str, data: bytes) -> None: ...


class LocalArchive:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.location = str(root)

    def put(self, key: str, data: bytes) -> None:
        self.put_many([(key, data)])

    def put_many(self, items: Sequence[tuple[str, bytes]]) -> None:
        """Each file written to a temporary name, fsynced and renamed; then each folder fsynced once (the renames
        must survive a crash too). A batch of delivery files mostly shares one day's folder: one folder sync for
        all of them instead of one per file."""
        folders: dict[Path, None] = {}
        for key, data in items:
            path = self.root / key
            if path.parent not in folders:
                path.parent.mkdir(parents=True, exist_ok=True)
                folders[path.parent] = None
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".part-")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        for folder in folders:
            dir_fd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)


class S3Archive:
    def __init__(self, bucket: str, prefix: str, client: Any) -> None:
        self.bucket, self.prefix, self._client = bucket, prefix.strip("/"), client
        self.location = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"

    def put(self, key: str, data: bytes) -> None:
        full = f"{self.prefix}/{key}" if self.prefix else key
        try:
            self._client.put_object(Bucket=self.bucket, Key=full, Body=data, ContentType="application/json",
                                    ContentEncoding="gzip")
        except (BotoCoreError, ClientError) as exc:
            raise ArchiveError(f"cannot write {self.location}/{key}: {exc}") from exc


def open_archive(settings: Settings | None = None) -> RawArchive:
    s = settings or load_settings()
    url = s.archive_url
    if not url:
        return LocalArchive(Path(s.data_dir) / "archive")
    if url.startswith("s3://"):
        from streams.accounts.session import plain_session  # boto3 only when an S3 archive is configured

        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        if not bucket:
            raise ArchiveError(f"DD0C_ARCHIVE_URL names no bucket: {url!r} (expected s3://bucket[/prefix])")
        return S3Archive(bucket, prefix, plain_session(s).client("s3"))
    if url.startswith("file://"):
        url = url.removeprefix("file://")
    elif "://" in url:
        raise ArchiveError(f"DD0C_ARCHIVE_URL must be a path, file:///path or s3://bucket[/prefix], got {url!r}")
    return LocalArchive(Path(url))


def archive_entries(
    archive: RawArchive, tenant: str, entries: Sequence[LogEntry], *, received_at: datetime
) -> list[ArchiveFile]:
    """Write `entries` (one batch) as CloudTrail files; returns what was written (keys below the root)."""
    files = build_files(tenant, entries, received_at)
    write_files(archive, files)
    return files


def write_files(archive: RawArchive, files: Sequence[ArchiveFile]) -> None:
    """Files already built (streams.archive.layout), each durable when this returns."""
    many = getattr(archive, "put_many", None)  # a local folder syncs each folder once for the lot
    if many is not None:
        try:
            many([(f.key, f.data) for f in files])
        except OSError as exc:
            raise ArchiveError(f"cannot write {exc.filename or archive.location}: {exc.strerror or exc}") from exc
        return
    for f in files:
        try:
            archive.put(f.key, f.data)
        except OSError as exc:
            raise ArchiveError(f"cannot write {archive.location}/{f.key}: {exc.strerror or exc}") from exc


async def write_files_async(archive: RawArchive, files: Sequence[ArchiveFile]) -> None:
    if files:
        await asyncio.to_thread(write_files, archive, files)


async def archive_entries_async(
    archive: RawArchive, tenant: str, entries: Sequence[LogEntry], *, received_at: datetime
) -> list[ArchiveFile]:
    """`archive_entries` off the event loop (file and S3 writes block)."""
    if not entries:
        return []
    return await asyncio.to_thread(archive_entries, archive, tenant, entries, received_at=received_at)
