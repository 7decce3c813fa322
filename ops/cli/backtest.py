"""`dd0c-cost backtest --policy FILE [--since] [--until] [--tenant] [--format table|json]`: what would FILE have
flagged, against the live policy, over the whole log? Folds in memory; nothing in the database changes."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ops.cli.query import when
from streams.score.text import usd

if TYPE_CHECKING:
    from schemas.events import Anomaly
    from streams.replay.backtest import BacktestReport


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "backtest",
        help="compare the anomalies a candidate policy would have raised with the live policy's (read-only)",
        description="Folds the whole log in memory twice, with the live policy and with FILE, and prints per "
        "account and severity the counts and the anomalies gained and lost, with their reasons. Nothing is "
        "written. Apply a policy you like with `dd0c-cost replay --policy FILE`.",
    )
    p.add_argument("--policy", type=Path, required=True, metavar="FILE", help="candidate TOML scoring policy")
    p.add_argument("--tenant", help="tenant whose policy is compared (default DD0C_TENANT); only its log is read")
    p.add_argument("--since", type=when, help="compare anomalies with event time >= this (ISO-8601 or 24h, 7d)")
    p.add_argument("--until", type=when, help="compare anomalies with event time < this")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.add_argument("--limit", type=int, default=50, help="gained/lost/changed anomalies listed in the table (each)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ops.runtime import database_url
    from ops.settings import load_settings
    from schemas.codec import dumps
    from streams.prices.table import load_default_prices
    from streams.replay.backtest import backtest
    from streams.score.policy import load_policy, policy_to_mapping

    settings = load_settings()
    tenant = args.tenant or settings.tenant
    candidate = policy_to_mapping(load_policy(args.policy))
    report = asyncio.run(backtest(
        database_url(), load_default_prices(), candidate, policy_tenant=tenant, tenant=tenant,
        since=args.since, until=args.until, fallback_policy_file=settings.policy_file,
    ))
    if args.format == "json":
        print(dumps(as_json(report)))
    else:
        print(as_table(report, args.limit))
    return 0


def _anomaly(a: Anomaly) -> dict[str, Any]:
    return {
        "id": a.id,
        "tenant": a.tenant,
        "account_id": a.account_id,
        "resource_type": a.resource_type,
        "region": a.region,
        "event_time": a.event_time,
        "event_ids": list(a.event_ids),
        "severity": a.severity.value,
        "hourly_cost": a.hourly_cost,
        "expected_hourly_cost": a.expected_hourly_cost,
        "z": a.z,
        "actor": a.actor,
        "reasons": [{"signal": r.signal, "text": r.text} for r in a.reasons],
    }


def as_json(r: BacktestReport) -> dict[str, Any]:
    return {
        "candidate_policy": r.candidate_policy,
        "tenant": r.policy_tenant,
        "policy_changes": {k: {"live": v[0], "candidate": v[1]} for k, v in r.policy_changes.items()},
        "entries": r.entries,
        "position": r.position,
        "since": r.since,
        "until": r.until,
        "totals": r.totals,
        "accounts": [
            {"tenant": t, "account_id": a, "severity": s, "live": c.live, "candidate": c.candidate,
             "gained": c.gained, "lost": c.lost}
            for (t, a, s), c in r.cells.items()
        ],
        "gained": [_anomaly(a) for a in r.gained],
        "lost": [_anomaly(a) for a in r.lost],
        "changed": [_anomaly(new) | {"live_severity": old.severity.value} for old, new in r.changed],
    }


def _line(sign: str, a: Anomaly, extra: str = "") -> str:
    cost = "unpriced" if a.hourly_cost is None else f"{usd(a.hourly_cost)}/h"  # as the reasons write dollars
    why = "; ".join(r.text for r in a.reasons) or "-"
    return (f"  {sign} {a.event_time:%Y-%m-%d %H:%M} {a.account_id} {a.resource_type} {a.severity.value}{extra} "
            f"{cost}: {why}")


def as_table(r: BacktestReport, limit: int = 50) -> str:
    window = f"{r.since or 'start'} .. {r.until or 'end'}"
    changes = ", ".join(f"{k} {v[0]} -> {v[1]}" for k, v in r.policy_changes.items()) or "none"
    lines = [
        f"backtest of policy {r.candidate_policy!r} for tenant {r.policy_tenant} against the live policy",
        f"policy changes: {changes}",
        f"log: {r.entries:,} entries folded (up to seq {r.position}); anomalies compared: event time {window}",
        "",
    ]
    head = ("account", "severity", "live", "candidate", "gained", "lost")
    body = [(a, s, str(c.live), str(c.candidate), f"+{c.gained}", f"-{c.lost}") for (_t, a, s), c in r.cells.items()]
    t, cells = r.totals, r.cells.values()
    body.append(("total", "", str(t["live"]), str(t["candidate"]), f"+{sum(c.gained for c in cells)}",
                 f"-{sum(c.lost for c in cells)}"))
    widths = [max(len(h), *(len(row[i]) for row in body)) for i, h in enumerate(head)]
    lines.append("(per severity: an anomaly whose severity changed counts -1 in its live severity's row and +1 in its")
    lines.append(" new one, so the columns' totals include the severity changes listed at the end)")
    lines.append("  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)).rstrip())
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in body]
    for title, sign, items in (("gained (the candidate flags, live does not)", "+", r.gained),
                               ("lost (live flags, the candidate does not)", "-", r.lost)):
        lines += ["", f"{title}: {len(items)}"]
        lines += [_line(sign, a) for a in items[:limit]]
        if len(items) > limit:
            lines.append(f"  ... {len(items) - limit} more (--format json lists all)")
    lines += ["", f"severity changed: {len(r.changed)}"]
    lines += [_line("~", new, f" (live {old.severity.value})") for old, new in r.changed[:limit]]
    if len(r.changed) > limit:
        lines.append(f"  ... {len(r.changed) - limit} more (--format json lists all)")
    return "\n".join(lines)
