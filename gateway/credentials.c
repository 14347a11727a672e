/* credentials.c - credentials: creation (RA issuance), list, info, activation on the
 * signer's device (the engine generates the key and certificate), cancel, revoke. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "db.h"
#include "engine_health.h"
#include "gw.h"
#include "metrics.h"
#include "rssp_log.h"
#include "secrets.h"
#include "sic.h"
#include "signing.h"
#include "tenant.h"
#include "enrollments.h"

#define ACT_TTL 300
#define ACT_NONCE_LEN 32
#define OTP_DIGITS 8
#define OTP_TRIES 5

#define CRED_COLS \
	"c.id, c.owner_id AS tenant_account, c.status, c.key_algo, c.validity_days, c.description," \
	" coalesce(a.registered_by::text, '') AS tenant_registered_by," \
	" coalesce(a.company_id::text, '') AS tenant_company, a.full_name"
/* All columns, these and the ones a caller adds, are read by name (gw_val): id,
 * tenant_account, status, key_algo, validity_days, description, ... */

/* Loads a credential (the CRED_COLS columns first, then extra) that the caller may use
 * in mode (the tenant rule, tenant.h). forupdate locks the row. Sets 404/403. */
static int
cred_load(struct gw_request *req, struct gw_reply *rep, const char *cred_id,
    enum tenant_mode mode, const char *extra, int forupdate, PGresult **resp)
{
	char sql[1024];

	snprintf(sql, sizeof(sql), "SELECT " CRED_COLS "%s%s FROM credentials c JOIN accounts a"
	    " ON a.id = c.owner_id WHERE c.id = $1%s", extra ? ", " : "", extra ? extra : "",
	    forupdate ? " FOR UPDATE OF c" : "");
	return tenant_load(req, rep, mode, sql, 1, &cred_id,
	    "no such credential in 'credentialID'", "the credential in 'credentialID' is not yours",
	    resp);
}

/* ---- certificates and the OTP --------------------------------------------- */

/* RFC 3339 UTC of an ASN1_TIME into buf[32]; "" when it does not convert. */
static void
asn1_time_rfc3339(const ASN1_TIME *t, char *buf, size_t len)
{
	struct tm tm;

	buf[0] = '\0';
	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return;
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static char *
x509_name_text(const X509_NAME *n)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *s = NULL, *p;
	long len;

	if (b == NULL)
		return NULL;
	/* the BIO's data is not NUL-terminated */
	if (X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253) >= 0 &&
	    (len = BIO_get_mem_data(b, &p)) >= 0 && (s = malloc((size_t)len + 1)) != NULL) {
		memcpy(s, p, (size_t)len);
		s[len] = '\0';
	}
	BIO_free(b);
	return s;
}

struct cert_fields {
	char *subject_dn, *issuer_dn, *serial_hex;
	char valid_from[32], valid_to[32];
};

static void
cert_fields_release(struct cert_fields *f)
{
	free(f->subject_dn);
	free(f->issuer_dn);
	OPENSSL_free(f->serial_hex);
	memset(f, 0, sizeof(*f));
}

/* Reads the fields credentials/info shows from a DER certificate. Returns 0 or
 * RSSP_E_INVAL; on success the caller releases *f with cert_fields_release(). */
static int
cert_fields_get(const uint8_t *der, size_t len, struct cert_fields *f)
{
	const unsigned char *p = der;
	X509 *x = NULL;
	BIGNUM *bn = NULL;
	struct cert_fields t = { 0 };
	int r = RSSP_E_INVAL;

	if ((x = d2i_X509(NULL, &p, (long)len)) == NULL)
		goto out;
	if ((t.subject_dn = x509_name_text(X509_get_subject_name(x))) == NULL ||
	    (t.issuer_dn = x509_name_text(X509_get_issuer_name(x))) == NULL ||
	    (bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL)) == NULL ||
	    (t.serial_hex = BN_bn2hex(bn)) == NULL)
		goto out;
	asn1_time_rfc3339(X509_get0_notBefore(x), t.valid_from, sizeof(t.valid_from));
	asn1_time_rfc3339(X509_get0_notAfter(x), t.valid_to, sizeof(t.valid_to));
	*f = t;
	memset(&t, 0, sizeof(t));
	r = 0;
out:
	cert_fields_release(&t);
	BN_free(bn);
	X509_free(x);
	ERR_clear_error();
	return r;
}

