"""boto3 sessions for a registered account: its access key pair, or its role assumed through STS.

An assumed role's credentials refresh themselves (botocore RefreshableCredentials calls AssumeRole again shortly
before they expire), so a long-running poller can keep one session per account. DD0C_AWS_ENDPOINT_URL (MinIO,
moto in the tests) becomes every client's default endpoint: `boto3_session(account).client("s3")` needs nothing
more.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import boto3
from botocore.credentials import RefreshableCredentials
from botocore.session import get_session

from ops.settings import Settings, load_settings
from streams.accounts.crypto import SecretBox
from streams.accounts.model import Account, AccountsError
from streams.accounts.registry import open_secrets

SESSION_NAME = "dd0c-cost"
ROLE_SECONDS = 3600
DEFAULT_REGION = "us-east-1"


class EndpointSession(boto3.Session):
    """A boto3 Session whose clients and resources default to one endpoint URL (None: AWS's own)."""

    def __init__(self, *args: Any, endpoint_url: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.endpoint_url = endpoint_url

    def client(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        if self.endpoint_url and kwargs.get("endpoint_url") is None and len(args) < 6:
            kwargs["endpoint_url"] = self.endpoint_url
        return super().client(*args, **kwargs)

    def resource(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        if self.endpoint_url and kwargs.get("endpoint_url") is None and len(args) < 6:
            kwargs["endpoint_url"] = self.endpoint_url
        return super().resource(*args, **kwargs)


def plain_session(settings: Settings | None = None, *, region: str = DEFAULT_REGION, **kwargs: Any) -> EndpointSession:
    """A session on the process's own credentials (or `kwargs`), with the endpoint setting applied."""
    s = settings or load_settings()
    return EndpointSession(region_name=region, endpoint_url=s.aws_endpoint_url, **kwargs)


def boto3_session(
    account: Account,
    settings: Settings | None = None,
    *,
    box: SecretBox | None = None,
    base: boto3.Session | None = None,
    region: str | None = None,
) -> EndpointSession:
    """A session acting as `account`.

    access_key: the stored pair. role: AssumeRole(role_arn, ExternalId) from `base` (default: the process's own
    credentials), refreshed before expiry; the first AssumeRole happens here, so a refusal raises botocore's
    ClientError now. none: the process's own credentials. Region: `region`, else the account's first trail
    region, else us-east-1.
    """
    s = settings or load_settings()
    home = region or (account.trail.regions[0] if account.trail.regions else DEFAULT_REGION)
    if account.auth == "none":
        return plain_session(s, region=home)
    secrets = open_secrets(account, box or SecretBox.from_settings(s))
    if account.auth == "access_key":
        return EndpointSession(
            aws_access_key_id=secrets.access_key_id,
            aws_secret_access_key=secrets.secret_access_key,
            region_name=home,
            endpoint_url=s.aws_endpoint_url,
        )
    assert account.role_arn is not None
    caller = base or plain_session(s, region=home)
    sts = caller.client("sts", region_name=home, endpoint_url=s.aws_endpoint_url)
    request: dict[str, Any] = {
        "RoleArn": account.role_arn, "RoleSessionName": SESSION_NAME, "DurationSeconds": ROLE_SECONDS,
    }
    if secrets.external_id:
        request["ExternalId"] = secrets.external_id

    def assume() -> dict[str, str]:
        got = sts.assume_role(**request)["Credentials"]
        return {
            "access_key": got["AccessKeyId"],
            "secret_key": got["SecretAccessKey"],
            "token": got["SessionToken"],
            "expiry_time": got["Expiration"].isoformat(),
        }

    credentials = RefreshableCredentials.create_from_metadata(
        metadata=assume(), refresh_using=assume, method="sts-assume-role"
    )
    core = get_session()
    core._credentials = credentials  # botocore has no public setter; this is how assumed sessions are built
    core.set_config_variable("region", home)
    return EndpointSession(botocore_session=core, endpoint_url=s.aws_endpoint_url)


class WrongAccount(AccountsError):
    """Credentials that work, but act as another AWS account than the one they are registered for. Keys (or a
    role) of another account would pass every permission probe, then poll and hunt the wrong account."""

    code = "WrongAccount"
    operation = "GetCallerIdentity"

    def __init__(self, registered: str, actual: str) -> None:
        super().__init__(f"these credentials belong to account {actual}, not {registered}: register the keys or the "
                         "role of this account")
        self.registered, self.actual = registered, actual


def identity_mismatch(identity: Mapping[str, Any], account_id: str) -> WrongAccount | None:
    """The WrongAccount that a GetCallerIdentity answer shows, or None when it is `account_id` (or says no account)."""
    owner = str(identity.get("Account") or "")
    return WrongAccount(account_id, owner) if owner and owner != account_id else None


def verify_identity(session: boto3.Session, account_id: str, region: str = DEFAULT_REGION) -> None:
    """Raise WrongAccount unless `session` acts as `account_id` (GetCallerIdentity needs no permission)."""
    wrong = identity_mismatch(session.client("sts", region_name=region).get_caller_identity(), account_id)
    if wrong is not None:
        raise wrong
