"""The notifier across a replay: real Postgres, real Redis, the local Slack stand-in and aiosmtpd on loopback.

A replay swaps rebuilt anomalies in with new, higher feed ids for the whole history (streams/replay). The notifier's
cursors remember the projection generation they refer to, and how far the folds had read the log when each last
caught up (its horizon), so the rebuilt history is neither posted to Slack nor listed as new in the digest, while
what arrived since - before the swap or after it - is sent and listed once.

Hand-checkable anchors (tests/integration/test_replay.py): the ctgen log (400 records, seed 11) folded with the
"strict" policy (record_floor = "medium") gives 6 anomalies - 5 medium, 1 high; with the default policy it gives
15 - 7 info, 2 low, 5 medium, 1 high. The severity floor is set to info here, so every recorded anomaly is a post:
without the generation check the 9 anomalies only the looser policy finds would be posted after the swap.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from projections.db import connect
from schemas.events import Severity
from streams.log.postgres import append
from streams.notify.governance import Governance
from streams.notify.rules import Flags
from streams.replay.replay import ReplayOptions, replay
from streams.score.policy import DEFAULT_POLICY, policy_to_mapping
from tests.integration import ctgen
from tests.integration.notify_support import governance, notifier_config, slack_server, smtp_server
from tests.integration.test_notify import configure, deliveries, notifier, texts
from tests.integration.test_replay import RECORDS, drain, prices, strict

pytestmark = pytest.mark.integration

REPLACED = "projections replaced by replay at generation 1; history not re-sent"


def p4d_launch() -> dict[str, Any]:
    """A p4d.24xlarge launched an hour after the log ends: the one thing after the swap worth a post."""
    last = datetime.fromisoformat(RECORDS[-1]["eventTime"])
    return ctgen.run_instances(10_000, at=last + timedelta(hours=1), instance_type="p4d.24xlarge")

@asynccontextmanager
async def strict_log(database_url: str, redis_url: str, tmp_path: Path) -> AsyncIterator[tuple[Governance, Any]]:
    """Tenant `default` under the strict policy with the ctgen log appended (not folded), and a Governance whose
    breaker never opens here (it must not be what keeps posts away)."""
    gov = governance(redis_url, max_alerts=100)
    conn = await connect(database_url)
    try:
        await conn.execute("INSERT INTO tenants (tenant_id, name, policy) VALUES ('default', 'default', $1)",
                           strict(tmp_path))
        await append(conn, ctgen.entries(RECORDS), keep_read_only=False)
        yield gov, conn
    finally:
        await conn.close()
        await gov.aclose()


async def test_a_looser_replay_posts_nothing_and_the_next_live_anomaly_posts_once(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    async with strict_log(database_url, redis_url, tmp_path) as (gov, conn):
        async with slack_server() as slack:
            with smtp_server() as (inbox, smtp):
                await configure(database_url, "default", slack, email="ops@acme.test")  # cursors at 0, generation 0
                await gov.set_flags("default", Flags(severity_floor=Severity.INFO))
                await drain(database_url)
                async with notifier(database_url, gov, notifier_config(smtp)) as n:
                    first = await n.run_once()
                    assert (await n.send_digest("default")).status == "sent"
                posted = len(slack.posts)
                assert (first["default"].sent, posted) == (6, 6)
                assert len(inbox.messages) == 1

                result = await replay(database_url, prices(), ReplayOptions(policy=policy_to_mapping(DEFAULT_POLICY)))
                assert (result.generation, result.anomalies_before, result.anomalies_after) == (1, 6, 15)
                top = await conn.fetchval("SELECT max(feed_id) FROM anomalies WHERE tenant_id = 'default'")

                async with notifier(database_url, gov, notifier_config(smtp)) as n:
                    # the digest, asked before any alert pass: nothing rebuilt is new
                    digest, newest, built_at = await n.build_digest("default", datetime.now().astimezone())
                    assert (digest.anomaly_total, digest.anomalies, newest, built_at) == (0, [], top, 1)
                    after_swap = await n.run_once()
                assert len(slack.posts) == posted  # 0 new posts
                assert (after_swap["default"].sent, after_swap["default"].suppressed) == (0, 0)
                replaced = [r for r in await deliveries(database_url, "default") if r["kind"] == "replay"]
                assert [(r["status"], r["reason"], r["feed_id"]) for r in replaced] == [("suppressed", REPLACED, top)]
                assert replaced[0]["detail"]["generation"] == 1
                cursors = await conn.fetch(
                    "SELECT feed_id, generation FROM notify_cursors WHERE tenant_id = 'default' UNION ALL"
                    " SELECT feed_id, generation FROM notify_digests WHERE tenant_id = 'default'"
                )
                # alerts: the rebuilt table's end; the digest: from 0, but only beyond what the last one covered
                assert [tuple(r) for r in cursors] == [(top, 1), (0, 1)]
                log_end = await conn.fetchval("SELECT max(seq) FROM log")
                assert await conn.fetchval("SELECT since_horizon FROM notify_digests") == {"kafka": {}, "log": log_end}

                big = p4d_launch()
                await append(conn, ctgen.entries([big]), keep_read_only=False)
                await drain(database_url)  # the live runner, reloaded from the swapped-in tables
                async with notifier(database_url, gov, notifier_config(smtp)) as n:
                    live = await n.run_once()
                    digest, _, _ = await n.build_digest("default", datetime.now().astimezone())
                    assert (await n.send_digest("default")).status == "sent"
                assert live["default"].sent == 1
                [post] = slack.posts[posted:]
                shown = texts(post.body["blocks"])
                assert ctgen.instance_id(10_000, 0) in shown and "p4d.24xlarge" in shown
                assert "*Severity*\nCRITICAL" in shown
                # the digest lists the one live anomaly, not the 15 rebuilt ones
                assert digest.anomaly_total == 1 and digest.by_severity == {"critical": 1}
                assert [a.severity for a in digest.anomalies] == ["critical"]
                assert len(inbox.messages) == 2


async def test_a_replay_of_another_tenant_only_updates_the_stored_generation(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    gov = governance(redis_url, max_alerts=100)
    conn = await connect(database_url)
    try:
        await append(conn, ctgen.entries(RECORDS, tenant="default") + ctgen.entries(RECORDS, tenant="acme"),
                     keep_read_only=False)
        async with slack_server() as slack:
            await configure(database_url, "default", slack)
            await gov.set_flags("default", Flags(severity_floor=Severity.INFO))
            await drain(database_url)  # one all-tenant worker
            async with notifier(database_url, gov, notifier_config()) as n:
                await n.run_once()
            posted = len(slack.posts)
            assert posted == 15
            before = await conn.fetchrow("SELECT feed_id, generation FROM notify_cursors WHERE tenant_id = 'default'")
            assert before["generation"] == 0

            await replay(database_url, prices(),
                         ReplayOptions(tenant="acme", policy=strict(tmp_path), policy_tenant="acme"))
            async with notifier(database_url, gov, notifier_config()) as n:
                await n.run_once()
            assert len(slack.posts) == posted
            after = await conn.fetchrow("SELECT feed_id, generation FROM notify_cursors WHERE tenant_id = 'default'")
            assert (after["feed_id"], after["generation"]) == (before["feed_id"], 1)
            assert [r for r in await deliveries(database_url, "default") if r["kind"] == "replay"] == []
            severities = Counter(r["severity"] for r in await deliveries(database_url, "default"))
            assert severities == Counter({"info": 7, "low": 2, "medium": 5, "high": 1})

            big = p4d_launch()
            await append(conn, ctgen.entries([big], tenant="default"), keep_read_only=False)
            await drain(database_url)
            async with notifier(database_url, gov, notifier_config()) as n:
                await n.run_once()
            [post] = slack.posts[posted:]
            assert ctgen.instance_id(10_000, 0) in texts(post.body["blocks"])
    finally:
        await conn.close()
        await gov.aclose()


async def test_anomalies_after_the_last_digest_are_in_the_next_one_across_a_replay(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    """Digest sent; then a p4d.24xlarge is launched (a critical anomaly, posted to Slack) - then a replay with the
    default policy rebuilds all 16 anomalies with new feed ids. The next digest lists exactly that one critical
    anomaly: not lost with the old feed ids, and none of the 15 rebuilt history anomalies."""
    async with strict_log(database_url, redis_url, tmp_path) as (gov, conn):
        with smtp_server() as (inbox, smtp):
            await configure(database_url, "default", None, email="ops@acme.test")
            await drain(database_url)
            async with notifier(database_url, gov, notifier_config(smtp)) as n:
                assert (await n.send_digest("default")).status == "sent"
            first = inbox.messages[0]["Subject"]
            assert first == "dd0c/cost digest for default: 6 new anomalies (1 high)"

            await append(conn, ctgen.entries([p4d_launch()]), keep_read_only=False)
            await drain(database_url)
            result = await replay(database_url, prices(), ReplayOptions(policy=policy_to_mapping(DEFAULT_POLICY)))
            assert (result.generation, result.anomalies_before, result.anomalies_after) == (1, 7, 16)

            async with notifier(database_url, gov, notifier_config(smtp)) as n:
                assert (await n.send_digest("default")).status == "sent"
                again = await n.build_digest("default", datetime.now().astimezone())
            second = inbox.messages[1]
            assert second["Subject"] == "dd0c/cost digest for default: 1 new anomaly (1 critical)"
            text = second.get_body(("plain",)).get_content()
            assert "1 (1 critical)" in text and "p4d" in text
            assert again[0].anomaly_total == 0  # and the one after that starts after it


async def test_an_anomaly_not_yet_alerted_when_a_replay_swaps_is_alerted_once_after(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    """The alert pass is caught up (6 posts under the strict policy); a p4d.24xlarge launch is folded, but before
    the notifier sees it a replay with the default policy rebuilds all 16 anomalies with new feed ids. The next pass
    posts the p4d once - it is news, not history - and none of the 15 rebuilt ones; a second pass posts nothing."""
    async with strict_log(database_url, redis_url, tmp_path) as (gov, conn):
        async with slack_server() as slack:
            await configure(database_url, "default", slack)
            await gov.set_flags("default", Flags(severity_floor=Severity.INFO))
            await drain(database_url)
            async with notifier(database_url, gov, notifier_config()) as n:
                assert (await n.run_once())["default"].sent == 6
            horizon = await conn.fetchval("SELECT horizon FROM notify_cursors WHERE tenant_id = 'default'")
            assert horizon == {"kafka": {}, "log": await conn.fetchval("SELECT max(seq) FROM log")}

            await append(conn, ctgen.entries([p4d_launch()]), keep_read_only=False)
            await drain(database_url)
            result = await replay(database_url, prices(), ReplayOptions(policy=policy_to_mapping(DEFAULT_POLICY)))
            assert (result.anomalies_before, result.anomalies_after) == (7, 16)
            async with notifier(database_url, gov, notifier_config()) as n:
                after = await n.run_once()
                again = await n.run_once()
            assert (after["default"].sent, again["default"].sent) == (1, 0)
            [post] = slack.posts[6:]
            shown = texts(post.body["blocks"])
            assert ctgen.instance_id(10_000, 0) in shown and "*Severity*\nCRITICAL" in shown
            top = await conn.fetchval("SELECT max(feed_id) FROM anomalies WHERE tenant_id = 'default'")
            cursor = await conn.fetchrow("SELECT feed_id, generation, since_horizon FROM notify_cursors")
            assert tuple(cursor) == (top, 1, None)
