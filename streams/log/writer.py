"""One way for every producer (file ingest, HTTP push, the gRPC ingestion server, zombie scans) to append to
the log, whichever backend `DD0C_LOG_URL` selects.

`async with open_log_writer(pool) as log: result = await log.append(entries)` - the same AppendResult either
way. An append returns only when the entries are durable (committed in Postgres / acknowledged by every in-sync
Kafka replica), so a caller may acknowledge its own sender after it returns.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Protocol

import asyncpg

from ops.settings import Settings, load_settings
from schemas.events import LogEntry
from streams.log import postgres
from streams.log.postgres import AppendResult


class LogWriter(Protocol):
    backend: str  # "postgres" | "kafka": shown in logs and metrics

    async def append(self, entries: Sequence[LogEntry]) -> AppendResult: ...

    async def close(self) -> None: ...

    async def __aenter__(self) -> LogWriter: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


class PostgresLogWriter:
    """The log table in the projection database (deduplicated on (tenant, account, eventID) at append)."""

    backend = "postgres"

    def __init__(self, pool: asyncpg.Pool, *, keep_read_only: bool | None = None) -> None:
        self._pool = pool
        self._keep_read_only = keep_read_only

    async def append(self, entries: Sequence[LogEntry]) -> AppendResult:
        async with self._pool.acquire() as conn:
            return await postgres.append(conn, entries, keep_read_only=self._keep_read_only)

    async def close(self) -> None:
        return None  # the pool belongs to the caller

    async def __aenter__(self) -> PostgresLogWriter:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


class KafkaLogWriter:
    """The raw Kafka topic (deduplicated by the workers, see streams/log/kafka.py); read-only counts to `pool`."""

    backend = "kafka"

    def __init__(self, pool: asyncpg.Pool, settings: Settings, *, keep_read_only: bool | None = None) -> None:
        from streams.log.kafka import KafkaLog, KafkaSpec  # aiokafka is only needed when Kafka is selected

        self._log = KafkaLog(KafkaSpec.from_settings(settings), counts=pool, keep_read_only=keep_read_only)
        self._started = False

    async def append(self, entries: Sequence[LogEntry]) -> AppendResult:
        if not self._started:
            await self._log.start()
            self._started = True
        return await self._log.append(entries)

    async def close(self) -> None:
        if self._started:
            self._started = False
            await self._log.stop()

    async def __aenter__(self) -> KafkaLogWriter:
        await self._log.start()
        self._started = True
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


def open_log_writer(
    pool: asyncpg.Pool, settings: Settings | None = None, *, keep_read_only: bool | None = None
) -> PostgresLogWriter | KafkaLogWriter:
    """The writer for the backend the settings select (Postgres unless DD0C_LOG_URL is kafka://...)."""
    from streams.log.kafka import is_kafka_url

    s = settings or load_settings()
    if is_kafka_url(s.log_url):
        return KafkaLogWriter(pool, s, keep_read_only=keep_read_only)
    return PostgresLogWriter(pool, keep_read_only=keep_read_only)
