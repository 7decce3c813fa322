"""Case R18: zero (or float-noise) standard deviation gives a defined, sane verdict - never NaN or infinity."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest

from schemas.events import Severity
from streams.score.policy import DEFAULT_POLICY
from streams.score.pure import score
from streams.score.zscore import zscore
from tests.conftest import CASES
from tests.unit.test_score_support import assert_json_safe, baseline_of, cost_event, history

CASE = {c["name"]: c for c in json.loads((CASES / "R18.json").read_text())["cases"]}
# The float-noise case has only 3 samples; the default cold start (5 priced events) would give no z at all,
# and the case is about what z does with a zero std. cold_start_count=2 is the smallest that computes one.
TWO = replace(DEFAULT_POLICY, name="cold-start-2", cold_start_count=2)


def test_r18_constant_exact_probes() -> None:
    """R18 constant-exact: 10 x $0.0104/h, std 0. Floor = max(0, 5% x 0.0104, 0.001) = $0.001/h."""
    case = CASE["constant-exact"]
    base = baseline_of(history(case["history"]))
    assert (base.stats.n, base.stats.mean, base.stats.m2) == (10, 0.0104, 0.0)

    same, spike, big = (
        cost_event(p, event_id=f"probe-{i}", when=base.last_event_time) for i, p in enumerate(case["probes"])
    )

    # 0.0104: not anomalous, and its z is exactly 0.0 (not NaN).
    zs = zscore(base.stats, 0.0104, DEFAULT_POLICY)
    assert zs is not None and zs.z == 0.0 and zs.effective_stddev == 0.001
    _, anomaly = score(base, same, DEFAULT_POLICY)
    assert anomaly is None

    # 0.0208: z = 0.0104 / 0.001 = 10.4, anomalous (low: the increase is a cent an hour).
    _, anomaly = score(base, spike, DEFAULT_POLICY)
    assert anomaly is not None
    assert anomaly.z == pytest.approx(10.4) and math.isfinite(anomaly.z)
    assert anomaly.severity is Severity.LOW
    assert [r.signal for r in anomaly.reasons] == ["zscore"]
    assert anomaly.reasons[0].data["effective_stddev"] == 0.001
    assert anomaly.baseline_stddev == 0.0 and anomaly.expected_hourly_cost == 0.0104

    # 0.192: z = (0.192 - 0.0104) / 0.001 = 181.6; still low, the increase ($0.18/h) is under medium's $0.25/h.
    _, anomaly = score(base, big, DEFAULT_POLICY)
    assert anomaly is not None
    assert anomaly.z == pytest.approx(181.6) and math.isfinite(anomaly.z)
    assert anomaly.severity is Severity.LOW
    assert anomaly.reasons[0].text.startswith("$0.192/h vs a typical $0.0104/h per event (z=182 over 10 events)")
    assert_json_safe(base, anomaly)


def test_r18_zero_z_is_reported_when_another_signal_fires() -> None:
    """R18: the same 0.0104 probe from a new region is recorded (novelty) and carries z = 0.0, JSON-safe."""
    base = baseline_of(history(CASE["constant-exact"]["history"]))
    _, anomaly = score(base, cost_event(0.0104, region="eu-west-1", when=base.last_event_time), DEFAULT_POLICY)
    assert anomaly is not None
    assert anomaly.z == 0.0
    assert [r.signal for r in anomaly.reasons] == ["new_region"]
    assert_json_safe(anomaly)


def test_r18_constant_float_noise_probes() -> None:
    """R18 constant-float-noise: 3 x $0.096/h (cold_start_count=2, see TWO). Neither 0.096 nor 0.0961 is flagged."""
    case = CASE["constant-float-noise"]
    base = baseline_of(history(case["history"]), TWO)
    # Welford leaves no float noise on a constant series (the naive formula gives -3.5e-18 here).
    assert (base.stats.n, base.stats.mean, base.stats.m2) == (3, 0.096, 0.0)
    for probe, z in zip(case["probes"], (0.0, 0.0001 / 0.0048), strict=True):
        zs = zscore(base.stats, probe, TWO)
        assert zs is not None
        assert zs.effective_stddev == pytest.approx(0.0048)  # 5% of the mean beats the $0.001/h floor
        assert zs.z == pytest.approx(z, abs=1e-9)  # 0.0961: z = 0.021, not 76,000
        _, anomaly = score(base, cost_event(probe, event_id="probe", when=base.last_event_time), TWO)
        assert anomaly is None
    # With the default cold start (5 priced events) there is no z at all for a 3-sample baseline.
    assert zscore(base.stats, 0.0961, DEFAULT_POLICY) is None


def test_r18_single_point_has_no_z_only_novelty() -> None:
    """R18 single-point: n=1 gives no z (insufficient data), even with cold_start_count=2; only novelty fires."""
    case = CASE["single-point"]
    base = baseline_of(history(case["history"]))
    (probe,) = case["probes"]
    for policy in (DEFAULT_POLICY, TWO):
        assert zscore(base.stats, probe, policy) is None
        # Same actor, region and family, $0.384/h under the $1/h cold-start band: nothing to say.
        _, anomaly = score(base, cost_event(probe, event_id="probe"), policy)
        assert anomaly is None
        # A new region is novelty: recorded, z None, info while the baseline is learning.
        _, anomaly = score(base, cost_event(probe, event_id="probe", region="us-west-2"), policy)
        assert anomaly is not None
        assert anomaly.z is None and anomaly.baseline_n == 1 and anomaly.baseline_stddev is None
        assert [r.signal for r in anomaly.reasons] == ["new_region"]
        assert anomaly.severity is Severity.INFO and anomaly.learning
        assert_json_safe(anomaly)
