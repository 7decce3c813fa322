"""`dd0c-cost anomalies | resources | baselines | cost-events`: read the projections from a terminal.

Same SQL as the API (projections.queries), straight from DATABASE_URL, for one tenant (default: DD0C_TENANT).
`--format table` prints aligned columns for people; `--format json` prints one JSON array for scripts.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg

from ops.cli.args import positive
from ops.runtime import database_url, missing_schema_hint
from ops.settings import load_settings
from projections import queries
from projections.db import connect
from schemas.ages import age_ago
from schemas.codec import dumps
from schemas.events import Dd0cError, Severity

Row = dict[str, Any]
Fetch = Callable[[int, Any], Awaitable[list[Row]]]



# ---------------------------------------------------------------------------------------------------- arguments


def when(text: str) -> datetime:
    """`--since/--until`: ISO-8601 (a naive time is UTC) or an age such as 90m, 24h, 7d, 2w."""
    ago = age_ago(text)
    if ago is not None:
        return ago
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a time: {text!r} (use ISO-8601 or an age like 24h, 7d)") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def severity(text: str) -> Severity:
    try:
        return Severity.parse(text)
    except Dd0cError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def register(subparsers: argparse._SubParsersAction) -> None:
    def common(name: str, help_text: str, func: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
        p = subparsers.add_parser(name, help=help_text)
        p.add_argument("--tenant", help="tenant id (default DD0C_TENANT, 'default')")
        p.add_argument("--account", help="AWS account id")
        p.add_argument("--resource-type", help="e.g. ec2_instance, nat_gateway")
        p.add_argument("--limit", type=positive(int), default=50, help="at most this many rows (default 50)")
        p.add_argument("--format", choices=("table", "json"), default="table")
        p.set_defaults(func=func)
        return p

    p = common("anomalies", "list anomalies, newest first", run_anomalies)
    p.add_argument("--severity", type=severity, help="minimum severity: high shows high and critical")
    p.add_argument("--since", type=when, help="event time >= this (ISO-8601 or an age: 24h, 7d)")
    p.add_argument("--until", type=when, help="event time < this")

    p = common("cost-events", "list priced (and unpriced) cost events, newest first", run_cost_events)
    p.add_argument("--region")
    p.add_argument("--since", type=when, help="event time >= this (ISO-8601 or an age: 24h, 7d)")
    p.add_argument("--until", type=when, help="event time < this")

    common("baselines", "list baselines per account and resource type", run_baselines)

    p = common("resources", "list resources and their $/hour (running now by default)", run_resources)
    p.add_argument("--state", choices=("running", "stopped", "closed", "all"), default="running")

    p = subparsers.add_parser("dead-letters", help="list input that could not be read or folded, newest first")
    p.add_argument("--tenant", help="tenant id (default DD0C_TENANT, 'default')")
    p.add_argument("--stage", choices=("read", "normalize"), help="where it was rejected")
    p.add_argument("--since", type=when, help="rejected at or after this (ISO-8601 or an age: 24h, 7d)")
    p.add_argument("--limit", type=positive(int), default=50, help="at most this many rows (default 50)")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(func=run_dead_letters)


# ---------------------------------------------------------------------------------------------------- fetching


async def collect(fetch: Fetch, limit: int, key: Callable[[Row], Any]) -> list[Row]:
    """Page through a keyset list until `limit` rows (pages of at most MAX_PAGE)."""
    rows: list[Row] = []
    after = None
    while len(rows) < limit:
        want = min(queries.MAX_PAGE, limit - len(rows))
        got = await fetch(want, after)
        rows += got
        if len(got) < want:
            break
        after = key(got[-1])
    return rows


def _time_key(row: Row) -> queries.TimeKey:
    return queries.TimeKey(row["event_time"], row["id"])


def _run(work: Callable[[Any], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        conn = await connect(database_url())
        try:
            return await work(conn)
        finally:
            await conn.close()

    try:
        return asyncio.run(main())
    except asyncpg.UndefinedTableError:
        raise Dd0cError(missing_schema_hint()) from None
    except (OSError, asyncpg.PostgresError) as exc:
        raise Dd0cError(f"database error: {exc}") from None


def _tenant(args: argparse.Namespace) -> str:
    return str(args.tenant or load_settings().tenant)


# ---------------------------------------------------------------------------------------------------- output


def money(value: float | None, missing: str = "unpriced") -> str:
    return missing if value is None else f"{value:,.4f}"


def _time(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if value is not None else "-"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> str:
    """Aligned columns; `right` lists the columns (numbers) to right-align. The last column is not padded."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        out = []
        for i, cell in enumerate(cells):
            if i == len(cells) - 1:
                out.append(cell)
            else:
                out.append(cell.rjust(widths[i]) if i in right else cell.ljust(widths[i]))
        return "  ".join(out).rstrip()

    return "\n".join([line(headers), *(line(r) for r in rows)])


def emit(args: argparse.Namespace, rows: list[Row], render: Callable[[list[Row]], str], footer: str = "") -> int:
    """Print the rows. A caller that fetches one row more than --limit learns from it that the table is cut: the
    extra row is dropped here and the footer says so."""
    if len(rows) > args.limit:
        rows = rows[: args.limit]
        footer = "\n".join(filter(None, (footer, f"first {args.limit} shown; --limit N shows more")))
    if args.format == "json":
        sys.stdout.write(dumps(rows) + "\n")
    elif not rows:
        print("(none)")
    else:
        print(render(rows) + (f"\n{footer}" if footer else ""))
    return 0


def _reasons(row: Row, width: int = 100) -> str:
    text = "; ".join(r["text"] or r["signal"] for r in row["reasons"])
    return text if len(text) <= width else text[: width - 3] + "..."


