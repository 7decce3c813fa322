"""`dd0c-cost users add USERNAME [--tenant] [--password-stdin]` and `dd0c-cost users list [--tenant]`."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys

from api.auth import create_user, list_users
from ops.runtime import database_url
from ops.settings import load_settings
from projections.db import connect
from schemas.events import Dd0cError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("users", help="manage API users (local accounts)")
    sub = p.add_subparsers(dest="users_command", metavar="ACTION", required=True)
    add = sub.add_parser("add", help="create a user (and its tenant if new)")
    add.add_argument("username")
    add.add_argument("--tenant", help="tenant id (default DD0C_TENANT, 'default')")
    add.add_argument(
        "--role", default="admin", choices=("admin", "viewer"),
        help="admin (default) or viewer; today both may read everything of their tenant",
    )
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin (one line)")
    add.add_argument("--replace", action="store_true", help="reset the password of an existing user")
    add.set_defaults(func=run_add)
    ls = sub.add_parser("list", help="list users")
    ls.add_argument("--tenant", help="only this tenant (default: all)")
    ls.set_defaults(func=run_list)


MIN_PASSWORD = 8


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Repeat password: ") != password:
            raise Dd0cError("passwords do not match")
    if len(password) < MIN_PASSWORD:
        raise Dd0cError(f"the password must have at least {MIN_PASSWORD} characters")
    return password


def run_add(args: argparse.Namespace) -> int:
    tenant = args.tenant or load_settings().tenant
    password = _read_password(args.password_stdin)

    async def add() -> None:
        conn = await connect(database_url())
        try:
            await create_user(conn, tenant, args.username, password, role=args.role, replace=args.replace)
        finally:
            await conn.close()

    asyncio.run(add())
    print(f"user {args.username} {'updated' if args.replace else 'added'} (tenant {tenant})")
    return 0


def run_list(args: argparse.Namespace) -> int:
    async def fetch() -> list[dict]:
        conn = await connect(database_url())
        try:
            return await list_users(conn, args.tenant)
        finally:
            await conn.close()

    for user in asyncio.run(fetch()):
        print(f"{user['tenant_id']}\t{user['username']}\t{user['role']}\t{user['created_at']:%Y-%m-%d %H:%M}")
    return 0
