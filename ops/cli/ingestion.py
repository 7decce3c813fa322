"""`dd0c-cost ingestion`: the ingestion service - trail-bucket pollers on a schedule, the agents' gRPC server,
GET /healthz and GET /metrics (Prometheus) on DD0C_INGESTION_HOST:DD0C_INGESTION_PORT."""

from __future__ import annotations

import argparse
import asyncio

from ops.cli.args import positive


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "ingestion",
        help="run the ingestion service: S3 pollers on a schedule, the gRPC server, health and metrics",
        description="Poll the trail bucket of every registered account (yesterday's and today's UTC day folders) "
        "every DD0C_POLL_INTERVAL seconds, run the agents' gRPC server, and serve /healthz and /metrics. "
        "SIGTERM finishes the object being read, then exits.",
    )
    p.add_argument("--interval", type=positive(float), help="seconds between polls (default: DD0C_POLL_INTERVAL)")
    p.add_argument("--port", type=int, help="health/metrics port (default: DD0C_INGESTION_PORT; 0 = any free port)")
    p.add_argument("--no-grpc", action="store_true", help="do not run the gRPC server (default: DD0C_INGESTION_GRPC)")
    p.add_argument("--once", action="store_true", help="poll once, then exit (status 1 if anything failed)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ops.ingestion import IngestionService, on_stop_signals
    from ops.runtime import database_url
    from ops.settings import load_settings
    from projections.db import create_pool
    from streams.archive import open_archive
    from streams.log.writer import open_log_writer
    from streams.poller.poll import Poller

    settings = load_settings()
    updates: dict[str, object] = {}
    if args.interval is not None:
        updates["poll_interval"] = args.interval
    if args.port is not None:
        updates["ingestion_port"] = args.port
    settings = settings.model_copy(update=updates)

    async def main() -> int:
        stop = asyncio.Event()
        on_stop_signals(stop)
        pool = await create_pool(database_url())
        try:
            async with open_log_writer(pool, settings) as writer:
                poller = Poller(
                    pool, writer, keep_read_only=settings.keep_read_only, stop=stop,
                    archive=open_archive(settings) if settings.ingestion_archive else None,
                )
                service = IngestionService(pool, poller, settings, grpc=settings.ingestion_grpc and not args.no_grpc)
                await service.start()
                try:
                    last = await service.run(once=args.once)
                finally:
                    await service.close()
        finally:
            await pool.close()
        return 0 if not args.once or last is None or last.ok else 1

    return asyncio.run(main())