/* Encrypts otp to an RSA KAK with RSA-OAEP, SHA-256 and MGF1-SHA-256. */
static int
otp_encrypt(EVP_PKEY *pk, const char *otp, uint8_t **outp, size_t *outlenp)
{
	EVP_PKEY_CTX *ctx = NULL;
	uint8_t *out = NULL;
	size_t outlen = 0;
	int r = RSSP_E_CRYPTO;

	if ((ctx = EVP_PKEY_CTX_new(pk, NULL)) == NULL ||
	    EVP_PKEY_encrypt_init(ctx) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) != 1 ||
	    EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256()) != 1 ||
	    EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) != 1 ||
	    EVP_PKEY_encrypt(ctx, NULL, &outlen, (const unsigned char *)otp, strlen(otp)) != 1 ||
	    (out = malloc(outlen)) == NULL ||
	    EVP_PKEY_encrypt(ctx, out, &outlen, (const unsigned char *)otp, strlen(otp)) != 1)
		goto out;
	*outp = out;
	*outlenp = outlen;
	out = NULL;
	r = 0;
out:
	free(out);
	EVP_PKEY_CTX_free(ctx);
	ERR_clear_error();
	return r;
}

/* ---- credentials/create, list, info ---------------------------------------------- */

int
cred_create(struct gw_request *req, struct gw_reply *rep)
{
	const char *user_id = NULL, *key_algo = NULL, *desc = NULL;
	long long days = 365;
	struct sg_account a;
	PGresult *res = NULL;
	char days_s[24];
	int r;

	if ((r = sg_get_uuid(req, rep, "userID", true, &user_id)) != 0 ||
	    (r = gw_get_str(req, rep, "keyAlgo", 16, true, &key_algo)) != 0 ||
	    (r = gw_get_int(req, rep, "validityDays", 1, 3650, false, 365, &days)) != 0 ||
	    (r = gw_get_str(req, rep, "description", 255, false, &desc)) != 0)
		goto out;
	if (rssp_key_alg_by_name(key_algo) == NULL) {
		r = gw_error(rep, 400, "invalid_request",
		    "field 'keyAlgo' must be rsa2048, rsa3072, ecp256 or ecp384");
		goto out;
	}
	if ((r = sg_account_for(req, rep, user_id, "userID", &a)) != 0)
		goto out;
	if (strcmp(a.role, "signer") != 0 && strcmp(a.role, "company_admin") != 0) {
		r = gw_error(rep, 409, "conflict", "the user in 'userID' is not a signer");
		goto out;
	}
	if (strcmp(a.status, "DISABLED") == 0) {
		r = gw_error(rep, 409, "conflict", "the user in 'userID' is disabled");
		goto out;
	}
	snprintf(days_s, sizeof(days_s), "%lld", days);
	if ((r = gw_db_query(req->db, &res,
	    "INSERT INTO credentials (owner_id, created_by, key_algo, validity_days, description, status)"
	    " VALUES ($1, $2, $3, $4::int, coalesce($5, ''), 'NEW') RETURNING id", 5,
	    a.id, req->principal.account_id, key_algo, days_s, desc)) != 0)
		goto out;
	r = gw_reply_json(rep, 201, json_pack("{s:s,s:s}", "credentialID", gw_val(res, 0, "id"),
	    "status", "NEW"));
out:
	PQclear(res);
	return r;
}

#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

