"""A received batch, read (pure): bytes or records in, log entries and the reasons for everything else out.

The same reader and the same `to_log_entry` as `dd0c-cost ingest` (schemas.cloudtrail), then the tenant's account
admission. No I/O: the caller loads the Admission and decides what to do with the result.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from schemas import cloudtrail
from schemas.cloudtrail import RawRecord, Skipped
from schemas.events import LogEntry, Rejected
from streams.accounts.admission import STAGE as ADMIT_STAGE
from streams.accounts.admission import Admission

READ_STAGE = "read"  # dead_letters.stage, as for file ingest


@dataclass
class ReadBatch:
    entries: list[LogEntry] = field(default_factory=list)  # admitted, sorted by (event_time, event_id)
    read: int = 0  # CloudTrail records found
    skipped: Counter[str] = field(default_factory=Counter)  # by kind: non_cloudtrail, digest, empty, ...
    rejected: list[tuple[str, Rejected]] = field(default_factory=list)  # (stage, why), in input order

    @property
    def usable(self) -> bool:
        """Something in it was CloudTrail or deliberately skippable: else the whole body was bad input."""
        return self.read > 0 or any(kind != cloudtrail.EMPTY for kind in self.skipped)


def read_batch(
    items: Iterable[cloudtrail.Item], *, tenant: str, source: str, received_at: datetime, admission: Admission
) -> ReadBatch:
    batch = ReadBatch()
    for item in items:
        if isinstance(item, RawRecord):
            batch.read += 1
            got = cloudtrail.to_log_entry(item, tenant=tenant, ingested_at=received_at, source=source)
            if isinstance(got, LogEntry):
                got = admission.check(got, item.locator)
                stage = ADMIT_STAGE
            else:
                stage = READ_STAGE
        else:
            got, stage = item, READ_STAGE
        if isinstance(got, LogEntry):
            batch.entries.append(got)
        elif isinstance(got, Skipped):
            batch.skipped[got.kind] += 1
        else:
            batch.rejected.append((stage, got))
    batch.entries.sort(key=lambda e: (e.event_time, e.event_id))  # as ingest does per file (case R06)
    return batch


def read_body(body: bytes, **kwargs: Any) -> ReadBatch:
    """A pushed body: a CloudTrail file (gzipped or not, decided by its first bytes), one record, an EventBridge
    envelope, a {"Records": [...]} batch, NDJSON - whatever the reader understands."""
    return read_batch(cloudtrail.read_bytes(body, kwargs["source"]), **kwargs)


def read_records(records: Sequence[Mapping[str, Any]], **kwargs: Any) -> ReadBatch:
    """Records already parsed (an agent's batch): located "record 1", "record 2", ..."""
    items = (RawRecord(record=dict(r) if not isinstance(r, dict) else r, locator=f"record {n}")
             for n, r in enumerate(records, 1))
    return read_batch(items, **kwargs)
