"""Typed reads from a CloudTrail record that never index a key that may be absent.

Absent and `null` read as None. A value that is present but has the wrong type (an `instancesSet` that is a
string, a `volumeSize` of "abc") raises `FieldError` naming the dotted path; `normalize` turns it into a
`Rejected` value, so it never escapes the stage. Numeric strings ("100", as EC2 writes volume sizes) are numbers.

EC2 wraps lists three ways — `{"items": [...]}`, `{"item": [...]}` / `{"item": {...}}` (the XML-style APIs) and
bare lists — `items()` reads all of them. EC2's attribute wrapper `{"value": "m5.large"}` reads as the string.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from schemas.events import Dd0cError

Path = tuple[str | int, ...]


class FieldError(Dd0cError):
    """A field of the record has a type the catalog cannot use."""

    def __init__(self, path: Path, expected: str, got: Any) -> None:
        self.path = path
        self.expected = expected
        self.got = got
        super().__init__(f"{dotted(path)} must be {expected}, got {_kind(got)}")


def dotted(path: Path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _kind(value: Any) -> str:
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"string {shown!r}"
    if isinstance(value, bool):
        return f"boolean {value}"
    if isinstance(value, (int, float)):
        return f"number {value}"
    if value is None:
        return "null"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


class Node:
    """A position inside the record: the value found there plus the path that led to it (for error messages)."""

    __slots__ = ("path", "value")

    def __init__(self, value: Any, path: Path = ()) -> None:
        self.value = value
        self.path = path

    def __repr__(self) -> str:
        return f"Node({dotted(self.path)}={self.value!r})"

    @property
    def present(self) -> bool:
        return self.value is not None

    def get(self, *keys: str | int) -> Node:
        """Walk down; absent or null anywhere gives an empty node. A non-object in the way is a FieldError."""
        value, path = self.value, self.path
        for key in keys:
            if value is None:
                return Node(None, (*path, key))
            if isinstance(key, int):
                if not isinstance(value, list):
                    raise FieldError(path, "a list", value)
                value = value[key] if -len(value) <= key < len(value) else None
            else:
                if not isinstance(value, Mapping):
                    raise FieldError(path, "an object", value)
                value = value.get(key)
            path = (*path, key)
        return Node(value, path)

    def first(self, *candidates: tuple[str, ...]) -> Node:
        """The first of several alternative paths that is present (e.g. flat and XML-wrapped shapes)."""
        for keys in candidates:
            node = self.get(*keys)
            if node.present:
                return node
        return self.get(*candidates[0]) if candidates else Node(None, self.path)

    def obj(self) -> Mapping[str, Any] | None:
        if self.value is None:
            return None
        if not isinstance(self.value, Mapping):
            raise FieldError(self.path, "an object", self.value)
        return self.value

    def text(self) -> str | None:
        value = self.value
        if value is None:
            return None
        if isinstance(value, Mapping) and len(value) == 1 and isinstance(value.get("value"), str):
            return value["value"]  # EC2's AttributeValue wrapper: {"value": "m5.large"}
        if not isinstance(value, str):
            raise FieldError(self.path, "a string", value)
        return value

    def number(self) -> float | None:
        value = self.value
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            raise FieldError(self.path, "a number", value)
        if isinstance(value, (int, float)):
            number = float(value)
        elif isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                raise FieldError(self.path, "a number", value) from None
        else:
            raise FieldError(self.path, "a number", value)
        if not math.isfinite(number) or number < 0:
            raise FieldError(self.path, "a finite non-negative number", value)
        return number

    def integer(self) -> int | None:
        number = self.number()
        if number is None:
            return None
        if number != int(number):
            raise FieldError(self.path, "a whole number", self.value)
        return int(number)

    def flag(self) -> bool | None:
        value = self.value
        if value is None:
            return None
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise FieldError(self.path, "a boolean", value)

    def items(self) -> list[Node]:
        """Elements of an EC2-style list: bare list, {"items": [...]}, {"item": [...]} or {"item": {...}}."""
        value = self.value
        if value is None:
            return []
        path = self.path
        if isinstance(value, Mapping):
            if "items" in value:
                value, path = value["items"], (*path, "items")
            elif "item" in value:
                value, path = value["item"], (*path, "item")
            elif not value:
                return []  # `{}` is how CloudTrail writes an empty set
            else:
                raise FieldError(path, "a list (or an object with 'items')", value)
            if value is None:
                return []
            if isinstance(value, Mapping):  # a single XML item
                return [Node(value, path)]
        if not isinstance(value, list):
            raise FieldError(path, "a list", value)
        return [Node(v, (*path, i)) for i, v in enumerate(value)]

    def strings(self) -> list[str]:
        """A list of strings, also accepting one bare string or XML items whose text sits in `content`."""
        value = self.value
        if value is None:
            return []
        if isinstance(value, str):
            return [value]
        if isinstance(value, Mapping) and isinstance(value.get("content"), str):
            return [value["content"]]  # one XML item: {"tag": 1, "content": "vpce-1"}
        out: list[str] = []
        for node in self.items():
            if isinstance(node.value, str):
                out.append(node.value)
            elif isinstance(node.value, Mapping) and isinstance(node.value.get("content"), str):
                out.append(node.value["content"])
            elif node.value is not None:
                raise FieldError(node.path, "a string", node.value)
        return out


def root(record: Mapping[str, Any]) -> Node:
    return Node(record, ())
