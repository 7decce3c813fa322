"""Agent -> gRPC server -> log on loopback: events/s and the agent's peak RSS, against file ingest of the same files.

Three children, each pinned to one core: the ingestion server (`python -m streams.ingest_grpc`, TLS with a
throwaway PKI from ops/devpki.py, archiving every batch as deployed) on the first usable core, the agent
(`python -m agent --once --dir CORPUS`) on the last, and then - as the same-run baseline - `dd0c-cost ingest`'s
code (ops.bench.ingest_child) on the same files into a fresh database. Postgres is not pinned. events/s = records
read / the agent's wall time, from its start to the last acknowledgement (all of them durable in the log); peak
RSS from the agent's own VmHWM.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg

from ops.bench.common import (
    ChildResult,
    Server,
    child_env,
    corpus,
    create_database,
    drop_database,
    log,
    one_core,
    run_child,
    wait_with_peak,
)
from ops.bench.ingest import _child_figures, _listfile

TARGET_EVENTS_PER_S = 20_000  # through the agent, one core per side
TARGET_AGENT_RSS_MB = 100.0


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _token(url: str) -> str:
    from projections.db import connect
    from streams.ingest_grpc.tokens import create_token

    conn = await connect(url)
    try:
        return (await create_token(conn, "default", "bench"))[1]
    finally:
        await conn.close()


async def _counts(url: str) -> dict[str, int]:
    conn = await asyncpg.connect(url)
    try:
        return {
            "log_rows": await conn.fetchval("SELECT count(*) FROM log"),
            "read_only_counted": await conn.fetchval(
                "SELECT coalesce(sum(events), 0)::bigint FROM log_read_only_counts"),
            "dead_letters": await conn.fetchval("SELECT count(*) FROM dead_letters"),
            "batches": await conn.fetchval("SELECT count(*) FROM agent_batches"),
        }
    finally:
        await conn.close()


def _first_core() -> int:
    return min(os.sched_getaffinity(0))


def _start_server(env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    core = _first_core()
    out = log_path.open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "streams.ingest_grpc"], env=env, stdout=out,
                            stderr=subprocess.STDOUT, preexec_fn=lambda: os.sched_setaffinity(0, {core}))
    deadline = time.monotonic() + 60
    while "listening on" not in log_path.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"ingestion server did not start: {log_path.read_text(errors='replace')[-2000:]}")
        time.sleep(0.05)
    return proc


def _stop_server(proc: subprocess.Popen[bytes]) -> tuple[float, float]:
    """Stop it (SIGINT: a graceful stop) and wait; the server's (CPU seconds, peak RSS in MB)."""
    proc.send_signal(signal.SIGINT)
    _, usage, peak_kib = wait_with_peak(proc.pid)
    proc.returncode = 0
    return usage.ru_utime + usage.ru_stime, (peak_kib or usage.ru_maxrss) / 1024


