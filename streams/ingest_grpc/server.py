"""grpc.aio wiring of the Ingest service: authenticate, decode, claim + append + dead-letter, Ack after commit.

Per batch, one Postgres transaction on one connection:
  0. the stream's token must still be valid (share-locked, so a revoke takes effect from the next batch on);
  1. claim (tenant, batch_id) in agent_batches - a resend of a committed batch finds it taken and is acked with
     the first outcome (`resent`), appending nothing; a concurrent copy waits on the row lock, then finds it taken;
  2. with an archive (DD0C_INGESTION_ARCHIVE), write the batch's documents to it as they came (decode builds
     them: one file per account and region);
  3. append the entries through the log writer (streams/log/writer.py; `_BatchPool` hands it this transaction's
     connection, so on Postgres the entries commit with the claim - and on Kafka the read-only counts do);
  4. dead-letter what the reader rejected (or the tenant's account admission refused), with its reason, and
     store the outcome on the claim;
  5. commit, then Ack. A crash anywhere before the commit leaves nothing, and the agent resends the batch.

Within a stream, the next batch is decoded (CPU) while the previous one's transaction waits on Postgres; Acks go
out in the order the batches came in. A wrong or missing token ends the stream with UNAUTHENTICATED before any
batch is read, and a token revoked while the stream is open ends it the same way at its next batch (which stays in
the agent's spool); a failing database ends it with UNAVAILABLE (the agent keeps its spool and reconnects).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextvars import ContextVar
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import asyncpg
import grpc

from ops.settings import Settings, load_settings
from schemas.events import Dd0cError
from schemas.ingest_pb2 import Ack, Batch
from schemas.ingest_pb2_grpc import IngestServicer, add_IngestServicer_to_server
from streams.accounts.admission import load_admission
from streams.archive import RawArchive, write_files_async
from streams.ingest_grpc.batches import Decoded, decode
from streams.ingest_grpc.tokens import TokenOwner, find_token, token_id_of
from streams.log.postgres import dead_letters
from streams.log.writer import open_log_writer

log = logging.getLogger("dd0c.ingest_grpc")

READ_STAGE = "read"  # the dead-letter stage of records the reader could not read (as `dd0c-cost ingest`)
DECODED_AHEAD = 2  # batches decoded ahead of the one being written, per stream
PRUNE_EVERY = 3600.0  # seconds between two prunings of old batch ids
AGENT_HEADER = "x-dd0c-agent"

_STILL_VALID = "SELECT revoked_at IS NULL FROM agent_tokens WHERE token_id = $1 FOR SHARE"

_CLAIM = """
INSERT INTO agent_batches (tenant_id, batch_id, token_id) VALUES ($1, $2, $3)
ON CONFLICT (tenant_id, batch_id) DO NOTHING RETURNING true
"""


class IngestUnavailable(Dd0cError):
    """The server cannot take batches now (the database failed); the agent resends later."""


class TokenRevoked(Dd0cError):
    """The stream's token was revoked while it was open: its next batch is refused, not logged."""


@dataclass
class Counters:
    """Totals since start, for logs and the ingestion service's metrics."""

    streams: int = 0
    refused: int = 0
    batches: int = 0
    resent: int = 0
    logged: int = 0
    duplicate: int = 0
    read_only_counted: int = 0
    rejected: int = 0
    skipped: int = 0
    # Seconds from the delivery of the oldest source in the last committed batch (Part.delivered_at) to its
    # commit; None until an agent sends a delivery time.
    lag_seconds: float | None = None


_HELD: ContextVar[asyncpg.Connection | None] = ContextVar("dd0c_ingest_grpc_held", default=None)


class _Borrowed:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def __aenter__(self) -> asyncpg.Connection:
        return self._conn

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None


