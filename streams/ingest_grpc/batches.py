"""Pure: one Batch from an agent -> what goes to the log, to dead letters, and what was skipped.

Each part's `document` is read with the CloudTrail reader (`read_bytes` + `to_log_entry`, exactly as
`dd0c-cost ingest` reads a file), so the agent path cannot parse differently from the file path. Locators are put
back to where each record sat in its source file ("record 17" of the object, not of the batch), so dead letters
name the original place. Entries are sorted per part by (eventTime, eventID), as ops/ingest sorts each file (a
file larger than one batch is then sorted in batch-sized chunks, as ingest sorts files over SORT_CHUNK).

Read-only records (~90 % of a trail) take ingest's fast path: `read_only_day` vouches that `to_log_entry` would
accept the record as a read-only entry, which the log only counts per (tenant, account, UTC day). Instead of the
full entry (a third of the server's CPU per record), such a record becomes a *counted entry*: a LogEntry with just
what counting reads - tenant, account, a time on that day, read_only - and no record. Both log writers count
read-only entries and never store them unless DD0C_KEEP_READ_ONLY is set; then this path is off (`keep_read_only`),
exactly as in ops/ingest - and when the batch is archived (the archive keeps whole records).

Records for an account the tenant has not registered are Rejected (streams/accounts/admission.py), as for every
other source; such a record always takes the full path, so its dead letter holds the record.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time

from schemas import cloudtrail
from schemas.events import LogEntry, LogKind, Rejected
from schemas.ingest_pb2 import Batch
from streams.accounts.admission import OPEN, Admission
from streams.archive import ArchiveFile, gzip_member, member_files, records_member

_MIDNIGHT = time(0, tzinfo=UTC)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class Decoded:
    entries: list[LogEntry] = field(default_factory=list)  # every part's entries, each part sorted, in part order
    rejected: list[Rejected] = field(default_factory=list)  # in reading order
    skipped: int = 0  # documents that are not events (digests, ...), as the agent reported them or the reader found
    received_at: datetime = _EPOCH  # the ingested_at of every entry
    archive_files: list[ArchiveFile] = field(default_factory=list)  # with `archive_documents`: what to archive

    @property
    def records(self) -> int:
        return len(self.entries) + len(self.rejected)


def _order(entry: LogEntry) -> tuple[datetime, str]:
    return entry.event_time, entry.event_id


def counted_entry(tenant: str, account: str, day: date, source: str) -> LogEntry:
    """A read-only record reduced to what the log counts it by (see the module docstring); never stored."""
    return LogEntry(tenant=tenant, event_id="", account_id=account, event_time=datetime.combine(day, _MIDNIGHT),
                    ingested_at=_EPOCH, event_source="", event_name="", region="", read_only=True,
                    kind=LogKind.CLOUDTRAIL, record={}, source=source)


def decode(
    batch: Batch, *, tenant: str, ingested_at: datetime, keep_read_only: bool = False, admission: Admission = OPEN,
    archive_documents: bool = False,
) -> Decoded:
    """`archive_documents`: also say what goes to the raw archive (`archive_files`): one file per (account, region)
    of the batch, of the documents as they came where a document holds one (account, region) - every CloudTrail
    delivery file - and of a mixed document's records split by (account, region). Read-only records stay on the
    fast path: the archive needs no entry built for them."""
    out = Decoded(received_at=ingested_at)
    raw_record, to_entry = cloudtrail.RawRecord, cloudtrail.to_log_entry
    read_only_day = None if keep_read_only else cloudtrail.read_only_day
    admits = admission.admits
    members: dict[tuple[str, str], list[bytes]] = {}  # archive: gzip members per (account, region) of the batch
    counts: dict[tuple[str, str], int] = {}
    for part in batch.parts:
        source = part.source
        out.skipped += sum(part.skipped.values())
        for bad in part.rejects:
            out.rejected.append(Rejected(bad.reason, bad.raw, source, bad.locator))
        if not part.document:
            continue
        locators = part.locators
        run: list[LogEntry] = []
        counted: dict[tuple[str, date], LogEntry] = {}  # one (frozen) counted entry per account and day, reused
        groups: dict[tuple[str, str], list[object]] = {}  # archive: the part's readable records by (account, region)
        for index, item in enumerate(cloudtrail.read_bytes(part.document, source)):
            if isinstance(item, raw_record):
                day = read_only_day(item.record, ingested_at) if read_only_day is not None else None
                if day is not None and admits(day[0]):
                    entry = counted.get(day)
                    if entry is None:
                        entry = counted[day] = counted_entry(tenant, day[0], day[1], source)
                    out.entries.append(entry)
                    if archive_documents:  # read_only_day vouched for awsRegion being a string
                        groups.setdefault((day[0], item.record["awsRegion"]), []).append(item.record)
                    continue
                locator = locators[index] if index < len(locators) else item.locator
                item = to_entry(item, tenant=tenant, ingested_at=ingested_at, source=source)
                if isinstance(item, LogEntry):
                    if archive_documents:
                        groups.setdefault((item.account_id, item.region), []).append(item.record)
                    item = admission.check(item, locator)
            if isinstance(item, LogEntry):
                run.append(item)
            elif index < len(locators):  # a Rejected or Skipped: name the record's place in the source file
                placed = dataclasses.replace(item, locator=locators[index])
                _note(out, placed)
            else:
                _note(out, item)
        run.sort(key=_order)
        out.entries.extend(run)
        if len(groups) == 1:  # every CloudTrail delivery file: the document itself
            [(pair, records)] = groups.items()
            members.setdefault(pair, []).append(gzip_member(part.document))
            counts[pair] = counts.get(pair, 0) + len(records)
        else:  # several accounts or regions in one document: their records, split as the layout wants
            for pair, records in groups.items():
                members.setdefault(pair, []).append(records_member(records))
                counts[pair] = counts.get(pair, 0) + len(records)
    if members:
        out.archive_files = member_files(tenant, members, counts, ingested_at)
    return out


def _note(out: Decoded, item: Rejected | cloudtrail.Skipped) -> None:
    if isinstance(item, Rejected):
        out.rejected.append(item)
    else:
        out.skipped += 1
