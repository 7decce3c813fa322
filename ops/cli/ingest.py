"""`dd0c-cost ingest PATH... [--tenant T]`: append CloudTrail files (or directories of them) to the log."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "ingest",
        help="append CloudTrail log files or directories (S3 layout) to the log",
        description="Read CloudTrail files (plain or gzipped; directories walked recursively, CloudTrail-Digest "
        "skipped), deduplicate, and append them to the log. Exit status 1 when any record was rejected "
        "(the good records are still logged; the bad ones are in dead_letters).",
    )
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="file or directory")
    p.add_argument("--tenant", help="tenant to ingest for (default: DD0C_TENANT, 'default')")
    p.add_argument("--keep-read-only", action="store_true", default=None,
                   help="store read-only events whole instead of counting them (default: DD0C_KEEP_READ_ONLY)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ops.ingest import format_report, ingest
    from ops.runtime import database_url
    from ops.settings import load_settings
    from projections.db import connect
    from streams.log.kafka import KafkaLog, KafkaSpec, is_kafka_url

    async def main() -> int:
        settings = load_settings()
        kafka = None
        if is_kafka_url(settings.log_url):  # the raw topic; claims, counts and dead letters stay in Postgres
            kafka = KafkaLog(KafkaSpec.from_settings(settings), keep_read_only=args.keep_read_only)
            await kafka.start()  # bounded retries; a clear error naming the bootstrap when the broker stays down
        conn = await connect(database_url())
        try:
            report = await ingest(
                conn, args.paths, tenant=args.tenant, keep_read_only=args.keep_read_only, progress=None, kafka=kafka
            )
        finally:
            await conn.close()
            if kafka is not None:
                await kafka.stop()
        print(format_report(report))
        return 0 if report.ok else 1

    return asyncio.run(main())
