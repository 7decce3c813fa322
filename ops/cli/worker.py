"""`dd0c-cost worker [--drain] [--tenant T]`: fold the log into the projections (one active worker)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING

from ops.cli.args import positive

if TYPE_CHECKING:
    from ops.settings import Settings
    from streams.runner.postgres import PostgresRunner

log = logging.getLogger("dd0c.worker")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "worker",
        help="fold the log into cost events, baselines, anomalies and resources",
        description="Reads the log after its checkpoint and writes the projections and the checkpoint in one "
        "transaction per batch. A second worker waits as a hot standby. SIGTERM/SIGINT finish the current "
        "batch and exit.",
    )
    p.add_argument("--drain", action="store_true", help="fold until the log is exhausted, then exit 0")
    p.add_argument("--tenant", help="fold only this tenant's entries (own checkpoint; do not mix with an "
                   "all-tenant worker on the same database)")
    p.add_argument("--batch", type=positive(int), help="entries per transaction (default: DD0C_WORKER_BATCH, 500)")
    p.add_argument("--poll", type=positive(float), default=5.0, help="seconds between polls when no NOTIFY arrives")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ops.runtime import database_url
    from ops.settings import load_settings
    from streams.log.kafka import is_kafka_url
    from streams.prices.table import load_default_prices
    from streams.runner.postgres import PostgresRunner

    settings = load_settings()
    if is_kafka_url(settings.log_url):
        return _run_kafka(args, settings)

    async def main() -> int:
        runner = PostgresRunner(
            database_url(), load_default_prices(), tenant=args.tenant, batch=args.batch, poll_interval=args.poll
        )
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, _stopper(runner, sig))
        stats = await runner.run(drain=args.drain)
        log.info(
            "worker stopped at seq %d: %d entries folded in %d batches, %d cost events, %d anomalies, %d rejected",
            stats.position, stats.entries, stats.batches, stats.cost_events, stats.anomalies, stats.rejected,
        )
        return 0

    return asyncio.run(main())


def _run_kafka(args: argparse.Namespace, settings: Settings) -> int:
    """The faust worker on the Kafka log (DD0C_LOG_URL=kafka://...); joins the group and folds until stopped."""
    from ops.runtime import database_url
    from schemas.events import Dd0cError
    from streams.prices.table import load_default_prices
    from streams.runner.faust_app import run_worker

    if args.drain or args.tenant:
        raise Dd0cError("--drain and --tenant need the Postgres log; on Kafka every worker folds the partitions the "
                        "group assigns it, until stopped")
    return run_worker(settings, database_url(), load_default_prices(), batch=args.batch or settings.worker_batch,
                      loglevel="debug" if getattr(args, "verbose", False) else "info")


def _stopper(runner: PostgresRunner, sig: signal.Signals) -> Callable[[], None]:
    def handler() -> None:
        log.info("%s: finishing the current batch, then stopping", sig.name)
        runner.stop()

    return handler
