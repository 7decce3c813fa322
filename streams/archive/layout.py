"""Where archived records go (pure): CloudTrail's own S3 layout and file naming, per tenant.

    <tenant>/AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/<account>_CloudTrail_<region>_<YYYYMMDDTHHMMZ>_<id>.json.gz

holding {"Records": [...]}, gzipped. The date and stamp are the time the batch was received (CloudTrail names its
files by delivery time too), so `dd0c-cost ingest` reads archive files in the order they arrived. The 16-character
id starts with the microseconds of that time, so files of the same minute also sort in arrival order.
"""

from __future__ import annotations

import gzip
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from schemas.events import Dd0cError, LogEntry

_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class ArchiveError(Dd0cError):
    """The archive cannot be written (bad setting, a tenant or account that cannot be a path, a failed store)."""


@dataclass(frozen=True, slots=True)
class ArchiveFile:
    key: str  # path below the archive root, '/'-separated
    account_id: str
    region: str
    records: int
    data: bytes  # the gzipped {"Records": [...]}


def safe_part(value: str, what: str) -> str:
    if not _SAFE.match(value) or value in (".", ".."):
        raise ArchiveError(f"{what} {value!r} cannot be part of an archive path")
    return value


def file_key(tenant: str, account_id: str, region: str, received_at: datetime, unique: str) -> str:
    t = received_at.astimezone(UTC)
    account, region = safe_part(account_id, "account"), safe_part(region, "region")
    name = f"{account}_CloudTrail_{region}_{t:%Y%m%dT%H%MZ}_{unique}.json.gz"
    return f"{safe_part(tenant, 'tenant')}/AWSLogs/{account}/CloudTrail/{region}/{t:%Y/%m/%d}/{name}"


def unique_id(received_at: datetime) -> str:
    """16 characters: seconds-in-minute and microseconds (8 digits) then 8 random hex digits."""
    t = received_at.astimezone(UTC)
    return f"{t.second:02d}{t.microsecond:06d}{secrets.token_hex(4)}"


def build_files(tenant: str, entries: Iterable[LogEntry], received_at: datetime) -> list[ArchiveFile]:
    """One file per (account, region) of the batch, records in batch order; gzip with mtime 0 (same bytes for
    the same records)."""
    groups: dict[tuple[str, str], list[object]] = {}
    for entry in entries:
        groups.setdefault((entry.account_id, entry.region), []).append(entry.record)
    return group_files(tenant, groups, received_at)


def gzip_member(document: bytes) -> bytes:
    """A received document as one gzip member: as it came when it is gzipped already (CloudTrail's delivery files
    are), else compressed here."""
    return document if document[:2] == b"\x1f\x8b" else gzip.compress(document, compresslevel=6, mtime=0)


def records_member(records: list[object]) -> bytes:
    """Records as one CloudTrail document, gzipped with mtime 0 (the same records give the same bytes)."""
    return gzip.compress(orjson.dumps({"Records": records}), compresslevel=6, mtime=0)


def member_files(tenant: str, members: dict[tuple[str, str], list[bytes]], counts: dict[tuple[str, str], int],
                 received_at: datetime) -> list[ArchiveFile]:
    """One file per (account, region) of a batch whose documents were kept as they came: the gzip members one after
    the other (a multi-member gzip file is still one gzip file; read back, it is the documents in turn, which
    `dd0c-cost ingest` reads like any CloudTrail file). No record is decoded or encoded again for the archive,
    and a batch of many small delivery files costs one durable write per account and region, not one per file."""
    if received_at.tzinfo is None:
        raise ArchiveError(f"received_at must be timezone-aware (got {received_at!r})")
    return [
        ArchiveFile(key=file_key(tenant, account, region, received_at, unique_id(received_at)), account_id=account,
                    region=region, records=counts[(account, region)], data=b"".join(parts))
        for (account, region), parts in members.items()
    ]


def group_files(tenant: str, groups: dict[tuple[str, str], list[object]], received_at: datetime) -> list[ArchiveFile]:
    """One file per (account, region) group of records."""
    if received_at.tzinfo is None:
        raise ArchiveError(f"received_at must be timezone-aware (got {received_at!r})")
    files = []
    for (account, region), records in groups.items():
        body = records_member(records)
        key = file_key(tenant, account, region, received_at, unique_id(received_at))
        files.append(ArchiveFile(key=key, account_id=account, region=region, records=len(records), data=body))
    return files
