"""The scoring policy: every threshold the scorer uses, one frozen object per tenant.

`ops/policies/default.toml` documents each value (with the reasoning behind it) and loads to DEFAULT_POLICY.
A tenant's policy is stored as a mapping in `tenants.policy` (JSONB); keys it leaves out take the default, so
`{}` is the default policy and `{"z_threshold": 2.5}` a slightly stricter one. Replaying the log with another
policy answers "what would this have flagged?".
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import timedelta
from pathlib import Path
from typing import Any

from schemas.events import Dd0cError, Severity


class PolicyError(Dd0cError):
    """A policy file or mapping that cannot be used: unknown key, wrong type, out-of-range value."""


@dataclass(frozen=True)
class Policy:
    name: str = "default"

    # Baseline statistics
    cold_start_count: int = 5  # priced samples needed before a z-score is computed (>= 2)
    std_floor_rel: float = 0.05  # effective std >= this fraction of |mean|
    std_floor_abs: float = 0.001  # effective std >= this many $/h (> 0: keeps z finite when mean and std are 0)
    std_noise_rel: float = 1e-9  # a std below this x max(1, |mean|) is float noise and reads as 0

    # z-score ladder: a tier applies when z and the increase over the mean ($/h) both reach it
    z_threshold: float = 3.0  # the zscore signal fires (severity low)
    z_medium: float = 4.0
    z_medium_increase_hourly: float = 0.25
    z_high: float = 6.0
    z_high_increase_hourly: float = 1.0
    z_critical: float = 6.0
    z_critical_increase_hourly: float = 10.0

    # Absolute bands on the event's own $/h, used only while there is no z (cold start)
    band_low_hourly: float = 1.0
    band_medium_hourly: float = 5.0
    band_high_hourly: float = 20.0
    band_critical_hourly: float = 100.0

    # Novelty
    novelty_new_actor: bool = True
    novelty_automation_actor: bool = False  # AWS services acting on their own (Auto Scaling, EKS, ...)
    novelty_new_region: bool = True
    novelty_new_family: bool = True
    novelty_root_actor: bool = True
    novelty_first_resource_type: bool = True
    novelty_severity: Severity = Severity.LOW  # novelty alone, outside learning
    novelty_raise_steps: int = 1  # novelty on top of a z / band verdict raises it this many steps
    root_actor_min_severity: Severity = Severity.MEDIUM  # outside learning

    # Learning window: per (account, resource_type) baseline, by event time
    learning_events: int = 10
    learning_days: float = 7.0
    learning_novelty_cap: Severity = Severity.INFO  # what novelty alone can reach while learning

    # Output
    record_floor: Severity = Severity.INFO  # anomalies below this severity are not emitted
    backfill_after_hours: float = 6.0  # ingested this much later than eventTime: history, not a live incident

    @property
    def backfill_after(self) -> timedelta:
        return timedelta(hours=self.backfill_after_hours)

    @property
    def learning_period(self) -> timedelta:
        return timedelta(days=self.learning_days)


DEFAULT_POLICY = Policy()

_FIELDS = {f.name: f for f in fields(Policy)}
_TYPES: dict[str, type] = {
    f.name: {"str": str, "int": int, "float": float, "bool": bool, "Severity": Severity}[str(f.type)]
    for f in fields(Policy)
}

# Pairs that must not decrease along a ladder: (lower key, higher key).
_ORDERED = [
    ("z_threshold", "z_medium"),
    ("z_medium", "z_high"),
    ("z_high", "z_critical"),
    ("z_medium_increase_hourly", "z_high_increase_hourly"),
    ("z_high_increase_hourly", "z_critical_increase_hourly"),
    ("band_low_hourly", "band_medium_hourly"),
    ("band_medium_hourly", "band_high_hourly"),
    ("band_high_hourly", "band_critical_hourly"),
]
_STRICTLY_POSITIVE = {"std_floor_abs", "z_threshold", "band_low_hourly", "learning_events"}
_MINIMUM = {"cold_start_count": 2}  # a variance needs two samples


def policy_from_mapping(data: Mapping[str, Any], *, name: str, source: str | None = None) -> Policy:
    """Build a Policy from a (possibly partial) mapping; missing keys take the default.

    `name` is the policy's name unless the mapping carries its own `name`. `source` (a file path, "tenant acme")
    is what error messages point at; it defaults to the name.
    """
    where = source or name
    values: dict[str, Any] = {"name": name}
    problems: list[str] = []  # every one of them, so that a file is fixed in one go, not one error per run
    for key, raw in data.items():
        if key not in _FIELDS:
            known = ", ".join(sorted(_FIELDS))
            problems.append(f"{where}: unknown policy key {key!r} (known keys: {known})")
            continue
        try:
            values[key] = _coerce(key, raw, where)
        except PolicyError as exc:
            problems.append(str(exc))
    policy = Policy(**values)  # keys in error keep their defaults, so the ranges of the others can be checked
    problems += _range_problems(policy, where)
    if len(problems) == 1:
        raise PolicyError(problems[0])
    if problems:
        listed = "\n".join(f"  - {p.removeprefix(where + ': ')}" for p in problems)
        raise PolicyError(f"{where}: {len(problems)} problems:\n{listed}")
    return policy


def policy_to_mapping(p: Policy) -> dict[str, Any]:
    """Plain JSON/TOML values (severities as their names); policy_from_mapping turns it back into `p`."""
    out: dict[str, Any] = {}
    for key in _FIELDS:
        value = getattr(p, key)
        out[key] = value.value if isinstance(value, Severity) else value
    return out


def load_policy(path: Path) -> Policy:
    """Read a TOML policy file. Its `name` defaults to the file's stem."""
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read policy file ({exc.strerror or exc})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{path}: not valid TOML ({exc})") from exc
    return policy_from_mapping(data, name=path.stem, source=str(path))


def _coerce(key: str, raw: Any, where: str) -> Any:
    want = _TYPES[key]
    # bool is an int subclass in Python; `cold_start_count = true` is a mistake, not 1.
    if want is bool:
        if isinstance(raw, bool):
            return raw
    elif want is int:
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
    elif want is float:
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):
            value = float(raw)
            if not math.isfinite(value):
                raise PolicyError(f"{where}: policy key {key!r} must be a finite number (got {raw!r})")
            return value
    elif want is str:
        if isinstance(raw, str):
            return raw
    elif want is Severity:
        if isinstance(raw, str):
            try:
                return Severity.parse(raw)
            except Dd0cError as exc:
                raise PolicyError(f"{where}: policy key {key!r}: {exc}") from None
    type_name = "severity name" if want is Severity else want.__name__
    raise PolicyError(f"{where}: policy key {key!r} must be a {type_name} (got {type(raw).__name__} {raw!r})")


def _range_problems(p: Policy, where: str) -> list[str]:
    problems: list[str] = []
    for key, want in _TYPES.items():
        if want not in (int, float):
            continue
        value = getattr(p, key)
        if value < 0:
            problems.append(f"{where}: policy key {key!r} must not be negative (got {value!r})")
        elif key in _STRICTLY_POSITIVE and value == 0:
            problems.append(f"{where}: policy key {key!r} must be greater than 0")
        elif key in _MINIMUM and value < _MINIMUM[key]:
            problems.append(f"{where}: policy key {key!r} must be at least {_MINIMUM[key]} (got {value!r})")
    for low, high in _ORDERED:
        if getattr(p, low) > getattr(p, high):
            problems.append(
                f"{where}: policy key {high!r} ({getattr(p, high)!r}) must be >= {low!r} ({getattr(p, low)!r})"
            )
    return problems
