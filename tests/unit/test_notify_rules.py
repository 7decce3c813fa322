"""Notification rules and messages (pure): floors, quiet hours across midnight and time zones, Block Kit, digest."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from schemas.events import Severity
from streams.notify.digest import (
    Digest,
    DigestAccount,
    DigestAnomaly,
    DigestZombie,
    render_html,
    render_text,
    subject,
)
from streams.notify.governance import flags_from_hash, flags_to_hash
from streams.notify.messages import escape, expected_vs_actual, hourly, slack_alert, slack_storm
from streams.notify.rules import Flags, NotifyError, QuietHours, decide

T = datetime(2024, 1, 15, 21, 30, tzinfo=UTC)  # 22:30 in Berlin (CET, UTC+1) in January


def item(severity: str = "critical", **kw: object) -> dict[str, object]:
    base: dict[str, object] = {
        "id": "5d0c6c8e-0000-5000-8000-000000000001", "severity": severity, "account_id": "111122223333",
        "resource_type": "ec2_instance", "instance_type": "p4d.24xlarge", "region": "us-east-1",
        "hourly_cost": 32.7726, "expected_hourly_cost": 0.096, "event_time": T, "actor": "arn:aws:iam::1:user/alice",
        "event_ids": ["e-1"], "reasons": [{"signal": "new_family", "text": "first p4d <ever> & more"}],
        "backfill": False, "policy": "default",
    }
    return base | kw


def test_quiet_hours_wrap_midnight_in_the_tenants_zone() -> None:
    q = QuietHours.parse("22:00-07:00", "Europe/Berlin")
    assert q.contains(T)  # 22:30 Berlin
    assert q.contains(datetime(2024, 1, 16, 5, 59, tzinfo=UTC))  # 06:59 Berlin
    assert not q.contains(datetime(2024, 1, 16, 6, 0, tzinfo=UTC))  # 07:00 Berlin: over
    assert not q.contains(datetime(2024, 1, 15, 20, 59, tzinfo=UTC))  # 21:59 Berlin
    # Summer time: 22:00 Berlin is 20:00 UTC (CEST, UTC+2).
    assert q.contains(datetime(2024, 7, 1, 20, 0, tzinfo=UTC))
    assert not QuietHours.parse("09:00-09:00").contains(T)  # empty, not all day


@pytest.mark.parametrize(("window", "tz"), [("22-07", "UTC"), ("25:00-07:00", "UTC"), ("22:00-07:00", "Mars/Base")])
def test_bad_quiet_hours_are_refused_with_the_reason(window: str, tz: str) -> None:
    with pytest.raises(NotifyError, match=r"quiet hours|time zone"):
        QuietHours.parse(window, tz)


def test_decide_floor_quiet_hours_backfill_and_channel() -> None:
    quiet = Flags(severity_floor=Severity.MEDIUM, quiet=QuietHours.parse("22:00-07:00", "Europe/Berlin"))
    assert decide(item("critical"), quiet, T, has_webhook=True).action == "send"  # critical ignores quiet hours
    high = decide(item("high"), quiet, T, has_webhook=True)
    assert (high.action, high.reason) == ("digest", "quiet hours 22:00-07:00 Europe/Berlin: non-critical, kept "
                                                    "for the digest")
    low = decide(item("low"), quiet, T, has_webhook=True)
    assert (low.action, low.reason) == ("suppress", "severity low is below the tenant's floor medium")
    assert decide(item(backfill=True), quiet, T, has_webhook=True).reason.startswith("backfill")
    assert decide(item(), Flags(slack=False), T, has_webhook=True).reason == "the tenant switched the slack channel off"
    assert decide(item(), Flags(), T, has_webhook=False).reason == "no Slack webhook configured for the tenant"


def test_flags_survive_the_redis_hash() -> None:
    flags = Flags(slack=False, email=True, severity_floor=Severity.CRITICAL,
                  quiet=QuietHours.parse("22:00-07:00", "Europe/Berlin"))
    assert flags_from_hash(flags_to_hash(flags), Severity.HIGH) == flags
    assert flags_from_hash({}, Severity.MEDIUM) == Flags(severity_floor=Severity.MEDIUM)


def test_slack_alert_blocks_carry_the_figures_and_escape_text() -> None:
    msg = slack_alert(item(), ["i-0abc"], "https://dd0c.example/")
    fields = [f["text"] for f in msg["blocks"][1]["fields"]]
    assert fields[:4] == [
        "*Severity*\nCRITICAL",
        "*Account*\n111122223333",
        "*Resource*\nec2_instance p4d.24xlarge i-0abc in us-east-1",
        "*Cost*\n$0.10/h expected vs $32.77/h",  # 0.096 and 32.7726 to the cent
    ]
    assert msg["blocks"][2]["text"]["text"] == "*Why*\n• first p4d &lt;ever&gt; &amp; more"
    assert msg["blocks"][3]["elements"][0]["url"] == (
        "https://dd0c.example/#anomaly=5d0c6c8e-0000-5000-8000-000000000001"
    )
    assert msg["text"].startswith("CRITICAL cost anomaly: $32.77/h in account 111122223333")
    assert expected_vs_actual(None, None) == "no baseline yet vs unpriced"
    assert escape("a<b>&c") == "a&lt;b&gt;&amp;c"


def test_small_amounts_are_never_shown_as_equal_or_as_zero() -> None:
    # a t3.micro ($0.0104/h) against a t3.nano-ish baseline of $0.0052/h: cents would print "$0.01 vs $0.01"
    assert expected_vs_actual(0.0052, 0.0104) == "$0.0052/h expected vs $0.0104/h"
    assert expected_vs_actual(0.0104, 0.0104) == "$0.01/h expected vs $0.01/h"  # truly equal: cents are fine
    assert expected_vs_actual(0.192, 32.7726) == "$0.19/h expected vs $32.77/h"  # cents tell them apart
    # an 8 GiB gp2 volume: 8 x $0.10 / 730 h = $0.001096/h, a cost, not $0.00
    assert hourly(0.001096) == "$0.0011/h"
    assert expected_vs_actual(None, 0.001096) == "no baseline yet vs $0.0011/h"
    assert (hourly(0.0), hourly(0.005), hourly(0.045)) == ("$0.00/h", "$0.01/h", "$0.05/h")


def test_storm_message_names_the_limits() -> None:
    msg = slack_storm("acme", 10, 5.0, 15.0, "https://dd0c.example")
    assert msg["blocks"][0]["text"]["text"] == ":cyclone: Alert storm: more than 10 alerts in 5 minutes"
    assert "paused for 15 minutes" in msg["blocks"][1]["text"]["text"]


def test_digest_text_totals() -> None:
    d = Digest(
        tenant="acme",
        generated_at=datetime(2024, 1, 16, 8, 0, tzinfo=UTC),
        since=None,
        anomalies=[DigestAnomaly("a1", "critical", "111122223333", "ec2_instance p4d.24xlarge", 32.7726, 0.096, T,
                                 "sent")],
        anomaly_total=1,
        by_severity={"critical": 1},
        zombies=[DigestZombie("111122223333", "vol-1", "ebs_volume", "unattached_volume", 8.0),
                 DigestZombie("111122223333", "vol-2", "ebs_volume", "unattached_volume", None)],
        accounts=[DigestAccount("111122223333", 2, 33.0)],
    )
    text = render_text(d)
    assert "NEW ANOMALIES (first digest): 1 (1 critical)" in text
    assert "OPEN ZOMBIES: 2, wasting $8.00/month\n  (1 of them unpriced, not in the total)" in text
    assert "RUNNING NOW: $33.00/h ($24,090.00/month) in 1 account; the costliest:" in text  # 33 x 730
    # the total covers every account, not only the listed ones: 33 + 2.5 = 35.5 $/h in 7 accounts
    wide = replace(d, running_hourly=35.5, running_accounts=7)
    assert "RUNNING NOW: $35.50/h ($25,915.00/month) in 7 accounts; the costliest:" in render_text(wide)
    assert "Running now: $35.50/h ($25,915.00/month) in 7 accounts; the costliest:" in render_html(wide)
    assert subject(d) == "dd0c/cost digest for acme: 1 new anomaly (1 critical), 2 open zombies wasting $8.00/month"


def test_zombie_waste_is_rounded_half_up_once() -> None:
    """40 + 32.85 + 16.425 + 10 + 3.65 = $102.925 a month: $102.93 in the digest, as the API and the CLI say."""
    wastes = (40.0, 32.85, 16.425, 10.0, 3.65)
    d = Digest(tenant="acme", generated_at=T, since=None,
               zombies=[DigestZombie("111122223333", f"r-{i}", "ebs_volume", "unattached_ebs_volume", w)
                        for i, w in enumerate(wastes)])
    assert "OPEN ZOMBIES: 5, wasting $102.93/month" in render_text(d)
    assert subject(d) == "dd0c/cost digest for acme: 0 new anomalies, 5 open zombies wasting $102.93/month"
