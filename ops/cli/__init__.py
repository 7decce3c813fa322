"""`dd0c-cost` - one command, one sub-command module each (ops/cli/<name>.py exposes `register(subparsers)`)."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from importlib.metadata import PackageNotFoundError, version

import asyncpg

from schemas.events import Dd0cError

# Each module registers its own sub-commands; the order here is the order `--help` lists them in.
COMMAND_MODULES = (
    "migrate", "ingest", "worker", "replay", "backtest", "api", "query", "users", "demo",
    "accounts", "backfill", "ingestion", "agent_token", "zombies", "notify", "panic",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dd0c-cost",
        description="dd0c/cost: AWS cost anomalies from CloudTrail, within a second of the event.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--version", action="version", version=f"dd0c-cost {_version()}")
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


def _version() -> str:
    try:
        return version("dd0c-cost")
    except PackageNotFoundError:
        return "unknown"


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
    except BrokenPipeError:
        # `dd0c-cost anomalies | head`: the reader left; not an error worth a traceback
        sys.stderr.close()
        return 0
    except EOFError:
        print("dd0c-cost: no input (stdin is closed); see --help for a non-interactive option", file=sys.stderr)
        return 1
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
        print(f"dd0c-cost: {_database_hint(exc)}", file=sys.stderr)
        return 1


def _database_hint(exc: BaseException) -> str:
    """One line a person can act on, instead of a driver traceback."""
    if isinstance(exc, asyncpg.UndefinedTableError):
        from ops.runtime import missing_schema_hint

        return f"{exc} - {missing_schema_hint()}"
    if isinstance(exc, asyncpg.exceptions.ClientConfigurationError):
        return f"DATABASE_URL is not a usable PostgreSQL URL ({exc})"
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc} (is the server at DATABASE_URL running? is the port free?)"
    return f"{type(exc).__name__}: {exc}"


if __name__ == "__main__":
    sys.exit(main())
