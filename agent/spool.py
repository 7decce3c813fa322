"""The on-disk spool: unacknowledged batches and how far each source has been read.

Write before send, delete on ack. A batch is written to its own file (batches/<seq>.batch: written, fsynced,
renamed into place), then recorded - with the read positions it advances - in ONE SQLite transaction (WAL,
synchronous=FULL: durable at commit). After a crash at any point either the batch is recorded and its sources'
positions cover it, or neither (a batch file nobody recorded is an orphan, removed at the next start): a
restarted agent resends what is recorded (same batch ids, which the server deduplicates) and reads each source on
from its position, never making a second copy. Acks are recorded without waiting for the disk (synchronous=NORMAL
on the network loop's connection): an ack lost to a power cut only means the batch is sent again, and deduplicated.
Payloads live in files, not in SQLite, because a 2 MB blob costs SQLite a WAL write, a checkpoint copy and the
freeing of its pages again on delete - some 40 ms a batch here, against 1 file write + fsync.

Tables: `meta` (agent id, next batch sequence), `batches` (seq, batch id, records, bytes), `batch_sources`
(which sources each batch holds records of), `sources` (key, items read into the spool, complete = read to the
end, acked = complete and none of its batches still waiting). Each thread opens its own `Spool` on the directory.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

FILE_NAME = "spool.sqlite3"
BATCH_SUFFIX = ".batch"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS batches (seq INTEGER PRIMARY KEY, batch_id TEXT NOT NULL, records INTEGER NOT NULL,
                                    bytes INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS batch_sources (seq INTEGER NOT NULL, key TEXT NOT NULL, PRIMARY KEY (seq, key));
CREATE INDEX IF NOT EXISTS batch_sources_key ON batch_sources (key);
CREATE TABLE IF NOT EXISTS sources (key TEXT PRIMARY KEY, items INTEGER NOT NULL DEFAULT 0,
                                    complete INTEGER NOT NULL DEFAULT 0, acked INTEGER NOT NULL DEFAULT 0);
"""


@dataclass(frozen=True, slots=True)
class Position:
    items: int = 0  # reader items (records, rejects, skips) of the source already in the spool, in order
    complete: bool = False  # the reader reached its end
    acked: bool = False  # complete, and every batch with its records acknowledged


@dataclass(frozen=True, slots=True)
class Spooled:
    seq: int
    batch_id: str
    records: int


