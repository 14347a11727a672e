#include "enrollments.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "config.h"
#include "ra_keys.h"
#include "rssp_log.h"
#include "signing.h"
#include "db.h"

#define WINDOW (RSSP_VOUCHER_MAX_DAYS * 86400LL)
#define RENEW_BEFORE 86400LL   /* a PENDING window this close to its end is renewed */
#define LIST_MAX 1000
#define MAX_RA_SIG 1024

#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* RSSP_RA_KEYS, read once; NULL when unset or unreadable (logged). */
static pthread_mutex_t ra_lock = PTHREAD_MUTEX_INITIALIZER;
static int ra_loaded;
static struct ra_keys *ra;

static const struct ra_keys *
gw_ra_keys(const struct gw_config *cfg)
{
	int r;

	pthread_mutex_lock(&ra_lock);
	if (!ra_loaded) {
		ra_loaded = 1;
		if (cfg != NULL && cfg->ra_keys != NULL && cfg->ra_keys[0] != '\0' &&
		    (r = ra_keys_load(cfg->ra_keys, &ra)) != 0)
			log_error("cannot load the ra keys from %.200s: %s; vouches are not "
			    "checked here", cfg->ra_keys, rssp_strerror(r));
	}
	pthread_mutex_unlock(&ra_lock);
	return ra;
}

static int
unhex32(const char *s, uint8_t out[32])
{
	size_t i;
	int hi, lo;

	if (s == NULL || strlen(s) != 64)
		return -1;
	for (i = 0; i < 32; i++) {
		hi = s[2 * i];
		lo = s[2 * i + 1];
		hi = hi >= '0' && hi <= '9' ? hi - '0' : hi >= 'a' && hi <= 'f' ? hi - 'a' + 10 :
		    hi >= 'A' && hi <= 'F' ? hi - 'A' + 10 : -1;
		lo = lo >= '0' && lo <= '9' ? lo - '0' : lo >= 'a' && lo <= 'f' ? lo - 'a' + 10 :
		    lo >= 'A' && lo <= 'F' ? lo - 'A' + 10 : -1;
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

static int
get_key_id(struct gw_request *req, struct gw_reply *rep, bool required, uint8_t id[32], int *setp)
{
	const char *s = NULL;
	int r;

	*setp = 0;
	if ((r = gw_get_str(req, rep, "raKeyID", 64, required, &s)) != 0)
		return r;
	if (s == NULL)
		return 0;
	if (unhex32(s, id) != 0)
		return gw_error(rep, 400, "invalid_request",
		    "field 'raKeyID' must be 64 hex digits (SHA-256 of the RA key's SubjectPublicKeyInfo)");
	*setp = 1;
	return 0;
}

void
enr_voucher_release(struct enr_voucher *v)
{
	if (v == NULL)
		return;
	free(v->tbs);
	free(v->sig);
	memset(v, 0, sizeof(*v));
}

/* The voucher of a row: user, name, kak (bytea), device, issued_at, not_after. */
static int
voucher_of(const char *user_id, const char *name, const char *kak_bytea, const char *device,
    const char *issued_at, const char *not_after, const uint8_t key_id[32],
    struct rssp_voucher *v)
{
	uint8_t *kak = NULL;
	size_t kaklen = 0;
	int r;

	memset(v, 0, sizeof(*v));
	if ((r = sg_unbytea(kak_bytea, &kak, &kaklen)) != 0)
		return r;
	if (kaklen != 32 || strlen(user_id) > RSSP_VOUCHER_MAX_ID ||
	    strlen(name) > RSSP_VOUCHER_MAX_CN || strlen(device) > RSSP_VOUCHER_MAX_ID) {
		free(kak);
		return RSSP_E_INVAL;
	}
	memcpy(v->kak_sha256, kak, 32);
	free(kak);
	snprintf(v->user_id, sizeof(v->user_id), "%s", user_id);
	snprintf(v->common_name, sizeof(v->common_name), "%s", name);
	snprintf(v->device_uuid, sizeof(v->device_uuid), "%s", device);
	v->issued_at = atoll(issued_at);
	v->not_after = atoll(not_after);
	memcpy(v->ra_key_id, key_id, 32);
	return rssp_voucher_window_ok(v) ? 0 : RSSP_E_INVAL;
}

static json_t *
fields_json(const struct rssp_voucher *v)
{
	char kak[65], key[65];

	ra_key_id_hex(v->kak_sha256, kak);
	ra_key_id_hex(v->ra_key_id, key);
	return json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:s}", "userID", v->user_id,
	    "commonName", v->common_name, "serialNumber", v->user_id, "kakSHA256", kak,
	    "deviceUUID", v->device_uuid, "issuedAt", (json_int_t)v->issued_at,
	    "notAfter", (json_int_t)v->not_after, "raKeyID", key);
}

