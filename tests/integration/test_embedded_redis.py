"""The embedded Redis of the first try: started under the data dir, found by every later command, stopped by
`demo --stop`; panic mode works on it and survives its restart. The last test is the new user's whole path:
`dd0c-cost demo` with no server configured, then `dd0c-cost panic on`, then `demo --stop`."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from redis import Redis

from ops import embedded_redis
from ops.embedded import process_alive
from ops.settings import load_settings
from streams.notify.governance import Governance

pytestmark = pytest.mark.integration


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """A data dir with nothing configured: no DATABASE_URL, no REDIS_URL (as on a new user's machine)."""
    for name in ("DATABASE_URL", "DD0C_DATABASE_URL", "REDIS_URL", "DD0C_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    where = tmp_path / ".dd0c"
    monkeypatch.setenv("DD0C_DATA_DIR", str(where))
    yield where
    embedded_redis.stop(where)


def _pid(where: Path) -> int:
    return int((where / "redis" / "redis.pid").read_text())


def test_started_once_private_and_found_by_settings(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().redis_url is None  # nothing runs yet: nothing is made up
    url = embedded_redis.start(data_dir)
    sock = (data_dir / "redis" / "redis.sock").resolve()
    assert url == f"unix://{sock}?db=0"
    first = _pid(data_dir)
    assert embedded_redis.start(data_dir) == url and _pid(data_dir) == first  # a second start attaches
    assert stat.S_IMODE((data_dir / "redis").stat().st_mode) == 0o700  # the socket's folder is its access control
    client = Redis.from_url(url)
    try:
        assert client.ping() is True
        assert client.config_get("port") == {"port": "0"}  # no TCP listener
    finally:
        client.close()
    assert load_settings().redis_url == url
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    assert load_settings().redis_url is None  # a configured database means a configured deployment: no guessing


def test_panic_survives_a_restart_and_stop_ends_it(data_dir: Path) -> None:
    async def set_and_read(url: str) -> str | None:
        gov = Governance.from_settings(load_settings(), url=url)
        try:
            await gov.set_panic("acme", "alice", "alert flood")
            panic = await gov.panic("acme")
            return None if panic is None else panic.reason
        finally:
            await gov.aclose()

    async def read(url: str) -> tuple[str | None, str | None]:
        gov = Governance.from_settings(load_settings(), url=url)
        try:
            panic = await gov.panic("acme")
            other = await gov.panic("globex")
            return (None if panic is None else panic.actor), (None if other is None else other.actor)
        finally:
            await gov.aclose()

    url = embedded_redis.start(data_dir)
    assert asyncio.run(set_and_read(url)) == "alert flood"
    pid = _pid(data_dir)
    assert embedded_redis.stop(data_dir) is True
    assert not process_alive(pid)
    assert embedded_redis.running_url(data_dir) is None and load_settings().redis_url is None
    assert embedded_redis.stop(data_dir) is False  # nothing left to stop
    again = embedded_redis.start(data_dir)
    assert asyncio.run(read(again)) == ("alice", None)  # the append-only file kept the panic; other tenants free


def test_a_stale_pid_file_never_signals_another_process(data_dir: Path) -> None:
    home = data_dir / "redis"
    home.mkdir(parents=True)
    (home / "redis.pid").write_text(str(os.getpid()))  # a live process that is not redis-server: this test
    (home / "redis.sock").touch()
    assert embedded_redis.running_url(data_dir) is None
    assert embedded_redis.stop(data_dir) is False
    url = embedded_redis.start(data_dir)  # takes the place over
    assert _pid(data_dir) != os.getpid() and Redis.from_url(url).ping() is True


def test_the_fully_embedded_demo_then_panic_from_the_cli_then_stop(data_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items()}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "ops", *args], env=env, capture_output=True, text=True,
                              timeout=300, check=False)

    try:
        demo = cli("demo", "--no-api", "--no-corpus", "--records", "3000", "--days", "7", "--accounts", "1")
        assert demo.returncode == 0, demo.stdout + demo.stderr
        assert f"redis: starting the embedded Redis under {data_dir / 'redis'}" in demo.stdout
        # not the default data dir: other shells must be told, or they start a second, empty database
        assert f"Shell:   export DD0C_DATA_DIR={data_dir.resolve()}   (in every other shell" in demo.stdout
        # the hint names the command as this shell finds it (a path when the venv is not activated)
        hint = re.search(r"^Panic:   (\S+) panic on --reason 'trying it'", demo.stdout, re.MULTILINE)
        assert hint is not None and Path(hint.group(1)).name == "dd0c-cost", demo.stdout
        assert shutil.which(hint.group(1)) is not None  # it runs as printed
        on = cli("panic", "on", "--reason", "trying it")
        assert on.returncode == 0, on.stdout + on.stderr
        status = cli("panic", "status", "--format", "json")
        assert status.returncode == 0, status.stdout + status.stderr
        shown = json.loads(status.stdout)  # no --tenant: the global switch, as the demo's hint says
        assert (shown["active"], shown["global"]["reason"]) == (True, "trying it"), shown
        audit = [(a["scope"], a["action"], a["reason"]) for a in shown["audit"]]
        assert audit == [("global", "on", "trying it")], shown  # audited in the embedded Postgres
        # A process attached to the embedded database dies without closing its handle (kill -9 of a worker):
        # `demo --stop` must still stop the server, not just say so.
        worker = subprocess.Popen([sys.executable, "-m", "ops", "worker", "--poll", "0.2"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        handles = (data_dir / "pgdata" / ".handle_pids.json").resolve()
        for _ in range(200):
            if handles.exists() and worker.pid in json.loads(handles.read_text() or "[]"):
                break
            time.sleep(0.05)
        assert worker.pid in json.loads(handles.read_text()), "the worker never attached"
        worker.kill()
        worker.wait()
        postmaster = int((data_dir / "pgdata" / "postmaster.pid").read_text().splitlines()[0])
    finally:
        stop = cli("demo", "--stop")
    assert stop.returncode == 0, stop.stdout + stop.stderr
    assert f"stopped the embedded Redis under {data_dir}" in stop.stdout
    assert "stopped the embedded PostgreSQL" in stop.stdout
    assert not process_alive(postmaster)  # really stopped, the dead worker's handle notwithstanding
    assert embedded_redis.running_url(data_dir) is None
