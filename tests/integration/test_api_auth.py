"""Login, token checks and tenant isolation of the REST API (real Postgres, app over the ASGI transport)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from api.app import create_app
from api.auth import LocalAuthProvider, Principal, create_user, hash_password, verify_password
from ops.settings import DEFAULT_SECRET, Settings
from schemas.events import Dd0cError
from tests.integration.test_api_rows import (
    SECRET,
    anomaly,
    asgi_client,
    bearer,
    cost_event,
    db,
    insert_anomalies,
    insert_cost_events,
    insert_resources,
    login,
    resource,
    settings_for,
)


def test_default_secret_is_refused_outside_demo_mode() -> None:
    with pytest.raises(Dd0cError, match="DD0C_JWT_SECRET"):
        create_app(Settings(database_url="postgresql://unused/x", mode="production", jwt_secret=DEFAULT_SECRET))
    # demo mode may use it; a real secret works in production
    assert create_app(Settings(database_url="postgresql://unused/x", mode="demo", jwt_secret=DEFAULT_SECRET))
    assert create_app(settings_for("postgresql://unused/x"))


def test_password_hashes_are_salted_scrypt() -> None:
    first, second = hash_password("hunter2"), hash_password("hunter2")
    assert first.startswith("scrypt$16384$8$1$") and second.startswith("scrypt$16384$8$1$")
    assert first != second  # a fresh salt per user
    assert verify_password("hunter2", first) and verify_password("hunter2", second)
    assert not verify_password("hunter3", first)
    assert not verify_password("hunter2", "not-a-hash")


async def test_login_issues_a_token_with_sub_tenant_iat_exp(database_url: str) -> None:
    async with db(database_url) as conn:
        await create_user(conn, "acme", "alice", "correct horse")
    async with asgi_client(database_url, jwt_ttl_seconds=900) as (client, _app):
        response = await client.post("/v1/auth/login", json={"username": "alice", "password": "correct horse"})
        assert response.status_code == 200
        body = response.json()
        assert body["token_type"] == "bearer"
        assert body["expires_in"] == 900
        claims = jwt.decode(body["access_token"], SECRET, algorithms=["HS256"])
        assert claims["sub"] == "alice"
        assert claims["tenant"] == "acme"
        assert claims["exp"] - claims["iat"] == 900

        # naming the tenant works too; a wrong tenant is just bad credentials
        assert (await client.post("/v1/auth/login", json={"username": "alice", "password": "correct horse",
                                                          "tenant": "acme"})).status_code == 200
        wrong_tenant = await client.post(
            "/v1/auth/login", json={"username": "alice", "password": "correct horse", "tenant": "globex"}
        )
        assert wrong_tenant.status_code == 401


async def test_bad_password_unknown_user_and_bad_tokens_get_401(database_url: str) -> None:
    async with db(database_url) as conn:
        await create_user(conn, "acme", "alice", "correct horse")
    async with asgi_client(database_url) as (client, app):
        bad = await client.post("/v1/auth/login", json={"username": "alice", "password": "wrong"})
        assert bad.status_code == 401
        assert bad.json() == {"detail": "invalid credentials"}
        assert (await client.post("/v1/auth/login", json={"username": "bob", "password": "x"})).status_code == 401

        assert (await client.get("/v1/anomalies")).status_code == 401  # no token at all
        assert (await client.get("/v1/anomalies", headers=bearer("not.a.jwt"))).status_code == 401

        provider = LocalAuthProvider(app.state.pool, SECRET, 3600)
        expired = provider.issue(Principal("acme", "alice"), now=datetime.now(UTC) - timedelta(hours=2))
        response = await client.get("/v1/anomalies", headers=bearer(expired.access_token))
        assert response.status_code == 401
        assert response.json() == {"detail": "token expired"}

        forged = LocalAuthProvider(app.state.pool, "another-secret-another-secret-0123", 3600).issue(
            Principal("acme", "alice")
        )
        assert (await client.get("/v1/anomalies", headers=bearer(forged.access_token))).status_code == 401

        fresh = provider.issue(Principal("acme", "alice"))
        assert (await client.get("/v1/anomalies", headers=bearer(fresh.access_token))).status_code == 200


async def test_same_username_in_two_tenants_needs_the_tenant(database_url: str) -> None:
    async with db(database_url) as conn:
        await create_user(conn, "acme", "ops", "pw-acme")
        await create_user(conn, "globex", "ops", "pw-globex")
    async with asgi_client(database_url) as (client, _app):
        ambiguous = await client.post("/v1/auth/login", json={"username": "ops", "password": "pw-acme"})
        assert ambiguous.status_code == 401
        token = await login(client, "ops", "pw-globex", tenant="globex")
        assert jwt.decode(token, SECRET, algorithms=["HS256"])["tenant"] == "globex"


async def test_a_token_of_tenant_b_never_reads_tenant_a(database_url: str) -> None:
    async with db(database_url) as conn:
        await create_user(conn, "acme", "alice", "pw-a")
        await create_user(conn, "globex", "bob", "pw-b")
        a_id = anomaly("acme", 1).id
        await insert_anomalies(conn, [anomaly("acme", 1)])
        await insert_cost_events(conn, [cost_event("acme", 1), cost_event("acme", 2)])
        await insert_resources(conn, [resource("acme", "i-0aaa")])
    async with asgi_client(database_url) as (client, _app):
        a = bearer(await login(client, "alice", "pw-a"))
        b = bearer(await login(client, "bob", "pw-b"))

        assert [i["id"] for i in (await client.get("/v1/anomalies", headers=a)).json()["items"]] == [a_id]
        assert (await client.get(f"/v1/anomalies/{a_id}", headers=a)).status_code == 200

        assert (await client.get("/v1/anomalies", headers=b)).json() == {"items": [], "next_cursor": None}
        assert (await client.get(f"/v1/anomalies/{a_id}", headers=b)).status_code == 404
        assert (await client.get("/v1/cost-events", headers=b)).json()["items"] == []
        resources = (await client.get("/v1/resources", headers=b)).json()
        assert resources["items"] == [] and resources["total_hourly_cost"] == 0.0
        assert (await client.get("/v1/summary", headers=b)).json()["accounts"] == []
        assert (await client.get("/v1/accounts", headers=b)).json() == {"items": []}
        assert (await client.get("/v1/baselines", headers=b)).json()["items"] == []
        # a cursor carries no tenant: B paging with a cursor made from A's rows still sees nothing of A
        a_page = (await client.get("/v1/cost-events?limit=1", headers=a)).json()
        assert len(a_page["items"]) == 1 and a_page["next_cursor"] is not None
        b_page = await client.get("/v1/cost-events", params={"cursor": a_page["next_cursor"]}, headers=b)
        assert b_page.json() == {"items": [], "next_cursor": None}


def test_api_command_refuses_the_default_secret_outside_demo_mode() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DD0C_")}
    env["DATABASE_URL"] = "postgresql://postgres@127.0.0.1:5432/unused"
    done = subprocess.run(
        [sys.executable, "-m", "ops", "api", "--port", "0"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert done.stderr.startswith("dd0c-cost: DD0C_JWT_SECRET is the built-in default")


async def test_a_malformed_login_never_echoes_the_password(database_url: str) -> None:
    """A form-encoded body is a 422, and the error names what is wrong without repeating what was sent."""
    async with asgi_client(database_url) as (client, _app):
        response = await client.post(
            "/v1/auth/login", content="username=demo&password=hunter2-secret", headers={"content-type": "text/plain"}
        )
    assert response.status_code == 422
    assert "hunter2-secret" not in response.text
    assert response.json()["detail"][0]["loc"] == ["body"]
