"""`accounts check`: probes against moto over HTTP with moto's IAM enforcement switched on.

moto does not enforce IAM by default. Its server has a switch (POST /moto-api/reset-auth with the number of
requests to let through unauthenticated; 0 = enforce from now on), which makes it evaluate the caller's IAM
policies like AWS would for the calls used here. The switch is process-wide, so the fixture turns it back off.
What this shows: a permission left out of the user's policy is named, a granted one is reported ok, a refused
AssumeRole (no permission, or the wrong external id) stops the check. One moto quirk: it checks CloudWatch calls
as `monitoring:<Action>` where AWS uses `cloudwatch:<Action>`, so the test user is granted both names (or neither).
What it cannot show: AWS's finer policy semantics (SCPs, resource policies, every condition key) beyond what moto
evaluates.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from ops.cli import main
from streams.accounts import SecretBox, TrailLocation, add_account
from streams.accounts.check import check_account, format_check
from streams.accounts.policy import POLLER_S3, POLLER_SQS, ZOMBIE_ACTIONS, host_policy, reader_policy, trust_policy
from tests.integration.accounts.conftest import make_settings, unique
from tests.integration.test_api_rows import add_user, asgi_client, bearer, db, login

MOTO_ACCOUNT = "123456789012"  # moto's default account: the IAM user below lives there


def _enforce(moto_url: str, count: str) -> None:
    # text/plain: with urllib's default (form-encoded) moto's Flask app reads the body as a form, not as data
    request = urllib.request.Request(f"{moto_url}/moto-api/reset-auth", data=count.encode(), method="POST",
                                     headers={"Content-Type": "text/plain"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


@pytest.fixture
def enforce_iam(moto_url: str) -> Iterator[None]:
    try:
        yield
    finally:
        _enforce(moto_url, "inf")


def _reader(moto_url: str, bucket: str, actions: list[str]) -> tuple[str, str, str]:
    """An IAM user allowed exactly `actions` (bucket actions scoped to the bucket): its key pair and ARN."""
    iam = boto3.client("iam", endpoint_url=moto_url, region_name="us-east-1")
    user = unique("reader")
    iam.create_user(UserName=user)
    s3_actions = [a for a in actions if a.startswith("s3:")]
    if "cloudwatch:GetMetricData" in actions:  # moto checks CloudWatch calls under the prefix "monitoring:"
        actions = [*actions, "monitoring:GetMetricData"]
    statements = [{"Effect": "Allow", "Action": [a for a in actions if not a.startswith("s3:")], "Resource": "*"}]
    if s3_actions:
        statements.append({"Effect": "Allow", "Action": s3_actions,
                           "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]})
    iam.put_user_policy(UserName=user, PolicyName="dd0c-reader",
                        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"], f"arn:aws:iam::{MOTO_ACCOUNT}:user/{user}"


def _trail_bucket(moto_url: str) -> str:
    bucket = unique("trail")
    s3 = boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Body=b"{}",
                  Key=f"AWSLogs/{MOTO_ACCOUNT}/CloudTrail/us-east-1/2024/05/01/x_CloudTrail_us-east-1_1.json.gz")
    return bucket


def test_every_action_in_the_policy_is_probed_and_every_probe_is_in_the_policy() -> None:
    document = reader_policy("b")
    granted = {a for s in document["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str)
                                                          else s["Action"])}
    assert granted == {*POLLER_S3, *POLLER_SQS, *ZOMBIE_ACTIONS}
    assert all(a.split(":")[1].startswith(("Describe", "Get", "List", "Receive", "Delete")) for a in granted)
    docs = Path(__file__).resolve().parents[3] / "ops" / "docs"
    assert json.loads((docs / "iam-reader-policy.json").read_text()) == reader_policy()  # the docs show the code's
    assert json.loads((docs / "iam-trust-policy.json").read_text()) == trust_policy()
    assert json.loads((docs / "iam-host-policy.json").read_text()) == host_policy()


async def test_check_names_the_permission_the_policy_leaves_out(
    database_url: str, secret_key: str, moto_url: str, aws_env: None, enforce_iam: None
) -> None:
    bucket = _trail_bucket(moto_url)
    without_metrics = [a for a in ZOMBIE_ACTIONS if a != "cloudwatch:GetMetricData"]
    key_id, secret, _ = _reader(moto_url, bucket, [*POLLER_S3, *without_metrics])
    box = SecretBox([secret_key])
    async with db(database_url) as conn:
        account = await add_account(conn, box, "acme", MOTO_ACCOUNT, access_key_id=key_id, secret_access_key=secret,
                                    trail=TrailLocation(bucket=bucket, regions=("us-east-1",)))
    settings = make_settings(database_url, secret_key=secret_key, aws_endpoint_url=moto_url)
    _enforce(moto_url, "0")
    report = check_account(account, settings, box=box)
    text = format_check(report)
    assert report.missing == ["cloudwatch:GetMetricData"], text
    outcomes = {r.action: r.outcome for r in report.results}
    assert outcomes["s3:ListBucket"] == outcomes["s3:GetObject"] == "ok", text
    assert outcomes["ec2:DescribeVolumes"] == outcomes["elasticloadbalancing:DescribeLoadBalancers"] == "ok"
    assert outcomes["sqs:GetQueueAttributes"] == "not tried"
    assert "missing: cloudwatch:GetMetricData" in text
    assert secret not in text


async def test_check_refuses_credentials_of_another_account(
    database_url: str, secret_key: str, moto_url: str, aws_env: None
) -> None:
    """Keys of moto's account registered for 111122223333: every probe would pass, and the poller and the hunter
    would read the wrong account. The check says whose they are and stops there."""
    bucket = _trail_bucket(moto_url)
    key_id, secret, _ = _reader(moto_url, bucket, [*POLLER_S3, *ZOMBIE_ACTIONS])
    box = SecretBox([secret_key])
    async with db(database_url) as conn:
        account = await add_account(conn, box, "acme", "111122223333", access_key_id=key_id,
                                    secret_access_key=secret, trail=TrailLocation(bucket=bucket))
    report = check_account(account, make_settings(database_url, secret_key=secret_key, aws_endpoint_url=moto_url),
                           box=box)
    assert not report.ok and report.missing == []
    assert [(r.action, r.outcome) for r in report.results] == [("sts:GetCallerIdentity", "error")]
    assert report.results[0].detail.startswith(f"these credentials belong to account {MOTO_ACCOUNT}, not 111122223333")
    assert "some probes failed for another reason" in format_check(report)


async def test_check_without_bucket_permissions_names_both(
    database_url: str, secret_key: str, moto_url: str, aws_env: None, enforce_iam: None
) -> None:
    bucket = _trail_bucket(moto_url)
    key_id, secret, _ = _reader(moto_url, bucket, list(ZOMBIE_ACTIONS))
    box = SecretBox([secret_key])
    async with db(database_url) as conn:
        account = await add_account(conn, box, "acme", MOTO_ACCOUNT, access_key_id=key_id, secret_access_key=secret,
                                    trail=TrailLocation(bucket=bucket))
    _enforce(moto_url, "0")
    report = check_account(account, make_settings(database_url, aws_endpoint_url=moto_url), box=box)
    assert report.missing == ["s3:ListBucket", "s3:GetObject"], format_check(report)
    assert not report.ok


def test_cli_check_exits_1_and_names_the_missing_permission(
    sync_database_url: str, secret_key: str, moto_url: str, aws_env: None, enforce_iam: None,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    import io

    bucket = _trail_bucket(moto_url)
    key_id, secret, _ = _reader(moto_url, bucket, [*POLLER_S3, *[a for a in ZOMBIE_ACTIONS if "NatGateways" not in a]])
    monkeypatch.setenv("DATABASE_URL", sync_database_url)
    monkeypatch.setenv("DD0C_SECRET_KEY", secret_key)
    monkeypatch.setenv("DD0C_AWS_ENDPOINT_URL", moto_url)
    monkeypatch.setattr("sys.stdin", io.StringIO(secret + "\n"))
    assert main(["accounts", "add", MOTO_ACCOUNT, "--tenant", "acme", "--access-key-id", key_id, "--secret-stdin",
                 "--bucket", bucket]) == 0
    _enforce(moto_url, "0")
    assert main(["accounts", "check", MOTO_ACCOUNT, "--tenant", "acme"]) == 1
    _enforce(moto_url, "inf")
    out = capsys.readouterr().out
    assert "missing: ec2:DescribeNatGateways" in out
    assert f"account {MOTO_ACCOUNT} (tenant acme) as arn:aws:iam::{MOTO_ACCOUNT}:user/reader-" in out
    assert secret not in out


async def test_a_role_the_caller_may_not_assume_is_named_and_one_it_may_is_checked_through(
    database_url: str, secret_key: str, moto_url: str, aws_env: None, enforce_iam: None
) -> None:
    bucket = _trail_bucket(moto_url)
    iam = boto3.client("iam", endpoint_url=moto_url, region_name="us-east-1")
    may_not = _reader(moto_url, bucket, ["ec2:DescribeRegions"])
    may = _reader(moto_url, bucket, ["sts:AssumeRole"])
    role_name = unique("dd0c-cost-reader")
    trust = trust_policy(may[2], "ext-123")  # the documented trust policy: this caller, with the external id
    role_arn = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    granted = reader_policy(bucket)
    granted["Statement"].append({"Effect": "Allow", "Action": "monitoring:GetMetricData", "Resource": "*"})  # moto
    iam.put_role_policy(RoleName=role_name, PolicyName="reader", PolicyDocument=json.dumps(granted))
    box = SecretBox([secret_key])
    async with db(database_url) as conn:
        account = await add_account(conn, box, "acme", MOTO_ACCOUNT, role_arn=role_arn, external_id="ext-123",
                                    trail=TrailLocation(bucket=bucket))
        wrong_id = await add_account(conn, box, "globex", MOTO_ACCOUNT, role_arn=role_arn, external_id="ext-999",
                                     trail=TrailLocation(bucket=bucket))
    settings = make_settings(database_url, aws_endpoint_url=moto_url)
    _enforce(moto_url, "0")

    def base(keys: tuple[str, str, str]) -> boto3.Session:
        return boto3.Session(aws_access_key_id=keys[0], aws_secret_access_key=keys[1], region_name="us-east-1")

    refused = check_account(account, settings, box=box, base=base(may_not))
    assert refused.missing == ["sts:AssumeRole"] and len(refused.results) == 1, format_check(refused)
    wrong = check_account(wrong_id, settings, box=box, base=base(may))  # the trust policy wants ext-123
    assert wrong.missing == ["sts:AssumeRole"], format_check(wrong)
    allowed = check_account(account, settings, box=box, base=base(may))
    assert allowed.missing == [] and allowed.ok, format_check(allowed)
    assert allowed.results[0].action == "sts:AssumeRole" and allowed.results[0].outcome == "ok"
    assert allowed.identity.startswith(f"arn:aws:sts::{MOTO_ACCOUNT}:assumed-role/{role_name}/")


async def test_api_check_names_the_missing_permission(
    database_url: str, secret_key: str, moto_url: str, aws_env: None, enforce_iam: None
) -> None:
    """POST /v1/aws-accounts/{id}/check gives the CLI's verdict as JSON: the one action left out is `missing`, the
    rest ok; an unregistered account is 404; the secret never appears in the answer."""
    bucket = _trail_bucket(moto_url)
    without = [a for a in ZOMBIE_ACTIONS if a != "ec2:DescribeAddresses"]
    key_id, secret, arn = _reader(moto_url, bucket, [*POLLER_S3, *without])
    async with db(database_url) as conn:
        await add_account(conn, SecretBox([secret_key]), "acme", MOTO_ACCOUNT, access_key_id=key_id,
                          secret_access_key=secret, trail=TrailLocation(bucket=bucket, regions=("us-east-1",)))
    await add_user(database_url, "acme", "alice", "correct horse")
    async with asgi_client(database_url, secret_key=secret_key, aws_endpoint_url=moto_url) as (client, _app):
        token = bearer(await login(client, "alice", "correct horse"))
        _enforce(moto_url, "0")
        try:
            answer = await client.post(f"/v1/aws-accounts/{MOTO_ACCOUNT}/check", headers=token)
            unknown = await client.post("/v1/aws-accounts/999988887777/check", headers=token)
        finally:
            _enforce(moto_url, "inf")
    assert answer.status_code == 200, answer.text
    doc = answer.json()
    assert (doc["account_id"], doc["ok"], doc["missing"], doc["identity"]) == (
        MOTO_ACCOUNT, False, ["ec2:DescribeAddresses"], arn)
    outcomes = {p["action"]: p["outcome"] for p in doc["probes"]}
    assert outcomes["ec2:DescribeAddresses"] == "missing"
    assert outcomes["s3:ListBucket"] == outcomes["ec2:DescribeVolumes"] == "ok"
    assert secret not in answer.text
    assert unknown.status_code == 404
    assert unknown.json()["detail"] == "account 999988887777 is not registered for tenant acme"
