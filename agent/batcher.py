"""The reader thread: sources -> CloudTrail reader -> batches -> spool, held back by the flow-control window.

One batch holds one or more objects, or a slice of a big one. An object up to `whole_file_bytes` - nearly every
CloudTrail delivery file - becomes one part holding its bytes as they are (gzipped or not): the agent does not
parse it, and the server reads it with the same reader as `dd0c-cost ingest`, per file. A bigger object is
streamed through that reader here and split: each record re-encoded as JSON into a part's `{"Records":[...]}`
document next to its locator, with the reader's rejections and skips riding along. A batch is cut at
`batch_records` split records or `batch_bytes` bytes, and at the end of every look at the sources (so a trickle
of files is not held back).

Before a batch is spooled, `Window.acquire` waits until fewer than `max_unacked` batches are unacknowledged:
a slow or absent server stops the reading, and memory stays at about one batch being built.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

import orjson

from agent.sources import SourceObject
from agent.spool import Position, Spool
from schemas import cloudtrail
from schemas.ingest_pb2 import Batch, Part, Reject

log = logging.getLogger("dd0c.agent")


class Source(Protocol):
    def scan(self) -> Iterable[SourceObject]: ...


class Window:
    """At most `limit` batches spooled and not yet acknowledged (shared by the reader thread and the network loop)."""

    def __init__(self, limit: int, unacked: int) -> None:
        self.limit = limit
        self.unacked = unacked
        self._cond = threading.Condition()

    def acquire(self, stop: threading.Event) -> bool:
        """Take a slot for one more batch; False when stopping instead."""
        with self._cond:
            while self.unacked >= self.limit and not stop.is_set():
                self._cond.wait(0.5)  # wakes on release; the timeout only lets it notice `stop`
            if stop.is_set():
                return False
            self.unacked += 1
            return True

    def release(self) -> None:
        with self._cond:
            self.unacked = max(0, self.unacked - 1)
            self._cond.notify_all()


def encode_record(record: object) -> bytes:
    """One record as JSON. orjson refuses what Python's json reads but is not strict JSON (integers over 64 bits,
    lone surrogates, NaN): those go through json.dumps, whose output the server's reader parses back the same."""
    try:
        return orjson.dumps(record)
    except (TypeError, ValueError):
        return json.dumps(record).encode("ascii")


@dataclass
class _PartBuilder:
    source: str
    whole: bytes | None = None  # the object as it is, for the server to read; else the records below
    records: list[bytes] = field(default_factory=list)
    locators: list[str] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    delivered_at: float = 0.0

    def build(self) -> Part:
        if self.whole is not None:
            return Part(source=self.source, document=self.whole, delivered_at=self.delivered_at)
        document = b'{"Records":[' + b",".join(self.records) + b"]}" if self.records else b""
        return Part(source=self.source, document=document, locators=self.locators, rejects=self.rejects,
                    skipped=dict(self.skipped), delivered_at=self.delivered_at)


class Batcher:
    def __init__(
        self, spool: Spool, window: Window, stop: threading.Event, *, batch_records: int, batch_bytes: int,
        whole_file_bytes: int, on_spooled: Callable[[], None],
    ) -> None:
        self.spool = spool
        self.window = window
        self.stop = stop
        self.batch_records = batch_records
        self.batch_bytes = batch_bytes
        self.whole_file_bytes = whole_file_bytes
        self.on_spooled = on_spooled
        self._parts: list[_PartBuilder] = []
        self._positions: dict[str, Position] = {}
        self._after: list[Callable[[], None]] = []  # `done` callbacks of objects completed in this batch
        self._records = 0
        self._bytes = 0
        self.spooled_batches = 0
        self.whole_objects = 0  # objects sent as they are
        self.split_objects = 0  # objects read and split here
        self.read_records = 0  # records of split objects

    def look(self, sources: Iterable[Source]) -> None:
        """One pass over every source; what is read goes to the spool before it returns."""
        for source in sources:
            for obj in source.scan():
                self.read(obj)
                if self.stop.is_set():
                    return
        self.flush()

    def read(self, obj: SourceObject) -> None:
        """Read `obj` from its position in the spool to its end (or until stopping)."""
        position = self.spool.position(obj.key)
        building = self._positions.get(obj.key)
        if building is not None and building.complete:  # named twice (two notifications): already in this batch
            if obj.done:
                self._after.append(obj.done)
            return
        if position.complete:
            if obj.done:
                obj.done()
            return
        if position.items:
            log.info("%s: resuming after %d item(s) already spooled", obj.key, position.items)
        # An object split before its restart is split again (its position counts items), whatever its size.
        content = obj.open(-1 if position.items else self.whole_file_bytes)
        if isinstance(content, bytes):
            self._add_whole(obj, content)
            return
        self.split_objects += 1
        count = 0
        for item in content:
            count += 1
            if count <= position.items:
                continue
            self._add(obj.key, item, count, obj.delivered_at)
            if self.stop.is_set():
                return  # mid-object: its position is in the spool with the batches already cut
        self._finish(obj, count)

    def _add_whole(self, obj: SourceObject, data: bytes) -> None:
        self._parts.append(_PartBuilder(obj.key, whole=data, delivered_at=obj.delivered_at))
        self._bytes += len(data) + len(obj.key)
        self.whole_objects += 1
        self._positions[obj.key] = Position(1, complete=True)
        if obj.done:
            self._after.append(obj.done)
        if self._bytes >= self.batch_bytes:
            self.flush()

    def _add(self, key: str, item: cloudtrail.Item, count: int, delivered_at: float = 0.0) -> None:
        if not self._parts or self._parts[-1].source != key:
            self._parts.append(_PartBuilder(key, delivered_at=delivered_at))
        part = self._parts[-1]
        if isinstance(item, cloudtrail.RawRecord):
            data = encode_record(item.record)
            part.records.append(data)
            part.locators.append(item.locator)
            self._records += 1
            self._bytes += len(data) + len(item.locator) + 8
            self.read_records += 1
        elif isinstance(item, cloudtrail.Rejected):
            log.warning("rejected %s", item.describe())
            part.rejects.append(Reject(reason=item.reason, raw=bytes(item.raw), locator=item.locator))
            self._bytes += len(item.raw) + len(item.reason) + 16
        else:
            log.info("%s: skipped (%s): %s", key, item.kind, item.reason)
            part.skipped[item.kind] += 1
        self._positions[key] = Position(count)
        if self._records >= self.batch_records or self._bytes >= self.batch_bytes:
            self.flush()

    def _finish(self, obj: SourceObject, count: int) -> None:
        if obj.key in self._positions:  # its last items are in the batch being built: completes with it
            self._positions[obj.key] = Position(count, complete=True)
            if obj.done:
                self._after.append(obj.done)
            return
        self.spool.complete(obj.key, count)
        if obj.done:
            obj.done()

    def flush(self) -> None:
        """Spool the batch being built (waiting for a slot in the window first)."""
        if not self._parts:
            return
        if not self.window.acquire(self.stop):
            return  # stopping: what is not spooled is read again after a restart, from the spooled positions
        seq = self.spool.next_seq()
        batch = Batch(batch_id=self.spool.batch_id(seq), sequence=seq, parts=[p.build() for p in self._parts])
        self.spool.put(seq, batch.SerializeToString(), self._records, self._positions)
        self.spooled_batches += 1
        after = self._after
        self._parts, self._positions, self._after, self._records, self._bytes = [], {}, [], 0, 0
        self.on_spooled()
        for done in after:
            done()
