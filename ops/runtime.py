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


def missing_schema_hint() -> str:
    """What to do about a database without our tables. On the embedded server the likelier cause is the wrong one:
    a demo run with DD0C_DATA_DIR=X keeps its data under X, and a command run without it starts a new, empty
    server under the default data dir - where `migrate` would only set up that empty one."""
    settings = load_settings()
    hint = "the database has no dd0c/cost schema yet: run `dd0c-cost migrate`"
    if settings.database_url:
        return hint
    where = settings.data_dir.resolve()
    return (f"{hint} - or, if your data is in a demo started with another DD0C_DATA_DIR, set that: this is the "
            f"embedded database under {where} (`dd0c-cost demo --stop` stops it)")
