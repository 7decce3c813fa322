"""The account registry: secrets sealed at rest, never returned or logged; API and CLI; sessions against moto."""

from __future__ import annotations

import io
import logging
from typing import Any

import pytest
from cryptography.fernet import Fernet

from ops.cli import main
from ops.settings import Settings
from streams.accounts import (
    AccountsError,
    SecretBox,
    SecretKeyError,
    TrailLocation,
    UnknownAccount,
    add_account,
    boto3_session,
    get_account,
    list_accounts,
    open_secrets,
    remove_account,
)
from tests.integration.accounts.conftest import make_settings
from tests.integration.test_api_rows import add_user, asgi_client, bearer, db, login

KEY_ID = "AKIAEXAMPLEKEY12WXYZ"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY"  # what must never come back out
EXTERNAL_ID = "ext-id-7f3a9c-do-not-show"
ROLE = "arn:aws:iam::444455556666:role/dd0c-cost-reader"


async def test_the_secret_is_sealed_in_the_database_and_opens_only_with_its_key(
    database_url: str, secret_key: str
) -> None:
    box = SecretBox([secret_key])
    async with db(database_url) as conn:
        account = await add_account(conn, box, "acme", "111122223333", access_key_id=KEY_ID, secret_access_key=SECRET,
                                    trail=TrailLocation(bucket="acme-trail", regions=("us-east-1",)))
        row = await conn.fetchrow("SELECT * FROM aws_accounts WHERE tenant_id = 'acme'")
        dumped = await conn.fetchval("SELECT row_to_json(a)::text FROM aws_accounts a WHERE tenant_id = 'acme'")
    assert row is not None
    assert SECRET.encode() not in bytes(row["sealed"]) and SECRET not in dumped
    assert KEY_ID not in dumped  # the key id is sealed too; only its last four characters are kept
    assert row["key_hint"] == "WXYZ" and row["auth"] == "access_key"
    assert SECRET not in repr(account) and KEY_ID not in repr(account)

    opened = open_secrets(account, box)
    assert (opened.access_key_id, opened.secret_access_key) == (KEY_ID, SECRET)
    assert SECRET not in repr(opened)

    with pytest.raises(SecretKeyError) as wrong:
        open_secrets(account, SecretBox([Fernet.generate_key().decode()]))
    message = str(wrong.value)
    assert "cannot decrypt the credentials of account 111122223333 (tenant acme)" in message
    assert "DD0C_SECRET_KEY is not the key it was sealed with" in message
    assert SECRET not in message

    # rotation: a new key first, the old one after it, still opens what the old one sealed
    rotated = SecretBox([Fernet.generate_key().decode(), secret_key])
    assert open_secrets(account, rotated).secret_access_key == SECRET


def test_the_secret_key_setting_is_validated_and_named() -> None:
    with pytest.raises(SecretKeyError, match="DD0C_SECRET_KEY is not set"):
        SecretBox.from_settings(Settings(mode="production"))
    with pytest.raises(SecretKeyError, match=r"DD0C_SECRET_KEY key 1 of 1 is not a Fernet key") as bad:
        SecretBox.from_settings(Settings(mode="production", secret_key="not-a-fernet-key-but-secret"))
    assert "not-a-fernet-key-but-secret" not in str(bad.value)
    demo = SecretBox.from_settings(Settings(mode="demo"))  # demo mode derives one
    assert demo.open(demo.seal(b"x"), what="x") == b"x"


