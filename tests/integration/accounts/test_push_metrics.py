"""The push endpoint's counters on GET /v1/metrics: requests by outcome, and intake under the same family names as
the ingestion service's pollers and gRPC server, with source="push"."""

from __future__ import annotations

import json
from pathlib import Path

from tests.integration.accounts.test_push import PUSH, T0, new_key, records_file
from tests.integration.ctgen import describe_instances, run_instances
from tests.integration.test_api_rows import asgi_client


async def test_metrics_count_each_push_outcome_and_what_reached_the_log(database_url: str, tmp_path: Path) -> None:
    key = await new_key(database_url)
    launches = [run_instances(n, at=T0.replace(minute=n)) for n in range(1, 4)]
    first = records_file([*launches, describe_instances(10, at=T0)], gz=True)  # 3 logged, 1 read-only counted
    again = records_file(launches, gz=True)  # 3 duplicates
    not_cloudtrail = json.dumps({"hello": "world"}).encode()  # 422, one record rejected
    too_big = records_file([run_instances(n, at=T0) for n in range(10, 60)], gz=False)
    assert len(too_big) > 4096
    async with asgi_client(database_url, archive_url=str(tmp_path), push_max_bytes=4096) as (client, _app):
        answers = [
            await client.post(PUSH, headers={"X-Api-Key": key}, content=first),
            await client.post(PUSH, headers={"X-Api-Key": key}, content=again),
            await client.post(PUSH, headers={"X-Api-Key": key}, content=not_cloudtrail),
            await client.post(PUSH, headers={"X-Api-Key": key[:-4] + "AAAA"}, content=first),
            await client.post(PUSH, headers={"X-Api-Key": key}, content=too_big),
        ]
        metrics = await client.get("/v1/metrics")
    assert [a.status_code for a in answers] == [200, 200, 422, 401, 413]
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
    lines = set(metrics.text.splitlines())
    assert {
        'dd0c_push_requests_total{outcome="ok"} 2',
        'dd0c_push_requests_total{outcome="not_cloudtrail"} 1',
        'dd0c_push_requests_total{outcome="unauthorized"} 1',
        'dd0c_push_requests_total{outcome="too_large"} 1',
        'dd0c_push_requests_total{outcome="archive_unavailable"} 0',
        f"dd0c_push_body_bytes_total {len(first) + len(again) + len(not_cloudtrail)}",
        'dd0c_ingest_events_total{source="push"} 3',
        'dd0c_ingest_duplicates_total{source="push"} 3',
        'dd0c_ingest_rejects_total{source="push"} 1',
        'dd0c_ingest_read_only_total{source="push"} 1',
        'dd0c_ingest_skipped_total{source="push"} 0',
        "# TYPE dd0c_ingest_events_total counter",
        "dd0c_feed_subscribers 0",  # the feed's figures are still there
    } <= lines, metrics.text
