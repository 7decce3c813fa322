"""Frozen dataclass <-> JSON document for projection rows.

`from_jsonable` is the inverse of `schemas.codec.to_jsonable`: projection rows keep the whole dataclass in a
JSONB column; the runner reloads baselines and open resources from there after a restart, and the API can
rebuild an Anomaly or CostEvent from its row. `document` gives exactly what `to_jsonable` gives (NaN refused
included), but compiled once per dataclass from its type hints instead of inspecting every value - the runner
writes tens of thousands of rows a second and the generic walk was its largest cost. Both are driven by the
type hints, so a field added to `schemas.events` needs no change here.

Floats are coerced back to float: Postgres JSONB keeps numbers as `numeric`, and a float such as 1e16
comes back as the integer 10000000000000000 - the same value, so the Welford state round-trips exactly.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable, Mapping
from datetime import datetime
from enum import Enum
from functools import cache
from typing import Any, TypeVar

import orjson

from schemas.codec import NotJsonSafe, to_jsonable
from schemas.events import Dd0cError, LogEntry, Rejected

T = TypeVar("T")

Decoder = Callable[[Any], Any]


class RowDecodeError(Dd0cError):
    """A stored document does not fit the dataclass it should decode to (a schema drift bug)."""


def from_jsonable(cls: type[T], data: Any) -> T:
    """Rebuild `cls` (a dataclass from schemas.events) from the JSON value `to_jsonable` made of it."""
    try:
        return _decoder_for(cls)(data)  # type: ignore[no-any-return]
    except (KeyError, TypeError, ValueError) as exc:
        raise RowDecodeError(f"cannot decode {cls.__name__} from stored JSON: {exc}") from exc


def parse_time(value: str) -> datetime:
    """ISO-8601 as written by to_jsonable ("...Z"); always timezone-aware."""
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"naive datetime {value!r} in stored JSON")
    return parsed


def _identity(value: Any) -> Any:
    return value


def _to_float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected a number, got {value!r}")
    return float(value)


def _to_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {value!r}")
    return value


def _optional(inner: Decoder) -> Decoder:
    return lambda value: None if value is None else inner(value)


@cache
def _decoder_for(tp: Any) -> Decoder:
    # Called once per distinct type (cached); returns a closure that does no type inspection per value.
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any or tp is object:
        return _identity
    if origin in (typing.Union, types.UnionType):
        non_none = [a for a in args if a is not type(None)]
        if len(non_none) == 1:
            inner = _decoder_for(non_none[0])
            return _optional(inner) if len(non_none) < len(args) else inner
        return _identity  # a real union of several types: keep the JSON value as it is
    if origin is frozenset or origin is set:
        item = _decoder_for(args[0]) if args else _identity
        kind = frozenset if origin is frozenset else set
        return lambda value: kind(item(v) for v in value)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            item = _decoder_for(args[0])
            return lambda value: tuple(item(v) for v in value)
        items = [_decoder_for(a) for a in args]
        return lambda value: tuple(d(v) for d, v in zip(items, value, strict=True))
    if origin is list:
        item = _decoder_for(args[0]) if args else _identity
        return lambda value: [item(v) for v in value]
    if origin is not None and isinstance(origin, type) and issubclass(origin, Mapping):
        value_decoder = _decoder_for(args[1]) if len(args) == 2 else _identity
        if value_decoder is _identity:
            return lambda value: dict(value)
        return lambda value: {k: value_decoder(v) for k, v in value.items()}
    if tp is float:
        return _to_float
    if tp is bool:
        return lambda value: value if isinstance(value, bool) else _fail(bool, value)
    if tp is int:
        return _to_int
    if tp is str:
        return lambda value: value if isinstance(value, str) else _fail(str, value)
    if tp is datetime:
        return parse_time
    if isinstance(tp, type) and issubclass(tp, Enum):
        return tp
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _dataclass_decoder(tp)
    raise RowDecodeError(f"no decoder for type {tp!r}")


def _fail(expected: type, value: Any) -> Any:
    raise TypeError(f"expected {expected.__name__}, got {value!r}")


def _dataclass_decoder(cls: type) -> Decoder:
    hints = typing.get_type_hints(cls)
    fields = [(f.name, _decoder_for(hints[f.name]), _has_default(f)) for f in dataclasses.fields(cls)]

    def decode(value: Any) -> Any:
        if not isinstance(value, Mapping):
            raise TypeError(f"expected an object for {cls.__name__}, got {type(value).__name__}")
        kwargs = {}
        for name, decoder, optional in fields:
            if name in value:
                kwargs[name] = decoder(value[name])
            elif not optional:
                raise KeyError(f"{cls.__name__}.{name} missing")
        return cls(**kwargs)

    return decode


def _has_default(f: dataclasses.Field[Any]) -> bool:
    return f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING


# -- encoding ------------------------------------------------------------------------------------------------

# orjson writes dataclasses, enums, tuples and datetimes natively and fast; these options make its output match
# `to_jsonable` ("...Z" for UTC, str() of non-string keys) and `default` hands it what it does not know
# (frozensets, read-only mappings, bytes) with the codec's own rules.
_ORJSON_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS

Checker = Callable[[Any], None]


def dumps_document(obj: Any) -> str:
    """JSON text equal to `schemas.codec.dumps(obj)` for a dataclass instance, several times faster.

    orjson would write NaN / Infinity as null without a word, so a checker compiled from the dataclass's type
    hints visits every float first (and walks Any / Mapping fields generically): NotJsonSafe, as the codec.
    """
    _checker_for(type(obj))(obj)
    return orjson.dumps(obj, default=to_jsonable, option=_ORJSON_OPTIONS).decode()


def dumps_json(value: Any) -> str:
    """`schemas.codec.dumps(value)` for any JSON-like value (a raw CloudTrail record), twice as fast: one read-only
    walk that refuses NaN / Infinity, then orjson."""
    _scan(value)
    return orjson.dumps(value, default=to_jsonable, option=_ORJSON_OPTIONS).decode()


def document(obj: Any) -> Any:
    """`to_jsonable(obj)`, by way of `dumps_document`."""
    return orjson.loads(dumps_document(obj))


def _refuse(value: float) -> None:
    raise NotJsonSafe(f"refusing to serialise non-finite float {value!r}")


_LEAVES = frozenset({str, int, bool, type(None)})


def _scan(value: Any) -> None:
    """Generic walk for Any-typed values: every float anywhere inside must be finite.

    Exact-type checks first and leaves skipped inline: a CloudTrail record is mostly strings in dicts, and this
    walk runs for every record the log stores.
    """
    kind = type(value)
    if kind is dict:
        for v in value.values():
            if type(v) not in _LEAVES:
                _scan(v)
    elif kind is list or kind is tuple:
        for v in value:
            if type(v) not in _LEAVES:
                _scan(v)
    elif kind is float:
        if not math.isfinite(value):
            _refuse(value)
    elif kind in _LEAVES:
        return
    elif isinstance(value, Mapping):
        for v in value.values():
            _scan(v)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for v in value:
            _scan(v)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            _scan(getattr(value, f.name))
    elif isinstance(value, float) and not math.isfinite(value):  # a float subclass
        _refuse(value)


def _no_floats(kind: type) -> Checker:
    # The annotated type holds no float; a value of another type (a bug elsewhere) still gets the full walk.
    def check(value: Any) -> None:
        if type(value) is not kind:
            _scan(value)

    return check


def _check_float(value: Any) -> None:
    if type(value) is float:
        if not math.isfinite(value):
            _refuse(value)
    elif type(value) is not int:
        _scan(value)


@cache
def _checker_for(tp: Any) -> Checker:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        non_none = [a for a in args if a is not type(None)]
        if len(non_none) == 1:
            inner = _checker_for(non_none[0])
            return lambda value: None if value is None else inner(value)
        return _scan
    if origin in (frozenset, set, list) or (origin is tuple and len(args) == 2 and args[1] is Ellipsis):
        item = _checker_for(args[0]) if args else _scan

        def check_items(value: Any) -> None:
            for v in value:
                item(v)

        return check_items
    if tp is float:
        return _check_float
    if tp in (str, int, bool, datetime):
        return _no_floats(tp)
    if isinstance(tp, type) and issubclass(tp, Enum):
        return _no_floats(tp)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _dataclass_checker(tp)
    return _scan  # Any, Mapping[str, Any], fixed tuples


def _dataclass_checker(cls: type) -> Checker:
    hints = typing.get_type_hints(cls)
    fields = [(f.name, _checker_for(hints[f.name])) for f in dataclasses.fields(cls)]

    def check(value: Any) -> None:
        if type(value) is not cls:
            _scan(value)
            return
        for name, checker in fields:
            checker(getattr(value, name))

    return check


# -- the log envelope on the wire (Kafka values) ---------------------------------------------------------------

_ENVELOPE_FIELDS = tuple(f.name for f in dataclasses.fields(LogEntry) if f.name not in ("record", "seq"))


def encode_entry(entry: LogEntry, record_json: str | None = None) -> bytes:
    """A LogEntry as one JSON object (every field but `seq`; the record nested as an object), UTF-8 bytes.

    `seq` is left out because on Kafka the position is (topic, partition, offset), given by the broker, not a
    field of the entry. Pass `record_json` when the record was already serialised by `dumps_json` (the log
    backends check it that way first) so the record is not walked twice. NaN / Infinity: NotJsonSafe.
    """
    envelope: dict[str, Any] = {name: getattr(entry, name) for name in _ENVELOPE_FIELDS}
    envelope["record"] = orjson.Fragment(dumps_json(entry.record) if record_json is None else record_json)
    return orjson.dumps(envelope, default=to_jsonable, option=_ORJSON_OPTIONS)


def decode_entry(value: bytes | None, *, source: str = "", locator: str = "") -> LogEntry | Rejected:
    """The inverse of `encode_entry`, or a Rejected (bad input is a value) saying why, with the raw bytes.

    `source` / `locator` say where the bytes came from (e.g. "kafka:<topic>", "partition=3 offset=17") so that a
    dead letter points at the exact message. Unknown envelope keys are ignored (a newer writer may add fields).
    """
    raw = b"" if value is None else bytes(value)
    try:
        if value is None:
            raise ValueError("empty message (no value)")
        data = orjson.loads(value)
        if not isinstance(data, dict):
            raise ValueError(f"envelope is a JSON {type(data).__name__}, not an object")
        if not isinstance(data.get("record"), dict):
            raise ValueError("envelope field 'record' is missing or not an object")
        return from_jsonable(LogEntry, data)
    except (ValueError, Dd0cError) as exc:  # orjson.JSONDecodeError is a ValueError; RowDecodeError, naive times
        return Rejected(f"undecodable log entry: {exc}", raw[:65536], source, locator)
