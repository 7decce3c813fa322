"""`dd0c-cost demo --no-api` against a real (test) database: corpus + a tiny generated history, folded."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ops.demo.generate import read_manifest
from projections.db import connect

pytestmark = pytest.mark.integration


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

    # a second run reuses the history and the ingested files: nothing new is logged
    again = _demo(sync_database_url, tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "history: reusing" in again.stdout
    assert "(0 new)" in again.stdout
