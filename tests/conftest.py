"""Shared fixtures: a fresh, migrated Postgres database per test (random names instead of cleanup), Redis.

Real servers only. TEST_DATABASE_URL / TEST_REDIS_URL point elsewhere; defaults match the CI machine.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from ops.migrate import migrate

ADMIN_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "tests" / "cases"
CORPUS = ROOT / "ops" / "corpus" / "cloudtrail"


def _with_db(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


async def _create_database() -> str:
    name = f"dd0c_test_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(ADMIN_URL)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = _with_db(ADMIN_URL, name)
    await migrate(url)
    return url


async def _drop_database(url: str) -> None:
    name = url.rpartition("/")[2]
    conn = await asyncpg.connect(ADMIN_URL)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture
async def database_url() -> AsyncIterator[str]:
    """A new, migrated database for this test; dropped afterwards."""
    url = await _create_database()
    try:
        yield url
    finally:
        await _drop_database(url)


@pytest.fixture
def sync_database_url() -> Iterator[str]:
    """The same for synchronous tests (CLI subprocesses)."""
    url = asyncio.run(_create_database())
    try:
        yield url
    finally:
        asyncio.run(_drop_database(url))


@pytest.fixture
def redis_url() -> str:
    return REDIS_URL
