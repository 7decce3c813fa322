"""`dd0c-cost migrate`: bring the database schema up to date (safe to run any number of times)."""

from __future__ import annotations

import argparse
import asyncio

from ops.migrate import migrate
from ops.runtime import database_url


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("migrate", help="apply database migrations (idempotent)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    applied = asyncio.run(migrate(database_url()))
    print(f"applied {len(applied)} migration(s)" + (": " + ", ".join(applied) if applied else "; up to date"))
    return 0
