-- 004_status.sql: users/status over the SIC and credential tables of 003_signing.sql.
-- Replaces 002's stub of rssp_account_status with the real query. It stays a
-- set-returning LANGUAGE sql function, STABLE, not STRICT, one SELECT: called in FROM,
-- the planner inlines it into the calling statement, which the gateway prepares once
-- per connection, so a status read costs index scans, not a planning each time.

-- sic_activations had no index by user; the pending check below needs one.
CREATE INDEX sic_activations_user ON sic_activations (user_id, expires_at);

-- sic_status, as sic/status reports it: ACTIVE when a device is active; else PENDING
-- when a live activation code or an activation under way exists; else the latest
-- device's status (REVOKED) or NONE. credential_count: credentials that are not
-- CANCELLED or REVOKED.
CREATE OR REPLACE FUNCTION rssp_account_status(account uuid)
RETURNS TABLE (sic_status text, credential_count bigint)
LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN d.status = 'ACTIVE' THEN 'ACTIVE'
        WHEN EXISTS (SELECT 1 FROM sic_activation_codes c WHERE c.user_id = account
                     AND c.used_at IS NULL AND c.expires_at > now() AND c.tries < 5)
          OR EXISTS (SELECT 1 FROM sic_activations a WHERE a.user_id = account
                     AND a.used_at IS NULL AND a.expires_at > now())
            THEN 'PENDING'
        ELSE COALESCE(d.status, 'NONE')
    END,
    (SELECT count(*) FROM credentials c WHERE c.owner_id = account
     AND c.status NOT IN ('CANCELLED', 'REVOKED'))
    FROM (SELECT 1) one
    LEFT JOIN LATERAL (SELECT status FROM devices WHERE user_id = account
                       ORDER BY (status = 'ACTIVE') DESC, activated_at DESC LIMIT 1) d ON true
$$;
