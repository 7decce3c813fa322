"""Fold throughput through the Kafka log with 1 and with 2 worker processes, against the Postgres log, same corpus.

Postgres path: `dd0c-cost ingest` into the `log` table, then `dd0c-cost worker --drain` (wall clock of the child,
process start included). Kafka path: `dd0c-cost ingest` with DD0C_LOG_URL=kafka://... puts the same entries on a
topic of a local tansu broker (the test broker, in-memory); then, for N in (1, 2), N `dd0c-cost worker` processes
fold it into a fresh database. Positions live in Postgres, so a fresh database re-folds the topic from its start
whatever the consumer group committed before. A Kafka run is timed from the first commit seen (the group join,
~5-10 s against tansu, is reported apart) to the moment the dedupe table holds every entry, polled every 0.1 s.

Nothing is pinned: two workers need both cores, and Postgres runs on them too; the Postgres-path fold is run
unpinned as well so that the ratios compare like with like.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg

from ops.bench.common import Server, child_env, corpus, create_database, drop_database, log, run_child

PARTITIONS = 4
ASSIGNED = "assigned: stored position"  # streams/runner/kafka.py logs it for each partition a worker is given
DEADLINE = 1800.0  # seconds for one Kafka fold: a guard against a hung run, not a target
POLL = 0.1


def _cli() -> str:
    return str(Path(sys.executable).parent / "dd0c-cost")


def _kafka_env(url: str, bootstrap: str, topic: str) -> dict[str, str]:
    return child_env(url) | {
        "DD0C_LOG_URL": f"kafka://{bootstrap}",
        "DD0C_KAFKA_TOPIC": topic,
        "DD0C_KAFKA_PARTITIONS": str(PARTITIONS),
        "DD0C_KAFKA_IDEMPOTENT": "false",  # tansu grants no producer ids
    }


async def _count(url: str, sql: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval(sql))
    finally:
        await conn.close()


async def _watch(url: str, entries: int, procs: list[subprocess.Popen[bytes]], logs: list[Path]
                 ) -> dict[str, float | None]:
    """Poll the dedupe table until it holds `entries` rows. Returns the join time, the fold time from the first
    commit, and the rate once every worker holds partitions (a second worker joining later triggers a rebalance,
    during which nobody folds; the settled rate is what N workers sustain)."""
    conn = await asyncpg.connect(url)
    began = time.perf_counter()
    first: float | None = None
    settled: tuple[float, int] | None = None
    try:
        while True:
            n = int(await conn.fetchval("SELECT count(*) FROM kafka_folded"))
            now = time.perf_counter()
            if n and first is None:
                first = now
            if settled is None and all(ASSIGNED in p.read_text(errors="replace") for p in logs):
                settled = (now, n)
            if n >= entries:
                break
            if any(p.poll() is not None for p in procs):
                raise RuntimeError("a Kafka worker exited during the benchmark")
            if now - began > DEADLINE:
                raise RuntimeError(f"Kafka fold stuck at {n:,} of {entries:,} entries")
            await asyncio.sleep(POLL)
    finally:
        await conn.close()
    assert first is not None
    settled_rate = None
    if settled is not None and settled[1] < entries and now > max(settled[0], first):
        settled_rate = (entries - settled[1]) / (now - max(settled[0], first))  # from the first commit at the earliest
    return {"join_s": first - began, "fold_s": now - first, "settled_rate": settled_rate,
            "settled_share": None if settled is None else 1 - settled[1] / entries}


def _fold_kafka(server: Server, bootstrap: str, topic: str, workers: int, entries: int, logs: Path,
                keep: bool) -> dict[str, Any]:
    url = asyncio.run(create_database(server, f"kafka{workers}w"))
    procs: list[subprocess.Popen[bytes]] = []
    paths = [logs / f"worker-{workers}w-{i}.log" for i in range(workers)]
    try:
        env = _kafka_env(url, bootstrap, topic)
        for path in paths:
            with path.open("ab") as out:
                procs.append(subprocess.Popen([_cli(), "worker"], env=env, stdout=out, stderr=subprocess.STDOUT))
        times = asyncio.run(_watch(url, entries, procs, paths))
        cost_events = asyncio.run(_count(url, "SELECT count(*) FROM cost_events"))
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if not keep:
            asyncio.run(drop_database(server, url))
    return {
        "workers": workers,
        "join_seconds": round(times["join_s"], 2),
        "seconds": round(times["fold_s"], 2),
        "records_per_s": round(entries / times["fold_s"]) if times["fold_s"] else None,
        # entries/s once every worker held partitions, over the share of entries folded from then on
        "settled_records_per_s": None if times["settled_rate"] is None else round(times["settled_rate"]),
        "settled_share": None if times["settled_share"] is None else round(times["settled_share"], 3),
        "cost_events": cost_events,
    }


def kafka(server: Server, records: int, *, keep: bool = False) -> dict[str, Any]:
    from tests.kafka_broker import start_tansu, stop_tansu  # the tansu test broker (dev extra)

    where, _manifest, _files = corpus(records)
    logs = Path(tempfile.mkdtemp(prefix="dd0c-bench-kafka-"))
    broker, bootstrap = asyncio.run(start_tansu(logs / "tansu.log"))
    topic = f"dd0c-bench-{uuid.uuid4().hex[:8]}"
    pg_url = asyncio.run(create_database(server, "kafkapg"))
    claims_url = asyncio.run(create_database(server, "kafkaclaims"))
    try:
        log(f"kafka: Postgres path - ingest {records:,} records, then worker --drain")
        ing = run_child([_cli(), "ingest", str(where)], child_env(pg_url), pin=False)
        if ing.returncode not in (0, 1):  # 1: some records rejected (the corpus has a few on purpose)
            raise RuntimeError(f"ingest failed (exit {ing.returncode}): {ing.stderr[-3000:]}")
        entries = asyncio.run(_count(pg_url, "SELECT count(*) FROM log"))
        fold = run_child([_cli(), "worker", "--drain"], child_env(pg_url), pin=False)
        if fold.returncode != 0:
            raise RuntimeError(f"worker --drain failed (exit {fold.returncode}): {fold.stderr[-3000:]}")
        pg_cost_events = asyncio.run(_count(pg_url, "SELECT count(*) FROM cost_events"))
        log(f"kafka: producing the same corpus to {topic} ({PARTITIONS} partitions)")
        produce = run_child([_cli(), "ingest", str(where)], _kafka_env(claims_url, bootstrap, topic), pin=False)
        if produce.returncode not in (0, 1):
            raise RuntimeError(f"ingest to Kafka failed (exit {produce.returncode}): {produce.stderr[-3000:]}")
        runs = []
        for n in (1, 2):
            log(f"kafka: folding {entries:,} entries with {n} worker(s)")
            runs.append(_fold_kafka(server, bootstrap, topic, n, entries, logs, keep))
    finally:
        stop_tansu(broker)
        if not keep:
            for url in (pg_url, claims_url):
                asyncio.run(drop_database(server, url))
    pg_rps = entries / fold.seconds
    one, two = runs
    return {
        "records": records,
        "entries": entries,
        "postgres": {"seconds": round(fold.seconds, 2), "records_per_s": round(pg_rps),
                     "cost_events": pg_cost_events},
        "produce": {"seconds": round(produce.seconds, 2), "records_per_s": round(records / produce.seconds)},
        "kafka_1": one,
        "kafka_2": two,
        "ratio_kafka1_to_postgres": round(one["records_per_s"] / pg_rps, 3),
        "ratio_kafka2_to_postgres": round(two["records_per_s"] / pg_rps, 3),
        "ratio_kafka2_to_kafka1": round(two["records_per_s"] / one["records_per_s"], 3),
        "ratio_kafka2_to_kafka1_settled": (
            round(two["settled_records_per_s"] / one["records_per_s"], 3) if two["settled_records_per_s"] else None
        ),
        "logs": str(logs),
        "cpus": os.cpu_count(),
    }


TARGET_TWO_TO_ONE = 1.6  # the reach: 2 workers >= 1.6x one worker on this 2-core machine


def table_rows(r: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """The summary lines for ops/bench/__main__.py's table: (figure, ours, baseline, target, verdict)."""
    pg, one, two = r["postgres"], r["kafka_1"], r["kafka_2"]
    two_rate = two["settled_records_per_s"] or two["records_per_s"]
    ratio = round(two_rate / one["records_per_s"], 2) if one["records_per_s"] else 0.0
    return [
        (f"fold via Kafka, 1 worker ({r['entries']:,} log entries)",
         f"{one['records_per_s']:,} entries/s (x{r['ratio_kafka1_to_postgres']} of Postgres path)",
         f"Postgres log, worker --drain {pg['records_per_s']:,}/s", "-", "-"),
        ("fold via Kafka, 2 workers (after the rebalance)",
         f"{two_rate:,} entries/s (x{ratio} of 1 worker)",
         f"group join {one['join_seconds']}|{two['join_seconds']} s (1|2 workers, not counted)",
         f">= x{TARGET_TWO_TO_ONE} of 1 worker", "PASS" if ratio >= TARGET_TWO_TO_ONE else "MISS"),
    ]


if __name__ == "__main__":  # python -m ops.bench.kafka [RECORDS]: this part alone
    import json

    from ops.bench.common import find_server

    result = kafka(find_server(Path("bench-out") / "embedded"), int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
    print(json.dumps(result, indent=1))
