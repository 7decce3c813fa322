"""`dd0c-cost demo [--stop] [--no-api] [--port N]`: the first run, with nothing installed or configured."""

from __future__ import annotations

import argparse

from ops.cli.args import loopback
from ops.demo.orchestrate import DEMO_RECORDS, DemoOptions
from ops.settings import load_settings
from schemas.events import Dd0cError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo",
        help="first run: embedded database, sample + generated CloudTrail, worker and API",
        description="Start the embedded PostgreSQL and Redis under the data dir (or use DATABASE_URL / REDIS_URL), "
        "migrate, ingest the "
        "shipped CloudTrail corpus and a generated multi-account history with injected incidents, fold it, "
        "create the `demo` user, then run the worker, the API and (with Redis) the notifier until Ctrl-C. "
        "Runs with DD0C_MODE=demo.",
    )
    p.add_argument("--stop", action="store_true", help="stop the embedded PostgreSQL and Redis and exit")
    p.add_argument("--no-api", action="store_true", help="prepare and print the anomalies, start nothing")
    p.add_argument("--host", help="API address (default DD0C_API_HOST, 127.0.0.1)")
    p.add_argument("--port", type=int, help="API port (default DD0C_API_PORT, 8080)")
    size = p.add_argument_group("generated history (regenerated when these change)")
    size.add_argument("--records", type=int, default=DEMO_RECORDS, help=f"records (default {DEMO_RECORDS:,})")
    size.add_argument("--days", type=int, default=21, help="days of history (default 21, at least 7)")
    size.add_argument("--accounts", type=int, default=4, help="accounts (default 4)")
    size.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    p.add_argument("--no-corpus", action="store_true", help="skip the shipped corpus of real CloudTrail files")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ops.demo import orchestrate

    if args.stop:
        return orchestrate.stop()
    from ops.demo.generate import require_days

    require_days(args.days)  # before any server starts or any file is read, not after the corpus
    settings = load_settings()
    host = args.host or settings.api_host
    if not loopback(host):
        raise Dd0cError(f"the demo serves on loopback only (got {host}): its token-signing secret is public")
    opts = DemoOptions(api=not args.no_api, host=host, port=args.port or settings.api_port, records=args.records,
                       days=args.days,
                       accounts=args.accounts, seed=args.seed, corpus=not args.no_corpus)
    return orchestrate.run(opts)
