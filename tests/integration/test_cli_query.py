"""`dd0c-cost anomalies | resources | baselines | cost-events` and `dd0c-cost users`, run as subprocesses
against a real database given by DATABASE_URL."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from api.auth import verify_password
from schemas.events import Severity
from tests.integration.test_api_rows import (
    ACCOUNT_A,
    ACCOUNT_B,
    ALICE,
    T0,
    anomaly,
    baseline,
    cost_event,
    db,
    event_id,
    insert_anomalies,
    insert_baselines,
    insert_cost_events,
    insert_resources,
    resource,
)

H = timedelta(hours=1)


def cli(url: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DD0C_")}
    env["DATABASE_URL"] = url
    return subprocess.run(
        [sys.executable, "-m", "ops", *args], env=env, input=stdin, capture_output=True, text=True, timeout=60
    )


def ok(url: str, *args: str) -> str:
    done = cli(url, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def seed(url: str) -> None:
    async def rows() -> None:
        async with db(url) as conn:
            await insert_anomalies(
                conn,
                [
                    anomaly("default", 1, severity=Severity.HIGH, at=T0, hourly=0.192, expected=0.096),
                    anomaly("default", 2, severity=Severity.CRITICAL, at=T0 + H, hourly=3.06, expected=0.096),
                    anomaly("default", 3, account=ACCOUNT_B, severity=Severity.LOW, at=T0 - H, hourly=None,
                            expected=None),
                    anomaly("acme", 4, severity=Severity.CRITICAL, at=T0 + 2 * H),
                ],
            )
            await insert_cost_events(
                conn, [cost_event("default", 1, hourly=0.192), cost_event("default", 2, at=T0 + H, hourly=None)]
            )
            await insert_resources(
                conn,
                [
                    resource("default", "i-0aaa", hourly=0.192),
                    resource("default", "i-0bbb", hourly=3.06),
                    resource("default", "i-0ccc", state="closed", hourly=1.0),
                ],
            )
            await insert_baselines(
                conn, [(baseline("default", ACCOUNT_A, "ec2_instance", n=30, mean=0.096, m2=0.0152), 0.096, 0.0229)]
            )

    asyncio.run(rows())


def test_anomalies_json_for_the_default_tenant(sync_database_url: str) -> None:
    seed(sync_database_url)
    out: list[dict[str, Any]] = json.loads(ok(sync_database_url, "anomalies", "--format", "json"))
    assert [a["event_ids"] for a in out] == [[event_id(2)], [event_id(1)], [event_id(3)]]  # never acme's 4
    newest = out[0]
    assert newest["account_id"] == ACCOUNT_A
    assert newest["resource_type"] == "ec2_instance"
    assert newest["severity"] == "critical"
    assert newest["hourly_cost"] == 3.06 and newest["expected_hourly_cost"] == 0.096
    assert newest["event_time"] == "2024-03-01T13:00:00Z"
    assert newest["actor"] == ALICE
    assert [r["signal"] for r in newest["reasons"]] == ["zscore", "new_actor"]
    assert out[2]["hourly_cost"] is None

    high = json.loads(ok(sync_database_url, "anomalies", "--format", "json", "--severity", "HIGH"))
    assert [a["severity"] for a in high] == ["critical", "high"]
    assert json.loads(ok(sync_database_url, "anomalies", "--format", "json", "--account", ACCOUNT_B))[0][
        "event_ids"
    ] == [event_id(3)]
    window = ["--since", "2024-03-01T12:00:00Z", "--until", "2024-03-01T13:00:00"]
    assert [a["severity"] for a in json.loads(ok(sync_database_url, "anomalies", "--format", "json", *window))] == [
        "high"
    ]
    assert len(json.loads(ok(sync_database_url, "anomalies", "--format", "json", "--limit", "2"))) == 2
    acme = json.loads(ok(sync_database_url, "anomalies", "--format", "json", "--tenant", "acme"))
    assert [a["event_ids"] for a in acme] == [[event_id(4)]]


def test_anomalies_table_bad_arguments_and_empty_results(sync_database_url: str) -> None:
    seed(sync_database_url)
    lines = ok(sync_database_url, "anomalies").splitlines()
    assert re.split(r"\s{2,}", lines[0]) == [
        "TIME (UTC)", "ACCOUNT", "SEVERITY", "RESOURCE TYPE", "$/H", "EXPECTED $/H", "REASONS"
    ]
    assert re.split(r"\s{2,}", lines[1]) == [
        "2024-03-01 13:00:00", ACCOUNT_A, "critical", "ec2_instance", "3.0600", "0.0960",
        "$0.1920/h is 4.2 standard deviations above the usual $0.0960/h; alice never created ec2_instance ...",
    ]
    assert re.split(r"\s{2,}", lines[3])[:6] == [
        "2024-03-01 11:00:00", ACCOUNT_B, "low", "ec2_instance", "unpriced", "-"
    ]
    assert len(lines) == 4  # all 3 shown: no "first N shown" line
    cut = ok(sync_database_url, "anomalies", "--limit", "2").splitlines()
    assert len(cut) == 4 and cut[-1] == "first 2 shown; --limit N shows more"
    assert len(ok(sync_database_url, "anomalies", "--limit", "3").splitlines()) == 4  # exactly all: not cut
    # aligned: every row starts its account column where the header does
    column = lines[0].index("ACCOUNT")
    assert all(line[column:].startswith(("ACCOUNT", ACCOUNT_A, ACCOUNT_B)) for line in lines)

    assert ok(sync_database_url, "anomalies", "--tenant", "nobody").strip() == "(none)"
    assert ok(sync_database_url, "anomalies", "--tenant", "nobody", "--format", "json").strip() == "[]"
    bad = cli(sync_database_url, "anomalies", "--severity", "urgent")
    assert bad.returncode == 2 and "unknown severity 'urgent'" in bad.stderr
    assert cli(sync_database_url, "anomalies", "--since", "yesterday-ish").returncode == 2
    missing = cli(sync_database_url + "_missing", "anomalies")
    assert missing.returncode == 1 and missing.stderr.startswith("dd0c-cost: database error:")

    async def drop_table() -> None:
        async with db(sync_database_url) as conn:
            await conn.execute("DROP TABLE anomalies")

    asyncio.run(drop_table())
    unmigrated = cli(sync_database_url, "anomalies")
    assert unmigrated.returncode == 1 and "run `dd0c-cost migrate`" in unmigrated.stderr


def test_resources_baselines_and_cost_events(sync_database_url: str) -> None:
    seed(sync_database_url)
    lines = ok(sync_database_url, "resources").splitlines()
    assert [re.split(r"\s{2,}", line)[1] for line in lines[1:3]] == ["i-0aaa", "i-0bbb"]
    assert lines[-1] == "2 resource(s); burning now: $3.2520/h"
    cut = ok(sync_database_url, "resources", "--limit", "1").splitlines()
    assert cut[-2:] == ["2 resource(s); burning now: $3.2520/h", "1 of 2 shown; --limit N shows more"]
    everything = json.loads(ok(sync_database_url, "resources", "--state", "all", "--format", "json"))
    assert [(r["resource_id"], r["state"], r["burning_per_hour"]) for r in everything] == [
        ("i-0aaa", "running", 0.192), ("i-0bbb", "running", 3.06), ("i-0ccc", "closed", 0.0)
    ]

    baselines = json.loads(ok(sync_database_url, "baselines", "--format", "json"))
    assert [(b["account_id"], b["resource_type"], b["mean_hourly_cost"], b["stddev_hourly_cost"],
             b["event_count"]) for b in baselines] == [(ACCOUNT_A, "ec2_instance", 0.096, 0.0229, 30)]
    assert "ec2_instance" in ok(sync_database_url, "baselines").splitlines()[1]

    events = json.loads(ok(sync_database_url, "cost-events", "--format", "json"))
    assert [(e["event_id"], e["hourly_cost"], e["priced"]) for e in events] == [
        (event_id(2), None, False), (event_id(1), 0.192, True)
    ]
    assert ok(sync_database_url, "cost-events", "--limit", "1").splitlines()[-1] == (
        "first 1 shown; --limit N shows more")
    assert len(json.loads(ok(sync_database_url, "cost-events", "--limit", "1", "--format", "json"))) == 1
    table = ok(sync_database_url, "cost-events").splitlines()
    assert re.split(r"\s{2,}", table[1]) == [
        "2024-03-01 13:00:00", ACCOUNT_A, "RunInstances", "ec2_instance", "us-east-1", "unpriced", event_id(2)
    ]


def test_users_add_and_list(sync_database_url: str) -> None:
    added = cli(sync_database_url, "users", "add", "alice", "--tenant", "acme", "--password-stdin",
                stdin="s3cret pass\n")
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == "user alice added (tenant acme)"
    assert cli(sync_database_url, "users", "add", "bob", "--password-stdin", stdin="pw-b-long\n").returncode == 0

    again = cli(sync_database_url, "users", "add", "alice", "--tenant", "acme", "--password-stdin",
                stdin="x-long-enough\n")
    assert again.returncode == 1 and "already exists" in again.stderr
    for short in ("\n", "1234567\n"):
        refused = cli(sync_database_url, "users", "add", "carol", "--password-stdin", stdin=short)
        assert refused.returncode == 1 and "at least 8 characters" in refused.stderr
    role = cli(sync_database_url, "users", "add", "dave", "--role", "superduper", "--password-stdin", stdin="x" * 9)
    assert role.returncode == 2 and "invalid choice" in role.stderr

    listed = [line.split("\t")[:3] for line in ok(sync_database_url, "users", "list").splitlines()]
    assert listed == [["acme", "alice", "admin"], ["default", "bob", "admin"]]

    async def stored() -> tuple[list[str], str]:
        async with db(sync_database_url) as conn:
            tenants = [r["tenant_id"] for r in await conn.fetch("SELECT tenant_id FROM tenants ORDER BY 1")]
            hashed = await conn.fetchval("SELECT password_hash FROM users WHERE username = 'alice'")
            return tenants, hashed

    tenants, hashed = asyncio.run(stored())
    assert tenants == ["acme", "default"]  # created on demand
    assert hashed.startswith("scrypt$") and "s3cret" not in hashed
    assert verify_password("s3cret pass", hashed) and not verify_password("s3cret pass\n", hashed)


def test_dead_letters_lists_what_was_rejected_and_where(sync_database_url: str, tmp_path: Path) -> None:
    """Ingest names each rejection on stderr; `dd0c-cost dead-letters` shows them again later, newest first."""
    (tmp_path / "broken.json").write_text('{"Records": [{"eventID": ')
    (tmp_path / "typed.json").write_text(
        '{"Records": [{"eventID": "e-1", "eventTime": 42.5, "eventSource": "ec2.amazonaws.com", "eventName": 7,'
        ' "awsRegion": "us-east-1", "recipientAccountId": "111122223333"}]}'
    )
    ingested = cli(sync_database_url, "ingest", str(tmp_path))
    assert ingested.returncode == 1

    listed = json.loads(ok(sync_database_url, "dead-letters", "--format", "json"))
    assert [(r["stage"], Path(r["source"]).name) for r in listed] == [("read", "typed.json"), ("read", "broken.json")]
    assert "eventTime 1970-01-01T00:00:42.500000+00:00 is before CloudTrail existed" in listed[0]["reason"]
    assert listed[1]["raw_bytes"] > 0
    table = ok(sync_database_url, "dead-letters", "--stage", "read").splitlines()
    assert table[0].split() == ["ID", "REJECTED", "AT", "STAGE", "WHERE", "REASON"]
    assert len(table) == 3
    assert ok(sync_database_url, "dead-letters", "--stage", "normalize").strip() == "(none)"
