"""The default severity ladder, example by example (thresholds documented in ops/policies/default.toml)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from schemas.events import Baseline, Severity
from streams.score.policy import DEFAULT_POLICY, Policy
from streams.score.pure import score
from streams.score.zscore import ScoreError
from tests.unit.test_score_support import actor, assert_json_safe, baseline_of, cost_event, history

# 12 x m5.large ($0.096/h) by alice in us-east-1, one a day: past learning (>= 10 events, >= 7 days).
# std 0, so effective std = 5% x 0.096 = $0.0048/h: z = (cost - 0.096) / 0.0048.
SETTLED = baseline_of(history([0.096] * 12))
# 6 a day apart: z is available (>= 5 priced) but the baseline is still learning (< 10 events, < 7 days).
LEARNING = baseline_of(history([0.096] * 6))
# 2 priced events: cold start, absolute bands decide.
COLD = baseline_of(history([0.096] * 2))
BASELINES = {"settled": SETTLED, "learning": LEARNING, "cold": COLD}
BOB = actor("bob")
ROOT = actor(kind="root")
ASG = actor("autoscaling.amazonaws.com", kind="service", automation=True)

LADDER: list[tuple[str, str, dict[str, Any], Severity | None, list[str]]] = [
    # z ladder (settled): z >= 3 low; >= 4 and +$0.25/h medium; >= 6 and +$1/h high; >= 6 and +$10/h critical.
    ("usual cost", "settled", {"hourly": 0.096}, None, []),
    ("z 0.8", "settled", {"hourly": 0.1}, None, []),
    ("cheaper than usual", "settled", {"hourly": 0.01}, None, []),
    ("z 5, +$0.024/h", "settled", {"hourly": 0.12}, Severity.LOW, ["zscore"]),
    ("z 63, +$0.30/h", "settled", {"hourly": 0.4}, Severity.MEDIUM, ["zscore"]),
    ("z 230, +$1.10/h", "settled", {"hourly": 1.2}, Severity.HIGH, ["zscore"]),
    ("3 x m5.24xlarge, +$13.73/h", "settled", {"hourly": 13.824, "instance_type": "m5.24xlarge", "quantity": 3},
     Severity.CRITICAL, ["zscore"]),
    # novelty outside learning: alone low; on top of a verdict one step up; root at least medium.
    ("new actor alone", "settled", {"hourly": 0.096, "who": BOB}, Severity.LOW, ["new_actor"]),
    ("new actor + high", "settled", {"hourly": 1.2, "who": BOB}, Severity.CRITICAL, ["zscore", "new_actor"]),
    ("new region + low", "settled", {"hourly": 0.12, "region": "sa-east-1"}, Severity.MEDIUM,
     ["zscore", "new_region"]),
    ("new family alone", "settled", {"hourly": 0.085, "instance_type": "c5.large"}, Severity.LOW, ["new_family"]),
    ("root", "settled", {"hourly": 0.096, "who": ROOT}, Severity.MEDIUM, ["new_actor", "root_actor"]),
    ("root + high", "settled", {"hourly": 1.2, "who": ROOT}, Severity.CRITICAL,
     ["zscore", "new_actor", "root_actor"]),
    ("new automation actor", "settled", {"hourly": 0.096, "who": ASG}, None, []),
    ("unpriced, nothing new", "settled", {"hourly": None}, None, []),
    ("unpriced, new region", "settled", {"hourly": None, "region": "eu-south-1"}, Severity.LOW, ["new_region"]),
    # learning: novelty alone stays info and raises nothing; z verdicts stand.
    ("learning: new actor", "learning", {"hourly": 0.096, "who": BOB}, Severity.INFO, ["new_actor"]),
    ("learning: root", "learning", {"hourly": 0.096, "who": ROOT}, Severity.INFO, ["new_actor", "root_actor"]),
    ("learning: new family + z low", "learning", {"hourly": 0.12, "instance_type": "c5.xlarge"}, Severity.LOW,
     ["zscore", "new_family"]),
    ("learning: z high", "learning", {"hourly": 1.2}, Severity.HIGH, ["zscore"]),
    # cold start: the event's own $/h against the bands $1 low, $5 medium, $20 high, $100 critical.
    ("cold: $0.50/h", "cold", {"hourly": 0.5}, None, []),
    ("cold: $1/h", "cold", {"hourly": 1.0}, Severity.LOW, ["absolute_band"]),
    ("cold: $6/h", "cold", {"hourly": 6.0}, Severity.MEDIUM, ["absolute_band"]),
    ("cold: p4d.24xlarge", "cold", {"hourly": 21.957642, "instance_type": "p4d.24xlarge"}, Severity.HIGH,
     ["absolute_band", "new_family"]),
    ("cold: $150/h", "cold", {"hourly": 150.0}, Severity.CRITICAL, ["absolute_band"]),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "kwargs", "severity", "signals"), [c[1:] for c in LADDER], ids=[c[0] for c in LADDER])
def test_default_ladder(kind: str, kwargs: dict[str, Any], severity: Severity | None, signals: list[str]) -> None:
    base = BASELINES[kind]
    event = cost_event(event_id="probe", when=base.last_event_time + timedelta(hours=1), **kwargs)
    folded, anomaly = score(base, event, DEFAULT_POLICY)
    assert folded.events_seen == base.events_seen + 1
    if severity is None:
        assert anomaly is None
        return
    assert anomaly is not None
    assert anomaly.severity is severity
    assert [r.signal for r in anomaly.reasons] == signals
    assert anomaly.learning is (kind != "settled")
    assert anomaly.policy == "default"
    assert_json_safe(anomaly)


def test_first_resource_type_is_info_while_learning() -> None:
    """A new account's very first instance is recorded (info) and pages nobody."""
    _, anomaly = score(None, cost_event(0.096), DEFAULT_POLICY)
    assert anomaly is not None
    assert anomaly.severity is Severity.INFO and anomaly.learning
    assert [r.signal for r in anomaly.reasons] == ["first_resource_type"]
    assert anomaly.z is None and anomaly.expected_hourly_cost is None and anomaly.baseline_n == 0


