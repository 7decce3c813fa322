"""One validated settings object per deployable (env prefix DD0C_, plus the conventional DATABASE_URL)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.events import Dd0cError

DEFAULT_SECRET = "dd0c-demo-only-secret-change-me-before-production"  # refused outside DD0C_MODE=demo
MIN_SECRET_BYTES = 32  # HS256 signs with a SHA-256 HMAC: a shorter key is weaker than the hash (RFC 7518 3.2)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DD0C_", extra="ignore")

    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "DD0C_DATABASE_URL")
    )
    redis_url: str | None = Field(default=None, validation_alias=AliasChoices("REDIS_URL", "DD0C_REDIS_URL"))
    data_dir: Path = Path(".dd0c")  # embedded Postgres and other local state for the first run
    tenant: str = "default"  # the tenant used when a command names none
    mode: Literal["production", "demo"] = "production"  # "demo" allows the default JWT secret
    jwt_secret: SecretStr = SecretStr(DEFAULT_SECRET)
    jwt_ttl_seconds: int = Field(default=3600, ge=60)
    keep_read_only: bool = False  # store read-only events whole instead of counting them
    policy_file: Path | None = None  # TOML scoring policy for the default tenant
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8080, ge=0, le=65535)
    worker_batch: int = Field(default=500, ge=1, le=100_000)
    feed_queue_max: int = Field(default=100, ge=1)  # per websocket client; one this far behind is dropped
    feed_ping_interval: float = Field(default=5.0, gt=0)
    feed_ping_timeout: float = Field(default=5.0, gt=0)
    # The log backend: unset (or postgres://...) = the Postgres `log` table; kafka://host:port[,host:port] = Kafka
    # (streams/log/kafka.py). The Kafka fields below are read only when it is selected.
    log_url: str | None = None
    kafka_topic: str = "dd0c.cloudtrail.raw"  # the raw log topic, keyed by "<tenant>/<account>"
    kafka_partitions: int = Field(default=12, ge=1)  # the most workers that can share the log
    kafka_replication_factor: int = Field(default=1, ge=1)
    kafka_retention_ms: int = -1  # -1 = keep forever: the log is the truth, projections are rebuilt from it
    kafka_idempotent: bool = True  # needs a broker that grants producer ids (Kafka does; the tansu test broker not)
    kafka_connect_attempts: int = Field(default=5, ge=1)  # broker down at start: tries before giving up
    kafka_retry_backoff: float = Field(default=0.5, gt=0)  # seconds before the 2nd try, doubled each time

    def require_real_secret(self) -> None:
        """Called by the API at start-up: outside demo mode the default, an empty or a short secret is refused."""
        if self.mode == "demo":
            return
        secret = self.jwt_secret.get_secret_value()
        if secret == DEFAULT_SECRET:
            raise Dd0cError("DD0C_JWT_SECRET is the built-in default; set a real secret (or DD0C_MODE=demo)")
        if len(secret.encode()) < MIN_SECRET_BYTES:
            raise Dd0cError(
                f"DD0C_JWT_SECRET is {len(secret.encode())} bytes; use at least {MIN_SECRET_BYTES} random bytes "
                "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)"
            )


class SettingsError(Dd0cError):
    """A setting from the environment is invalid; the message names the variable, not the field."""


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "?"
            variable = _ENV_NAMES.get(field, f"DD0C_{field.upper()}")
            shown = "" if "secret" in field else f" (got {error.get('input')!r})"  # never echo a secret
            problems.append(f"{variable}: {error['msg']}{shown}")
        raise SettingsError("invalid setting " + "; ".join(problems)) from None


_ENV_NAMES = {"database_url": "DATABASE_URL", "redis_url": "REDIS_URL"}
