"""Refusals: a wrong token, a client certificate from another CA, none at all under mutual TLS - nothing reaches
the log, and both sides say why. And the right certificate works, naming the agent in the server's log."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

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

NOTHING = {"rows": 0, "event_ids": 0, "read_only": 0, "batches": 0, "dead_letters": 0}


async def test_wrong_token_refused_nothing_logged(database_url: str, token: str, pki: Pki, tmp_path: Path) -> None:
    trail = tmp_path / "trail"
    write_corpus(trail, 2, 10)
    port = free_port()
    server = await start_server(server_env(database_url, port, pki), tmp_path / "server.log")
    try:
        wrong = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
        agent = Proc(agent_argv("--once", "--dir", str(trail)), agent_env(wrong, port, tmp_path / "spool", pki),
                     tmp_path / "agent.log")
        assert await agent.exited() == 2  # refused: not retried
        await wait_for(lambda: "refused agent" in server.output, "the server's log line")
    finally:
        server.terminate()
    assert "refused this agent" in agent.output and "unknown or revoked agent token (at_" in agent.output
    assert "check DD0C_AGENT_TOKEN" in agent.output
    refused = next(line for line in server.output.splitlines() if "refused agent" in line)
    assert "unknown or revoked agent token (at_" in refused and "127.0.0.1" in refused
    assert wrong not in server.output  # the presented token itself is never logged
    assert await log_counts(database_url) == NOTHING


async def test_mutual_tls_right_certificate_accepted(database_url: str, token: str, pki: Pki, tmp_path: Path) -> None:
    trail = tmp_path / "trail"
    write_corpus(trail, 2, 10)
    port = free_port()
    server = await start_server(server_env(database_url, port, pki, mutual=True), tmp_path / "server.log")
    try:
        agent = Proc(agent_argv("--once", "--dir", str(trail)),
                     agent_env(token, port, tmp_path / "spool", pki, cert_file=str(pki.client_cert),
                               key_file=str(pki.client_key)),
                     tmp_path / "agent.log")
        assert await agent.exited() == 0, agent.output[-3000:]
    finally:
        server.terminate()
    assert "(mutual TLS, log backend postgres)" in server.output
    assert "client certificate CN=agent-vpc-1" in server.output
    assert (await log_counts(database_url))["rows"] == 20


@pytest.mark.parametrize("certificate", ["rogue", "none"])
async def test_mutual_tls_wrong_or_missing_certificate_refused(database_url: str, token: str, pki: Pki,
                                                               tmp_path: Path, certificate: str) -> None:
    trail = tmp_path / "trail"
    write_corpus(trail, 2, 10)
    port = free_port()
    server = await start_server(server_env(database_url, port, pki, mutual=True), tmp_path / "server.log")
    extra = {"cert_file": str(pki.rogue_cert), "key_file": str(pki.rogue_key)} if certificate == "rogue" else {}
    agent = Proc(agent_argv("--once", "--dir", str(trail)), agent_env(token, port, tmp_path / "spool", pki, **extra),
                 tmp_path / "agent.log")
    try:
        await wait_for(lambda: "(attempt 2," in agent.output, "the agent to have been refused twice",
                       explain=lambda: agent.output[-2000:])
    finally:
        agent.terminate()
        server.terminate()
    refused = [line for line in agent.output.splitlines() if "reconnecting in" in line]
    assert refused and all("UNAVAILABLE" in line for line in refused)
    assert "check DD0C_AGENT_CERT_FILE / KEY_FILE" in refused[0]  # the agent's side says what to look at
    assert "connected from" not in server.output  # no stream was ever opened: the handshake failed first
    # The server's side: grpc core logs the failed handshake and why (the certificate did not verify / none)
    assert "Handshake failed" in server.output
    assert await log_counts(database_url) == NOTHING


async def test_a_token_revoked_mid_stream_refuses_the_next_batch(database_url: str, token: str, pki: Pki,
                                                                 tmp_path: Path) -> None:
    """An agent that stays connected must not keep a revoked token alive: the batch after the revoke is refused
    (UNAUTHENTICATED, nothing logged, the batch kept in the agent's spool) and the agent stops as for a wrong token."""
    from projections.db import connect
    from streams.ingest_grpc.tokens import revoke_token, token_id_of

    trail = tmp_path / "trail"
    write_delivery(trail, 1, records(1, 10))
    port = free_port()
    server = await start_server(server_env(database_url, port, pki), tmp_path / "server.log")
    agent = Proc(agent_argv("--dir", str(trail)), agent_env(token, port, tmp_path / "spool", pki,
                                                            poll_interval="0.2"), tmp_path / "agent.log")
    try:
        await wait_for(lambda: _rows(database_url, 10), "the first file to be logged", explain=lambda: agent.output)
        conn = await connect(database_url)
        try:
            assert await revoke_token(conn, token_id_of(token)) is True
        finally:
            await conn.close()
        write_delivery(trail, 2, records(11, 10))  # the same open stream sends this one next
        assert await agent.exited() == 2, agent.output[-3000:]
        await wait_for(lambda: "mid-stream" in server.output, "the server's log line")
    finally:
        agent.terminate()
        server.terminate()
    assert (await log_counts(database_url))["rows"] == 10  # nothing after the revoke
    refused = next(line for line in server.output.splitlines() if "mid-stream" in line)
    assert f"agent token {token_id_of(token)} was revoked" in refused
    assert "refused this agent" in agent.output and "was revoked" in agent.output
    assert len(list((tmp_path / "spool").rglob("*.batch"))) == 1  # the refused batch waits for a valid token


async def _rows(database_url: str, want: int) -> bool:
    return (await log_counts(database_url))["rows"] >= want


async def _once_against_a_tls_server(
    database_url: str, tmp_path: Path, pki: Pki, env: dict[str, str]
) -> tuple[Proc, int]:
    """One 10-record file, `--once` with `env` (built for the port given to it) against a TLS server that refuses
    to be reached that way; the agent must exit 1 on its own. Returns the agent and the server's port."""
    trail = tmp_path / "trail"
    write_corpus(trail, 1, 10)
    port = free_port()
    server = await start_server(server_env(database_url, port, pki), tmp_path / "server.log")
    try:
        agent = Proc(agent_argv("--once", "--dir", str(trail)), {**env, "DD0C_AGENT_SERVER": f"127.0.0.1:{port}"},
                     tmp_path / "agent.log")
        assert await agent.exited(within=60) == 1, agent.output[-3000:]
    finally:
        server.terminate()
    assert await log_counts(database_url) == NOTHING
    return agent, port


async def test_once_gives_up_on_a_certificate_that_names_another_host(database_url: str, token: str, pki: Pki,
                                                                        tmp_path: Path) -> None:
    """`--once` against a server whose certificate does not carry the expected name: the hint names the fix, and it
    exits 1 with its batch kept at the first refusal (a certificate does not fix itself between retries)."""
    env = agent_env(token, 0, tmp_path / "spool", pki, server_name="cost.wrong.example", once_attempts="3")
    agent, port = await _once_against_a_tls_server(database_url, tmp_path, pki, env)
    assert "the server's certificate does not name 'cost.wrong.example': set --server-name" in agent.output
    assert f"giving up on 127.0.0.1:{port}: its certificate does not verify" in agent.output
    assert "reconnecting in" not in agent.output  # not retried
    # 0 or 1: it may give up before the reader has spooled the file (then the next run reads the file again)
    assert re.search(r"; [01] batch\(es\) stay in the spool for the next run", agent.output), agent.output[-2000:]


async def test_plaintext_against_a_tls_server_gets_the_insecure_hint(database_url: str, token: str, pki: Pki,
                                                                      tmp_path: Path) -> None:
    """--insecure (plaintext) against a server that speaks TLS: gRPC only says the socket closed; the agent says what
    that most likely means, and --once gives up after DD0C_AGENT_ONCE_ATTEMPTS with nothing logged."""
    env = agent_env(token, 0, tmp_path / "spool", None, once_attempts="2")
    agent, _port = await _once_against_a_tls_server(database_url, tmp_path, pki, env)
    assert "with --insecure the agent speaks plaintext: if the server uses TLS" in agent.output, agent.output[-2000:]
    assert "giving up after 2 failed connection(s)" in agent.output
