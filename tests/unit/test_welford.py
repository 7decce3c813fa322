"""Welford statistics: case R17 (precision with a large mean and a small spread) plus properties."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.events import Welford
from streams.score import welford
from tests.conftest import CASES

R17 = json.loads((CASES / "R17.json").read_text())["series"]
# (n, mean, variance) from R17.expected.md, in the file's order.
R17_EXPECTED = [(4, 1000000010.0, 30.0), (3, 100000001.0, 1.0), (4, 1000000000010.0, 30.0)]
# What the naive sum-of-squares formula gives for the same series in float64 (R17.expected.md, last column).
R17_NAIVE = [-170.67, 0.0, 0.0]


def naive_variance(values: list[float]) -> float:
    """E[x^2] - E[x]^2, the formula Welford replaces: shown here only to document why."""
    n = len(values)
    total = sum(values)
    squares = sum(x * x for x in values)
    return (squares - total * total / n) / (n - 1)


@pytest.mark.parametrize(("series", "expected"), list(zip(R17, R17_EXPECTED, strict=True)), ids=["A", "B", "C"])
def test_r17_welford_reproduces_n_mean_variance(series: dict, expected: tuple[int, float, float]) -> None:
    """R17: Welford gets n / mean / variance right to 1e-6 relative, and the state is (n, mean, M2)."""
    n, mean, var = expected
    w = welford.from_values(series["values"])
    assert w.n == n
    assert w.mean == pytest.approx(mean, rel=1e-6)
    got = welford.variance(w)
    assert got is not None and got >= 0
    assert got == pytest.approx(var, rel=1e-6)
    assert w.m2 == pytest.approx(var * (n - 1), rel=1e-6)  # persisted state keeps the spread, not sum of squares


@pytest.mark.parametrize(("series", "naive"), list(zip(R17, R17_NAIVE, strict=True)), ids=["A", "B", "C"])
def test_r17_naive_sum_of_squares_fails(series: dict, naive: float) -> None:
    """R17: why not (sum, sum of squares): negative for series A, zero for B and C where the truth is 30, 1, 30."""
    got = naive_variance(series["values"])
    assert got == pytest.approx(naive, abs=0.01)
    assert got <= 0


def test_r17_stddev_and_intermediate_variances_never_negative() -> None:
    """R17: stddev is sqrt(variance) (sqrt(30) = 5.477 for series A), every prefix has variance >= 0."""
    w = welford.EMPTY
    for x in R17[0]["values"]:
        w = welford.update(w, x)
        var = welford.variance(w)
        assert var is None or var >= 0
    assert welford.stddev(w) == pytest.approx(math.sqrt(30.0), rel=1e-6)
    # Series C: mean 1e12 (micro-USD), std 5.48 is 5e-12 of the mean - below the default noise level 1e-9
    # (built for R18), so it reads as 0 and the std floor takes over. The exact value is still there:
    c = welford.from_values(R17[2]["values"])
    assert welford.stddev(c) == 0.0
    assert welford.stddev(c, noise_rel=0.0) == pytest.approx(math.sqrt(30.0), rel=1e-6)


def test_r17_insufficient_data_below_two_samples() -> None:
    """R17: n < 2 is "insufficient data" (None), not a division by zero."""
    assert welford.variance(welford.EMPTY) is None
    assert welford.stddev(welford.EMPTY) is None
    one = welford.update(welford.EMPTY, 0.096)
    assert one == Welford(n=1, mean=0.096, m2=0.0)
    assert welford.variance(one) is None
    assert welford.stddev(one) is None


def test_r18_float_noise_std_reads_as_zero() -> None:
    """R18: a std below 1e-9 x max(1, |mean|) is noise and reads as exactly 0.0."""
    assert welford.stddev(Welford(n=5, mean=0.096, m2=4 * 1e-24)) == 0.0  # std 1e-12: rounding, not spread
    assert welford.stddev(Welford(n=5, mean=1e9, m2=4 * 0.25)) == 0.0  # std 0.5 on a mean of 1e9: below 1e-9 x 1e9
    # The naive formula's +1.7e-18 on 5 x 0.096 (std 1.3e-9) sits just above this noise level; Welford never
    # produces it (see the last line), and the std floor makes it harmless anyway (test_score_r18.py).
    assert welford.stddev(Welford(n=5, mean=0.096, m2=4 * 1.7e-18)) == pytest.approx(1.3e-9, rel=0.01)
    assert welford.stddev(Welford(n=3, mean=0.096, m2=2 * 0.0001)) == pytest.approx(0.01)
    assert welford.from_values([0.096] * 3) == Welford(n=3, mean=0.096, m2=0.0)


def test_non_finite_sample_is_a_bug() -> None:
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(welford.WelfordError):
            welford.update(welford.EMPTY, bad)


def test_merge_examples() -> None:
    a = welford.from_values([1.0, 2.0, 3.0])
    b = welford.from_values([10.0, 20.0])
    m = welford.merge(a, b)
    assert m.n == 5
    assert m.mean == pytest.approx(7.2)
    assert welford.variance(m) == pytest.approx(63.7)  # sample variance of 1, 2, 3, 10, 20
    assert welford.merge(a, welford.EMPTY) == a
    assert welford.merge(welford.EMPTY, b) == b


# --- properties ---------------------------------------------------------------------------------------------

# Hourly costs from a micro-dollar to a trillion (R17's micro-USD series sit up there).
costs = st.floats(min_value=1e-6, max_value=1e12, allow_nan=False, allow_infinity=False)
samples = st.lists(costs, min_size=0, max_size=40)


def close(a: Welford, b: Welford, values: list[float]) -> bool:
    """Equal up to float rounding at the scale of the data (M2's error grows with n and the values' size)."""
    if a.n != b.n:
        return False
    scale = max((abs(x) for x in values), default=0.0)
    mean_ok = math.isclose(a.mean, b.mean, rel_tol=1e-9, abs_tol=1e-12 * scale)
    m2_ok = math.isclose(a.m2, b.m2, rel_tol=1e-6, abs_tol=1e-12 * max(len(values), 1) * scale * scale)
    return mean_ok and m2_ok


@settings(max_examples=300, deadline=None)
@given(samples, samples)
def test_merge_equals_one_pass(xs: list[float], ys: list[float]) -> None:
    merged = welford.merge(welford.from_values(xs), welford.from_values(ys))
    one_pass = welford.from_values(xs + ys)
    assert close(merged, one_pass, xs + ys)


@settings(max_examples=300, deadline=None)
@given(samples, samples, samples)
def test_merge_is_order_independent(xs: list[float], ys: list[float], zs: list[float]) -> None:
    a, b, c = (welford.from_values(v) for v in (xs, ys, zs))
    assert welford.merge(a, b) == welford.merge(b, a)  # exactly: the pair is put in a canonical order
    left = welford.merge(welford.merge(a, b), c)
    right = welford.merge(a, welford.merge(b, c))
    assert close(left, right, xs + ys + zs)


@settings(max_examples=300, deadline=None)
@given(st.lists(costs, min_size=1, max_size=60))
def test_update_never_negative_or_nan(xs: list[float]) -> None:
    w = welford.EMPTY
    for x in xs:
        w = welford.update(w, x)
        assert math.isfinite(w.mean) and math.isfinite(w.m2) and w.m2 >= 0
        var = welford.variance(w)
        sd = welford.stddev(w)
        if w.n < 2:
            assert var is None and sd is None
        else:
            assert var is not None and sd is not None
            assert math.isfinite(var) and var >= 0 and math.isfinite(sd) and sd >= 0
    assert min(xs) * (1 - 1e-9) <= w.mean <= max(xs) * (1 + 1e-9)
