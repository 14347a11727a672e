-- 004_status.sql: users/status over the SIC and credential tables of 003_signing.sql.
-- Replaces 002's stubs with plain SQL functions: the planner inlines them into the
-- calling statement, which the gateway prepares once per connection, so a status read
-- is planned once, not on every call as dynamic SQL (EXECUTE) was.

-- sic_activations had no index by user; the pending check below needs one.
CREATE INDEX sic_activations_user ON sic_activations (user_id, expires_at);

-- The user's SIC status, as sic/status reports it: ACTIVE when a device is active;
-- else PENDING when a live activation code or an activation under way exists; else the
-- latest device's status (REVOKED) or NONE.
CREATE OR REPLACE FUNCTION rssp_account_sic_status(account uuid) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN d.status = 'ACTIVE' THEN 'ACTIVE'
        WHEN EXISTS (SELECT 1 FROM sic_activation_codes c WHERE c.user_id = account
                     AND c.used_at IS NULL AND c.expires_at > now() AND c.tries < 5)
          OR EXISTS (SELECT 1 FROM sic_activations a WHERE a.user_id = account
                     AND a.used_at IS NULL AND a.expires_at > now())
            THEN 'PENDING'
        ELSE COALESCE(d.status, 'NONE')
    END
    FROM (SELECT (SELECT status FROM devices WHERE user_id = account
                  ORDER BY (status = 'ACTIVE') DESC, activated_at DESC LIMIT 1) AS status) d
$$;

-- Credentials of an account that are not CANCELLED or REVOKED.
CREATE OR REPLACE FUNCTION rssp_account_credential_count(account uuid) RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT count(*) FROM credentials
    WHERE owner_id = account AND status NOT IN ('CANCELLED', 'REVOKED')
$$;
