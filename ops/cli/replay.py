"""`dd0c-cost replay [--projection P] [--policy FILE] [--prices FILE] [--tenant T]`: rebuild projections from the log.

Folds the whole log again (the Postgres log, or the Kafka topic when DD0C_LOG_URL selects it) into shadow tables
while the live worker keeps going, then swaps them in in one transaction (streams/replay/replay.py). Interrupted
(Ctrl-C, kill -9): run it again with the same options and it resumes; the live projections are untouched until
the swap commits.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from ops.cli.args import positive

PROJECTIONS = ("baselines", "anomalies", "resources", "all")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "replay",
        help="rebuild projections from the start of the log (new policy / prices) without stopping the worker",
        description="Rebuilds into shadow tables while the live worker keeps folding, catches up, then swaps them "
        "in atomically: API readers never see a half-built projection. --policy and --prices are stored in the "
        "same transaction, so the live worker scores and prices new events the same way afterwards.",
    )
    p.add_argument("--projection", action="append", choices=PROJECTIONS,
                   help="what to rebuild and swap (repeatable; default all = cost events, baselines, anomalies, "
                   "resources and fold metrics). A subset is swapped at exactly the live worker's position.")
    p.add_argument("--policy", type=Path, metavar="FILE",
                   help="TOML scoring policy to replay with; becomes the policy of --tenant (default DD0C_TENANT)")
    p.add_argument("--prices", type=Path, metavar="FILE",
                   help="price snapshot (dd0c-prices/1 JSON, gzipped or not) to replay with; every worker uses it "
                   "after the swap")
    p.add_argument("--tenant", help="rebuild only this tenant's rows (default: every tenant)")
    p.add_argument("--batch", type=positive(int), default=2000, help="log entries per shadow transaction")
    p.add_argument("--format", choices=("table", "json"), default="table", help="the summary printed at the end")
    p.set_defaults(func=run)


class _Bar:
    """tqdm over log positions on stderr, with ETA; silent when stderr is not a terminal."""

    def __init__(self) -> None:
        from tqdm import tqdm

        self._bar = tqdm(total=0, unit="seq", unit_scale=True, dynamic_ncols=True, file=sys.stderr,
                         disable=not sys.stderr.isatty(), desc="replay")
        self._at = 0

    def target(self, position: int) -> None:
        if position > (self._bar.total or 0):
            self._bar.total = position
            self._bar.refresh()

    def at(self, position: int) -> None:
        if position > self._at:
            self._bar.update(position - self._at)
            self._at = position

    def phase(self, text: str) -> None:
        self._bar.set_description(f"replay: {text}")

    def close(self) -> None:
        self._bar.close()


def run(args: argparse.Namespace) -> int:
    from ops.runtime import database_url
    from ops.settings import load_settings
    from streams.log.kafka import KafkaSpec, is_kafka_url
    from streams.prices.table import load_default_prices, load_prices
    from streams.replay.replay import ReplayOptions, replay
    from streams.score.policy import load_policy, policy_to_mapping

    settings = load_settings()
    policy = policy_to_mapping(load_policy(args.policy)) if args.policy else None  # bad file: fails before any work
    options = ReplayOptions(
        projection=tuple(args.projection or ("all",)),
        tenant=args.tenant,
        policy=policy,
        policy_tenant=args.tenant or settings.tenant,
        prices=load_prices(args.prices) if args.prices else None,
        batch=args.batch,
        kafka=KafkaSpec.from_settings(settings) if is_kafka_url(settings.log_url) else None,
    )
    bar = _Bar()
    try:
        result = asyncio.run(replay(database_url(), load_default_prices(), options, bar))
    finally:
        bar.close()
    summary: dict[str, Any] = {
        "mode": result.mode,
        "swapped": list(result.tables),
        "tenant": options.tenant,
        "live_runner": result.live_runner,
        "position": result.position,
        "generation": result.generation,
        "resumed": result.resumed,
        "entries_folded": result.entries,
        "gap_folded_in_lock": result.gap_in_lock,
        "anomalies_before": result.anomalies_before,
        "anomalies_after": result.anomalies_after,
        "seconds": round(result.seconds, 2),
        "policy": f"{args.policy} -> tenant {options.policy_tenant}" if args.policy else None,
        "prices": str(args.prices) if args.prices else None,
    }
    if args.format == "json":
        from schemas.codec import dumps

        print(dumps(summary))
    else:
        width = max(len(k) for k in summary)
        for key, value in summary.items():
            print(f"{key.replace('_', ' ').ljust(width)}  {'-' if value is None else value}")
    return 0
