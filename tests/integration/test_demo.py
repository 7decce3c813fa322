"""`dd0c-cost demo --no-api` against a real (test) database: corpus + a tiny generated history, folded."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ops.demo.generate import read_manifest
from projections.db import connect
from tests.integration.test_api_rows import asgi_client, bearer, login

pytestmark = pytest.mark.integration

# The demo's zombies (ops/demo/zombies.py), priced by hand from the shipped price table (730 h/month):
DEMO_ZOMBIE_WASTE = {
    "unattached_ebs_volume": 500 * 0.08,  # 500 GiB gp3 at $0.08/GB-month, baseline IOPS/throughput = $40.00
    "orphaned_ebs_snapshot": 200 * 0.05,  # 200 GiB standard snapshot at $0.05/GB-month = $10.00
    "idle_nat_gateway": 0.045 * 730,  # us-west-2 NAT gateway-hour = $32.85
    "idle_load_balancer": 0.0225 * 730,  # ALB-hour = $16.425
    "unassociated_eip": 0.005 * 730,  # idle public IPv4 address-hour = $3.65
}
DEMO_ZOMBIE_TOTAL = 102.925  # 40 + 10 + 32.85 + 16.425 + 3.65


async def _zombies_api(url: str, password: str) -> tuple[dict, dict, list]:
    """GET /v1/zombies as the demo user, the NAT gateway's detail, and the scans."""
    async with asgi_client(url) as (client, _app):
        auth = bearer(await login(client, "demo", password))
        listed = (await client.get("/v1/zombies", headers=auth)).json()
        nat = next(i for i in listed["items"] if i["check"] == "idle_nat_gateway")
        detail = (await client.get(f"/v1/zombies/{nat['zombie_id']}", headers=auth)).json()
        scans = (await client.get("/v1/zombies/scans", headers=auth)).json()
        return listed, detail, scans


async def _anomalies(url: str) -> list[dict]:
    conn = await connect(url)
    try:
        rows = await conn.fetch("SELECT severity, data FROM anomalies WHERE tenant_id = 'default'")
        return [dict(r["data"], severity=r["severity"]) for r in rows]
    finally:
        await conn.close()


def _demo(url: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DD0C_")}
    env.update(DATABASE_URL=url, DD0C_DATA_DIR=str(data_dir))
    return subprocess.run(
        [sys.executable, "-m", "ops", "demo", "--no-api", "--records", "6000", "--days", "8", "--accounts", "4"],
        env=env, capture_output=True, text=True, timeout=600,
    )


def test_demo_flags_the_p4d_burst(sync_database_url: str, tmp_path: Path) -> None:
    done = _demo(sync_database_url, tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout

    manifest = read_manifest(tmp_path / "history")
    assert manifest is not None and manifest["records"] == 6000
    burst = next(i for i in manifest["incidents"] if i["name"] == "gpu_burst")
    assert (burst["account_id"], burst["actor"], burst["run_instances"]) == ("640192837465", "carol", 4)

    # the shipped corpus has broken files on purpose: rejected, named, and the demo carried on
    corpus_line = next(ln for ln in out.splitlines() if ln.startswith("corpus: "))
    assert " 0 rejected" not in corpus_line and "SerializerTestFileBadJsonFormat.json: " in out
    # a file broken in several ways says so, not only its first reason
    panther = next(ln for ln in out.splitlines() if "panther_cloudtrail_rule_test_logs.json: " in ln)
    assert re.search(r": 31 rejected \(.+; and \d+ other reasons: `dead-letters` lists them\)$", panther), panther
    history_line = next(ln for ln in out.splitlines() if ln.startswith("history: ") and "records read" in ln)
    assert "6,000 records read, 600 logged, 5,400 read-only counted, 0 rejected" in history_line

    stored = asyncio.run(_anomalies(sync_database_url))
    ids = set(burst["event_ids"])
    flagged = [a for a in stored if ids & set(a["event_ids"])]
    assert flagged, f"no anomaly for the p4d burst among {len(stored)} anomalies"
    assert {a["account_id"] for a in flagged} == {"640192837465"}
    assert any(a["instance_type"] == "p4d.24xlarge" and a["severity"] in ("high", "critical") for a in flagged)
    first = min(flagged, key=lambda a: a["event_time"])
    assert first["severity"] in ("high", "critical")
    assert first["hourly_cost"] == pytest.approx(2 * 21.957642, rel=0.01)  # two p4d.24xlarge, us-east-1

    # the printed table shows it, by account name
    table = out[out.index("Top anomalies:"):]
    assert "p4d.24xlarge" in table and "data" in table
    assert "Login:   demo / " in out

    # the demo's zombies: in the API with dollar figures and evidence, and one line next to the anomalies
    zombie_line = next(ln for ln in out.splitlines() if ln.startswith("Zombies: "))
    assert zombie_line == "Zombies: 5 open, wasting $102.93/month (GET /v1/zombies)"
    password = json.loads((tmp_path / "demo-login.json").read_text())["password"]
    listed, nat, scans = asyncio.run(_zombies_api(sync_database_url, password))
    assert (listed["count"], listed["unpriced"]) == (5, 0)
    assert listed["monthly_waste_usd"] == pytest.approx(DEMO_ZOMBIE_TOTAL)
    assert sum(DEMO_ZOMBIE_WASTE.values()) == pytest.approx(DEMO_ZOMBIE_TOTAL)
    assert {i["check"]: i["monthly_waste_usd"] for i in listed["items"]} == pytest.approx(DEMO_ZOMBIE_WASTE)
    assert {(i["check"], i["account_id"], i["region"]) for i in listed["items"]} == {
        ("unattached_ebs_volume", "318274650192", "us-east-1"), ("orphaned_ebs_snapshot", "318274650192", "us-east-1"),
        ("idle_nat_gateway", "527381946027", "us-west-2"), ("idle_load_balancer", "640192837465", "us-east-1"),
        ("unassociated_eip", "759302184756", "us-west-2")}
    assert [(a["account_id"], a["count"]) for a in listed["by_account"]] == [
        ("318274650192", 2), ("527381946027", 1), ("640192837465", 1), ("759302184756", 1)]  # $50, $32.85, ...
    metric = nat["evidence"]["metric"]
    assert (metric["name"], metric["period_seconds"], metric["values"], metric["total"]) == (
        "BytesOutToDestination", 86400, [0.0] * 14, 0.0)
    assert nat["evidence"]["price"]["unit_price_usd"] == 0.045
    assert nat["evidence"]["synthetic"].startswith("synthetic: made up by `dd0c-cost demo`")
    # one made-up scan per account says where they came from (`zombies scans`)
    items = scans["items"] if isinstance(scans, dict) else scans
    assert sorted((s["account_id"], s["status"], s["zombies_found"], s["calls_made"]) for s in items) == [
        ("318274650192", "ok", 2, 0), ("527381946027", "ok", 1, 0), ("640192837465", "ok", 1, 0),
        ("759302184756", "ok", 1, 0)]
    assert all(s["reason"].startswith("synthetic: made up by `dd0c-cost demo`") for s in items)

    # a second run reuses the history and the ingested files: nothing new is logged
    again = _demo(sync_database_url, tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "history: reusing" in again.stdout
    assert "(0 new)" in again.stdout
    assert "zombies: 5 synthetic zombies (0 new log entries) appended as ZombieDetected" in again.stdout
    assert "Zombies: 5 open, wasting $102.93/month" in again.stdout
