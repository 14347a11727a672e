/* signing_common.c - what the signing area's handlers (sic.c, credentials.c,
 * auth_requests.c, signatures.c) share (signing.h): bytea text, the uuid and device
 * fields, random digits, the account a caller acts on, the engine's refusals as replies. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_health.h"
#include "gw.h"
#include "rssp_log.h"
#include "secrets.h"
#include "signing.h"
#include "tenant.h"
#include "db.h"

/* ---- encodings (base64 and hex are rssp_b64/rssp_unb64/rssp_hex of buf.h) ---------- */

char *
sg_bytea(const uint8_t *data, size_t len)
{
	char *out;

	if (len > (size_t)1 << 28 || (out = malloc(2 * len + 3)) == NULL)
		return NULL;
	out[0] = '\\';
	out[1] = 'x';
	rssp_hex(out + 2, data, len);
	return out;
}

int
sg_unbytea(const char *s, uint8_t **outp, size_t *lenp)
{
	size_t n;
	uint8_t *out;

	if (s == NULL || s[0] != '\\' || s[1] != 'x' || (n = strlen(s + 2)) % 2 != 0)
		return RSSP_E_INVAL;
	if ((out = malloc(n / 2 + 1)) == NULL)
		return RSSP_E_NOMEM;
	if (rssp_unhex(out, n / 2, s + 2, n) != 0) {
		free(out);
		return RSSP_E_INVAL;
	}
	*outp = out;
	*lenp = n / 2;
	return 0;
}

int
sg_get_uuid(struct gw_request *req, struct gw_reply *rep, const char *field,
    bool required, const char **vp)
{
	const char *v = NULL;
	int r;

	if ((r = gw_get_str(req, rep, field, GW_UUID_LEN, required, &v)) != 0)
		return r;
	if (v != NULL && !gw_is_uuid(v))
		return gw_error(rep, 400, "invalid_request", "field '%s' must be a lowercase uuid", field);
	*vp = v;
	return 0;
}

int
sg_get_device_uuid(struct gw_request *req, struct gw_reply *rep, const char **vp)
{
	const char *v = NULL, *p;
	int r;

	if ((r = gw_get_str(req, rep, "deviceUUID", RSSP_MAX_ID_LEN, true, &v)) != 0)
		return r;
	for (p = v; *p; p++)
		if (*p < 0x21 || *p > 0x7e)
			return gw_error(rep, 400, "invalid_request",
			    "field 'deviceUUID' must be printable ASCII without spaces");
	*vp = v;
	return 0;
}

int
sg_hash_algo_from_oid(const char *oid)
{
	const struct rssp_hash_alg *h = rssp_hash_alg_by_oid(oid);

	return h != NULL ? h->algo : 0;
}

const char *
sg_hash_algo_oid(int hash_algo)
{
	const struct rssp_hash_alg *h = rssp_hash_alg(hash_algo);

	return h != NULL ? h->oid : "";
}

int
sg_key_algo_parse(const char *name)
{
	const struct rssp_key_alg *k = rssp_key_alg_by_name(name);

	return k != NULL ? k->algo : 0;
}

int
sg_decode_hashes(struct gw_reply *rep, const char *const *b64, size_t n, size_t hlen,
    uint8_t ***hashesp)
{
	uint8_t **hashes;
	size_t i, l;
	int r = 0;

	if ((hashes = calloc(n ? n : 1, sizeof(*hashes))) == NULL)
		return RSSP_E_NOMEM;
	for (i = 0; i < n && r == 0; i++) {
		l = 0;
		if ((r = rssp_unb64(b64[i], &hashes[i], &l)) == RSSP_E_NOMEM)
			break;
		if (r != 0 || l != hlen)
			r = gw_error(rep, 400, "invalid_request",
			    "field 'hashes[%zu]' must be base64 of a %zu-byte digest", i, hlen);
	}
	if (r != 0) {
		for (i = 0; i < n; i++)
			free(hashes[i]);
		free(hashes);
		return r;
	}
	*hashesp = hashes; /* owned by the caller */
	return 0;
}

