"""Embedded PostgreSQL for the first run: a real server from a wheel (pgserver), under the local data dir.

Only used when DATABASE_URL is not set. The server keeps running after the command that started it, so the
next `dd0c-cost ...` attaches to it; `dd0c-cost demo --stop` shuts it down.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
import warnings
from pathlib import Path

from schemas.events import Dd0cError

log = logging.getLogger("dd0c.embedded")


def _pgdata(data_dir: Path) -> Path:
    return (data_dir / "pgdata").resolve()


def embedded_database_url(data_dir: Path, *, start: bool = True) -> str | None:
    """The embedded server's URL, starting it if needed (and allowed). None if it is not there."""
    pgdata = _pgdata(data_dir)
    if not start and not (pgdata / "postmaster.pid").exists():
        return None
    quiet()
    os.environ.setdefault("XDG_RUNTIME_DIR", str(data_dir.resolve()))  # pgserver's lock dir
    import pgserver

    pgdata.mkdir(parents=True, exist_ok=True)
    was_running = (pgdata / "postmaster.pid").exists()
    server = pgserver.get_server(str(pgdata), cleanup_mode=None)
    if not was_running:
        # it keeps running after this command: say so, and how to stop it
        print(f"dd0c-cost: started the embedded PostgreSQL in {pgdata} (stop it with `dd0c-cost demo --stop`)",
              file=sys.stderr)
    uri: str = server.get_uri()
    log.debug("embedded postgres at %s", uri)
    return uri


def quiet() -> None:
    """Every command that attaches to the embedded server would otherwise print pgserver's chatter."""
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    # pgserver (run as root) opens the data dir to its own OS user; platformdirs then warns about the runtime dir
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")


def process_alive(pid: int) -> bool:
    """The process exists and is not a zombie (a daemon's parent is init, which may be slow to reap it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _postmaster_pid(pgdata: Path) -> int | None:
    try:
        pid = int((pgdata / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if process_alive(pid) else None


def stop_embedded(data_dir: Path, *, timeout: float = 15.0) -> bool:
    """Stop the embedded server. pgserver stops it when its last handle closes, counting handles by pid in
    .handle_pids.json; a process that was killed never takes its pid out, and then this stopped nothing while
    saying it had. So: let pgserver close its handles, and stop whatever still runs ourselves (a fast shutdown:
    open sessions are rolled back, committed data is safe)."""
    pgdata = _pgdata(data_dir)
    if not (pgdata / "postmaster.pid").exists():
        return False
    quiet()
    import pgserver

    postmaster = _postmaster_pid(pgdata)
    server = pgserver.get_server(str(pgdata), cleanup_mode="stop")
    server.cleanup()
    if postmaster is not None and process_alive(postmaster):
        log.info("embedded postgres: handles of other processes remain; stopping pid %d", postmaster)
        os.kill(postmaster, signal.SIGINT)  # PostgreSQL's fast shutdown
        deadline = time.monotonic() + timeout
        while process_alive(postmaster) and time.monotonic() < deadline:
            time.sleep(0.1)
        if process_alive(postmaster):
            raise Dd0cError(f"the embedded PostgreSQL (pid {postmaster}) did not stop within {timeout:.0f}s")
    (pgdata / ".handle_pids.json").unlink(missing_ok=True)  # no handle outlives the server
    return True
