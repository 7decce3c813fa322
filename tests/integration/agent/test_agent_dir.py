"""A directory through the agent: every event once, new files picked up, and the same outcome as `dd0c-cost ingest`
for the awkward cases (R01 digest, R02 plain JSON named .gz, a truncated object)."""

from __future__ import annotations

import gzip
import io
import json
import zlib
from pathlib import Path

import asyncpg
import orjson
import pytest

from agent.spool import Spool
from ops.ingest import ingest
from projections.db import connect
from tests.conftest import CASES, _create_database, _drop_database
from tests.integration.agent.conftest import TENANT
from tests.integration.agent.support import (
    Pki,
    Proc,
    agent_argv,
    agent_env,
    free_port,
    log_counts,
    records,
    server_env,
    start_server,
    wait_for,
    write_corpus,
    write_delivery,
)

pytestmark = pytest.mark.integration


async def test_directory_lands_exactly_once_and_is_not_read_twice(database_url: str, token: str, pki: Pki,
                                                                   tmp_path: Path) -> None:
    trail, spool_dir = tmp_path / "trail", tmp_path / "spool"
    total = write_corpus(trail, 12, 50, reads_every=5)  # 600 records, ids 1..600; every 5th read-only: 120
    port = free_port()
    server = await start_server(server_env(database_url, port, pki), tmp_path / "server.log")
    env = agent_env(token, port, spool_dir, pki, batch_records="100", whole_file_bytes="0")  # split every file
    try:
        first = Proc(agent_argv("--once", "--dir", str(trail)), env, tmp_path / "agent1.log")
        assert await first.exited() == 0, first.output[-3000:]
        second = Proc(agent_argv("--once", "--dir", str(trail)), env, tmp_path / "agent2.log")
        assert await second.exited() == 0, second.output[-3000:]
    finally:
        server.terminate()
    assert total == 600
    counts = await log_counts(database_url)
    assert counts == {"rows": 480, "event_ids": 480, "read_only": 120, "batches": 6, "dead_letters": 0}
    # 100 records per batch, across file boundaries
    assert "reader: 0 object(s) sent whole, 12 split (600 record(s)), in 6 batch(es)" in first.output
    # what the server did, summed over its acks (nothing new on the second run)
    assert ("the server logged 480 record(s), found 0 duplicate(s), counted 120 read-only, rejected 0, skipped 0 "
            "document(s)") in first.output
    # every file remembered as acknowledged: nothing read again
    assert "reader: 0 object(s) sent whole, 0 split (0 record(s)), in 0 batch(es)" in second.output
    assert "the server logged 0 record(s), found 0 duplicate(s)" in second.output
    spool = Spool(spool_dir)
    try:
        assert spool.counts() == {"sources": 12, "complete": 12, "acked": 12, "unacked_batches": 0}
    finally:
        spool.close()
    conn = await asyncpg.connect(database_url)
    try:
        tenants = await conn.fetch("SELECT DISTINCT tenant_id FROM log")
        first_source = await conn.fetchval("SELECT source FROM log WHERE event_id = $1",
                                           "00000000-0000-4000-8000-000000000001")
    finally:
        await conn.close()
    assert [r["tenant_id"] for r in tenants] == [TENANT]  # the token's tenant
    assert first_source == str(trail / "111122223333_CloudTrail_us-east-1_20240501T0901Z_0000000000000001.json.gz")


async def test_once_on_a_missing_directory_exits_1_naming_it(token: str, pki: Pki, tmp_path: Path) -> None:
    missing = tmp_path / "trial"  # e.g. a typo of "trail": a one-shot run must not report success
    env = agent_env(token, free_port(), tmp_path / "spool", pki)  # nothing to send, so no server is needed
    agent = Proc(agent_argv("--once", "--dir", str(missing)), env, tmp_path / "agent.log")
    assert await agent.exited() == 1, agent.output[-3000:]
    assert f"reading the sources failed: FileNotFoundError: source directory {missing} does not exist" in agent.output
    not_a_dir = tmp_path / "file.json"
    not_a_dir.write_text("{}")
    again = Proc(agent_argv("--once", "--dir", str(not_a_dir)), env, tmp_path / "agent2.log")
    assert await again.exited() == 1, again.output[-3000:]
    assert f"source directory {not_a_dir} is not a directory" in again.output


async def test_watches_the_directory_for_new_files(database_url: str, token: str, pki: Pki, tmp_path: Path) -> None:
    trail = tmp_path / "trail"
    write_corpus(trail, 2, 10)  # ids 1..20
    port = free_port()
    server = await start_server(server_env(database_url, port, pki), tmp_path / "server.log")
    agent = Proc(agent_argv("--dir", str(trail), "--poll-interval", "0.2"),
                 agent_env(token, port, tmp_path / "spool", pki), tmp_path / "agent.log")
    try:
        await wait_for(lambda: _rows_are(database_url, 20), "the first 20 events", explain=lambda: agent.output)
        write_delivery(trail, 3, records(21, 15))  # a new delivery file appears: ids 21..35
        await wait_for(lambda: _rows_are(database_url, 35), "the new file's 15 events", explain=lambda: agent.output)
        assert agent.terminate() == 0  # SIGTERM: a clean stop
    finally:
        server.terminate()
    assert (await log_counts(database_url))["event_ids"] == 35


