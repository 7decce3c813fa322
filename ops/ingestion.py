"""The ingestion service (`dd0c-cost ingestion`): one process that polls every registered trail bucket on a
schedule, runs the agents' gRPC server (streams/ingest_grpc, when installed and enabled), and answers GET /healthz
and GET /metrics on a small HTTP port.

Metrics, per source ("s3" for the pollers, "grpc" for the agents' server): events in (new log rows), duplicates
(already in the log), rejects (dead-lettered records), read-only events counted, whole documents skipped; for the
pollers also objects read and poll errors; and lag - seconds from delivery to the source (the object's
LastModified, a file's mtime, as the agent reports it per part) to being durable in the log, for the last object
(s3) or the oldest source of the last batch (grpc; absent until an agent has sent one).
The HTTP push endpoint runs in the API process: its counters, under the same names with source="push", are on the
API's /v1/metrics (api/push_metrics.py).

SIGTERM / SIGINT: the poll in progress finishes the object it is reading (its entries, counts and position are
committed together), then the servers stop and the process exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson

from ops.prometheus import MEDIA_TYPE, Family, ingest_families, render
from ops.settings import Settings
from streams.poller.poll import ObjectRead, Poller, PollReport
from streams.poller.source import Target

log = logging.getLogger("dd0c.ingestion")

_HEALTH_TIMEOUT = 2.0
_REQUEST_LIMIT = 8192  # bytes of request head read; these are GETs without bodies


@dataclass
class IngestionMetrics:
    """Counters per source; the HTTP endpoint renders them. Only the event loop thread updates them."""

    events: Counter[str] = field(default_factory=Counter)
    duplicates: Counter[str] = field(default_factory=Counter)
    rejects: Counter[str] = field(default_factory=Counter)
    read_only: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    objects: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    lag: dict[str, float] = field(default_factory=dict)
    polls: int = 0
    last_poll_at: datetime | None = None
    last_poll_errors: list[str] = field(default_factory=list)  # what the latest poll could not read
    grpc_serving: bool = False
    grpc_counters: Any = None  # streams.ingest_grpc.server.Counters of the running server: source "grpc"

    def observe_object(self, read: ObjectRead) -> None:
        r, source = read.report, "s3"
        self.objects[source] += 1
        self.events[source] += r.logged
        self.duplicates[source] += r.duplicate
        self.rejects[source] += r.rejected
        self.read_only[source] += r.read_only_counted
        self.skipped[source] += sum(r.skipped.values())
        if read.lag_seconds is not None:
            self.lag[source] = read.lag_seconds

    def observe_poll(self, report: PollReport, at: datetime) -> None:
        self.polls += 1
        self.errors["s3"] += len(report.errors)
        self.last_poll_at = at
        self.last_poll_errors = list(report.errors)

    def _grpc_lag_known(self) -> bool:
        return self.grpc_counters is not None and self.grpc_counters.lag_seconds is not None

    def families(self) -> list[Family]:
        def per_source(counts: Counter[str] | dict[str, float], grpc_field: str | None = None,
                       ) -> dict[tuple[tuple[str, str], ...], float]:
            samples: dict[tuple[tuple[str, str], ...], float] = {(("source", s),): v for s, v in counts.items()}
            if grpc_field is not None and self.grpc_counters is not None:
                samples[(("source", "grpc"),)] = getattr(self.grpc_counters, grpc_field)
            return samples

        last = self.last_poll_at.timestamp() if self.last_poll_at else 0
        return [
            *ingest_families(
                events=per_source(self.events, "logged"), duplicates=per_source(self.duplicates, "duplicate"),
                rejects=per_source(self.rejects, "rejected"), read_only=per_source(self.read_only, "read_only_counted"),
                skipped=per_source(self.skipped, "skipped"),
            ),
            Family("dd0c_ingest_lag_seconds", "gauge",
                   "Seconds from delivery to the source to durable in the log, for the last object or batch.",
                   per_source(self.lag, "lag_seconds" if self._grpc_lag_known() else None)),
            Family("dd0c_poll_objects_total", "counter", "S3 objects read by the pollers.", per_source(self.objects)),
            Family("dd0c_poll_errors_total", "counter", "S3 listings or reads that failed (retried next poll).",
                   per_source(self.errors)),
            Family("dd0c_polls_total", "counter", "Completed polls of every registered trail bucket.",
                   {(): self.polls}),
            Family("dd0c_poll_last_timestamp_seconds", "gauge", "Unix time the last poll completed (0: none yet).",
                   {(): last}),
            Family("dd0c_grpc_serving", "gauge", "1 while the agents' gRPC server is serving.",
                   {(): int(self.grpc_serving)}),
            Family("dd0c_grpc_batches_total", "counter", "Agent batches committed to the log and acknowledged.",
                   {(): self.grpc_counters.batches if self.grpc_counters is not None else 0}),
        ]


Handler = Callable[[], Awaitable[tuple[int, str, bytes]]]


async def start_http(host: str, port: int, routes: dict[str, Handler]) -> asyncio.Server:
    """A minimal HTTP/1.1 server for GET of a few fixed paths (health and metrics need no framework)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            method, _, rest = head[:_REQUEST_LIMIT].decode("latin-1").partition(" ")
            path = rest.partition(" ")[0].partition("?")[0]
            handler = routes.get(path)
            if method not in ("GET", "HEAD"):
                status, ctype, body = 405, "text/plain", b"method not allowed\n"
            elif handler is None:
                status, ctype, body = 404, "text/plain", b"not found\n"
            else:
                status, ctype, body = await handler()
            reason = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}[status]
            writer.write(
                f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n".encode() + (body if method == "GET" else b"")
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    return await asyncio.start_server(handle, host, port)


class IngestionService:
    """The pollers on a schedule, the optional gRPC server, and the health/metrics endpoint, sharing one pool."""

    def __init__(self, pool: asyncpg.Pool, poller: Poller, settings: Settings, *, grpc: bool) -> None:
        self.pool, self.poller, self.settings = pool, poller, settings
        self.metrics = IngestionMetrics()
        poller.on_object = self.metrics.observe_object
        self.stop = poller.stop
        self.want_grpc = grpc
        self.grpc_server: Any = None
        self.http: asyncio.Server | None = None

    @property
    def http_port(self) -> int:
        assert self.http is not None
        return int(self.http.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self.http = await start_http(
            self.settings.ingestion_host, self.settings.ingestion_port,
            {"/healthz": self._healthz, "/metrics": self._metrics},
        )
        log.info("ingestion: health and metrics on http://%s:%d", self.settings.ingestion_host, self.http_port)
        if self.want_grpc:
            await self._start_grpc()

    async def _start_grpc(self) -> None:
        try:
            from streams.ingest_grpc.server import IngestServer
        except ModuleNotFoundError as exc:
            if not (exc.name or "").startswith("streams.ingest_grpc"):
                raise
            log.warning("ingestion: the gRPC server is not installed (streams.ingest_grpc); polling only")
            return
        # One archive for everything the service receives: what agents send is archived like what it polls
        # (it was not: `ingest` of the archive then rebuilt a log without any agent's records).
        self.grpc_server = IngestServer(self.pool, self.settings, archive=self.poller.archive)
        await self.grpc_server.start()  # logs where it listens
        self.metrics.grpc_serving = True
        self.metrics.grpc_counters = self.grpc_server.counters

    async def run(self, *, once: bool = False) -> PollReport | None:
        """Poll every registered trail bucket, then every `poll_interval` seconds until `stop` is set."""
        from streams.accounts.registry import all_accounts

        last: PollReport | None = None
        while not self.stop.is_set():
            try:
                targets = [t for a in await all_accounts(self.pool) if (t := Target.of_account(a)) is not None]
                last = await self.poller.poll(targets)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                # The database went away mid-poll: what was committed stays, the rest is read next time.
                # /healthz reports it meanwhile; the service itself keeps running.
                if once:
                    raise
                log.error("ingestion: poll failed (%s: %s); retrying in %.0f s", type(exc).__name__, exc,
                          self.settings.poll_interval)
                self.metrics.errors["s3"] += 1
            else:
                self.metrics.observe_poll(last, datetime.now(UTC))
                log.info("ingestion: polled %d account(s): %d object(s) read, %d error(s)%s", len(targets),
                         len(last.objects), len(last.errors), " (stopped)" if last.stopped else "")
            if once:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), self.settings.poll_interval)
        return last

    async def close(self) -> None:
        if self.grpc_server is not None:
            self.metrics.grpc_serving = False
            await self.grpc_server.stop()
            self.grpc_server = None
        if self.http is not None:
            self.http.close()
            await self.http.wait_closed()
            self.http = None

    async def _healthz(self) -> tuple[int, str, bytes]:
        try:
            await asyncio.wait_for(self.pool.fetchval("SELECT 1"), _HEALTH_TIMEOUT)
            database = "ok"
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("healthz: database check failed: %s", exc)
            database = f"error: {type(exc).__name__}"
        m = self.metrics
        # degraded (still 200: the service runs and takes agents) when the latest poll failed somewhere, so a
        # monitor sees a bucket that cannot be read instead of "ok"
        status = "unavailable" if database != "ok" else "degraded" if m.last_poll_errors else "ok"
        doc = {
            "status": status,
            "database": database,
            "polls": m.polls,
            "last_poll_at": m.last_poll_at.isoformat() if m.last_poll_at else None,
            "last_poll_errors": len(m.last_poll_errors),
            "first_errors": m.last_poll_errors[:3],
            "grpc": "serving" if m.grpc_serving else "off",
        }
        return (200 if database == "ok" else 503), "application/json", orjson.dumps(doc)

    async def _metrics(self) -> tuple[int, str, bytes]:
        return 200, MEDIA_TYPE, render(self.metrics.families()).encode()


def on_stop_signals(stop: asyncio.Event) -> None:
    """SIGTERM and SIGINT set `stop`: the object being read is finished, then the process exits."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
