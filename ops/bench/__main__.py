"""`python -m ops.bench [--only floor,ingest,feed,push,api,zombies,replay,kafka,agent] [--records N]` (`make bench`).

Prints one summary table (every figure next to its same-run baseline and its target) and writes
bench-out/results.json. Creates its own databases (local Postgres at 127.0.0.1:5432 when reachable, else the
embedded one under bench-out/) and drops them afterwards unless --keep.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ops.bench import common

PARTS = ("floor", "ingest", "feed", "push", "api", "zombies", "replay", "kafka", "agent")
TARGETS = {
    "ingest_ratio": 0.25,  # end-to-end records/s over the gunzip+json.loads floor, one core
    "rss_mb": 300.0,
    "feed_p99_ms": 250.0,
    "api_p99_ms": 50.0,
}


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m ops.bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts ({', '.join(PARTS)})")
    ap.add_argument("--records", type=int, default=1_000_000, help="corpus size for floor and ingest")
    ap.add_argument("--small", type=int, default=None, help="smaller corpus for the memory comparison "
                    "(default records/10)")
    ap.add_argument("--feed-rate", type=float, default=500.0, help="appends per second")
    ap.add_argument("--feed-seconds", type=float, default=20.0)
    ap.add_argument("--push-rate", type=float, default=50.0, help="single-record POSTs per second")
    ap.add_argument("--push-seconds", type=float, default=20.0)
    ap.add_argument("--api-cost-events", type=int, default=1_000_000)
    ap.add_argument("--api-anomalies", type=int, default=150_000)
    ap.add_argument("--api-requests", type=int, default=3000)
    ap.add_argument("--kafka-records", type=int, default=1_000_000, help="corpus size for the kafka part (1 and 2 "
                    "faust workers against the Postgres log; about one record in ten is logged)")
    ap.add_argument("--replay-records", type=int, default=1_000_000, help="corpus size for the replay part (every "
                    "record becomes a log row: DD0C_KEEP_READ_ONLY=true)")
    ap.add_argument("--replay-dense", type=int, default=100_000, help="entries of the replay part's second log, "
                    "in which the folds act on nearly every entry (0: skip it)")
    ap.add_argument("--agent-records", type=int, default=300_000, help="corpus size for the agent part (agent -> "
                    "gRPC server -> log on loopback, against file ingest of the same files)")
    ap.add_argument("--out", type=Path, default=common.OUT_DIR)
    ap.add_argument("--keep", action="store_true", help="keep the benchmark databases")
    args = ap.parse_args(argv)
    args.parts = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = set(args.parts) - set(PARTS)
    if unknown:
        ap.error(f"unknown part(s): {', '.join(sorted(unknown))}")
    args.small = args.small or max(args.records // 10, 20_000)
    return args


def machine(server: common.Server) -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "children_pinned_to_cpu": common.one_core(),
        "postgres": f"{server.kind} {server.version}",
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    args.out.mkdir(parents=True, exist_ok=True)
    server = common.find_server(args.out / "embedded")
    results: dict[str, Any] = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(server),
        "targets": TARGETS,
        "params": {k: v for k, v in vars(args).items() if k not in ("out", "only")} | {"out": str(args.out)},
    }
    began = time.perf_counter()
    try:
        _run_parts(args, server, results)
    finally:
        if server.kind == "embedded":  # ours, under bench-out/: do not leave it running
            from ops.embedded import stop_embedded

            stop_embedded(args.out / "embedded")
    results["seconds"] = round(time.perf_counter() - began, 1)
    return results


def _run_parts(args: argparse.Namespace, server: common.Server, results: dict[str, Any]) -> None:
    from ops.bench import ingest as ingest_part

    if "floor" in args.parts or "ingest" in args.parts:
        _, _, files = common.corpus(args.records)
        results["floor"] = ingest_part.floor(files)
    if "ingest" in args.parts:
        large = ingest_part.ingest_and_fold(server, args.records, keep=args.keep)
        small = ingest_part.ingest_and_fold(server, args.small, keep=args.keep)
        floor_rps = results["floor"]["json"]["records_per_s"]
        results["ingest"] = {
            "large": large,
            "small": small,
            "import_only_rss_mb": ingest_part.import_baseline_rss(),
            "ratio_ingest_to_floor": round(large["ingest"]["records_per_s"] / floor_rps, 3),
            "ratio_end_to_end_to_floor": round(large["end_to_end"]["records_per_s"] / floor_rps, 3),
            "ratio_cpu_to_floor": round(large["end_to_end"]["records_per_cpu_s"] / floor_rps, 3),
        }
    if "feed" in args.parts:
        from ops.bench import feed as feed_part

        results["feed"] = feed_part.feed(server, args.feed_rate, args.feed_seconds, keep=args.keep)
    if "push" in args.parts:
        from ops.bench import push as push_part  # the worker and the API as children, POSTs from here

        results["push"] = push_part.push(server, args.push_rate, args.push_seconds, keep=args.keep)
    if "api" in args.parts:
        from ops.bench import api as api_part

        results["api"] = api_part.api(server, args.api_cost_events, args.api_anomalies, args.api_requests,
                                      keep=args.keep)
    if "zombies" in args.parts:
        from ops.bench import zombies as zombies_part  # moto in-process, no database

        results["zombies"] = zombies_part.zombies()
    if "replay" in args.parts:
        from ops.bench import replay as replay_part

        results["replay"] = replay_part.replay(server, args.replay_records, keep=args.keep)
        if args.replay_dense:
            results["replay_dense"] = replay_part.replay_dense(server, args.replay_dense, keep=args.keep)
    if "kafka" in args.parts:
        from ops.bench import kafka as kafka_part  # a local tansu broker, 1 and 2 worker processes

        results["kafka"] = kafka_part.kafka(server, args.kafka_records, keep=args.keep)
    if "agent" in args.parts:
        from ops.bench import agent as agent_part  # the ingestion server and the agent as pinned children

        results["agent"] = agent_part.agent_vs_ingest(server, args.agent_records, keep=args.keep)


def _fmt(n: float | None, unit: str = "") -> str:
    if n is None:
        return "-"
    text = f"{n:,.0f}" if abs(n) >= 100 else f"{n:,.2f}" if abs(n) >= 1 else f"{n:.3f}"
    return text + unit


def _verdict(ok: bool | None) -> str:
    return "-" if ok is None else ("PASS" if ok else "MISS")


def table(r: dict[str, Any]) -> str:
    rows: list[tuple[str, str, str, str, str]] = []
    if "floor" in r:
        f = r["floor"]
        rows.append(("floor: gunzip + json.loads, 1 core", _fmt(f["json"]["records_per_s"], " rec/s"),
                     f"orjson {_fmt(f['orjson']['records_per_s'], ' rec/s')}", "(baseline)", "-"))
    if "ingest" in r:
        i, floor_rps = r["ingest"], r["floor"]["json"]["records_per_s"]
        lg, sm = i["large"], i["small"]
        ing, fold, e2e = lg["ingest"], lg["fold"], lg["end_to_end"]
        rows.append((f"ingest only, {lg['records']:,} records, 1 core",
                     f"{_fmt(ing['records_per_s'], ' rec/s')} ({_fmt(ing['records_per_cpu_s'])}/cpu-s)",
                     f"floor {_fmt(floor_rps, ' rec/s')} (x{i['ratio_ingest_to_floor']})", "-", "-"))
        rows.append((f"fold (worker --drain) of {lg['counts']['log_rows']:,} log entries",
                     f"{_fmt(fold['records_per_s'], ' rec/s')} ({_fmt(fold['seconds'], ' s')})",
                     f"-> {lg['counts']['cost_events']:,} cost events, {lg['counts']['anomalies']:,} anomalies",
                     "-", "-"))
        ratio = i["ratio_end_to_end_to_floor"]
        rows.append(("ingest + fold end to end, 1 core",
                     f"{_fmt(e2e['records_per_s'], ' rec/s')} ({_fmt(e2e['records_per_cpu_s'])}/cpu-s)",
                     f"floor {_fmt(floor_rps, ' rec/s')} (x{ratio}; by cpu-s x{i['ratio_cpu_to_floor']})",
                     f">= x{TARGETS['ingest_ratio']}", _verdict(ratio >= TARGETS["ingest_ratio"])))
        peak = lg["end_to_end"]["max_rss_mb"]
        rows.append((f"peak RSS ingest|fold, {lg['records']:,} rec",
                     f"{_fmt(lg['ingest']['max_rss_mb'])}|{_fmt(lg['fold']['max_rss_mb'])} MB",
                     f"{sm['records']:,} rec: {_fmt(sm['ingest']['max_rss_mb'])}|{_fmt(sm['fold']['max_rss_mb'])} MB;"
                     f" imports only {_fmt(i['import_only_rss_mb'])} MB", f"<= {TARGETS['rss_mb']:.0f} MB",
                     _verdict(peak <= TARGETS["rss_mb"])))
    if "feed" in r:
        p, b = r["feed"]["pipeline"], r["feed"]["baseline_notify"]
        rows.append((f"append -> websocket @ {p.get('rate', 0):.0f}/s, p50 | p99",
                     f"{_fmt(p.get('p50_ms'))} | {_fmt(p.get('p99_ms'))} ms ({p.get('received', 0)}/{p['sent']}, "
                     f"{p.get('mean_events_per_append', 0):.1f} ev/append)",
                     f"NOTIFY->LISTEN {_fmt(b.get('p50_ms'))} | {_fmt(b.get('p99_ms'))} ms",
                     f"p99 <= {TARGETS['feed_p99_ms']:.0f} ms",
                     _verdict(p.get("p99_ms") is not None and p["received"] == p["sent"]
                              and p["p99_ms"] <= TARGETS["feed_p99_ms"])))
    if "push" in r:
        from ops.bench.push import table_rows as push_rows

        rows += push_rows(r["push"], TARGETS["feed_p99_ms"])
    if "api" in r:
        a = r["api"]
        s, lst = a["stored"], a["anomalies_list"]
        rows.append((f"GET /v1/anomalies p50 | p99 ({lst['requests']:,} req)",
                     f"{_fmt(lst['p50_ms'])} | {_fmt(lst['p99_ms'])} ms",
                     f"/v1/health p99 {_fmt(a['baseline_health']['p99_ms'])} ms; SQL only p99 "
                     f"{_fmt(a['baseline_sql']['p99_ms'])} ms", f"p99 <= {TARGETS['api_p99_ms']:.0f} ms",
                     _verdict(lst["p99_ms"] <= TARGETS["api_p99_ms"] and set(lst["statuses"]) == {200})))
        rows.append(("  with stored (SYNTHETIC, COPY-loaded)", f"{s['cost_events']:,} cost events",
                     f"{s['anomalies']:,} anomalies ({s['anomalies_of_tenant']:,} in the tenant)", "-", "-"))
    if "zombies" in r:
        z = r["zombies"]
        rows.append((f"zombie scan, {z['resources']:,} resources in {z['regions']} regions (moto)",
                     f"{_fmt(z['seconds'], ' s')}, {z['aws_calls']} AWS calls",
                     f"{z['resources_per_call']} resources/call, {z['zombies']:,} zombies",
                     f"<= {z['expected_calls']} calls (1/type/page)", _verdict(z["aws_calls"] <= z["expected_calls"])))
    if "replay" in r:
        from ops.bench.replay import table_rows as replay_rows

        rows += replay_rows(r["replay"])
    if "replay_dense" in r:
        from ops.bench.replay import dense_rows

        rows += dense_rows(r["replay_dense"])
    if "kafka" in r:
        from ops.bench.kafka import table_rows as kafka_rows

        rows += kafka_rows(r["kafka"])
    if "agent" in r:
        from ops.bench.agent import table_rows as agent_rows

        rows += agent_rows(r["agent"])
    head = ("figure", "ours", "baseline (same run)", "target", "")
    widths = [max(len(h), *(len(row[k]) for row in rows)) if rows else len(h) for k, h in enumerate(head)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(head, widths, strict=True)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    m = r["machine"]
    lines.append(f"machine: {m['cpus']} CPUs, Python {m['python']}, Postgres {m['postgres']}; children pinned to "
                 f"CPU {m['children_pinned_to_cpu']} (Postgres itself is not pinned); total {r['seconds']}s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    results = run(args)
    (args.out / "results.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    print(table(results))
    print(f"results: {args.out / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
