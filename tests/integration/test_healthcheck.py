"""`python -m ops.healthcheck`, the compose containers' health checks, against the real Postgres and Redis and
a port nobody listens on."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from tests.conftest import ROOT


def check(*names: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ops.healthcheck", *names],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=60, check=False,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_db_and_redis_pass_against_the_real_servers(sync_database_url: str, redis_url: str) -> None:
    result = check("db", "redis", env={"DATABASE_URL": sync_database_url, "REDIS_URL": redis_url})
    assert (result.returncode, result.stderr) == (0, "")


def test_each_failure_is_one_line_and_status_1(sync_database_url: str) -> None:
    closed = free_port()
    env = {"DATABASE_URL": f"postgresql://postgres@127.0.0.1:{closed}/x", "REDIS_URL": f"redis://127.0.0.1:{closed}/0"}
    result = check("db", "redis", f"tcp:127.0.0.1:{closed}", "nonsense", env=env)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert [line.split(":")[1].strip() for line in lines] == ["db", "redis", "tcp", "nonsense"]
    assert "unknown check 'nonsense'" in lines[3]
    assert check("db", env={}).stderr == "unhealthy: db: DATABASE_URL is not set\n"


@pytest.mark.parametrize(("status", "expected"), [(200, 0), (503, 1)])
def test_http_passes_below_400_only(status: int, expected: int) -> None:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/v1/health"
        result = check(url, env={})
    finally:
        server.shutdown()
        server.server_close()
    assert result.returncode == expected
    assert result.stderr == ("" if expected == 0 else f"unhealthy: {url}: {url} answered 503\n")
