-- OAuth 2.0 as CSC API v2 defines it (gateway/oauth.c).

-- Redirect URIs registered per RP client (admin/clients/create, admin/clients/update):
-- oauth2/authorize accepts a redirect_uri only when it is one of these, byte for byte.
CREATE TABLE oauth_redirect_uris (
    client_id   text NOT NULL REFERENCES rp_clients(client_id) ON DELETE CASCADE,
    uri         text NOT NULL CHECK (length(uri) BETWEEN 8 AND 2000),
    PRIMARY KEY (client_id, uri)
);

-- One oauth2/authorize for credential authorization: the approval request it created
-- (auth_requests, requested by the RP client's account), the signer's waiting page (by
-- SHA-256 of the token in its URL), then the authorization code (by SHA-256; one use,
-- bound to the client, the redirect URI and the PKCE S256 challenge).
CREATE TABLE oauth_authorizations (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    page_hash       bytea NOT NULL UNIQUE CHECK (octet_length(page_hash) = 32),
    client_id       text NOT NULL REFERENCES rp_clients(client_id) ON DELETE CASCADE,
    request_id      uuid NOT NULL REFERENCES auth_requests(id) ON DELETE CASCADE,
    redirect_uri    text NOT NULL,
    state           text,
    code_challenge  text NOT NULL CHECK (code_challenge ~ '^[A-Za-z0-9_-]{43}$'),
    code_hash       bytea UNIQUE CHECK (octet_length(code_hash) = 32),
    code_expires_at bigint,              -- unix seconds
    code_used_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX oauth_authorizations_request ON oauth_authorizations (request_id);

-- Credential-scope access tokens (by SHA-256): each stands for the SAD of one approved
-- request and is good for one signatures/signHash call (claimed by used_at; a refused
-- call gives it back). They are not session tokens: the bearer middleware never
-- accepts them.
CREATE TABLE oauth_credential_tokens (
    token_hash       bytea PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    authorization_id uuid NOT NULL REFERENCES oauth_authorizations(id) ON DELETE CASCADE,
    request_id       uuid NOT NULL REFERENCES auth_requests(id) ON DELETE CASCADE,
    account_id       uuid NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    credential_id    uuid NOT NULL,
    expires_at       bigint NOT NULL,    -- unix seconds: the SAD's
    used_at          timestamptz,
    revoked_at       timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX oauth_credential_tokens_authorization ON oauth_credential_tokens (authorization_id);
