"""Embedded PostgreSQL for the first run: a real server from a wheel (pgserver), under the local data dir.

Only used when DATABASE_URL is not set. The server keeps running after the command that started it, so the
next `dd0c-cost ...` attaches to it; `dd0c-cost demo --stop` shuts it down.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path

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


def stop_embedded(data_dir: Path) -> bool:
    pgdata = _pgdata(data_dir)
    if not (pgdata / "postmaster.pid").exists():
        return False
    quiet()
    import pgserver

    server = pgserver.get_server(str(pgdata), cleanup_mode="stop")
    server.cleanup()
    return True
