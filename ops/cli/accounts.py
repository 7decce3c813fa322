"""`dd0c-cost accounts add|list|remove|check|policy|keygen` and `dd0c-cost accounts apikey create|list|revoke`.

Secrets never go on the command line (other users can read it in `ps`): the secret access key, or a role's
external id, is read from stdin with --secret-stdin (or typed at a prompt). Listing shows the access key id's last
four characters or the role ARN, nothing more.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg

from ops.runtime import database_url
from ops.settings import load_settings
from projections.db import connect
from schemas.events import Dd0cError

T = TypeVar("T")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("accounts", help="register AWS accounts, check their permissions, push API keys")
    sub = p.add_subparsers(dest="accounts_command", metavar="ACTION", required=True)

    add = sub.add_parser(
        "add", help="register an AWS account (credentials are encrypted with DD0C_SECRET_KEY)",
        description="Register an account with an access key pair (--access-key-id, secret on stdin), a role "
        "(--role-arn, optional --external-id) or neither (the server's own credentials). Once a tenant has a "
        "registered account, records of unregistered accounts are rejected to the dead letters.",
    )
    add.add_argument("account_id", metavar="ACCOUNT")
    _tenant(add)
    add.add_argument("--name", default="", help="a label")
    add.add_argument("--access-key-id", help="access key id (the secret access key is read from stdin/prompt)")
    add.add_argument("--role-arn", help="role to assume through STS")
    add.add_argument("--external-id", help="the role's external id (or give it on stdin with --secret-stdin)")
    add.add_argument("--secret-stdin", action="store_true",
                     help="read the secret access key (or, with --role-arn, the external id) from stdin")
    add.add_argument("--bucket", help="the trail's S3 bucket")
    add.add_argument("--prefix", default="", help="the trail's S3 key prefix (before AWSLogs/)")
    add.add_argument("--org-id", help="organization trail id (keys are AWSLogs/<org-id>/<account>/...)")
    add.add_argument("--region", action="append", default=[], dest="regions",
                     help="a region to poll (repeat; default: every region found)")
    add.add_argument("--queue-url", help="SQS queue receiving the bucket's object notifications")
    add.add_argument("--replace", action="store_true", help="overwrite an existing registration")
    add.set_defaults(func=run_add)

    ls = sub.add_parser("list", help="list registered accounts (no secrets)")
    _tenant(ls)
    ls.set_defaults(func=run_list)

    rm = sub.add_parser("remove", help="unregister an account (its records already logged stay)")
    rm.add_argument("account_id", metavar="ACCOUNT")
    _tenant(rm)
    rm.set_defaults(func=run_remove)

    check = sub.add_parser(
        "check", help="try each permission dd0c/cost needs (read-only calls) and name the missing ones",
        description="Exit status 0 when every permission tried is granted, 1 otherwise. See ops/docs/onboarding.md "
        "for what a probe can and cannot show.",
    )
    check.add_argument("account_id", metavar="ACCOUNT")
    _tenant(check)
    check.add_argument("--region", help="region for the zombie-hunter probes (default: the account's first)")
    check.set_defaults(func=run_check)

    policy = sub.add_parser("policy", help="print the least-privilege read-only IAM policy (JSON)")
    policy.add_argument("--bucket", default="<trail-bucket>")
    policy.add_argument("--prefix", default="")
    policy.add_argument("--queue-arn")
    policy.add_argument("--trust", metavar="PRINCIPAL_ARN",
                        help="print the role's trust policy for this dd0c/cost principal instead")
    policy.add_argument("--external-id", default="<external-id>", help="with --trust")
    policy.set_defaults(func=run_policy)

    keygen = sub.add_parser("keygen", help="print a new DD0C_SECRET_KEY")
    keygen.set_defaults(func=run_keygen)

    apikey = sub.add_parser("apikey", help="API keys for HTTP push (POST /v1/ingest/cloudtrail)")
    key_sub = apikey.add_subparsers(dest="apikey_command", metavar="ACTION", required=True)
    create = key_sub.add_parser("create", help="create a key; it is printed once and stored only hashed")
    _tenant(create)
    create.add_argument("--name", default="", help="a label (who uses it)")
    create.set_defaults(func=run_apikey_create)
    key_ls = key_sub.add_parser("list", help="list keys (ids only)")
    _tenant(key_ls)
    key_ls.set_defaults(func=run_apikey_list)
    revoke = key_sub.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id")
    _tenant(revoke)
    revoke.set_defaults(func=run_apikey_revoke)


def _tenant(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tenant", help="tenant id (default DD0C_TENANT, 'default')")


def _with_db(work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    async def go() -> T:
        conn = await connect(database_url())
        try:
            return await work(conn)
        finally:
            await conn.close()

    return asyncio.run(go())


def _read_secret(from_stdin: bool, prompt: str) -> str:
    value = sys.stdin.readline().rstrip("\r\n") if from_stdin else getpass.getpass(prompt)
    if not value:
        raise Dd0cError("no secret given" + (" on stdin" if from_stdin else ""))
    return value


def run_add(args: argparse.Namespace) -> int:
    from streams.accounts import SecretBox, TrailLocation, add_account

    settings = load_settings()
    tenant = args.tenant or settings.tenant
    secret_key = external_id = None
    if args.access_key_id:
        secret_key = _read_secret(args.secret_stdin, "Secret access key: ")
    elif args.role_arn:
        external_id = args.external_id or (_read_secret(True, "") if args.secret_stdin else None)
    elif args.secret_stdin or args.external_id:
        raise Dd0cError("--secret-stdin / --external-id need --access-key-id or --role-arn")
    box = SecretBox.from_settings(settings) if (args.access_key_id or args.role_arn) else None
    trail = TrailLocation(bucket=args.bucket, prefix=args.prefix, org_id=args.org_id, regions=tuple(args.regions),
                          queue_url=args.queue_url)
    account = _with_db(lambda conn: add_account(
        conn, box, tenant, args.account_id, name=args.name, access_key_id=args.access_key_id,
        secret_access_key=secret_key, role_arn=args.role_arn, external_id=external_id, trail=trail,
        replace=args.replace,
    ))
    how = {"access_key": f"access key …{account.key_hint}", "role": f"role {account.role_arn}",
           "none": "the server's own credentials"}[account.auth]
    print(f"account {account.account_id} {'updated' if args.replace else 'registered'} for tenant {tenant} ({how})")
    return 0


def run_list(args: argparse.Namespace) -> int:
    from streams.accounts import list_accounts

    tenant = args.tenant or load_settings().tenant
    accounts = _with_db(lambda conn: list_accounts(conn, tenant))
    if not accounts:
        print(f"no accounts registered for tenant {tenant} (records of every account are accepted)")
    for a in accounts:
        how = f"key …{a.key_hint}" if a.auth == "access_key" else (a.role_arn or "own credentials")
        where = f"s3://{a.trail.bucket}/{a.trail.account_root(a.account_id)}" if a.trail.bucket else "-"
        print("\t".join([a.account_id, a.name or "-", a.auth, how, where, ",".join(a.trail.regions) or "all"]))
    return 0


def run_remove(args: argparse.Namespace) -> int:
    from streams.accounts import remove_account

    tenant = args.tenant or load_settings().tenant
    if not _with_db(lambda conn: remove_account(conn, tenant, args.account_id)):
        raise Dd0cError(f"account {args.account_id} is not registered for tenant {tenant}")
    print(f"account {args.account_id} removed from tenant {tenant}")
    return 0


def run_check(args: argparse.Namespace) -> int:
    from streams.accounts import get_account
    from streams.accounts.check import check_account, format_check

    settings = load_settings()
    tenant = args.tenant or settings.tenant
    account = _with_db(lambda conn: get_account(conn, tenant, args.account_id))
    report = check_account(account, settings, region=args.region)
    print(format_check(report))
    return 0 if report.ok else 1


def run_policy(args: argparse.Namespace) -> int:
    from streams.accounts.policy import as_json, reader_policy, trust_policy

    if args.trust:
        print(as_json(trust_policy(args.trust, args.external_id)))
    else:
        print(as_json(reader_policy(args.bucket, args.prefix, args.queue_arn)))
    return 0


def run_keygen(_args: argparse.Namespace) -> int:
    from streams.accounts import generate_key

    print(generate_key())
    return 0


def run_apikey_create(args: argparse.Namespace) -> int:
    from streams.accounts import create_api_key

    tenant = args.tenant or load_settings().tenant
    issued = _with_db(lambda conn: create_api_key(conn, tenant, name=args.name))
    print(issued.key)
    print(f"API key {issued.info.key_id} for tenant {tenant}: shown once, stored hashed. Send it as "
          "`Authorization: Bearer <key>` or `X-Api-Key: <key>`.", file=sys.stderr)
    return 0


def run_apikey_list(args: argparse.Namespace) -> int:
    from streams.accounts import list_api_keys

    tenant = args.tenant or load_settings().tenant
    for key in _with_db(lambda conn: list_api_keys(conn, tenant)):
        state = f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "live"
        print(f"{key.key_id}\t{key.name or '-'}\t{key.scope}\t{key.created_at:%Y-%m-%d %H:%M}\t{state}")
    return 0


def run_apikey_revoke(args: argparse.Namespace) -> int:
    from streams.accounts import revoke_api_key

    tenant = args.tenant or load_settings().tenant
    _with_db(lambda conn: revoke_api_key(conn, tenant, args.key_id))
    print(f"API key {args.key_id} revoked")
    return 0
