"""Fixtures for the accounts / push / archive tests: a moto server over HTTP on a free loopback port, a Fernet key,
settings that point boto3 at moto, and a push API key.

moto runs in server mode (ThreadedMotoServer: a real HTTP server in a thread); the code under test reaches it only
through DD0C_AWS_ENDPOINT_URL, as it would reach MinIO or AWS. The fake credentials below are set in the
environment for the test only (monkeypatch), so nothing can fall back to a real AWS profile.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.fernet import Fernet
from moto.server import ThreadedMotoServer

from ops.settings import Settings
from tests.integration.test_api_rows import SECRET


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake ambient credentials (moto accepts any) and no shared config: never a real profile."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAAMBIENT000000000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "ambient-secret-not-used-by-aws")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/dd0c-test-aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/dd0c-test-aws-credentials")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)


@pytest.fixture
def secret_key() -> str:
    return Fernet.generate_key().decode()


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"database_url": database_url, "jwt_secret": SECRET, "mode": "production"}
    values.update(overrides)
    return Settings(**values)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"