void
sg_random_digits(char *out, size_t ndigits)
{
	size_t i;

	for (i = 0; i < ndigits; i++) {
		uint8_t b;
		do
			gw_random_bytes(&b, 1);
		while (b >= 250); /* uniform over 0..9 */
		out[i] = (char)('0' + b % 10);
	}
	out[ndigits] = '\0';
}

/* ---- tenants ------------------------------------------------------------------------ */

int
sg_account_for(struct gw_request *req, struct gw_reply *rep, const char *user_id,
    const char *field, struct sg_account *a)
{
	const struct gw_principal *p = &req->principal;
	PGresult *res = NULL;
	const char *id = user_id ? user_id : p->account_id;
	char absent[128], foreign[128];
	struct sg_account t;
	int r;

	snprintf(absent, sizeof(absent), "no such user '%s'", field);
	snprintf(foreign, sizeof(foreign), "the user in '%s' is not yours", field);
	if ((r = tenant_load(req, rep, TENANT_SEE,
	    "SELECT id, status, role, email, coalesce(mobile, '') AS mobile,"
	    " coalesce(full_name, '') AS full_name, " TENANT_OWNER_COLS("accounts")
	    " FROM accounts WHERE id = $1", 1, &id, absent, foreign, &res)) != 0)
		goto out;
	memset(&t, 0, sizeof(t));
	snprintf(t.id, sizeof(t.id), "%s", gw_val(res, 0, "id"));
	snprintf(t.status, sizeof(t.status), "%s", gw_val(res, 0, "status"));
	snprintf(t.role, sizeof(t.role), "%s", gw_val(res, 0, "role"));
	snprintf(t.email, sizeof(t.email), "%s", gw_val(res, 0, "email"));
	snprintf(t.mobile, sizeof(t.mobile), "%s", gw_val(res, 0, "mobile"));
	snprintf(t.full_name, sizeof(t.full_name), "%s", gw_val(res, 0, "full_name"));
	*a = t;
	r = 0;
out:
	PQclear(res);
	return r;
}

/* ---- the engine ---------------------------------------------------------------------- */

int
sg_engine_error(struct gw_reply *rep, const struct engine_result *er, const char *what)
{
	const char *m = er->message[0] != '\0' ? er->message : "refused";

	if (er->answered && strcmp(er->message, ENGINE_HEALTH_AUDIT_MSG) == 0)
		return gw_error(rep, 503, "audit_unavailable",
		    "the signing engine cannot write its audit log; retry later");
	switch (er->status) {
	case ENGINE_UNAVAILABLE:
	case ENGINE_TIMEOUT:
		if (!er->answered)
			return gw_error(rep, 503, "engine_unavailable",
			    "the signing engine is not reachable; retry later");
		return gw_error(rep, 503, "engine_unavailable",
		    "the signing engine is not available; retry later");
	case ENGINE_REFUSED:
		switch (er->refusal) {
		case ENGINE_REFUSAL_INVALID:
			return gw_error(rep, 400, "invalid_request", "%s refused by the engine: %.100s", what, m);
		case ENGINE_REFUSAL_EXHAUSTED:
			/* the engine's key-generation workers are all taken (PROTOCOL.md): retry */
			if (strcmp(m, "too many key generations waiting") == 0)
				return gw_error(rep, 503, "engine_unavailable",
				    "the signing engine is busy generating keys; retry later");
			return gw_error(rep, 403, "access_denied", "%s refused by the engine: %.100s", what, m);
		case ENGINE_REFUSAL_DENIED:
			return gw_error(rep, 403, "access_denied", "%s refused by the engine: %.100s", what, m);
		case ENGINE_REFUSAL_EXPIRED:
			return gw_error(rep, 410, "expired", "%s refused by the engine: %.100s", what, m);
		default:
			break;
		}
		break;
	default:
		break;
	}
	log_error("the engine failed %s (status %d): %.100s", what, er->grpc_status, m);
	return RSSP_E_INTERNAL;
}
