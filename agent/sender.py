"""The network loop: spooled batches -> the ingestion server's Stream, Acks -> deleted from the spool.

A session is one channel and one Stream call. It first (re)sends every batch in the spool, oldest first - after a
disconnect or a restart, with the ids they were spooled with, so the server acknowledges a batch it already holds
without appending it again - then each batch as the reader thread spools it. At most `max_unacked` batches exist
unacknowledged (the reader waits for a slot), so that is also all that is ever in flight.

A failed session (server gone, network cut, keepalive timeout) is retried after an exponential backoff with
jitter: `backoff_initial * 2^(n-1)`, capped at `backoff_max`, times a random factor in [0.5, 1) so that agents
cut off together do not come back together; it starts again from the first step once a session gets an Ack. A
refused token is not retried: the agent logs why and exits (status 2).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from pathlib import Path

import grpc

from agent.batcher import Window
from agent.settings import AgentSettings
from agent.spool import Spool, Spooled
from schemas.events import Dd0cError
from schemas.ingest_pb2 import DESCRIPTOR, Ack

log = logging.getLogger("dd0c.agent")

AGENT_HEADER = "x-dd0c-agent"  # the agent id, for the server's log lines
MAX_MESSAGE = 32 * 1024 * 1024
_SERVICE = DESCRIPTOR.services_by_name["Ingest"]
STREAM_METHOD = f"/{_SERVICE.full_name}/{_SERVICE.methods_by_name['Stream'].name}"  # /dd0c.ingest.v1.Ingest/Stream
_REFUSED = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)
_TLS_WORDS = ("ssl", "tls", "handshake", "certificate")
_OUTCOME = ("logged", "duplicate", "read_only_counted", "rejected", "skipped")  # Ack fields, in the log line's order


_NAME_MISMATCH = ("hostname verification", "subject alternative name")  # the certificate names another host


def _unverifiable(details: str) -> bool:
    """The failure is this agent refusing the server's certificate (unknown CA, another host name)."""
    lowered = details.lower()
    return any(mark in lowered for mark in ("certificate_verify_failed", "certificate verify failed", *_NAME_MISMATCH))


class Refused(Dd0cError):
    """The server refused this agent's credentials: retrying cannot help."""


class GaveUp(Dd0cError):
    """`--once` could not reach the server in `once_attempts` tries; the spool keeps every batch for the next run."""


def backoff_delay(attempt: int, initial: float, cap: float, rng: random.Random | None = None) -> float:
    """Seconds to wait before reconnect `attempt` (1, 2, ...): exponential, capped, jittered into [d/2, d)."""
    ceiling = min(cap, initial * 2 ** min(attempt - 1, 30))
    return ceiling * (0.5 + 0.5 * (rng or random).random())


def _read(path: Path | None) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as exc:
        raise Dd0cError(f"cannot read {path}: {exc.strerror or exc}") from None


