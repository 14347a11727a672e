-- 002_users.sql: email confirmations and the notification outbox; helpers of the
-- account functions (gateway/users.c, admin.c, outbox.c).
-- Confirmation tokens are stored only as SHA-256. Outbox messages carry their secret
-- (token or code) in `data` until sent; delivery blanks it (outbox_redact/outbox_blank).

CREATE TABLE email_confirmations (
    token_hash  bytea PRIMARY KEY CHECK (octet_length(token_hash) = 32), -- SHA-256 of the token text
    account_id  uuid NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX email_confirmations_account ON email_confirmations (account_id);

CREATE TABLE outbox (
    id               bigserial PRIMARY KEY,
    channel          text NOT NULL CHECK (channel IN ('email', 'sms')),
    recipient        text NOT NULL CHECK (recipient <> '' AND recipient !~ '[\r\n]'),
    kind             text NOT NULL,
    subject          text NOT NULL DEFAULT '',
    body             text NOT NULL,
    data             jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(data) = 'object'),
    created_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz,
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_error       text
);
CREATE INDEX outbox_due ON outbox (next_attempt_at, id) WHERE sent_at IS NULL;
CREATE INDEX outbox_recipient ON outbox (recipient, id DESC);
CREATE INDEX outbox_kind ON outbox (kind, id DESC);

-- Every non-empty string of secrets replaced by "[sent]" in t.
CREATE FUNCTION outbox_redact(t text, secrets jsonb) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v text;
BEGIN
    FOR v IN SELECT e.value #>> '{}' FROM jsonb_each(secrets) e
             WHERE jsonb_typeof(e.value) = 'string' AND e.value #>> '{}' <> ''
    LOOP
        t := replace(t, v, '[sent]');
    END LOOP;
    RETURN t;
END $$;

-- The same object with every string value "".
CREATE FUNCTION outbox_blank(secrets jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT COALESCE(jsonb_object_agg(e.key,
        CASE WHEN jsonb_typeof(e.value) = 'string' THEN '""'::jsonb ELSE e.value END), '{}'::jsonb)
    FROM jsonb_each(secrets) e
$$;

-- users/status reads the SIC status and the credential count through this hook, so
-- that this migration does not depend on 003_signing.sql. Here it is a stub (no device,
-- no credential); 004_status.sql replaces it with the real query over 003's tables.
-- A set-returning LANGUAGE sql function called in FROM is inlined by the planner into
-- the caller's (prepared) statement: planned once per connection. (plpgsql with EXECUTE
-- was planned on every call, and a scalar SQL function that reads tables is re-planned
-- on every execution of the calling statement.)
CREATE FUNCTION rssp_account_status(account uuid)
RETURNS TABLE (sic_status text, credential_count bigint)
LANGUAGE sql STABLE AS $$
    SELECT 'NONE'::text, 0::bigint
$$;
