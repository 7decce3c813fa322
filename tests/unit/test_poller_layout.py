"""Which folders the S3 poller lists (pure): the S3 layout, organization trails, the UTC midnight rollover."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from ops.prometheus import Family, render
from schemas.events import Dd0cError
from streams.poller import layout


def test_account_root_plain_org_and_prefixed() -> None:
    assert layout.account_root("111122223333") == "AWSLogs/111122223333/CloudTrail/"
    assert layout.account_root("111122223333", org_id="o-abc123def4") == "AWSLogs/o-abc123def4/111122223333/CloudTrail/"
    assert layout.account_root("111122223333", prefix="/trails/prod/") == "trails/prod/AWSLogs/111122223333/CloudTrail/"


def test_day_prefix_and_region_of_a_listing() -> None:
    root = "AWSLogs/111122223333/CloudTrail/"
    assert layout.day_prefix(root, "eu-west-1", date(2024, 5, 1)) == root + "eu-west-1/2024/05/01/"
    assert layout.region_of(root, root + "eu-west-1/") == "eu-west-1"
    assert layout.region_of(root, "AWSLogs/444455556666/CloudTrail/eu-west-1/") is None
    assert layout.region_of(root, root + "eu-west-1/2024/") is None


def test_poll_days_roll_over_at_midnight_utc() -> None:
    assert layout.poll_days(datetime(2024, 5, 2, 0, 0, 5, tzinfo=UTC)) == (date(2024, 5, 1), date(2024, 5, 2))
    assert layout.poll_days(datetime(2024, 5, 1, 23, 59, 59, tzinfo=UTC)) == (date(2024, 4, 30), date(2024, 5, 1))
    # 01:00 at UTC+2 is 23:00 UTC the day before: the folders are UTC days.
    plus2 = timezone(timedelta(hours=2))
    assert layout.poll_days(datetime(2024, 5, 2, 1, 0, tzinfo=plus2)) == (date(2024, 4, 30), date(2024, 5, 1))
    assert layout.poll_days(datetime(2024, 3, 1, 12, tzinfo=UTC)) == (date(2024, 2, 29), date(2024, 3, 1))
    with pytest.raises(Dd0cError, match="timezone-aware"):
        layout.poll_days(datetime(2024, 5, 2, 10))


def test_days_between_includes_both_ends_and_refuses_a_reversed_range() -> None:
    assert list(layout.days_between(date(2024, 4, 30), date(2024, 5, 2))) == [
        date(2024, 4, 30), date(2024, 5, 1), date(2024, 5, 2)]
    assert list(layout.days_between(date(2024, 5, 1), date(2024, 5, 1))) == [date(2024, 5, 1)]
    with pytest.raises(Dd0cError, match="before --since"):
        list(layout.days_between(date(2024, 5, 2), date(2024, 5, 1)))


def test_digest_keys() -> None:
    assert layout.is_digest_key("AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2024/05/01/x.json.gz")
    assert not layout.is_digest_key("AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/01/x.json.gz")


def test_prometheus_text() -> None:
    text = render([
        Family("dd0c_ingest_events_total", "counter", "Events.", {(("source", "s3"),): 19, (("source", "grpc"),): 0}),
        Family("dd0c_ingest_lag_seconds", "gauge", "Lag.", {(("source", "s3"),): 1.5}),
        Family("dd0c_polls_total", "counter", "Polls.", {(): 2}),
    ])
    assert text == (
        "# HELP dd0c_ingest_events_total Events.\n# TYPE dd0c_ingest_events_total counter\n"
        'dd0c_ingest_events_total{source="grpc"} 0\ndd0c_ingest_events_total{source="s3"} 19\n'
        "# HELP dd0c_ingest_lag_seconds Lag.\n# TYPE dd0c_ingest_lag_seconds gauge\n"
        'dd0c_ingest_lag_seconds{source="s3"} 1.5\n'
        "# HELP dd0c_polls_total Polls.\n# TYPE dd0c_polls_total counter\ndd0c_polls_total 2\n"
    )


def test_listings_start_an_hour_before_the_newest_stamp() -> None:
    folder = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/02/"
    newest = f"{folder}111122223333_CloudTrail_us-east-1_20240502T0010Z_bbbb.json.gz"
    assert layout.stamp_of(newest) == datetime(2024, 5, 2, 0, 10, tzinfo=UTC)
    # An hour back crosses midnight: still a string that sorts before every key of the folder since 23:10.
    assert layout.start_after(newest) == f"{folder}111122223333_CloudTrail_us-east-1_20240501T2310Z"
    assert layout.start_after(f"{folder}notes.txt") == f"{folder}notes.txt"  # no stamp: right after it
    assert layout.start_after(None) is None
    old = f"{folder}111122223333_CloudTrail_us-east-1_20240501T2309Z_zzzz.json.gz"
    kept = f"{folder}111122223333_CloudTrail_us-east-1_20240501T2310Z_0000.json.gz"
    assert layout.recent_keys({old, kept, newest}, newest) == {kept, newest}
