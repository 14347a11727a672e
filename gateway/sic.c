/* sic.c - the signer's app (SIC): activation codes, device activation with a KAK,
 * device status and revocation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "db.h"
#include "gw.h"
#include "outbox.h"
#include "rssp_log.h"
#include "secrets.h"
#include "sic.h"
#include "signing.h"

#define CODE_DIGITS 8
#define CODE_TTL 600
#define CODE_TRIES 5
#define CHALLENGE_LEN 32
#define ACTIVATION_TTL 600

/* ---- the KAK ------------------------------------------------------------- */


const char *
sic_kak_sign_algo(int kak_algo)
{
	const struct rssp_kak_alg *ka = rssp_kak_alg(kak_algo);

	return ka != NULL ? ka->sign_algo : "RSASSA-PSS";
}

const char *
sic_kak_sha_algo(int kak_algo)
{
	const struct rssp_kak_alg *ka = rssp_kak_alg(kak_algo);

	return ka != NULL ? ka->sha_algo : "sha256";
}

/* The names pick the KakAlgo; the one SPKI parser and policy is kak_spki_parse. */
int
sic_kak_parse(const uint8_t *spki, size_t spkilen, const char *sign_algo,
    const char *sha_algo, int *kak_algop, EVP_PKEY **pkp)
{
	const struct rssp_kak_alg *ka = rssp_kak_alg_by_names(sign_algo, sha_algo);
	int r;

	if (ka == NULL)
		return RSSP_E_UNSUPPORTED;
	if ((r = kak_spki_parse(spki, spkilen, ka->algo, pkp)) != 0)
		return r;
	*kak_algop = ka->algo;
	return 0;
}

/* ---- sic/activationCode -------------------------------------------------------------- */

int
sic_activation_code(struct gw_request *req, struct gw_reply *rep)
{
	const char *user_id = NULL, *channel = NULL, *recipient;
	struct sg_account a;
	char code[CODE_DIGITS + 1], body[160], *hash = NULL;
	uint8_t digest[SHA256_DIGEST_LENGTH];
	json_t *data = NULL;
	int r;

	if ((r = sg_get_uuid(req, rep, "userID", false, &user_id)) != 0 ||
	    (r = gw_get_str(req, rep, "channel", 16, true, &channel)) != 0)
		goto out;
	if (strcmp(channel, "sms") != 0 && strcmp(channel, "email") != 0) {
		r = gw_error(rep, 400, "invalid_request", "field 'channel' must be \"sms\" or \"email\"");
		goto out;
	}
	if ((r = sg_account_for(req, rep, user_id, "userID", &a)) != 0)
		goto out;
	if (strcmp(a.status, "ACTIVE") != 0 && strcmp(a.status, "LOCKED") != 0) {
		r = gw_error(rep, 409, "conflict", "the user in 'userID' is %s", a.status);
		goto out;
	}
	recipient = strcmp(channel, "sms") == 0 ? a.mobile : a.email;
	if (recipient[0] == '\0') {
		r = gw_error(rep, 409, "conflict", "the user has no %s for field 'channel'",
		    strcmp(channel, "sms") == 0 ? "mobile number" : "email address");
		goto out;
	}
	sg_random_digits(code, CODE_DIGITS);
	SHA256((const uint8_t *)code, CODE_DIGITS, digest);
	snprintf(body, sizeof(body), "Your rssp activation code is %s. It is valid for 10 minutes.", code);
	if ((hash = sg_bytea(digest, sizeof(digest))) == NULL ||
	    (data = json_pack("{s:s}", "code", code)) == NULL) {
		r = RSSP_E_NOMEM;
		goto out;
	}
	if ((r = gw_tx_begin(req)) != 0)
		goto out;
	/* A new code replaces any earlier one. */
	if ((r = gw_db_query(req->db, NULL,
	    "UPDATE sic_activation_codes SET used_at = now() WHERE user_id = $1 AND used_at IS NULL",
	    1, a.id)) != 0 ||
	    (r = gw_db_query(req->db, NULL,
	    "INSERT INTO sic_activation_codes (user_id, channel, code_hash, expires_at)"
	    " VALUES ($1, $2, $3, now() + interval '600 seconds')", 3, a.id, channel, hash)) != 0 ||
	    (r = outbox_enqueue(req->db, channel, recipient, "sic_activation_code",
	    "Your rssp activation code", body, data)) != 0 ||
	    (r = gw_tx_commit(req)) != 0)
		goto out;
	r = gw_reply_json(rep, 202, json_pack("{s:s,s:i}", "channel", channel, "expiresIn", CODE_TTL));
out:
	OPENSSL_cleanse(code, sizeof(code));
	OPENSSL_cleanse(body, sizeof(body));
	if (data != NULL) {
		json_object_clear(data);
		json_decref(data);
	}
	free(hash);
	return r;
}

