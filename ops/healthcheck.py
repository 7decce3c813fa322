"""`python -m ops.healthcheck CHECK [CHECK ...]`: the health checks of compose's dd0c/cost containers.

The image has no curl or wget, and a check must answer within a few seconds whatever the process is doing, so
each check is a short, separate process with a timeout:

* `db`              - `SELECT 1` on DATABASE_URL
* `redis`           - PING on REDIS_URL (its password included)
* `tcp:HOST:PORT`   - a connection is accepted (the ingestion gRPC port, the Kafka broker)
* `http://...`      - an answer below 400 (the API's /v1/health)

Exit status 0 when every check passes; otherwise 1, with one line per failed check on stderr (what docker
shows in `docker inspect` and `docker compose ps`).
"""

from __future__ import annotations

import asyncio
import socket
import sys
import urllib.error
import urllib.request
from collections.abc import Callable

import asyncpg
import redis

from ops.settings import load_settings

TIMEOUT = 3.0


class CheckFailed(Exception):
    """One check did not pass; the message says which and why."""


def check_db() -> None:
    url = load_settings().database_url
    if not url:
        raise CheckFailed("DATABASE_URL is not set")

    async def probe() -> None:
        conn = await asyncpg.connect(url, timeout=TIMEOUT)
        try:
            await conn.fetchval("SELECT 1", timeout=TIMEOUT)
        finally:
            await conn.close(timeout=TIMEOUT)

    asyncio.run(probe())


def check_redis() -> None:
    url = load_settings().redis_url
    if not url:
        raise CheckFailed("REDIS_URL is not set")
    client = redis.Redis.from_url(url, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT)
    try:
        if not client.ping():
            raise CheckFailed("redis did not answer PING")
    finally:
        client.close()


def check_tcp(target: str) -> None:
    host, _, port = target.rpartition(":")
    if not host or not port.isdecimal():
        raise CheckFailed(f"tcp check needs tcp:HOST:PORT (got tcp:{target})")
    with socket.create_connection((host, int(port)), timeout=TIMEOUT):
        pass


def check_http(url: str) -> None:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    if status >= 400:
        raise CheckFailed(f"{url} answered {status}")


def resolve(name: str) -> Callable[[], None]:
    if name == "db":
        return check_db
    if name == "redis":
        return check_redis
    if name.startswith("tcp:"):
        return lambda: check_tcp(name[len("tcp:") :])
    if name.startswith(("http://", "https://")):
        return lambda: check_http(name)
    raise CheckFailed(f"unknown check {name!r} (db, redis, tcp:HOST:PORT or an http:// URL)")


def main(argv: list[str] | None = None) -> int:
    names = sys.argv[1:] if argv is None else argv
    if not names:
        print("usage: python -m ops.healthcheck db|redis|tcp:HOST:PORT|http://URL ...", file=sys.stderr)
        return 2
    failed = 0
    for name in names:
        try:
            resolve(name)()
        except (CheckFailed, OSError, TimeoutError, asyncpg.PostgresError, redis.RedisError) as exc:
            print(f"unhealthy: {name}: {exc or type(exc).__name__}", file=sys.stderr)
            failed += 1
        except Exception as exc:  # a health check reports; it never dies with a traceback
            print(f"unhealthy: {name}: {type(exc).__name__}: {exc}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
