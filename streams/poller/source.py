"""What the poller polls: a `Target` (one account's trail location) and how to reach its bucket.

Targets come from the accounts registry (`Target.of_account`, streams/accounts) or, for a one-off backfill, from
command-line flags. Credentials come from `Sessions`: the registry's `boto3_session` for a registered account (its
access key pair or its role assumed through STS), the process's own credentials otherwise. DD0C_AWS_ENDPOINT_URL
points every client at an S3-compatible store instead of AWS (the tests: moto in server mode).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from ops.settings import Settings, load_settings
from streams.poller import layout

if TYPE_CHECKING:
    from streams.accounts.model import Account

S3Client = Any  # botocore's generated client class has no importable type
SessionFactory = Callable[["Target"], boto3.Session]

# Standard retry mode: throttling and 5xx answers are retried with backoff before a poll gives up on a prefix.
_CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=10, read_timeout=60)


@dataclass(frozen=True, slots=True)
class Target:
    """One account of one tenant whose trail delivers to `bucket`."""

    tenant: str
    account_id: str
    bucket: str
    prefix: str = ""  # the trail's key prefix (before AWSLogs/), "" for none
    org_id: str | None = None  # organization trail: AWSLogs/<org_id>/<account>/...
    regions: tuple[str, ...] = ()  # () = every region folder found under the account
    account: Account | None = None  # the registry entry it came from (for its credentials), if any

    @property
    def root(self) -> str:
        return layout.account_root(self.account_id, prefix=self.prefix, org_id=self.org_id)

    def describe(self) -> str:
        return f"account {self.account_id} (tenant {self.tenant}) at s3://{self.bucket}/{self.root}"

    @classmethod
    def of_account(cls, account: Account) -> Target | None:
        """The target for a registered account, or None when it has no trail bucket (it is not polled)."""
        trail = account.trail
        if not trail.bucket:
            return None
        return cls(
            tenant=account.tenant,
            account_id=account.account_id,
            bucket=trail.bucket,
            prefix=trail.prefix,
            org_id=trail.org_id,
            regions=tuple(trail.regions),
            account=account,
        )


class Sessions:
    """`session_for(target)`, keeping one session per registered account across polls: an assumed role's
    credentials refresh themselves, so AssumeRole is not called on every poll. A registration changed since
    (its `updated_at`) gets a new session."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or load_settings()
        self._cache: dict[tuple[str, str], tuple[object, boto3.Session]] = {}

    def __call__(self, target: Target) -> boto3.Session:
        from streams.accounts.session import boto3_session, plain_session

        account = target.account
        if account is None:
            return plain_session(self.settings, region=target.regions[0] if target.regions else "us-east-1")
        key = (account.tenant, account.account_id)
        cached = self._cache.get(key)
        if cached is not None and cached[0] == account.updated_at:
            return cached[1]
        session = boto3_session(account, self.settings)
        self._cache[key] = (account.updated_at, session)
        return session


def s3_client(session: boto3.Session, endpoint_url: str | None = None) -> S3Client:
    """An S3 client with standard retries; `endpoint_url` overrides the session's (EndpointSession) default."""
    if endpoint_url:
        return session.client("s3", endpoint_url=endpoint_url, config=_CLIENT_CONFIG)
    return session.client("s3", config=_CLIENT_CONFIG)
