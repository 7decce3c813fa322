"""JSON for the log, the projections and the wire.

One serializer for everything that leaves the process, so that NaN / Infinity can never reach Postgres JSONB,
Redis or a websocket (case R18, R23): it raises before any query is sent.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from datetime import datetime
from enum import Enum
from typing import Any

import orjson

from schemas.events import Dd0cError


class NotJsonSafe(Dd0cError):
    """A value that JSON cannot hold (NaN, Infinity) was about to be written."""


def to_jsonable(obj: Any) -> Any:
    """Dataclasses, enums, sets, tuples and datetimes become plain JSON values (datetimes as ISO-8601 UTC)."""
    if obj is None or isinstance(obj, (str, bool, int)):
        return obj
    if isinstance(obj, float):
        if not math.isfinite(obj):
            raise NotJsonSafe(f"refusing to serialise non-finite float {obj!r}")
        return obj
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, datetime):
        return obj.isoformat().replace("+00:00", "Z")
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (frozenset, set)):
        return sorted(to_jsonable(v) for v in obj)
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "backslashreplace")
    raise NotJsonSafe(f"cannot serialise {type(obj).__name__}")


def dumps(obj: Any) -> str:
    """Serialise to a JSON string; raises NotJsonSafe on NaN/Infinity anywhere inside."""
    return orjson.dumps(to_jsonable(obj), option=orjson.OPT_PASSTHROUGH_DATETIME).decode()


def loads(data: str | bytes) -> Any:
    return orjson.loads(data)