class Spool:
    """`Spool(dir)` for the reader thread (spools batches); `Spool(dir, sync_acks=False)` for the network loop."""

    def __init__(self, directory: Path, *, sync_acks: bool = True) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / FILE_NAME
        self.batches = directory / "batches"
        self.batches.mkdir(exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL" if sync_acks else "PRAGMA synchronous=NORMAL")
        with self._tx():
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('agent_id', ?)", (uuid.uuid4().hex,))
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('next_seq', '1')")
        self.agent_id = str(self._one("SELECT value FROM meta WHERE key = 'agent_id'"))

    def close(self) -> None:
        self._db.close()

    def _tx(self) -> _Transaction:
        return _Transaction(self._db)

    def _one(self, sql: str, *args: object) -> object:
        row = self._db.execute(sql, args).fetchone()
        return row[0] if row else None

    # --- batches ---------------------------------------------------------------------------------------------

    def next_seq(self) -> int:
        return int(str(self._one("SELECT value FROM meta WHERE key = 'next_seq'")))

    def batch_id(self, seq: int) -> str:
        return f"{self.agent_id}:{seq}"

    def _file(self, seq: int) -> Path:
        return self.batches / f"{seq:012d}{BATCH_SUFFIX}"

    def put(self, seq: int, payload: bytes, records: int, positions: Mapping[str, Position]) -> Spooled:
        """Spool batch `seq` (= next_seq(), its payload built with batch_id(seq)) and advance its sources."""
        expected = self.next_seq()
        if seq != expected:  # one writer only (the reader thread): anything else is a bug
            raise RuntimeError(f"spool: batch {seq} is not the next one ({expected})")
        final = self._file(seq)
        partial = final.with_suffix(".partial")
        with partial.open("wb") as out:
            out.write(payload)
            out.flush()
            os.fsync(out.fileno())
        partial.replace(final)
        _fsync_directory(self.batches)  # the new name survives a power cut too
        with self._tx():
            self._db.execute("UPDATE meta SET value = ? WHERE key = 'next_seq'", (str(seq + 1),))
            self._db.execute("INSERT INTO batches VALUES (?, ?, ?, ?)", (seq, self.batch_id(seq), records,
                                                                          len(payload)))
            for key, position in positions.items():
                self._db.execute("INSERT INTO batch_sources VALUES (?, ?)", (seq, key))
                self._advance(key, position)
        return Spooled(seq, self.batch_id(seq), records)

    def remove_orphans(self) -> int:
        """Batch files no transaction recorded (a crash between the file and the commit): never sent, their
        records are read again from the recorded positions. Call at start, before the reader runs."""
        recorded = {self._file(b.seq).name for b in self.pending()}
        removed = 0
        for path in self.batches.iterdir():
            if path.name not in recorded:
                path.unlink(missing_ok=True)
                removed += 1
        return removed

    def pending(self) -> list[Spooled]:
        """Every spooled, unacknowledged batch, oldest first."""
        rows = self._db.execute("SELECT seq, batch_id, records FROM batches ORDER BY seq").fetchall()
        return [Spooled(int(seq), str(bid), int(n)) for seq, bid, n in rows]

    def payload(self, seq: int) -> bytes | None:
        try:
            return self._file(seq).read_bytes()
        except FileNotFoundError:  # acked meanwhile
            return None

    def unacked(self) -> int:
        return int(str(self._one("SELECT count(*) FROM batches")))

    def ack(self, seq: int) -> bool:
        """Drop an acknowledged batch; its sources become acked when nothing else of theirs waits. False when the
        batch was not spooled (an ack for a batch acked before)."""
        with self._tx():
            keys = [k for (k,) in self._db.execute("SELECT key FROM batch_sources WHERE seq = ?", (seq,))]
            gone = self._db.execute("DELETE FROM batches WHERE seq = ?", (seq,)).rowcount
            self._db.execute("DELETE FROM batch_sources WHERE seq = ?", (seq,))
            for key in keys:
                self._settle(key)
        self._file(seq).unlink(missing_ok=True)
        return bool(gone)

    # --- sources ---------------------------------------------------------------------------------------------

    def position(self, key: str) -> Position:
        row = self._db.execute("SELECT items, complete, acked FROM sources WHERE key = ?", (key,)).fetchone()
        return Position(int(row[0]), bool(row[1]), bool(row[2])) if row else Position()

    def complete(self, key: str, items: int) -> None:
        """The reader reached the end of `key` with nothing of it left to spool (its last batch went earlier)."""
        with self._tx():
            self._advance(key, Position(items, True))

    def counts(self) -> dict[str, int]:
        row = self._db.execute(
            "SELECT count(*), coalesce(sum(complete), 0), coalesce(sum(acked), 0) FROM sources"
        ).fetchone()
        return {"sources": int(row[0]), "complete": int(row[1]), "acked": int(row[2]), "unacked_batches":
                self.unacked()}

    def _advance(self, key: str, position: Position) -> None:
        self._db.execute(
            "INSERT INTO sources (key, items, complete) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET"
            " items = max(items, excluded.items), complete = max(complete, excluded.complete)",
            (key, position.items, int(position.complete)),
        )
        self._settle(key)

    def _settle(self, key: str) -> None:
        self._db.execute(
            "UPDATE sources SET acked = 1 WHERE key = ? AND complete = 1 AND acked = 0"
            " AND NOT EXISTS (SELECT 1 FROM batch_sources WHERE batch_sources.key = sources.key)",
            (key,),
        )


def _fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        with contextlib.suppress(OSError):  # not every filesystem lets a directory be fsynced
            os.fsync(fd)
    finally:
        os.close(fd)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on an exception): the spool's only way to write."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")
