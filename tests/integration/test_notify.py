"""The notifier against real peers: Postgres, Redis, a local Slack stand-in (HTTP) and aiosmtpd on loopback.

Figures are written out by hand: an anomaly of $32.7726/h against a usual $0.192/h reads "$0.19/h expected vs
$32.77/h"; running resources of $0.192 + $3.06 = $3.252/h are $2,373.96/month (x 730).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from projections.db import create_pool
from schemas.events import Severity
from streams.notify import panic, store
from streams.notify.governance import Governance
from streams.notify.rules import Flags, QuietHours
from streams.notify.service import Notifier, NotifierConfig
from tests.integration.notify_support import (
    HANG,
    SlackServer,
    closed_redis_url,
    governance,
    notifier_config,
    slack_server,
    smtp_server,
)
from tests.integration.test_api_rows import (
    ACCOUNT_A,
    ACCOUNT_B,
    T0,
    anomaly,
    cost_event,
    db,
    insert_anomalies,
    insert_cost_events,
    insert_resources,
    resource,
    wait_until,
)

pytestmark = pytest.mark.integration

NOW = datetime(2024, 3, 1, 13, 0, tzinfo=UTC)  # 13:00 UTC = 14:00 in Berlin


def crit(tenant: str, n: int, **kw: Any) -> Any:
    kw.setdefault("severity", Severity.CRITICAL)
    kw.setdefault("hourly", 32.7726)
    kw.setdefault("expected", 0.192)
    kw.setdefault("at", T0 + timedelta(minutes=n))
    return anomaly(tenant, n, **kw)


@asynccontextmanager
async def notifier(
    database_url: str, gov: Governance, config: NotifierConfig, *, now: datetime = NOW
) -> AsyncIterator[Notifier]:
    pool = await create_pool(database_url, min_size=1, max_size=4)
    n = Notifier(pool, gov, config, clock=lambda: now)
    try:
        yield n
    finally:
        await n.aclose()
        await pool.close()


async def configure(url: str, tenant: str, slack: SlackServer | None, path: str = "hook", email: str = "") -> None:
    async with db(url) as conn:
        await store.set_channels(
            conn, tenant, slack_webhook_url=slack.url(path) if slack else None,
            email_to=[e for e in email.split(",") if e],
        )


async def deliveries(url: str, tenant: str) -> list[dict[str, Any]]:
    async with db(url) as conn:
        rows = await store.list_deliveries(conn, tenant, limit=500)
    return list(reversed(rows))  # oldest first


def texts(blocks: list[dict[str, Any]]) -> str:
    """Every text in a Block Kit message, flattened (what a person would read)."""
    out: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("text"), str):
                out.append(node["text"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(blocks)
    return "\n".join(out)


async def test_a_critical_anomaly_is_one_slack_post_with_account_resource_and_figures(
    database_url: str, redis_url: str
) -> None:
    gov = governance(redis_url)
    async with slack_server() as slack:
        await configure(database_url, "acme", slack)
        a = crit("acme", 1)
        async with db(database_url) as conn:
            await insert_cost_events(conn, [cost_event("acme", 1, hourly=32.7726)])
            await insert_anomalies(conn, [a])
        async with notifier(database_url, gov, notifier_config()) as n:
            result = await n.run_once()
        assert result["acme"].sent == 1
        assert len(slack.posts) == 1
        post = slack.posts[0].body
        shown = texts(post["blocks"])
        assert "*Severity*\nCRITICAL" in shown
        assert f"*Account*\n{ACCOUNT_A}" in shown
        assert "ec2_instance m5.xlarge i-00000000000000001 in us-east-1" in shown  # from the cost event
        assert "$0.19/h expected vs $32.77/h" in shown
        assert "4.2 standard deviations" in shown and "alice never created" in shown
        [button] = next(b for b in post["blocks"] if b["type"] == "actions")["elements"]
        assert button["url"] == f"https://dd0c.test.invalid/#anomaly={a.id}"  # the dashboard, opened on it
        rows = await deliveries(database_url, "acme")
        assert [(r["anomaly_id"], r["channel"], r["status"], r["attempts"]) for r in rows] == [
            (a.id, "slack", "sent", 1)
        ]
    await gov.aclose()


async def test_below_the_floor_is_not_sent_and_recorded_suppressed_with_the_reason(
    database_url: str, redis_url: str
) -> None:
    gov = governance(redis_url)
    async with slack_server() as slack:
        await configure(database_url, "acme", slack)
        await gov.set_flags("acme", Flags(severity_floor=Severity.HIGH))
        async with db(database_url) as conn:
            await insert_anomalies(conn, [crit("acme", 1, severity=Severity.MEDIUM)])
        async with notifier(database_url, gov, notifier_config()) as n:
            await n.run_once()
        assert slack.posts == []
        [row] = await deliveries(database_url, "acme")
        assert row["status"] == "suppressed"
        assert row["reason"] == "severity medium is below the tenant's floor high"
    await gov.aclose()


async def test_quiet_hours_keep_non_critical_for_the_digest_but_critical_still_goes(
    database_url: str, redis_url: str
) -> None:
    gov = governance(redis_url)
    async with slack_server() as slack:
        await configure(database_url, "acme", slack)
        # 13:00 UTC is 14:00 in Berlin: inside 13:30-15:00 Europe/Berlin, outside it in UTC.
        await gov.set_flags("acme", Flags(severity_floor=Severity.HIGH,
                                          quiet=QuietHours.parse("13:30-15:00", "Europe/Berlin")))
        high, critical = crit("acme", 1, severity=Severity.HIGH), crit("acme", 2)
        async with db(database_url) as conn:
            await insert_anomalies(conn, [high, critical])
        async with notifier(database_url, gov, notifier_config()) as n:
            await n.run_once()
        assert len(slack.posts) == 1 and "CRITICAL" in slack.posts[0].body["text"]
        rows = {r["anomaly_id"]: r for r in await deliveries(database_url, "acme")}
        assert rows[high.id]["status"] == "suppressed"
        assert rows[high.id]["reason"] == "quiet hours 13:30-15:00 Europe/Berlin: non-critical, kept for the digest"
        assert rows[critical.id]["status"] == "sent"
    await gov.aclose()


async def test_panic_on_sends_nothing_is_audited_and_off_resumes(database_url: str, redis_url: str) -> None:
    gov = governance(redis_url)
    async with slack_server() as slack:
        await configure(database_url, "acme", slack)
        async with db(database_url) as conn:
            state = await panic.switch(conn, gov, "acme", on=True, actor="cli:bob", reason="runaway webhook")
            assert state["active"] is True and state["tenant"]["actor"] == "cli:bob"
            await insert_anomalies(conn, [crit("acme", 1)])
        async with notifier(database_url, gov, notifier_config()) as n:
            await n.run_once()
            assert slack.posts == []
            [row] = await deliveries(database_url, "acme")
            assert row["status"] == "suppressed"
            assert row["reason"].startswith("panic mode (tenant acme) set by cli:bob at ")
            assert row["reason"].endswith(": runaway webhook")

            async with db(database_url) as conn:
                await panic.switch(conn, gov, "acme", on=False, actor="cli:carol", reason="fixed")
                await insert_anomalies(conn, [crit("acme", 2)])
                audit = await store.panic_history(conn, "acme")
            await n.run_once()
        assert len(slack.posts) == 1  # only the anomaly after panic off
        assert [(a["scope"], a["action"], a["actor"], a["reason"]) for a in audit] == [
            ("acme", "off", "cli:carol", "fixed"),
            ("acme", "on", "cli:bob", "runaway webhook"),
        ]
    await gov.aclose()


async def test_global_panic_silences_every_tenant(database_url: str, redis_url: str) -> None:
    gov = governance(redis_url)
    async with slack_server() as slack:
        await configure(database_url, "acme", slack, "a")
        await configure(database_url, "globex", slack, "g")
        async with db(database_url) as conn:
            await panic.switch(conn, gov, None, on=True, actor="ops", reason="incident 42")
            await insert_anomalies(conn, [crit("acme", 1), crit("globex", 2)])
        async with notifier(database_url, gov, notifier_config()) as n:
            await n.run_once()
        assert slack.posts == []
        for tenant in ("acme", "globex"):
            [row] = await deliveries(database_url, tenant)
            assert row["status"] == "suppressed" and "panic mode (global) set by ops" in row["reason"]
    await gov.aclose()


async def test_breaker_n_plus_k_alerts_give_n_posts_one_storm_message_and_the_rest_suppressed(
    database_url: str, redis_url: str
) -> None:
    n_max, k = 3, 4
    gov = governance(redis_url, max_alerts=n_max, window=5.0, cooldown=15.0)
    async with slack_server() as slack:
        await configure(database_url, "acme", slack)
        async with db(database_url) as conn:
            await insert_anomalies(conn, [crit("acme", i) for i in range(1, n_max + k + 1)])
        async with notifier(database_url, gov, notifier_config()) as n:
            await n.run_once()
        storms = [p for p in slack.posts if "Alert storm" in p.body["text"]]
        alerts = [p for p in slack.posts if "Alert storm" not in p.body["text"]]
        assert (len(alerts), len(storms)) == (3, 1)
        assert "more than 3 alerts in 5 minutes" in texts(storms[0].body["blocks"])
        rows = await deliveries(database_url, "acme")
        by = [(r["kind"], r["status"]) for r in rows]
        assert by.count(("alert", "sent")) == 3
        assert by.count(("storm", "sent")) == 1
        assert by.count(("alert", "suppressed")) == 4
        assert await gov.breaker_state("acme", "slack") == "open"
    await gov.aclose()


async def test_breaker_half_opens_after_the_cooldown(database_url: str, redis_url: str) -> None:
    gov = governance(redis_url, max_alerts=1, window=5.0, cooldown=15.0)
    async with slack_server() as slack:
        await configure(database_url, "acme", slack)
        async with db(database_url) as conn:
            await insert_anomalies(conn, [crit("acme", 1), crit("acme", 2)])  # 1 sent, 2 opens the breaker
        async with notifier(database_url, gov, notifier_config(), now=NOW) as n:
            await n.run_once()
        async with db(database_url) as conn:
            await insert_anomalies(conn, [crit("acme", 3)])
        async with notifier(database_url, gov, notifier_config(), now=NOW + timedelta(minutes=16)) as n:
            await n.run_once()  # after the 15-minute cool-down: the probe goes through
        assert await gov.breaker_state("acme", "slack") == "half_open"
        assert len(slack.posts) == 3  # alert 1, the storm message, the probe (alert 3)
        assert "CRITICAL" in slack.posts[2].body["text"]
    await gov.aclose()


async def test_webhook_500_then_200_is_retried_and_recorded_sent_after_2_attempts(
    database_url: str, redis_url: str
) -> None:
    gov = governance(redis_url)
    async with slack_server({"hook": [500, 200]}) as slack:
        await configure(database_url, "acme", slack)
        async with db(database_url) as conn:
            await insert_anomalies(conn, [crit("acme", 1)])
        async with notifier(database_url, gov, notifier_config()) as n:
            await n.run_once()
        assert [p.status for p in slack.posts] == [500, 200]
        [row] = await deliveries(database_url, "acme")
        assert (row["status"], row["attempts"]) == ("sent", 2)
    await gov.aclose()


async def test_a_hanging_webhook_times_out_recorded_failed_and_other_tenants_are_unaffected(
    database_url: str, redis_url: str
) -> None:
    gov = governance(redis_url)
    async with slack_server({"hang": [HANG, HANG]}) as slack:
        await configure(database_url, "slow", slack, "hang")
        await configure(database_url, "acme", slack, "ok")
        async with db(database_url) as conn:
            await insert_anomalies(conn, [crit("slow", 1), crit("acme", 2)])
        async with notifier(database_url, gov, notifier_config(timeout=0.3, attempts=2)) as n:
            result = await n.run_once()
        assert (result["slow"].failed, result["acme"].sent) == (1, 1)
        [failed] = await deliveries(database_url, "slow")
        assert (failed["status"], failed["attempts"]) == ("failed", 2)
        assert failed["reason"] == "Slack webhook timed out after 0.3s"
        assert slack.url("hang") not in failed["reason"]  # the webhook URL is a secret
        [sent] = await deliveries(database_url, "acme")
        assert sent["status"] == "sent"
    await gov.aclose()


async def test_a_webhook_answering_404_is_not_retried(database_url: str, redis_url: str) -> None:
    gov = governance(redis_url)
    async with slack_server({"gone": [404, 200]}) as slack:
        await configure(database_url, "acme", slack, "gone")
        async with db(database_url) as conn:
            await insert_anomalies(conn, [crit("acme", 1)])
        async with notifier(database_url, gov, notifier_config()) as n:
            await n.run_once()
        [row] = await deliveries(database_url, "acme")
        assert (row["status"], row["attempts"], row["reason"]) == (
            "failed", 1, "Slack webhook answered HTTP 404: internal_error"
        )
    await gov.aclose()


async def test_redis_down_holds_alerts_and_sends_them_once_redis_is_back(database_url: str, redis_url: str) -> None:
    down = Governance.connect(closed_redis_url(), timeout=0.5)
    gov = governance(redis_url)
    async with slack_server() as slack:
        await configure(database_url, "acme", slack)
        a1, a2 = crit("acme", 1), crit("acme", 2)
        async with db(database_url) as conn:
            await insert_anomalies(conn, [a1, a2])
            start = await store.cursor(conn, "acme")
        async with notifier(database_url, down, notifier_config()) as n:
            result = await n.run_once()
        assert result["acme"].held == 1 and slack.posts == []
        [held] = await deliveries(database_url, "acme")
        assert (held["anomaly_id"], held["status"]) == (a1.id, "held")
        assert held["reason"].startswith("Redis unavailable: ")
        async with db(database_url) as conn:
            assert await store.cursor(conn, "acme") == start  # not past the held anomaly

        async with notifier(database_url, gov, notifier_config()) as n:
            await n.run_once()
        assert len(slack.posts) == 2
        rows = await deliveries(database_url, "acme")
        assert [(r["anomaly_id"], r["status"]) for r in rows] == [(a1.id, "sent"), (a2.id, "sent")]
    await down.aclose()
    await gov.aclose()


async def test_a_restarted_notifier_does_not_resend(database_url: str, redis_url: str) -> None:
    gov = governance(redis_url)
    async with slack_server() as slack:
        await configure(database_url, "acme", slack)
        async with db(database_url) as conn:
            await insert_anomalies(conn, [crit("acme", 1), crit("acme", 2, severity=Severity.LOW)])
        async with notifier(database_url, gov, notifier_config()) as n:
            await n.run_once()
        async with notifier(database_url, gov, notifier_config()) as n:  # a new process: new pool, new client
            again = await n.run_once()
        assert len(slack.posts) == 1
        assert (again["acme"].sent, again["acme"].suppressed) == (0, 0)
        assert len(await deliveries(database_url, "acme")) == 2
    await gov.aclose()


async def test_a_recorded_outcome_is_not_sent_again_even_with_the_cursor_behind(
    database_url: str, redis_url: str
) -> None:
    """The (anomaly, channel) record is the second guard: a cursor moved back (restored backup) resends nothing."""
    gov = governance(redis_url)
    async with slack_server() as slack:
        await configure(database_url, "acme", slack)
        async with db(database_url) as conn:
            await insert_anomalies(conn, [crit("acme", 1)])
        async with notifier(database_url, gov, notifier_config()) as n:
            await n.run_once()
            async with db(database_url) as conn:
                await conn.execute("UPDATE notify_cursors SET feed_id = 0 WHERE tenant_id = 'acme'")
            await n.run_once()
        assert len(slack.posts) == 1
    await gov.aclose()


async def test_digest_lists_each_severity_in_event_time_order(database_url: str, redis_url: str) -> None:
    """Backfilled history arrives out of order: within a severity the digest reads as a timeline, not as arrival."""
    gov = governance(redis_url)
    with smtp_server() as (inbox, smtp):
        await configure(database_url, "acme", None, email="ops@acme.test")
        async with db(database_url) as conn:
            await insert_anomalies(conn, [
                crit("acme", 1, severity=Severity.LOW, at=T0 + timedelta(minutes=30)),
                crit("acme", 2, severity=Severity.LOW, at=T0 + timedelta(minutes=5)),  # arrived later, happened first
                crit("acme", 3, at=T0 + timedelta(minutes=50)),
            ])
        async with notifier(database_url, gov, notifier_config(smtp)) as n:
            assert (await n.send_digest("acme")).status == "sent"
        text = inbox.messages[0].get_body(("plain",)).get_content()
        listed = [line.split()[0] for line in text.splitlines() if line.startswith("  [")]
        times = [line.rsplit("  ", 1)[1] for line in text.splitlines() if line.startswith("  [")]
        assert listed == ["[CRITICAL]", "[LOW", "[LOW"]
        assert times == [f"{T0 + timedelta(minutes=m):%Y-%m-%d %H:%M} UTC" for m in (50, 5, 30)]


async def test_digest_is_multipart_with_new_anomalies_zombies_and_top_accounts(
    database_url: str, redis_url: str
) -> None:
    gov = governance(redis_url)
    with smtp_server() as (inbox, smtp):
        await configure(database_url, "acme", None, email="ops@acme.test,cfo@acme.test")
        async with db(database_url) as conn:
            await insert_anomalies(conn, [
                crit("acme", 1),
                crit("acme", 2, severity=Severity.HIGH, hourly=3.06),
                crit("acme", 3, severity=Severity.LOW, account=ACCOUNT_B, hourly=0.045, expected=None),
            ])
            await insert_resources(conn, [
                resource("acme", "i-0aaa", hourly=0.192),
                resource("acme", "i-0bbb", hourly=3.06),
                resource("acme", "nat-0ddd", account=ACCOUNT_B, hourly=0.045, resource_type="nat_gateway"),
                resource("acme", "i-0ccc", state="stopped", hourly=5.0),  # stopped: burns nothing now
            ])
        async with notifier(database_url, gov, notifier_config(smtp)) as n:
            outcome = await n.send_digest("acme")
            assert (outcome.status, outcome.attempts) == ("sent", 1)
            [msg] = inbox.messages
            assert inbox.envelopes[0][1] == ["ops@acme.test", "cfo@acme.test"]
            assert msg["Subject"] == "dd0c/cost digest for acme: 3 new anomalies (1 critical, 1 high)"
            assert msg.get_content_type() == "multipart/alternative"
            types = [part.get_content_type() for part in msg.iter_parts()]
            assert types == ["text/plain", "text/html"]
            text = msg.get_body(("plain",)).get_content()
            html = msg.get_body(("html",)).get_content()
            assert "NEW ANOMALIES (first digest): 3 (1 critical, 1 high, 1 low)" in text
            assert "$0.19/h expected vs $32.77/h" in text
            assert "no baseline yet vs $0.05/h" in text  # 0.045 to the cent
            assert "OPEN ZOMBIES: 0, wasting $0.00/month" in text  # no zombies table yet
            # 0.192 + 3.06 = 3.252 $/h in account A, 0.045 in B: 3.297 $/h, x 730 = $2,406.81/month
            assert "RUNNING NOW: $3.30/h ($2,406.81/month) in 2 accounts; the costliest:" in text
            assert f"{ACCOUNT_A}  $3.25/h  $2,373.96/month  2 running" in text
            assert f"{ACCOUNT_B}  $0.05/h  $32.85/month  1 running" in text
            assert "<h3>New anomalies (first digest): 3 (1 critical, 1 high, 1 low)</h3>" in html
            assert "$2,406.81/month" in html

            # The next digest starts after these three.
            async with db(database_url) as conn:
                await insert_anomalies(conn, [crit("acme", 4)])
            await n.send_digest("acme")
        second = inbox.messages[1].get_body(("plain",)).get_content()
        assert "NEW ANOMALIES since 2024-03-01 13:00 UTC: 1 (1 critical)" in second
    rows = [r for r in await deliveries(database_url, "acme") if r["kind"] == "digest"]
    assert [(r["status"], r["detail"]["anomalies"]) for r in rows] == [("sent", 3), ("sent", 1)]
    await gov.aclose()


# The zombie hunter's projection (its own migration); created here only when that migration is not in the tree.
_ZOMBIES = """
CREATE TABLE IF NOT EXISTS zombies (
    tenant_id TEXT NOT NULL, zombie_id TEXT NOT NULL, account_id TEXT NOT NULL, region TEXT NOT NULL,
    resource_id TEXT NOT NULL, resource_type TEXT NOT NULL, check_name TEXT NOT NULL, status TEXT NOT NULL,
    monthly_waste_usd DOUBLE PRECISION, evidence JSONB NOT NULL, first_seen TIMESTAMPTZ NOT NULL,
    last_seen TIMESTAMPTZ NOT NULL, opened_at TIMESTAMPTZ NOT NULL, resolved_at TIMESTAMPTZ,
    acknowledged_at TIMESTAMPTZ, snoozed_until TIMESTAMPTZ, seq BIGINT NOT NULL, data JSONB NOT NULL,
    PRIMARY KEY (tenant_id, zombie_id))