class Sender:
    def __init__(
        self, settings: AgentSettings, spool: Spool, window: Window, wake: asyncio.Event, reading_done: asyncio.Event
    ) -> None:
        self.settings = settings
        self.spool = spool
        self.window = window
        self.wake = wake  # set when a batch is spooled, an ack arrives or reading ends
        self.reading_done = reading_done
        self.acked = 0
        self.resent_acks = 0  # acks saying the server already had the batch
        self.outcome: Counter[str] = Counter()  # what the server did with the records, summed over the acks
        self.sessions = 0
        self._last_progress = False  # the current / last session got an ack: the backoff starts over
        assert settings.token is not None
        self._metadata = (("authorization", f"Bearer {settings.token.get_secret_value()}"),
                          (AGENT_HEADER, spool.agent_id))
        self._credentials = None if settings.insecure else grpc.ssl_channel_credentials(
            root_certificates=_read(settings.ca_file),
            private_key=_read(settings.key_file),
            certificate_chain=_read(settings.cert_file),
        )

    def finished(self) -> bool:
        return self.reading_done.is_set() and self.spool.unacked() == 0

    async def run(self) -> None:
        """Until the sources are read and everything is acked (`--once`), or forever; raises Refused."""
        attempt = 0
        while not self.finished():
            try:
                await self._session()  # returns once the server closed the stream after our done_writing
                if self.finished():
                    break
                code, details = "ENDED", "the server ended the stream early"  # not an error; still back off
            except grpc.aio.AioRpcError as exc:
                if exc.code() in _REFUSED:
                    log.error("the ingestion server at %s refused this agent: %s (check DD0C_AGENT_TOKEN)",
                              self.settings.server, exc.details())
                    raise Refused(f"refused by {self.settings.server}: {exc.details()}") from None
                code, details = exc.code().name, exc.details() or ""
            attempt = 1 if self._last_progress else attempt + 1
            # --once stops at a certificate our side rejected (no retry can change that) or after its attempts.
            why = None
            if _unverifiable(details):
                why = f"giving up on {self.settings.server}: its certificate does not verify"
            elif attempt >= self.settings.once_attempts:
                why = (f"giving up after {attempt} failed connection(s) to {self.settings.server} (--once; "
                       "DD0C_AGENT_ONCE_ATTEMPTS)")
            if self.settings.once and why is not None:
                log.error("connection to %s failed: %s: %s%s", self.settings.server, code, details,
                          self._hint(details))
                raise GaveUp(f"{why}: {code}: {details}{self._hint(details)}; {self.spool.unacked()} batch(es) stay "
                             "in the spool for the next run")
            delay = backoff_delay(attempt, self.settings.backoff_initial, self.settings.backoff_max)
            log.warning("connection to %s failed: %s: %s%s; reconnecting in %.2f s (attempt %d, %d batch(es) "
                        "spooled)", self.settings.server, code, details, self._hint(details), delay, attempt,
                        self.spool.unacked())
            await asyncio.sleep(delay)
        log.info("all batches acknowledged (%d acks, %d of them for batches the server already had); the server "
                 "logged %d record(s), found %d duplicate(s), counted %d read-only, rejected %d, skipped %d "
                 "document(s)", self.acked, self.resent_acks, *(self.outcome[name] for name in _OUTCOME))

    def _hint(self, details: str) -> str:
        """What a failure to connect most likely means, for the log line."""
        lowered = details.lower()
        if any(mark in lowered for mark in _NAME_MISMATCH):
            expected = self.settings.server_name or self.settings.server.rsplit(":", 1)[0]
            return (f" - the server's certificate does not name {expected!r}: set --server-name "
                    "(DD0C_AGENT_SERVER_NAME) to a name in it, or connect by that name")
        if any(word in lowered for word in _TLS_WORDS):
            return (" - a TLS problem: check DD0C_AGENT_CA_FILE / SERVER_NAME against the server's certificate")
        if self._credentials is None and "refused" not in lowered and (
                "socket closed" in lowered or "failed to connect" in lowered):
            # Plaintext against a TLS server: it hangs up on the first bytes, which are not a TLS hello.
            return (" - with --insecure the agent speaks plaintext: if the server uses TLS (it does unless started "
                    "with DD0C_GRPC_INSECURE=true), drop --insecure and give --ca-file")
        if self._credentials is not None and "failed to connect" in lowered and "refused" not in lowered:
            # The server hung up during the TLS handshake: under mutual TLS, it did not accept our certificate.
            return (" - the server closed the connection during the TLS handshake: if it requires client"
                    " certificates (DD0C_GRPC_CLIENT_CA), check DD0C_AGENT_CERT_FILE / KEY_FILE")
        return ""

    def _channel(self) -> grpc.aio.Channel:
        s = self.settings
        options: list[tuple[str, int | str]] = [
            ("grpc.keepalive_time_ms", 10_000),  # a silent cut (no FIN) is noticed within ~15 s
            ("grpc.keepalive_timeout_ms", 5_000),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.max_send_message_length", MAX_MESSAGE),
            ("grpc.enable_retries", 0),  # the spool is the retry: a batch is never half-sent twice by gRPC itself
        ]
        if s.server_name:
            options.append(("grpc.ssl_target_name_override", s.server_name))
        compression = grpc.Compression.Gzip if s.compression else None
        if self._credentials is None:
            return grpc.aio.insecure_channel(s.server, options=options, compression=compression)
        return grpc.aio.secure_channel(s.server, self._credentials, options=options, compression=compression)

    async def _session(self) -> None:
        self.sessions += 1
        self._last_progress = False
        in_flight: dict[int, Spooled] = {}
        async with self._channel() as channel:
            # The spool holds each batch serialized: send those bytes as they are (no request serializer) rather
            # than parse them into a Batch for gRPC to serialize again - a copy less of every batch in memory.
            stream = channel.stream_stream(STREAM_METHOD, request_serializer=None,
                                           response_deserializer=Ack.FromString)
            call = stream(metadata=self._metadata)
            writer = asyncio.create_task(self._write(call, in_flight), name="dd0c-agent-write")
            try:
                async for ack in call:
                    seq = _seq_of(ack.batch_id)
                    if seq is None or in_flight.pop(seq, None) is None:
                        log.warning("ack for a batch not in flight: %s", ack.batch_id)
                        continue
                    if self.spool.ack(seq):
                        self.window.release()
                    self.acked += 1
                    self.resent_acks += ack.resent
                    for name in _OUTCOME:
                        self.outcome[name] += getattr(ack, name)
                    self._last_progress = True
                    log.debug("batch %s acked: %s", ack.batch_id, str(ack).replace("\n", " "))
                    if ack.rejected and not ack.resent:  # the reasons are in the server's dead letters
                        log.warning("batch %s: the server rejected %d record(s) (see `dd0c-cost dead-letters` on the "
                                    "dd0c/cost side)", ack.batch_id, ack.rejected)
                    self.wake.set()
                if writer.done():  # we said done_writing and the server closed: raise what the writer met
                    await writer
                # else the server ended the stream on its own: `finally` stops the writer, run() backs off
            finally:
                writer.cancel()
                try:
                    await writer
                except (asyncio.CancelledError, grpc.aio.AioRpcError, grpc.aio.UsageError):
                    pass

    async def _write(self, call: grpc.aio.StreamStreamCall, in_flight: dict[int, Spooled]) -> None:
        first = True
        while True:
            self.wake.clear()
            pending = self.spool.pending()
            if first and pending:
                log.info("sending to %s: resending %d spooled batch(es), from %s", self.settings.server,
                         len(pending), pending[0].batch_id)
            first = False
            for batch in pending:
                if batch.seq in in_flight:
                    continue
                payload = self.spool.payload(batch.seq)
                if payload is None:  # its file went with an ack whose record a power cut lost: it was acked
                    if self.spool.ack(batch.seq):
                        self.window.release()
                    continue
                in_flight[batch.seq] = batch
                await call.write(payload)
            if self.reading_done.is_set() and not in_flight and self.spool.unacked() == 0:
                await call.done_writing()
                return
            await self.wake.wait()


def _seq_of(batch_id: str) -> int | None:
    _, _, tail = batch_id.rpartition(":")
    return int(tail) if tail.isdigit() else None