class _BatchPool:
    """The pool the log writer is given: inside `_store`, the batch's own connection (in its open transaction, so
    the writer's append becomes a savepoint of it); anywhere else, the real pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    def acquire(self) -> Any:
        held = _HELD.get()
        return _Borrowed(held) if held is not None else self._pool.acquire()


def server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """TLS from the settings (mutual when a client CA is set); None = plaintext, only when asked for."""
    if settings.grpc_insecure:
        return None
    if settings.grpc_tls_cert is None or settings.grpc_tls_key is None:
        raise Dd0cError(
            "the gRPC ingestion server needs DD0C_GRPC_TLS_CERT and DD0C_GRPC_TLS_KEY (PEM files); "
            "set DD0C_GRPC_INSECURE=true to serve plaintext on a trusted network"
        )
    try:
        key, cert = settings.grpc_tls_key.read_bytes(), settings.grpc_tls_cert.read_bytes()
        client_ca = settings.grpc_client_ca.read_bytes() if settings.grpc_client_ca else None
    except OSError as exc:
        raise Dd0cError(f"cannot read a TLS file of the gRPC server: {exc}") from None
    return grpc.ssl_server_credentials([(key, cert)], root_certificates=client_ca,
                                       require_client_auth=client_ca is not None)


class IngestServer:
    """`port = await IngestServer(pool).start()` ... `await server.stop()`; the pool stays the caller's."""

    def __init__(
        self, pool: asyncpg.Pool, settings: Settings | None = None, *, host: str | None = None,
        port: int | None = None, archive: RawArchive | None = None,
    ) -> None:
        self.settings = settings or load_settings()
        self.host = host if host is not None else self.settings.grpc_host
        self.port = port if port is not None else self.settings.grpc_port
        self.counters = Counters()
        self.pool = self._pool = pool
        self.archive = archive  # None: batches are not archived (the caller decides, see streams/archive)
        # keep_read_only explicit: decode's counted entries are only right when the writer counts read-only entries
        self._writer = open_log_writer(_BatchPool(pool), self.settings,  # type: ignore[arg-type]
                                       keep_read_only=self.settings.keep_read_only)
        self._server: grpc.aio.Server | None = None
        self._pruner: asyncio.Task[None] | None = None

    async def start(self) -> int:
        """Listen; returns the bound port (useful with port 0)."""
        credentials = server_credentials(self.settings)
        await self._writer.__aenter__()
        limit = self.settings.grpc_max_batch_bytes
        server = grpc.aio.server(options=[
            ("grpc.max_receive_message_length", limit),
            ("grpc.keepalive_time_ms", 20_000),  # find agents that vanished without closing the connection
            ("grpc.keepalive_timeout_ms", 10_000),
            ("grpc.http2.min_ping_interval_without_data_ms", 5_000),  # agents ping every 10 s (agent/sender.py)
            ("grpc.keepalive_permit_without_calls", 1),
        ])
        add_IngestServicer_to_server(_Servicer(self), server)
        address = f"{self.host}:{self.port}"
        port = server.add_secure_port(address, credentials) if credentials else server.add_insecure_port(address)
        if port == 0:
            raise Dd0cError(f"the gRPC ingestion server cannot listen on {address}")
        await server.start()
        self._server, self.port = server, port
        self._pruner = asyncio.create_task(self._prune_forever(), name="dd0c-ingest-grpc-prune")
        mode = "plaintext" if credentials is None else ("mutual TLS" if self.settings.grpc_client_ca else "TLS")
        log.info("gRPC ingestion server listening on %s:%d (%s, log backend %s)", self.host, port, mode,
                 self._writer.backend)
        return port

    async def stop(self, grace: float | None = 5.0) -> None:
        """Stop taking streams; batches being written get `grace` seconds to commit and be acked."""
        if self._pruner is not None:
            self._pruner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pruner
            self._pruner = None
        if self._server is not None:
            await self._server.stop(grace)
            self._server = None
        await self._writer.close()

    async def wait(self) -> None:
        if self._server is not None:
            await self._server.wait_for_termination()

    async def prune(self) -> int:
        """Forget batch ids older than the retention (a resend that old is deduplicated by eventID only)."""
        hours = self.settings.grpc_batch_retention_hours
        async with self._pool.acquire() as conn:
            status = await conn.execute(
                "DELETE FROM agent_batches WHERE received_at < now() - make_interval(secs => $1)", hours * 3600
            )
        return int(status.split()[-1])

    async def _prune_forever(self) -> None:
        while True:
            try:
                removed = await self.prune()
                if removed:
                    log.info("forgot %d batch ids older than %s h", removed, self.settings.grpc_batch_retention_hours)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("could not prune old batch ids: %s", exc)
            await asyncio.sleep(PRUNE_EVERY)

    async def authenticate(self, metadata: dict[str, str], peer: str) -> TokenOwner | str:
        """The token's owner, or the reason it is refused (in words for both logs)."""
        header = metadata.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return "no agent token (expected metadata 'authorization: Bearer <token>')"
        token = token.strip()
        async with self._pool.acquire() as conn:
            owner = await find_token(conn, token)
        if owner is None:
            return f"unknown or revoked agent token ({token_id_of(token)})"
        return owner

    async def store(self, owner: TokenOwner, batch: Batch, decoded: Decoded) -> Ack:
        """One batch, one transaction (see the module docstring); the Ack it earns once committed."""
        counters = self.counters
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                # Checked per batch, under a share lock: a revoke waits for this batch to commit, and every batch
                # after it is refused - an agent that stays connected does not keep a revoked token alive.
                if not await conn.fetchval(_STILL_VALID, owner.token_id):
                    raise TokenRevoked(f"agent token {owner.token_id} was revoked")
                if not await conn.fetchval(_CLAIM, owner.tenant, batch.batch_id, owner.token_id):
                    first = await conn.fetchval(
                        "SELECT result FROM agent_batches WHERE tenant_id = $1 AND batch_id = $2",
                        owner.tenant, batch.batch_id,
                    )
                    counters.resent += 1
                    return Ack(batch_id=batch.batch_id, sequence=batch.sequence, resent=True, **_ack_fields(first))
                if self.archive is not None:
                    await write_files_async(self.archive, decoded.archive_files)
                held = _HELD.set(conn)
                try:
                    result = await self._writer.append(decoded.entries) if decoded.entries else None
                finally:
                    _HELD.reset(held)
                rejected = [*decoded.rejected, *(result.rejected if result else ())]
                await dead_letters(conn, [(owner.tenant, READ_STAGE, bad) for bad in rejected])
                outcome = {
                    "logged": result.logged if result else 0,
                    "duplicate": result.duplicate if result else 0,
                    "read_only_counted": result.read_only_counted if result else 0,
                    "rejected": len(rejected),
                    "skipped": decoded.skipped,
                }
                await conn.execute(
                    "UPDATE agent_batches SET result = $3 WHERE tenant_id = $1 AND batch_id = $2",
                    owner.tenant, batch.batch_id, outcome,
                )
        except TokenRevoked:
            raise
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, Dd0cError) as exc:  # Dd0cError: the
            # archive or the Kafka log failed; the batch is not acked and comes again
            raise IngestUnavailable(f"{type(exc).__name__}: {exc}") from exc
        counters.batches += 1
        for name, value in outcome.items():
            setattr(counters, name, getattr(counters, name) + value)
        delivered = [part.delivered_at for part in batch.parts if part.delivered_at > 0]
        if delivered:
            counters.lag_seconds = max(0.0, datetime.now(UTC).timestamp() - min(delivered))
        if rejected:
            log.warning("batch %s: %d record(s) rejected to dead letters, first: %s", batch.batch_id,
                        len(rejected), rejected[0].describe())
        return Ack(batch_id=batch.batch_id, sequence=batch.sequence, **outcome)


