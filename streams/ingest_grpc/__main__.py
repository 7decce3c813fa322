"""`python -m streams.ingest_grpc`: the gRPC ingestion server alone (`dd0c-cost ingestion` runs it with the rest).

Settings from the environment (DD0C_GRPC_*, DATABASE_URL, DD0C_LOG_URL); Ctrl-C or SIGTERM stops it gracefully.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys

from schemas.events import Dd0cError
from streams.ingest_grpc.server import serve


async def _main() -> None:
    from ops.settings import load_settings
    from streams.archive import open_archive

    settings = load_settings()  # alone as in the service: received batches go to the raw archive unless turned off
    task = asyncio.create_task(serve(settings, archive=open_archive(settings) if settings.ingestion_archive else None))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(
        prog="python -m streams.ingest_grpc",
        description="The agents' gRPC ingestion server alone (`dd0c-cost ingestion` runs it with the S3 pollers). "
                    "Configured by the environment: DD0C_GRPC_HOST/PORT, DD0C_GRPC_TLS_CERT/KEY (or "
                    "DD0C_GRPC_INSECURE=true), DD0C_GRPC_CLIENT_CA for mutual TLS, DATABASE_URL, DD0C_LOG_URL. "
                    "Ctrl-C or SIGTERM stops it gracefully.",
    ).parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(_main())
    except Dd0cError as exc:
        print(f"dd0c ingestion server: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
