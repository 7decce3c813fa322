"""Severity from z, absolute $/h and novelty, by the rules in the policy (documented in ops/policies/default.toml)."""

from __future__ import annotations

from schemas.events import Severity
from streams.score.policy import Policy
from streams.score.zscore import ZScore

LADDER = (Severity.INFO, Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL)


def highest(*levels: Severity | None) -> Severity | None:
    present = [s for s in levels if s is not None]
    return max(present, key=lambda s: s.rank) if present else None


def raised(level: Severity, steps: int) -> Severity:
    return LADDER[min(level.rank + steps, len(LADDER) - 1)]


def z_severity(zs: ZScore, policy: Policy) -> Severity | None:
    """Only spend above the usual counts. Each tier needs both its z and its increase over the mean."""
    if zs.z < policy.z_threshold:
        return None
    tiers = (
        (Severity.CRITICAL, policy.z_critical, policy.z_critical_increase_hourly),
        (Severity.HIGH, policy.z_high, policy.z_high_increase_hourly),
        (Severity.MEDIUM, policy.z_medium, policy.z_medium_increase_hourly),
    )
    for level, z_min, increase_min in tiers:
        if zs.z >= z_min and zs.increase >= increase_min:
            return level
    return Severity.LOW


def band(cost: float, policy: Policy) -> tuple[Severity, float] | None:
    """Cold-start verdict from the event's own $/h: (severity, the band's lower edge) or None below every band."""
    bands = (
        (Severity.CRITICAL, policy.band_critical_hourly),
        (Severity.HIGH, policy.band_high_hourly),
        (Severity.MEDIUM, policy.band_medium_hourly),
        (Severity.LOW, policy.band_low_hourly),
    )
    for level, edge in bands:
        if cost >= edge:
            return level, edge
    return None


def combine(base: Severity | None, novelty: list[str], *, learning: bool, policy: Policy) -> Severity | None:
    """Fold novelty into the z / band verdict. While learning, novelty alone is capped and raises nothing."""
    if not novelty:
        return base
    if learning:
        return base if base is not None else policy.learning_novelty_cap
    level = raised(base, policy.novelty_raise_steps) if base is not None else policy.novelty_severity
    if "root_actor" in novelty:
        level = highest(level, policy.root_actor_min_severity) or level
    return level