async def _rows_are(url: str, n: int) -> bool:
    return (await log_counts(url))["rows"] == n


def _case_directory(root: Path) -> dict[str, Path]:
    """R02 as delivered (plain JSON named .json.gz) and gzipped under a name without .gz, R01 (a digest) under a
    log-file name and in a CloudTrail-Digest folder, a truncated gzip object, and a good file."""
    day = root / "AWSLogs" / "111122223333" / "CloudTrail" / "us-east-1" / "2024" / "05" / "01"
    digests = root / "AWSLogs" / "111122223333" / "CloudTrail-Digest" / "us-east-1" / "2024" / "05" / "01"
    day.mkdir(parents=True)
    digests.mkdir(parents=True)
    r02 = (CASES / "R02.json.gz").read_bytes()
    r01 = (CASES / "R01.json.gz").read_bytes()
    raw = orjson.dumps({"Records": records(301, 3)})
    cut = raw.index(b'"eventID":"00000000-0000-4000-8000-000000000303"')
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
    truncated = compressor.compress(raw[:cut]) + compressor.flush(zlib.Z_SYNC_FLUSH)  # no gzip trailer
    files = {
        "r02_plain": day / "111122223333_CloudTrail_us-east-1_20240501T0905Z_r02plain.json.gz",
        "r02_gzip": day / "111122223333_CloudTrail_us-east-1_20240501T0910Z_r02gzip.json",
        "digest_by_content": day / "111122223333_CloudTrail_us-east-1_20240501T0915Z_digest.json.gz",
        "digest_folder": digests / "111122223333_CloudTrail-Digest_us-east-1_trail_us-east-1_20240501T1200Z.json.gz",
        "truncated": day / "111122223333_CloudTrail_us-east-1_20240501T0920Z_trunc.json.gz",
        "good": day / "111122223333_CloudTrail_us-east-1_20240501T0925Z_good.json.gz",
    }
    files["r02_plain"].write_bytes(r02)
    files["r02_gzip"].write_bytes(gzip.compress(r02, mtime=0))
    files["digest_by_content"].write_bytes(r01)
    files["digest_folder"].write_bytes(r01)
    files["truncated"].write_bytes(truncated)
    files["good"].write_bytes(gzip.compress(orjson.dumps({"Records": records(401, 5)}), mtime=0))
    assert r02[:2] != b"\x1f\x8b"  # the case really is plain JSON behind a .gz name
    return files


async def _outcome(url: str) -> dict[str, object]:
    conn = await connect(url)
    try:
        logged = await conn.fetch("SELECT event_id, account_id, event_name, source FROM log ORDER BY event_id")
        dead = await conn.fetch("SELECT stage, source, locator, reason FROM dead_letters ORDER BY source, locator")
    finally:
        await conn.close()
    return {"log": [tuple(r) for r in logged], "dead_letters": [tuple(r) for r in dead]}


async def test_cases_r01_r02_truncated_as_ingest_does(database_url: str, token: str, pki: Pki,
                                                      tmp_path: Path) -> None:
    trail = tmp_path / "trail"
    files = _case_directory(trail)
    port = free_port()
    server = await start_server(server_env(database_url, port, pki), tmp_path / "server.log")
    try:
        agent = Proc(agent_argv("--once", "--dir", str(trail)), agent_env(token, port, tmp_path / "spool", pki),
                     tmp_path / "agent.log")
        assert await agent.exited() == 0, agent.output[-3000:]
    finally:
        server.terminate()
    through_agent = await _outcome(database_url)

    # The same directory through `dd0c-cost ingest`'s code, into a database of its own.
    other = await _create_database()
    try:
        conn = await connect(other)
        try:
            report = await ingest(conn, [trail], tenant=TENANT, err=io.StringIO())
        finally:
            await conn.close()
        through_ingest = await _outcome(other)
    finally:
        await _drop_database(other)

    assert through_agent == through_ingest
    ids = [row[0] for row in through_agent["log"]]  # type: ignore[index, union-attr]
    # R02 once (its gzipped copy is a duplicate), the truncated file's 2 whole records, the good file's 5
    assert ids == ["00000000-0000-4000-8000-000000000201",
                   "00000000-0000-4000-8000-000000000301", "00000000-0000-4000-8000-000000000302",
                   *(f"00000000-0000-4000-8000-{n:012d}" for n in range(401, 406))]
    dead = through_agent["dead_letters"]
    assert len(dead) == 1  # type: ignore[arg-type]
    stage, source, _, reason = dead[0]  # type: ignore[index]
    assert (stage, source) == ("read", str(files["truncated"]))
    assert "truncated" in reason.lower()
    assert report.total().skipped == {"digest": 1}  # ingest: the digest under a log-file name, by its content
    conn = await asyncpg.connect(database_url)
    try:
        totals = json.loads(await conn.fetchval(
            "SELECT json_build_object('skipped', sum((result->>'skipped')::int),"
            " 'duplicate', sum((result->>'duplicate')::int), 'rejected', sum((result->>'rejected')::int))::text"
            " FROM agent_batches"))
    finally:
        await conn.close()
    assert totals == {"skipped": 1, "duplicate": 1, "rejected": 1}  # the same through the agent
    assert "the server rejected 1 record(s) (see `dd0c-cost dead-letters`" in agent.output  # said on both sides
    assert str(files["digest_folder"]) not in agent.output  # the CloudTrail-Digest folder is not even walked
