"""The fast path for the ordinary case: a whole delivery file, `{"Records": [record, ...]}`, parsed at once.

Nearly every object in a CloudTrail bucket is such a file, a few kilobytes to a few megabytes. Parsing it whole
with orjson is about twice as fast as the streaming scanner (which calls the stdlib decoder element by element and
makes a generator step, a regex match and a locator per record), and it needs no resynchronisation logic because
it only ever accepts input the streaming reader would read without a single Rejected or Skipped item.

`plain_records` returns exactly the records the streaming reader would yield, in order (their locators are
"record 1", "record 2", ...), or None whenever that cannot be guaranteed - the caller then streams. None is
returned, without raising, for:

* a digest key (the streaming reader skips it by name);
* more than `Limits.record_bytes` of content after gunzip, so no single record can hit the size limit and memory
  stays bounded (orjson holds the whole text and its result);
* anything but one complete gzip member (or plain text): concatenated members, trailing bytes, truncation;
* content that is not exactly `{"Records": [...]}` (white space aside): another key, a second "Records" (which a
  whole-document parser would merge but the streaming one reads as another list), anything after the object;
* what orjson refuses where the stdlib decoder is lenient or different: invalid UTF-8, lone surrogate escapes,
  NaN / Infinity, numbers beyond a double, a byte order mark;
* an integer literal of 19 or more digits: orjson turns integers beyond 64 bits into floats where `json` keeps an
  exact int, so such input is left to the streaming reader (checked on the text, before parsing);
* any element that is not a bare record (an envelope, a string, an S3 notification).
"""

from __future__ import annotations

import re
import zlib
from typing import Any

import orjson

from schemas.cloudtrail.containers import GZIP_MAGIC
from schemas.cloudtrail.items import Limits

_GZIP_WBITS = 16 + zlib.MAX_WBITS
_RECORDS_FIRST = re.compile(rb'[ \t\n\r]*\{[ \t\n\r]*"Records"[ \t\n\r]*:[ \t\n\r]*\[')
_JSON_SPACE = b" \t\n\r"
_CLOSE_BRACE = ord("}")

# Long integer literals, found without a regex (too slow per byte): map digits to "0", the characters that may
# precede a JSON number (":", ",", "[" and white space) to ":", "-" to itself and everything else to "x", then
# look for ":" + 19 zeros (with or without a sign). A run of digits inside a string (an id) is preceded by a
# letter or a quote, so it does not send the file down the slow path; one that is (say "a: 1234...") only costs
# speed, never correctness.
def _number_shape(byte: int) -> int:
    char = chr(byte)
    if char in "0123456789":
        return ord("0")
    if char in ":,[ \t\n\r":
        return ord(":")
    return byte if char == "-" else ord("x")


_NUMBER_SHAPE = bytes(_number_shape(b) for b in range(256))
_LONG_INT = b":" + b"0" * 19
_LONG_NEGATIVE_INT = b":-" + b"0" * 19


def _content(data: bytes, limit: int) -> bytes | None:
    """The bytes after gunzip (when the magic says gzip), or None unless they are one clean member within limit."""
    if data[:2] != GZIP_MAGIC:
        return data if len(data) <= limit else None
    inflater = zlib.decompressobj(_GZIP_WBITS)
    try:
        text = inflater.decompress(data, limit + 1)
    except zlib.error:
        return None
    if not inflater.eof or inflater.unused_data or inflater.unconsumed_tail or len(text) > limit:
        return None
    return text


def _is_plain_record(obj: object) -> bool:
    # The same test the streaming scanner applies to each array element before yielding it as a RawRecord.
    return type(obj) is dict and ("eventVersion" in obj or "eventID" in obj) and "s3" not in obj


def plain_records(data: bytes, limits: Limits) -> list[dict[str, Any]] | None:
    """The records of an ordinary delivery file (`data` as stored: gzipped or not), or None (see module doc)."""
    text = _content(data, limits.record_bytes)
    if text is None:
        return None
    head = _RECORDS_FIRST.match(text)
    end = len(text)
    while end and text[end - 1] in _JSON_SPACE:
        end -= 1
    if head is None or not end or text[end - 1] != _CLOSE_BRACE:
        return None
    shape = text.translate(_NUMBER_SHAPE)
    if _LONG_INT in shape or _LONG_NEGATIVE_INT in shape:
        return None
    # Only what lies between `{"Records":` and the final `}` is parsed, and it must be one JSON array: so the
    # object has no other key (a second "Records" included, which a whole-object parse would silently merge).
    try:
        records = orjson.loads(memoryview(text)[head.end() - 1 : end - 1])
    except orjson.JSONDecodeError:
        return None
    if type(records) is not list or not all(map(_is_plain_record, records)):
        return None
    return records
