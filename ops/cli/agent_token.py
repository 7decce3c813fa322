"""`dd0c-cost agent-token create|list|revoke`: per-tenant tokens for dd0c-cost-agent (stored hashed)."""

from __future__ import annotations

import argparse
import asyncio
import sys

from ops.runtime import database_url
from ops.settings import load_settings
from projections.db import connect
from schemas.events import Dd0cError
from streams.ingest_grpc.tokens import TokenRow, create_token, list_tokens, revoke_token


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("agent-token", help="tokens for dd0c-cost-agent (per tenant, stored hashed)")
    sub = p.add_subparsers(dest="agent_token_command", metavar="ACTION", required=True)
    create = sub.add_parser("create", help="create a token and print it (shown once; only its hash is kept)")
    create.add_argument("--tenant", help="tenant id (default DD0C_TENANT, 'default'); created if new")
    create.add_argument("--name", default="", help="a label, e.g. the VPC or host the agent runs in")
    create.set_defaults(func=run_create)
    ls = sub.add_parser("list", help="list tokens (ids, never the tokens)")
    ls.add_argument("--tenant", help="only this tenant (default: all)")
    ls.set_defaults(func=run_list)
    revoke = sub.add_parser("revoke", help="revoke a token by its id (at_...); agents using it are refused")
    revoke.add_argument("token_id")
    revoke.set_defaults(func=run_revoke)


def run_create(args: argparse.Namespace) -> int:
    tenant = args.tenant or load_settings().tenant

    async def create() -> tuple[str, str]:
        conn = await connect(database_url())
        try:
            return await create_token(conn, tenant, args.name)
        finally:
            await conn.close()

    token_id, token = asyncio.run(create())
    print(token)  # alone on stdout, for `DD0C_AGENT_TOKEN=$(dd0c-cost agent-token create ...)`
    print(f"agent token {token_id} created for tenant {tenant}; it is shown only this once", file=sys.stderr)
    return 0


def run_list(args: argparse.Namespace) -> int:
    async def fetch() -> list[TokenRow]:
        conn = await connect(database_url())
        try:
            return await list_tokens(conn, args.tenant)
        finally:
            await conn.close()

    for row in asyncio.run(fetch()):
        state = f"revoked {row.revoked_at:%Y-%m-%d %H:%M}" if row.revoked_at else "active"
        print(f"{row.token_id}\t{row.tenant}\t{row.name}\t{row.created_at:%Y-%m-%d %H:%M}\t{state}")
    return 0


def run_revoke(args: argparse.Namespace) -> int:
    async def revoke() -> bool:
        conn = await connect(database_url())
        try:
            return await revoke_token(conn, args.token_id)
        finally:
            await conn.close()

    if not asyncio.run(revoke()):
        raise Dd0cError(f"no active agent token {args.token_id}")
    print(f"agent token {args.token_id} revoked")
    return 0
