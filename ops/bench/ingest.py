"""Ingest + fold throughput and memory, against the floor, on one core.

Two children, one after the other, each pinned to the same core and measured with its own rusage:
`python -m ops.bench.ingest_child` (files -> log, in delivery order) and `dd0c-cost worker --drain`
(log -> cost events, baselines, anomalies, resources). The floor child parses the same files and nothing else.
A corpus a tenth the size is run too: if peak RSS tracks corpus size, something holds the corpus in memory.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from ops.bench.common import ChildResult, Server, child_env, corpus, create_database, drop_database, log, run_child


def _listfile(files: list[Path]) -> Path:
    fh = tempfile.NamedTemporaryFile("w", suffix=".list", delete=False, encoding="utf-8")
    with fh:
        fh.write("\n".join(str(f) for f in files) + "\n")
    return Path(fh.name)


def floor(files: list[Path]) -> dict[str, Any]:
    listfile = _listfile(files)
    try:
        res = run_child([sys.executable, "-m", "ops.bench.floor", str(listfile)], child_env(""))
    finally:
        listfile.unlink()
    if res.returncode != 0:
        raise RuntimeError(f"floor child failed: {res.stderr[-2000:]}")
    out: dict[str, Any] = {"files": len(files), "max_rss_mb": round(res.max_rss_mb, 1)}
    for line in res.stdout.splitlines():
        name, records, seconds = line.split()
        out[name] = {"records": int(records), "seconds": float(seconds),
                     "records_per_s": round(int(records) / float(seconds))}
    log(f"floor: json.loads {out['json']['records_per_s']:,} rec/s, orjson {out['orjson']['records_per_s']:,} rec/s")
    return out


async def _counts(url: str) -> dict[str, int]:
    conn = await asyncpg.connect(url)
    try:
        return {
            "log_rows": await conn.fetchval("SELECT count(*) FROM log"),
            "read_only_counted": await conn.fetchval(
                "SELECT coalesce(sum(events), 0)::bigint FROM log_read_only_counts"
            ),
            "cost_events": await conn.fetchval("SELECT count(*) FROM cost_events"),
            "anomalies": await conn.fetchval("SELECT count(*) FROM anomalies"),
            "resources_running": await conn.fetchval("SELECT count(*) FROM resources WHERE state = 'running'"),
            "dead_letters": await conn.fetchval("SELECT count(*) FROM dead_letters"),
        }
    finally:
        await conn.close()


def _child_figures(res: ChildResult, records: int) -> dict[str, Any]:
    return {
        "seconds": round(res.seconds, 2),
        "cpu_seconds": round(res.cpu_seconds, 2),
        "records_per_s": round(records / res.seconds) if res.seconds else None,
        # the child's own CPU: what one core does when it is not waiting for Postgres round trips and commits
        "records_per_cpu_s": round(records / res.cpu_seconds) if res.cpu_seconds else None,
        "max_rss_mb": round(res.max_rss_mb, 1),
    }


def ingest_and_fold(server: Server, records: int, *, keep: bool = False) -> dict[str, Any]:
    """Ingest a corpus of `records` into a fresh database, fold it, and report both stages."""
    _, manifest, files = corpus(records)
    url = asyncio.run(create_database(server, f"ingest{records}"))
    env = child_env(url)
    listfile = _listfile(files)
    try:
        log(f"ingest: {records:,} records, {len(files):,} files -> {urlsplit(url).path.lstrip('/')}")
        ing = run_child([sys.executable, "-m", "ops.bench.ingest_child", url, str(listfile)], env)
        if ing.returncode != 0:
            raise RuntimeError(f"ingest child failed (exit {ing.returncode}): {ing.stderr[-3000:]}")
        log(f"ingest: {ing.seconds:.1f}s wall, {ing.cpu_seconds:.1f}s cpu, peak RSS {ing.max_rss_mb:.0f} MB; folding")
        fold = run_child([sys.executable, "-m", "ops", "worker", "--drain"], env)
        if fold.returncode != 0:
            raise RuntimeError(f"worker --drain failed (exit {fold.returncode}): {fold.stderr[-3000:]}")
        log(f"fold: {fold.seconds:.1f}s wall, {fold.cpu_seconds:.1f}s cpu, peak RSS {fold.max_rss_mb:.0f} MB")
        counts = asyncio.run(_counts(url))
    finally:
        listfile.unlink()
        if not keep:
            asyncio.run(drop_database(server, url))
    total = ing.seconds + fold.seconds
    return {
        "records": manifest["records"],
        "files": len(files),
        "ingest": _child_figures(ing, records),
        "fold": _child_figures(fold, records),
        "end_to_end": {
            "seconds": round(total, 2),
            "records_per_s": round(records / total),
            "records_per_cpu_s": round(records / (ing.cpu_seconds + fold.cpu_seconds)),
            "max_rss_mb": round(max(ing.max_rss_mb, fold.max_rss_mb), 1),
        },
        "counts": counts,
    }


def import_baseline_rss() -> float:
    """Peak RSS of a child that only imports what ingest and fold import: the interpreter's share."""
    code = "import ops.ingest, streams.runner.postgres, schemas.cloudtrail, streams.prices.table"
    res = run_child([sys.executable, "-c", code], child_env(""))
    return round(res.max_rss_mb, 1)