int
cred_list(struct gw_request *req, struct gw_reply *rep)
{
	const struct gw_principal *p = &req->principal;
	const char *user_id = NULL, *status = NULL, *page = NULL;
	long long max = 100;
	PGresult *res = NULL;
	json_t *ids = NULL, *list = NULL, *o;
	char lim[24];
	int r, i, n;

	if ((r = sg_get_uuid(req, rep, "userID", false, &user_id)) != 0 ||
	    (r = gw_get_str(req, rep, "status", 16, false, &status)) != 0 ||
	    (r = gw_get_int(req, rep, "maxResults", 1, 1000, false, 100, &max)) != 0 ||
	    (r = sg_get_uuid(req, rep, "pageToken", false, &page)) != 0)
		goto out;
	if (status != NULL && strcmp(status, "NEW") != 0 && strcmp(status, "ACTIVE") != 0 &&
	    strcmp(status, "CANCELLED") != 0 && strcmp(status, "REVOKED") != 0) {
		r = gw_error(rep, 400, "invalid_request",
		    "field 'status' must be NEW, ACTIVE, CANCELLED or REVOKED");
		goto out;
	}
	if (user_id != NULL) {
		struct sg_account a;
		if ((r = sg_account_for(req, rep, user_id, "userID", &a)) != 0)
			goto out;
	}
	snprintf(lim, sizeof(lim), "%lld", max + 1);
	if ((r = gw_db_query(req->db, &res,
	    "SELECT c.id, c.status, c.key_algo, coalesce(c.subject_dn, '') AS subject_dn,"
	    " coalesce(" TS("c.valid_to") ", '') AS valid_to"
	    " FROM credentials c JOIN accounts a ON a.id = c.owner_id"
	    " WHERE " TENANT_SEE_SQL("c.owner_id", "a", "$1", "$2", "$3")
	    " AND ($4::uuid IS NULL OR c.owner_id = $4::uuid) AND ($5::text IS NULL OR c.status = $5)"
	    " AND ($6::uuid IS NULL OR c.id > $6::uuid) ORDER BY c.id LIMIT $7::int", 7,
	    p->account_id, gw_role_name(p->role), p->company_id[0] ? p->company_id : NULL,
	    user_id, status, page, lim)) != 0)
		goto out;
	if ((ids = json_array()) == NULL || (list = json_array()) == NULL) {
		r = RSSP_E_NOMEM;
		goto out;
	}
	n = PQntuples(res);
	for (i = 0; i < n && i < max; i++) {
		o = json_pack("{s:s,s:s,s:s,s:s}", "credentialID", gw_val(res, i, "id"),
		    "status", gw_val(res, i, "status"), "keyAlgo", gw_val(res, i, "key_algo"),
		    "subjectDN", gw_val(res, i, "subject_dn"));
		if (o != NULL && gw_val(res, i, "valid_to")[0])
			json_object_set_new(o, "validTo", json_string(gw_val(res, i, "valid_to")));
		if (o == NULL || json_array_append_new(list, o) != 0 ||
		    json_array_append_new(ids, json_string(gw_val(res, i, "id"))) != 0) {
			r = RSSP_E_NOMEM;
			goto out;
		}
	}
	o = json_pack("{s:o,s:o}", "credentialIDs", ids, "credentials", list);
	ids = list = NULL;
	if (o != NULL && n > max)
		json_object_set_new(o, "nextPageToken", json_string(gw_val(res, (int)max - 1, "id")));
	r = gw_reply_json(rep, 200, o);
out:
	json_decref(ids);
	json_decref(list);
	PQclear(res);
	return r;
}

static int
b64_append(json_t *arr, const uint8_t *der, size_t len)
{
	char *s = rssp_b64(der, len);
	int r = s == NULL || json_array_append_new(arr, json_string(s)) != 0 ? RSSP_E_NOMEM : 0;

	free(s);
	return r;
}

