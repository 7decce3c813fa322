"""`dd0c-cost api [--host] [--port]`: serve the REST API and the live feed with uvicorn."""

from __future__ import annotations

import argparse

import uvicorn

from ops.cli.args import loopback
from ops.runtime import database_url
from ops.settings import load_settings
from schemas.events import Dd0cError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("api", help="serve the REST API and the websocket feed")
    p.add_argument("--host", help="bind address (default DD0C_API_HOST, 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default DD0C_API_PORT, 8080)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from api.app import create_app, server_config  # FastAPI is only imported by the command that needs it

    settings = load_settings()
    settings.require_real_secret()  # outside demo mode the built-in JWT secret is refused
    host = args.host or settings.api_host
    if settings.mode == "demo" and not loopback(host):
        # the demo secret is in this repository: anyone could sign tokens for an API reachable from elsewhere
        raise Dd0cError(f"demo mode serves on loopback only (got --host {host}); set DD0C_MODE=production "
                        "and a real DD0C_JWT_SECRET to listen on other addresses")
    if not settings.database_url:
        # Resolve it now (DATABASE_URL or the embedded server) so that a missing database is a clear error here,
        # not a failed application start-up inside uvicorn.
        settings = settings.model_copy(update={"database_url": database_url()})
    app = create_app(settings)
    uvicorn.Server(server_config(app, settings, host=args.host, port=args.port)).run()
    return 0
