"""Replay throughput: `dd0c-cost replay` of a log of N entries, against reading the same log rows only.

The log: the benchmark corpus ingested with DD0C_KEEP_READ_ONLY=true, so every record is a log row (about nine in
ten are read-only Describe/List calls, which the folds pass over; the rest are writes, a few of them priced). It is
folded once by `worker --drain` (the live projections a replay replaces; its rate is printed too), then replayed
into the shadow tables and swapped in. The baselines, in the same run: a child that only reads the log rows in the
replay's batch size and decodes every one into LogEntry (`read_after`: what a runner cost when it read every row
whole), and one that reads them as the runner now does (`read_folded_after`: read-only calls and calls no fold
acts on left out in SQL, see streams/log/postgres.py) - no replay can be faster than that second one here.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import asyncpg

from ops.bench.common import ChildResult, Server, child_env, corpus, create_database, drop_database, log, run_child

BATCH = 2000
DENSE_TENANT = "dense"


def _figures(res: ChildResult, entries: int) -> dict[str, Any]:
    return {
        "seconds": round(res.seconds, 2),
        "cpu_seconds": round(res.cpu_seconds, 2),
        "events_per_s": round(entries / res.seconds) if res.seconds else None,
        "max_rss_mb": round(res.max_rss_mb, 1),
    }


async def _counts(url: str) -> dict[str, int]:
    conn = await asyncpg.connect(url)
    try:
        return {
            "log_rows": await conn.fetchval("SELECT count(*) FROM log"),
            "read_only_rows": await conn.fetchval("SELECT count(*) FROM log WHERE read_only"),
            "cost_events": await conn.fetchval("SELECT count(*) FROM cost_events"),
            "anomalies": await conn.fetchval("SELECT count(*) FROM anomalies"),
        }
    finally:
        await conn.close()


def replay(server: Server, records: int, *, keep: bool = False) -> dict[str, Any]:
    _, _manifest, files = corpus(records)
    url = asyncio.run(create_database(server, f"replay{records}"))
    env = child_env(url) | {"DD0C_KEEP_READ_ONLY": "true"}
    listfile = Path(tempfile.NamedTemporaryFile("w", suffix=".list", delete=False, encoding="utf-8").name)
    listfile.write_text("\n".join(str(f) for f in files) + "\n", encoding="utf-8")
    try:
        log(f"replay: ingesting {records:,} records (read-only ones kept as log rows)")
        ing = run_child([sys.executable, "-m", "ops.bench.ingest_child", url, str(listfile)], env)
        if ing.returncode != 0:
            raise RuntimeError(f"ingest child failed (exit {ing.returncode}): {ing.stderr[-3000:]}")
        rows = asyncio.run(_counts(url))["log_rows"]
        log(f"replay: {rows:,} log rows; live fold (worker --drain)")
        fold = run_child([sys.executable, "-m", "ops", "worker", "--drain", "--batch", str(BATCH)], env)
        if fold.returncode != 0:
            raise RuntimeError(f"worker --drain failed (exit {fold.returncode}): {fold.stderr[-3000:]}")
        log(f"replay: live fold {fold.seconds:.1f}s; baseline: read the log only")
        read = run_child([sys.executable, "-m", "ops.bench.replay", url], env)
        if read.returncode != 0:
            raise RuntimeError(f"log-read child failed (exit {read.returncode}): {read.stderr[-3000:]}")
        log(f"replay: log read {read.seconds:.1f}s; the runner's read")
        folded = run_child([sys.executable, "-m", "ops.bench.replay", url, "folded"], env)
        if folded.returncode != 0:
            raise RuntimeError(f"log-read child failed (exit {folded.returncode}): {folded.stderr[-3000:]}")
        log(f"replay: the runner's read {folded.seconds:.1f}s; replay")
        rep = run_child([sys.executable, "-m", "ops", "replay", "--batch", str(BATCH), "--format", "json"], env)
        if rep.returncode != 0:
            raise RuntimeError(f"replay failed (exit {rep.returncode}): {rep.stderr[-3000:]}")
        summary = json.loads(rep.stdout.strip().splitlines()[-1])
        log(f"replay: {rep.seconds:.1f}s wall ({rows / rep.seconds:,.0f} events/s)")
        counts = asyncio.run(_counts(url))
    finally:
        listfile.unlink()
        if not keep:
            asyncio.run(drop_database(server, url))
    return {
        "records": records,
        "batch": BATCH,
        "counts": counts,
        "live_fold": _figures(fold, rows),
        "read_only_baseline": _figures(read, rows),
        "runner_read_baseline": _figures(folded, rows),
        "replay": _figures(rep, rows) | {"entries_folded": summary["entries_folded"],
                                        "position": summary["position"]},
        "ratio_to_read_baseline": round(read.seconds / rep.seconds, 3) if rep.seconds else None,
        "ratio_to_runner_read_baseline": round(folded.seconds / rep.seconds, 3) if rep.seconds else None,
    }


async def _append_dense(url: str, entries: int) -> int:
    from streams.log.postgres import append_runs
    from tests.integration import ctgen  # the test generator of launches and terminations (dev extra)

    log_entries = ctgen.entries(ctgen.generated_records(entries, seed=11), tenant=DENSE_TENANT)
    conn = await asyncpg.connect(url)
    try:
        for i in range(0, len(log_entries), 5000):
            async with conn.transaction():
                await append_runs(conn, [log_entries[i:i + 5000]], keep_read_only=True)
        return int(await conn.fetchval("SELECT count(*) FROM log"))
    finally:
        await conn.close()


def replay_dense(server: Server, entries: int, *, keep: bool = False) -> dict[str, Any]:
    """The worst case for a replay: a log in which almost every entry is one the folds act on (launches and
    terminations of priced instances, 15 % Describe calls), so nothing is passed over in SQL. The realistic log
    above is nine tenths read-only and mostly unpriced writes; this one says what the folds themselves cost."""
    url = asyncio.run(create_database(server, f"replaydense{entries}"))
    env = child_env(url) | {"DD0C_TENANT": DENSE_TENANT}
    try:
        log(f"replay (dense): appending {entries:,} entries, nearly all launches and terminations")
        rows = asyncio.run(_append_dense(url, entries))
        fold = run_child([sys.executable, "-m", "ops", "worker", "--drain", "--batch", str(BATCH)], env)
        if fold.returncode != 0:
            raise RuntimeError(f"worker --drain failed (exit {fold.returncode}): {fold.stderr[-3000:]}")
        log(f"replay (dense): live fold {fold.seconds:.1f}s; replay")
        rep = run_child([sys.executable, "-m", "ops", "replay", "--batch", str(BATCH), "--format", "json"], env)
        if rep.returncode != 0:
            raise RuntimeError(f"replay failed (exit {rep.returncode}): {rep.stderr[-3000:]}")
        summary = json.loads(rep.stdout.strip().splitlines()[-1])
        log(f"replay (dense): {rep.seconds:.1f}s wall ({rows / rep.seconds:,.0f} events/s)")
        counts = asyncio.run(_counts(url))
    finally:
        if not keep:
            asyncio.run(drop_database(server, url))
    return {"entries": rows, "batch": BATCH, "counts": counts, "live_fold": _figures(fold, rows),
            "replay": _figures(rep, rows) | {"entries_folded": summary["entries_folded"]}}


async def _read_all(url: str, folded: bool) -> int:
    """The baseline child: every log row, in replay-sized batches, decoded into LogEntry (`folded`: read as the
    runner reads them, read-only calls left out); returns the entries decoded."""
    from projections.db import connect
    from streams.fold import FOLDED_CALLS
    from streams.log.postgres import read_after, read_folded_after

    conn = await connect(url)
    try:
        position, total = 0, 0
        while True:
            if folded:
                entries, _ = await read_folded_after(conn, position, BATCH, calls=FOLDED_CALLS)
            else:
                entries = await read_after(conn, position, BATCH)
            if not entries:
                return total
            total += len(entries)
            position = entries[-1].seq or position
    finally:
        await conn.close()


if __name__ == "__main__":
    print(asyncio.run(_read_all(sys.argv[1], sys.argv[2:] == ["folded"])))


TARGET_EVENTS_PER_S = 50_000.0


def table_rows(r: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """The summary lines for ops/bench/__main__.py's table: (figure, ours, baseline, target, verdict)."""
    rep, base, fold, c = r["replay"], r["read_only_baseline"], r["live_fold"], r["counts"]
    runner_read = r.get("runner_read_baseline") or {}
    rate = rep["events_per_s"] or 0
    return [
        (f"replay (dd0c-cost replay) of {c['log_rows']:,} logged events",
         f"{rate:,} events/s ({rep['seconds']:,.1f} s wall, {rep['cpu_seconds']:,.1f} cpu-s)",
         f"log read only {base['events_per_s']:,}/s (as the runner reads it "
         f"{runner_read.get('events_per_s') or 0:,}/s); worker --drain {fold['events_per_s']:,}/s",
         f">= {TARGET_EVENTS_PER_S:,.0f}/s", "PASS" if rate >= TARGET_EVENTS_PER_S else "MISS"),
        (f"  log: {c['read_only_rows']:,} read-only rows kept", f"-> {c['cost_events']:,} cost events",
         f"{c['anomalies']:,} anomalies; {rep['entries_folded']:,} entries folded, the rest passed over in SQL", "-",
         "-"),
    ]


def dense_rows(r: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    rep, fold, c = r["replay"], r["live_fold"], r["counts"]
    rate = rep["events_per_s"] or 0
    return [
        (f"replay of {r['entries']:,} entries the folds act on", f"{rate:,} events/s ({rep['seconds']:,.1f} s wall)",
         f"worker --drain {fold['events_per_s']:,}/s; -> {c['cost_events']:,} cost events, "
         f"{c['anomalies']:,} anomalies", f">= {TARGET_EVENTS_PER_S:,.0f}/s",
         "PASS" if rate >= TARGET_EVENTS_PER_S else "MISS"),
    ]