int
cred_info(struct gw_request *req, struct gw_reply *rep)
{
	const char *cred_id = NULL, *certs = NULL;
	bool cert_info = true, auth_info = true;
	PGresult *res = NULL;
	uint8_t *cert = NULL, *chain = NULL;
	size_t certlen = 0, chainlen = 0;
	json_t *o = NULL, *key = NULL, *c = NULL, *arr = NULL, *algos = NULL;
	const char *status, *kalgo;
	const struct rssp_key_alg *ka;
	const struct rssp_sign_alg *sa;
	size_t i;
	int r;

	if ((r = sg_get_uuid(req, rep, "credentialID", true, &cred_id)) != 0 ||
	    (r = gw_get_str(req, rep, "certificates", 16, false, &certs)) != 0 ||
	    (r = gw_get_bool(req, rep, "certInfo", false, true, &cert_info)) != 0 ||
	    (r = gw_get_bool(req, rep, "authInfo", false, true, &auth_info)) != 0)
		goto out;
	if (certs == NULL)
		certs = "single";
	if (strcmp(certs, "none") != 0 && strcmp(certs, "single") != 0 && strcmp(certs, "chain") != 0) {
		r = gw_error(rep, 400, "invalid_request",
		    "field 'certificates' must be \"none\", \"single\" or \"chain\"");
		goto out;
	}
	if ((r = cred_load(req, rep, cred_id, TENANT_SEE,
	    "c.certificate, c.chain, c.public_key, coalesce(c.subject_dn, '') AS subject_dn,"
	    " coalesce(c.issuer_dn, '') AS issuer_dn, coalesce(c.serial_number, '') AS serial,"
	    " coalesce(" TS("c.valid_from") ", '') AS valid_from,"
	    " coalesce(" TS("c.valid_to") ", '') AS valid_to,"
	    " coalesce(c.valid_to < now(), false) AS expired", 0, &res)) != 0)
		goto out;
	status = gw_val(res, 0, "status");
	kalgo = gw_val(res, 0, "key_algo");
	if ((ka = rssp_key_alg_by_name(kalgo)) == NULL) {
		log_error("credential %s has an unknown key algorithm", cred_id);
		r = RSSP_E_INTERNAL;
		goto out;
	}
	/* the signAlgo OIDs that fit the key, in the order gateway/openapi.json lists them */
	if ((algos = json_array()) == NULL) {
		r = RSSP_E_NOMEM;
		goto out;
	}
	for (i = 0; (sa = rssp_sign_alg_at(i)) != NULL; i++)
		if (sa->type == ka->type)
			json_array_append_new(algos, json_string(sa->oid));
	key = json_pack("{s:s,s:O,s:i}", "status", strcmp(status, "ACTIVE") == 0 ? "enabled" : "disabled",
	    "algo", algos, "len", (int)ka->bits);
	if (key != NULL && ka->type == RSSP_KEYTYPE_EC)
		json_object_set_new(key, "curve", json_string(ka->algo == RSSP_KEY_EC_P256 ?
		    "1.2.840.10045.3.1.7" : "1.3.132.0.34"));
	o = json_pack("{s:s,s:s,s:s,s:s,s:o,s:s,s:s,s:i}", "credentialID", gw_val(res, 0, "id"),
	    "description", gw_val(res, 0, "description"), "status", status, "keyAlgo", kalgo,
	    "key", key, "authMode", "implicit", "SCAL", "2", "multisign", RSSP_MAX_HASHES);
	key = NULL;
	if (o == NULL) {
		r = RSSP_E_NOMEM;
		goto out;
	}
	if (!gw_isnull(res, 0, "certificate")) {
		const char *cst = strcmp(status, "REVOKED") == 0 ? "revoked" :
		    strcmp(gw_val(res, 0, "expired"), "t") == 0 ? "expired" : "valid";
		if ((r = sg_unbytea(gw_val(res, 0, "certificate"), &cert, &certlen)) != 0 ||
		    (!gw_isnull(res, 0, "chain") &&
		    (r = sg_unbytea(gw_val(res, 0, "chain"), &chain, &chainlen)) != 0))
			goto out;
		if ((c = json_pack("{s:s}", "status", cst)) == NULL || (arr = json_array()) == NULL) {
			r = RSSP_E_NOMEM;
			goto out;
		}
		if (strcmp(certs, "none") != 0 && (r = b64_append(arr, cert, certlen)) != 0)
			goto out;
		if (strcmp(certs, "chain") == 0) {
			const unsigned char *p = chain, *end = chain + chainlen;
			while (p < end) {
				const unsigned char *start = p;
				X509 *x = d2i_X509(NULL, &p, (long)(end - p));
				if (x == NULL) {
					ERR_clear_error();
					log_error("stored chain of credential %s does not parse", cred_id);
					r = RSSP_E_INTERNAL;
					goto out;
				}
				X509_free(x);
				if ((r = b64_append(arr, start, (size_t)(p - start))) != 0)
					goto out;
			}
		}
		json_object_set_new(c, "certificates", arr);
		arr = NULL;
		if (cert_info) {
			json_object_set_new(c, "issuerDN", json_string(gw_val(res, 0, "issuer_dn")));
			json_object_set_new(c, "serialNumber", json_string(gw_val(res, 0, "serial")));
			json_object_set_new(c, "subjectDN", json_string(gw_val(res, 0, "subject_dn")));
			json_object_set_new(c, "validFrom", json_string(gw_val(res, 0, "valid_from")));
			json_object_set_new(c, "validTo", json_string(gw_val(res, 0, "valid_to")));
		}
		json_object_set_new(o, "cert", c);
		c = NULL;
	}
	r = gw_reply_json(rep, 200, o);
	o = NULL;
out:
	json_decref(o);
	json_decref(key);
	json_decref(c);
	json_decref(arr);
	json_decref(algos);
	free(cert);
	free(chain);
	PQclear(res);
	return r;
}

/* ---- credentials/activate/request, response, cancel; revoke ------------------------ */

/* The caller's ACTIVE device with this deviceUUID: id, kak_spki, kak_algo. Sets 403. */
static int
own_device(struct gw_request *req, struct gw_reply *rep, const char *device, PGresult **resp)
{
	PGresult *res = NULL;
	int r;

	if ((r = gw_db_query(req->db, &res,
	    "SELECT id, kak_spki, kak_algo FROM devices WHERE user_id = $1 AND device_uuid = $2"
	    " AND status = 'ACTIVE'", 2, req->principal.account_id, device)) != 0)
		goto out;
	if (PQntuples(res) != 1) {
		r = gw_error(rep, 403, "access_denied", "field 'deviceUUID' is not your active device");
		goto out;
	}
	*resp = res;
	res = NULL;
out:
	PQclear(res);
	return r;
}

