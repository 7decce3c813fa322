"""Fixtures for the agent tests: a PKI per test, an agent token in the test's database."""

from __future__ import annotations

from pathlib import Path

import pytest

from ops.devpki import Pki, make_pki
from projections.db import connect
from streams.ingest_grpc.tokens import create_token

TENANT = "acme"


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path / "pki")


@pytest.fixture
async def token(database_url: str) -> str:
    conn = await connect(database_url)
    try:
        _, token = await create_token(conn, TENANT, "test agent")
    finally:
        await conn.close()
    return token
