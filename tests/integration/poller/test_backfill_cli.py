"""`dd0c-cost backfill` over registered accounts: the report it prints, its exit status, and its refusals."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from projections.db import connect
from streams.accounts.model import TrailLocation
from streams.accounts.registry import add_account
from tests.conftest import ROOT
from tests.integration.poller.conftest import A1, A2, delivery, key, put, records, truncated

pytestmark = pytest.mark.integration

DD0C_COST = str(Path(sys.executable).with_name("dd0c-cost"))


def backfill(url: str, moto_url: str, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": url, "DD0C_AWS_ENDPOINT_URL": moto_url, "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "DD0C_ARCHIVE_URL": str(tmp / "archive")}
    return subprocess.run([DD0C_COST, "backfill", "--tenant", "t-cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=False)


async def _register(url: str, bucket: str) -> None:
    conn = await connect(url)
    try:
        await add_account(conn, None, "t-cli", A1, trail=TrailLocation(bucket=bucket, regions=("us-east-1",)))
    finally:
        await conn.close()


def test_backfill_of_registered_accounts(sync_database_url: str, moto_url: str, bucket: str, tmp_path: Path) -> None:
    asyncio.run(_register(sync_database_url, bucket))
    day = date(2024, 5, 1)
    put(moto_url, bucket, key(A1, day, 1), delivery(records(10, A1, day)))
    cut = records(20, A1, day, writes=3, reads=0)
    put(moto_url, bucket, key(A1, day, 2), truncated(cut, cut[2]["eventID"]))

    done = backfill(sync_database_url, moto_url, tmp_path, "--since", "2024-05-01", "--until", "2024-05-01")
    assert done.returncode == 1, done.stderr  # a record was rejected
    lines = done.stdout.splitlines()
    total = next(line for line in lines if line.startswith("total"))
    # read 3 + 2 records (the cut-off third is no record: the truncation is the rejection), logged 2 + 2,
    # duplicate 0, read-only 1, skipped 0, rejected 1
    assert total.split() == ["total", "5", "4", "0", "1", "0", "1"]
    assert "1 day(s) from 2024-05-01 to 2024-05-01, 1 account(s), 1 folder(s) listed, 2 object(s) read" in lines

    again = backfill(sync_database_url, moto_url, tmp_path, "--since", "2024-05-01", "--until", "2024-05-01")
    assert again.returncode == 0, again.stderr
    assert "1 folder(s) listed, 0 object(s) read" in again.stdout

    unknown = backfill(sync_database_url, moto_url, tmp_path, "--since", "2024-05-01", "--account", A2)
    assert unknown.returncode == 1
    assert f"not registered with a trail bucket for tenant t-cli: {A2}" in unknown.stderr

    reversed_range = backfill(sync_database_url, moto_url, tmp_path, "--since", "2024-05-02", "--until", "2024-05-01")
    assert reversed_range.returncode == 1 and "--until 2024-05-01 is before --since 2024-05-02" in reversed_range.stderr
