"""The agent's one settings object (env prefix DD0C_AGENT_; every field also has a `dd0c-cost-agent` flag)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.events import Dd0cError


class AgentSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DD0C_AGENT_", extra="ignore")

    server: str = "127.0.0.1:50051"  # host:port of the ingestion server (DD0C_GRPC_HOST/PORT there)
    token: SecretStr | None = None  # from `dd0c-cost agent-token create --tenant T`
    # TLS: the CA that signed the server's certificate (unset = the system's roots); a client certificate and
    # key for mutual TLS; the name to expect in the server certificate when it differs from the host in `server`.
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    server_name: str | None = None
    insecure: bool = False  # plaintext: only against a server started with DD0C_GRPC_INSECURE=true
    # Sources (one or more): a directory watched for new files, an S3 bucket (and prefix) listed for new objects,
    # an SQS queue receiving the bucket's object-created notifications.
    dir: Path | None = None
    s3_bucket: str | None = None
    s3_prefix: str = ""
    sqs_queue_url: str | None = None
    aws_region: str | None = None
    aws_endpoint_url: str | None = None  # an S3/SQS-compatible endpoint (MinIO; moto in tests); unset = AWS
    spool: Path = Path(".dd0c-agent")  # the on-disk spool and source positions (one SQLite file inside)
    batch_records: int = Field(default=500, ge=1, le=100_000)  # a batch is cut at this many (split) records ...
    batch_bytes: int = Field(default=2 * 1024 * 1024, ge=1024, le=24 * 1024 * 1024)  # ... or this many bytes
    whole_file_bytes: int = Field(default=1024 * 1024, ge=0)  # objects up to this size are sent as they are
    max_unacked: int = Field(default=8, ge=1, le=1000)  # batches spooled but not yet acked: the flow-control window
    poll_interval: float = Field(default=5.0, gt=0)  # seconds between two looks at the sources
    sqs_wait_seconds: int = Field(default=10, ge=0, le=20)  # SQS long-poll
    backoff_initial: float = Field(default=0.5, gt=0)  # seconds before the first reconnect ...
    backoff_max: float = Field(default=30.0, gt=0)  # ... doubled each failed attempt up to this, with jitter
    compression: bool = False  # gzip on the wire: worth it over a WAN, costs CPU on a fast link
    once: bool = False  # read what the sources hold now, wait until all of it is acked, then exit
    # with `once`: failed connections in a row before giving up (exit 1, batches kept in the spool) - a one-shot
    # run against a wrong certificate or a server that is not there must end, not retry forever
    once_attempts: int = Field(default=8, ge=1)


def load_agent_settings(**overrides: object) -> AgentSettings:
    """The environment, then flags (`overrides`, None = not given); an invalid value names its variable."""
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        settings = AgentSettings(**given)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = [
            f"DD0C_AGENT_{str(e['loc'][0]).upper() if e['loc'] else '?'}: {e['msg']}" for e in exc.errors()
        ]
        raise Dd0cError("invalid agent setting " + "; ".join(problems)) from None
    if settings.token is None:
        raise Dd0cError("no agent token: set DD0C_AGENT_TOKEN (from `dd0c-cost agent-token create --tenant T`)")
    if not (settings.dir or settings.s3_bucket or settings.sqs_queue_url):
        raise Dd0cError("no source: set DD0C_AGENT_DIR, DD0C_AGENT_S3_BUCKET or DD0C_AGENT_SQS_QUEUE_URL")
    if (settings.cert_file is None) != (settings.key_file is None):
        raise Dd0cError("mutual TLS needs both DD0C_AGENT_CERT_FILE and DD0C_AGENT_KEY_FILE")
    return settings
