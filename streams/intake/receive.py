"""Receive one batch durably (wiring): read -> archive -> append -> dead letters -> result.

Order matters. The archive is written first (a put returns once durable), then the entries are appended through
the log writer (returns once durable), then the rejections are dead-lettered; only then may the caller answer its
sender. A crash anywhere before the answer makes the sender retry: the archive may then hold the batch twice and
the log dedupes the entries (tenant, account, eventID) - nothing is lost, nothing counted twice in the log.

Read-only events are only counted (per account and day), with no eventID to dedupe on. A pushed body is therefore
remembered by its SHA-256 once it has been received (table ingested_files, as file ingest does): the same body
sent again - a client retrying after a lost answer - has its logged entries deduped by the log as usual, and its
read-only events and rejections are neither counted nor dead-lettered a second time. (A crash between the append
and that claim leaves the body unclaimed: its retry counts its read-only events again. Counts only, never costs.)
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg

from schemas.events import Rejected
from streams.accounts.admission import load_admission
from streams.archive import RawArchive, archive_entries_async
from streams.intake.batch import ReadBatch, read_body, read_records
from streams.log.postgres import dead_letters
from streams.log.writer import LogWriter

log = logging.getLogger("dd0c.intake")


@dataclass
class Received:
    source: str
    read: int = 0
    logged: int = 0
    duplicate: int = 0
    read_only_counted: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    rejected: list[Rejected] = field(default_factory=list)
    archived: list[str] = field(default_factory=list)  # archive keys written
    usable: bool = True  # False: nothing in the input was CloudTrail (the push answers 422)

    def as_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "read": self.read,
            "logged": self.logged,
            "duplicate": self.duplicate,
            "read_only_counted": self.read_only_counted,
            "skipped": dict(self.skipped),
            "ignored_non_cloudtrail": self.skipped.get("non_cloudtrail", 0),
            "rejected": [{"locator": r.locator, "reason": r.reason} for r in self.rejected],
            "archived": self.archived,
        }


async def receive_body(
    pool: asyncpg.Pool, writer: LogWriter, archive: RawArchive | None, tenant: str, body: bytes, *, source: str,
    received_at: datetime | None = None,
) -> Received:
    """A pushed body (any container the CloudTrail reader understands)."""
    at = received_at or datetime.now(UTC)
    admission = await load_admission(pool, tenant)
    batch = read_body(body, tenant=tenant, source=source, received_at=at, admission=admission)
    digest = hashlib.sha256(body).hexdigest()
    seen = await pool.fetchval(
        "SELECT true FROM ingested_files WHERE tenant_id = $1 AND sha256 = $2", tenant, f"push:{digest}"
    )
    if seen:  # a retry of a body already received: see the module docstring
        batch.entries = [e for e in batch.entries if not e.read_only]
    out = await _commit(pool, writer, archive, tenant, batch, source=source, received_at=at, repeat=bool(seen))
    if not seen and batch.entries:
        await pool.execute(
            "INSERT INTO ingested_files (tenant_id, sha256, source, report) VALUES ($1, $2, $3, $4::jsonb)"
            " ON CONFLICT DO NOTHING",
            tenant, f"push:{digest}", source, out.as_json(),
        )
    return out


async def receive_records(
    pool: asyncpg.Pool, writer: LogWriter, archive: RawArchive | None, tenant: str,
    records: Sequence[Mapping[str, Any]], *, source: str, received_at: datetime | None = None,
) -> Received:
    """Records already parsed (e.g. an agent's batch)."""
    at = received_at or datetime.now(UTC)
    admission = await load_admission(pool, tenant)
    batch = read_records(records, tenant=tenant, source=source, received_at=at, admission=admission)
    return await _commit(pool, writer, archive, tenant, batch, source=source, received_at=at)


async def _commit(
    pool: asyncpg.Pool, writer: LogWriter, archive: RawArchive | None, tenant: str, batch: ReadBatch, *,
    source: str, received_at: datetime, repeat: bool = False,
) -> Received:
    out = Received(source=source, read=batch.read, skipped=batch.skipped, usable=batch.usable)
    if batch.entries:
        await pool.execute(
            "INSERT INTO tenants (tenant_id, name) VALUES ($1, $1) ON CONFLICT (tenant_id) DO NOTHING", tenant
        )
        if archive is not None:
            files = await archive_entries_async(archive, tenant, batch.entries, received_at=received_at)
            out.archived = [f.key for f in files]
        result = await writer.append(batch.entries)
        out.logged, out.duplicate, out.read_only_counted = result.logged, result.duplicate, result.read_only_counted
        dead = [*batch.rejected, *(("read", r) for r in result.rejected)]
    else:
        dead = list(batch.rejected)
    out.rejected = [r for _, r in dead]
    if dead and not repeat:
        async with pool.acquire() as conn:
            await dead_letters(conn, [(tenant, stage, r) for stage, r in dead])
        for _, r in dead:
            log.warning("rejected %s", r.describe())  # reasons and locators only: never the raw record
    return out
