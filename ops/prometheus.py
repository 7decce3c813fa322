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


Samples = Mapping[tuple[tuple[str, str], ...], float]


def ingest_families(*, events: Samples, duplicates: Samples, rejects: Samples, read_only: Samples,
                    skipped: Samples) -> list[Family]:
    """The per-source intake counters, named alike wherever a source runs (ingestion service: s3, grpc; API: push),
    so one query sums every source."""
    return [
        Family("dd0c_ingest_events_total", "counter", "Events appended to the log (new log rows).", events),
        Family("dd0c_ingest_duplicates_total", "counter",
               "Events already in the log (same tenant, account, eventID): dropped.", duplicates),
        Family("dd0c_ingest_rejects_total", "counter", "Records rejected to the dead letters.", rejects),
        Family("dd0c_ingest_read_only_total", "counter", "Read-only events counted per account and day.", read_only),
        Family("dd0c_ingest_skipped_total", "counter", "Whole documents skipped (digests, non-CloudTrail).", skipped),
    ]