async def test_registration_rules(database_url: str, secret_key: str) -> None:
    box = SecretBox([secret_key])
    async with db(database_url) as conn:
        await add_account(conn, box, "acme", "444455556666", role_arn=ROLE, external_id=EXTERNAL_ID)
        with pytest.raises(AccountsError, match="account 444455556666 is already registered for tenant acme"):
            await add_account(conn, box, "acme", "444455556666", role_arn=ROLE)
        with pytest.raises(AccountsError, match="account id must be 12 digits"):
            await add_account(conn, box, "acme", "4444", role_arn=ROLE)
        with pytest.raises(AccountsError, match="not an IAM role ARN"):
            await add_account(conn, box, "acme", "777788889999", role_arn="arn:aws:iam::role")
        with pytest.raises(AccountsError, match="either an access key pair or a role ARN"):
            await add_account(conn, box, "acme", "777788889999", role_arn=ROLE, access_key_id=KEY_ID,
                              secret_access_key=SECRET)
        with pytest.raises(AccountsError, match="organization id"):
            await add_account(conn, box, "acme", "777788889999", trail=TrailLocation(bucket="b-ok", org_id="org1"))
        # the same account may belong to another tenant; each tenant sees only its own
        await add_account(conn, box, "globex", "444455556666", access_key_id=KEY_ID, secret_access_key=SECRET)
        assert [a.account_id for a in await list_accounts(conn, "acme")] == ["444455556666"]
        role_account = await get_account(conn, "acme", "444455556666")
        assert role_account.auth == "role" and role_account.role_arn == ROLE
        assert open_secrets(role_account, box).external_id == EXTERNAL_ID
        assert await remove_account(conn, "acme", "444455556666") is True
        assert await remove_account(conn, "acme", "444455556666") is False
        with pytest.raises(UnknownAccount, match="account 444455556666 is not registered for tenant acme"):
            await get_account(conn, "acme", "444455556666")
        assert [a.account_id for a in await list_accounts(conn, "globex")] == ["444455556666"]


