"""The byte layer: from a binary stream to text chunks, gunzipping when the content (not the name) says gzip.

Case R02: a `.json.gz` object can hold plain JSON (an HTTP layer inflated it on the way) and gzip bytes can sit
under a `.json` name, so the only thing trusted is the magic `1f 8b` at the start of the bytes.

Text is decoded as UTF-8 chunk by chunk. Bytes that are not valid UTF-8 are kept as lone surrogates
(U+DC80..U+DCFF, Python's "surrogateescape"): JSON decoding still goes through, and the text layer rejects only
the record that contains them, giving back the original bytes in `Rejected.raw`.
"""

from __future__ import annotations

import codecs
import io
import zlib
from collections.abc import Iterator
from typing import BinaryIO

GZIP_MAGIC = b"\x1f\x8b"
_GZIP_WBITS = 16 + zlib.MAX_WBITS  # gzip header + trailer, not raw deflate or zlib
_RAW_HEAD = 64 * 1024
_MAX_EXPANSION = 4  # per read, at most this many chunk sizes of output are produced (guards against gzip bombs)



def inflates_beyond(data: bytes, cap: int) -> bool:
    """Whether gzip `data` inflates, every member as the readers take them, to more than `cap` bytes. The output is
    counted and dropped, so asking costs no memory; plain or corrupt input is False (the reader judges it)."""
    if data[:2] != GZIP_MAGIC:
        return False
    total = 0
    for out in TextSource(io.BytesIO(data), 256 * 1024)._content():
        total += len(out)
        if total > cap:
            return True
    return False

class TextSource:
    """Pulls text out of `stream`. After `chunks()` is exhausted, `failure` says why the bytes stopped early
    (truncated or corrupt gzip), or is None when the input ended cleanly."""

    def __init__(self, stream: BinaryIO, chunk_bytes: int) -> None:
        self._stream = stream
        self._chunk = max(1, chunk_bytes)
        self.failure: str | None = None
        self.failure_offset = 0  # byte offset in the (compressed) input where it went wrong
        self.compressed = False
        self.bytes_in = 0  # bytes read from the stream
        self.bytes_out = 0  # bytes after gunzip
        self.head = b""  # first bytes of the (decompressed) content, for error messages
        self.raw_head = b""  # first bytes of the input as read (compressed or not), for Rejected.raw

    def _read(self) -> bytes:
        data = self._stream.read(self._chunk)
        if not data:
            return b""
        if len(self.raw_head) < _RAW_HEAD:
            self.raw_head += data[: _RAW_HEAD - len(self.raw_head)]
        self.bytes_in += len(data)
        return data

    def _content(self) -> Iterator[bytes]:
        first = self._read()
        # Some streams return fewer bytes than asked for: make sure the magic can be seen whole.
        while first and len(first) < 2:
            more = self._read()
            if not more:
                break
            first += more
        if not first:
            return
        if first[:2] == GZIP_MAGIC:
            self.compressed = True
            yield from self._gunzip(first)
            return
        yield first
        while data := self._read():
            yield data

    def _gunzip(self, data: bytes) -> Iterator[bytes]:
        limit = self._chunk * _MAX_EXPANSION
        inflater = zlib.decompressobj(_GZIP_WBITS)
        fed = False  # has the current gzip member received any byte yet?
        members = 1
        member_out = 0  # bytes produced by the current member
        while True:
            while data:
                fed = True
                try:
                    pending = data
                    while True:
                        out = inflater.decompress(pending, limit)
                        if out:
                            member_out += len(out)
                            yield out
                        pending = inflater.unconsumed_tail
                        # A full `limit` of output may leave more inside zlib even when all input was taken.
                        if not pending and len(out) < limit:
                            break
                except zlib.error as err:
                    if members > 1 and member_out == 0:
                        self._fail(
                            f"unexpected non-gzip bytes after the end of the gzip stream (by byte {self.bytes_in})"
                        )
                    else:
                        self._fail(f"corrupt gzip data at or before compressed byte {self.bytes_in}: {err}")
                    return
                if not inflater.eof:
                    break
                # Several gzip members may follow each other (still one valid gzip file); zero padding after the
                # last one is tolerated.
                data = inflater.unused_data or self._read()
                if not data:
                    return
                if not data.strip(b"\0"):
                    self._only_padding_left()
                    return
                inflater = zlib.decompressobj(_GZIP_WBITS)
                members += 1
                member_out = 0
                fed = False
            data = self._read()
            if not data:
                if fed and not inflater.eof:
                    self._fail(
                        f"truncated gzip: the compressed data ends at byte {self.bytes_in} before the gzip stream "
                        f"is complete ({self.bytes_out} bytes were decompressed)"
                    )
                return

    def _only_padding_left(self) -> None:
        """After the last gzip member: anything but zero bytes is reported, not silently dropped."""
        while data := self._read():
            if data.strip(b"\0"):
                self._fail(f"unexpected non-gzip bytes after the end of the gzip stream (by byte {self.bytes_in})")
                return

    def _fail(self, reason: str) -> None:
        self.failure = reason
        self.failure_offset = self.bytes_in

    def chunks(self) -> Iterator[tuple[str, bool]]:
        """Yield (text, dirty) pairs; `dirty` is True when the text holds surrogate-escaped invalid bytes."""
        carry = b""
        for data in self._content():
            self.bytes_out += len(data)
            if len(self.head) < 16:
                self.head += data[: 16 - len(self.head)]
            if carry:
                data = carry + data
            try:
                text, used = codecs.utf_8_decode(data, "strict", False)
                dirty = False
            except UnicodeDecodeError:
                text, used = codecs.utf_8_decode(data, "surrogateescape", False)
                dirty = True
            # An incomplete multi-byte sequence at the end of a chunk waits for the next chunk.
            carry = data[used:]
            yield text, dirty
        if carry:
            yield codecs.utf_8_decode(carry, "surrogateescape", True)[0], True
