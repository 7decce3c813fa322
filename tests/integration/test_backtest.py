"""Backtest on a small hand-built log: the anomalies gained, lost and changed, per account and severity, and the
proof that nothing in the database changes.

The log (default policy: cold start needs 5 priced events; bands start at $1/h; novelty alone is `info` while an
account is learning):
  A = 111122223333: alice launches one m5.large ($0.096/h) at 09:00, 10:00, 11:00
  C = 777788889999: carol launches one t3.micro ($0.0104/h) at 09:30
Live policy: only the first launch in each account is flagged - `info`, "first ec2_instance ever seen".
Candidate: band_low_hourly = 0.05 and record_floor = "low":
  A: all three m5.large are >= $0.05/h, so `low` by band: 2 gained, and the 09:00 one changes info -> low;
  C: $0.0104/h is under every band, its novelty-only `info` is below the new floor: lost.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from projections.db import connect
from streams.log.postgres import append
from streams.replay.backtest import Cell, backtest
from streams.score.policy import load_policy, policy_to_mapping
from tests.integration import ctgen
from tests.integration.test_replay import drain, prices

pytestmark = pytest.mark.integration

A, C = "111122223333", "777788889999"
T = datetime(2024, 5, 1, 9, tzinfo=UTC)
LOG = [
    ctgen.run_instances(1, at=T, account=A, user="alice"),
    ctgen.run_instances(2, at=T + timedelta(minutes=30), account=C, user="carol", instance_type="t3.micro"),
    ctgen.run_instances(3, at=T + timedelta(hours=1), account=A, user="alice"),
    ctgen.run_instances(4, at=T + timedelta(hours=2), account=A, user="alice"),
]
CANDIDATE = 'name = "cheap-bands"\nband_low_hourly = 0.05\nrecord_floor = "low"\n'
TABLES = ("log", "tenants", "checkpoints", "projection_generation", "cost_events", "baselines", "anomalies",
          "resources", "fold_metrics", "dead_letters")


async def fingerprints(conn: object) -> dict[str, str]:
    """md5 of every row's text, per table: any change at all (a timestamp, a counter) shows."""
    return {t: await conn.fetchval(  # type: ignore[attr-defined]
        f"SELECT md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM {t} x") for t in TABLES}


def candidate_file(tmp_path: Path) -> Path:
    path = tmp_path / "cheap-bands.toml"
    path.write_text(CANDIDATE, encoding="utf-8")
    return path


async def test_gained_lost_and_changed_per_account_and_severity(database_url: str, tmp_path: Path) -> None:
    conn = await connect(database_url)
    try:
        await append(conn, ctgen.entries(LOG), keep_read_only=False)
        await drain(database_url)  # live projections exist, and must not move
        assert await conn.fetchval("SELECT count(*) FROM anomalies WHERE severity = 'info'") == 2
        before = await fingerprints(conn)

        candidate = policy_to_mapping(load_policy(candidate_file(tmp_path)))
        report = await backtest(database_url, prices(), candidate, policy_tenant="default")

        assert await fingerprints(conn) == before  # nothing live changed, byte for byte
        assert (report.entries, report.position, report.candidate_policy) == (4, 4, "cheap-bands")
        assert report.policy_changes == {"band_low_hourly": (1.0, 0.05), "record_floor": ("info", "low")}
        assert report.cells == {
            ("default", A, "info"): Cell(live=1, candidate=0, gained=0, lost=1),
            ("default", A, "low"): Cell(live=0, candidate=3, gained=3, lost=0),
            ("default", C, "info"): Cell(live=1, candidate=0, gained=0, lost=1),
        }
        assert report.totals == {"live": 2, "candidate": 3, "gained": 2, "lost": 1, "changed": 1}
        assert [(a.event_ids, a.severity.value, [r.signal for r in a.reasons]) for a in report.gained] == [
            ((ctgen.event_id(3),), "low", ["absolute_band"]),
            ((ctgen.event_id(4),), "low", ["absolute_band"]),
        ]
        [lost] = report.lost
        assert (lost.account_id, lost.hourly_cost, lost.severity.value) == (C, 0.0104, "info")
        assert [r.signal for r in lost.reasons] == ["first_resource_type"]
        [(old, new)] = report.changed
        assert (old.event_ids, old.severity.value, new.severity.value) == ((ctgen.event_id(1),), "info", "low")

        # --since narrows the comparison (by event time), not the fold: only the 11:00 launch is left
        late = await backtest(database_url, prices(), candidate, policy_tenant="default",
                              since=T + timedelta(hours=2))
        assert late.totals == {"live": 0, "candidate": 1, "gained": 1, "lost": 0, "changed": 0}
        assert late.gained[0].event_ids == (ctgen.event_id(4),)
    finally:
        await conn.close()


def test_the_cli_prints_the_same_figures(sync_database_url: str, tmp_path: Path) -> None:
    import asyncio

    async def setup() -> None:
        conn = await connect(sync_database_url)
        try:
            await append(conn, ctgen.entries(LOG), keep_read_only=False)
        finally:
            await conn.close()

    asyncio.run(setup())
    env = os.environ | {"DATABASE_URL": sync_database_url}
    argv = [sys.executable, "-m", "ops", "backtest", "--policy", str(candidate_file(tmp_path))]
    out = subprocess.run([*argv, "--format", "json"], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    body = json.loads(out.stdout)
    assert body["totals"] == {"live": 2, "candidate": 3, "gained": 2, "lost": 1, "changed": 1}
    assert body["lost"][0]["reasons"][0]["signal"] == "first_resource_type"
    assert body["changed"][0]["live_severity"] == "info"

    table = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert "policy changes: band_low_hourly 1.0 -> 0.05, record_floor info -> low" in lines
    assert any(line.split() == [A, "low", "0", "3", "+3", "-0"] for line in lines)
    assert any(line.split() == ["total", "2", "3", "+3", "-2"] for line in lines)
    assert "gained (the candidate flags, live does not): 2" in lines
    assert "lost (live flags, the candidate does not): 1" in lines


async def test_the_backtest_predicts_what_a_replay_then_serves(database_url: str, tmp_path: Path) -> None:
    """Same folds: the candidate side of a backtest is exactly the anomalies table after `replay --policy`."""
    from streams.replay.replay import ReplayOptions, replay
    from tests.integration.test_replay import RECORDS, strict

    conn = await connect(database_url)
    try:
        await append(conn, ctgen.entries(RECORDS), keep_read_only=False)
        await drain(database_url)
        policy = strict(tmp_path)  # record_floor = "medium": 15 anomalies live, 6 kept (test_replay.py)
        report = await backtest(database_url, prices(), policy, policy_tenant="default")
        assert report.totals == {"live": 15, "candidate": 6, "gained": 0, "lost": 9, "changed": 0}
        assert sorted(a.severity.value for a in report.lost) == ["info"] * 7 + ["low"] * 2
        predicted = {a.id: a.severity.value for a in report.lost}
        live = {str(r["id"]): r["severity"] for r in await conn.fetch("SELECT id, severity FROM anomalies")}
        await replay(database_url, prices(), ReplayOptions(policy=policy))
        served = {str(r["id"]): r["severity"] for r in await conn.fetch("SELECT id, severity FROM anomalies")}
        assert served == {k: v for k, v in live.items() if k not in predicted}
    finally:
        await conn.close()
