"""Panic mode and notification settings through the API: audited, tenant-scoped, the webhook URL write-only."""

from __future__ import annotations

import uuid

import pytest

from streams.notify import store
from tests.integration.test_api_rows import add_user, asgi_client, bearer, db, login

pytestmark = pytest.mark.integration

HOOK = "https://hooks.slack.test.invalid/services/T000/B000/very-secret-token"


async def test_panic_through_the_api_is_audited_and_global_is_the_operators_only(
    database_url: str, redis_url: str
) -> None:
    prefix = f"dd0c-test-{uuid.uuid4().hex[:10]}"
    await add_user(database_url, "acme", "alice", "pw")
    await add_user(database_url, "default", "root", "pw")
    async with asgi_client(database_url, redis_url=redis_url, redis_prefix=prefix) as (client, _app):
        alice = bearer(await login(client, "alice", "pw"))
        r = await client.post("/v1/panic", json={"on": True, "reason": "slack flood"}, headers=alice)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["active"] is True and body["global"] is None
        assert (body["tenant"]["actor"], body["tenant"]["reason"]) == ("api:alice", "slack flood")
        assert [(a["scope"], a["action"], a["actor"], a["reason"]) for a in body["audit"]] == [
            ("acme", "on", "api:alice", "slack flood")
        ]
        r = await client.post("/v1/panic", json={"on": True, "reason": "x", "scope": "global"}, headers=alice)
        assert r.status_code == 403
        r = await client.post("/v1/panic", json={"on": False, "reason": ""}, headers=alice)
        assert r.status_code == 422  # a reason is required

        root = bearer(await login(client, "root", "pw"))
        r = await client.post("/v1/panic", json={"on": True, "reason": "incident", "scope": "global"}, headers=root)
        assert r.status_code == 200 and r.json()["global"]["actor"] == "api:root"
        r = await client.get("/v1/panic", headers=alice)
        assert r.json()["active"] is True and r.json()["global"]["reason"] == "incident"

        await client.post("/v1/panic", json={"on": False, "reason": "over", "scope": "global"}, headers=root)
        r = await client.post("/v1/panic", json={"on": False, "reason": "calm again"}, headers=alice)
        assert r.json()["active"] is False
    async with db(database_url) as conn:
        rows = await store.panic_history(conn, "acme")
    assert [(a["scope"], a["action"], a["actor"], a["reason"]) for a in rows] == [
        ("acme", "off", "api:alice", "calm again"),
        ("global", "off", "api:root", "over"),
        ("global", "on", "api:root", "incident"),
        ("acme", "on", "api:alice", "slack flood"),
    ]


async def test_notification_settings_never_return_the_webhook_url(database_url: str, redis_url: str) -> None:
    prefix = f"dd0c-test-{uuid.uuid4().hex[:10]}"
    await add_user(database_url, "acme", "alice", "pw")
    async with asgi_client(database_url, redis_url=redis_url, redis_prefix=prefix) as (client, _app):
        alice = bearer(await login(client, "alice", "pw"))
        r = await client.put(
            "/v1/notifications",
            json={"slack_webhook_url": HOOK, "email_to": ["ops@acme.test"], "severity_floor": "critical",
                  "quiet_hours": {"start": "22:00", "end": "07:00", "tz": "Europe/Berlin"}},
            headers=alice,
        )
        assert r.status_code == 200, r.text
        assert r.json() == {
            "slack_webhook_configured": True, "email_to": ["ops@acme.test"], "slack": True, "email": True,
            "severity_floor": "critical", "quiet_hours": {"start": "22:00", "end": "07:00", "tz": "Europe/Berlin"},
        }
        got = await client.get("/v1/notifications", headers=alice)
        assert got.json() == r.json()
        assert "very-secret-token" not in got.text and "very-secret-token" not in r.text
        bad = await client.put("/v1/notifications", json={"quiet_hours": {"start": "22:00", "end": "07:00",
                                                                          "tz": "Mars/Base"}}, headers=alice)
        assert bad.status_code == 422 and "Mars/Base" in bad.text


async def test_redis_down_answers_503_and_audits_nothing(database_url: str) -> None:
    from tests.integration.notify_support import closed_redis_url

    await add_user(database_url, "acme", "alice", "pw")
    async with asgi_client(database_url, redis_url=closed_redis_url(), redis_timeout=0.5) as (client, _app):
        alice = bearer(await login(client, "alice", "pw"))
        r = await client.post("/v1/panic", json={"on": True, "reason": "x"}, headers=alice)
        assert r.status_code == 503 and "Redis unavailable" in r.text
    async with db(database_url) as conn:
        assert await store.panic_history(conn, "acme") == []


async def test_the_operators_list_of_silenced_tenants_fails_safe_when_redis_is_down() -> None:
    """`panic status` without --tenant lists tenants still silenced; with Redis down that question must end as
    every other one does (GovernanceUnavailable: a one-line error), not as a raw Redis traceback."""
    from streams.notify.governance import Governance, GovernanceUnavailable
    from tests.integration.notify_support import closed_redis_url

    gov = Governance.connect(closed_redis_url(), timeout=0.5)
    try:
        with pytest.raises(GovernanceUnavailable, match="Redis unavailable"):
            await gov.tenant_panics()
    finally:
        await gov.aclose()
