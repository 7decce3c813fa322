"""Running mean and variance, one sample at a time (Welford), and the parallel combination (Chan et al.).

State is (n, mean, M2) - never (sum, sum of squares). The naive `E[x^2] - E[x]^2` loses every significant
digit when the mean is large and the spread small, and can even go negative (case R17); M2 accumulates
squared deviations from the running mean, so it keeps the spread's precision.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from schemas.events import Dd0cError, Welford

EMPTY = Welford()


class WelfordError(Dd0cError):
    """A non-finite sample reached the statistics: a bug upstream (prices are finite or None, never NaN)."""


def update(w: Welford, x: float) -> Welford:
    """Fold one sample in: delta = x - mean; mean += delta / n; M2 += delta * (x - mean)."""
    if not math.isfinite(x):
        raise WelfordError(f"refusing non-finite sample {x!r}")
    n = w.n + 1
    if n == 1:
        # Exact first sample: mean + (x - mean) / 1 can differ from x in the last bit.
        return Welford(n=1, mean=float(x), m2=0.0)
    delta = x - w.mean
    mean = w.mean + delta / n
    # delta and (x - mean) share a sign in exact arithmetic; rounding can leave a tiny negative product.
    m2 = max(w.m2 + delta * (x - mean), 0.0)
    return Welford(n=n, mean=mean, m2=m2)


def merge(a: Welford, b: Welford) -> Welford:
    """Combine two partial states as if one pass had seen both sample sets (Chan, Golub & LeVeque).

    The pair is put in a canonical order first so that merge(a, b) and merge(b, a) are bit-for-bit equal.
    """
    if a.n == 0:
        return b
    if b.n == 0:
        return a
    first, second = sorted((a, b), key=lambda w: (-w.n, w.mean, w.m2))
    n = first.n + second.n
    delta = second.mean - first.mean
    mean = first.mean + delta * (second.n / n)
    m2 = first.m2 + second.m2 + delta * delta * (first.n * second.n / n)
    return Welford(n=n, mean=mean, m2=max(m2, 0.0))


def from_values(values: Iterable[float]) -> Welford:
    w = EMPTY
    for x in values:
        w = update(w, x)
    return w


def variance(w: Welford) -> float | None:
    """Sample variance (n - 1). None - "insufficient data" - below two samples; never negative, never NaN."""
    if w.n < 2:
        return None
    var = w.m2 / (w.n - 1)
    if not math.isfinite(var):
        raise WelfordError(f"non-finite variance from {w!r}")
    return max(var, 0.0)


def stddev(w: Welford, *, noise_rel: float = 1e-9) -> float | None:
    """Sample standard deviation; below noise_rel x max(1, |mean|) it is float noise and reads as 0.0 (case R18).

    A constant series can come out with a std of ~1e-9 instead of 0 (after merges, or from another
    implementation); left alone it would turn a $0.0001/h difference into a z of tens of thousands.
    """
    var = variance(w)
    if var is None:
        return None
    sd = math.sqrt(var)
    if sd < noise_rel * max(1.0, abs(w.mean)):
        return 0.0
    return sd