/* ---- sic/activate/initialize --------------------------------------------------------- */

int
sic_activate_initialize(struct gw_request *req, struct gw_reply *rep)
{
	const char *code = NULL, *device = NULL, *p;
	PGresult *res = NULL;
	uint8_t digest[SHA256_DIGEST_LENGTH], challenge[CHALLENGE_LEN], *stored = NULL;
	size_t storedlen = 0;
	char *chal_bytea = NULL, *chal_b64 = NULL, code_id[GW_UUID_LEN + 1];
	int r;

	if ((r = gw_get_str(req, rep, "activationCode", 16, true, &code)) != 0 ||
	    (r = sg_get_device_uuid(req, rep, &device)) != 0)
		goto out;
	for (p = code; *p; p++)
		if (*p < '0' || *p > '9')
			break;
	if (*p != '\0' || strlen(code) != CODE_DIGITS) {
		r = gw_error(rep, 400, "invalid_request", "field 'activationCode' must be %d digits",
		    CODE_DIGITS);
		goto out;
	}
	if ((r = gw_tx_begin(req)) != 0)
		goto out;
	if ((r = gw_db_query(req->db, &res,
	    "SELECT id, code_hash, tries, expires_at <= now() AS expired FROM sic_activation_codes"
	    " WHERE user_id = $1 AND used_at IS NULL ORDER BY created_at DESC LIMIT 1 FOR UPDATE",
	    1, req->principal.account_id)) != 0)
		goto out;
	if (PQntuples(res) != 1) {
		r = gw_error(rep, 410, "expired", "no activation code is pending; request a new one");
		goto out;
	}
	snprintf(code_id, sizeof(code_id), "%s", gw_val(res, 0, "id"));
	if (atoi(gw_val(res, 0, "tries")) >= CODE_TRIES) {
		r = gw_error(rep, 410, "expired",
		    "the activation code was entered wrongly too often; request a new one");
		goto out;
	}
	if (strcmp(gw_val(res, 0, "expired"), "t") == 0) {
		r = gw_error(rep, 410, "expired", "the activation code has expired; request a new one");
		goto out;
	}
	if ((r = sg_unbytea(gw_val(res, 0, "code_hash"), &stored, &storedlen)) != 0)
		goto out;
	SHA256((const uint8_t *)code, CODE_DIGITS, digest);
	if (storedlen != sizeof(digest) || CRYPTO_memcmp(stored, digest, sizeof(digest)) != 0) {
		/* A wrong code counts a try, and the count must stick. */
		if ((r = gw_db_query(req->db, NULL,
		    "UPDATE sic_activation_codes SET tries = tries + 1 WHERE id = $1", 1, code_id)) != 0 ||
		    (r = gw_tx_commit(req)) != 0)
			goto out;
		r = gw_error(rep, 400, "invalid_request", "field 'activationCode' is wrong");
		goto out;
	}
	gw_random_bytes(challenge, sizeof(challenge));
	if ((chal_bytea = sg_bytea(challenge, sizeof(challenge))) == NULL ||
	    (chal_b64 = rssp_b64(challenge, sizeof(challenge))) == NULL) {
		r = RSSP_E_NOMEM;
		goto out;
	}
	PQclear(res);
	res = NULL;
	if ((r = gw_db_query(req->db, NULL,
	    "UPDATE sic_activation_codes SET used_at = now() WHERE id = $1", 1, code_id)) != 0 ||
	    (r = gw_db_query(req->db, &res,
	    "INSERT INTO sic_activations (user_id, code_id, device_uuid, challenge, expires_at)"
	    " VALUES ($1, $2, $3, $4, now() + interval '600 seconds') RETURNING id", 4,
	    req->principal.account_id, code_id, device, chal_bytea)) != 0 ||
	    (r = gw_tx_commit(req)) != 0)
		goto out;
	r = gw_reply_json(rep, 200, json_pack("{s:s,s:s,s:i}", "activationID",
	    gw_val(res, 0, "id"), "challenge", chal_b64, "expiresIn", ACTIVATION_TTL));
out:
	OPENSSL_cleanse(digest, sizeof(digest));
	free(stored);
	free(chal_bytea);
	free(chal_b64);
	PQclear(res);
	return r;
}

