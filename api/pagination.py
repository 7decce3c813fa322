"""Opaque keyset cursors and the `{items, next_cursor}` page shape.

A cursor is base64url(JSON [kind, ...key]) of the last row a page returned. It is opaque to clients (they pass it
back unchanged) and tagged with the list it belongs to, so a cost-events cursor is refused by /v1/anomalies.
It carries no tenant: the tenant always comes from the token, so a cursor can never widen what a caller sees.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

import orjson
from fastapi import Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from projections.queries import MAX_PAGE, NameKey, TimeKey
from schemas.codec import dumps
from schemas.events import Dd0cError

T = TypeVar("T")

DEFAULT_PAGE = 50

Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description=f"page size, at most {MAX_PAGE}")]
Cursor = Annotated[
    str | None, Query(description="`next_cursor` of the previous page; omit for the first (newest) page")
]


class CodecJSONResponse(JSONResponse):
    """JSON through schemas.codec, like every JSON that leaves the process: NaN/Infinity raise instead of being sent."""

    def render(self, content: Any) -> bytes:
        return dumps(content).encode()


class PageResponse(JSONResponse):
    """The hot list pages (up to 500 anomalies or cost events): orjson straight from the rows.

    codec.dumps walks every value in Python first to refuse NaN/Infinity - 10 ms for a 500-item page. Here that
    guarantee comes from where the values come from: projections.queries turns every float read from a column
    into a finite float or None (`dollars`), and values decoded from JSONB cannot be non-finite (the JSON codec
    refuses NaN on the way in and out). Datetimes are written as ISO-8601 with `Z`, as the codec writes them.
    """

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_UTC_Z)


class InvalidCursor(Dd0cError):
    """A cursor that was not produced by this list (tampered, truncated, or from another endpoint)."""


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        default=None, description="pass as `cursor` to get the next page; null on the last page"
    )


def encode_cursor(kind: str, *key: str) -> str:
    raw = orjson.dumps([kind, *key])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str, parts: int) -> list[str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error, orjson.JSONDecodeError):
        raise InvalidCursor("malformed cursor") from None
    if (
        not isinstance(value, list)
        or len(value) != parts + 1
        or value[0] != kind
        or not all(isinstance(v, str) for v in value[1:])
    ):
        raise InvalidCursor(f"not a cursor of this list ({kind})")
    return value[1:]


def time_cursor(kind: str, cursor: str | None) -> TimeKey | None:
    if cursor is None:
        return None
    when, row_id = decode_cursor(kind, cursor, 2)
    try:
        parsed = datetime.fromisoformat(when)
        uuid.UUID(row_id)
    except ValueError:
        raise InvalidCursor("malformed cursor") from None
    if parsed.tzinfo is None:
        raise InvalidCursor("malformed cursor")
    return TimeKey(parsed, row_id)


def name_cursor(kind: str, cursor: str | None) -> NameKey | None:
    if cursor is None:
        return None
    account_id, name = decode_cursor(kind, cursor, 2)
    return NameKey(account_id, name)


def page(
    kind: str, rows: Sequence[dict[str, Any]], limit: int, key: tuple[str, str]
) -> tuple[list[dict[str, Any]], str | None]:
    """`rows` was fetched with limit + 1: keep `limit`, and if there was more, point the cursor at the last kept."""
    items = list(rows[:limit])
    if len(rows) <= limit or not items:
        return items, None
    last = items[-1]
    values = [last[k].isoformat() if isinstance(last[k], datetime) else str(last[k]) for k in key]
    return items, encode_cursor(kind, *values)
