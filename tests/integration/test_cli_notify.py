"""`dd0c-cost panic` and `dd0c-cost notify config | flags | digest --now`, run as subprocesses."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from datetime import timedelta

import pytest

from streams.notify import store
from tests.integration.notify_support import smtp_server
from tests.integration.test_api_rows import db

pytestmark = pytest.mark.integration


def cli(url: str, redis: str, prefix: str, *args: str, **env_extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DD0C_")}
    env |= {"DATABASE_URL": url, "REDIS_URL": redis, "DD0C_REDIS_PREFIX": prefix, **env_extra}
    return subprocess.run(
        [sys.executable, "-m", "ops", *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_panic_on_status_off_from_the_cli_is_audited(sync_database_url: str, redis_url: str) -> None:
    prefix = f"dd0c-test-{uuid.uuid4().hex[:10]}"
    on = cli(sync_database_url, redis_url, prefix, "panic", "on", "--tenant", "acme", "--reason", "bad deploy",
             "--by", "bob", "--format", "json")
    assert on.returncode == 0, on.stderr
    state = json.loads(on.stdout)
    assert (state["scope"], state["active"], state["tenant"]["actor"]) == ("acme", True, "bob")
    status = json.loads(cli(sync_database_url, redis_url, prefix, "panic", "status", "--tenant", "acme",
                            "--format", "json").stdout)
    assert status["active"] is True and status["tenant"]["reason"] == "bad deploy"
    text = cli(sync_database_url, redis_url, prefix, "panic", "status", "--tenant", "acme").stdout.splitlines()
    assert text[:3] == ["panic mode for tenant acme: ACTIVE: no notification is sent", "  global switch: off",
                        text[2]]
    assert text[2].startswith("  tenant acme: ON since ") and text[2].endswith(" UTC by bob (bad deploy)")
    assert text[3] == "latest switches:" and text[4].endswith("acme       on   bob: bad deploy")
    # the operator's view without --tenant never says "notifications flow" while acme's own switch holds them
    overall = cli(sync_database_url, redis_url, prefix, "panic", "status").stdout.splitlines()
    assert overall[:2] == ["panic mode for every tenant: global switch off, but 1 tenant(s) still silenced by "
                           "their own switch", "  global switch: off"]
    assert overall[2].startswith("  tenant acme: ON since ") and overall[2].endswith(
        "by bob (bad deploy)  (clear: dd0c-cost panic off --tenant acme --reason ...)")
    listed = json.loads(cli(sync_database_url, redis_url, prefix, "panic", "status", "--format", "json").stdout)
    assert (listed["active"], list(listed["tenants"]), listed["tenants"]["acme"]["actor"]) == (False, ["acme"], "bob")
    missing = cli(sync_database_url, redis_url, prefix, "panic", "off", "--tenant", "acme")
    assert missing.returncode != 0 and "--reason" in missing.stderr
    off = cli(sync_database_url, redis_url, prefix, "panic", "off", "--tenant", "acme", "--reason", "rolled back",
              "--by", "carol", "--format", "json")
    assert json.loads(off.stdout)["active"] is False
    assert [(a["action"], a["actor"], a["reason"]) for a in json.loads(off.stdout)["audit"]] == [
        ("off", "carol", "rolled back"),
        ("on", "bob", "bad deploy"),
    ]


def test_notify_config_flags_and_digest_now(sync_database_url: str, redis_url: str) -> None:
    prefix = f"dd0c-test-{uuid.uuid4().hex[:10]}"
    url, redis = sync_database_url, redis_url
    config = cli(url, redis, prefix, "notify", "config", "--tenant", "acme", "--slack-webhook",
                 "https://hooks.test.invalid/T/B/secret", "--email", "ops@acme.test")
    assert config.returncode == 0, config.stderr
    assert json.loads(config.stdout) == {"tenant": "acme", "slack_webhook_configured": True,
                                         "email_to": ["ops@acme.test"]}
    assert "secret" not in config.stdout
    flags = cli(url, redis, prefix, "notify", "flags", "--tenant", "acme", "--severity-floor", "critical",
                "--quiet", "22:00-07:00", "--tz", "Europe/Berlin")
    assert json.loads(flags.stdout) == {
        "tenant": "acme", "slack": True, "email": True, "severity_floor": "critical",
        "quiet_hours": {"start": "22:00", "end": "07:00", "tz": "Europe/Berlin"},
    }
    nothing = cli(url, redis, prefix, "notify", "deliveries", "--tenant", "acme")
    assert nothing.returncode == 0 and nothing.stdout.startswith("no delivery recorded for tenant 'acme' yet")
    with smtp_server() as (inbox, smtp):
        digest = cli(url, redis, prefix, "notify", "digest", "--now", "--tenant", "acme",
                     DD0C_SMTP_HOST=smtp.host, DD0C_SMTP_PORT=str(smtp.port))
        assert digest.returncode == 0, digest.stderr
        assert digest.stdout.strip() == "acme: digest sent after 1 attempt(s)"
        assert inbox.messages[0]["Subject"].startswith("dd0c/cost digest for acme: 0 new anomalies")

    async def recorded() -> list[tuple[str, str]]:
        async with db(url) as conn:
            return [(r["kind"], r["status"]) for r in await store.list_deliveries(conn, "acme")]

    assert asyncio.run(recorded()) == [("digest", "sent")]


def test_preview_prints_the_digest_and_the_slack_message_without_sending(sync_database_url: str,
                                                                         redis_url: str) -> None:
    """Two anomalies in acme: a critical p3 at $32.7726/h (usual $0.192/h) and a high one at $3.06/h. The digest
    preview is the text a recipient would read (subject first), the alert preview the Block Kit JSON of the newest
    anomaly; nothing is recorded as delivered."""
    from schemas.events import Severity
    from tests.integration.test_api_rows import T0, anomaly, insert_anomalies

    prefix = f"dd0c-test-{uuid.uuid4().hex[:10]}"
    url = sync_database_url

    async def seed() -> None:
        async with db(url) as conn:
            await insert_anomalies(conn, [
                anomaly("acme", 1, at=T0, severity=Severity.CRITICAL, hourly=32.7726, expected=0.192),
                anomaly("acme", 2, at=T0 + timedelta(minutes=1), severity=Severity.HIGH, hourly=3.06, expected=0.1),
            ])

    asyncio.run(seed())
    digest = cli(url, redis_url, prefix, "notify", "preview", "digest", "--tenant", "acme")
    assert digest.returncode == 0, digest.stderr
    lines = digest.stdout.splitlines()
    assert lines[0] == "Subject: dd0c/cost digest for acme: 2 new anomalies (1 critical, 1 high)"
    assert "NEW ANOMALIES (first digest): 2 (1 critical, 1 high)" in digest.stdout
    assert "$0.19/h expected vs $32.77/h" in digest.stdout and "$0.10/h expected vs $3.06/h" in digest.stdout
    assert digest.stdout.count("slack: no alert recorded") == 2  # the notifier never ran here
    html = cli(url, redis_url, prefix, "notify", "preview", "digest", "--tenant", "acme", "--html")
    assert "<h3>New anomalies (first digest): 2 (1 critical, 1 high)</h3>" in html.stdout

    alert = cli(url, redis_url, prefix, "notify", "preview", "alert", "--tenant", "acme")
    assert alert.returncode == 0, alert.stderr
    message = json.loads(alert.stdout)
    flat = json.dumps(message)
    assert "$0.10/h expected vs $3.06/h" in flat  # the newest one (minute 1), high
    missing = cli(url, redis_url, prefix, "notify", "preview", "alert", "00000000-0000-4000-8000-000000000000",
                  "--tenant", "acme")
    assert missing.returncode == 1
    assert "no anomaly 00000000-0000-4000-8000-000000000000 for tenant 'acme'" in missing.stderr

    async def recorded() -> list[dict[str, object]]:
        async with db(url) as conn:
            return await store.list_deliveries(conn, "acme")

    assert asyncio.run(recorded()) == []