"""


async def test_digest_sums_the_open_zombies_and_leaves_out_resolved_and_snoozed_ones(
    database_url: str, redis_url: str
) -> None:
    gov = governance(redis_url)
    with smtp_server() as (inbox, smtp):
        await configure(database_url, "acme", None, email="ops@acme.test")
        async with db(database_url) as conn:
            await conn.execute(_ZOMBIES)
            await conn.executemany(
                "INSERT INTO zombies (tenant_id, zombie_id, account_id, region, resource_id, resource_type,"
                " check_name, status, monthly_waste_usd, evidence, first_seen, last_seen, opened_at, snoozed_until,"
                " acknowledged_at, seq, data)"
                " VALUES ('acme', $1, $2, 'us-east-1', $1, $3, $4, $5, $6, '{}', $7, $7, $7, $8, $9, 1, '{}')",
                [
                    ("vol-0a", ACCOUNT_A, "ebs_volume", "unattached_volume", "open", 8.0, T0, None, None),
                    ("eipalloc-0b", ACCOUNT_A, "elastic_ip", "unassociated_eip", "open", 3.65, T0, None, None),
                    ("nat-0c", ACCOUNT_B, "nat_gateway", "idle_nat_gateway", "resolved", 32.85, T0, None, None),
                    ("vol-0d", ACCOUNT_B, "ebs_volume", "unattached_volume", "open", 4.0, T0, NOW + timedelta(days=1),
                     None),
                    ("vol-0e", ACCOUNT_B, "ebs_volume", "unattached_volume", "open", 40.0, T0, None, T0),  # acked
                ],
            )
        async with notifier(database_url, gov, notifier_config(smtp)) as n:
            await n.send_digest("acme")
        text = inbox.messages[0].get_body(("plain",)).get_content()
        # 8.00 + 3.65; resolved, snoozed and acknowledged left out, as GET /v1/zombies counts open ones
        assert "OPEN ZOMBIES: 2, wasting $11.65/month" in text
        assert f"{ACCOUNT_A}  ebs_volume vol-0a  $8.00/month  (unattached_volume)" in text
        assert inbox.messages[0]["Subject"] == (
            "dd0c/cost digest for acme: 0 new anomalies, 2 open zombies wasting $11.65/month"
        )
    await gov.aclose()


async def test_without_a_zombies_table_the_digest_has_an_empty_zombie_section(database_url: str) -> None:
    async with db(database_url) as conn:
        await conn.execute("DROP TABLE IF EXISTS zombies")
        assert await store.open_zombies(conn, "acme", NOW) == []


async def test_an_smtp_server_that_refuses_is_recorded_failed(database_url: str, redis_url: str) -> None:
    gov = governance(redis_url)
    with smtp_server(refuse=True) as (inbox, smtp):
        await configure(database_url, "acme", None, email="ops@acme.test")
        async with db(database_url) as conn:
            await insert_anomalies(conn, [crit("acme", 1)])
        async with notifier(database_url, gov, notifier_config(smtp)) as n:
            outcome = await n.send_digest("acme")
        assert inbox.messages == []
    assert (outcome.status, outcome.attempts) == ("failed", 1)  # a 5xx is permanent: not retried
    [row] = await deliveries(database_url, "acme")
    assert (row["kind"], row["status"], row["reason"]) == (
        "digest", "failed", "SMTP refused: 554 5.7.1 Message refused by policy"
    )
    async with db(database_url) as conn:
        state = await store.digest_state(conn, "acme")
    assert state.last_sent_at is None and state.feed_id == 0  # the next digest still carries the anomaly
    await gov.aclose()


async def test_no_smtp_server_is_retried_then_failed(database_url: str, redis_url: str) -> None:
    gov = governance(redis_url)
    await configure(database_url, "acme", None, email="ops@acme.test")
    async with notifier(database_url, gov, notifier_config(attempts=2)) as n:  # a port nothing listens on
        outcome = await n.send_digest("acme")
    assert (outcome.status, outcome.attempts) == ("failed", 2)
    await gov.aclose()


async def test_panic_stops_the_digest_too(database_url: str, redis_url: str) -> None:
    gov = governance(redis_url)
    with smtp_server() as (inbox, smtp):
        await configure(database_url, "acme", None, email="ops@acme.test")
        async with db(database_url) as conn:
            await panic.switch(conn, gov, "acme", on=True, actor="ops", reason="mail loop")
        async with notifier(database_url, gov, notifier_config(smtp)) as n:
            outcome = await n.send_digest("acme")
        assert inbox.messages == []
    assert outcome.status == "suppressed" and outcome.reason.endswith(": mail loop")
    await gov.aclose()


async def test_the_daily_digest_runs_once_after_its_hour(database_url: str, redis_url: str) -> None:
    gov = governance(redis_url)
    with smtp_server() as (inbox, smtp):
        await configure(database_url, "acme", None, email="ops@acme.test")
        early = datetime(2024, 3, 1, 7, 59, tzinfo=UTC)
        async with notifier(database_url, gov, notifier_config(smtp), now=early) as n:
            assert await n.due_digests() == {}
        async with notifier(database_url, gov, notifier_config(smtp), now=early + timedelta(minutes=2)) as n:
            assert [o.status for o in (await n.due_digests()).values()] == ["sent"]
            assert await n.due_digests() == {}  # already ran today
        assert len(inbox.messages) == 1
    await gov.aclose()


async def test_the_daemon_wakes_on_the_feed_notify(database_url: str, redis_url: str) -> None:
    gov = governance(redis_url)
    async with slack_server() as slack:
        await configure(database_url, "acme", slack)
        stop = asyncio.Event()
        async with notifier(database_url, gov, notifier_config(poll_interval=30.0)) as n:
            task = asyncio.create_task(n.run_forever(database_url, stop))
            async with db(database_url) as conn:
                await insert_anomalies(conn, [crit("acme", 1)])  # commits with pg_notify('dd0c_feed', 'acme')
            await wait_until(lambda: bool(slack.posts), 10, "the Slack post woken by NOTIFY dd0c_feed")
            stop.set()
            await task
        assert len(slack.posts) == 1


async def test_the_public_view_of_channels_never_holds_the_webhook_url(database_url: str) -> None:
    async with db(database_url) as conn:
        channels = await store.set_channels(conn, "acme", slack_webhook_url="https://hooks.test.invalid/T/B/secret")
    assert channels.public() == {"slack_webhook_configured": True, "email_to": []}


@pytest.mark.parametrize(
    ("seqs", "horizon", "new"),
    [
        # Postgres log: one sequence; entries up to 7 had been folded when the last digest was built
        ((5, 7, 8, 10), {"log": 7, "kafka": {}}, [2, 3]),
        # Kafka: seq = partition * 2**40 + offset, compared per partition (partition 2 had nothing folded)
        (((0, 5), (0, 9), (1, 3), (2, 0)), {"kafka": {"0": 5, "1": 3}}, [1, 3]),
        ((5, 7), None, [0, 1]),  # no horizon: every anomaly after the cursor is new
    ],
)
async def test_new_anomalies_beyond_a_horizon(database_url: str, seqs: tuple[Any, ...], horizon: Any,
                                              new: list[int]) -> None:
    from projections.anomalies import writer as anomalies_writer
    from streams.runner.kafka import kafka_seq

    made = [crit("acme", n) for n in range(1, len(seqs) + 1)]
    pairs = [(a, kafka_seq(*s) if isinstance(s, tuple) else s) for a, s in zip(made, seqs, strict=True)]
    async with db(database_url) as conn:
        await anomalies_writer.insert(conn, pairs)
        found = await store.new_anomalies(conn, "acme", 0, limit=10, beyond=horizon)
    assert found.total == len(new)
    assert sorted(a.id for a in found.listed) == sorted(made[i].id for i in new)