# ---------------------------------------------------------------------------------------------------- commands


def run_anomalies(args: argparse.Namespace) -> int:
    tenant = _tenant(args)
    f = queries.AnomalyFilter(args.account, args.severity, args.resource_type, args.since, args.until)

    async def work(conn: Any) -> list[Row]:
        return await collect(
            lambda n, after: queries.list_anomalies(conn, tenant, f, limit=n, after=after), args.limit + 1,
            _time_key,
        )

    def render(rows: list[Row]) -> str:
        return table(
            ("TIME (UTC)", "ACCOUNT", "SEVERITY", "RESOURCE TYPE", "$/H", "EXPECTED $/H", "REASONS"),
            [
                (
                    _time(r["event_time"]),
                    r["account_id"],
                    r["severity"],
                    r["resource_type"],
                    money(r["hourly_cost"]),
                    money(r["expected_hourly_cost"], "-"),
                    _reasons(r),
                )
                for r in rows
            ],
            right=(4, 5),
        )

    return emit(args, _run(work), render)


def run_cost_events(args: argparse.Namespace) -> int:
    tenant = _tenant(args)
    f = queries.CostEventFilter(args.account, args.resource_type, args.region, None, args.since, args.until)

    async def work(conn: Any) -> list[Row]:
        return await collect(
            lambda n, after: queries.list_cost_events(conn, tenant, f, limit=n, after=after), args.limit + 1,
            _time_key,
        )

    def render(rows: list[Row]) -> str:
        return table(
            ("TIME (UTC)", "ACCOUNT", "EVENT", "RESOURCE TYPE", "REGION", "$/H", "EVENT ID"),
            [
                (
                    _time(r["event_time"]),
                    r["account_id"],
                    r["event_name"],
                    r["resource_type"],
                    r["region"],
                    money(r["hourly_cost"]),
                    r["event_id"],
                )
                for r in rows
            ],
            right=(5,),
        )

    return emit(args, _run(work), render)


def run_baselines(args: argparse.Namespace) -> int:
    tenant = _tenant(args)

    async def work(conn: Any) -> list[Row]:
        return await collect(
            lambda n, after: queries.list_baselines(
                conn, tenant, account=args.account, resource_type=args.resource_type, limit=n, after=after
            ),
            args.limit + 1,
            lambda r: queries.NameKey(r["account_id"], r["resource_type"]),
        )

    def render(rows: list[Row]) -> str:
        return table(
            ("ACCOUNT", "RESOURCE TYPE", "EVENTS", "MEAN $/H", "STDDEV $/H", "ACTORS"),
            [
                (
                    r["account_id"],
                    r["resource_type"],
                    str(r["event_count"]),
                    money(r["mean_hourly_cost"], "-"),
                    money(r["stddev_hourly_cost"], "-"),
                    ", ".join(r["observed_actors"]),
                )
                for r in rows
            ],
            right=(2, 3, 4),
        )

    return emit(args, _run(work), render)


def run_resources(args: argparse.Namespace) -> int:
    tenant = _tenant(args)
    state = None if args.state == "all" else args.state

    async def work(conn: Any) -> tuple[list[Row], Row]:
        rows = await collect(
            lambda n, after: queries.list_resources(
                conn, tenant, state=state, account=args.account, resource_type=args.resource_type, limit=n,
                after=after,
            ),
            args.limit,
            lambda r: queries.NameKey(r["account_id"], r["resource_id"]),
        )
        totals = await queries.resource_totals(
            conn, tenant, state=state, account=args.account, resource_type=args.resource_type
        )
        return rows, totals

    rows, totals = _run(work)

    def render(rows: list[Row]) -> str:
        return table(
            ("ACCOUNT", "RESOURCE", "TYPE", "REGION", "STATE", "$/H", "OPENED (UTC)"),
            [
                (
                    r["account_id"],
                    r["resource_id"],
                    r["resource_type"],
                    r["region"],
                    r["state"],
                    money(r["hourly_cost"]),
                    _time(r["opened_at"]),
                )
                for r in rows
            ],
            right=(5,),
        )

    unpriced = f" ({totals['unpriced_running']} running unpriced)" if totals["unpriced_running"] else ""
    footer = f"{totals['resource_count']} resource(s); burning now: ${totals['total_hourly_cost']:,.4f}/h{unpriced}"
    if len(rows) < totals["resource_count"]:  # the total covers all of them; say that the table does not
        footer += f"\n{len(rows)} of {totals['resource_count']} shown; --limit N shows more"
    return emit(args, rows, render, footer)


def run_dead_letters(args: argparse.Namespace) -> int:
    """What ingest or the worker rejected, with the reason and where it came from (the raw bytes stay in the table)."""
    tenant = _tenant(args)

    async def work(conn: Any) -> list[Row]:
        rows = await conn.fetch(
            "SELECT id, stage, source, locator, reason, created_at, length(raw) AS raw_bytes FROM dead_letters"
            " WHERE tenant_id = $1 AND ($2::text IS NULL OR stage = $2)"
            " AND ($3::timestamptz IS NULL OR created_at >= $3) ORDER BY id DESC LIMIT $4",
            tenant, args.stage, args.since, args.limit + 1,
        )
        return [dict(r) for r in rows]

    def render(rows: list[Row]) -> str:
        return table(
            ("ID", "REJECTED AT", "STAGE", "WHERE", "REASON"),
            [
                (str(r["id"]), _time(r["created_at"]), r["stage"],
                 f"{r['source']}#{r['locator']}" if r["locator"] else r["source"], r["reason"])
                for r in rows
            ],
            right=(0,),
        )

    return emit(args, _run(work), render)
