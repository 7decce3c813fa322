"""`dd0c-cost panic on|off|status [--tenant T] --reason TEXT`: stop every notification at once (and clear it).

Without --tenant, `on`/`off` act globally (every tenant); `status` then shows the global switch. Each switch is
audited in Postgres (panic_audit: who, when, why); `status` lists the latest entries too.
"""

from __future__ import annotations

import argparse
from typing import Any

from ops.cli.notify import _with, whoami
from schemas.codec import dumps


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "panic",
        help="panic mode: stop every notification now (global or per tenant), audited",
        description="Panic mode lives in Redis (REDIS_URL) and is checked right before every send.",
    )
    p.add_argument("action", choices=("on", "off", "status"))
    p.add_argument("--tenant", help="only this tenant (default: the global switch; status then also lists every "
                   "tenant whose own switch is on)")
    p.add_argument("--reason", help="why (required for on and off; kept in the audit)")
    p.add_argument("--by", default=None, help="who (default: the OS user running the command)")
    p.add_argument("--format", choices=("text", "json"), default="text", help="text (default) or json")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from streams.notify import panic, store
    from streams.notify.governance import GovernanceUnavailable

    if args.action != "status" and not (args.reason or "").strip():
        raise SystemExit("dd0c-cost panic: --reason TEXT is required for on and off")

    async def work(_settings: Any, pool: Any, gov: Any) -> int:
        if gov is None:
            raise GovernanceUnavailable("REDIS_URL is not set: panic mode lives in Redis")
        actor = args.by or f"cli:{whoami()}"
        if args.action == "status":
            state = await panic.status(gov, args.tenant)
        else:
            async with pool.acquire() as conn:
                state = await panic.switch(
                    conn, gov, args.tenant, on=args.action == "on", actor=actor, reason=args.reason
                )
        history = await store.panic_history(pool, args.tenant, limit=5)
        out = {"scope": args.tenant or "global", **state, "audit": history}
        print(dumps(out) if args.format == "json" else describe(out))
        return 0

    return _with(work)


def _switch(who: dict[str, Any] | None, name: str) -> str:
    if who is None:
        return f"{name}: off"
    return f"{name}: ON since {who['at']:%Y-%m-%d %H:%M:%S} UTC by {who['actor']} ({who['reason']})"


def describe(out: dict[str, Any]) -> str:
    """The state in lines a person reads: the verdict, each switch, then the latest audit entries."""
    scope = out["scope"]
    silenced = out.get("tenants") or {}
    if out["active"]:
        verdict = "ACTIVE: no notification is sent"
    elif silenced:  # never say "notifications flow" while a tenant's own switch still holds them
        verdict = f"global switch off, but {len(silenced)} tenant(s) still silenced by their own switch"
    else:
        verdict = "off: notifications flow"
    lines = [f"panic mode for {'every tenant' if scope == 'global' else 'tenant ' + scope}: {verdict}",
             "  " + _switch(out["global"], "global switch")]
    if scope != "global":
        lines.append("  " + _switch(out["tenant"], f"tenant {scope}"))
    lines += ["  " + _switch(who, f"tenant {name}") + f"  (clear: dd0c-cost panic off --tenant {name} --reason ...)"
              for name, who in silenced.items()]
    if out["audit"]:
        lines.append("latest switches:")
        lines += [f"  {a['at']:%Y-%m-%d %H:%M:%S}  {a['scope']:<10} {a['action']:<3}  {a['actor']}: {a['reason']}"
                  for a in out["audit"]]
    return "\n".join(lines)
