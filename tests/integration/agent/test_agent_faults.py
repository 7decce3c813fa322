"""Faults the agent path survives, each ending with every event in the log exactly once.

To stop the stream at a known point, the test opens a transaction that claims the batch id `<agent>:K` in
agent_batches and keeps it open: the server commits batches 1..K-1, then its own claim of batch K waits on the
test's row. Batches K.. are then spooled and unacknowledged. Rolling the test's transaction back lets it go on.
Real processes throughout: `python -m streams.ingest_grpc` and `python -m agent`, TLS with certificates made here.
"""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from agent.spool import Spool
from tests.integration.agent.conftest import TENANT
from tests.integration.agent.support import (
    Pki,
    Proc,
    TcpProxy,
    agent_argv,
    agent_env,
    free_port,
    log_counts,
    server_env,
    start_server,
    wait_for,
    write_corpus,
)

pytestmark = pytest.mark.integration

FILES, PER_FILE, READS_EVERY = 20, 50, 5  # 1000 records: 800 RunInstances stored, 200 DescribeInstances counted
BATCH_BYTES = "1024"  # each file (~3 kB gzipped, sent whole) fills a batch: 20 batches, batch n = file n
STORED, COUNTED = 800, 200


async def _hold_claim(url: str, agent_id: str, seq: int) -> asyncpg.Connection:
    """Claim batch `seq` in an open transaction: the server's own claim of it waits until this one ends."""
    conn = await asyncpg.connect(url)
    await conn.execute("BEGIN")
    await conn.execute(
        "INSERT INTO agent_batches (tenant_id, batch_id, token_id) VALUES ($1, $2, 'test')", TENANT, f"{agent_id}:{seq}"
    )
    return conn


async def _server_waits_on_claim(url: str) -> bool:
    conn = await asyncpg.connect(url)
    try:
        waiting = await conn.fetchval(
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
            " WHERE NOT l.granted AND a.datname = current_database()"
        )
        return bool(waiting)
    finally:
        await conn.close()


def _spool_state(spool_dir: Path) -> dict[str, int]:
    spool = Spool(spool_dir)
    try:
        return spool.counts()
    finally:
        spool.close()


async def _assert_exactly_once(url: str) -> None:
    counts = await log_counts(url)
    assert counts["rows"] == STORED  # 800 RunInstances, each once
    assert counts["event_ids"] == STORED
    assert counts["read_only"] == COUNTED  # 200 DescribeInstances counted once: no batch was appended twice
    assert counts["batches"] == FILES  # 20 batch ids claimed
    assert counts["dead_letters"] == 0


async def test_server_killed_mid_stream_every_event_once(database_url: str, token: str, pki: Pki,
                                                         tmp_path: Path) -> None:
    trail, spool_dir = tmp_path / "trail", tmp_path / "spool"
    write_corpus(trail, FILES, PER_FILE, reads_every=READS_EVERY)
    agent_id = Spool(spool_dir).agent_id
    port = free_port()
    env = server_env(database_url, port, pki)
    server = await start_server(env, tmp_path / "server.log")
    holder = await _hold_claim(database_url, agent_id, 5)
    agent = Proc(agent_argv("--once", "--dir", str(trail)),
                 agent_env(token, port, spool_dir, pki, batch_bytes=BATCH_BYTES, max_unacked="4"),
                 tmp_path / "agent.log")
    try:
        await wait_for(lambda: _server_waits_on_claim(database_url), "the server to wait on batch 5")
        expected = {"sources": 8, "complete": 8, "acked": 4, "unacked_batches": 4}
        await wait_for(lambda: _spool_state(spool_dir) == expected, "files 1-4 acked, batches 5-8 spooled, unacked",
                       explain=lambda: agent.output[-2000:])
        assert (await log_counts(database_url))["batches"] == 4  # batches 1-4 committed before the kill
        server.kill9()
        await holder.execute("ROLLBACK")
        await wait_for(lambda: "reconnecting in" in agent.output, "the agent to notice", explain=lambda: agent.output)
        server = await start_server(env, tmp_path / "server.log")
        assert await agent.exited() == 0, agent.output[-3000:]
    finally:
        await holder.close()
        server.terminate()
        if agent.proc.poll() is None:
            agent.kill9()
    assert "resending 4 spooled batch(es)" in agent.output
    await _assert_exactly_once(database_url)
    assert _spool_state(spool_dir) == {"sources": 20, "complete": 20, "acked": 20, "unacked_batches": 0}


