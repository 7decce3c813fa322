"""`dd0c-cost notify daemon | digest | config | flags | deliveries`: Slack alerts and email digests.

The daemon is its own process: it reads committed anomalies, so nothing it does (a hanging webhook, a dead SMTP
server, Redis down) can slow the worker's fold.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from ops.cli.args import positive
from schemas.codec import dumps

log = logging.getLogger("dd0c.notify")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "notify",
        help="Slack alerts and daily email digests (daemon, digest, config, flags, deliveries)",
        description="Notifications are governed by Redis (REDIS_URL): panic mode (`dd0c-cost panic`), per-tenant "
        "flags and circuit breakers. Without Redis nothing is sent: alerts are held until it answers.",
    )
    sub = p.add_subparsers(dest="notify_command", metavar="ACTION")

    d = sub.add_parser("daemon", help="send alerts as anomalies are committed, and the daily digest")
    d.add_argument("--tenant", help="only this tenant (default: every tenant with channels configured)")
    d.add_argument("--poll", type=positive(float), help="seconds between polls (default DD0C_NOTIFY_POLL_INTERVAL)")
    d.set_defaults(func=run_daemon)

    g = sub.add_parser("digest", help="send the email digest (with --now: regardless of the daily schedule)")
    g.add_argument("--tenant", help="tenant id (default DD0C_TENANT); with --now and no --tenant: that tenant")
    g.add_argument("--now", action="store_true", help="send one now instead of only when due")
    g.set_defaults(func=run_digest)

    c = sub.add_parser("config", help="set or show a tenant's channels (Slack webhook, email recipients)")
    c.add_argument("--tenant", help="tenant id (default DD0C_TENANT)")
    c.add_argument("--slack-webhook", help="Slack incoming-webhook URL ('-' reads it from stdin; '' removes it)")
    c.add_argument("--email", help="comma-separated digest recipients ('' removes them)")
    c.set_defaults(func=run_config)

    f = sub.add_parser("flags", help="set or show a tenant's flags (in Redis)")
    f.add_argument("--tenant", help="tenant id (default DD0C_TENANT)")
    f.add_argument("--slack", choices=("on", "off"))
    f.add_argument("--email", choices=("on", "off"))
    f.add_argument("--severity-floor", help="lowest severity sent to Slack (info|low|medium|high|critical)")
    f.add_argument("--quiet", help="quiet hours HH:MM-HH:MM: non-critical alerts wait for the digest")
    f.add_argument("--tz", help="time zone of the quiet hours (IANA, e.g. Europe/Berlin; default UTC)")
    f.add_argument("--no-quiet", action="store_true", help="remove the quiet hours")
    f.set_defaults(func=run_flags)

    v = sub.add_parser("preview", help="print the next digest, or an anomaly's Slack message, without sending it")
    v.add_argument("what", choices=("digest", "alert"))
    v.add_argument("anomaly_id", nargs="?", help="alert: the anomaly (default: the newest at or above the floor)")
    v.add_argument("--tenant", help="tenant id (default DD0C_TENANT)")
    v.add_argument("--html", action="store_true", help="digest: the HTML part instead of the plain text")
    v.set_defaults(func=run_preview)

    r = sub.add_parser("deliveries", help="what was sent, failed, suppressed or held, and why (newest first)")
    r.add_argument("--tenant", help="tenant id (default DD0C_TENANT)")
    r.add_argument("--status", choices=("sent", "failed", "suppressed", "held"))
    r.add_argument("--limit", type=positive(int), default=50)
    r.set_defaults(func=run_deliveries)

    p.set_defaults(func=lambda _a: (p.print_help(), 2)[1])


def _with(work: Callable[[Any, Any, Any], Awaitable[int]]) -> int:
    """Run `work(settings, pool, governance)` with a pool on DATABASE_URL and a Governance on REDIS_URL."""
    from ops.runtime import database_url
    from ops.settings import load_settings
    from projections.db import create_pool
    from streams.notify.governance import Governance

    settings = load_settings()

    async def main() -> int:
        pool = await create_pool(database_url(), min_size=1, max_size=8)
        gov = Governance.from_settings(settings) if settings.redis_url else None
        try:
            return await work(settings, pool, gov)
        finally:
            if gov is not None:
                await gov.aclose()
            await pool.close()

    return asyncio.run(main())


def _tenant(args: argparse.Namespace, settings: Any) -> str:
    return str(args.tenant or settings.tenant)


def _need(gov: Any) -> Any:
    from streams.notify.governance import GovernanceUnavailable

    if gov is None:
        raise GovernanceUnavailable("REDIS_URL is not set: panic mode, flags and breakers need Redis")
    return gov


def run_daemon(args: argparse.Namespace) -> int:
    from ops.runtime import database_url
    from streams.notify.service import Notifier, NotifierConfig

    async def work(settings: Any, pool: Any, gov: Any) -> int:
        config = NotifierConfig.from_settings(settings)
        if gov is None:
            log.warning("notify: REDIS_URL is not set; every alert will be held until Redis is configured")
            gov = _need_placeholder(settings)
        notifier = Notifier(pool, gov, _poll(config, args.poll), tenant=args.tenant)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            await notifier.run_forever(database_url(), stop)
        finally:
            await notifier.aclose()
        return 0

    return _with(work)


def _poll(config: Any, poll: float | None) -> Any:
    from dataclasses import replace

    return replace(config, poll_interval=poll) if poll else config


def _need_placeholder(settings: Any) -> Any:
    """A Governance on an address nothing listens on: every check fails, so every alert is held (fail safe)."""
    from streams.notify.governance import Governance

    return Governance.from_settings(settings, url="redis://127.0.0.1:1/0")


def run_digest(args: argparse.Namespace) -> int:
    from streams.notify.service import Notifier, NotifierConfig

    async def work(settings: Any, pool: Any, gov: Any) -> int:
        notifier = Notifier(pool, gov or _need_placeholder(settings), NotifierConfig.from_settings(settings),
                            tenant=args.tenant)
        try:
            if args.now:
                outcomes = {_tenant(args, settings): await notifier.send_digest(_tenant(args, settings))}
            else:
                outcomes = await notifier.due_digests()
        finally:
            await notifier.aclose()
        for tenant, o in outcomes.items():
            print(f"{tenant}: digest {o.status} after {o.attempts} attempt(s){': ' + o.reason if o.reason else ''}")
        if not outcomes:
            print("no digest due")
        return 0 if all(o.status == "sent" for o in outcomes.values()) else 1

    return _with(work)


def run_preview(args: argparse.Namespace) -> int:
    """What a person would receive, rendered by the same code that sends it; nothing is sent or recorded."""
    from projections import queries
    from streams.notify import store
    from streams.notify.digest import render_html, render_text, subject
    from streams.notify.messages import slack_alert
    from streams.notify.service import Notifier, NotifierConfig

    async def work(settings: Any, pool: Any, gov: Any) -> int:
        tenant = _tenant(args, settings)
        config = NotifierConfig.from_settings(settings)
        if args.what == "digest":
            notifier = Notifier(pool, gov or _need_placeholder(settings), config, tenant=tenant)
            try:
                digest, _newest, _generation = await notifier.build_digest(tenant, datetime.now(UTC))
            finally:
                await notifier.aclose()
            print(render_html(digest) if args.html else f"Subject: {subject(digest)}\n\n{render_text(digest)}")
            return 0
        if args.anomaly_id:
            anomaly = await queries.get_anomaly(pool, tenant, args.anomaly_id)
        else:
            floor = (await gov.flags(tenant)).severity_floor if gov is not None else None
            newest = await queries.list_anomalies(pool, tenant, queries.AnomalyFilter(min_severity=floor), limit=1)
            anomaly = newest[0] if newest else None
        if anomaly is None:
            print(f"no anomaly {args.anomaly_id or 'yet'} for tenant {tenant!r}", file=sys.stderr)
            return 1
        ids = await store.resource_ids(pool, tenant, anomaly)
        print(dumps(slack_alert(anomaly, ids, config.base_url)))
        return 0

    return _with(work)


def run_config(args: argparse.Namespace) -> int:
    from streams.notify import store

    async def work(settings: Any, pool: Any, _gov: Any) -> int:
        tenant = _tenant(args, settings)
        changes: dict[str, Any] = {}
        if args.slack_webhook is not None:
            url = sys.stdin.readline().strip() if args.slack_webhook == "-" else args.slack_webhook
            changes["slack_webhook_url"] = url or None
        if args.email is not None:
            changes["email_to"] = [e for e in args.email.split(",") if e.strip()]
        async with pool.acquire() as conn:
            channels = (
                await store.set_channels(conn, tenant, **changes) if changes else await store.get_channels(conn, tenant)
            )
        print(dumps({"tenant": tenant, **(channels.public() if channels else {"configured": False})}))
        return 0

    return _with(work)


def run_flags(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from schemas.events import Severity
    from streams.notify.rules import QuietHours

    async def work(settings: Any, _pool: Any, gov: Any) -> int:
        gov = _need(gov)
        tenant = _tenant(args, settings)
        flags = await gov.flags(tenant)
        changed = flags
        if args.slack:
            changed = replace(changed, slack=args.slack == "on")
        if args.email:
            changed = replace(changed, email=args.email == "on")
        if args.severity_floor:
            changed = replace(changed, severity_floor=Severity.parse(args.severity_floor))
        if args.no_quiet:
            changed = replace(changed, quiet=None)
        elif args.quiet or args.tz:
            window = args.quiet or (f"{flags.quiet.start:%H:%M}-{flags.quiet.end:%H:%M}" if flags.quiet else None)
            if window is None:
                raise SystemExit("dd0c-cost: --tz needs --quiet (no quiet hours are set)")
            changed = replace(changed, quiet=QuietHours.parse(window, args.tz or "UTC"))
        if changed != flags:
            await gov.set_flags(tenant, changed)
        print(dumps({"tenant": tenant, **flags_json(changed)}))
        return 0

    return _with(work)


def flags_json(flags: Any) -> dict[str, Any]:
    return {
        "slack": flags.slack,
        "email": flags.email,
        "severity_floor": str(flags.severity_floor),
        "quiet_hours": None if flags.quiet is None else {
            "start": f"{flags.quiet.start:%H:%M}", "end": f"{flags.quiet.end:%H:%M}", "tz": flags.quiet.tz
        },
    }


def run_deliveries(args: argparse.Namespace) -> int:
    from streams.notify import store

    async def work(settings: Any, pool: Any, _gov: Any) -> int:
        tenant = _tenant(args, settings)
        rows = await store.list_deliveries(pool, tenant, limit=args.limit, status=args.status)
        if not rows:  # silence would read as "the command did nothing"
            which = f"{args.status} " if args.status else ""
            print(f"no {which}delivery recorded for tenant {tenant!r} yet (the notifier records each Slack alert and "
                  "digest it decides on: `dd0c-cost notify daemon`)")
        for r in rows:
            print(
                f"{r['created_at']:%Y-%m-%d %H:%M:%S}  {r['channel']:5} {r['kind']:6} {r['status']:10} "
                f"attempts={r['attempts']}  {r['severity'] or '-':8} {r['anomaly_id'] or '-'}  {r['reason']}"
            )
        return 0

    return _with(work)


def whoami() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