def test_automation_actor_novelty_can_be_switched_on() -> None:
    policy = replace(DEFAULT_POLICY, name="asg-watch", novelty_automation_actor=True)
    _, anomaly = score(SETTLED, cost_event(0.096, who=ASG, when=SETTLED.last_event_time), policy)
    assert anomaly is not None
    assert anomaly.severity is Severity.LOW and anomaly.policy == "asg-watch"
    assert anomaly.reasons[0].text == "first ec2_instance created by autoscaling.amazonaws.com in this account"


def test_record_floor_drops_learning_novelty() -> None:
    quiet = replace(DEFAULT_POLICY, record_floor=Severity.LOW)
    _, anomaly = score(LEARNING, cost_event(0.096, who=BOB, when=LEARNING.last_event_time), quiet)
    assert anomaly is None
    _, anomaly = score(LEARNING, cost_event(0.12, who=BOB, when=LEARNING.last_event_time), quiet)
    assert anomaly is not None and anomaly.severity is Severity.LOW


def test_learning_ends_by_count_and_age_together() -> None:
    """Learning lasts while fewer than 10 events OR younger than 7 days: 10 events in one day still learn."""
    busy_day = baseline_of(history([0.096] * 12, step=timedelta(hours=1)))
    _, anomaly = score(busy_day, cost_event(0.096, who=BOB, when=busy_day.last_event_time), DEFAULT_POLICY)
    assert anomaly is not None and anomaly.learning and anomaly.severity is Severity.INFO
    later = busy_day.first_event_time + timedelta(days=7)  # type: ignore[operator]
    _, anomaly = score(busy_day, cost_event(0.096, who=BOB, when=later), DEFAULT_POLICY)
    assert anomaly is not None and not anomaly.learning and anomaly.severity is Severity.LOW


def test_reason_texts_name_the_money() -> None:
    _, anomaly = score(SETTLED, cost_event(1.2, when=SETTLED.last_event_time), DEFAULT_POLICY)
    assert anomaly is not None
    assert anomaly.reasons[0].text == "$1.20/h vs a typical $0.096/h per event (z=230 over 12 events) for 1 x m5.large"
    _, anomaly = score(COLD, cost_event(25.0, when=COLD.last_event_time), DEFAULT_POLICY)
    assert anomaly is not None
    assert anomaly.reasons[0].text == (
        "$25.00/h for 1 x m5.large, at or above the high band of $20.00/h "
        "(too early for a z-score: 2 of the 5 priced events it needs)"
    )
    assert anomaly.reasons[0].data == {
        "actual_hourly": 25.0,
        "band": "high",
        "band_hourly": 20.0,
        "baseline_n": 2,
        "cold_start_count": 5,
    }
    _, anomaly = score(SETTLED, cost_event(0.096, who=ROOT, when=SETTLED.last_event_time), DEFAULT_POLICY)
    assert anomaly is not None
    assert anomaly.reasons[-1].text == (
        "created by the account root user (1 x m5.large in us-east-1), not an IAM identity"
    )


def test_custom_policy_name_is_recorded() -> None:
    strict: Policy = replace(DEFAULT_POLICY, name="strict")
    folded, anomaly = score(None, cost_event(), strict)
    assert isinstance(folded, Baseline)
    assert anomaly is not None and anomaly.policy == "strict"


def test_bugs_are_exceptions() -> None:
    """A NaN / negative cost or a baseline of another key is a bug upstream: ScoreError (a Dd0cError), not a verdict."""
    for bad in (float("nan"), float("inf"), -0.5):
        with pytest.raises(ScoreError):
            score(SETTLED, cost_event(bad), DEFAULT_POLICY)
    with pytest.raises(ScoreError, match="another key"):
        score(SETTLED, cost_event(0.096, account="999988887777"), DEFAULT_POLICY)
