"""`dd0c-cost zombies scan|daemon|list|show|ack|snooze|reopen|scans|thresholds`: the zombie hunter.

`scan` hunts now (every registered account of the tenant, or `--account`), appends what it found to the log and
prints it; `daemon` is the zombie-hunter service: every registered account of every tenant, once per
DD0C_ZOMBIE_INTERVAL_HOURS (daily). The `zombies` projection is written by the worker, like every projection;
`scan --fold` also drains it afterwards so the list below is current at once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from collections.abc import Sequence
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from typing import Any

from ops.cli.args import positive
from schemas.codec import dumps
from schemas.events import Dd0cError

log = logging.getLogger("dd0c.zombies")


def _tenant(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tenant", help="tenant (default: DD0C_TENANT)")


def _format(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=("table", "json"), default="table")


def register(subparsers: argparse._SubParsersAction) -> None:
    from streams.zombies.pure import ALL_CHECKS

    p = subparsers.add_parser("zombies", help="hunt resources that bill but do nothing (read-only AWS calls)")
    sub = p.add_subparsers(dest="zombies_command", metavar="ACTION", required=True)

    scan = sub.add_parser(
        "scan", help="hunt now: scan registered accounts, log what is found",
        description="Scans every registered account of the tenant (or --account) in its enabled regions (or "
        "--region), appends ZombieDetected / ZombieResolved / ZombieScanCompleted to the log and prints the run. "
        "Exit 1 when a run failed (no check could run); a partial run (a region denied) exits 0 and names why.",
    )
    _tenant(scan)
    scan.add_argument("--account", action="append", default=[], help="only this account (repeat)")
    scan.add_argument("--region", action="append", default=[], help="only this region (repeat)")
    scan.add_argument("--check", action="append", default=[], choices=ALL_CHECKS, help="only this check (repeat)")
    scan.add_argument("--fold", action="store_true", help="drain the worker afterwards (projection current now)")
    _format(scan)
    scan.set_defaults(func=run_scan)

    daemon = sub.add_parser("daemon", help="the zombie-hunter service: hunt every account, daily")
    daemon.add_argument("--interval-hours", type=positive(float),
                        help="hours between hunts (default DD0C_ZOMBIE_INTERVAL_HOURS, 24)")
    daemon.add_argument("--once", action="store_true", help="one round, then exit")
    daemon.set_defaults(func=run_daemon)

    ls = sub.add_parser("list", help="zombies with their monthly waste, totals per account and check")
    _tenant(ls)
    ls.add_argument("--account")
    ls.add_argument("--check", choices=ALL_CHECKS)
    ls.add_argument("--status", default="open",
                    choices=("open", "acknowledged", "snoozed", "resolved", "active", "all"))
    _format(ls)
    ls.set_defaults(func=run_list)

    show = sub.add_parser("show", help="one zombie with its evidence and history")
    show.add_argument("zombie_id", help="its id, a unique start of it, or the resource id (vol-..., nat-...)")
    _tenant(show)
    show.set_defaults(func=run_show)

    for name, help_text in (("ack", "acknowledge a zombie (kept until it resolves)"),
                            ("snooze", "put a zombie off for some days"),
                            ("reopen", "undo an acknowledgement or a snooze")):
        action = sub.add_parser(name, help=help_text)
        action.add_argument("zombie_id", help="its id, a unique start of it, or the resource id")
        action.add_argument("--reason", required=True, help="why (kept in the log)")
        action.add_argument("--by", default="cli", help="who (default: cli)")
        if name == "snooze":
            action.add_argument("--days", type=positive(float), required=True)
        _tenant(action)
        action.set_defaults(func=run_action, action=name)

    scans = sub.add_parser("scans", help="the latest scan runs: status, region errors, AWS calls")
    _tenant(scans)
    scans.add_argument("--account")
    scans.add_argument("--limit", type=positive(int), default=20)
    _format(scans)
    scans.set_defaults(func=run_scans)

    th = sub.add_parser("thresholds", help="show or set the tenant's check thresholds (defaults documented)")
    _tenant(th)
    th.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="set one (repeat)")
    th.add_argument("--reset", action="store_true", help="back to every default")
    th.set_defaults(func=run_thresholds)


# ---------------------------------------------------------------------------------------------------- helpers


def _tenant_of(args: argparse.Namespace) -> str:
    from ops.settings import load_settings

    return str(getattr(args, "tenant", None) or load_settings().tenant)


async def _with_pool(work: Any) -> Any:
    from ops.runtime import database_url
    from projections.db import create_pool

    pool = await create_pool(database_url())
    try:
        return await work(pool)
    finally:
        await pool.close()


def _zombies(n: int, width: int = 0) -> str:
    return f"{n:>{width}} zombie" + ("" if n == 1 else "s")


def _money(value: float | None) -> str:
    from streams.notify.messages import cents  # half-up, as the digest and the demo print the same figures

    return "unpriced" if value is None else cents(value)


def _targets(accounts: Sequence[Any], wanted: Sequence[str]) -> list[Any]:
    chosen = [a for a in accounts if not wanted or a.account_id in wanted]
    missing = sorted(set(wanted) - {a.account_id for a in accounts})
    if missing:
        raise Dd0cError(f"account(s) {', '.join(missing)} not registered; see `dd0c-cost accounts list`")
    return chosen


async def hunt_accounts(pool: Any, accounts: Sequence[Any], *, regions: Sequence[str] = (),
                        checks: Sequence[str] = ()) -> list[Any]:
    """Hunt each registered account (streams.accounts.Account) in turn; one failing account never stops the rest."""
    from botocore.exceptions import BotoCoreError, ClientError

    from ops.settings import load_settings
    from streams.accounts import boto3_session, verify_identity
    from streams.log.writer import open_log_writer
    from streams.prices.table import load_default_prices
    from streams.zombies.hunt import SimpleTarget, hunt_account, record_unreachable
    from streams.zombies.pure import ALL_CHECKS

    settings = load_settings()
    prices = load_default_prices()
    reports = []
    async with open_log_writer(pool, settings) as writer:
        for account in accounts:
            target = SimpleTarget(account.tenant, account.account_id, tuple(account.trail.regions))
            try:  # AssumeRole and GetCallerIdentity happen here (blocking calls): off the event loop
                session = await asyncio.to_thread(boto3_session, account, settings, region=settings.zombie_home_region)
                await asyncio.to_thread(verify_identity, session, account.account_id, settings.zombie_home_region)
                reports.append(await hunt_account(
                    pool, writer, target, session, prices=prices, regions=list(regions) or None,
                    checks=list(checks) or ALL_CHECKS, home_region=settings.zombie_home_region,
                    max_attempts=settings.zombie_max_attempts,
                ))
            except (Dd0cError, ClientError, BotoCoreError) as exc:  # bad credentials, role refused, another
                # account's credentials: recorded as a failed run (the API and `zombies scans` show it), then the next
                reports.append(await record_unreachable(
                    writer, target, exc, home_region=settings.zombie_home_region, checks=list(checks) or ALL_CHECKS,
                    regions=list(regions) or None,
                ))
    return reports


def _print_report(report: Any) -> None:
    r = report.result
    waste = sum(z.monthly_waste_usd or 0.0 for z in r.found)
    print(f"account {report.account_id}: {r.status} - {_zombies(len(r.found))}, {_money(waste)}/month, "
          f"{report.resolved} resolved, regions {', '.join(r.regions_scanned) or '-'}, {r.calls_made} AWS calls"
          f" ({r.retries} retries)")
    if r.reason:
        print(f"  ! {r.reason}")
    for e in r.region_errors:
        print(f"  ! {e.region}: {e.operation} {e.code}" + (f" (check {e.check})" if e.check else ""))
    for z in sorted(r.found, key=lambda z: -(z.monthly_waste_usd or 0.0)):
        estimated = " (estimate)" if _estimated(z.evidence) else ""
        print(f"  {_money(z.monthly_waste_usd):>12}{estimated}  {z.check:<24} {z.region:<14} {z.resource_id}")
    for item in report.not_judged:
        print(f"  ? {item['check']} {item['region']} {item['resource_id']}: {item['status']}")


def _estimated(evidence: Any) -> bool:
    price = evidence.get("price")
    parts = price if isinstance(price, list) else [price]
    return any(isinstance(p, dict) and p.get("estimated") for p in parts)


# ---------------------------------------------------------------------------------------------------- commands


def run_scan(args: argparse.Namespace) -> int:
    from streams.accounts import list_accounts

    tenant = _tenant_of(args)

    async def work(pool: Any) -> list[Any]:
        accounts = _targets(await list_accounts(pool, tenant), args.account)
        if not accounts:
            raise Dd0cError(f"tenant {tenant!r} has no registered AWS account; add one with `dd0c-cost accounts add`")
        reports = await hunt_accounts(pool, accounts, regions=args.region, checks=args.check)
        if args.fold:
            await _drain()
        return reports

    reports = asyncio.run(_with_pool(work))
    if args.format == "json":
        sys.stdout.write(dumps([_report_json(r) for r in reports]) + "\n")
    else:
        for report in reports:
            _print_report(report)
    return 1 if any(r.result.status == "failed" for r in reports) or len(reports) < len(args.account or []) else 0


def _report_json(report: Any) -> dict[str, Any]:
    r = report.result
    return {
        "account_id": report.account_id,
        "scan_id": report.scan_id,
        "status": r.status,
        "reason": r.reason,
        "regions_scanned": list(r.regions_scanned),
        "errors": [{"region": e.region, "code": e.code, "operation": e.operation, "check": e.check}
                   for e in r.region_errors],
        "calls_made": r.calls_made,
        "retries": r.retries,
        "resolved": report.resolved,
        "zombies": [{"check": z.check, "region": z.region, "resource_id": z.resource_id,
                     "monthly_waste_usd": z.monthly_waste_usd, "evidence": dict(z.evidence)} for z in r.found],
        "not_judged": report.not_judged,
    }


async def _drain() -> None:
    from ops.runtime import database_url
    from streams.prices.table import load_default_prices
    from streams.runner.postgres import PostgresRunner

    await PostgresRunner(database_url(), load_default_prices()).run(drain=True)


def run_daemon(args: argparse.Namespace) -> int:
    from ops.settings import load_settings
    from streams.accounts import all_accounts

    hours = args.interval_hours or load_settings().zombie_interval_hours

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)

        async def round_(pool: Any) -> None:
            accounts = await all_accounts(pool)
            log.info("zombie hunt: %d account(s)", len(accounts))
            await hunt_accounts(pool, accounts)

        while not stop.is_set():
            try:
                await _with_pool(round_)
            except (Dd0cError, OSError) as exc:  # the database or a config problem: try again next round
                log.error("zombie hunt round failed: %s", exc)
            if args.once:
                break
            try:
                await asyncio.wait_for(stop.wait(), hours * 3600)
            except TimeoutError:
                pass
        return 0

    return asyncio.run(main())


def run_list(args: argparse.Namespace) -> int:
    from projections.zombies import queries

    tenant = _tenant_of(args)

    async def work(pool: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        filters = {"account": args.account, "check": args.check, "status": args.status}
        rows = await queries.list_zombies(pool, tenant, limit=100_000, **filters)
        return rows, await queries.zombie_totals(pool, tenant, **filters)

    rows, totals = asyncio.run(_with_pool(work))
    if args.format == "json":
        sys.stdout.write(dumps({"items": rows, **totals}) + "\n")
        return 0
    if rows:
        print(f"{'$/month':>12}  {'status':<12} {'check':<24} {'account':<12} {'region':<14} resource  [zombie id]")
    for z in sorted(rows, key=lambda z: -(z["monthly_waste_usd"] or 0.0)):
        print(f"{_money(z['monthly_waste_usd']):>12}  {z['status']:<12} {z['check']:<24} {z['account_id']:<12} "
              f"{z['region']:<14} {z['resource_id']}  [{z['zombie_id']}]")
    print(f"{_zombies(totals['count'])}, {_money(totals['monthly_waste_usd'])}/month"
          + (f" ({totals['unpriced']} unpriced)" if totals["unpriced"] else ""))
    for a in totals["by_account"]:
        print(f"  account {a['account_id']}: {a['count']}, {_money(a['monthly_waste_usd'])}/month")
    for c in totals["by_check"]:
        print(f"  {c['check']}: {c['count']}, {_money(c['monthly_waste_usd'])}/month")
    return 0


def run_show(args: argparse.Namespace) -> int:
    from projections.zombies import queries

    tenant = _tenant_of(args)

    async def work(pool: Any) -> dict[str, Any] | None:
        return await queries.get_zombie(pool, tenant, await resolve_id(pool, tenant, args.zombie_id))

    found = asyncio.run(_with_pool(work))
    if found is None:
        raise Dd0cError(f"no zombie {args.zombie_id} for tenant {tenant!r}")
    sys.stdout.write(json.dumps(json.loads(dumps(found)), indent=2) + "\n")
    return 0


def run_action(args: argparse.Namespace) -> int:
    from streams.zombies import events as ev

    tenant = _tenant_of(args)
    name = {"ack": ev.ACKNOWLEDGED, "snooze": ev.SNOOZED, "reopen": ev.REOPENED}[args.action]
    now = datetime.now(UTC)
    until = now + timedelta(days=args.days) if args.action == "snooze" else None

    async def work(pool: Any) -> str:
        zid = await resolve_id(pool, tenant, args.zombie_id)
        await record_action(pool, tenant, zid, name, by=args.by, reason=args.reason, at=now, until=until)
        return zid

    zid = asyncio.run(_with_pool(work))
    print(f"{args.action}: {zid} (logged; the worker folds it into the zombies list)")
    return 0


async def resolve_id(pool: Any, tenant: str, given: str) -> str:
    """What a person types: the whole id, a unique start of it (as they would a git hash), or the resource id. An
    ambiguous start is refused with the matches; anything unknown is passed on and reported as not found."""
    text = given.strip()
    if len(text) < 4:
        return text
    rows = await pool.fetch(
        "SELECT zombie_id, resource_id, check_name FROM zombies WHERE tenant_id = $1 AND"
        " (zombie_id = $2 OR resource_id = $2 OR starts_with(zombie_id, $2)) ORDER BY zombie_id LIMIT 6",
        tenant, text,
    )
    exact = [r["zombie_id"] for r in rows if text in (r["zombie_id"], r["resource_id"])]
    if len(exact) == 1 or (len(rows) == 1 and not exact):
        return exact[0] if exact else str(rows[0]["zombie_id"])
    if len(rows) > 1:
        listed = ", ".join(f"{r['zombie_id']} ({r['check_name']} {r['resource_id']})" for r in rows[:5])
        raise Dd0cError(f"{given!r} matches more than one zombie: {listed}; give more of the id")
    return text


async def record_action(pool: Any, tenant: str, zid: str, name: str, *, by: str, reason: str, at: datetime,
                        until: datetime | None = None) -> Any:
    """Append a person's decision about a zombie to the log (after checking the zombie exists)."""
    from ops.settings import load_settings
    from streams.log.writer import open_log_writer
    from streams.zombies import events as ev

    account = await pool.fetchval("SELECT account_id FROM zombies WHERE tenant_id = $1 AND zombie_id = $2",
                                  tenant, zid)
    if account is None:
        raise Dd0cError(f"no zombie {zid} for tenant {tenant!r}")
    if not reason.strip():
        raise Dd0cError("a reason is required")
    entry = ev.action_entry(tenant, account, zid, name, by=by, reason=reason.strip(), at=at, until=until)
    async with open_log_writer(pool, load_settings()) as writer:
        await writer.append([entry])
    return entry