/* ---- sic/activate/sendDevice --------------------------------------------------------- */

/* Revokes the user's active device: its credentials fall back to NEW (the engine never
 * re-binds a key to another KAK: a new device means a new key) and its pending requests
 * are cancelled. Inside the caller's transaction. */
static int
revoke_active_device(struct gw_request *req, const char *user_id, PGresult **resp)
{
	int r;

	if ((r = gw_db_query(req->db, resp,
	    "WITH d AS (UPDATE devices SET status = 'REVOKED', revoked_at = now()"
	    "   WHERE user_id = $1 AND status = 'ACTIVE' RETURNING id),"
	    " c AS (UPDATE credentials SET status = 'NEW', device_id = NULL, key_label = NULL,"
	    "   binding = NULL, certificate = NULL, chain = NULL, public_key = NULL,"
	    "   subject_dn = NULL, issuer_dn = NULL, serial_number = NULL, valid_from = NULL,"
	    "   valid_to = NULL, act_device_id = NULL, act_nonce = NULL, act_otp_hash = NULL"
	    "   WHERE owner_id = $1 AND status IN ('NEW', 'ACTIVE')"
	    "   AND (device_id IN (SELECT id FROM d) OR act_device_id IN (SELECT id FROM d)) RETURNING id),"
	    " q AS (UPDATE auth_requests SET status = 'CANCELLED', cancelled_at = now()"
	    "   WHERE device_id IN (SELECT id FROM d) AND status = 'PENDING' RETURNING id),"
	    " s AS (UPDATE auth_requests SET remaining = 0"
	    "   WHERE device_id IN (SELECT id FROM d) AND status = 'CONFIRMED' RETURNING id)"
	    " SELECT (SELECT count(*) FROM d), (SELECT count(*) FROM c), (SELECT count(*) FROM q)",
	    1, user_id)) != 0)
		return r;
	return gw_db_query(req->db, NULL,
	    "SELECT pg_notify('rssp_requests', r.id::text) FROM auth_requests r JOIN devices d"
	    " ON d.id = r.device_id WHERE d.user_id = $1 AND r.status = 'CANCELLED'"
	    " AND r.cancelled_at = now()", 1, user_id);
}