async def test_api_registers_lists_and_removes_without_ever_returning_a_secret(
    database_url: str, secret_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await add_user(database_url, "acme", "alice", "correct horse")
    await add_user(database_url, "globex", "gina", "battery staple")
    bodies: list[str] = []
    async with asgi_client(database_url, secret_key=secret_key) as (client, _app):
        token = bearer(await login(client, "alice", "correct horse"))
        created = await client.post("/v1/aws-accounts", headers=token, json={
            "account_id": "111122223333", "name": "prod", "access_key_id": KEY_ID, "secret_access_key": SECRET,
            "trail_bucket": "acme-trail", "regions": ["us-east-1", "eu-west-1"],
        })
        assert created.status_code == 201, created.text
        role = await client.post("/v1/aws-accounts", headers=token, json={
            "account_id": "444455556666", "role_arn": ROLE, "external_id": EXTERNAL_ID,
            "trail_bucket": "org-trail", "org_id": "o-abcdefghij",
        })
        assert role.status_code == 201, role.text
        again = await client.post("/v1/aws-accounts", headers=token,
                                  json={"account_id": "111122223333", "access_key_id": KEY_ID,
                                        "secret_access_key": SECRET})
        assert again.status_code == 409
        bad = await client.post("/v1/aws-accounts", headers=token,
                                json={"account_id": "111122223333x", "secret_access_key": SECRET})
        assert bad.status_code == 422
        # the CLI's flag name instead of the API's field: refused and named, not registered without a bucket
        misspelt = await client.post("/v1/aws-accounts", headers=token,
                                     json={"account_id": "777788889999", "bucket": "acme-trail"})
        assert misspelt.status_code == 422 and "bucket" in misspelt.text and "extra" in misspelt.text.lower()
        listed = await client.get("/v1/aws-accounts", headers=token)
        one = await client.get("/v1/aws-accounts/111122223333", headers=token)
        other_tenant = await client.get("/v1/aws-accounts", headers=bearer(await login(client, "gina",
                                                                                        "battery staple")))
        bodies += [created.text, role.text, again.text, bad.text, listed.text, one.text, other_tenant.text]

        items = listed.json()["items"]
        assert [(i["account_id"], i["auth"], i["access_key"], i["role_arn"]) for i in items] == [
            ("111122223333", "access_key", "…WXYZ", None),
            ("444455556666", "role", None, ROLE),
        ]
        assert items[0]["regions"] == ["us-east-1", "eu-west-1"] and items[1]["org_id"] == "o-abcdefghij"
        assert one.json()["name"] == "prod"
        assert other_tenant.json() == {"items": []}

        assert (await client.delete("/v1/aws-accounts/444455556666", headers=token)).status_code == 204
        gone = await client.get("/v1/aws-accounts/444455556666", headers=token)
        assert gone.status_code == 404
        assert gone.json()["detail"] == "account 444455556666 is not registered for tenant acme"
        assert (await client.get("/v1/aws-accounts")).status_code == 401  # JWT like every other route

    for text in [*bodies, caplog.text]:
        assert SECRET not in text and EXTERNAL_ID not in text and KEY_ID not in text


async def test_api_without_a_secret_key_refuses_credentials_with_503(database_url: str) -> None:
    await add_user(database_url, "acme", "alice", "correct horse")
    async with asgi_client(database_url) as (client, _app):
        token = bearer(await login(client, "alice", "correct horse"))
        refused = await client.post("/v1/aws-accounts", headers=token, json={
            "account_id": "111122223333", "access_key_id": KEY_ID, "secret_access_key": SECRET,
        })
        assert refused.status_code == 503
        assert "DD0C_SECRET_KEY is not set" in refused.json()["detail"]
        # an account on the server's own credentials needs no key
        plain = await client.post("/v1/aws-accounts", headers=token, json={"account_id": "111122223333"})
        assert plain.status_code == 201 and plain.json()["auth"] == "none"


def test_cli_add_list_remove_reads_the_secret_from_stdin_and_never_prints_it(
    sync_database_url: str, secret_key: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("DATABASE_URL", sync_database_url)
    monkeypatch.setenv("DD0C_SECRET_KEY", secret_key)
    monkeypatch.setattr("sys.stdin", io.StringIO(SECRET + "\n"))
    assert main(["accounts", "add", "111122223333", "--tenant", "acme", "--access-key-id", KEY_ID,
                 "--secret-stdin", "--bucket", "acme-trail", "--region", "us-east-1"]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO(EXTERNAL_ID + "\n"))
    assert main(["accounts", "add", "444455556666", "--tenant", "acme", "--role-arn", ROLE, "--secret-stdin",
                 "--bucket", "org-trail", "--org-id", "o-abcdefghij"]) == 0
    assert main(["accounts", "list", "--tenant", "acme"]) == 0
    out = capsys.readouterr().out
    assert "account 111122223333 registered for tenant acme (access key …WXYZ)" in out
    assert f"account 444455556666 registered for tenant acme (role {ROLE})" in out
    lines = [line.split("\t") for line in out.splitlines() if "\t" in line]
    assert lines == [
        ["111122223333", "-", "access_key", "key …WXYZ", "s3://acme-trail/AWSLogs/111122223333/", "us-east-1"],
        ["444455556666", "-", "role", ROLE, "s3://org-trail/AWSLogs/o-abcdefghij/444455556666/", "all"],
    ]
    assert main(["accounts", "remove", "444455556666", "--tenant", "acme"]) == 0
    assert main(["accounts", "remove", "444455556666", "--tenant", "acme"]) == 1
    captured = capsys.readouterr()
    assert "account 444455556666 removed from tenant acme" in captured.out
    assert "dd0c-cost: account 444455556666 is not registered for tenant acme" in captured.err
    for text in (out, captured.out, captured.err, caplog.text):
        assert SECRET not in text and EXTERNAL_ID not in text and KEY_ID not in text


async def test_boto3_session_assumes_the_role_with_its_external_id_against_moto(
    database_url: str, secret_key: str, moto_url: str, aws_env: None
) -> None:
    settings = make_settings(database_url, secret_key=secret_key, aws_endpoint_url=moto_url)
    box = SecretBox([secret_key])
    async with db(database_url) as conn:
        role = await add_account(conn, box, "acme", "444455556666", role_arn=ROLE, external_id=EXTERNAL_ID,
                                 trail=TrailLocation(regions=("eu-west-1",)))
        keyed = await add_account(conn, box, "acme", "111122223333", access_key_id=KEY_ID, secret_access_key=SECRET)
    assumed = boto3_session(role, settings)
    identity: dict[str, Any] = assumed.client("sts").get_caller_identity()
    # moto answers AssumeRole with an assumed-role identity in the role's account
    assert identity["Arn"] == "arn:aws:sts::444455556666:assumed-role/dd0c-cost-reader/dd0c-cost"
    assert assumed.region_name == "eu-west-1"
    assert assumed.client("s3").meta.endpoint_url == moto_url  # every client goes to the configured endpoint
    frozen = assumed.get_credentials().get_frozen_credentials()
    assert frozen.token and frozen.access_key != "AKIAAMBIENT000000000"

    plain = boto3_session(keyed, settings)
    assert plain.get_credentials().get_frozen_credentials().secret_key == SECRET
    assert plain.region_name == "us-east-1"
