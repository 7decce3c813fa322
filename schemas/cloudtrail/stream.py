"""The text layer: find CloudTrail records in a stream of text without holding the whole input.

Streamed element by element, from a sliding buffer, with the C JSON scanner (`scan_once`, what `json.loads`
uses inside): `{"Records": [...]}` and `{"Events": [...]}` (when the list is the first key), bare arrays, NDJSON
and objects concatenated with no delimiter (Kinesis Firehose). Every other top-level value (a single record, an
EventBridge envelope, `{"NextToken": .., "Events": [..]}`) is decoded whole, up to `Limits.document_bytes`.

When an element does not decode, the reader asks whether the text may simply be cut by the buffer (the error is
at the end of what is buffered, or a string is not yet closed): then it reads more. Otherwise the JSON is broken:
the element is Rejected and the reader resynchronises at the next element that decodes to something it
recognises (the next `,{` inside an array, the next line or `}{` at the top level). When nothing can be found the
rest of the input is Rejected once, with the offset where it broke.

Offsets in reasons and locators ("byte 10233", "line 40") count bytes / lines of the decoded content, i.e. after
gunzip. Record numbers ("record 12") are 1-based positions in their array.
"""

from __future__ import annotations

import json
import re
from collections.abc import Generator, Iterator
from typing import Any

from schemas.cloudtrail.containers import TextSource
from schemas.cloudtrail.envelope import looks_like_record, recognised, unwrap
from schemas.cloudtrail.items import EMPTY, Item, Limits, RawRecord, Skipped
from schemas.events import Dd0cError, Rejected

_WS = re.compile(r"[ \t\n\r]*")
_DELIM = re.compile(r"[ \t\n\r]*([,\]])[ \t\n\r]*")
_LIST_OBJECT = re.compile(r'\{[ \t\n\r]*"(Records|Events)"[ \t\n\r]*:[ \t\n\r]*\[')
_BAD = re.compile("[\udc80-\udcff]")  # invalid input bytes, kept by the surrogateescape decoder
_ARRAY_NEXT = re.compile(r",[ \t\n\r]*\{")  # where the next array element may start
_TOP_NEXT = re.compile(r"[\n}][ \t\r]*\{")  # where the next line / concatenated object may start
_STRING_STOP = re.compile(r'["\\]')
_STRUCTURE_STOP = re.compile(r'["{}\[\]]')
_NUMBER_PART = re.compile(r"-?[0-9]*\.?[0-9]*(?:[eE][-+]?[0-9]*)?")
_SCALAR_END = re.compile(r"[ \t\n\r,\]}]")
_JSON_START = set('{["-0123456789tfn')
_MARGIN = 32  # an error this close to the end of the buffer may just mean "read more"
_LISTS_LOOKAHEAD = 512  # characters needed to see `{ "Records" : [`

Emit = Generator[Item, None, bool]  # yields items, returns whether reading can go on


class _Broken(Exception):
    """Internal: the value at the scan position did not decode (never leaves this module)."""

    def __init__(self, pos: int, message: str, *, eof: bool = False, too_big: bool = False) -> None:
        super().__init__(message)
        self.pos = pos
        self.message = message
        self.eof = eof
        self.too_big = too_big


def _cut_at_end(buf: str, err_pos: int, message: str) -> bool:
    """At the end of the input: does this decode error mean the JSON was cut off (rather than broken)?"""
    if message.startswith("Unterminated string"):
        return True
    rest = buf[err_pos:].strip()
    if not rest or rest.startswith("\\u"):
        return True
    return any(literal.startswith(rest) for literal in ("true", "false", "null")) or bool(_NUMBER_PART.fullmatch(rest))


def _is_plain_record(obj: object) -> bool:
    # The hot path: nearly every element of a delivery file is a bare record.
    return type(obj) is dict and ("eventVersion" in obj or "eventID" in obj) and "s3" not in obj


