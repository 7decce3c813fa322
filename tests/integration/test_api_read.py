"""Every read endpoint against rows shaped as the worker writes them, with the exact figures expected."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
from fastapi import FastAPI

from api.models import AnomalyOut, CostEventOut
from api.pagination import Page
from schemas.events import Severity
from tests.integration.test_api_rows import (
    ACCOUNT_A,
    ACCOUNT_B,
    ALICE,
    T0,
    add_user,
    anomaly,
    asgi_client,
    baseline,
    bearer,
    cost_event,
    db,
    event_id,
    ids,
    insert_anomalies,
    insert_baselines,
    insert_cost_events,
    insert_resources,
    login,
    resource,
    wait_until,
)

H = timedelta(hours=1)

A1 = anomaly("acme", 1, severity=Severity.HIGH, at=T0, hourly=0.192, expected=0.096)
A2 = anomaly("acme", 2, severity=Severity.CRITICAL, at=T0 + H, hourly=3.06, expected=0.096)
A3 = anomaly(
    "acme", 3, account=ACCOUNT_B, severity=Severity.LOW, at=T0 + 2 * H, hourly=0.045, expected=None,
    resource_type="nat_gateway", backfill=True,
)
A4 = anomaly("acme", 4, account=ACCOUNT_B, severity=Severity.MEDIUM, at=T0 - H, hourly=None, expected=None)


@asynccontextmanager
async def acme(database_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str], FastAPI]]:
    """Tenant acme with two accounts' worth of rows (and a little of tenant globex, which must never show)."""
    await add_user(database_url, "acme", "alice", "pw")
    async with db(database_url) as conn:
        await insert_anomalies(conn, [A1, A2, A3, A4, anomaly("globex", 9, severity=Severity.CRITICAL)])
        await insert_cost_events(
            conn,
            [
                cost_event("acme", 1, at=T0, hourly=0.192),
                cost_event("acme", 2, at=T0 + H, hourly=3.06),
                cost_event("acme", 3, at=T0 + 1.5 * H, hourly=None),
                cost_event("acme", 4, account=ACCOUNT_B, at=T0 + 2 * H, hourly=0.045, resource_type="nat_gateway",
                           region="eu-west-1"),
                cost_event("globex", 5, hourly=99.0),
            ],
        )
        await insert_resources(
            conn,
            [
                resource("acme", "i-0aaa", hourly=0.192),
                resource("acme", "i-0bbb", hourly=3.06),
                resource("acme", "i-0ccc", state="stopped", hourly=0.192),
                resource("acme", "nat-0ddd", account=ACCOUNT_B, hourly=0.045, resource_type="nat_gateway"),
                resource("acme", "i-0eee", account=ACCOUNT_B, state="closed", hourly=0.5),
                resource("acme", "i-0fff", account=ACCOUNT_B, hourly=None),
                resource("globex", "i-0999", hourly=99.0),
            ],
        )
        await insert_baselines(
            conn,
            [
                (baseline("acme", ACCOUNT_A, "ec2_instance", n=30, mean=0.096, m2=0.0152), 0.096, 0.0229),
                (baseline("acme", ACCOUNT_B, "nat_gateway", n=1, mean=0.045, m2=0.0), 0.045, None),
                (baseline("globex", ACCOUNT_A, "ec2_instance", n=5, mean=1.0, m2=0.0), 1.0, 0.0),
            ],
        )
    async with asgi_client(database_url) as (client, app):
        yield client, bearer(await login(client, "alice", "pw")), app


async def get(client: httpx.AsyncClient, auth: dict[str, str], path: str, **params: Any) -> Any:
    response = await client.get(path, params=params, headers=auth)
    assert response.status_code == 200, response.text
    return response.json()


