-- 005_enrollments.sql: enrolment vouchers (issue 9). A device's KAK may activate
-- credentials only once a registration authority (RA) vouched that it belongs to the
-- user: the engine checks the voucher (proto/PROTOCOL.md, "Enrolment voucher"); the
-- gateway only keeps it here and hands it over at activation.
--
-- One row per device, PENDING as soon as the SIC activation made the device ACTIVE
-- (the trigger below), VOUCHED once an RA's signature over the voucher bytes arrived
-- (enrollments/vouch). The voucher's fields are fixed when the row is made (name,
-- KAK hash) or its window renewed (issued_at, not_after), so the bytes the RA is shown
-- (enrollments/list) are the bytes it signs.

CREATE TABLE enrollments (
    device_id     uuid PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
    user_id       uuid NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    status        text NOT NULL CHECK (status IN ('PENDING', 'VOUCHED')),
    full_name     text NOT NULL,                 -- the voucher's common name
    kak_sha256    bytea NOT NULL CHECK (octet_length(kak_sha256) = 32),
    issued_at     bigint NOT NULL,               -- unix seconds, the voucher's window
    not_after     bigint NOT NULL CHECK (not_after > issued_at AND not_after - issued_at <= 30 * 86400),
    voucher       bytea,                         -- the exact bytes the RA signed
    ra_signature  bytea,
    ra_key_id     bytea CHECK (ra_key_id IS NULL OR octet_length(ra_key_id) = 32),
    vouched_by    uuid REFERENCES accounts(id) ON DELETE SET NULL,
    vouched_at    timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'VOUCHED') = (voucher IS NOT NULL AND ra_signature IS NOT NULL
                                   AND ra_key_id IS NOT NULL))
);
CREATE INDEX enrollments_user ON enrollments (user_id);
CREATE INDEX enrollments_status ON enrollments (status, created_at);

-- A device that becomes ACTIVE is PENDING enrolment: sic/activate/sendDevice needs no
-- change, and no device can be active without a row.
CREATE FUNCTION enrollments_on_device() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    t bigint := extract(epoch FROM now())::bigint;
BEGIN
    IF NEW.status = 'ACTIVE' THEN
        INSERT INTO enrollments (device_id, user_id, status, full_name, kak_sha256, issued_at, not_after)
        SELECT NEW.id, NEW.user_id, 'PENDING', a.full_name, sha256(NEW.kak_spki), t, t + 30 * 86400
        FROM accounts a WHERE a.id = NEW.user_id
        ON CONFLICT (device_id) DO NOTHING;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER devices_enrollment AFTER INSERT OR UPDATE OF status ON devices
    FOR EACH ROW EXECUTE FUNCTION enrollments_on_device();

-- Devices already active when this migration runs are PENDING too: their credentials
-- keep their keys (approvals need no voucher), new activations need one.
INSERT INTO enrollments (device_id, user_id, status, full_name, kak_sha256, issued_at, not_after)
SELECT d.id, d.user_id, 'PENDING', a.full_name, sha256(d.kak_spki),
       extract(epoch FROM now())::bigint, extract(epoch FROM now())::bigint + 30 * 86400
FROM devices d JOIN accounts a ON a.id = d.user_id
WHERE d.status = 'ACTIVE';
