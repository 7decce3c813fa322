"""The scoring policy: the documented default file, loading errors, round trips, and replay with another policy."""

from __future__ import annotations

import json
import tomllib
from dataclasses import fields, replace
from datetime import timedelta
from pathlib import Path

import pytest

from schemas.codec import dumps, loads
from schemas.events import Dd0cError, Severity
from streams.score.policy import (
    DEFAULT_POLICY,
    Policy,
    PolicyError,
    load_policy,
    policy_from_mapping,
    policy_to_mapping,
)
from streams.score.pure import score
from tests.conftest import ROOT
from tests.unit.test_score_support import baseline_of, cost_event, fold_all, history

DEFAULT_FILE = ROOT / "ops" / "policies" / "default.toml"


def write(tmp_path: Path, text: str, name: str = "tenant.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_default_file_loads_to_default_policy() -> None:
    assert load_policy(DEFAULT_FILE) == DEFAULT_POLICY


def test_default_file_documents_every_key() -> None:
    """Every Policy field appears in default.toml under a comment explaining it (pairs may share one)."""
    data = tomllib.loads(DEFAULT_FILE.read_text())
    assert set(data) == {f.name for f in fields(Policy)}
    lines = DEFAULT_FILE.read_text().splitlines()
    for i, line in enumerate(lines):
        if "=" in line and not line.startswith("#"):
            above = i - 1
            while "=" in lines[above] and not lines[above].startswith("#"):
                above -= 1  # a key grouped with the one above it shares that comment
            assert lines[above].startswith("#"), f"{line!r} has no comment above it"


def test_default_values() -> None:
    p = DEFAULT_POLICY
    assert (p.std_floor_rel, p.std_floor_abs, p.cold_start_count) == (0.05, 0.001, 5)
    assert (p.z_threshold, p.z_high, p.z_high_increase_hourly, p.z_critical_increase_hourly) == (3.0, 6.0, 1.0, 10.0)
    assert p.record_floor is Severity.INFO and p.root_actor_min_severity is Severity.MEDIUM
    assert p.backfill_after == timedelta(hours=6)
    assert p.learning_period == timedelta(days=7)


def test_mapping_round_trip_through_json() -> None:
    """tenants.policy is JSONB: to_mapping -> JSON -> from_mapping gives the same policy."""
    custom = replace(DEFAULT_POLICY, name="acme", z_threshold=2.5, record_floor=Severity.LOW, learning_days=3.0)
    stored = loads(dumps(policy_to_mapping(custom)))
    assert stored["record_floor"] == "low" and stored["z_threshold"] == 2.5
    assert policy_from_mapping(stored, name="ignored: the mapping carries its own") == custom
    json.dumps(stored, allow_nan=False)


def test_partial_mapping_takes_defaults() -> None:
    """tenants.policy defaults to {} - the default policy under the tenant's name."""
    assert policy_from_mapping({}, name="default") == DEFAULT_POLICY
    p = policy_from_mapping({"z_threshold": 2, "record_floor": "LOW"}, name="acme")
    assert p == replace(DEFAULT_POLICY, name="acme", z_threshold=2.0, record_floor=Severity.LOW)
    assert isinstance(p.z_threshold, float)  # TOML `2` for a float field is fine, stored as 2.0


def test_file_name_is_the_default_name(tmp_path: Path) -> None:
    assert load_policy(write(tmp_path, "z_threshold = 2.5\n", "strict.toml")).name == "strict"
    assert load_policy(write(tmp_path, 'name = "acme-prod"\n', "x.toml")).name == "acme-prod"


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        ("z_treshold = 2.5\n", "z_treshold", "unknown policy key"),
        ('z_threshold = "3"\n', "z_threshold", "must be a float"),
        ("cold_start_count = 4.5\n", "cold_start_count", "must be a int"),
        ("cold_start_count = true\n", "cold_start_count", "must be a int"),
        ("novelty_new_region = 1\n", "novelty_new_region", "must be a bool"),
        ('record_floor = "urgent"\n', "record_floor", "unknown severity"),
        ("z_threshold = -3.0\n", "z_threshold", "must not be negative"),
        ("band_low_hourly = -1\n", "band_low_hourly", "must not be negative"),
        ("std_floor_abs = 0.0\n", "std_floor_abs", "greater than 0"),
        ("cold_start_count = 1\n", "cold_start_count", "at least 2"),
        ("std_floor_rel = nan\n", "std_floor_rel", "finite"),
        ("z_high = 2.0\n", "z_high", "must be >= 'z_medium'"),
    ],
)
def test_bad_file_names_key_and_file(tmp_path: Path, text: str, key: str, words: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    message = str(err.value)
    assert str(path) in message and repr(key) in message and words in message
    assert isinstance(err.value, Dd0cError)


def test_unreadable_and_invalid_files(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(PolicyError, match=r"nope\.toml"):
        load_policy(missing)
    with pytest.raises(PolicyError, match="not valid TOML"):
        load_policy(write(tmp_path, "z_threshold = = 3\n"))


def test_mapping_errors_name_the_source() -> None:
    with pytest.raises(PolicyError, match=r"tenant acme: unknown policy key 'zz'"):
        policy_from_mapping({"zz": 1}, name="acme", source="tenant acme")


def test_stricter_policy_flags_what_the_default_does_not(tmp_path: Path) -> None:
    """Replay with another policy answers "what would this have flagged?": z = 2.5 passes 3.0, fails 2.0."""
    strict = load_policy(write(tmp_path, "# catch smaller drifts\nz_threshold = 2.0\n", "strict.toml"))
    assert strict == replace(DEFAULT_POLICY, name="strict", z_threshold=2.0)
    # 12 daily m5.large: mean 0.096, std 0, effective std 0.0048; $0.108/h is z = 0.012 / 0.0048 = 2.5.
    base = baseline_of(history([0.096] * 12))
    event = cost_event(0.108, event_id="drift", when=base.last_event_time)
    _, by_default = score(base, event, DEFAULT_POLICY)
    _, by_strict = score(base, event, strict)
    assert by_default is None
    assert by_strict is not None
    assert by_strict.severity is Severity.LOW and by_strict.policy == "strict"
    assert by_strict.z == pytest.approx(2.5)
    assert by_strict.reasons[0].data["z_threshold"] == 2.0

    # The same log replayed under each policy: identical baselines, only the verdicts differ.
    events = [*history([0.096] * 12), event]
    state_default, found_default = fold_all(events, DEFAULT_POLICY)
    state_strict, found_strict = fold_all(events, strict)
    assert state_default == state_strict
    assert len(found_strict) == len(found_default) + 1


def test_every_problem_of_a_file_is_named_at_once(tmp_path: Path) -> None:
    """Three mistakes in one file: one error lists all three, each with its key, so one edit fixes the file."""
    path = write(tmp_path, 'z_treshold = 2.5\ncold_start_count = 1\nstd_floor_rel = "x"\n', "three.toml")
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    lines = str(err.value).splitlines()
    assert lines[0] == f"{path}: 3 problems:"
    assert lines[1].startswith("  - unknown policy key 'z_treshold' (known keys: ")
    assert lines[2] == "  - policy key 'std_floor_rel' must be a float (got str 'x')"
    assert lines[3] == "  - policy key 'cold_start_count' must be at least 2 (got 1)"
