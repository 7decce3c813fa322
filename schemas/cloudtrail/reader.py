"""Entry points: read CloudTrail from a path, a binary stream or bytes, in bounded memory."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from schemas.cloudtrail.containers import TextSource
from schemas.cloudtrail.items import DEFAULT_LIMITS, DIGEST, Item, Limits, Skipped
from schemas.cloudtrail.stream import Scanner

DIGEST_KEY_PART = "/CloudTrail-Digest/"


def _digest_by_name(source: str) -> Skipped | None:
    """Digest objects live under .../CloudTrail-Digest/... (case R01); content is checked too, in envelope."""
    if DIGEST_KEY_PART in "/" + source.replace("\\", "/"):
        return Skipped(
            kind=DIGEST, source=source, locator="", reason="CloudTrail digest file (key has /CloudTrail-Digest/)"
        )
    return None


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
    without opening the file. An unreadable file raises OSError: that is the environment, not bad input."""
    name = source if source is not None else str(path)
    digest = _digest_by_name(name)
    if digest is not None:
        yield digest
        return
    with open(path, "rb") as handle:
        yield from read_stream(handle, name, limits=limits)


def read_bytes(data: bytes, source: str, *, limits: Limits = DEFAULT_LIMITS) -> Iterator[Item]:
    """`read_stream` over bytes already in memory (a pushed body, an S3 object)."""
    return read_stream(io.BytesIO(data), source, limits=limits)
