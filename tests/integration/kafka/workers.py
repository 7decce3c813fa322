"""Helpers for the Kafka worker tests: `dd0c-cost worker` subprocesses on a shared topic, producing with known
offsets, waiting on stored positions, and the Postgres-log reference run to compare projections with.

Waiting is on positions (the checkpoints rows) and row counts, never on sleeps; the deadline only stops a hang.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaProducer

from projections.rows import encode_entry
from schemas.events import LogEntry
from streams.log.kafka import message_key
from streams.log.postgres import storable_record
from streams.runner.kafka import runner_name

ROOT = Path(__file__).resolve().parents[3]
DEADLINE = 120.0  # a guard against a hang, not a speed check (a faust join plus folding takes seconds here)
ASSIGNED = "assigned: stored position"  # streams/runner/kafka.py logs it for each partition it is given


class Workers:
    """`dd0c-cost worker` processes on the Kafka log, started and stopped by the tests (kill -9 included)."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen[bytes]] = []
        self.log_of: dict[int, Path] = {}
        self._started = 0

    def start(self) -> subprocess.Popen[bytes]:
        self._started += 1
        path = self.log_dir / f"worker-{self._started}.log"
        out = path.open("ab")
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "dd0c-cost"), "worker"], cwd=ROOT, env=self.env, stdout=out,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        out.close()
        self.procs.append(proc)
        self.log_of[proc.pid] = path
        return proc

    async def wait_assigned(self, proc: subprocess.Popen[bytes]) -> None:
        """Until the worker has joined the group and been given partitions (its log says so)."""
        deadline = time.monotonic() + DEADLINE
        while ASSIGNED not in self.log_of[proc.pid].read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"worker {proc.pid} was never assigned partitions\n{self.logs()}")
            await asyncio.sleep(0.1)  # a poll interval: the log line is what is waited on

    async def ensure_joined(self, n: int) -> None:
        """`ensure(n)`, then wait until every running worker holds partitions (the rebalance is over)."""
        self.ensure(n)
        for proc in self.alive():
            await self.wait_assigned(proc)

    def alive(self) -> list[subprocess.Popen[bytes]]:
        return [p for p in self.procs if p.poll() is None]

    def ensure(self, n: int) -> None:
        """Exactly n running workers (the newest are stopped first, with SIGTERM: a clean leave)."""
        while len(self.alive()) < n:
            self.start()
        while len(self.alive()) > n:
            self.stop(self.alive()[-1])

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    def kill9(self, proc: subprocess.Popen[bytes]) -> None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    def close(self) -> None:
        for proc in self.procs:
            self.stop(proc)

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in sorted(self.log_dir.glob("worker-*.log")))


def worker_env(bootstrap: str, database_url: str, topic: str, partitions: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DD0C_")}
    env.update(
        DD0C_LOG_URL=f"kafka://{bootstrap}",
        DATABASE_URL=database_url,
        DD0C_KAFKA_TOPIC=topic,
        DD0C_KAFKA_PARTITIONS=str(partitions),
        DD0C_KAFKA_IDEMPOTENT="false",  # tansu grants no producer ids
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


async def produce(bootstrap: str, topic: str, items: Sequence[LogEntry | tuple[bytes, bytes, int]]) -> dict[int, int]:
    """Produce entries (encoded as KafkaLog does, keyed "<tenant>/<account>") and raw (key, value, partition)
    messages, in order; returns the last offset written per partition."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        pending = []
        for item in items:
            if isinstance(item, LogEntry):
                stored = storable_record(item)
                assert isinstance(stored, str), stored
                pending.append(await producer.send(topic, encode_entry(item, stored), key=message_key(item)))
            else:
                key, value, partition = item
                pending.append(await producer.send(topic, value, key=key, partition=partition))
        last: dict[int, int] = {}
        for meta in await asyncio.gather(*pending):
            last[meta.partition] = max(last.get(meta.partition, -1), meta.offset)
        return last
    finally:
        await producer.stop()


async def wait_folded(conn: asyncpg.Connection, topic: str, last: dict[int, int], workers: Workers | None = None
                      ) -> None:
    """Until every partition's stored position reaches the last offset produced to it."""
    deadline = time.monotonic() + DEADLINE
    names = {runner_name(topic, p): offset for p, offset in last.items()}
    while True:
        rows = await conn.fetch("SELECT runner, position FROM checkpoints WHERE runner = ANY($1::text[])",
                                list(names))
        stored = {r["runner"]: r["position"] for r in rows}
        if all(stored.get(name, -1) >= offset for name, offset in names.items()):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"positions {stored} never reached {names}\n{workers.logs() if workers else ''}")
        await asyncio.sleep(0.1)  # a poll interval: the condition above is what is waited on


async def wait_count(conn: asyncpg.Connection, sql: str, args: Sequence[Any], at_least: int,
                     workers: Workers | None = None) -> int:
    deadline = time.monotonic() + DEADLINE
    while True:
        n = int(await conn.fetchval(sql, *args))
        if n >= at_least:
            return n
        if time.monotonic() > deadline:
            raise AssertionError(f"{sql} stayed at {n} < {at_least}\n{workers.logs() if workers else ''}")
        await asyncio.sleep(0.05)


# -- comparing projections --------------------------------------------------------------------------------------

# Per tenant, row by row. Left out, because they are positions or wall-clock by nature and so differ between two
# correct runs: `seq` (the Postgres log's global sequence vs partition<<40|offset on Kafka; also inside the JSON
# documents, stripped below), anomalies.feed_id (a BIGSERIAL: commit order, which differs with 2 workers) and
# baselines.updated_at (now() at the upsert). created_at of cost_events and detected_at of anomalies are kept: they
# come from the entry's ingested_at, so they must be equal.
COMPARED = {
    "cost_events": "SELECT id, account_id, data, severity, created_at, event_id, ordinal, event_time, resource_type,"
    " region, hourly_cost, priced FROM cost_events WHERE tenant_id = $1 ORDER BY id",
    "baselines": "SELECT account_id, resource_type, mean_hourly_cost, stddev, event_count, observed_actors, state"
    " FROM baselines WHERE tenant_id = $1 ORDER BY account_id, resource_type",
    "anomalies": "SELECT id, account_id, resource_type, severity, severity_rank, event_time, detected_at, hourly_cost,"
    " backfill, data FROM anomalies WHERE tenant_id = $1 ORDER BY id",
    "resources": "SELECT account_id, resource_id, resource_type, region, state, hourly_cost, opened_at, changed_at,"
    " data FROM resources WHERE tenant_id = $1 ORDER BY account_id, resource_id",
    "fold_metrics": "SELECT metric, label, value FROM fold_metrics WHERE tenant_id = $1 ORDER BY metric, label",
}


def _strip_seq(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_seq(v) for k, v in value.items() if k != "seq"}
    if isinstance(value, list):
        return [_strip_seq(v) for v in value]
    return value


def _cell(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return _strip_seq(orjson.loads(value))
        except orjson.JSONDecodeError:
            return value
    return _strip_seq(value)


async def projections_of(conn: asyncpg.Connection, tenant: str) -> dict[str, list[tuple[Any, ...]]]:
    return {
        table: [tuple(_cell(v) for v in r) for r in await conn.fetch(sql, tenant)] for table, sql in COMPARED.items()
    }
