"""z of one event's hourly cost against a baseline's Welford statistics, with a std floor (cases R17, R18)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from schemas.events import Dd0cError, Welford
from streams.score import welford
from streams.score.policy import Policy


class ScoreError(Dd0cError):
    """Scoring met a value it must never see (a non-finite cost): a bug upstream, not bad input."""


@dataclass(frozen=True, slots=True)
class ZScore:
    z: float
    n: int  # priced samples in the baseline
    mean: float
    stddev: float  # sample std after the noise rule
    effective_stddev: float  # max(stddev, floors): what z divides by
    increase: float  # cost - mean, $/h


def effective_stddev(std: float, mean: float, policy: Policy) -> float:
    """The floors keep a zero-variance baseline from producing an infinite or NaN z."""
    return max(std, policy.std_floor_rel * abs(mean), policy.std_floor_abs)


def zscore(stats: Welford, cost: float | None, policy: Policy) -> ZScore | None:
    """None while unpriced or in cold start (fewer than cold_start_count priced samples, or fewer than two)."""
    if cost is None or stats.n < max(2, policy.cold_start_count):
        return None
    std = welford.stddev(stats, noise_rel=policy.std_noise_rel)
    if std is None:  # unreachable with n >= 2; kept so the type checker and a future policy agree
        return None
    eff = effective_stddev(std, stats.mean, policy)
    increase = cost - stats.mean
    z = increase / eff
    if not math.isfinite(z):
        raise ScoreError(f"non-finite z from cost {cost!r} against {stats!r}")
    return ZScore(z=z, n=stats.n, mean=stats.mean, stddev=std, effective_stddev=eff, increase=increase)