/* Renews PENDING windows close to their end, and sends vouchers past theirs back to
 * PENDING: what list shows can be signed and used. */
static int
renew(struct gw_request *req)
{
	char now_s[24];

	snprintf(now_s, sizeof(now_s), "%lld", gw_now());
	return gw_db_query(req->db, NULL,
	    "UPDATE enrollments SET status = 'PENDING', voucher = NULL, ra_signature = NULL,"
	    " ra_key_id = NULL, vouched_by = NULL, vouched_at = NULL,"
	    " issued_at = $1::bigint, not_after = $1::bigint + 2592000"
	    " WHERE (status = 'PENDING' AND not_after < $1::bigint + 86400)"
	    "    OR (status = 'VOUCHED' AND not_after <= $1::bigint)", 1, now_s);
}

int
enr_list(struct gw_request *req, struct gw_reply *rep)
{
	const char *status = NULL, *user = NULL, *scope;
	uint8_t key_id[32], *vb = NULL;
	size_t vblen = 0;
	PGresult *res = NULL;
	json_t *arr = NULL, *o;
	int r, have_key, i, n;

	if ((r = gw_get_str(req, rep, "status", 16, false, &status)) != 0 ||
	    (r = sg_get_uuid(req, rep, "userID", false, &user)) != 0 ||
	    (r = get_key_id(req, rep, false, key_id, &have_key)) != 0)
		goto out;
	if (status != NULL && strcmp(status, "PENDING") != 0 && strcmp(status, "VOUCHED") != 0) {
		r = gw_error(rep, 400, "invalid_request",
		    "field 'status' must be \"PENDING\" or \"VOUCHED\"");
		goto out;
	}
	if (!have_key && ra_keys_count(gw_ra_keys(req->cfg)) > 0) {
		memcpy(key_id, ra_keys_id(gw_ra_keys(req->cfg), 0), 32);
		have_key = 1;
	}
	if (!have_key && (status == NULL || strcmp(status, "VOUCHED") != 0)) {
		r = gw_error(rep, 400, "invalid_request", "missing field 'raKeyID' (the key that "
		    "will vouch; the gateway holds no RA keys to choose one)");
		goto out;
	}
	scope = req->principal.role == GW_ROLE_ADMIN ? "" : req->principal.account_id;
	if ((r = renew(req)) != 0 ||
	    (r = gw_db_query(req->db, &res,
	    "SELECT d.device_uuid, e.user_id::text AS user_id, e.full_name,"
	    " coalesce(a.email, '') AS email_or_empty, e.kak_sha256, e.status, "
	    TS("e.created_at") " AS created_iso, e.issued_at, e.not_after, e.voucher, e.ra_key_id"
	    " FROM enrollments e JOIN devices d ON d.id = e.device_id AND d.status = 'ACTIVE'"
	    " JOIN accounts a ON a.id = e.user_id"
	    " WHERE ($1 = '' OR e.status = $1) AND ($2 = '' OR e.user_id = $2::uuid)"
	    "   AND ($3 = '' OR a.registered_by = $3::uuid)"
	    " ORDER BY e.created_at, d.device_uuid LIMIT 1000", 3,
	    status != NULL ? status : "", user != NULL ? user : "", scope)) != 0)
		goto out;
	if ((arr = json_array()) == NULL) {
		r = RSSP_E_NOMEM;
		goto out;
	}
	n = PQntuples(res);
	for (i = 0; i < n; i++) {
		struct rssp_voucher v;
		char *b64 = NULL;
		int ok;

		vb = NULL;
		if (strcmp(gw_val(res, i, "status"), "VOUCHED") == 0) {
			ok = sg_unbytea(gw_val(res, i, "voucher"), &vb, &vblen) == 0 &&
			    rssp_voucher_parse(vb, vblen, &v) == 0;
		} else {
			ok = voucher_of(gw_val(res, i, "user_id"), gw_val(res, i, "full_name"),
			    gw_val(res, i, "kak_sha256"), gw_val(res, i, "device_uuid"),
			    gw_val(res, i, "issued_at"), gw_val(res, i, "not_after"), key_id, &v) == 0 &&
			    rssp_voucher_build(&v, &vb, &vblen) == 0;
		}
		{
			uint8_t *kak = NULL;
			size_t kaklen = 0;
			char kakhex[65] = "";

			if (sg_unbytea(gw_val(res, i, "kak_sha256"), &kak, &kaklen) == 0 && kaklen == 32)
				ra_key_id_hex(kak, kakhex);
			free(kak);
			o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s}",
			    "deviceUUID", gw_val(res, i, "device_uuid"), "userID", gw_val(res, i, "user_id"),
			    "fullName", gw_val(res, i, "full_name"), "email", gw_val(res, i, "email_or_empty"),
			    "kakSHA256", kakhex, "status", gw_val(res, i, "status"),
			    "createdAt", gw_val(res, i, "created_iso"));
		}
		if (o != NULL && ok && (b64 = rssp_b64(vb, vblen)) != NULL) {
			json_object_set_new(o, "toBeSigned", json_string(b64));
			json_object_set_new(o, "fields", fields_json(&v));
		} else if (o != NULL) {
			/* e.g. an account without a full name: nothing an RA could sign */
			json_object_set_new(o, "problem", json_string(
			    "no voucher can be made for this device (does the user have a full name?)"));
		}
		free(b64);
		free(vb);
		vb = NULL;
		if (o == NULL || json_array_append_new(arr, o) != 0) {
			r = RSSP_E_NOMEM;
			goto out;
		}
	}
	r = gw_reply_json(rep, 200, json_pack("{s:o}", "enrollments", arr));
	arr = NULL;
