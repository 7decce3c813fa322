"""Where the database is: DATABASE_URL, or (demo / first run) the embedded server under the data dir."""

from __future__ import annotations

from ops.settings import load_settings
from schemas.events import Dd0cError


def database_url() -> str:
    settings = load_settings()
    if settings.database_url:
        return settings.database_url
    from ops.embedded import embedded_database_url  # only a first run without a server needs it

    url = embedded_database_url(settings.data_dir)
    if url is None:
        raise Dd0cError("DATABASE_URL is not set and no embedded database is running; run `dd0c-cost demo`")
    return url
