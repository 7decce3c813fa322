"""End to end: a CloudTrail delivery file in, a priced, explained anomaly out over the websocket.

Real parts all the way: the file goes through `ops.ingest` into the Postgres log, a live worker (following,
not draining) folds it, commits, NOTIFYs, and a real uvicorn server pushes the anomaly to a websockets client.
Case R25: a p4d.24xlarge in account A after five days of one m5.large a day; B's terminations do not hide it.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import orjson
from websockets.asyncio.client import connect

from api.auth import LocalAuthProvider, Principal
from ops.ingest import ingest
from schemas.codec import loads
from streams.prices.table import load_default_prices
from streams.runner.postgres import PostgresRunner
from tests.conftest import CASES
from tests.integration.test_api_rows import SECRET, db, live_server, settings_for

P4D_24XLARGE_US_EAST_1 = 21.957642  # $/h, ops/prices snapshot (AWS list price after the 2023 cut)
M5_LARGE_US_EAST_1 = 0.096


async def _receive_until(client: Any, wanted: str, within: float) -> list[dict[str, Any]]:
    """Collect feed messages until one is about `wanted` instance type (or time out)."""
    seen: list[dict[str, Any]] = []
    async with asyncio.timeout(within):
        while True:
            message = loads(await client.recv())
            seen.append(message)
            if message["anomaly"].get("instance_type") == wanted:
                return seen


async def test_r25_cloudtrail_file_in_anomaly_on_websocket_out(database_url: str, tmp_path: Path) -> None:
    """R25: the p4d spike in account A reaches a live websocket client, priced and explained."""
    delivery = tmp_path / "AWSLogs" / "111122223333" / "CloudTrail" / "us-east-1" / "2024" / "05" / "06"
    delivery.mkdir(parents=True)
    shutil.copy(CASES / "R25.json", delivery / "111122223333_CloudTrail_us-east-1_20240506T0910Z_r25.json")

    token = LocalAuthProvider(None, SECRET, 3600).issue(Principal("acme", "alice")).access_token  # type: ignore[arg-type]
    runner = PostgresRunner(database_url, load_default_prices(), poll_interval=0.5)
    worker = asyncio.create_task(runner.run())
    try:
        async with db(database_url) as conn, live_server(settings_for(database_url)) as (port, _app):
            client = await connect(f"ws://127.0.0.1:{port}/v1/feed", compression=None)
            await client.send(orjson.dumps({"type": "auth", "token": token, "after": 0}).decode())

            report = await ingest(conn, [tmp_path], tenant="acme")
            assert report.ok
            assert report.total().logged == 12  # 10 m5.large, the p4d, one TerminateInstances of 3; none read-only

            messages = await _receive_until(client, "p4d.24xlarge", within=30)
            await client.close()

        spike = messages[-1]["anomaly"]
        assert spike["tenant"] == "acme"
        assert spike["account_id"] == "111122223333"
        assert spike["region"] == "us-east-1"
        assert spike["actor"] == "arn:aws:iam::111122223333:user/alice"
        assert spike["severity"] == "critical"
        assert spike["hourly_cost"] == P4D_24XLARGE_US_EAST_1
        assert spike["expected_hourly_cost"] == M5_LARGE_US_EAST_1
        assert spike["baseline_n"] == 5
        assert {r["signal"] for r in spike["reasons"]} == {"zscore", "new_family"}
        assert spike["backfill"] is True  # a May 2024 record ingested today is history, not a live page
        # Everything before it was learning: each account's first m5.large ("first resource type") and nothing
        # from B's TerminateInstances, which creates nothing.
        earlier = [m["anomaly"] for m in messages[:-1]]
        assert all(a["severity"] == "info" and a["learning"] for a in earlier)
        assert {a["account_id"] for a in earlier} <= {"111122223333", "444455556666"}
        assert [m["feed_id"] for m in messages] == sorted(m["feed_id"] for m in messages)
    finally:
        runner.stop()
        await asyncio.wait_for(worker, 30)