class Scanner:
    """Reads one input (one file, one object, one pushed body) and yields its items in order."""

    def __init__(self, text: TextSource, source: str, limits: Limits) -> None:
        self.text = text
        self.source = source
        self.limits = limits
        self._chunks = text.chunks()
        self._scan = json.JSONDecoder().scan_once
        self.buf = ""
        self.pos = 0
        self.eof = False
        self.dirty = False  # the buffer holds invalid (surrogate-escaped) bytes
        # Where buf[0] sits in the whole decoded input, and a forward-only cache for positions inside buf.
        self._base_bytes = 0
        self._base_line = 1
        self._prev_char = "\n"  # the character just before buf[0]
        self._mark = (0, 0, 1)  # (position in buf, byte offset, line number)
        self._failure_reported = False

    # ---- buffer -------------------------------------------------------------------------------------------

    def fill(self, keep: int, want: int = 1) -> bool:
        """Forget buf[:keep] and append at least `want` more characters (positions shift down by `keep`).

        Returns False, changing nothing, when the input has ended."""
        if self.eof:
            return False
        parts: list[str] = []
        got = 0
        while got < want:
            chunk = next(self._chunks, None)
            if chunk is None:
                self.eof = True
                break
            text, dirty = chunk
            if text:
                parts.append(text)
                got += len(text)
                self.dirty = self.dirty or dirty
        if not parts:
            return False
        if keep:
            self._forget(keep)
        self.buf = self.buf[keep:] + "".join(parts)
        self.pos -= keep
        if self.dirty:
            self.dirty = _BAD.search(self.buf) is not None
        return True

    def _forget(self, keep: int) -> None:
        byte, line = self._offsets(keep)
        self._base_bytes, self._base_line = byte, line
        self._prev_char = self.buf[keep - 1]
        self._mark = (0, byte, line)

    def _offsets(self, pos: int) -> tuple[int, int]:
        """(byte offset, line number) of buf[pos] in the decoded input."""
        mark_pos, mark_byte, mark_line = self._mark
        if pos < mark_pos:
            mark_pos, mark_byte, mark_line = 0, self._base_bytes, self._base_line
        buf = self.buf
        pos = min(pos, len(buf))
        if buf.isascii():
            byte = mark_byte + pos - mark_pos
        else:
            byte = mark_byte + len(buf[mark_pos:pos].encode("utf-8", "surrogateescape"))
        line = mark_line + buf.count("\n", mark_pos, pos)
        self._mark = (pos, byte, line)
        return byte, line

    def _skip_ws(self) -> bool:
        """Move to the next non-blank character, reading more as needed. False at the end of the input."""
        while True:
            end = _WS.match(self.buf, self.pos).end()
            if end < len(self.buf):
                self.pos = end
                return True
            self.pos = end
            if not self.fill(end):
                return False

    def _drain(self) -> None:
        """Give up on the rest: read it to the end (so gzip truncation is still noticed) without keeping it."""
        for _ in self._chunks:
            pass
        self.eof = True
        self.buf, self.pos = "", 0

    def _raw(self, buf: str, start: int, end: int | None = None) -> bytes:
        cap = self.limits.raw_bytes
        stop = len(buf) if end is None else end
        return buf[start : min(stop, start + cap)].encode("utf-8", "surrogateescape")[:cap]

    def _where(self, pos: int) -> str:
        """A top-level value's locator: its line when it starts one (NDJSON), else its byte offset."""
        byte, line = self._offsets(pos)
        k = pos
        while k > 0 and self.buf[k - 1] in " \t\r":
            k -= 1
        previous = self.buf[k - 1] if k > 0 else self._prev_char
        return f"line {line}" if previous == "\n" else f"byte {byte}"

    # ---- values -------------------------------------------------------------------------------------------

    def _value(self, limit: int) -> tuple[Any, int]:
        """Decode the value at self.pos, reading more while it may just be cut by the buffer."""
        while True:
            buf, start = self.buf, self.pos
            try:
                return self._scan(buf, start)
            except StopIteration as stop:
                err_pos, message = int(stop.value), "expected a JSON value"
            except json.JSONDecodeError as err:
                err_pos, message = err.pos, err.msg
            except RecursionError:  # the C scanner recurses per nesting level
                raise _Broken(start, "JSON nested too deeply to decode") from None
            if err_pos < len(buf) - _MARGIN and not message.startswith("Unterminated string"):
                raise _Broken(err_pos, message)
            size = len(buf) - start
            if size > limit:
                raise _Broken(start, message, too_big=True)
            want = max(1, min(max(self.limits.chunk_bytes, size), limit + 1 - size))
            if not self.fill(start, want):
                if _cut_at_end(buf, err_pos, message):
                    raise _Broken(err_pos, message, eof=True)
                raise _Broken(err_pos, message)  # not cut: junk that happens to sit near the end

    def _element(self, obj: object, buf: str, start: int, end: int, where: str) -> Iterator[Item]:
        """Everything one decoded value turns into (records, skips, rejections)."""
        if end - start > self.limits.record_bytes and (not isinstance(obj, dict) or looks_like_record(obj)):
            yield Rejected(
                reason=f"record larger than the {self.limits.record_bytes} byte limit ({end - start} bytes)",
                raw=self._raw(buf, start, end),
                source=self.source,
                locator=where,
            )
        elif self.dirty and _BAD.search(buf, start, end) is not None:
            bad_at = self._offsets(_BAD.search(buf, start, end).start())[0]
            yield Rejected(
                reason=f"invalid UTF-8 bytes at byte {bad_at}; only this record is rejected",
                raw=self._raw(buf, start, end),
                source=self.source,
                locator=where,
            )
        elif _is_plain_record(obj):
            yield RawRecord(record=obj, locator=where)  # type: ignore[arg-type]
        else:
            yield from unwrap(obj, self.source, where, lambda: self._raw(buf, start, end))

    # ---- the input as a whole -----------------------------------------------------------------------------

    def items(self) -> Iterator[Item]:
        if not self.fill(0) or not self._skip_leading():
            yield self._nothing()
            return
        first = True
        while True:
            before = (self._base_bytes, self.pos)
            c = self.buf[self.pos]
            if first and c not in _JSON_START:
                yield self._not_json()
                return
            if c == "{" and self._list_object_ahead():
                yield from self._list_object(first)
            elif c == "[":
                yield from self._array("" if first else self._where(self.pos) + " ", "record")
            else:
                yield from self._top_value(first)
            first = False
            if (self._base_bytes, self.pos) == before and not self.eof:
                raise Dd0cError(
                    f"CloudTrail reader made no progress at byte {self._offsets(self.pos)[0]} of {self.source}"
                )
            if not self._skip_ws():
                break
        if self.text.failure and not self._failure_reported:
            yield self._failure(self.pos, "")

    def _skip_leading(self) -> bool:
        if self.buf.startswith("\ufeff"):  # a UTF-8 byte order mark is not content
            self.pos = 1
        return self._skip_ws()

    def _nothing(self) -> Item:
        if self.text.failure:
            return self._failure(0, "")
        size = self.text.bytes_in
        what = "empty input (0 bytes)" if size == 0 else f"no content ({size} bytes of whitespace or empty gzip)"
        return Skipped(kind=EMPTY, source=self.source, locator="", reason=what)

    def _not_json(self) -> Item:
        head = self.text.head[:8]
        shown = " ".join(f"{b:02x}" for b in head)
        if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
            hint = " (UTF-16 text; CloudTrail JSON is UTF-8)"
        elif head[:2] == b"PK":
            hint = " (a zip archive)"
        else:
            hint = ""
        where = (
            "gzip data whose content is not JSON" if self.text.compressed else "neither gzip (no 1f 8b magic) nor JSON"
        )
        reason = f"{where}: the content starts with bytes {shown}{hint}"
        item = Rejected(reason=reason, raw=self._raw(self.buf, 0), source=self.source, locator="byte 0")
        self._drain()
        if self.text.failure:
            self._failure_reported = True
        return item

    def _failure(self, pos: int, where: str) -> Rejected:
        """The byte layer stopped early (truncated / corrupt gzip): one Rejected for it, with what was cut.
        Nothing after it can be read, so the buffer is emptied."""
        self._failure_reported = True
        locator = where or f"byte {self.text.failure_offset}"
        raw = self._raw(self.buf, min(pos, len(self.buf))) or self.text.raw_head[: self.limits.raw_bytes]
        item = Rejected(
            reason=self.text.failure or "input ended early",
            raw=raw,
            source=self.source,
            locator=locator,
        )
        self._drain()
        return item

    def _ended(self, start: int, where: str, what: str) -> Rejected:
        """The input ended inside a value: one Rejected for the cut value; nothing is left to read."""
        if self.text.failure:
            return self._failure(start, where)
        byte = self._offsets(len(self.buf))[0]
        item = Rejected(
            reason=f"unexpected end of data at byte {byte}: {what}",
            raw=self._raw(self.buf, start),
            source=self.source,
            locator=where,
        )
        self._drain()
        return item

    # ---- shapes -------------------------------------------------------------------------------------------

    def _list_object_ahead(self) -> bool:
        if len(self.buf) - self.pos < _LISTS_LOOKAHEAD and not self.eof:
            self.fill(self.pos, _LISTS_LOOKAHEAD)
        return _LIST_OBJECT.match(self.buf, self.pos) is not None

    def _list_object(self, first: bool) -> Iterator[Item]:
        """`{"Records": [...] ...}`: stream the list, then read what follows it in the object."""
        prefix = "" if first else self._where(self.pos) + " "
        match = _LIST_OBJECT.match(self.buf, self.pos)
        assert match is not None
        self.pos = match.end() - 1
        label = "record" if match.group(1) == "Records" else "event"
        if (yield from self._array(prefix, label)):
            yield from self._object_tail(prefix)

    def _object_tail(self, prefix: str) -> Iterator[Item]:
        """After the streamed list: `}` or more `"key": value` pairs (e.g. NextToken). Lists of records under
        "Records"/"Events" are read too; other values are ignored."""
        where = f"{prefix}after the list".strip()
        while True:
            if not self._skip_ws():
                yield self._ended(self.pos, where, "the object holding the list is not closed")
                return
            c = self.buf[self.pos]
            if c == "}":
                self.pos += 1
                return
            if c != ",":
                yield from self._resync(self.pos, self.pos, f"unexpected {c!r} after the list", where, _TOP_NEXT)
                return
            self.pos += 1
            try:
                key = yield from self._pair_key(where)
                if key is None:
                    return
                value, end = self._value(self.limits.document_bytes)
            except _Broken as broken:
                yield from self._broken_top(broken, where)
                return
            if key in ("Records", "Events") and isinstance(value, list):
                buf, start = self.buf, self.pos
                yield from unwrap(
                    {key: value}, self.source, prefix.strip(), lambda b=buf, s=start, e=end: self._raw(b, s, e)
                )
            self.pos = end

    def _pair_key(self, where: str) -> Generator[Item, None, str | None]:
        if not self._skip_ws():
            yield self._ended(self.pos, where, "the object holding the list is not closed")
            return None
        key, end = self._value(self.limits.record_bytes)
        self.pos = end
        if not isinstance(key, str):
            raise _Broken(self.pos, "expected a property name")
        if not self._skip_ws():
            yield self._ended(self.pos, where, "the object holding the list is not closed")
            return None
        if self.buf[self.pos] != ":":
            raise _Broken(self.pos, "expected ':'")
        self.pos += 1
        if not self._skip_ws():
            yield self._ended(self.pos, where, "the object holding the list is not closed")
            return None
        return key

    def _array(self, prefix: str, label: str) -> Emit:
        """Stream an array's elements (self.pos is at its `[`). Returns True when the array was closed."""
        limit = self.limits.record_bytes
        scan = self._scan
        self.pos += 1
        count = 0
        expect_delimiter = False
        while True:
            buf, start = self.buf, self.pos
            if start >= len(buf) or buf[start] in " \t\n\r":
                if not self._skip_ws():
                    yield self._ended(self.pos, f"{prefix}{label} {count + 1}", "the array is not closed")
                    return False
                buf, start = self.buf, self.pos
            c = buf[start]
            if expect_delimiter:
                if c == ",":
                    self.pos = start + 1
                    expect_delimiter = False
                    continue
                if c == "]":
                    self.pos = start + 1
                    return True
                if c != "{":  # a missing comma between two objects is tolerated; anything else is broken
                    where = f"{prefix}after {label} {count}"
                    if not (yield from self._resync(start, start, f"unexpected {c!r} between elements", where)):
                        return False
                    continue
            elif c == "]":  # empty array, or a trailing comma
                self.pos = start + 1
                return True
            try:
                obj, end = scan(buf, start)
            except (StopIteration, json.JSONDecodeError, RecursionError):
                where = f"{prefix}{label} {count + 1}"
                try:
                    obj, end = self._value(limit)
                except _Broken as broken:
                    count += 1
                    if broken.eof:
                        yield self._ended(self.pos, where, f"{where} is cut off")
                        return False
                    if broken.too_big:
                        if not (yield from self._skip_too_big(where, limit)):
                            return False
                        expect_delimiter = True
                        continue
                    if not (yield from self._resync(self.pos, broken.pos, broken.message, where)):
                        return False
                    continue
                buf, start = self.buf, self.pos
            if end >= len(buf) and not self.eof and not isinstance(obj, dict | list | str):
                # A number or literal that ends with the buffer may go on in the next chunk: decode it again.
                self.fill(start)
                continue
            count += 1
            if _is_plain_record(obj) and not self.dirty and end - start <= limit:
                yield RawRecord(record=obj, locator=f"{prefix}{label} {count}")  # type: ignore[arg-type]
            else:
                yield from self._element(obj, buf, start, end, f"{prefix}{label} {count}")
            match = _DELIM.match(buf, end)
            if match is None:
                self.pos = end
                expect_delimiter = True
            elif match.group(1) == "]":
                self.pos = match.end()
                return True
            else:
                self.pos = match.end()
                expect_delimiter = False

    def _top_value(self, first: bool) -> Iterator[Item]:
        """One top-level value (a record, an envelope, an NDJSON line, one of concatenated objects)."""
        where = self._where(self.pos)
        try:
            obj, end = self._value(self.limits.document_bytes)
        except _Broken as broken:
            opening = self.buf[self.pos] if self.pos < len(self.buf) else ""
            if first and not broken.eof and not broken.too_big and broken.pos == self.pos and opening not in '{["':
                yield self._not_json()
                return
            yield from self._broken_top(broken, where)
            return
        buf, start = self.buf, self.pos
        yield from self._element(obj, buf, start, end, where)
        self.pos = end

    def _broken_top(self, broken: _Broken, where: str) -> Iterator[Item]:
        if broken.eof:
            yield self._ended(self.pos, where, f"the JSON value at {where} is cut off")
        elif broken.too_big:
            yield from self._skip_too_big(where, self.limits.document_bytes)
        else:
            yield from self._resync(self.pos, broken.pos, broken.message, where, _TOP_NEXT)

    # ---- recovery -----------------------------------------------------------------------------------------

    def _resync(
        self, start: int, err_pos: int, message: str, where: str, pattern: re.Pattern[str] = _ARRAY_NEXT
    ) -> Emit:
        """Broken JSON from `start`: reject it and carry on at the next value that decodes to something known.

        Returns True with self.pos at that value, or False after rejecting the rest of the input."""
        limit = self.limits.record_bytes
        self.pos = start
        byte = self._offsets(err_pos)[0]
        reason = f"invalid JSON at byte {byte} ({message})"
        head = self._raw(self.buf, start)
        search = start + 1
        while True:
            buf = self.buf
            match = pattern.search(buf, search)
            if match is not None:
                candidate = match.end() - 1
                verdict = self._try_candidate(buf, candidate)
                if verdict:
                    yield Rejected(
                        reason=reason, raw=self._raw(buf, start, candidate), source=self.source, locator=where
                    )
                    self.pos = candidate
                    return True
                if verdict is False or self.eof:
                    search = candidate + 1
                    continue
                search = match.start()  # it runs past the buffer: read more, then try it again
            else:
                search = max(search, len(buf) - _MARGIN)  # a match may straddle the end of the buffer
            if len(buf) - start > limit or not self.fill(start, self.limits.chunk_bytes):
                break
            search -= start
            start = self.pos
        if self.text.failure:
            # The input was cut (truncated gzip): say so rather than blame the JSON.
            reason = f"{reason}; then {self.text.failure}"
            self._failure_reported = True
        yield Rejected(
            reason=f"{reason}; no later record could be found, so the rest of the input is skipped",
            raw=head,
            source=self.source,
            locator=where,
        )
        self._drain()
        return False

    def _try_candidate(self, buf: str, candidate: int) -> bool | None:
        """True: a recognisable value starts here. False: not one. None: it runs past the end of the buffer."""
        try:
            obj, _end = self._scan(buf, candidate)
        except StopIteration as stop:  # the C scanner reports "expecting value" (even nested) this way
            err_pos, message = int(stop.value), "expected a JSON value"
        except json.JSONDecodeError as err:
            err_pos, message = err.pos, err.msg
        except RecursionError:
            return False
        else:
            return recognised(obj)
        if err_pos >= len(buf) - _MARGIN or message.startswith("Unterminated string"):
            return None
        return False

    def _skip_too_big(self, where: str, limit: int) -> Emit:
        """Skip a value too large to hold, by structure only (strings, brackets), keeping just its head."""
        head = self._raw(self.buf, self.pos)
        size = self._skip_value()
        if size is None:
            yield self._ended(self.pos, where, f"a value over the {limit} byte limit is cut off")
            return False
        yield Rejected(
            reason=f"record larger than the {limit} byte limit ({size} bytes); skipped",
            raw=head,
            source=self.source,
            locator=where,
        )
        return True

    def _skip_value(self) -> int | None:
        """Move self.pos past the value starting there without decoding it. Returns its size, None at EOF."""
        buf, i = self.buf, self.pos
        origin = i  # start of the value in the current buffer
        size = 0
        depth = 0
        in_string = False
        scalar = False
        first = buf[i]
        if first == '"':
            in_string, i = True, i + 1
        elif first in "{[":
            depth, i = 1, i + 1
        else:
            scalar = True
        while True:
            if scalar:
                match = _SCALAR_END.search(buf, i)
                if match is not None:
                    i = match.start()
                    break
            elif in_string:
                match = _STRING_STOP.search(buf, i)
                if match is not None:
                    if match.group() == "\\":
                        i = match.start() + 2
                        continue
                    in_string, i = False, match.end()
                    if depth == 0:
                        break
                    continue
            else:
                match = _STRUCTURE_STOP.search(buf, i)
                if match is not None:
                    ch, i = match.group(), match.end()
                    if ch == '"':
                        in_string = True
                    elif ch in "{[":
                        depth += 1
                    else:
                        depth -= 1
                        if depth == 0:
                            break
                    continue
            # Nothing more in the buffer: forget what was scanned and read on.
            keep = min(i, len(buf))
            self.pos = keep
            if not self.fill(keep, self.limits.chunk_bytes):
                return None
            size += keep - origin
            origin = 0
            buf, i = self.buf, i - keep
        self.pos = i
        return size + i - origin