int
sic_activate_send_device(struct gw_request *req, struct gw_reply *rep)
{
	const char *act_id = NULL, *device = NULL, *name = NULL, *platform = NULL,
	    *push = NULL, *sign_algo = NULL, *sha_algo = NULL;
	uint8_t *kak = NULL, *sig = NULL, *challenge = NULL;
	size_t kaklen = 0, siglen = 0, challen = 0;
	EVP_PKEY *pk = NULL;
	PGresult *res = NULL;
	char *kak_bytea = NULL, algo_s[8];
	int r, kak_algo = 0;

	if ((r = sg_get_uuid(req, rep, "activationID", true, &act_id)) != 0 ||
	    (r = sg_get_device_uuid(req, rep, &device)) != 0 ||
	    (r = gw_get_str(req, rep, "deviceName", 100, true, &name)) != 0 ||
	    (r = gw_get_str(req, rep, "platform", 50, true, &platform)) != 0 ||
	    (r = gw_get_str(req, rep, "pushToken", 512, false, &push)) != 0 ||
	    (r = gw_get_b64(req, rep, "kakPublicKey", 4096, true, &kak, &kaklen)) != 0 ||
	    (r = gw_get_str(req, rep, "signAlgo", 32, true, &sign_algo)) != 0 ||
	    (r = gw_get_str(req, rep, "shaAlgo", 16, true, &sha_algo)) != 0 ||
	    (r = gw_get_b64(req, rep, "signature", 2048, true, &sig, &siglen)) != 0)
		goto out;
	if (strcmp(sign_algo, "RSASSA-PSS") != 0 && strcmp(sign_algo, "ECDSA") != 0) {
		r = gw_error(rep, 400, "invalid_request",
		    "field 'signAlgo' must be \"RSASSA-PSS\" or \"ECDSA\"");
		goto out;
	}
	if (strcmp(sha_algo, "sha256") != 0 && strcmp(sha_algo, "sha512") != 0) {
		r = gw_error(rep, 400, "invalid_request", "field 'shaAlgo' must be \"sha256\" or \"sha512\"");
		goto out;
	}
	if ((r = sic_kak_parse(kak, kaklen, sign_algo, sha_algo, &kak_algo, &pk)) != 0) {
		if (r == RSSP_E_UNSUPPORTED && strcmp(sign_algo, "ECDSA") == 0 &&
		    strcmp(sha_algo, "sha256") != 0)
			r = gw_error(rep, 400, "invalid_request", "field 'shaAlgo' must be \"sha256\" for ECDSA");
		else
			r = gw_error(rep, 400, "invalid_request", "field 'kakPublicKey' must be the DER "
			    "SubjectPublicKeyInfo of an RSA key of at least 2048 bits (RSASSA-PSS) or "
			    "an EC P-256 key (ECDSA)");
		goto out;
	}
	if ((r = gw_tx_begin(req)) != 0)
		goto out;
	if ((r = gw_db_query(req->db, &res,
	    "SELECT device_uuid, challenge, used_at IS NOT NULL AS used, expires_at <= now() AS expired"
	    " FROM sic_activations WHERE id = $1 AND user_id = $2 FOR UPDATE", 2,
	    act_id, req->principal.account_id)) != 0)
		goto out;
	if (PQntuples(res) != 1) {
		r = gw_error(rep, 404, "not_found", "no such activation in field 'activationID'");
		goto out;
	}
	if (strcmp(gw_val(res, 0, "used"), "t") == 0) {
		r = gw_error(rep, 409, "conflict", "the activation in 'activationID' was used already");
		goto out;
	}
	if (strcmp(gw_val(res, 0, "expired"), "t") == 0) {
		r = gw_error(rep, 410, "expired", "the activation in 'activationID' has expired");
		goto out;
	}
	if (strcmp(gw_val(res, 0, "device_uuid"), device) != 0) {
		r = gw_error(rep, 400, "invalid_request",
		    "field 'deviceUUID' is not the device of activate/initialize");
		goto out;
	}
	if ((r = sg_unbytea(gw_val(res, 0, "challenge"), &challenge, &challen)) != 0)
		goto out;
	/* Proof of possession: the KAK signed the raw challenge. */
	if (kak_verify(pk, kak_algo, challenge, challen, sig, siglen) != 0) {
		r = gw_error(rep, 400, "invalid_request",
		    "field 'signature' is not the KAK's signature over the challenge");
		goto out;
	}
	PQclear(res);
	res = NULL;
	if ((r = revoke_active_device(req, req->principal.account_id, &res)) != 0)
		goto out;
	PQclear(res);
	res = NULL;
	if ((kak_bytea = sg_bytea(kak, kaklen)) == NULL) {
		r = RSSP_E_NOMEM;
		goto out;
	}
	snprintf(algo_s, sizeof(algo_s), "%d", kak_algo);
	r = gw_db_query(req->db, NULL,
	    "INSERT INTO devices (user_id, device_uuid, name, platform, push_token, kak_spki,"
	    " kak_algo, sign_algo, sha_algo, status)"
	    " VALUES ($1, $2, $3, $4, $5, $6, $7::int, $8, $9, 'ACTIVE')", 9,
	    req->principal.account_id, device, name, platform, push, kak_bytea, algo_s,
	    sign_algo, sha_algo);
	if (r == RSSP_E_CONFLICT) {
		r = gw_error(rep, 409, "conflict", "field 'deviceUUID' is active for another user");
		goto out;
	}
	if (r != 0 ||
	    (r = gw_db_query(req->db, NULL,
	    "UPDATE sic_activations SET used_at = now() WHERE id = $1", 1, act_id)) != 0 ||
	    (r = gw_tx_commit(req)) != 0)
		goto out;
	log_info("device activated for account %s", req->principal.account_id);
	r = gw_reply_json(rep, 200, json_pack("{s:s,s:s}", "deviceUUID", device, "status", "ACTIVE"));
out:
	EVP_PKEY_free(pk);
	free(kak);
	free(sig);
	free(challenge);
	free(kak_bytea);
	PQclear(res);
	return r;
}