def _ack_fields(result: Any) -> dict[str, int]:
    doc = result if isinstance(result, dict) else {}
    return {name: int(doc.get(name, 0)) for name in ("logged", "duplicate", "read_only_counted", "rejected",
                                                     "skipped")}


class _Servicer(IngestServicer):
    """Only wiring: authenticate, then decode -> store -> ack, batch after batch."""

    def __init__(self, server: IngestServer) -> None:
        self._server = server

    async def Stream(  # the name protoc gives the RPC
        self, request_iterator: AsyncIterator[Batch], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[Ack]:
        server, peer = self._server, context.peer()
        metadata = {key: value for key, value in context.invocation_metadata() or () if isinstance(value, str)}
        agent = metadata.get(AGENT_HEADER, "?")
        owner = await server.authenticate(metadata, peer)
        if isinstance(owner, str):
            server.counters.refused += 1
            log.warning("refused agent %s at %s: %s", agent, peer, owner)
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, f"dd0c ingestion refused the agent: {owner}")
            return
        server.counters.streams += 1
        log.info("agent %s connected from %s: tenant %s, token %s%s", agent, peer, owner.tenant, owner.token_id,
                 _client_cert(context))
        queue: asyncio.Queue[tuple[Batch, Decoded] | None] = asyncio.Queue(maxsize=DECODED_AHEAD)
        keep = server.settings.keep_read_only

        async def receive() -> None:
            try:
                async for batch in request_iterator:
                    admission = await load_admission(server.pool, owner.tenant)  # per batch: new registrations apply
                    decoded = decode(batch, tenant=owner.tenant, ingested_at=datetime.now(UTC), keep_read_only=keep,
                                     admission=admission, archive_documents=server.archive is not None)
                    await queue.put((batch, decoded))
            finally:
                await queue.put(None)

        receiver = asyncio.create_task(receive())
        acked = 0
        try:
            while (item := await queue.get()) is not None:
                try:
                    ack = await server.store(owner, *item)
                except TokenRevoked as exc:
                    server.counters.refused += 1
                    log.warning("refused agent %s at %s mid-stream: %s; batch %s not logged", agent, peer, exc,
                                item[0].batch_id)
                    await context.abort(grpc.StatusCode.UNAUTHENTICATED, f"dd0c ingestion refused the agent: {exc}")
                    return
                except IngestUnavailable as exc:
                    log.error("agent %s: cannot store batch %s: %s", agent, item[0].batch_id, exc)
                    await context.abort(grpc.StatusCode.UNAVAILABLE, f"dd0c ingestion cannot store batches now: {exc}")
                    return
                acked += 1
                yield ack
            try:
                await receiver  # raises what ended the receiving early, if anything did
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:  # the admission query
                log.error("agent %s: cannot read its accounts' admission: %s", agent, exc)
                await context.abort(grpc.StatusCode.UNAVAILABLE, f"dd0c ingestion cannot store batches now: {exc}")
        finally:
            receiver.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await receiver
            log.info("agent %s at %s: stream ended after %d batch(es)", agent, peer, acked)


def _client_cert(context: grpc.aio.ServicerContext) -> str:
    names = context.auth_context().get("x509_common_name") or []
    return f", client certificate CN={names[0].decode(errors='replace')}" if names else ""


async def serve(
    settings: Settings | None = None, *, pool: asyncpg.Pool | None = None, archive: RawArchive | None = None
) -> None:
    """Run the server until cancelled (the ingestion service runs this as one of its tasks)."""
    from ops.runtime import database_url
    from projections.db import create_pool

    settings = settings or load_settings()
    own_pool = pool is None
    pool = pool or await create_pool(database_url(), min_size=1, max_size=10)
    server = IngestServer(pool, settings, archive=archive)
    try:
        await server.start()
        await server.wait()
    finally:
        await server.stop()
        if own_pool:
            await pool.close()
        log.info("gRPC ingestion server stopped: %s", asdict(server.counters))
