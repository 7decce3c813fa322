-- A tenant's AWS accounts (credentials sealed with DD0C_SECRET_KEY) and its ingest API keys (hashed).
--
-- aws_accounts.sealed is a Fernet token of a small JSON document holding the secret parts (the secret access key
-- pair, or the role's external id). Nothing secret is in any other column: `key_hint` is the last four characters
-- of the access key id, shown so a person can tell two keys apart. A tenant with no row here accepts records
-- for any account (first run, file ingest); once it has one, records for other accounts are dead-lettered
-- (streams/accounts/admission.py).
CREATE TABLE IF NOT EXISTS aws_accounts (
    tenant_id      TEXT NOT NULL REFERENCES tenants(tenant_id),
    account_id     TEXT NOT NULL CHECK (account_id ~ '^[0-9]{12}$'),
    name           TEXT NOT NULL DEFAULT '',
    auth           TEXT NOT NULL CHECK (auth IN ('access_key', 'role', 'none')),
    role_arn       TEXT,
    key_hint       TEXT NOT NULL DEFAULT '',
    sealed         BYTEA,
    trail_bucket   TEXT,
    trail_prefix   TEXT NOT NULL DEFAULT '',
    org_id         TEXT,
    regions        TEXT[] NOT NULL DEFAULT '{}',
    queue_url      TEXT,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, account_id),
    CHECK ((auth = 'role') = (role_arn IS NOT NULL)),
    CHECK (auth = 'none' OR sealed IS NOT NULL)
);

-- Keys for HTTP push (and any other machine sender). The key is `dd0c_<key_id>_<secret>`; only the SHA-256 of
-- the whole key is kept (it is 32 random bytes: a slow hash adds nothing), looked up by key_id.
CREATE TABLE IF NOT EXISTS api_keys (
    key_id       TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants(tenant_id),
    name         TEXT NOT NULL DEFAULT '',
    scope        TEXT NOT NULL DEFAULT 'ingest',
    key_sha256   TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at   TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS api_keys_tenant ON api_keys (tenant_id);