async def test_anomaly_list_and_detail_carry_every_figure(database_url: str) -> None:
    async with acme(database_url) as (client, auth, _app):
        page = await get(client, auth, "/v1/anomalies")
        assert ids(page["items"]) == [A3.id, A2.id, A1.id, A4.id]  # newest event first; globex's never
        assert page["next_cursor"] is None
        detail = await get(client, auth, f"/v1/anomalies/{A2.id}")
        assert detail == page["items"][1]
        assert detail == {
            "id": A2.id,
            "feed_id": 2,
            "account_id": ACCOUNT_A,
            "resource_type": "ec2_instance",
            "region": "us-east-1",
            "severity": "critical",
            "event_time": "2024-03-01T13:00:00Z",
            "detected_at": "2024-03-01T13:00:02Z",
            "event_ids": [event_id(2)],
            "hourly_cost": 3.06,
            "expected_hourly_cost": 0.096,
            "z": 4.2,
            "baseline_stddev": 0.0229,
            "baseline_n": 30,
            "actor": ALICE,
            "instance_type": "m5.xlarge",
            "reasons": [
                {"signal": "zscore", "text": "$0.1920/h is 4.2 standard deviations above the usual $0.0960/h",
                 "data": {"z": 4.2}},
                {"signal": "new_actor", "text": "alice never created ec2_instance in this account before",
                 "data": {"actor": ALICE}},
            ],
            "backfill": False,
            "learning": False,
            "policy": "default",
        }
        # the list skips response validation on its hot path: its items must still be exactly the documented model
        assert set(page["items"][0]) == set(AnomalyOut.model_fields)
        assert Page[AnomalyOut].model_validate(page).model_dump(mode="json") == page
        unpriced = await get(client, auth, f"/v1/anomalies/{A4.id}")
        assert unpriced["hourly_cost"] is None and unpriced["expected_hourly_cost"] is None

        missing = await client.get("/v1/anomalies/00000000-0000-4000-8000-000000000000", headers=auth)
        assert missing.status_code == 404


FILTER_CASES: list[tuple[dict[str, str], list[Any]]] = [
    ({"severity": "high"}, [A2, A1]),  # a minimum: high and critical
    ({"severity": "medium"}, [A2, A1, A4]),
    ({"severity": "critical"}, [A2]),
    ({"severity": "info"}, [A3, A2, A1, A4]),
    ({"account": ACCOUNT_B}, [A3, A4]),
    ({"account": ACCOUNT_B, "severity": "medium"}, [A4]),
    ({"resource_type": "nat_gateway"}, [A3]),
    ({"backfill": "true"}, [A3]),
    ({"backfill": "false"}, [A2, A1, A4]),
    ({"since": "2024-03-01T12:00:00Z"}, [A3, A2, A1]),  # since is inclusive
    ({"until": "2024-03-01T13:00:00Z"}, [A1, A4]),  # until is exclusive
    ({"since": "2024-03-01T12:00:00", "until": "2024-03-01T14:00:00"}, [A2, A1]),  # naive = UTC
]


async def test_anomaly_filters(database_url: str) -> None:
    async with acme(database_url) as (client, auth, _app):
        for params, expected in FILTER_CASES:
            got = ids((await get(client, auth, "/v1/anomalies", **params))["items"])
            assert got == [a.id for a in expected], params
        assert (await client.get("/v1/anomalies?severity=urgent", headers=auth)).status_code == 422


async def test_cost_events(database_url: str) -> None:
    async with acme(database_url) as (client, auth, _app):
        page = await get(client, auth, "/v1/cost-events")
        assert [i["event_id"] for i in page["items"]] == [event_id(4), event_id(3), event_id(2), event_id(1)]
        newest = page["items"][0]
        assert newest["account_id"] == ACCOUNT_B
        assert newest["hourly_cost"] == 0.045 and newest["priced"] is True
        assert newest["region"] == "eu-west-1" and newest["resource_type"] == "nat_gateway"
        assert newest["event_time"] == "2024-03-01T14:00:00Z"
        assert newest["actor"] == {"key": ALICE, "kind": "user", "detail": "", "automation": False}
        assert newest["event_name"] == "RunInstances" and newest["resource_ids"] == ["i-00000000000000004"]
        assert set(newest) == set(CostEventOut.model_fields)
        assert Page[CostEventOut].model_validate(page).model_dump(mode="json") == page
        unpriced = page["items"][1]
        assert unpriced["hourly_cost"] is None and unpriced["priced"] is False
        assert unpriced["cost_status"] == "unpriced" and unpriced["unpriced_reason"] == "unknown_instance_type"

        def events(p: dict[str, Any]) -> list[str]:
            return [i["event_id"] for i in p["items"]]

        assert events(await get(client, auth, "/v1/cost-events", priced="false")) == [event_id(3)]
        assert events(await get(client, auth, "/v1/cost-events", region="eu-west-1")) == [event_id(4)]
        assert events(await get(client, auth, "/v1/cost-events", account=ACCOUNT_A)) == [
            event_id(3), event_id(2), event_id(1)
        ]
        assert events(await get(client, auth, "/v1/cost-events", resource_type="nat_gateway")) == [event_id(4)]
        assert events(
            await get(client, auth, "/v1/cost-events", since="2024-03-01T13:00:00Z", until="2024-03-01T14:00:00Z")
        ) == [event_id(3), event_id(2)]
        # an age, as the CLI takes it: the fixture's events are from March 2024
        assert events(await get(client, auth, "/v1/cost-events", since="1h")) == []
        assert len(events(await get(client, auth, "/v1/cost-events", since="1000w"))) == 4
        bad = await client.get("/v1/cost-events", headers=auth, params={"since": "3x"})
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "since"]