out:
	json_decref(arr);
	free(vb);
	PQclear(res);
	return r;
}

int
enr_vouch(struct gw_request *req, struct gw_reply *rep)
{
	const char *device = NULL, *scope;
	uint8_t key_id[32], *sig = NULL, *vb = NULL;
	size_t siglen = 0, vblen = 0;
	struct rssp_voucher v;
	const struct ra_keys *keys;
	PGresult *res = NULL;
	char *p_v = NULL, *p_sig = NULL, *p_key = NULL, keyhex[65];
	int r, have_key;

	if ((r = sg_get_device_uuid(req, rep, &device)) != 0 ||
	    (r = get_key_id(req, rep, true, key_id, &have_key)) != 0 ||
	    (r = gw_get_b64(req, rep, "signature", MAX_RA_SIG, true, &sig, &siglen)) != 0)
		goto out;
	scope = req->principal.role == GW_ROLE_ADMIN ? "" : req->principal.account_id;
	if ((r = gw_tx_begin(req)) != 0 ||
	    (r = gw_db_query(req->db, &res,
	    "SELECT e.device_id::text AS device_id, e.user_id::text AS user_id, e.full_name,"
	    " e.kak_sha256, d.device_uuid, e.issued_at, e.not_after, e.status"
	    " FROM enrollments e JOIN devices d ON d.id = e.device_id AND d.status = 'ACTIVE'"
	    " JOIN accounts a ON a.id = e.user_id"
	    " WHERE d.device_uuid = $1 AND ($2 = '' OR a.registered_by = $2::uuid)"
	    " FOR UPDATE OF e", 2, device, scope)) != 0)
		goto out;
	if (PQntuples(res) != 1) {
		r = gw_error(rep, 404, "not_found",
		    "field 'deviceUUID' names no active device you may vouch for");
		goto out;
	}
	if (strcmp(gw_val(res, 0, "status"), "PENDING") != 0) {
		r = gw_error(rep, 409, "conflict", "the device of field 'deviceUUID' is already vouched for");
		goto out;
	}
	if (voucher_of(gw_val(res, 0, "user_id"), gw_val(res, 0, "full_name"),
	    gw_val(res, 0, "kak_sha256"), gw_val(res, 0, "device_uuid"), gw_val(res, 0, "issued_at"),
	    gw_val(res, 0, "not_after"), key_id, &v) != 0 ||
	    rssp_voucher_build(&v, &vb, &vblen) != 0) {
		r = gw_error(rep, 409, "conflict",
		    "no voucher can be made for field 'deviceUUID' (does the user have a full name?)");
		goto out;
	}
	if (v.not_after <= gw_now()) {
		r = gw_error(rep, 409, "conflict",
		    "the voucher of field 'deviceUUID' has passed its window; list it again");
		goto out;
	}
	keys = gw_ra_keys(req->cfg);
	if (ra_keys_count(keys) > 0) {
		switch (ra_keys_verify(keys, key_id, vb, vblen, sig, siglen)) {
		case 0:
			break;
		case RSSP_E_NOTFOUND:
			r = gw_error(rep, 400, "invalid_request",
			    "field 'raKeyID' is not a registration authority key this service trusts");
			goto out;
		case RSSP_E_NOMEM:
			r = RSSP_E_NOMEM;
			goto out;
		default:
			r = gw_error(rep, 400, "invalid_request", "field 'signature' does not verify "
			    "over this device's voucher under the key of field 'raKeyID'");
			goto out;
		}
	}
	if ((p_v = sg_bytea(vb, vblen)) == NULL || (p_sig = sg_bytea(sig, siglen)) == NULL ||
	    (p_key = sg_bytea(key_id, 32)) == NULL) {
		r = RSSP_E_NOMEM;
		goto out;
	}
	if ((r = gw_db_query(req->db, NULL,
	    "UPDATE enrollments SET status = 'VOUCHED', voucher = $2, ra_signature = $3,"
	    " ra_key_id = $4, vouched_by = $5, vouched_at = now() WHERE device_id = $1", 5,
	    gw_val(res, 0, "device_id"), p_v, p_sig, p_key, req->principal.account_id)) != 0 ||
	    (r = gw_tx_commit(req)) != 0)
		goto out;
	ra_key_id_hex(key_id, keyhex);
	log_info("device %.100s vouched for by ra key %s", device, keyhex);
	r = gw_reply_json(rep, 200, json_pack("{s:s,s:s}", "deviceUUID", device,
	    "status", "VOUCHED"));
out:
	free(sig);
	free(vb);
	free(p_v);
	free(p_sig);
	free(p_key);
	PQclear(res);
	return r;
}