async def test_agent_killed_with_spool_resends_after_restart(database_url: str, token: str, pki: Pki,
                                                             tmp_path: Path) -> None:
    trail, spool_dir = tmp_path / "trail", tmp_path / "spool"
    write_corpus(trail, FILES, PER_FILE, reads_every=READS_EVERY)
    agent_id = Spool(spool_dir).agent_id
    port = free_port()
    server = await start_server(server_env(database_url, port, pki), tmp_path / "server.log")
    holder = await _hold_claim(database_url, agent_id, 3)
    env = agent_env(token, port, spool_dir, pki, batch_bytes=BATCH_BYTES, max_unacked="4")
    agent = Proc(agent_argv("--once", "--dir", str(trail)), env, tmp_path / "agent1.log")
    try:
        await wait_for(lambda: _server_waits_on_claim(database_url), "the server to wait on batch 3")
        # files 1 and 2 (batches 1 and 2) acknowledged; batches 3-6 spooled, unacknowledged; files 7.. not read
        expected = {"sources": 6, "complete": 6, "acked": 2, "unacked_batches": 4}
        await wait_for(lambda: _spool_state(spool_dir) == expected, "batches 3-6 spooled, unacked",
                       explain=lambda: agent.output[-2000:])
        agent.kill9()
        assert (await log_counts(database_url))["batches"] == 2
        await holder.execute("ROLLBACK")  # the server may now append batch 3 of the dead agent: a resend must not
        again = Proc(agent_argv("--once", "--dir", str(trail)), env, tmp_path / "agent2.log")
        assert await again.exited() == 0, again.output[-3000:]
    finally:
        await holder.close()
        server.terminate()
    assert "holds 4 unacknowledged batch(es)" in again.output
    assert "resending 4 spooled batch(es)" in again.output
    await _assert_exactly_once(database_url)
    assert _spool_state(spool_dir) == {"sources": 20, "complete": 20, "acked": 20, "unacked_batches": 0}


async def test_network_cut_reconnects_with_backoff(database_url: str, token: str, pki: Pki, tmp_path: Path) -> None:
    trail, spool_dir = tmp_path / "trail", tmp_path / "spool"
    write_corpus(trail, FILES, PER_FILE, reads_every=READS_EVERY)
    agent_id = Spool(spool_dir).agent_id
    port = free_port()
    server = await start_server(server_env(database_url, port, pki), tmp_path / "server.log")
    proxy = TcpProxy(port)
    await proxy.start()
    holder = await _hold_claim(database_url, agent_id, 4)
    agent = Proc(agent_argv("--once", "--dir", str(trail)),
                 agent_env(token, proxy.port, spool_dir, pki, batch_bytes=BATCH_BYTES, max_unacked="4",
                           server_name="localhost"),
                 tmp_path / "agent.log")
    try:
        await wait_for(lambda: _server_waits_on_claim(database_url), "the server to wait on batch 4")
        await proxy.cut()  # connections reset, nothing listening: every reconnect is refused until start()
        await wait_for(lambda: "(attempt 3," in agent.output, "three reconnect attempts",
                       explain=lambda: agent.output[-2000:])
        await holder.execute("ROLLBACK")
        await proxy.start()
        assert await agent.exited() == 0, agent.output[-3000:]
    finally:
        await holder.close()
        await proxy.cut()
        server.terminate()
    attempts = [line for line in agent.output.splitlines() if "reconnecting in" in line]
    assert "(attempt 1," in attempts[0] and "(attempt 2," in attempts[1] and "(attempt 3," in attempts[2]
    # backoff 0.1 s doubling, jittered into [d/2, d): attempt 3 waits 0.2-0.4 s, more than attempt 1's 0.05-0.1 s
    # (the log shows two decimals, so the bounds are inclusive here)
    delays = [float(line.split("reconnecting in ")[1].split(" s")[0]) for line in attempts[:3]]
    assert 0.05 <= delays[0] <= 0.1 and 0.1 <= delays[1] <= 0.2 and 0.2 <= delays[2] <= 0.4
    assert proxy.connections >= 2  # it came back through the proxy
    await _assert_exactly_once(database_url)
