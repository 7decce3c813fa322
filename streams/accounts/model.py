"""What the registry holds: an account, where its trail delivers, how to reach it. Values only, no I/O.

Secrets never sit in a plain field: `Account.sealed` is the Fernet token, and `AwsSecrets` (the opened token) hides
its values from `repr`, so logging an Account or an AwsSecrets by accident prints no secret.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from schemas.events import Dd0cError

AuthKind = Literal["access_key", "role", "none"]  # none: the ambient credentials of the process (instance role)

ACCOUNT_ID = re.compile(r"^[0-9]{12}$")
ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::([0-9]{12}):role/[\w+=,.@/-]{1,512}$")
ACCESS_KEY_ID = re.compile(r"^[A-Z0-9]{16,128}$")
ORG_ID = re.compile(r"^o-[a-z0-9]{10,32}$")
REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]+$")


class AccountsError(Dd0cError):
    """Root of the accounts package: a bad registration, an unknown account, an unusable secret key."""


class SecretKeyError(AccountsError):
    """DD0C_SECRET_KEY is missing, malformed, or not the key a stored secret was sealed with."""


class UnknownAccount(AccountsError):
    def __init__(self, tenant: str, account_id: str) -> None:
        super().__init__(f"account {account_id} is not registered for tenant {tenant}")
        self.tenant, self.account_id = tenant, account_id


@dataclass(frozen=True, slots=True)
class TrailLocation:
    """Where the account's trail delivers: s3://bucket/prefix/AWSLogs/[org_id/]account/CloudTrail/region/..."""

    bucket: str | None = None
    prefix: str = ""  # the trail's S3 key prefix, without the AWSLogs/ part; "" when the trail has none
    org_id: str | None = None  # organization trail: keys are AWSLogs/<org_id>/<account>/...
    regions: tuple[str, ...] = ()  # regions to poll; () = every region found under the account's folder
    queue_url: str | None = None  # SQS queue receiving the bucket's object notifications, if any

    def account_root(self, account_id: str) -> str:
        """The key prefix under which this account's CloudTrail folders live (ends with '/')."""
        parts = [p for p in (self.prefix.strip("/"), "AWSLogs", self.org_id, account_id) if p]
        return "/".join(parts) + "/"


@dataclass(frozen=True, slots=True)
class AwsSecrets:
    """The opened secret parts; never printed (repr=False on each value)."""

    access_key_id: str | None = field(default=None, repr=False)
    secret_access_key: str | None = field(default=None, repr=False)
    external_id: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Account:
    """A registered account. `sealed` is the encrypted AwsSecrets (None for auth "none")."""

    tenant: str
    account_id: str
    auth: AuthKind
    name: str = ""
    role_arn: str | None = None
    key_hint: str = ""  # last 4 characters of the access key id, for display
    trail: TrailLocation = TrailLocation()
    sealed: bytes | None = field(default=None, repr=False)
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def public(self) -> dict[str, object]:
        """What the API and the CLI show: never a secret, never the external id, the key id only as its last 4."""
        return {
            "account_id": self.account_id,
            "name": self.name,
            "auth": self.auth,
            "role_arn": self.role_arn,
            "access_key": f"…{self.key_hint}" if self.auth == "access_key" else None,
            "trail_bucket": self.trail.bucket,
            "trail_prefix": self.trail.prefix,
            "org_id": self.trail.org_id,
            "regions": list(self.trail.regions),
            "queue_url": self.trail.queue_url,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


def check_account_id(account_id: str) -> str:
    if not isinstance(account_id, str) or not ACCOUNT_ID.match(account_id):
        raise AccountsError(f"account id must be 12 digits, got {account_id!r}")
    return account_id


def check_registration(
    account_id: str, *, access_key_id: str | None, secret_access_key: str | None, role_arn: str | None,
    external_id: str | None, trail: TrailLocation,
) -> AuthKind:
    """Which auth the arguments describe, or an AccountsError naming what is wrong (never echoing a secret)."""
    check_account_id(account_id)
    if role_arn is not None and (access_key_id is not None or secret_access_key is not None):
        raise AccountsError("give either an access key pair or a role ARN, not both")
    if (access_key_id is None) != (secret_access_key is None):
        raise AccountsError("an access key needs both the access key id and the secret access key")
    if trail.org_id is not None and not ORG_ID.match(trail.org_id):
        raise AccountsError(f"organization id must look like o-xxxxxxxxxx, got {trail.org_id!r}")
    for region in trail.regions:
        if not REGION.match(region):
            raise AccountsError(f"not an AWS region name: {region!r}")
    if trail.bucket is not None and not re.match(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", trail.bucket):
        raise AccountsError(f"not an S3 bucket name: {trail.bucket!r}")
    if role_arn is not None:
        if not ROLE_ARN.match(role_arn):
            raise AccountsError(f"not an IAM role ARN: {role_arn!r} (expected arn:aws:iam::<12 digits>:role/<name>)")
        if external_id is not None and not (2 <= len(external_id) <= 1224):
            raise AccountsError("the external id must have 2 to 1224 characters")
        return "role"
    if external_id is not None:
        raise AccountsError("an external id only goes with a role ARN")
    if access_key_id is not None:
        if not ACCESS_KEY_ID.match(access_key_id):
            raise AccountsError("the access key id must be 16-128 upper-case letters and digits")
        if not secret_access_key:
            raise AccountsError("the secret access key must not be empty")
        return "access_key"
    return "none"
