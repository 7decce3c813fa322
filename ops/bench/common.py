"""What every benchmark part shares: the database it creates, the generated corpus, children on one core."""

from __future__ import annotations

import asyncio
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from ops.demo.generate import DEFAULT_END, Params, delivery_files, ensure_history

LOCAL_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
OUT_DIR = Path("bench-out")


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- database -------------------------------------------------------------------------------------------------


@dataclass
class Server:
    admin_url: str  # a maintenance database on the server, to create and drop the benchmark databases
    kind: str  # "local" | "embedded"
    version: str = ""

    def url(self, name: str) -> str:
        # replace the path only: the embedded server's URL carries its socket dir in the query (?host=/...)
        return urlunsplit(urlsplit(self.admin_url)._replace(path="/" + name))


async def _reachable(url: str) -> str | None:
    try:
        conn = await asyncio.wait_for(asyncpg.connect(url), 3)
    except (OSError, TimeoutError, asyncpg.PostgresError):
        return None
    try:
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


def find_server(data_dir: Path) -> Server:
    """Local Postgres at 127.0.0.1:5432 when it answers (user postgres), else the embedded one under data_dir."""
    admin = os.environ.get("DD0C_BENCH_ADMIN_URL", LOCAL_ADMIN_URL)
    version = asyncio.run(_reachable(admin))
    if version:
        return Server(admin, "local", version)
    from ops.embedded import embedded_database_url

    log(f"no Postgres at {admin}; starting the embedded one under {data_dir}")
    url = embedded_database_url(data_dir)
    assert url is not None
    return Server(url, "embedded", asyncio.run(_reachable(url)) or "")


async def create_database(server: Server, label: str) -> str:
    """A fresh, migrated database for one part; random name instead of cleanup races."""
    from ops.migrate import migrate

    name = f"dd0c_bench_{label}_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(server.admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = server.url(name)
    await migrate(url)
    return url


async def drop_database(server: Server, url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    conn = await asyncpg.connect(server.admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


# --- corpus ---------------------------------------------------------------------------------------------------


def corpus_params(records: int, seed: int = 7) -> Params:
    return Params(days=21, accounts=4, records=records, seed=seed, end=DEFAULT_END)


def corpus(records: int, seed: int = 7) -> tuple[Path, dict[str, Any], list[Path]]:
    """The generated history for `records` (in the temp dir; reused when generated with the same parameters)."""
    where = Path(tempfile.gettempdir()) / f"dd0c-bench-corpus-{records}-s{seed}"
    began = time.perf_counter()
    manifest = ensure_history(where, corpus_params(records, seed),
                              progress=lambda m: log(f"generating {where.name}: {m}"))
    files = delivery_files(where)
    log(f"corpus {where}: {manifest['records']:,} records in {len(files):,} files "
        f"({time.perf_counter() - began:.1f}s incl. generation when needed)")
    return where, manifest, files


# --- child processes on one core ------------------------------------------------------------------------------


@dataclass
class ChildResult:
    returncode: int
    seconds: float  # wall clock
    cpu_seconds: float  # user + system of the child (and its waited-for children)
    max_rss_mb: float
    stdout: str
    stderr: str


def one_core() -> int:
    """The CPU benchmark children are pinned to (the last one: Postgres tends to start on the first)."""
    return max(os.sched_getaffinity(0))


def _vm_hwm_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def wait_with_peak(pid: int, every: float = 0.02) -> tuple[int, Any, int | None]:
    """wait4 the child, sampling its VmHWM meanwhile: (status, rusage, peak RSS in KiB or None).

    A child's rusage maxrss is no use here: Linux carries the pre-exec high-water mark over exec, so a child forked
    from this process (hundreds of MB once the api part has built its rows) reports at least this process's size.
    VmHWM belongs to the child's own address space and only grows, so the last sample is its peak, short of what it
    added in its last `every` seconds.
    """
    peak: int | None = None
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            return status, usage, peak
        hwm = _vm_hwm_kib(pid)
        if hwm is not None:
            peak = max(peak or 0, hwm)
        time.sleep(every)


def run_child(argv: Sequence[str], env: dict[str, str], *, pin: bool = True) -> ChildResult:
    """Run a child to completion, pinned to one core, and read ITS rusage (wait4), not the sum of all children."""
    core = one_core()
    out_f = tempfile.TemporaryFile()
    err_f = tempfile.TemporaryFile()
    began = time.perf_counter()
    proc = subprocess.Popen(
        list(argv), env=env, stdout=out_f, stderr=err_f,
        preexec_fn=(lambda: os.sched_setaffinity(0, {core})) if pin else None,
    )
    status, usage, peak_kib = wait_with_peak(proc.pid)
    seconds = time.perf_counter() - began
    proc.returncode = os.waitstatus_to_exitcode(status)
    out_f.seek(0)
    err_f.seek(0)
    return ChildResult(
        returncode=proc.returncode,
        seconds=seconds,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        max_rss_mb=(peak_kib or usage.ru_maxrss) / 1024,  # Linux: KiB
        stdout=out_f.read().decode(errors="replace"),
        stderr=err_f.read().decode(errors="replace"),
    )


def child_env(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DD0C_")}
    env.update(DATABASE_URL=database_url, DD0C_MODE="demo")
    return env


def self_max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- statistics -----------------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]
