"""One validated settings object per deployable (env prefix DD0C_, plus the conventional DATABASE_URL)."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.events import Dd0cError

DEFAULT_SECRET = "dd0c-demo-only-secret-change-me-before-production"  # refused outside DD0C_MODE=demo


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DD0C_", extra="ignore")

    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "DD0C_DATABASE_URL")
    )
    redis_url: str | None = Field(default=None, validation_alias=AliasChoices("REDIS_URL", "DD0C_REDIS_URL"))
    data_dir: Path = Path(".dd0c")  # embedded Postgres and other local state for the first run
    tenant: str = "default"  # the tenant used when a command names none
    mode: str = "production"  # "demo" allows the default JWT secret; nothing else does
    jwt_secret: SecretStr = SecretStr(DEFAULT_SECRET)
    jwt_ttl_seconds: int = 3600
    keep_read_only: bool = False  # store read-only events whole instead of counting them
    policy_file: Path | None = None  # TOML scoring policy for the default tenant
    api_host: str = "127.0.0.1"
    api_port: int = 8080
    worker_batch: int = 500
    feed_queue_max: int = 100  # per websocket client; a client that falls this far behind is dropped
    feed_ping_interval: float = 5.0
    feed_ping_timeout: float = 5.0
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
        """Called by the API at start-up: outside demo mode a default JWT secret is refused."""
        if self.mode != "demo" and self.jwt_secret.get_secret_value() == DEFAULT_SECRET:
            raise Dd0cError("DD0C_JWT_SECRET is the built-in default; set a real secret (or DD0C_MODE=demo)")


def load_settings() -> Settings:
    return Settings()