/* ---- sic/status, admin/devices/revoke ---------------------------------------------- */

int
sic_status(struct gw_request *req, struct gw_reply *rep)
{
	const char *user_id = NULL;
	struct sg_account a;
	PGresult *res = NULL;
	json_t *o = NULL;
	int r;

	if ((r = sg_get_uuid(req, rep, "userID", false, &user_id)) != 0 ||
	    (r = sg_account_for(req, rep, user_id, "userID", &a)) != 0)
		goto out;
	if ((r = gw_db_query(req->db, &res,
	    "SELECT status, device_uuid, name,"
	    " to_char(activated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
	    " AS activated_at"
	    " FROM devices WHERE user_id = $1 ORDER BY (status = 'ACTIVE') DESC, activated_at DESC"
	    " LIMIT 1", 1, a.id)) != 0)
		goto out;
	if (PQntuples(res) == 1 && strcmp(gw_val(res, 0, "status"), "ACTIVE") == 0) {
		o = json_pack("{s:s,s:s,s:s,s:s}", "status", "ACTIVE", "deviceUUID",
		    gw_val(res, 0, "device_uuid"), "deviceName", gw_val(res, 0, "name"), "activatedAt",
		    gw_val(res, 0, "activated_at"));
	} else {
		int had = PQntuples(res) == 1;
		PQclear(res);
		res = NULL;
		if ((r = gw_db_query(req->db, &res,
		    "SELECT 1 FROM sic_activation_codes WHERE user_id = $1 AND used_at IS NULL"
		    " AND expires_at > now() AND tries < 5 UNION ALL SELECT 1 FROM sic_activations"
		    " WHERE user_id = $1 AND used_at IS NULL AND expires_at > now() LIMIT 1",
		    1, a.id)) != 0)
			goto out;
		o = json_pack("{s:s}", "status", PQntuples(res) > 0 ? "PENDING" :
		    had ? "REVOKED" : "NONE");
	}
	r = gw_reply_json(rep, 200, o);
out:
	PQclear(res);
	return r;
}

int
sic_admin_devices_revoke(struct gw_request *req, struct gw_reply *rep)
{
	const char *user_id = NULL, *device = NULL;
	PGresult *res = NULL;
	char uid[GW_UUID_LEN + 1];
	int r;

	if ((r = sg_get_uuid(req, rep, "userID", false, &user_id)) != 0 ||
	    (r = gw_get_str(req, rep, "deviceUUID", RSSP_MAX_ID_LEN, false, &device)) != 0)
		goto out;
	if ((user_id == NULL) == (device == NULL)) {
		r = gw_error(rep, 400, "invalid_request", "give exactly one of field 'userID' or field 'deviceUUID'");
		goto out;
	}
	if ((r = gw_tx_begin(req)) != 0)
		goto out;
	if ((r = gw_db_query(req->db, &res,
	    "SELECT user_id FROM devices WHERE status = 'ACTIVE' AND"
	    " (user_id = $1::uuid OR device_uuid = $2) LIMIT 1", 2, user_id, device)) != 0)
		goto out;
	if (PQntuples(res) != 1) {
		r = gw_error(rep, 404, "not_found", "no active device for field '%s'",
		    user_id ? "userID" : "deviceUUID");
		goto out;
	}
	snprintf(uid, sizeof(uid), "%s", gw_val(res, 0, "user_id"));
	PQclear(res);
	res = NULL;
	if ((r = revoke_active_device(req, uid, &res)) != 0 || (r = gw_tx_commit(req)) != 0)
		goto out;
	log_info("device of account %s revoked by an admin", uid);
	r = gw_reply_json(rep, 200, json_pack("{s:s}", "status", "REVOKED"));
out:
	PQclear(res);
	return r;
}
