"""Tenants' AWS accounts: the registry, sealed credentials, boto3 sessions, admission of records, API keys.

API (stable; the S3 poller, the ingestion service and the agent import it):

    from streams.accounts import (
        Account, TrailLocation, AccountsError, SecretKeyError, UnknownAccount,
        SecretBox, add_account, list_accounts, get_account, find_account, remove_account, all_accounts,
        boto3_session, plain_session, Admission, load_admission,
        create_api_key, verify_api_key, list_api_keys, revoke_api_key,
    )

    box = SecretBox.from_settings(settings)   # DD0C_SECRET_KEY (Fernet key(s), comma-separated, newest first)
    acct = await add_account(db, box, "acme", "111122223333",
                             role_arn="arn:aws:iam::111122223333:role/dd0c-cost-reader", external_id="...",
                             # or: access_key_id=..., secret_access_key=...  (neither: the process's own credentials)
                             trail=TrailLocation(bucket="trail-bucket", prefix="", org_id=None,
                                                 regions=("us-east-1",), queue_url=None))
    accts = await list_accounts(db, "acme")      # [Account], ordered by account id; all_accounts(db) for every tenant
    acct = await get_account(db, "acme", "111122223333")   # raises UnknownAccount; find_account -> Account | None
    await remove_account(db, "acme", "111122223333")      # -> bool
    session = boto3_session(acct, settings)   # boto3.Session subclass: AssumeRole (+ExternalId, auto-refresh) or
                                              # the key pair; clients default to DD0C_AWS_ENDPOINT_URL (moto, MinIO)
    acct.trail.account_root("111122223333")   # "<prefix>/AWSLogs/[<org-id>/]111122223333/"

    admission = await load_admission(db, "acme")  # once per batch
    admission.check(entry, locator) -> LogEntry | Rejected  # "account 444455556666 is not registered for tenant acme"

    issued = await create_api_key(db, "acme", name="push")   # issued.key shown once: "dd0c_<key_id>_<secret>"
    key = await verify_api_key(db, presented)                # ApiKey(key_id, tenant, ...) | None

`db` is an asyncpg Pool or Connection. Account objects hold the credentials only sealed (`sealed`, repr hidden);
`Account.public()` is what may be shown. Admission rule: a tenant with no registered account accepts every account
(first run, file ingest, demo); once it registers one, records of other accounts are rejected to the dead letters.
"""

from streams.accounts.admission import OPEN, STAGE, Admission, load_admission
from streams.accounts.apikeys import ApiKey, IssuedKey, create_api_key, list_api_keys, revoke_api_key, verify_api_key
from streams.accounts.crypto import SecretBox, generate_key
from streams.accounts.model import (
    Account,
    AccountsError,
    AwsSecrets,
    SecretKeyError,
    TrailLocation,
    UnknownAccount,
)
from streams.accounts.registry import (
    add_account,
    all_accounts,
    find_account,
    get_account,
    list_accounts,
    open_secrets,
    registered_ids,
    remove_account,
)
from streams.accounts.session import EndpointSession, WrongAccount, boto3_session, plain_session, verify_identity

__all__ = [
    "OPEN",
    "STAGE",
    "Account",
    "AccountsError",
    "Admission",
    "ApiKey",
    "AwsSecrets",
    "EndpointSession",
    "IssuedKey",
    "SecretBox",
    "SecretKeyError",
    "TrailLocation",
    "UnknownAccount",
    "WrongAccount",
    "add_account",
    "all_accounts",
    "boto3_session",
    "create_api_key",
    "find_account",
    "generate_key",
    "get_account",
    "list_accounts",
    "list_api_keys",
    "load_admission",
    "open_secrets",
    "plain_session",
    "registered_ids",
    "remove_account",
    "revoke_api_key",
    "verify_api_key",
    "verify_identity",
]