/* The caller's NEW credential cred_id (cred_load with fields and lock) and its ACTIVE
 * device (own_device) into *resp and *devp (the caller clears both, also on failure).
 * Sets 404/403 as those do, 409 when the credential is not NEW. */
static int
new_cred_and_device(struct gw_request *req, struct gw_reply *rep, const char *cred_id,
    const char *device, const char *fields, int lock, PGresult **resp, PGresult **devp)
{
	int r;

	if ((r = cred_load(req, rep, cred_id, TENANT_OWN, fields, lock, resp)) != 0 ||
	    (r = own_device(req, rep, device, devp)) != 0)
		return r;
	if (strcmp(gw_val(*resp, 0, "status"), "NEW") != 0)
		return gw_error(rep, 409, "conflict", "the credential is %s, not NEW",
		    gw_val(*resp, 0, "status"));
	return 0;
}

int
cred_activate_request(struct gw_request *req, struct gw_reply *rep)
{
	const char *cred_id = NULL, *device = NULL;
	PGresult *res = NULL, *dev = NULL;
	uint8_t nonce[ACT_NONCE_LEN], *spki = NULL, *ad = NULL, *otp_enc = NULL;
	size_t spkilen = 0, adlen = 0, otp_enclen = 0;
	char otp[OTP_DIGITS + 1] = "", *nonce_bytea = NULL, *otp_hash = NULL, *ad_b64 = NULL,
	    *otp_b64 = NULL, exp_s[24];
	uint8_t digest[SHA256_DIGEST_LENGTH];
	struct rssp_activation_fields f;
	struct enr_voucher vo = { 0 };
	EVP_PKEY *pk = NULL;
	int r, kak_algo;
	long long exp;
	json_t *o;

	if ((r = sg_get_uuid(req, rep, "credentialID", true, &cred_id)) != 0 ||
	    (r = sg_get_device_uuid(req, rep, &device)) != 0)
		goto out;
	if ((r = gw_tx_begin(req)) != 0 ||
	    (r = new_cred_and_device(req, rep, cred_id, device, NULL, 1, &res, &dev)) != 0)
		goto out;
	/* Only a device a registration authority vouched for activates a key; the
	 * certificate subject is the voucher's (the engine takes it from there alone). */
	if ((r = enr_device_voucher(req, rep, gw_val(dev, 0, "id"), ACT_TTL, &vo)) != 0)
		goto out;
	if ((r = sg_unbytea(gw_val(dev, 0, "kak_spki"), &spki, &spkilen)) != 0)
		goto out;
	kak_algo = atoi(gw_val(dev, 0, "kak_algo"));
	gw_random_bytes(nonce, sizeof(nonce));
	exp = gw_now() + ACT_TTL;
	memset(&f, 0, sizeof(f));
	f.credential_id = gw_val(res, 0, "id");
	f.owner_id = gw_val(res, 0, "tenant_account");
	f.device_uuid = device;
	f.kak_spki = spki;
	f.kak_spki_len = spkilen;
	f.kak_algo = kak_algo;
	f.key_algo = sg_key_algo_parse(gw_val(res, 0, "key_algo"));
	f.subject_cn = vo.v.common_name;
	f.validity_days = (uint32_t)atoi(gw_val(res, 0, "validity_days"));
	f.nonce = nonce;
	f.nonce_len = sizeof(nonce);
	f.expires_at = exp;
	if ((r = rssp_authdata_activation(&f, &ad, &adlen)) != 0)
		goto out;
	if (kak_algo != KAK_ECDSA_P256) { /* an RSA KAK also proves it can decrypt: the OTP */
		int dummy;
		sg_random_digits(otp, OTP_DIGITS);
		SHA256((const uint8_t *)otp, OTP_DIGITS, digest);
		if ((r = sic_kak_parse(spki, spkilen, "RSASSA-PSS", sic_kak_sha_algo(kak_algo),
		    &dummy, &pk)) != 0 ||
		    (r = otp_encrypt(pk, otp, &otp_enc, &otp_enclen)) != 0)
			goto out;
		if ((otp_hash = sg_bytea(digest, sizeof(digest))) == NULL ||
		    (otp_b64 = rssp_b64(otp_enc, otp_enclen)) == NULL) {
			r = RSSP_E_NOMEM;
			goto out;
		}
	}
	if ((nonce_bytea = sg_bytea(nonce, sizeof(nonce))) == NULL ||
	    (ad_b64 = rssp_b64(ad, adlen)) == NULL) {
		r = RSSP_E_NOMEM;
		goto out;
	}
	snprintf(exp_s, sizeof(exp_s), "%lld", exp);
	if ((r = gw_db_query(req->db, NULL,
	    "UPDATE credentials SET act_device_id = $2, act_subject_cn = $3, act_nonce = $4,"
	    " act_expires_at = $5::bigint, act_otp_hash = $6, act_tries = 0 WHERE id = $1", 6,
	    cred_id, gw_val(dev, 0, "id"), f.subject_cn, nonce_bytea, exp_s, otp_hash)) != 0 ||
	    (r = gw_tx_commit(req)) != 0)
		goto out;
	o = json_pack("{s:s,s:s,s:s,s:s,s:i}", "credentialID", cred_id, "authData", ad_b64,
	    "signAlgo", sic_kak_sign_algo(kak_algo), "shaAlgo", sic_kak_sha_algo(kak_algo),
	    "expiresIn", ACT_TTL);
	if (o != NULL && otp_b64 != NULL)
		json_object_set_new(o, "otpEncrypted", json_string(otp_b64));
	r = gw_reply_json(rep, 200, o);
out:
	OPENSSL_cleanse(otp, sizeof(otp));
	enr_voucher_release(&vo);
	EVP_PKEY_free(pk);
	free(spki);
	free(ad);
	free(otp_enc);
	free(nonce_bytea);
	free(otp_hash);
	free(ad_b64);
	free(otp_b64);
	PQclear(res);
	PQclear(dev);
	return r;
}

