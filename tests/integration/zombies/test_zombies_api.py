"""/v1/zombies over the app: list with totals per account and check, detail, acknowledge / snooze / reopen as log
entries folded by the worker, kept by a replay, and never visible to another tenant."""

from __future__ import annotations

import pytest

from streams.runner.postgres import reset_projections
from tests.integration.test_api_rows import add_user, asgi_client, bearer, login
from tests.integration.test_dashboard import SCRIPT
from tests.integration.zombies.conftest import Aws
from tests.integration.zombies.seed import EXPECTED_WASTE, TOTAL_WASTE, seed
from tests.integration.zombies.test_hunt import TENANT, drain, hunt, pool_for


async def test_zombies_api_list_totals_detail_and_decisions(aws: Aws, database_url: str) -> None:
    seeded = seed(aws)
    async with pool_for(database_url) as pool:
        await hunt(pool, aws, seeded.hunt_now)
        await drain(database_url)
        await add_user(database_url, TENANT, "alice", "pw")
        await add_user(database_url, "globex", "gary", "pw")
        async with asgi_client(database_url) as (client, _app):
            auth = bearer(await login(client, "alice", "pw", TENANT))
            listed = (await client.get("/v1/zombies", headers=auth)).json()
            assert (listed["count"], listed["monthly_waste_usd"], listed["unpriced"]) == (9, TOTAL_WASTE, 0)
            assert listed["by_account"] == [
                {"account_id": aws.account_id, "count": 9, "monthly_waste_usd": TOTAL_WASTE, "unpriced": 0}]
            per_check = {c["check"]: (c["count"], c["monthly_waste_usd"]) for c in listed["by_check"]}
            assert per_check == {check: (1, pytest.approx(usd)) for check, usd in EXPECTED_WASTE.items()}
            assert listed["by_check"][0]["check"] == "idle_nat_gateway"  # largest waste first

            nat = (await client.get("/v1/zombies?check=idle_nat_gateway", headers=auth)).json()
            assert [(i["resource_id"], i["monthly_waste_usd"]) for i in nat["items"]] == [
                (seeded.zombies["idle_nat_gateway"], 32.85)]
            assert (nat["count"], nat["monthly_waste_usd"]) == (1, 32.85)
            zid = nat["items"][0]["zombie_id"]
            # what the dashboard's Zombies panel reads is there (api/dashboard/assets/app.js)
            for field in ("account_id", "check", "resource_id", "region", "monthly_waste_usd", "evidence",
                          "first_seen"):
                assert f"z.{field}" in SCRIPT and field in nat["items"][0], field
            for field in ("count", "monthly_waste_usd", "unpriced"):
                assert f"t.{field}" in SCRIPT and field in listed, field
            metric = nat["items"][0]["evidence"]["metric"]
            assert (metric["name"], metric["statistic"], metric["total"]) == ("BytesOutToDestination", "Sum", 0.0)
            assert {"window_start", "window_end"} <= set(metric)
            detail = (await client.get(f"/v1/zombies/{zid}", headers=auth)).json()
            assert (detail["status"], detail["detections"], detail["evidence"]["metric"]["absent_datapoints"]) == (
                "open", 1, 14)
            assert (await client.get("/v1/zombies?account=000000000000", headers=auth)).json()["count"] == 0

            # Another tenant sees none of it, not even by id.
            other = bearer(await login(client, "gary", "pw", "globex"))
            assert (await client.get("/v1/zombies", headers=other)).json()["count"] == 0
            assert (await client.get(f"/v1/zombies/{zid}", headers=other)).status_code == 404
            assert (await client.post(f"/v1/zombies/{zid}/acknowledge", json={"reason": "x"},
                                      headers=other)).status_code == 404

            ack = await client.post(f"/v1/zombies/{zid}/acknowledge", json={"reason": "DR standby, kept on purpose"},
                                    headers=auth)
            assert ack.status_code == 202 and ack.json()["action"] == "ZombieAcknowledged"
            await drain(database_url)
            assert (await client.get(f"/v1/zombies/{zid}", headers=auth)).json()["status"] == "acknowledged"
            listed = (await client.get("/v1/zombies", headers=auth)).json()
            assert (listed["count"], listed["monthly_waste_usd"]) == (8, pytest.approx(TOTAL_WASTE - 32.85))
            acked = (await client.get("/v1/zombies?status=acknowledged", headers=auth)).json()
            assert [i["zombie_id"] for i in acked["items"]] == [zid]
            assert acked["items"][0]["acknowledged"]["by"] == "alice"

            lb = (await client.get("/v1/zombies?check=idle_load_balancer", headers=auth)).json()["items"][0]
            snooze = await client.post(f"/v1/zombies/{lb['zombie_id']}/snooze",
                                       json={"reason": "migration next sprint", "days": 14}, headers=auth)
            assert snooze.status_code == 202
            bad = await client.post(f"/v1/zombies/{lb['zombie_id']}/snooze", json={"reason": "no end"}, headers=auth)
            assert bad.status_code == 422
            await drain(database_url)
            snoozed = (await client.get("/v1/zombies?status=snoozed", headers=auth)).json()
            assert [(i["zombie_id"], i["snoozed"]["reason"]) for i in snoozed["items"]] == [
                (lb["zombie_id"], "migration next sprint")]
            assert (await client.get("/v1/zombies", headers=auth)).json()["count"] == 7

            # A replay rebuilds the decisions with the zombies: they are log entries too.
            async with pool.acquire() as conn:
                await reset_projections(conn)
            await drain(database_url)
            assert (await client.get(f"/v1/zombies/{zid}", headers=auth)).json()["status"] == "acknowledged"
            assert (await client.get("/v1/zombies", headers=auth)).json()["count"] == 7

            await client.post(f"/v1/zombies/{zid}/reopen", json={"reason": "standby retired"}, headers=auth)
            await drain(database_url)
            detail = (await client.get(f"/v1/zombies/{zid}", headers=auth)).json()
            assert detail["status"] == "open"
            assert [h["action"] for h in detail["history"]] == ["ZombieAcknowledged", "ZombieReopened"]
            assert (await client.get("/v1/zombies/nope", headers=auth)).status_code == 404
            scans = (await client.get("/v1/zombies/scans", headers=auth)).json()["items"]
            assert [(s["status"], s["zombies_found"]) for s in scans] == [("ok", 9)]
