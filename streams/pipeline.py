"""The pipeline as data: stages in flow order, with the stable names used in logs, metrics and checkpoints."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Stage:
    name: str
    module: str
    what: str


STAGES: tuple[Stage, ...] = (
    Stage("read", "schemas.cloudtrail", "bytes of any CloudTrail container -> records | Rejected | skipped"),
    Stage("log", "streams.log", "records -> append-only log, deduplicated on (tenant, account, eventID)"),
    Stage("normalize", "streams.normalize", "log entry -> priced CostEvents | Rejected"),
    Stage("score", "streams.score", "baseline + event -> baseline' + Anomaly | None (Welford, z, novelty)"),
    Stage("ledger", "streams.ledger", "log entry -> open/close/resize of resources, $/hour now"),
    Stage("project", "projections", "rows + checkpoint in one Postgres transaction"),
)

# NOTIFY channels (payload: a tenant). Both fire inside the writer's transaction, so only on commit.
LOG_CHANNEL = "dd0c_log"  # new entries in the log: wakes the worker
FEED_CHANNEL = "dd0c_feed"  # new anomalies: wakes every API process's live feed

# The single Postgres runner's checkpoint name (one runner folds every projection in one transaction).
RUNNER_NAME = "fold-v1"
