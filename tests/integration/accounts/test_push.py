"""HTTP push (POST /v1/ingest/cloudtrail): every body shape, API keys, 413, admission of accounts, dead letters."""

from __future__ import annotations

import gzip
import io
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from streams.accounts import SecretBox, TrailLocation, add_account, create_api_key, revoke_api_key
from tests.conftest import CASES
from tests.integration.ctgen import describe_instances, event_id, run_instances
from tests.integration.test_api_rows import add_user, asgi_client, bearer, db, login

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
ACME, OTHER = "111122223333", "444455556666"
PUSH = "/v1/ingest/cloudtrail"


async def new_key(url: str, tenant: str = "acme") -> str:
    async with db(url) as conn:
        return (await create_api_key(conn, tenant, name="test")).key


async def counts(url: str, tenant: str = "acme") -> tuple[int, int]:
    async with db(url) as conn:
        logged = await conn.fetchval("SELECT count(*) FROM log WHERE tenant_id = $1", tenant)
        dead = await conn.fetchval("SELECT count(*) FROM dead_letters WHERE tenant_id = $1", tenant)
    return logged, dead


def archive_files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.json.gz"))


def records_file(records: list[dict[str, Any]], *, gz: bool) -> bytes:
    body = json.dumps({"Records": records}).encode()
    return gzip.compress(body) if gz else body


