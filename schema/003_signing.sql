-- 003_signing.sql: SIC activation, devices, credentials, authorization requests.
-- Secrets at rest only as SHA-256 (activation codes, OTPs, the SAD lookup key). The
-- SAD itself is stored because the gateway must hand it to the RP that asked; it is
-- never logged.

CREATE TABLE sic_activation_codes (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id     uuid NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    channel     text NOT NULL CHECK (channel IN ('sms', 'email')),
    code_hash   bytea NOT NULL,              -- SHA-256 of the 8 ASCII digits
    tries       integer NOT NULL DEFAULT 0,  -- wrong codes entered; locked at 5
    used_at     timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX sic_activation_codes_user ON sic_activation_codes (user_id, created_at DESC);

-- activate/initialize -> sendDevice: the challenge the KAK must sign.
CREATE TABLE sic_activations (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id      uuid NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    code_id      uuid NOT NULL REFERENCES sic_activation_codes(id) ON DELETE CASCADE,
    device_uuid  text NOT NULL,
    challenge    bytea NOT NULL,
    used_at      timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);

-- A user has at most one ACTIVE device; a new one revokes the previous one.
CREATE TABLE devices (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id       uuid NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    device_uuid   text NOT NULL,
    name          text NOT NULL,
    platform      text NOT NULL,
    push_token    text,
    kak_spki      bytea NOT NULL,            -- SubjectPublicKeyInfo DER
    kak_algo      integer NOT NULL,          -- engine.proto KakAlgo
    sign_algo     text NOT NULL CHECK (sign_algo IN ('RSASSA-PSS', 'ECDSA')),
    sha_algo      text NOT NULL CHECK (sha_algo IN ('sha256', 'sha512')),
    status        text NOT NULL CHECK (status IN ('ACTIVE', 'REVOKED')),
    activated_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz
);
CREATE UNIQUE INDEX devices_one_active_per_user ON devices (user_id) WHERE status = 'ACTIVE';
CREATE UNIQUE INDEX devices_active_uuid ON devices (device_uuid) WHERE status = 'ACTIVE';
CREATE INDEX devices_user ON devices (user_id, activated_at DESC);

CREATE TABLE credentials (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id       uuid NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    created_by     uuid REFERENCES accounts(id) ON DELETE SET NULL,
    key_algo       text NOT NULL CHECK (key_algo IN ('rsa2048', 'rsa3072', 'ecp256', 'ecp384')),
    validity_days  integer NOT NULL CHECK (validity_days BETWEEN 1 AND 3650),
    description    text NOT NULL DEFAULT '',
    status         text NOT NULL CHECK (status IN ('NEW', 'ACTIVE', 'CANCELLED', 'REVOKED')),
    -- set by a successful activation (engine Authorize(activation))
    device_id      uuid REFERENCES devices(id) ON DELETE SET NULL,
    key_label      text,
    binding        bytea,
    certificate    bytea,
    chain          bytea,                    -- issuers, DER certificates concatenated, nearest first
    public_key     bytea,
    subject_dn     text,
    issuer_dn      text,
    serial_number  text,
    valid_from     timestamptz,
    valid_to       timestamptz,
    -- the pending activation (activate/request): exactly the fields of its authData
    act_device_id  uuid REFERENCES devices(id) ON DELETE SET NULL,
    act_subject_cn text,
    act_nonce      bytea,
    act_expires_at bigint,                   -- unix seconds, as in authData
    act_otp_hash   bytea,                    -- SHA-256 of the OTP (RSA KAKs)
    act_tries      integer NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL DEFAULT now(),
    activated_at   timestamptz,
    revoked_at     timestamptz,
    revoke_reason  text
);
CREATE INDEX credentials_owner ON credentials (owner_id, created_at, id);

CREATE TABLE auth_requests (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    credential_id   uuid NOT NULL REFERENCES credentials(id) ON DELETE CASCADE,
    owner_id        uuid NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    device_id       uuid NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    requester_id    uuid NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    rp_name         text NOT NULL,
    description     text NOT NULL,
    client_data     text,
    hash_algo       integer NOT NULL,        -- engine.proto HashAlgo
    hashes          bytea NOT NULL,          -- the digests concatenated
    num_signatures  integer NOT NULL CHECK (num_signatures BETWEEN 1 AND 1000),
    remaining       integer NOT NULL CHECK (remaining >= 0),
    nonce           bytea NOT NULL,
    expires_at      bigint NOT NULL,         -- unix seconds, as in authData
    auth_data       bytea NOT NULL,
    status          text NOT NULL CHECK (status IN ('PENDING', 'CONFIRMED', 'CANCELLED')),
    sad             bytea,                   -- bearer secret for the requester; never logged
    sad_hash        bytea,                   -- SHA-256(sad): the signHash lookup key
    sad_expires_at  bigint,
    created_at      timestamptz NOT NULL DEFAULT now(),
    confirmed_at    timestamptz,
    cancelled_at    timestamptz
);
CREATE UNIQUE INDEX auth_requests_sad ON auth_requests (sad_hash) WHERE sad_hash IS NOT NULL;
CREATE INDEX auth_requests_owner ON auth_requests (owner_id, created_at DESC);