async def test_resources_running_now_with_dollars_per_hour(database_url: str) -> None:
    async with acme(database_url) as (client, auth, _app):
        running = await get(client, auth, "/v1/resources")
        assert [(r["account_id"], r["resource_id"]) for r in running["items"]] == [
            (ACCOUNT_A, "i-0aaa"), (ACCOUNT_A, "i-0bbb"), (ACCOUNT_B, "i-0fff"), (ACCOUNT_B, "nat-0ddd")
        ]
        assert [r["hourly_cost"] for r in running["items"]] == [0.192, 3.06, None, 0.045]
        assert running["total_hourly_cost"] == 3.297  # 0.192 + 3.06 + 0.045; the unpriced one is not 0, not in it
        assert running["resource_count"] == 4 and running["unpriced_running"] == 1
        assert running["next_cursor"] is None

        everything = await get(client, auth, "/v1/resources", state="all")
        assert len(everything["items"]) == 6 and everything["total_hourly_cost"] == 3.297
        stopped = await get(client, auth, "/v1/resources", state="stopped")
        assert [(r["resource_id"], r["hourly_cost"], r["burning_per_hour"]) for r in stopped["items"]] == [
            ("i-0ccc", 0.192, 0.0)
        ]
        assert stopped["total_hourly_cost"] == 0.0
        only_a = await get(client, auth, "/v1/resources", account=ACCOUNT_A)
        assert only_a["total_hourly_cost"] == 3.252 and only_a["resource_count"] == 2
        item = only_a["items"][0]
        assert item["opened_at"] == "2024-03-01T12:00:00Z" and item["changed_at"] == "2024-03-01T13:00:00Z"
        assert item["instance_type"] == "m5.xlarge" and item["opened_by_event"] == event_id(1)
        assert (await client.get("/v1/resources?state=zombie", headers=auth)).status_code == 422


async def test_baselines(database_url: str) -> None:
    async with acme(database_url) as (client, auth, _app):
        page = await get(client, auth, "/v1/baselines")
        assert page["next_cursor"] is None
        assert page["items"][0] == {
            "account_id": ACCOUNT_A,
            "resource_type": "ec2_instance",
            "mean_hourly_cost": 0.096,
            "stddev_hourly_cost": 0.0229,
            "event_count": 30,
            "events_seen": 31,
            "observed_actors": [ALICE, "service:autoscaling.amazonaws.com"],
            "regions": ["us-east-1"],
            "families": ["m5"],
            "first_event_time": "2024-02-20T12:00:00Z",
            "last_event_time": "2024-03-01T12:00:00Z",
            "updated_at": page["items"][0]["updated_at"],
        }
        assert [(b["account_id"], b["stddev_hourly_cost"]) for b in page["items"]] == [
            (ACCOUNT_A, 0.0229), (ACCOUNT_B, None)
        ]
        only_b = await get(client, auth, "/v1/baselines", account=ACCOUNT_B, resource_type="nat_gateway")
        assert [(b["account_id"], b["mean_hourly_cost"]) for b in only_b["items"]] == [(ACCOUNT_B, 0.045)]


