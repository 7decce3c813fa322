"""`dd0c-cost backfill --since DATE [--until DATE] [--account A]`: read a date range of trail-bucket day folders
into the log now, instead of waiting for the schedule (which reads yesterday and today only)."""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, date, datetime


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "backfill",
        help="read a date range of CloudTrail objects from the registered trail buckets",
        description="List and read the day folders from --since to --until (UTC, both included) of each "
        "registered account's trail bucket (or of the one bucket named by --bucket), resuming after the last "
        "object already read in each folder. Objects read before are not read again. Exit status 1 when a "
        "record was rejected or a listing/read failed.",
    )
    p.add_argument("--since", type=_day, required=True, metavar="DATE", help="first day, YYYY-MM-DD (UTC)")
    p.add_argument("--until", type=_day, metavar="DATE", help="last day, YYYY-MM-DD (default: today, UTC)")
    p.add_argument("--account", action="append", metavar="A", help="only this account (repeatable)")
    p.add_argument("--tenant", help="tenant (default: DD0C_TENANT, 'default')")
    trail = p.add_argument_group(
        "an unregistered trail", "read this bucket with the process's own AWS credentials instead of the registry "
        "(needs --account)")
    trail.add_argument("--bucket", help="the trail's S3 bucket")
    trail.add_argument("--prefix", default="", help="the trail's key prefix (before AWSLogs/)")
    trail.add_argument("--org-id", help="organization trail: AWSLogs/<org-id>/<account>/...")
    trail.add_argument("--region", action="append", metavar="R",
                       help="region folder to read (repeatable; default: every region found)")
    p.add_argument("--no-archive", action="store_true", help="do not copy what is read to the raw archive")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ops.ingest import format_report
    from ops.ingestion import on_stop_signals
    from ops.runtime import database_url
    from ops.settings import load_settings
    from projections.db import create_pool
    from schemas.events import Dd0cError
    from streams.accounts.registry import all_accounts
    from streams.archive import open_archive
    from streams.log.writer import open_log_writer
    from streams.poller import layout
    from streams.poller.poll import Poller
    from streams.poller.source import Target

    settings = load_settings()
    tenant = args.tenant or settings.tenant
    until = args.until or datetime.now(UTC).date()
    days = list(layout.days_between(args.since, until))
    if args.bucket and not args.account:
        raise Dd0cError("--bucket needs --account (the account whose folder to read)")

    async def main() -> int:
        stop = asyncio.Event()
        on_stop_signals(stop)
        pool = await create_pool(database_url())
        try:
            if args.bucket:
                targets = [
                    Target(tenant=tenant, account_id=a, bucket=args.bucket, prefix=args.prefix, org_id=args.org_id,
                           regions=tuple(args.region or ())) for a in args.account
                ]
            else:
                registered = [t for a in await all_accounts(pool, [tenant]) if (t := Target.of_account(a))]
                targets = [t for t in registered if not args.account or t.account_id in args.account]
                missing = sorted(set(args.account or ()) - {t.account_id for t in targets})
                if missing:
                    raise Dd0cError(f"not registered with a trail bucket for tenant {tenant}: {', '.join(missing)}"
                                    " (register with `dd0c-cost accounts add`, or name the bucket with --bucket)")
                if not targets:
                    raise Dd0cError(f"tenant {tenant} has no registered account with a trail bucket")
            await pool.execute(
                "INSERT INTO tenants (tenant_id, name) VALUES ($1, $1) ON CONFLICT (tenant_id) DO NOTHING", tenant
            )
            async with open_log_writer(pool, settings) as writer:
                poller = Poller(
                    pool, writer, keep_read_only=settings.keep_read_only, stop=stop,
                    archive=None if args.no_archive else open_archive(settings),
                )
                report = await poller.poll(targets, days)
        finally:
            await pool.close()
        print(format_report(report.as_ingest_report()))
        print(f"{len(days)} day(s) from {days[0]} to {days[-1]}, {len(targets)} account(s), "
              f"{report.listings} folder(s) listed, {len(report.objects)} object(s) read")
        for error in report.errors:
            print(f"error: {error}")
        if report.stopped:
            print("stopped before the end (signal): run the same backfill again to go on")
        return 0 if report.ok and not report.stopped else 1

    return asyncio.run(main())
