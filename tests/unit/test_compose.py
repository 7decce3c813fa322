"""compose.yaml cannot run here (no Docker engine), so its structure is checked instead."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def load() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def test_services_have_healthchecks_and_images() -> None:
    services = load()["services"]
    assert {"postgres", "redis", "migrate", "scorer", "api", "caddy", "kafka"} <= set(services)
    assert services["postgres"]["image"] == "postgres:16-alpine"
    assert services["redis"]["image"] == "redis:7-alpine"
    assert services["caddy"]["image"] == "caddy:2-alpine"
    for name, svc in services.items():
        if name != "migrate":
            assert "healthcheck" in svc, f"{name} has no healthcheck"


def test_app_services_wait_for_migrations_and_are_built_here() -> None:
    services = load()["services"]
    for name in ("scorer", "api"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert services[name]["build"]["dockerfile"] == "ops/Dockerfile"
        assert services[name]["command"][0] == "dd0c-cost"
    assert services["migrate"]["command"] == ["dd0c-cost", "migrate"]
    assert (ROOT / "ops" / "Dockerfile").is_file()
    assert (ROOT / "ops" / "Caddyfile").is_file()


def test_kafka_is_kraft_and_keeps_the_log_forever() -> None:
    kafka = load()["services"]["kafka"]
    env = kafka["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_LOG_RETENTION_MS"] == -1
    assert kafka["profiles"] == ["scale-out"]
