"""Times given as an age ("90m", "24h", "7d", "2w" ago), as the CLI's --since and the API's `since` accept them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_AGE = re.compile(r"^(\d+)([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def age_ago(text: str, now: datetime | None = None) -> datetime | None:
    """The moment `text` (an age like 24h) before `now`; None when `text` is not an age."""
    match = _AGE.match(text.strip())
    if match is None:
        return None
    return (now or datetime.now(UTC)) - timedelta(**{_UNITS[match[2]]: int(match[1])})
