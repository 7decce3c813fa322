"""What the agent tests share: a PKI made on the spot (ops/devpki.py), CloudTrail files, the server and the agent
as real processes, a TCP proxy to cut the network with, and waiting on conditions (never on time)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gzip
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import asyncpg
import orjson

from ops.devpki import Pki
from tests.integration import ctgen

ROOT = Path(__file__).resolve().parents[3]
DAY = dt.datetime(2024, 5, 1, 9, tzinfo=dt.UTC)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- CloudTrail files -------------------------------------------------------------------------------------------


def records(first: int, count: int, *, reads_every: int = 0, account: str = ctgen.ACCOUNTS[0]) -> list[dict[str, Any]]:
    """`count` records with event ids first .. first+count-1: RunInstances, and a DescribeInstances (read-only)
    every `reads_every`-th one when set."""
    out = []
    for n in range(first, first + count):
        at = DAY + dt.timedelta(seconds=n)
        if reads_every and n % reads_every == 0:
            out.append(ctgen.describe_instances(n, at=at, account=account))
        else:
            out.append(ctgen.run_instances(n, at=at, account=account))
    return out


def delivery_name(n: int, account: str = ctgen.ACCOUNTS[0]) -> str:
    minute = n % 60
    return f"{account}_CloudTrail_us-east-1_20240501T09{minute:02d}Z_{n:016x}.json.gz"


def write_delivery(directory: Path, n: int, recs: Sequence[dict[str, Any]]) -> Path:
    """A gzipped delivery file, put in place atomically (written under a hidden name, then renamed)."""
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / delivery_name(n)
    hidden = directory / f".{final.name}.part"
    hidden.write_bytes(gzip.compress(orjson.dumps({"Records": list(recs)}), mtime=0))
    hidden.rename(final)
    return final


def write_corpus(directory: Path, files: int, per_file: int, *, reads_every: int = 0) -> int:
    """`files` delivery files of `per_file` records, event ids 1..files*per_file; returns the record count."""
    for f in range(files):
        write_delivery(directory, f + 1, records(1 + f * per_file, per_file, reads_every=reads_every))
    return files * per_file


# --- processes --------------------------------------------------------------------------------------------------


def base_env(database_url: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DD0C_", "AWS_"))}
    env["PYTHONPATH"] = str(ROOT)
    env["PYTHONUNBUFFERED"] = "1"
    if database_url:
        env["DATABASE_URL"] = database_url
    return env


class Proc:
    """A child process whose stderr goes to a file the test can read while it runs."""

    def __init__(self, argv: Sequence[str], env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.proc = subprocess.Popen(list(argv), env=env, stdout=self._log, stderr=subprocess.STDOUT, cwd=ROOT)

    @property
    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def kill9(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self._log.close()

    def terminate(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            code = self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self._log.close()
        return code

    async def exited(self, within: float = 120.0) -> int:
        await wait_for(lambda: self.proc.poll() is not None, f"{self.log_path.name} to exit", within,
                       lambda: self.output[-3000:])
        self._log.close()
        return int(self.proc.returncode)


def agent_argv(*extra: str) -> list[str]:
    return [sys.executable, "-m", "agent", *extra]


def server_env(database_url: str, port: int, pki: Pki | None, *, mutual: bool = False) -> dict[str, str]:
    env = base_env(database_url)
    env["DD0C_GRPC_PORT"] = str(port)
    env["DD0C_GRPC_HOST"] = "127.0.0.1"
    env["DD0C_INGESTION_ARCHIVE"] = "false"  # archiving is test_agent_service's (through the service), not these
    if pki is None:
        env["DD0C_GRPC_INSECURE"] = "true"
    else:
        env["DD0C_GRPC_TLS_CERT"] = str(pki.server_cert)
        env["DD0C_GRPC_TLS_KEY"] = str(pki.server_key)
        if mutual:
            env["DD0C_GRPC_CLIENT_CA"] = str(pki.ca)
    return env


def _listening_lines(log_path: Path) -> int:
    return log_path.read_text(encoding="utf-8", errors="replace").count("listening on") if log_path.exists() else 0


async def start_server(env: dict[str, str], log_path: Path) -> Proc:
    """`python -m streams.ingest_grpc` as a child; returns once it says it is listening."""
    before = _listening_lines(log_path)
    proc = Proc([sys.executable, "-m", "streams.ingest_grpc"], env, log_path)
    await wait_for(lambda: proc.output.count("listening on") > before or proc.proc.poll() is not None,
                   "the server to listen", 60, lambda: proc.output[-3000:])
    assert proc.proc.poll() is None, proc.output[-3000:]
    return proc


def agent_env(token: str, port: int, spool: Path, pki: Pki | None, **more: str) -> dict[str, str]:
    env = base_env()
    env.update(DD0C_AGENT_TOKEN=token, DD0C_AGENT_SERVER=f"127.0.0.1:{port}", DD0C_AGENT_SPOOL=str(spool),
               DD0C_AGENT_BACKOFF_INITIAL="0.1", DD0C_AGENT_BACKOFF_MAX="1")
    if pki is None:
        env["DD0C_AGENT_INSECURE"] = "true"
    else:
        env["DD0C_AGENT_CA_FILE"] = str(pki.ca)
    env.update({f"DD0C_AGENT_{k.upper()}": v for k, v in more.items()})
    return env


# --- waiting ----------------------------------------------------------------------------------------------------


async def wait_for(predicate: Callable[[], bool | Awaitable[bool]], what: str, within: float = 120.0,
                   explain: Callable[[], str] | None = None) -> None:
    """Poll `predicate` until it holds; the timeout only turns a hang into a failure that says what it waited for."""
    deadline = time.monotonic() + within
    while True:
        result = predicate()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}" + (f"\n{explain()}" if explain else ""))
        await asyncio.sleep(0.05)


async def log_counts(url: str) -> dict[str, int]:
    conn = await asyncpg.connect(url)
    try:
        return {
            "rows": await conn.fetchval("SELECT count(*) FROM log"),
            "event_ids": await conn.fetchval("SELECT count(DISTINCT event_id) FROM log"),
            "read_only": await conn.fetchval("SELECT coalesce(sum(events), 0)::int FROM log_read_only_counts"),
            "batches": await conn.fetchval("SELECT count(*) FROM agent_batches"),
            "dead_letters": await conn.fetchval("SELECT count(*) FROM dead_letters"),
        }
    finally:
        await conn.close()


# --- a TCP proxy to cut the network with ------------------------------------------------------------------------


class TcpProxy:
    """127.0.0.1:<port> -> target. `cut()` closes every connection and stops listening; `start()` listens again."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()  # a reset, as a dropped link or a killed middlebox gives
        self._writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers.discard(writer)
        self._writers.discard(up_writer)