async def test_R05_envelope_bare_and_batch_log_one_record_and_the_rest_is_skipped_or_refused(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    payloads = json.loads((CASES / "R05.json").read_text())["payloads"]
    key = await new_key(database_url)
    async with asgi_client(database_url, archive_url=str(tmp_path)) as (client, _app):
        answers = [await client.post(PUSH, headers={"X-Api-Key": key}, content=json.dumps(p)) for p in payloads]
    assert [a.status_code for a in answers] == [200, 200, 200, 200, 422]
    bodies = [a.json() for a in answers]
    read_logged_duplicate = [(b["read"], b["logged"], b["duplicate"]) for b in bodies[:4]]
    assert read_logged_duplicate == [(1, 1, 0), (1, 0, 1), (1, 0, 1), (0, 0, 0)]
    assert bodies[3]["skipped"] == {"non_cloudtrail": 1} and bodies[3]["ignored_non_cloudtrail"] == 1
    assert bodies[4]["detail"].startswith("no CloudTrail record in the body: not a CloudTrail record")
    assert "top-level keys: hello" in bodies[4]["detail"]
    assert [r["locator"] for r in bodies[4]["rejected"]] == ["line 1"]
    async with db(database_url) as conn:
        rows = await conn.fetch("SELECT account_id, event_id, event_time, event_name FROM log")
        dead = await conn.fetch("SELECT stage, reason FROM dead_letters")
    assert [tuple(r) for r in rows] == [
        (ACME, "00000000-0000-4000-8000-000000000501", datetime(2024, 5, 1, 10, 30, tzinfo=UTC), "RunInstances")
    ]
    assert [(d["stage"], d["reason"][:26]) for d in dead] == [("read", "not a CloudTrail record: n")]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # body 4 is no error
    assert key not in caplog.text and key not in json.dumps(bodies)  # the push key is never logged or echoed


async def test_gz_file_plain_file_single_record_and_array_batch_give_their_counts(
    database_url: str, tmp_path: Path
) -> None:
    key = await new_key(database_url)
    launches = [run_instances(n, at=T0.replace(minute=n)) for n in range(1, 4)]
    reads = [describe_instances(10, at=T0)]
    plain = [run_instances(n, at=T0.replace(minute=n), region="eu-west-1") for n in range(4, 6)]
    async with asgi_client(database_url, archive_url=str(tmp_path)) as (client, _app):
        gz = await client.post(PUSH, headers={"Authorization": f"Bearer {key}", "Content-Type": "application/gzip"},
                               content=records_file(launches + reads, gz=True))
        flat = await client.post(PUSH, headers={"X-Api-Key": key}, content=records_file(plain, gz=False))
        one = await client.post(PUSH, headers={"X-Api-Key": key}, json=run_instances(6, at=T0))
        array = await client.post(PUSH, headers={"X-Api-Key": key},
                                  json=[run_instances(7, at=T0), run_instances(8, at=T0), launches[0]])
        again = await client.post(PUSH, headers={"X-Api-Key": key}, content=records_file(launches, gz=True))
    summary = [(r.status_code, r.json()["read"], r.json()["logged"], r.json()["duplicate"],
                r.json()["read_only_counted"]) for r in (gz, flat, one, array, again)]
    assert summary == [(200, 4, 3, 0, 1), (200, 2, 2, 0, 0), (200, 1, 1, 0, 0), (200, 3, 2, 1, 0), (200, 3, 0, 3, 0)]
    async with db(database_url) as conn:
        logged = await conn.fetchval("SELECT count(*) FROM log WHERE tenant_id = 'acme'")
        read_only = await conn.fetchval("SELECT sum(events) FROM log_read_only_counts WHERE tenant_id = 'acme'")
        source = await conn.fetchval("SELECT source FROM log WHERE event_id = $1", event_id(6))
    assert (logged, read_only) == (8, 1)
    assert source.startswith("push:") and key.split("_")[1] in source  # the key id, never the key


@pytest.mark.parametrize("how", ["wrong", "revoked", "missing", "jwt"])
async def test_a_bad_key_gets_401_and_nothing_is_logged_or_archived(database_url: str, tmp_path: Path,
                                                                    how: str) -> None:
    key = await new_key(database_url)
    await add_user(database_url, "acme", "alice", "correct horse")
    if how == "revoked":
        async with db(database_url) as conn:
            await revoke_api_key(conn, "acme", key.split("_")[1])
    body = records_file([run_instances(1, at=T0)], gz=True)
    async with asgi_client(database_url, archive_url=str(tmp_path / "archive")) as (client, _app):
        headers = {
            "wrong": {"X-Api-Key": key[:-4] + "AAAA"},
            "revoked": {"X-Api-Key": key},
            "missing": {},
            "jwt": bearer(await login(client, "alice", "correct horse")),  # a login token is not a push key
        }[how]
        answer = await client.post(PUSH, headers=headers, content=body)
    assert answer.status_code == 401
    assert answer.json() == {"detail": "missing or invalid API key"}
    assert await counts(database_url) == (0, 0)
    assert not (tmp_path / "archive").exists()


async def test_a_body_over_the_limit_gets_413_declared_or_streamed(database_url: str, tmp_path: Path) -> None:
    key = await new_key(database_url)
    big = records_file([run_instances(n, at=T0) for n in range(1, 40)], gz=False)
    assert len(big) > 4096

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the limit is enforced while reading
        for start in range(0, len(big), 1000):
            yield big[start : start + 1000]

    async with asgi_client(database_url, archive_url=str(tmp_path), push_max_bytes=4096) as (client, _app):
        declared = await client.post(PUSH, headers={"X-Api-Key": key}, content=big)
        streamed = await client.post(PUSH, headers={"X-Api-Key": key}, content=chunks())
        small = await client.post(PUSH, headers={"X-Api-Key": key}, json=run_instances(1, at=T0))
    assert (declared.status_code, streamed.status_code, small.status_code) == (413, 413, 200)
    assert declared.json()["detail"] == "body over 4096 bytes (DD0C_PUSH_MAX_BYTES)"
    assert await counts(database_url) == (1, 0)


async def test_a_gzip_body_that_inflates_beyond_the_limit_gets_413(database_url: str, tmp_path: Path) -> None:
    key = await new_key(database_url)
    blanks = gzip.compress(b'{"Records": [' + b" " * 200_000 + b"]}")  # 200 KB of nothing in a few hundred bytes
    assert len(blanks) < 1024
    half = records_file([run_instances(n, at=T0) for n in range(1, 40)], gz=False)  # ~60 KB inflated
    assert 50_000 < len(half) < 100_000
    two_members = gzip.compress(half) + gzip.compress(half)  # multi-member: counted across members
    fits = records_file([run_instances(n, at=T0) for n in range(1, 4)], gz=True)
    async with asgi_client(database_url, archive_url=str(tmp_path), push_max_inflated_bytes=100_000) as (client, _app):
        answers = [await client.post(PUSH, headers={"X-Api-Key": key}, content=body)
                   for body in (blanks, two_members, fits)]
    assert [a.status_code for a in answers] == [413, 413, 200]
    assert answers[0].json()["detail"] == (
        "body inflates beyond 100000 bytes (DD0C_PUSH_MAX_INFLATED_BYTES): send it in smaller parts")
    assert await counts(database_url) == (3, 0)  # only the body that fits


async def test_an_empty_body_and_an_empty_record_list_say_which(database_url: str, tmp_path: Path) -> None:
    key = await new_key(database_url)
    async with asgi_client(database_url, archive_url=str(tmp_path)) as (client, _app):
        empty = await client.post(PUSH, headers={"X-Api-Key": key}, content=b"")
        no_records = await client.post(PUSH, headers={"X-Api-Key": key},
                                       content=gzip.compress(b'{"Records": [' + b" " * 1000 + b"]}"))
    assert (empty.status_code, empty.json()["detail"]) == (422, "no CloudTrail record in the body: empty body")
    assert (no_records.status_code, no_records.json()["detail"]) == (
        422, "no CloudTrail record in the body: no records in it")


async def test_a_record_of_an_unregistered_account_is_rejected_and_the_one_next_to_it_logged(
    database_url: str, tmp_path: Path, secret_key: str
) -> None:
    async with db(database_url) as conn:
        await add_account(conn, SecretBox([secret_key]), "acme", ACME, trail=TrailLocation(bucket="acme-trail"))
    key = await new_key(database_url)
    batch = [run_instances(1, at=T0, account=ACME), run_instances(2, at=T0, account=OTHER),
             describe_instances(3, at=T0, account=OTHER)]
    async with asgi_client(database_url, archive_url=str(tmp_path)) as (client, _app):
        answer = await client.post(PUSH, headers={"X-Api-Key": key}, content=records_file(batch, gz=True))
    assert answer.status_code == 200
    body = answer.json()
    assert (body["read"], body["logged"], body["read_only_counted"]) == (3, 1, 0)
    assert body["rejected"] == [
        {"locator": "record 2",
         "reason": f"account {OTHER} is not registered for tenant acme (eventID {event_id(2)})"},
        {"locator": "record 3",
         "reason": f"account {OTHER} is not registered for tenant acme (eventID {event_id(3)})"},
    ]
    async with db(database_url) as conn:
        logged = await conn.fetch("SELECT account_id, event_id FROM log")
        dead = await conn.fetch("SELECT stage, locator, reason FROM dead_letters ORDER BY id")
        counted = await conn.fetchval("SELECT count(*) FROM log_read_only_counts")
    assert [tuple(r) for r in logged] == [(ACME, event_id(1))]
    assert [(d["stage"], d["locator"]) for d in dead] == [("read", "record 2"), ("read", "record 3")]
    assert dead[0]["reason"] == f"account {OTHER} is not registered for tenant acme (eventID {event_id(2)})"
    assert counted == 0  # the unregistered account's read-only event is not counted either
    # only the admitted record went to the archive
    archived = sorted(p.relative_to(tmp_path).parts[:3] for p in archive_files(tmp_path))
    assert archived == [("acme", "AWSLogs", ACME)]


async def test_file_ingest_applies_the_same_rule_and_a_tenant_without_accounts_accepts_all(
    database_url: str, tmp_path: Path, secret_key: str
) -> None:
    from ops.ingest import ingest

    folder = tmp_path / "in"
    folder.mkdir()
    batch = [run_instances(1, at=T0, account=ACME), run_instances(2, at=T0, account=OTHER),
             describe_instances(3, at=T0, account=OTHER)]
    (folder / "batch.json.gz").write_bytes(records_file(batch, gz=True))
    async with db(database_url) as conn:
        await add_account(conn, SecretBox([secret_key]), "acme", ACME)
        open_report = await ingest(conn, [folder], tenant="newcomer", err=io.StringIO())
        said = io.StringIO()
        closed_report = await ingest(conn, [folder], tenant="acme", err=said)
        dead = await conn.fetch("SELECT locator, reason FROM dead_letters WHERE tenant_id = 'acme' ORDER BY id")
    assert (open_report.total().logged, open_report.total().read_only_counted, open_report.rejected) == (2, 1, 0)
    assert (closed_report.total().logged, closed_report.total().read_only_counted, closed_report.rejected) == (1, 0, 2)
    assert [(d["locator"], d["reason"]) for d in dead] == [
        ("record 2", f"account {OTHER} is not registered for tenant acme (eventID {event_id(2)})"),
        ("record 3", f"account {OTHER} is not registered for tenant acme (eventID {event_id(3)})"),
    ]
    assert f"record 2: account {OTHER} is not registered for tenant acme" in said.getvalue()