def run_scans(args: argparse.Namespace) -> int:
    from projections.zombies import queries

    tenant = _tenant_of(args)
    rows = asyncio.run(_with_pool(lambda pool: queries.list_scans(pool, tenant, account=args.account,
                                                                   limit=args.limit)))
    if args.format == "json":
        sys.stdout.write(dumps(rows) + "\n")
        return 0
    if not rows:
        print(f"no zombie scan recorded for tenant {tenant!r}" + (f" account {args.account}" if args.account else "")
              + " yet; run `dd0c-cost zombies scan`")
        return 0
    for r in rows:
        errors = r.get("reason") or "; ".join(f"{e['region']} {e['operation']} {e['code']}"
                                              for e in r.get("errors") or ())
        print(f"{r['scanned_at']:%Y-%m-%d %H:%M}  {r['account_id']}  {r['status']:<8} {_zombies(r['zombies_found'], 4)}"
              f"  {r['calls_made']} calls" + (f"  ! {errors}" if errors else ""))
    return 0


def run_thresholds(args: argparse.Namespace) -> int:
    from projections.zombies import queries
    from streams.zombies.pure import CheckThresholds

    tenant = _tenant_of(args)

    async def work(pool: Any) -> dict[str, Any]:
        stored = {} if args.reset else await queries.thresholds_of(pool, tenant)
        for item in args.set:
            key, sep, value = item.partition("=")
            if not sep:
                raise Dd0cError(f"--set wants KEY=VALUE, got {item!r}")
            try:
                stored[key.strip()] = json.loads(value)
            except json.JSONDecodeError:
                raise Dd0cError(f"--set {key}: {value!r} is not a number") from None
        CheckThresholds.from_mapping(stored)  # refuse unknown keys and bad values before storing
        if args.set or args.reset:
            done = await pool.execute("UPDATE tenants SET zombie_thresholds = $2::jsonb WHERE tenant_id = $1",
                                      tenant, stored)  # the pool codec encodes JSONB
            if done == "UPDATE 0":
                raise Dd0cError(f"no tenant {tenant!r}")
        return stored

    stored = asyncio.run(_with_pool(work))
    effective = CheckThresholds.from_mapping(stored)
    for f in fields(CheckThresholds):
        mark = "" if f.name not in stored else "  (tenant)"
        print(f"{f.name} = {getattr(effective, f.name)}{mark}")
    return 0
