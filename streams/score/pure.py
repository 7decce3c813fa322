"""OWNED BY the scoring helper: score(baseline, event, policy) -> (baseline', anomaly | None)."""

from __future__ import annotations

from schemas.events import Anomaly, Baseline, CostEvent
from streams.score.policy import Policy


def score(baseline: Baseline | None, event: CostEvent, policy: Policy) -> tuple[Baseline, Anomaly | None]:
    raise NotImplementedError
