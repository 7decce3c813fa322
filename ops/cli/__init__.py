"""`dd0c-cost` - one command, one sub-command module each (ops/cli/<name>.py exposes `register(subparsers)`)."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from schemas.events import Dd0cError

# Each module registers its own sub-commands; the order here is the order `--help` lists them in.
COMMAND_MODULES = ("migrate", "ingest", "worker", "api", "query", "users", "demo")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dd0c-cost",
        description="dd0c/cost: AWS cost anomalies from CloudTrail, within a second of the event.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"ops.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"ops.cli.{name}":
                continue  # a command not built yet
            raise
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except Dd0cError as exc:
        print(f"dd0c-cost: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
