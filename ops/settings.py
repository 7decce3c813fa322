"""One validated settings object per deployable (env prefix DD0C_, plus the conventional DATABASE_URL)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.events import Dd0cError

DEFAULT_SECRET = "dd0c-demo-only-secret-change-me-before-production"  # refused outside DD0C_MODE=demo
MIN_SECRET_BYTES = 32  # HS256 signs with a SHA-256 HMAC: a shorter key is weaker than the hash (RFC 7518 3.2)


DEFAULT_DATA_DIR = Path(".dd0c")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DD0C_", extra="ignore")

    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "DD0C_DATABASE_URL")
    )
    redis_url: str | None = Field(default=None, validation_alias=AliasChoices("REDIS_URL", "DD0C_REDIS_URL"))
    data_dir: Path = DEFAULT_DATA_DIR  # embedded Postgres and other local state for the first run
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
    # The agents' gRPC ingestion server (streams/ingest_grpc). TLS unless grpc_insecure; a client CA = mutual TLS.
    grpc_host: str = "127.0.0.1"
    grpc_port: int = Field(default=50051, ge=0, le=65535)
    grpc_tls_cert: Path | None = None  # PEM certificate chain the server presents
    grpc_tls_key: Path | None = None  # its PEM private key
    grpc_client_ca: Path | None = None  # PEM CA bundle: when set, agents must present a certificate it signed
    grpc_insecure: bool = False  # plaintext (no TLS): only for a loopback or an already-encrypted network
    grpc_max_batch_bytes: int = Field(default=32 * 1024 * 1024, ge=1024 * 1024)  # largest batch message accepted
    grpc_batch_retention_hours: float = Field(default=168.0, gt=0)  # how long a batch id is remembered for dedupe
    # Accounts and push (streams/accounts, streams/archive, api/routers/push.py).
    secret_key: SecretStr | None = None  # Fernet key(s), comma-separated, newest first: seals account credentials
    push_max_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)  # a larger push body gets 413
    # ... and a gzipped one that inflates beyond this (a few KB of gzip can hold gigabytes of blanks or records,
    # which the API process would otherwise read into memory)
    push_max_inflated_bytes: int = Field(default=128 * 1024 * 1024, ge=1024)
    archive_url: str | None = None  # raw archive: unset = <data_dir>/archive, a path, or s3://bucket[/prefix]
    aws_endpoint_url: str | None = None  # every boto3 client's endpoint (MinIO, moto in tests); unset = AWS
    # Notifications (streams/notify, `dd0c-cost notify daemon`). Per-tenant webhook URL and recipients live in
    # Postgres (`dd0c-cost notify config`); the SMTP relay and the limits below are per deployment.
    # Base of the links in Slack messages and digests; unset = the API's own address, so a changed
    # DD0C_API_PORT does not leave every link dead. Behind a proxy set it to the address people use.
    public_url: str | None = None
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_from: str = "dd0c-cost@localhost"
    notify_severity_floor: str = "high"  # a tenant's Slack floor until it sets its own flag
    notify_poll_interval: float = Field(default=5.0, gt=0)  # seconds between polls when no NOTIFY arrives
    notify_timeout: float = Field(default=5.0, gt=0)  # seconds per delivery attempt (HTTP or SMTP)
    notify_attempts: int = Field(default=3, ge=1, le=10)  # tries per message before it is recorded failed
    notify_backoff: float = Field(default=1.0, ge=0)  # seconds before the 2nd try, doubled each time
    notify_digest_hour: int = Field(default=8, ge=0, le=23)  # UTC hour after which the daily digest goes out
    breaker_max_alerts: int = Field(default=10, ge=1)  # N: more than N Slack alerts ...
    breaker_window_minutes: float = Field(default=5.0, gt=0)  # ... within M minutes opens the breaker
    breaker_cooldown_minutes: float = Field(default=15.0, gt=0)  # open this long, then half-open (one probe)
    redis_prefix: str = "dd0c"  # key prefix for panic, flags and breakers
    redis_timeout: float = Field(default=1.0, gt=0)  # seconds; a slower Redis counts as down (alerts are held)
    # The ingestion service (`dd0c-cost ingestion`): S3 pollers on a schedule, the gRPC server, health + metrics.
    poll_interval: float = Field(default=60.0, gt=0)  # seconds between two polls of every registered trail bucket
    ingestion_host: str = "127.0.0.1"  # where /healthz and /metrics listen
    ingestion_port: int = Field(default=9108, ge=0, le=65535)
    ingestion_grpc: bool = True  # run the agents' gRPC server in the service (when streams/ingest_grpc is installed)
    ingestion_archive: bool = True  # polled and agent records to the raw archive (DD0C_ARCHIVE_URL), as pushes go

    # Zombie hunter (`dd0c-cost zombies daemon`); check thresholds are per tenant (tenants.zombie_thresholds).
    zombie_interval_hours: float = Field(default=24.0, gt=0)  # time between two hunts of every account: daily
    zombie_home_region: str = "us-east-1"  # where DescribeRegions is asked which regions an account has enabled
    zombie_max_attempts: int = Field(default=5, ge=1, le=20)  # tries of a throttled AWS call (backoff doubles)

    @property
    def link_base(self) -> str:
        """Where people open the dashboard: DD0C_PUBLIC_URL, else this deployment's API address."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.api_host in ("0.0.0.0", "::", "") else self.api_host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.api_port}"

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
        settings = Settings()
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "?"
            variable = _ENV_NAMES.get(field, f"DD0C_{field.upper()}")
            shown = "" if "secret" in field else f" (got {error.get('input')!r})"  # never echo a secret
            problems.append(f"{variable}: {error['msg']}{shown}")
        raise SettingsError("invalid setting " + "; ".join(problems)) from None
    if settings.redis_url is None and settings.database_url is None:
        # The fully embedded first try: use the Redis `dd0c-cost demo` started under the data dir, if it runs.
        from ops.embedded_redis import running_url

        embedded = running_url(settings.data_dir)
        if embedded is not None:
            settings = settings.model_copy(update={"redis_url": embedded})
    return settings


_ENV_NAMES = {"database_url": "DATABASE_URL", "redis_url": "REDIS_URL"}
