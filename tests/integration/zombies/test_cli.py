"""`dd0c-cost zombies ...` through the real entry point: a tenant's registered account (a role assumed through
moto's STS), its thresholds, a scan that appends and folds, the list with its totals, and a refused threshold."""

from __future__ import annotations

import asyncio
import json

import pytest
from cryptography.fernet import Fernet

from ops.cli import main
from projections.db import connect
from streams.accounts import SecretBox, TrailLocation, add_account
from tests.integration.zombies.conftest import Aws, FaultProxy, Rule
from tests.integration.zombies.seed import seed


def _register(url: str, key: str, tenant: str, accounts: list[tuple[str, str]]) -> None:
    """Register each (account id, account whose dd0c-cost-reader role its credentials assume) for `tenant`."""

    async def register() -> None:
        conn = await connect(url)
        try:
            for account, role_account in accounts:
                await add_account(conn, SecretBox([key]), tenant, account,
                                  role_arn=f"arn:aws:iam::{role_account}:role/dd0c-cost-reader",
                                  trail=TrailLocation(bucket="trail", regions=("us-east-1",)))
        finally:
            await conn.close()

    asyncio.run(register())


def test_cli_scan_list_and_thresholds(aws: Aws, sync_database_url: str, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    key = Fernet.generate_key().decode()
    for name, value in (("DATABASE_URL", sync_database_url), ("DD0C_SECRET_KEY", key),
                        ("DD0C_AWS_ENDPOINT_URL", aws.moto_url), ("DD0C_TENANT", "acme")):
        monkeypatch.setenv(name, value)
    seeded = seed(aws)

    _register(sync_database_url, key, "acme", [(aws.account_id, aws.account_id)])
    assert main(["zombies", "thresholds", "--set", "snapshot_age_days=30"]) == 0
    assert "snapshot_age_days = 30  (tenant)" in capsys.readouterr().out
    with pytest.raises(SystemExit):  # argparse: a check that does not exist
        main(["zombies", "scan", "--check", "idle_spaceship"])
    assert main(["zombies", "thresholds", "--set", "snapshot_days=3"]) == 1  # unknown key: refused, nothing stored
    capsys.readouterr()

    # The CLI's clock is the wall clock: the seeded resources are brand new, so use a clock-free check here
    # (Elastic IPs have no age rule) - the full set at +40 days is test_hunt's.
    assert main(["zombies", "scan", "--check", "unassociated_eip", "--fold", "--format", "json"]) == 0
    [report] = json.loads(capsys.readouterr().out)
    assert (report["status"], report["account_id"], report["regions_scanned"]) == ("ok", aws.account_id,
                                                                                   ["us-east-1"])
    assert [(z["resource_id"], z["monthly_waste_usd"]) for z in report["zombies"]] == [
        (seeded.zombies["unassociated_eip"], 3.65)]
    assert main(["zombies", "list", "--format", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert (listed["count"], listed["monthly_waste_usd"]) == (1, 3.65)
    assert listed["by_check"] == [{"check": "unassociated_eip", "count": 1, "monthly_waste_usd": 3.65,
                                   "unpriced": 0}]
    assert main(["zombies", "list"]) == 0
    header, row, total = capsys.readouterr().out.splitlines()[:3]
    assert header.split() == ["$/month", "status", "check", "account", "region", "resource", "[zombie", "id]"]
    assert row.split()[:6] == ["$3.65", "open", "unassociated_eip", aws.account_id, "us-east-1",
                               seeded.zombies["unassociated_eip"]]
    assert total == "1 zombie, $3.65/month"
    zid, eip = listed["items"][0]["zombie_id"], seeded.zombies["unassociated_eip"]
    for given in (zid, zid[:8], eip):  # the id, a unique start of it, or the resource id
        assert main(["zombies", "show", given]) == 0
        shown = json.loads(capsys.readouterr().out)
        assert (shown["zombie_id"], shown["resource_id"], shown["monthly_waste_usd"]) == (zid, eip, 3.65)
    assert main(["zombies", "show", "ffffffff"]) == 1
    assert "no zombie ffffffff for tenant 'acme'" in capsys.readouterr().err


def test_cli_scan_records_an_account_whose_role_is_refused(
    aws: Aws, proxy: FaultProxy, sync_database_url: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Two accounts; STS refuses the first one's AssumeRole (AccessDenied, injected by the proxy). The scan of the
    second still runs and finds its Elastic IP ($3.65/month); the refused one is a `failed` run in the log with a
    reason naming the account and the refusal, `zombies scans` prints it, and the exit status is 1."""
    key = Fernet.generate_key().decode()
    tenant = "acme-refused"
    for name, value in (("DATABASE_URL", sync_database_url), ("DD0C_SECRET_KEY", key),
                        ("DD0C_AWS_ENDPOINT_URL", proxy.url), ("DD0C_TENANT", tenant)):
        monkeypatch.setenv(name, value)
    seeded = seed(aws)
    refused = "100000000001"  # sorts before the fixture's account (>= 2e11): scanned first

    _register(sync_database_url, key, tenant, [(refused, refused), (aws.account_id, aws.account_id)])
    rule = Rule(None, "sts", "AssumeRole", "AccessDenied", 403, times=1)
    proxy.rules.append(rule)
    assert main(["zombies", "scan", "--check", "unassociated_eip", "--fold", "--format", "json"]) == 1
    first, second = json.loads(capsys.readouterr().out)
    assert rule.hits == 1
    assert (first["account_id"], first["status"], first["calls_made"], first["zombies"]) == (refused, "failed", 0, [])
    assert first["errors"] == [{"region": "us-east-1", "code": "AccessDenied", "operation": "AssumeRole",
                                "check": None}]
    assert first["reason"].startswith(f"could not act as account {refused}: AssumeRole failed with AccessDenied (")
    assert (second["account_id"], second["status"], second["reason"]) == (aws.account_id, "ok", "")
    assert [(z["resource_id"], z["monthly_waste_usd"]) for z in second["zombies"]] == [
        (seeded.zombies["unassociated_eip"], 3.65)]

    assert main(["zombies", "scans", "--account", refused]) == 0
    [line] = capsys.readouterr().out.splitlines()
    assert f"{refused}  failed      0 zombies  0 calls  ! could not act as account {refused}: AssumeRole" in line
    assert main(["zombies", "scans", "--account", "999999999999"]) == 0
    assert capsys.readouterr().out == (f"no zombie scan recorded for tenant {tenant!r} account 999999999999 yet; "
                                       "run `dd0c-cost zombies scan`\n")


def test_cli_scan_refuses_credentials_that_act_as_another_account(
    aws: Aws, sync_database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    """Account 100000000002 registered with a role of the fixture's account (a copy-paste slip): the scan would
    file the fixture account's Elastic IP ($3.65/month) under the wrong account. It is a `failed` run instead,
    naming both accounts, with no AWS call of the hunt made and no zombie recorded."""
    key = Fernet.generate_key().decode()
    tenant, mistaken = "acme-mixup", "100000000002"
    for name, value in (("DATABASE_URL", sync_database_url), ("DD0C_SECRET_KEY", key),
                        ("DD0C_AWS_ENDPOINT_URL", aws.moto_url), ("DD0C_TENANT", tenant)):
        monkeypatch.setenv(name, value)
    seed(aws)

    _register(sync_database_url, key, tenant, [(mistaken, aws.account_id)])  # another account's role
    assert main(["zombies", "scan", "--check", "unassociated_eip", "--fold", "--format", "json"]) == 1
    [report] = json.loads(capsys.readouterr().out)
    assert (report["account_id"], report["status"], report["calls_made"], report["zombies"]) == (
        mistaken, "failed", 0, [])
    assert report["errors"] == [{"region": "us-east-1", "code": "WrongAccount", "operation": "GetCallerIdentity",
                                 "check": None}]
    assert report["reason"] == (
        f"could not act as account {mistaken}: GetCallerIdentity failed with WrongAccount (these credentials belong "
        f"to account {aws.account_id}, not {mistaken}: register the keys or the role of this account)")
    assert main(["zombies", "list", "--status", "all", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["count"] == 0