int
cred_activate_response(struct gw_request *req, struct gw_reply *rep)
{
	const char *cred_id = NULL, *device = NULL, *sign_algo = NULL, *sha_algo = NULL,
	    *otp = NULL;
	uint8_t *sig = NULL, *spki = NULL, *nonce = NULL, *otp_hash = NULL;
	size_t siglen = 0, spkilen = 0, noncelen = 0, otp_hashlen = 0;
	uint8_t digest[SHA256_DIGEST_LENGTH];
	PGresult *res = NULL, *dev = NULL;
	struct rssp_activation_fields f;
	struct engine_activation ar = { 0 };
	struct engine_result er;
	enum engine_status est;
	struct enr_voucher vo = { 0 };
	struct engine_voucher evo;
	struct cert_fields cf = { 0 };
	char *p_label = NULL, *p_bind = NULL, *p_cert = NULL, *p_chain = NULL,
	    *p_pub = NULL, *cert_b64 = NULL;
	int r, kak_algo;

	if ((r = sg_get_uuid(req, rep, "credentialID", true, &cred_id)) != 0 ||
	    (r = sg_get_device_uuid(req, rep, &device)) != 0 ||
	    (r = gw_get_str(req, rep, "signAlgo", 32, false, &sign_algo)) != 0 ||
	    (r = gw_get_str(req, rep, "shaAlgo", 16, false, &sha_algo)) != 0 ||
	    (r = gw_get_b64(req, rep, "authorizeSignature", 2048, true, &sig, &siglen)) != 0 ||
	    (r = gw_get_str(req, rep, "otpDecrypted", 16, false, &otp)) != 0)
		goto out;
	/* No transaction across the engine call (key generation takes seconds): read, call,
	 * then one UPDATE that applies only while the credential is still NEW. */
	if ((r = new_cred_and_device(req, rep, cred_id, device,
	    "c.act_device_id::text AS act_device_id, c.act_subject_cn, c.act_nonce,"
	    " c.act_expires_at, c.act_otp_hash, c.act_tries", 0, &res, &dev)) != 0)
		goto out;
	if (gw_isnull(res, 0, "act_nonce") ||
	    strcmp(gw_val(res, 0, "act_device_id"), gw_val(dev, 0, "id")) != 0) {
		r = gw_error(rep, 409, "conflict",
		    "no activation of this credential is pending for field 'deviceUUID'");
		goto out;
	}
	kak_algo = atoi(gw_val(dev, 0, "kak_algo"));
	if ((sign_algo != NULL && strcmp(sign_algo, sic_kak_sign_algo(kak_algo)) != 0)) {
		r = gw_error(rep, 400, "invalid_request", "field 'signAlgo' must be \"%s\"",
		    sic_kak_sign_algo(kak_algo));
		goto out;
	}
	if ((sha_algo != NULL && strcmp(sha_algo, sic_kak_sha_algo(kak_algo)) != 0)) {
		r = gw_error(rep, 400, "invalid_request", "field 'shaAlgo' must be \"%s\"",
		    sic_kak_sha_algo(kak_algo));
		goto out;
	}
	if (atoll(gw_val(res, 0, "act_expires_at")) <= gw_now()) {
		r = gw_error(rep, 410, "expired", "the activation request has expired; request a new one");
		goto out;
	}
	if (!gw_isnull(res, 0, "act_otp_hash")) {
		if (atoi(gw_val(res, 0, "act_tries")) >= OTP_TRIES) {
			r = gw_error(rep, 410, "expired",
			    "field 'otpDecrypted' was wrong too often; request a new activation");
			goto out;
		}
		if (otp == NULL) {
			r = gw_error(rep, 400, "invalid_request", "missing field 'otpDecrypted'");
			goto out;
		}
		if ((r = sg_unbytea(gw_val(res, 0, "act_otp_hash"), &otp_hash, &otp_hashlen)) != 0)
			goto out;
		SHA256((const uint8_t *)otp, strlen(otp), digest);
		if (otp_hashlen != sizeof(digest) ||
		    CRYPTO_memcmp(digest, otp_hash, sizeof(digest)) != 0) {
			if ((r = gw_db_query(req->db, NULL,
			    "UPDATE credentials SET act_tries = act_tries + 1 WHERE id = $1", 1, cred_id)) != 0)
				goto out;
			r = gw_error(rep, 400, "invalid_request", "field 'otpDecrypted' is wrong");
			goto out;
		}
	}
	if ((r = enr_device_voucher(req, rep, gw_val(dev, 0, "id"), 0, &vo)) != 0)
		goto out;
	if ((r = sg_unbytea(gw_val(dev, 0, "kak_spki"), &spki, &spkilen)) != 0 ||
	    (r = sg_unbytea(gw_val(res, 0, "act_nonce"), &nonce, &noncelen)) != 0)
		goto out;
	/* Exactly the fields stored by activate/request: the engine rebuilds the authData. */
	memset(&f, 0, sizeof(f));
	f.credential_id = gw_val(res, 0, "id");
	f.owner_id = gw_val(res, 0, "tenant_account");
	f.device_uuid = device;
	f.kak_spki = spki;
	f.kak_spki_len = spkilen;
	f.kak_algo = kak_algo;
	f.key_algo = sg_key_algo_parse(gw_val(res, 0, "key_algo"));
	f.subject_cn = gw_val(res, 0, "act_subject_cn");
	f.validity_days = (uint32_t)atoi(gw_val(res, 0, "validity_days"));
	f.nonce = nonce;
	f.nonce_len = noncelen;
	f.expires_at = atoll(gw_val(res, 0, "act_expires_at"));
	/* the engine generates the key now: the longer keygen deadline applies */
	evo.tbs = vo.tbs;
	evo.tbs_len = vo.tbs_len;
	evo.sig = vo.sig;
	evo.sig_len = vo.sig_len;
	evo.ra_key_id = vo.key_id;
	est = engine_activate(req->engine, req->cfg->engine_keygen_timeout_ms, req->request_id,
	    &f, sig, siglen, &evo, &ar, &er);
	gw_metrics_engine_call("authorize", er.grpc_status, er.seconds);
	engine_health_note(&er);
	if (est != ENGINE_OK) {
		r = sg_engine_error(rep, &er, "activation");
		goto out;
	}
	if ((r = cert_fields_get(ar.cert, ar.cert_len, &cf)) != 0) {
		log_error("the engine's certificate for credential %s does not parse", cred_id);
		r = RSSP_E_INTERNAL;
		goto out;
	}
	if ((p_bind = sg_bytea(ar.binding, ar.binding_len)) == NULL ||
	    (p_cert = sg_bytea(ar.cert, ar.cert_len)) == NULL ||
	    (p_chain = sg_bytea(ar.chain, ar.chain_len)) == NULL ||
	    (p_pub = sg_bytea(ar.pub, ar.pub_len)) == NULL ||
	    (cert_b64 = rssp_b64(ar.cert, ar.cert_len)) == NULL) {
		r = RSSP_E_NOMEM;
		goto out;
	}
	p_label = ar.key_label;
	{
		const char *params[] = { cred_id, gw_val(dev, 0, "id"), p_label, p_bind, p_cert,
		    p_chain, cf.subject_dn, cf.issuer_dn, cf.serial_hex,
		    cf.valid_from[0] ? cf.valid_from : NULL, cf.valid_to[0] ? cf.valid_to : NULL, p_pub };
		PGresult *upd = NULL;
		if ((r = gw_db_exec(req->db, &upd,
		    "UPDATE credentials SET status = 'ACTIVE', device_id = $2, key_label = $3,"
		    " binding = $4, certificate = $5, chain = $6, subject_dn = $7, issuer_dn = $8,"
		    " serial_number = $9, valid_from = $10::timestamptz, valid_to = $11::timestamptz,"
		    " activated_at = now(), act_device_id = NULL, act_nonce = NULL, act_otp_hash = NULL,"
		    " act_expires_at = NULL, public_key = $12 WHERE id = $1 AND status = 'NEW'"
		    " AND act_device_id = $2::uuid RETURNING id", 12, params)) != 0)
			goto out;
		r = PQntuples(upd) == 1 ? 0 : RSSP_E_CONFLICT;
		PQclear(upd);
		if (r != 0) {
			/* another activation of it won meanwhile: this key stays unused */
			r = gw_error(rep, 409, "conflict", "the credential was activated or cancelled meanwhile");
			goto out;
		}
	}
	log_info("credential %s activated with key %.100s", cred_id, p_label);
	r = gw_reply_json(rep, 200, json_pack("{s:s,s:s,s:s}", "credentialID", cred_id,
	    "status", "ACTIVE", "certificate", cert_b64));
out:
	engine_activation_release(&ar);
	enr_voucher_release(&vo);
	cert_fields_release(&cf);
	free(sig);
	free(spki);
	free(nonce);
	free(otp_hash);
	free(p_bind);
	free(p_cert);
	free(p_chain);
	free(p_pub);
	free(cert_b64);
	PQclear(res);
	PQclear(dev);
	return r;
}

