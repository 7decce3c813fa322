"""Entry points: read CloudTrail from a path, a binary stream or bytes, in bounded memory."""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from schemas.cloudtrail import whole
from schemas.cloudtrail.containers import TextSource
from schemas.cloudtrail.items import DEFAULT_LIMITS, DIGEST, Item, Limits, RawRecord, Skipped
from schemas.cloudtrail.stream import Scanner

DIGEST_KEY_PART = "/CloudTrail-Digest/"


def _digest_by_name(source: str) -> Skipped | None:
    """Digest objects live under .../CloudTrail-Digest/... (case R01); content is checked too, in envelope."""
    if DIGEST_KEY_PART in "/" + source.replace("\\", "/"):
        return Skipped(
            kind=DIGEST, source=source, locator="", reason="CloudTrail digest file (key has /CloudTrail-Digest/)"
        )
    return None


def plain_records(data: bytes, source: str, *, limits: Limits = DEFAULT_LIMITS) -> list[dict[str, Any]] | None:
    """The records of an ordinary delivery file in `data` (gzipped or not), parsed whole - exactly what `read_stream`
    would yield as RawRecords, located "record 1", "record 2", ... - or None when anything about the input is
    unusual (see schemas.cloudtrail.whole); then `read_stream` must read it. Never raises for bad input."""
    if _digest_by_name(source) is not None:
        return None
    return whole.plain_records(data, limits)


def _as_items(records: list[dict[str, Any]]) -> Iterator[Item]:
    for number, record in enumerate(records, 1):
        yield RawRecord(record=record, locator=f"record {number}")


def read_stream(stream: BinaryIO, source: str, *, limits: Limits = DEFAULT_LIMITS) -> Iterator[Item]:
    """Every record in `stream` (gzipped or not: decided by its first bytes), with Skipped / Rejected items for
    what is not one. Never raises for bad input; memory stays bounded by `limits` whatever the input size."""
    digest = _digest_by_name(source)
    if digest is not None:
        yield digest
        return
    yield from Scanner(TextSource(stream, limits.chunk_bytes), source, limits).items()


def read_path(path: Path, source: str | None = None, *, limits: Limits = DEFAULT_LIMITS) -> Iterator[Item]:
    """`read_stream` over a file; `source` (default: the path) names it in every item. A digest key is skipped
    without opening the file. An unreadable file raises OSError: that is the environment, not bad input.

    A file no larger than `limits.record_bytes` is read at once and tried on the whole-file fast path first."""
    name = source if source is not None else str(path)
    digest = _digest_by_name(name)
    if digest is not None:
        yield digest
        return
    with open(path, "rb") as handle:
        info = os.fstat(handle.fileno())
        if stat.S_ISREG(info.st_mode) and info.st_size <= limits.record_bytes:
            data = handle.read(limits.record_bytes + 1)
            records = whole.plain_records(data, limits) if len(data) <= limits.record_bytes else None
            if records is not None:
                yield from _as_items(records)
                return
            handle.seek(0)  # not an ordinary file after all (or it grew): stream it from the start
        yield from read_stream(handle, name, limits=limits)


def read_bytes(data: bytes, source: str, *, limits: Limits = DEFAULT_LIMITS) -> Iterator[Item]:
    """`read_stream` over bytes already in memory (a pushed body, an S3 object), by the whole-file fast path when
    the bytes are an ordinary delivery file."""
    records = plain_records(data, source, limits=limits)
    if records is not None:
        return _as_items(records)
    return read_stream(io.BytesIO(data), source, limits=limits)
