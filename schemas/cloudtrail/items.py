"""What the reader hands out: a record it found, a thing it skipped on purpose, or a Rejected (bad input)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schemas.events import Rejected

MIB = 1024 * 1024

# Skipped.kind values. Skipped is not an error: these objects are expected in a CloudTrail bucket or feed.
DIGEST = "digest"  # integrity-validation digest files (case R01)
NON_CLOUDTRAIL = "non_cloudtrail"  # EventBridge events that do not carry a CloudTrail record (case R05 body 4)
EMPTY = "empty"  # zero bytes, only whitespace, or a gzip stream holding nothing
S3_NOTIFICATION = "s3_notification"  # SNS/SQS/S3 notifications that only name S3 objects holding the records


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One CloudTrail record as found in a container, untouched. `locator` says where: "record 12", "line 40"."""

    record: dict[str, Any]
    locator: str


@dataclass(frozen=True, slots=True)
class Skipped:
    """Something deliberately not read as a record (see the kinds above), with the reason in words."""

    kind: str
    source: str
    locator: str
    reason: str


Item = RawRecord | Rejected | Skipped


@dataclass(frozen=True, slots=True)
class Limits:
    """Size limits that keep memory bounded whatever the input.

    * `record_bytes`: one record larger than this is Rejected. Inside an array it is skipped by structure alone,
      never held whole; a top-level value (an NDJSON line, a lone record) is held up to `document_bytes` first.
    * `document_bytes`: a top-level value that cannot be streamed element by element (e.g. `{"NextToken": ..,
      "Events": [..]}` where the list is not the first key) is parsed whole up to this size, Rejected beyond it.
    * `raw_bytes`: how much of the offending input a Rejected keeps.
    * `chunk_bytes`: how much is read from the underlying stream at a time.
    """

    record_bytes: int = 8 * MIB
    document_bytes: int = 64 * MIB
    raw_bytes: int = 64 * 1024
    chunk_bytes: int = 1 * MIB


DEFAULT_LIMITS = Limits()