async def test_summary_and_accounts(database_url: str) -> None:
    zero = {s.value: 0 for s in Severity}
    async with acme(database_url) as (client, auth, _app):
        summary = await get(client, auth, "/v1/summary")
        assert summary["accounts"] == [
            {
                "account_id": ACCOUNT_A,
                "cost_events": 3,
                "priced_cost_events": 2,
                "unpriced_cost_events": 1,
                "created_hourly_cost": 3.252,
                "anomalies": zero | {"high": 1, "critical": 1},
                "anomalies_total": 2,
                "running_resources": 2,
                "unpriced_running_resources": 0,
                "running_hourly_cost": 3.252,
            },
            {
                "account_id": ACCOUNT_B,
                "cost_events": 1,
                "priced_cost_events": 1,
                "unpriced_cost_events": 0,
                "created_hourly_cost": 0.045,
                "anomalies": zero | {"low": 1, "medium": 1},
                "anomalies_total": 2,
                "running_resources": 2,
                "unpriced_running_resources": 1,
                "running_hourly_cost": 0.045,
            },
        ]
        assert summary["totals"] == {
            "cost_events": 4,
            "priced_cost_events": 3,
            "unpriced_cost_events": 1,
            "created_hourly_cost": 3.297,
            "anomalies": zero | {"low": 1, "medium": 1, "high": 1, "critical": 1},
            "anomalies_total": 4,
            "running_resources": 4,
            "unpriced_running_resources": 1,
            "running_hourly_cost": 3.297,
        }
        # a window on event time: only A1 / A2 and the cost events at 12:00 and 13:00
        windowed = await get(client, auth, "/v1/summary", since="2024-03-01T12:00:00Z", until="2024-03-01T13:30:00Z")
        a = windowed["accounts"][0]
        assert (a["cost_events"], a["created_hourly_cost"], a["anomalies_total"]) == (2, 3.252, 2)

        accounts = await get(client, auth, "/v1/accounts")
        assert accounts == {
            "items": [
                {"account_id": ACCOUNT_A, "resource_types": ["ec2_instance"],
                 "last_event_time": "2024-03-01T13:30:00Z"},
                {"account_id": ACCOUNT_B, "resource_types": ["nat_gateway"],
                 "last_event_time": "2024-03-01T14:00:00Z"},
            ]
        }


async def test_non_finite_dollars_are_reported_as_unknown(database_url: str) -> None:
    """A NaN that slipped into a float column is never sent as NaN, and does not poison the totals."""
    async with acme(database_url) as (client, auth, _app):
        async with db(database_url) as conn:
            await conn.execute("UPDATE anomalies SET hourly_cost = 'NaN' WHERE id = $1::uuid", A1.id)
            await conn.execute("UPDATE resources SET hourly_cost = 'Infinity' WHERE resource_id = 'i-0bbb'")
        assert (await get(client, auth, f"/v1/anomalies/{A1.id}"))["hourly_cost"] is None
        running = await get(client, auth, "/v1/resources")
        assert [r["hourly_cost"] for r in running["items"]] == [0.192, None, None, 0.045]
        assert running["total_hourly_cost"] == 0.237 and running["unpriced_running"] == 2


async def test_health_metrics_and_openapi(database_url: str) -> None:
    async with acme(database_url) as (client, _auth, app):
        await wait_until(lambda: app.state.hub.listening, 10, "the feed listener")
        health = await client.get("/v1/health")
        assert health.status_code == 200
        assert health.json() == {"status": "ok", "database": "ok", "feed_listening": True}
        metrics = await client.get("/v1/metrics")
        assert metrics.headers["content-type"].startswith("text/plain")
        assert "dd0c_feed_subscribers 0\n" in metrics.text
        assert "# TYPE dd0c_ws_slow_client_disconnects_total counter\n" in metrics.text
        assert "dd0c_ws_slow_client_disconnects_total 0\n" in metrics.text
        assert "dd0c_ws_messages_sent_total 0\n" in metrics.text

        spec = (await client.get("/openapi.json")).json()
        assert {
            "/v1/auth/login", "/v1/health", "/v1/metrics", "/v1/anomalies", "/v1/anomalies/{anomaly_id}",
            "/v1/cost-events", "/v1/baselines", "/v1/resources", "/v1/summary", "/v1/accounts",
        } <= set(spec["paths"])
        listed = spec["paths"]["/v1/anomalies"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        assert listed == {"$ref": "#/components/schemas/Page_AnomalyOut_"}
        assert "/v1/feed" in spec["info"]["description"]
        assert (await client.get("/docs")).status_code == 200
