"""The server as the ingestion service embeds it (IngestServer in this process, start/stop): the tenant's account
admission applies to agent batches, and with an archive every batch is archived so that `dd0c-cost ingest` of the
archive gives the same log. Plus `dd0c-cost agent-token`."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import pytest

from ops.devpki import Pki
from ops.ingest import ingest
from ops.ingestion import IngestionService
from ops.settings import Settings
from projections.db import connect, create_pool
from streams.accounts.registry import add_account
from streams.archive import LocalArchive
from streams.ingest_grpc.server import IngestServer
from streams.log.writer import open_log_writer
from streams.poller.poll import Poller
from tests.conftest import _create_database, _drop_database
from tests.integration import ctgen
from tests.integration.agent.conftest import TENANT
from tests.integration.agent.support import (
    ROOT,
    Proc,
    agent_argv,
    agent_env,
    base_env,
    log_counts,
    records,
    write_corpus,
    write_delivery,
)

pytestmark = pytest.mark.integration
A1, A2 = ctgen.ACCOUNTS


def _settings(database_url: str, pki: Pki) -> Settings:
    return Settings(database_url=database_url, grpc_host="127.0.0.1", grpc_port=0, grpc_tls_cert=pki.server_cert,
                    grpc_tls_key=pki.server_key)


async def test_unregistered_account_rejected_with_reason(database_url: str, token: str, pki: Pki,
                                                         tmp_path: Path) -> None:
    conn = await connect(database_url)
    try:
        await add_account(conn, None, TENANT, A1)  # auth "none" (the process's own credentials): nothing to seal
    finally:
        await conn.close()
    trail = tmp_path / "trail"
    write_delivery(trail, 1, records(1, 10, reads_every=5))  # A1: 8 writes, 2 reads
    write_delivery(trail, 2, records(11, 10, reads_every=5, account=A2))  # A2: not registered
    pool = await create_pool(database_url)
    server = IngestServer(pool, _settings(database_url, pki))
    port = await server.start()
    try:
        agent = Proc(agent_argv("--once", "--dir", str(trail)), agent_env(token, port, tmp_path / "spool", pki),
                     tmp_path / "agent.log")
        assert await agent.exited() == 0, agent.output[-3000:]
    finally:
        await server.stop()
        await pool.close()
    counts = await log_counts(database_url)
    assert (counts["rows"], counts["read_only"], counts["dead_letters"]) == (8, 2, 10)  # all 10 of A2 refused
    conn = await asyncpg.connect(database_url)
    try:
        reasons = await conn.fetch("SELECT DISTINCT stage, reason LIKE $1 AS named FROM dead_letters",
                                   f"account {A2} is not registered for tenant {TENANT}%")
        accounts = await conn.fetch("SELECT DISTINCT account_id FROM log")
    finally:
        await conn.close()
    assert [tuple(r) for r in reasons] == [("read", True)]
    assert [r["account_id"] for r in accounts] == [A1]
    assert server.counters.rejected == 10 and server.counters.logged == 8 and server.counters.batches == 1


async def test_archived_batches_rebuild_the_same_log(database_url: str, token: str, pki: Pki, tmp_path: Path) -> None:
    trail, archive_dir = tmp_path / "trail", tmp_path / "archive"
    write_corpus(trail, 4, 25, reads_every=5)  # 100 records: 80 stored, 20 counted
    delivered = time.time() - 3600  # the files were delivered an hour ago: the server's lag says so
    for path in trail.rglob("*.json*"):
        os.utime(path, (delivered, delivered))
    pool = await create_pool(database_url)
    # Through the ingestion service as `dd0c-cost ingestion` wires it: its one archive serves the agents too.
    settings = _settings(database_url, pki).model_copy(update={"ingestion_port": 0})
    try:
        async with open_log_writer(pool, settings) as writer:
            poller = Poller(pool, writer, archive=LocalArchive(archive_dir))
            service = IngestionService(pool, poller, settings, grpc=True)
            await service.start()
            server = service.grpc_server
            assert server.counters.lag_seconds is None
            try:
                agent = Proc(agent_argv("--once", "--dir", str(trail)),
                             agent_env(token, server.port, tmp_path / "spool", pki), tmp_path / "agent.log")
                assert await agent.exited() == 0, agent.output[-3000:]
            finally:
                await service.close()
    finally:
        await pool.close()
    assert server.counters.lag_seconds is not None and 3600 <= server.counters.lag_seconds < 3600 + 300
    through_agent = await log_counts(database_url)
    assert (through_agent["rows"], through_agent["read_only"]) == (80, 20)
    archived = sorted(archive_dir.rglob("*.json.gz"))
    # one file per (account, region) of each batch, in CloudTrail's layout, holding the delivery files as they came
    assert {tuple(p.name.split("_")[:3]) for p in archived} == {(A1, "CloudTrail", "us-east-1")}
    originals = [p.read_bytes() for p in trail.rglob("*.json.gz")]
    joined = b"".join(p.read_bytes() for p in archived)
    assert all(original in joined for original in originals) and len(joined) == sum(map(len, originals))
    other = await _create_database()
    try:
        conn = await connect(other)
        try:
            report = await ingest(conn, [archive_dir / TENANT], tenant=TENANT, err=io.StringIO())
            ids = {r["event_id"] for r in await conn.fetch("SELECT event_id FROM log")}
        finally:
            await conn.close()
        rebuilt = await log_counts(other)
    finally:
        await _drop_database(other)
    assert report.total().read == 100
    assert (rebuilt["rows"], rebuilt["read_only"]) == (80, 20)
    assert ids == {f"00000000-0000-4000-8000-{n:012d}" for n in range(1, 101) if n % 5}


def _cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ops", *args], env=base_env(database_url), cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)


def test_agent_token_cli_create_list_revoke(sync_database_url: str) -> None:
    made = _cli(sync_database_url, "agent-token", "create", "--tenant", "globex", "--name", "vpc-1")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("dd0c_agent_") and len(token) > 40
    token_id = made.stderr.split("agent token ")[1].split(" ")[0]
    assert token_id.startswith("at_") and "shown only this once" in made.stderr
    listed = _cli(sync_database_url, "agent-token", "list")
    assert listed.stdout.split("\t")[:3] == [token_id, "globex", "vpc-1"] and listed.stdout.rstrip().endswith("active")
    assert token not in listed.stdout
    revoked = _cli(sync_database_url, "agent-token", "revoke", token_id)
    assert revoked.returncode == 0 and f"agent token {token_id} revoked" in revoked.stdout
    again = _cli(sync_database_url, "agent-token", "revoke", token_id)
    assert again.returncode == 1 and f"no active agent token {token_id}" in again.stderr

    async def stored() -> tuple[str, bool]:
        conn = await asyncpg.connect(sync_database_url)
        try:
            row = await conn.fetchrow("SELECT token_sha256, revoked_at IS NOT NULL AS revoked FROM agent_tokens")
            return row["token_sha256"], row["revoked"]
        finally:
            await conn.close()

    import asyncio
    import hashlib

    digest, is_revoked = asyncio.run(stored())
    assert digest == hashlib.sha256(token.encode()).hexdigest() and is_revoked  # only the hash is stored
