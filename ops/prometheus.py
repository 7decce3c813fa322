"""Prometheus text exposition (format 0.0.4), as the API's /v1/metrics writes it: HELP, TYPE, then the samples.

A tiny renderer rather than a client library: the services expose a handful of counters and gauges they already
keep, and the format is three lines per family.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

MEDIA_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True)
class Family:
    name: str
    kind: str  # counter | gauge
    help: str
    samples: Mapping[tuple[tuple[str, str], ...], float] = field(default_factory=dict)  # labels -> value


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def render(families: Iterable[Family]) -> str:
    lines: list[str] = []
    for family in families:
        lines += [f"# HELP {family.name} {family.help}", f"# TYPE {family.name} {family.kind}"]
        for labels, value in sorted(family.samples.items()):
            label_text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
            lines.append(f"{family.name}{{{label_text}}} {_number(value)}" if labels else
                         f"{family.name} {_number(value)}")
    return "\n".join(lines) + "\n"
