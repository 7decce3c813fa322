"""Where CloudTrail puts its objects, and which day folders a poll or a backfill lists. Pure: no I/O, no clock.

CloudTrail writes `[<trail prefix>/]AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/<file>` and, for an
organization trail, `[<trail prefix>/]AWSLogs/<org-id>/<account>/CloudTrail/...`. The day is the UTC delivery
day, so at midnight UTC a new folder starts while the last objects of the old one may still arrive: a poll lists
yesterday's folder as well as today's. Digests live beside it, under `CloudTrail-Digest/`, and are never listed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

from schemas.events import Dd0cError

DIGEST_PART = "/CloudTrail-Digest/"
MAX_BACKFILL_DAYS = 3660  # ten years: a typo in --since should not start a million listings


def account_root(account_id: str, *, prefix: str = "", org_id: str | None = None) -> str:
    """The folder holding one account's region folders: `[prefix/]AWSLogs/[org-id/]<account>/CloudTrail/`."""
    if not account_id:
        raise Dd0cError("an account id is required to find its CloudTrail folder")
    head = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
    org = f"{org_id.strip('/')}/" if org_id else ""
    return f"{head}AWSLogs/{org}{account_id}/CloudTrail/"


def day_prefix(root: str, region: str, day: date) -> str:
    """`<root><region>/YYYY/MM/DD/` - one listing."""
    return f"{root}{region}/{day:%Y/%m/%d}/"


def region_of(root: str, common_prefix: str) -> str | None:
    """The region named by a `CommonPrefixes` entry of a delimited listing of `root` (None if it is not one)."""
    if not common_prefix.startswith(root) or not common_prefix.endswith("/"):
        return None
    region = common_prefix[len(root) : -1]
    return region if region and "/" not in region else None


def poll_days(now: datetime) -> tuple[date, date]:
    """Yesterday and today in UTC, in that order (`now` must be timezone-aware)."""
    if now.tzinfo is None:
        raise Dd0cError(f"poll time must be timezone-aware (got {now!r})")
    today = now.astimezone(UTC).date()
    return (today - timedelta(days=1), today)


def days_between(since: date, until: date) -> Iterator[date]:
    """Every day from `since` to `until`, both included."""
    if until < since:
        raise Dd0cError(f"--until {until} is before --since {since}")
    span = (until - since).days + 1
    if span > MAX_BACKFILL_DAYS:
        raise Dd0cError(f"{span} days from {since} to {until}: at most {MAX_BACKFILL_DAYS} in one backfill")
    for offset in range(span):
        yield since + timedelta(days=offset)


def is_digest_key(key: str) -> bool:
    """A digest object (integrity manifest, no events), recognised by its folder. Content is checked too (R01)."""
    return DIGEST_PART in "/" + key


# Late objects. CloudTrail names an object after the minute it wrote it - <account>_CloudTrail_<region>_
# <YYYYMMDDTHHMMZ>_<random>.json.gz - so two objects of one minute sort by their random part, and the one put
# second can sort before a key already read: a bare StartAfter on the last key would never list it. So a listing
# starts LOOKBACK before the newest stamp read, and the keys read in that window are remembered and skipped.
LOOKBACK = timedelta(hours=1)
_STAMP = re.compile(r"^(?P<head>.*_)(?P<stamp>\d{8}T\d{4}Z)_[^/]*$")
_STAMP_FORMAT = "%Y%m%dT%H%MZ"


def stamp_of(key: str) -> datetime | None:
    """The delivery minute in a CloudTrail object name (UTC), None for a name without one."""
    found = _STAMP.match(key)
    if found is None:
        return None
    try:
        return datetime.strptime(found["stamp"], _STAMP_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None


def start_after(last_key: str | None, lookback: timedelta = LOOKBACK) -> str | None:
    """Where to start listing a folder whose newest key read is `last_key`: `lookback` before its stamp (a string
    sorting before every key of that folder stamped since), or right after it for a name without a stamp."""
    if last_key is None:
        return None
    found = _STAMP.match(last_key)
    stamp = stamp_of(last_key)
    if found is None or stamp is None:
        return last_key
    return f"{found['head']}{(stamp - lookback):{_STAMP_FORMAT}}"


def recent_keys(keys: set[str], newest: str, lookback: timedelta = LOOKBACK) -> set[str]:
    """The keys worth remembering: those a listing from `start_after(newest)` would list again."""
    since = start_after(newest, lookback)
    return {k for k in keys if since is not None and k > since}
