-- 001_accounts.sql: companies, accounts, RP clients, tokens (the gateway foundation).
-- Secrets are stored only as hashes: passphrases and RP secret keys as argon2id
-- (libsodium's encoded string), RP secret keys also as the RFC 7616 SHA-256 HA1 for
-- Digest, tokens as SHA-256.

CREATE TABLE companies (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL CHECK (name <> ''),
    created_by  uuid,                 -- the account that created it (no FK: accounts come next)
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX companies_name ON companies (lower(name));

-- Lockout: after RSSP_LOCKOUT_THRESHOLD (5) consecutive failed logins the gateway sets
-- status = 'LOCKED' and locked_until = now() + 15 min. A login after locked_until
-- unlocks it by itself (status back to 'ACTIVE', failed_logins = 0); an admin unlocks
-- earlier with: status = 'ACTIVE', failed_logins = 0, locked_until = NULL. Bearer tokens
-- issued before a lock stay valid (a lock stops guessing, not the owner's sessions);
-- DISABLED and PENDING_CONFIRMATION accounts have no valid token.
CREATE TABLE accounts (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email            text CHECK (email IS NULL OR email <> ''),  -- NULL for rp accounts
    mobile           text,
    full_name        text NOT NULL DEFAULT '',
    role             text NOT NULL CHECK (role IN ('admin', 'rp', 'company_admin', 'signer')),
    status           text NOT NULL DEFAULT 'PENDING_CONFIRMATION'
                     CHECK (status IN ('PENDING_CONFIRMATION', 'ACTIVE', 'LOCKED', 'DISABLED')),
    passphrase_hash  text,                                   -- argon2id; NULL until confirmed
    failed_logins    integer NOT NULL DEFAULT 0,
    locked_until     timestamptz,
    company_id       uuid REFERENCES companies(id) ON DELETE RESTRICT,
    registered_by    uuid REFERENCES accounts(id) ON DELETE SET NULL, -- the rp/admin that registered it
    created_at       timestamptz NOT NULL DEFAULT now(),
    confirmed_at     timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (role = 'rp' OR email IS NOT NULL)
);
CREATE UNIQUE INDEX accounts_email ON accounts (lower(email)) WHERE email IS NOT NULL;
CREATE INDEX accounts_company ON accounts (company_id) WHERE company_id IS NOT NULL;
CREATE INDEX accounts_registered_by ON accounts (registered_by) WHERE registered_by IS NOT NULL;
CREATE INDEX accounts_role_status ON accounts (role, status, created_at);

ALTER TABLE companies ADD CONSTRAINT companies_created_by_fkey
    FOREIGN KEY (created_by) REFERENCES accounts(id) ON DELETE SET NULL;

-- An rp account logs in with its client id (not an email) and its secret key.
-- The key is stored twice: as argon2id in accounts.passphrase_hash (Basic and the
-- password grant) and as digest_ha1 = SHA-256("clientID:realm:secret") for HTTP Digest
-- (RFC 7616), where realm is RSSP_SERVICE_NAME (gw_digest_ha1() in gateway/gw.h).
CREATE TABLE rp_clients (
    client_id   text PRIMARY KEY CHECK (client_id ~ '^[A-Za-z0-9._-]{1,64}$'),
    account_id  uuid NOT NULL UNIQUE REFERENCES accounts(id) ON DELETE CASCADE,
    name        text NOT NULL,
    digest_ha1  bytea NOT NULL CHECK (octet_length(digest_ha1) = 32),
    created_at  timestamptz NOT NULL DEFAULT now(),
    rotated_at  timestamptz
);

-- Bearer and refresh tokens, by SHA-256 of the token text. A login starts a family;
-- each refresh spends the refresh token (used_at) and issues a new access + refresh
-- pair in the same family. Presenting a spent refresh token revokes the whole family.
CREATE TABLE tokens (
    token_hash  bytea PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    kind        text NOT NULL CHECK (kind IN ('access', 'refresh')),
    family_id   uuid NOT NULL,
    account_id  uuid NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,          -- refresh tokens: when spent
    revoked_at  timestamptz
);
CREATE INDEX tokens_family ON tokens (family_id);
CREATE INDEX tokens_account ON tokens (account_id) WHERE revoked_at IS NULL;
CREATE INDEX tokens_expires ON tokens (expires_at);

-- The account a login name designates: an email (case-insensitive) or an rp client id.
CREATE FUNCTION account_by_login(login text) RETURNS SETOF accounts
LANGUAGE sql STABLE AS $$
    SELECT a.* FROM accounts a WHERE a.email IS NOT NULL AND lower(a.email) = lower(login)
    UNION ALL
    SELECT a.* FROM rp_clients c JOIN accounts a ON a.id = c.account_id WHERE c.client_id = login
    LIMIT 1
$$;