def agent_vs_ingest(server: Server, records: int, *, keep: bool = False) -> dict[str, Any]:
    from ops.devpki import make_pki

    where, manifest, files = corpus(records)
    url = asyncio.run(create_database(server, f"agent{records}"))
    work = Path(tempfile.mkdtemp(prefix="dd0c-bench-agent-"))
    pki = make_pki(work / "pki")
    port = _free_port()
    token = asyncio.run(_token(url))
    server_env = child_env(url) | {
        "DD0C_GRPC_HOST": "127.0.0.1", "DD0C_GRPC_PORT": str(port),
        "DD0C_GRPC_TLS_CERT": str(pki.server_cert), "DD0C_GRPC_TLS_KEY": str(pki.server_key),
        # as deployed: every batch also goes to the raw archive (here a scratch folder, durable writes and all)
        "DD0C_INGESTION_ARCHIVE": "true", "DD0C_ARCHIVE_URL": str(work / "archive"),
    }
    agent_env = child_env("") | {
        "DD0C_AGENT_TOKEN": token, "DD0C_AGENT_SERVER": f"127.0.0.1:{port}", "DD0C_AGENT_CA_FILE": str(pki.ca),
        "DD0C_AGENT_SPOOL": str(work / "spool"),
    }
    agent_env.pop("DATABASE_URL", None)
    try:
        log(f"agent: {manifest['records']:,} records, {len(files):,} files -> server on CPU {_first_core()}, "
            f"agent on CPU {one_core()}")
        proc = _start_server(server_env, work / "server.log")
        try:
            agent = run_child([sys.executable, "-m", "agent", "--once", "--dir", str(where / "AWSLogs")], agent_env)
        finally:
            server_cpu, server_rss = _stop_server(proc)
        if agent.returncode != 0:
            raise RuntimeError(f"agent failed (exit {agent.returncode}): {agent.stderr[-3000:]}")
        counts = asyncio.run(_counts(url))
        # the agent's own figure (VmHWM): the child's rusage maxrss also holds this process's pages from before exec
        agent.max_rss_mb = _reported_peak(agent.stderr) or agent.max_rss_mb
        log(f"agent: {agent.seconds:.1f}s wall, {agent.cpu_seconds:.1f}s cpu, peak RSS {agent.max_rss_mb:.0f} MB; "
            f"server {server_cpu:.1f}s cpu, peak RSS {server_rss:.0f} MB; baseline next")
        baseline = _file_ingest(server, files, records, keep=keep)
    finally:
        if not keep:
            asyncio.run(drop_database(server, url))
    figures = _child_figures(agent, records)
    return {
        "records": manifest["records"],
        "files": len(files),
        "agent": figures,
        "server_cpu_seconds": round(server_cpu, 2),
        "server_max_rss_mb": round(server_rss, 1),
        "counts": counts,
        # every record of the corpus is in the log once: stored, counted (read-only) or dead-lettered
        "all_records_accounted": counts["log_rows"] + counts["read_only_counted"] + counts["dead_letters"]
        == manifest["records"],
        "baseline_file_ingest": baseline,
        "ratio_to_file_ingest": round(figures["records_per_s"] / baseline["records_per_s"], 3)
        if figures["records_per_s"] and baseline["records_per_s"] else None,
    }


def _reported_peak(stderr: str) -> float | None:
    found = re.search(r"peak resident memory: ([0-9.]+) MB", stderr)
    return float(found.group(1)) if found else None


def _file_ingest(server: Server, files: list[Path], records: int, *, keep: bool) -> dict[str, Any]:
    url = asyncio.run(create_database(server, f"agentbase{records}"))
    listfile = _listfile(files)
    try:
        res: ChildResult = run_child([sys.executable, "-m", "ops.bench.ingest_child", url, str(listfile)],
                                     child_env(url))
        if res.returncode != 0:
            raise RuntimeError(f"ingest child failed (exit {res.returncode}): {res.stderr[-3000:]}")
    finally:
        listfile.unlink()
        if not keep:
            asyncio.run(drop_database(server, url))
    log(f"baseline file ingest: {res.seconds:.1f}s wall, peak RSS {res.max_rss_mb:.0f} MB")
    return _child_figures(res, records)


def table_rows(r: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    a, b = r["agent"], r["baseline_file_ingest"]
    rate = a["records_per_s"] or 0
    server_rate = round(r["records"] / r["server_cpu_seconds"]) if r["server_cpu_seconds"] else None
    return [
        (f"agent -> gRPC (TLS) -> log + archive, {r['records']:,} rec, 1 core/side",
         f"{rate:,} ev/s (agent {a['records_per_cpu_s']:,}/cpu-s, server {server_rate or 0:,}/cpu-s)",
         f"file ingest {b['records_per_s']:,} rec/s ({b['records_per_cpu_s']:,}/cpu-s)",
         f">= {TARGET_EVENTS_PER_S:,} ev/s", "PASS" if rate >= TARGET_EVENTS_PER_S else "MISS"),
        ("  agent peak RSS", f"{a['max_rss_mb']:.0f} MB", f"server {r['server_max_rss_mb']:.0f} MB; "
         f"file ingest {b['max_rss_mb']:.0f} MB", f"<= {TARGET_AGENT_RSS_MB:.0f} MB",
         "PASS" if a["max_rss_mb"] <= TARGET_AGENT_RSS_MB else "MISS"),
    ]