int
cred_activate_cancel(struct gw_request *req, struct gw_reply *rep)
{
	const char *cred_id = NULL, *device = NULL;
	PGresult *res = NULL, *dev = NULL;
	int r;

	if ((r = sg_get_uuid(req, rep, "credentialID", true, &cred_id)) != 0 ||
	    (r = sg_get_device_uuid(req, rep, &device)) != 0)
		goto out;
	if ((r = gw_tx_begin(req)) != 0 ||
	    (r = new_cred_and_device(req, rep, cred_id, device, NULL, 1, &res, &dev)) != 0)
		goto out;
	if ((r = gw_db_query(req->db, NULL,
	    "UPDATE credentials SET status = 'CANCELLED', act_device_id = NULL, act_nonce = NULL,"
	    " act_otp_hash = NULL WHERE id = $1", 1, cred_id)) != 0 ||
	    (r = gw_tx_commit(req)) != 0)
		goto out;
	r = gw_reply_json(rep, 200, json_pack("{s:s,s:s}", "credentialID", cred_id,
	    "status", "CANCELLED"));
out:
	PQclear(res);
	PQclear(dev);
	return r;
}

int
cred_revoke(struct gw_request *req, struct gw_reply *rep)
{
	const char *cred_id = NULL, *reason = NULL;
	PGresult *res = NULL;
	int r;

	if ((r = sg_get_uuid(req, rep, "credentialID", true, &cred_id)) != 0 ||
	    (r = gw_get_str(req, rep, "reason", 255, false, &reason)) != 0)
		goto out;
	if ((r = gw_tx_begin(req)) != 0 ||
	    (r = cred_load(req, rep, cred_id, TENANT_MANAGE, NULL, 1, &res)) != 0)
		goto out;
	/* A revoked credential signs nothing more: its open requests go too. */
	if ((r = gw_db_query(req->db, NULL,
	    "UPDATE credentials SET status = 'REVOKED', revoked_at = coalesce(revoked_at, now()),"
	    " revoke_reason = coalesce($2, revoke_reason) WHERE id = $1", 2, cred_id, reason)) != 0 ||
	    (r = gw_db_query(req->db, NULL,
	    "UPDATE auth_requests SET remaining = 0 WHERE credential_id = $1", 1, cred_id)) != 0 ||
	    (r = gw_tx_commit(req)) != 0)
		goto out;
	log_info("credential %s revoked", cred_id);
	r = gw_reply_json(rep, 200, json_pack("{s:s,s:s}", "credentialID", cred_id,
	    "status", "REVOKED"));
out:
	PQclear(res);
	return r;
}