int
enr_device_voucher(struct gw_request *req, struct gw_reply *rep, const char *device_id,
    long long margin, struct enr_voucher *out)
{
	struct enr_voucher t;
	PGresult *res = NULL;
	uint8_t *key = NULL;
	size_t keylen = 0;
	int r;

	memset(&t, 0, sizeof(t));
	if ((r = gw_db_query(req->db, &res,
	    "SELECT status, voucher, ra_signature, ra_key_id FROM enrollments WHERE device_id = $1",
	    1, device_id)) != 0)
		goto out;
	if (PQntuples(res) != 1 || strcmp(gw_val(res, 0, "status"), "VOUCHED") != 0) {
		r = gw_error(rep, 409, "enrollment_pending", "the device of field 'deviceUUID' is "
		    "not yet vouched for by a registration authority (enrollments/vouch)");
		goto out;
	}
	if ((r = sg_unbytea(gw_val(res, 0, "voucher"), &t.tbs, &t.tbs_len)) != 0 ||
	    (r = sg_unbytea(gw_val(res, 0, "ra_signature"), &t.sig, &t.sig_len)) != 0 ||
	    (r = sg_unbytea(gw_val(res, 0, "ra_key_id"), &key, &keylen)) != 0)
		goto out;
	if (keylen != 32 || rssp_voucher_parse(t.tbs, t.tbs_len, &t.v) != 0) {
		log_error("the stored voucher of device %s does not parse", device_id);
		r = RSSP_E_INTERNAL;
		goto out;
	}
	memcpy(t.key_id, key, 32);
	if (t.v.not_after <= gw_now() + margin) {
		r = gw_error(rep, 409, "enrollment_pending", "the voucher of the device of field "
		    "'deviceUUID' has expired; a registration authority must vouch for it again");
		goto out;
	}
	*out = t;
	memset(&t, 0, sizeof(t));
out:
	enr_voucher_release(&t);
	free(key);
	PQclear(res);
	return r;
}
