"""Query parameter types shared by the routers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BeforeValidator

from schemas.ages import age_ago


def _age(value: Any) -> Any:
    if isinstance(value, str):
        ago = age_ago(value)
        if ago is not None:
            return ago
    return value


# A time as ISO-8601 (naive means UTC) or as an age before now: 90m, 24h, 7d, 2w.
TimeOrAge = Annotated[datetime, BeforeValidator(_age)]
