/* signing.c - signatures/signHash, the route table of the signing functions, and what
 * sic.c, credentials.c and requests.c share: encodings, tenant checks, engine calls. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "gw.h"
#include "rssp_log.h"
#include "signing.h"

#ifdef RSSP_HAVE_ENGINE_CLIENT
#include <rssp/engine/v1/engine.pb-c.h>
#include "engine_client.h"
#endif

/* ---- encodings ------------------------------------------------------------------- */

char *
sg_b64(const uint8_t *data, size_t len)
{
	char *out;

	if (len > (size_t)1 << 28 || (out = malloc(4 * ((len + 2) / 3) + 1)) == NULL)
		return NULL;
	EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	return out;
}

int
sg_unb64(const char *s, uint8_t **outp, size_t *lenp)
{
	size_t n = strlen(s), i, pad = 0;
	uint8_t *out = NULL;
	int r = RSSP_E_INVAL, dl;

	if (n == 0 || n % 4 != 0 || n > (size_t)1 << 24)
		goto out;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '=') {
			if (i < n - 2)
				goto out;
			pad++;
		} else if (pad || !(isalnum(c) || c == '+' || c == '/'))
			goto out;
	}
	if ((out = malloc(n / 4 * 3 + 1)) == NULL) {
		r = RSSP_E_NOMEM;
		goto out;
	}
	if ((dl = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n)) < 0 ||
	    (size_t)dl < pad)
		goto out;
	*lenp = (size_t)dl - pad;
	*outp = out;
	out = NULL;
	r = 0;
out:
	free(out);
	return r;
}

char *
sg_bytea(const uint8_t *data, size_t len)
{
	static const char hx[] = "0123456789abcdef";
	char *out;
	size_t i;

	if ((out = malloc(2 * len + 3)) == NULL)
		return NULL;
	out[0] = '\\';
	out[1] = 'x';
	for (i = 0; i < len; i++) {
		out[2 + 2 * i] = hx[data[i] >> 4];
		out[3 + 2 * i] = hx[data[i] & 15];
	}
	out[2 + 2 * len] = '\0';
	return out;
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
sg_unbytea(const char *s, uint8_t **outp, size_t *lenp)
{
	size_t n, i;
	uint8_t *out;

	if (s == NULL || s[0] != '\\' || s[1] != 'x' || (n = strlen(s + 2)) % 2 != 0)
		return RSSP_E_INVAL;
	if ((out = malloc(n / 2 + 1)) == NULL)
		return RSSP_E_NOMEM;
	for (i = 0; i < n / 2; i++) {
		int hi = hexval((unsigned char)s[2 + 2 * i]), lo = hexval((unsigned char)s[3 + 2 * i]);
		if (hi < 0 || lo < 0) {
			free(out);
			return RSSP_E_INVAL;
		}
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	*outp = out;
	*lenp = n / 2;
	return 0;
}

int
sg_is_uuid(const char *s)
{
	size_t i;

	if (s == NULL || strlen(s) != GW_UUID_LEN)
		return 0;
	for (i = 0; i < GW_UUID_LEN; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return 0;
		} else if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	}
	return 1;
}

int
sg_get_uuid(struct gw_request *req, struct gw_reply *rep, const char *field,
    bool required, const char **vp)
{
	const char *v = NULL;
	int r;

	if ((r = gw_get_str(req, rep, field, GW_UUID_LEN, required, &v)) != 0)
		return r;
	if (v != NULL && !sg_is_uuid(v))
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

static const struct {
	const char *oid;
	int algo;
} hash_oids[] = {
	{ "2.16.840.1.101.3.4.2.1", SG_HASH_SHA256 },
	{ "2.16.840.1.101.3.4.2.2", SG_HASH_SHA384 },
	{ "2.16.840.1.101.3.4.2.3", SG_HASH_SHA512 },
};

int
sg_hash_algo_from_oid(const char *oid)
{
	size_t i;

	for (i = 0; oid != NULL && i < sizeof(hash_oids) / sizeof(hash_oids[0]); i++)
		if (strcmp(oid, hash_oids[i].oid) == 0)
			return hash_oids[i].algo;
	return 0;
}

const char *
sg_hash_algo_oid(int hash_algo)
{
	size_t i;

	for (i = 0; i < sizeof(hash_oids) / sizeof(hash_oids[0]); i++)
		if (hash_oids[i].algo == hash_algo)
			return hash_oids[i].oid;
	return "";
}

int
sg_key_algo_parse(const char *name)
{
	static const char *const names[] = { "rsa2048", "rsa3072", "ecp256", "ecp384" };
	size_t i;

	for (i = 0; name != NULL && i < 4; i++)
		if (strcmp(name, names[i]) == 0)
			return (int)i + 1;
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
	struct sg_account t;
	int r, allowed;

	if ((r = gw_db_query(req->db, &res,
	    "SELECT id, status, role, email, coalesce(mobile, ''), coalesce(full_name, ''),"
	    " coalesce(company_id::text, ''), coalesce(registered_by::text, '')"
	    " FROM accounts WHERE id = $1", 1, id)) != 0)
		goto out;
	if (PQntuples(res) != 1) {
		r = gw_error(rep, 404, "not_found", "no such user '%s'", field);
		goto out;
	}
	allowed = strcmp(id, p->account_id) == 0 || p->role == GW_ROLE_ADMIN ||
	    (p->role == GW_ROLE_RP && strcmp(PQgetvalue(res, 0, 7), p->account_id) == 0) ||
	    (p->role == GW_ROLE_COMPANY_ADMIN && p->company_id[0] != '\0' &&
	    strcmp(PQgetvalue(res, 0, 6), p->company_id) == 0);
	if (!allowed) {
		r = gw_error(rep, 403, "access_denied", "the user in '%s' is not yours", field);
		goto out;
	}
	memset(&t, 0, sizeof(t));
	snprintf(t.id, sizeof(t.id), "%s", PQgetvalue(res, 0, 0));
	snprintf(t.status, sizeof(t.status), "%s", PQgetvalue(res, 0, 1));
	snprintf(t.role, sizeof(t.role), "%s", PQgetvalue(res, 0, 2));
	snprintf(t.email, sizeof(t.email), "%s", PQgetvalue(res, 0, 3));
	snprintf(t.mobile, sizeof(t.mobile), "%s", PQgetvalue(res, 0, 4));
	snprintf(t.full_name, sizeof(t.full_name), "%s", PQgetvalue(res, 0, 5));
	*a = t;
	r = 0;
out:
	PQclear(res);
	return r;
}

/* ---- the engine ---------------------------------------------------------------------- */

void
sg_activation_result_release(struct sg_activation_result *r)
{
	free(r->key_label);
	free(r->binding);
	free(r->cert);
	free(r->pub);
	free(r->chain);
	memset(r, 0, sizeof(*r));
}

int
sg_engine_error(struct gw_reply *rep, int engine_rc, int status, const char *msg,
    const char *what)
{
	const char *m = msg ? msg : "refused";

	if (engine_rc < 0 && engine_rc != RSSP_E_NOMEM)
		return gw_error(rep, 503, "engine_unavailable",
		    "the signing engine is not reachable; retry later");
	if (engine_rc < 0)
		return engine_rc;
	switch (status) {
	case SG_GRPC_INVALID_ARGUMENT:
		return gw_error(rep, 400, "invalid_request", "%s refused by the engine: %.100s", what, m);
	case SG_GRPC_PERMISSION_DENIED:
		return gw_error(rep, 403, "access_denied", "%s refused by the engine: %.100s", what, m);
	case SG_GRPC_FAILED_PRECONDITION:
		return gw_error(rep, 410, "expired", "%s refused by the engine: %.100s", what, m);
	case SG_GRPC_RESOURCE_EXHAUSTED:
		/* the engine's key-generation workers are all taken (PROTOCOL.md): retry */
		if (strcmp(m, "too many key generations waiting") == 0)
			return gw_error(rep, 503, "engine_unavailable",
			    "the signing engine is busy generating keys; retry later");
		return gw_error(rep, 403, "access_denied", "%s refused by the engine: %.100s", what, m);
	case SG_GRPC_UNAVAILABLE:
	case SG_GRPC_DEADLINE_EXCEEDED:
		return gw_error(rep, 503, "engine_unavailable",
		    "the signing engine is not available; retry later");
	default:
		log_error("engine answered status %d to %s: %.100s", status, what, m);
		return RSSP_E_INTERNAL;
	}
}

#ifdef RSSP_HAVE_ENGINE_CLIENT

/* Sends one Authorize request; *respp is the unpacked response when OK. */
static int
engine_authorize(struct gw_request *req, const Rssp__Engine__V1__AuthorizeRequest *ar,
    Rssp__Engine__V1__AuthorizeResponse **respp, int *statusp, char **msgp)
{
	uint8_t *buf = NULL, *resp = NULL;
	size_t len, resplen = 0;
	int r, status = -1;
	char *msg = NULL;
	double t0;
	struct timespec ts;
	Rssp__Engine__V1__AuthorizeResponse *ans = NULL;

	if (req->engine == NULL)
		return RSSP_E_UNAVAILABLE;
	len = rssp__engine__v1__authorize_request__get_packed_size(ar);
	if ((buf = malloc(len ? len : 1)) == NULL)
		return RSSP_E_NOMEM;
	rssp__engine__v1__authorize_request__pack(ar, buf);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	t0 = ts.tv_sec + ts.tv_nsec / 1e9;
	r = engine_call(req->engine, ENGINE_METHOD_AUTHORIZE, req->request_id, buf, len,
	    &resp, &resplen, &status, &msg);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	gw_metrics_engine_call("authorize", r == 0 ? status : -1, ts.tv_sec + ts.tv_nsec / 1e9 - t0);
	free(buf);
	if (r != 0)
		goto out;
	if (status == SG_GRPC_OK &&
	    (ans = rssp__engine__v1__authorize_response__unpack(NULL, resplen, resp)) == NULL) {
		log_error("cannot unpack the engine's authorize response");
		r = RSSP_E_INTERNAL;
		goto out;
	}
	*respp = ans;
	ans = NULL;
	*statusp = status;
	*msgp = msg;
	msg = NULL;
out:
	free(resp);
	free(msg);
	return r;
}

static char *
bytes_dup(const ProtobufCBinaryData *b, size_t *lenp)
{
	uint8_t *p = malloc(b->len ? b->len : 1);

	if (p != NULL) {
		if (b->len)
			memcpy(p, b->data, b->len);
		*lenp = b->len;
	}
	return (char *)p;
}

int
sg_engine_activation(struct gw_request *req, const struct rssp_activation_fields *f,
    int kak_algo, const uint8_t *sig, size_t siglen, struct sg_activation_result *res,
    int *statusp, char **msgp)
{
	Rssp__Engine__V1__AuthorizeRequest ar = RSSP__ENGINE__V1__AUTHORIZE_REQUEST__INIT;
	Rssp__Engine__V1__Kak kak = RSSP__ENGINE__V1__KAK__INIT;
	Rssp__Engine__V1__Activation act = RSSP__ENGINE__V1__ACTIVATION__INIT;
	Rssp__Engine__V1__AuthorizeResponse *ans = NULL;
	struct sg_activation_result t = { 0 };
	char *msg = NULL;
	size_t i, total = 0;
	int r, status = -1;

	ar.request_id = (char *)req->request_id;
	kak.public_key.data = (uint8_t *)f->kak_spki;
	kak.public_key.len = f->kak_spki_len;
	kak.algo = kak_algo;
	ar.kak = &kak;
	ar.signature.data = (uint8_t *)sig;
	ar.signature.len = siglen;
	act.credential_id = (char *)f->credential_id;
	act.owner_id = (char *)f->owner_id;
	act.device_uuid = (char *)f->device_uuid;
	act.key_algo = f->key_algo;
	act.subject_cn = (char *)f->subject_cn;
	act.validity_days = f->validity_days;
	act.nonce.data = (uint8_t *)f->nonce;
	act.nonce.len = f->nonce_len;
	act.expires_at = f->expires_at;
	ar.purpose_case = RSSP__ENGINE__V1__AUTHORIZE_REQUEST__PURPOSE_ACTIVATION;
	ar.activation = &act;
	if ((r = engine_authorize(req, &ar, &ans, &status, &msg)) != 0)
		goto out;
	if (status == SG_GRPC_OK) {
		const Rssp__Engine__V1__ActivationResult *a;
		if (ans->result_case != RSSP__ENGINE__V1__AUTHORIZE_RESPONSE__RESULT_ACTIVATION ||
		    (a = ans->activation) == NULL || a->key_label == NULL ||
		    a->binding.len == 0 || a->certificate.len == 0) {
			log_error("the engine's activation result is incomplete");
			r = RSSP_E_INTERNAL;
			goto out;
		}
		for (i = 0; i < a->n_chain; i++)
			total += a->chain[i].len;
		if ((t.key_label = strdup(a->key_label)) == NULL ||
		    (t.binding = (uint8_t *)bytes_dup(&a->binding, &t.binding_len)) == NULL ||
		    (t.cert = (uint8_t *)bytes_dup(&a->certificate, &t.cert_len)) == NULL ||
		    (t.pub = (uint8_t *)bytes_dup(&a->public_key, &t.pub_len)) == NULL ||
		    (t.chain = malloc(total ? total : 1)) == NULL) {
			r = RSSP_E_NOMEM;
			goto out;
		}
		for (i = 0; i < a->n_chain; i++) {
			if (a->chain[i].len)
				memcpy(t.chain + t.chain_len, a->chain[i].data, a->chain[i].len);
			t.chain_len += a->chain[i].len;
		}
		*res = t;
		memset(&t, 0, sizeof(t));
	}
	*statusp = status;
	*msgp = msg;
	msg = NULL;
out:
	sg_activation_result_release(&t);
	free(msg);
	if (ans != NULL)
		rssp__engine__v1__authorize_response__free_unpacked(ans, NULL);
	return r;
}

int
sg_engine_approval(struct gw_request *req, const struct rssp_approval_fields *f,
    int kak_algo, const char *key_label, const uint8_t *binding, size_t binding_len,
    const uint8_t *sig, size_t siglen, uint8_t **sadp, size_t *sadlenp, long long *sad_expp,
    int *statusp, char **msgp)
{
	Rssp__Engine__V1__AuthorizeRequest ar = RSSP__ENGINE__V1__AUTHORIZE_REQUEST__INIT;
	Rssp__Engine__V1__Kak kak = RSSP__ENGINE__V1__KAK__INIT;
	Rssp__Engine__V1__Approval ap = RSSP__ENGINE__V1__APPROVAL__INIT;
	Rssp__Engine__V1__AuthorizeResponse *ans = NULL;
	ProtobufCBinaryData *hashes = NULL;
	char *msg = NULL;
	size_t i, sadlen = 0;
	uint8_t *sad = NULL;
	int r, status = -1;

	if ((hashes = calloc(f->n_hashes ? f->n_hashes : 1, sizeof(*hashes))) == NULL)
		return RSSP_E_NOMEM;
	for (i = 0; i < f->n_hashes; i++) {
		hashes[i].data = (uint8_t *)f->hashes[i];
		hashes[i].len = f->hash_len;
	}
	ar.request_id = (char *)req->request_id;
	kak.public_key.data = (uint8_t *)f->kak_spki;
	kak.public_key.len = f->kak_spki_len;
	kak.algo = kak_algo;
	ar.kak = &kak;
	ar.signature.data = (uint8_t *)sig;
	ar.signature.len = siglen;
	ap.approval_id = (char *)f->approval_id;
	ap.credential_id = (char *)f->credential_id;
	ap.owner_id = (char *)f->owner_id;
	ap.device_uuid = (char *)f->device_uuid;
	ap.key_label = (char *)key_label;
	ap.binding.data = (uint8_t *)binding;
	ap.binding.len = binding_len;
	ap.hash_algo = f->hash_algo;
	ap.n_hashes = f->n_hashes;
	ap.hashes = hashes;
	ap.num_signatures = f->num_signatures;
	ap.rp_name = (char *)f->rp_name;
	ap.description = (char *)f->description;
	ap.nonce.data = (uint8_t *)f->nonce;
	ap.nonce.len = f->nonce_len;
	ap.expires_at = f->expires_at;
	ar.purpose_case = RSSP__ENGINE__V1__AUTHORIZE_REQUEST__PURPOSE_APPROVAL;
	ar.approval = &ap;
	if ((r = engine_authorize(req, &ar, &ans, &status, &msg)) != 0)
		goto out;
	if (status == SG_GRPC_OK) {
		if (ans->result_case != RSSP__ENGINE__V1__AUTHORIZE_RESPONSE__RESULT_APPROVAL ||
		    ans->approval == NULL || ans->approval->sad.len == 0) {
			log_error("the engine's approval result is incomplete");
			r = RSSP_E_INTERNAL;
			goto out;
		}
		if ((sad = (uint8_t *)bytes_dup(&ans->approval->sad, &sadlen)) == NULL) {
			r = RSSP_E_NOMEM;
			goto out;
		}
		*sadp = sad;
		*sadlenp = sadlen;
		*sad_expp = ans->approval->sad_expires_at;
		sad = NULL;
	}
	*statusp = status;
	*msgp = msg;
	msg = NULL;
out:
	free(hashes);
	free(msg);
	if (ans != NULL) {
		if (ans->result_case == RSSP__ENGINE__V1__AUTHORIZE_RESPONSE__RESULT_APPROVAL &&
		    ans->approval != NULL && ans->approval->sad.data != NULL)
			OPENSSL_cleanse(ans->approval->sad.data, ans->approval->sad.len);
		rssp__engine__v1__authorize_response__free_unpacked(ans, NULL);
	}
	return r;
}

/* Engine SignHash. Returns 0 when the engine answered (status, msg; when OK *sigsp is a
 * malloc'd array of n malloc'd signatures with lengths in *siglensp). */
static int
engine_sign_hash(struct gw_request *req, const char *credential_id, const uint8_t *sad,
    size_t sadlen, int hash_algo, int sign_algo, uint8_t *const *hashes, size_t n,
    size_t hash_len, uint8_t ***sigsp, size_t **siglensp, int *statusp, char **msgp)
{
	Rssp__Engine__V1__SignHashRequest sr = RSSP__ENGINE__V1__SIGN_HASH_REQUEST__INIT;
	Rssp__Engine__V1__SignHashResponse *ans = NULL;
	ProtobufCBinaryData *hb = NULL;
	uint8_t *buf = NULL, *resp = NULL, **sigs = NULL;
	size_t len, resplen = 0, i, *lens = NULL;
	char *msg = NULL;
	int r, status = -1;
	struct timespec ts;
	double t0;

	if (req->engine == NULL)
		return RSSP_E_UNAVAILABLE;
	if ((hb = calloc(n, sizeof(*hb))) == NULL)
		return RSSP_E_NOMEM;
	for (i = 0; i < n; i++) {
		hb[i].data = hashes[i];
		hb[i].len = hash_len;
	}
	sr.request_id = (char *)req->request_id;
	sr.credential_id = (char *)credential_id;
	sr.sad.data = (uint8_t *)sad;
	sr.sad.len = sadlen;
	sr.hash_algo = hash_algo;
	sr.sign_algo = sign_algo;
	sr.n_hashes = n;
	sr.hashes = hb;
	len = rssp__engine__v1__sign_hash_request__get_packed_size(&sr);
	if ((buf = malloc(len)) == NULL) {
		r = RSSP_E_NOMEM;
		goto out;
	}
	rssp__engine__v1__sign_hash_request__pack(&sr, buf);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	t0 = ts.tv_sec + ts.tv_nsec / 1e9;
	r = engine_call(req->engine, ENGINE_METHOD_SIGNHASH, req->request_id, buf, len,
	    &resp, &resplen, &status, &msg);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	gw_metrics_engine_call("signhash", r == 0 ? status : -1, ts.tv_sec + ts.tv_nsec / 1e9 - t0);
	OPENSSL_cleanse(buf, len); /* it holds the SAD */
	if (r != 0)
		goto out;
	if (status == SG_GRPC_OK) {
		if ((ans = rssp__engine__v1__sign_hash_response__unpack(NULL, resplen, resp)) == NULL ||
		    ans->n_signatures != n) {
			log_error("the engine's signhash response does not match the request");
			r = RSSP_E_INTERNAL;
			goto out;
		}
		if ((sigs = calloc(n, sizeof(*sigs))) == NULL ||
		    (lens = calloc(n, sizeof(*lens))) == NULL) {
			r = RSSP_E_NOMEM;
			goto out;
		}
		for (i = 0; i < n; i++)
			if ((sigs[i] = (uint8_t *)bytes_dup(&ans->signatures[i], &lens[i])) == NULL) {
				r = RSSP_E_NOMEM;
				goto out;
			}
		*sigsp = sigs;
		*siglensp = lens;
		sigs = NULL;
		lens = NULL;
	}
	*statusp = status;
	*msgp = msg;
	msg = NULL;
out:
	if (sigs != NULL)
		for (i = 0; i < n; i++)
			free(sigs[i]);
	free(sigs);
	free(lens);
	free(hb);
	free(buf);
	free(resp);
	free(msg);
	if (ans != NULL)
		rssp__engine__v1__sign_hash_response__free_unpacked(ans, NULL);
	return r;
}

#else /* !RSSP_HAVE_ENGINE_CLIENT: a gateway built without the engine client library */

int
sg_engine_activation(struct gw_request *req, const struct rssp_activation_fields *f,
    int kak_algo, const uint8_t *sig, size_t siglen, struct sg_activation_result *res,
    int *statusp, char **msgp)
{
	return RSSP_E_UNAVAILABLE;
}

int
sg_engine_approval(struct gw_request *req, const struct rssp_approval_fields *f,
    int kak_algo, const char *key_label, const uint8_t *binding, size_t binding_len,
    const uint8_t *sig, size_t siglen, uint8_t **sadp, size_t *sadlenp, long long *sad_expp,
    int *statusp, char **msgp)
{
	return RSSP_E_UNAVAILABLE;
}

static int
engine_sign_hash(struct gw_request *req, const char *credential_id, const uint8_t *sad,
    size_t sadlen, int hash_algo, int sign_algo, uint8_t *const *hashes, size_t n,
    size_t hash_len, uint8_t ***sigsp, size_t **siglensp, int *statusp, char **msgp)
{
	return RSSP_E_UNAVAILABLE;
}

#endif

/* ---- signatures/signHash ------------------------------------------------------------ */

static const struct {
	const char *oid;
	int sign_algo;
	int hash_algo; /* 0: from hashAlgorithmOID or signAlgoParams */
} sign_oids[] = {
	{ "1.2.840.113549.1.1.11", SG_SIGN_RSA_PKCS1, SG_HASH_SHA256 },
	{ "1.2.840.113549.1.1.12", SG_SIGN_RSA_PKCS1, SG_HASH_SHA384 },
	{ "1.2.840.113549.1.1.13", SG_SIGN_RSA_PKCS1, SG_HASH_SHA512 },
	{ "1.2.840.113549.1.1.10", SG_SIGN_RSA_PSS, 0 },
	{ "1.2.840.10045.4.3.2", SG_SIGN_ECDSA, SG_HASH_SHA256 },
	{ "1.2.840.10045.4.3.3", SG_SIGN_ECDSA, SG_HASH_SHA384 },
	{ "1.2.840.10045.4.3.4", SG_SIGN_ECDSA, SG_HASH_SHA512 },
};

static const char *
metric_name(int sign_algo, int hash_algo)
{
	static const char *const names[3][3] = {
		{ "rsa-pkcs1-sha256", "rsa-pkcs1-sha384", "rsa-pkcs1-sha512" },
		{ "rsa-pss-sha256", "rsa-pss-sha384", "rsa-pss-sha512" },
		{ "ecdsa-sha256", "ecdsa-sha384", "ecdsa-sha512" },
	};

	if (sign_algo < 1 || sign_algo > 3 || hash_algo < 1 || hash_algo > 3)
		return "other";
	return names[sign_algo - 1][hash_algo - 1];
}

/* HashAlgo of an X509_ALGOR naming a digest, or 0. */
static int
algor_hash(const X509_ALGOR *a)
{
	const ASN1_OBJECT *obj = NULL;
	char oid[64];

	if (a == NULL)
		return 0; /* the default, SHA-1: refused */
	X509_ALGOR_get0(&obj, NULL, NULL, a);
	if (obj == NULL || OBJ_obj2txt(oid, sizeof(oid), obj, 1) <= 0)
		return 0;
	return sg_hash_algo_from_oid(oid);
}

/* The hash of an MGF1 AlgorithmIdentifier (its parameter), or 0. d2i_RSA_PSS_PARAMS
 * leaves maskHash empty, so it is read from maskGenAlgorithm here. */
static int
mgf1_hash(const X509_ALGOR *mgf)
{
	const void *pval = NULL;
	const unsigned char *p;
	X509_ALGOR *md = NULL;
	int ptype = 0, h = 0;

	X509_ALGOR_get0(NULL, &ptype, &pval, mgf);
	if (ptype != V_ASN1_SEQUENCE || pval == NULL)
		return 0;
	p = ASN1_STRING_get0_data(pval);
	if ((md = d2i_X509_ALGOR(NULL, &p, ASN1_STRING_length(pval))) != NULL)
		h = algor_hash(md);
	X509_ALGOR_free(md);
	return h;
}

/* Reads RSASSA-PSS-params (DER): the hash, MGF1 with the same hash, salt = hash length,
 * trailer 1. Returns the HashAlgo or 0 when the parameters are not those. */
static int
pss_params_hash(const uint8_t *der, size_t len)
{
	const unsigned char *p = der;
	RSA_PSS_PARAMS *pss = NULL;
	const ASN1_OBJECT *mgf = NULL;
	int h = 0, mh;
	long salt;

	if ((pss = d2i_RSA_PSS_PARAMS(NULL, &p, (long)len)) == NULL || p != der + len)
		goto out;
	if ((h = algor_hash(pss->hashAlgorithm)) == 0)
		goto out;
	if (pss->maskGenAlgorithm == NULL)
		goto fail;
	X509_ALGOR_get0(&mgf, NULL, NULL, pss->maskGenAlgorithm);
	if (mgf == NULL || OBJ_obj2nid(mgf) != NID_mgf1)
		goto fail;
	if ((mh = mgf1_hash(pss->maskGenAlgorithm)) != h)
		goto fail;
	salt = pss->saltLength ? ASN1_INTEGER_get(pss->saltLength) : 20;
	if (salt != (long)rssp_hash_algo_len(h))
		goto fail;
	if (pss->trailerField != NULL && ASN1_INTEGER_get(pss->trailerField) != 1)
		goto fail;
	goto out;
fail:
	h = 0;
out:
	RSA_PSS_PARAMS_free(pss);
	ERR_clear_error();
	return h;
}

/* Why no row was spent: a second look, for a precise refusal. */
static int
spend_refusal(struct gw_request *req, struct gw_reply *rep, const char *sad_hash,
    const char *credential_id, size_t n)
{
	PGresult *res = NULL;
	int r;

	if ((r = gw_db_query(req->db, &res,
	    "SELECT r.requester_id = $2::uuid, r.credential_id = $3::uuid, c.status, r.status,"
	    " r.sad_expires_at <= extract(epoch FROM now())::bigint, r.remaining"
	    " FROM auth_requests r JOIN credentials c ON c.id = r.credential_id"
	    " WHERE r.sad_hash = $1", 3, sad_hash, req->principal.account_id,
	    credential_id)) != 0)
		goto out;
	if (PQntuples(res) != 1)
		r = gw_error(rep, 400, "invalid_request", "field 'SAD' is not a valid SAD");
	else if (strcmp(PQgetvalue(res, 0, 0), "t") != 0)
		r = gw_error(rep, 403, "access_denied", "field 'SAD' was not issued to you");
	else if (strcmp(PQgetvalue(res, 0, 1), "t") != 0)
		r = gw_error(rep, 400, "invalid_request", "field 'SAD' is not for field 'credentialID'");
	else if (strcmp(PQgetvalue(res, 0, 2), "ACTIVE") != 0)
		r = gw_error(rep, 409, "conflict", "credential is %s", PQgetvalue(res, 0, 2));
	else if (strcmp(PQgetvalue(res, 0, 4), "t") == 0)
		r = gw_error(rep, 410, "expired", "field 'SAD' has expired");
	else
		r = gw_error(rep, 403, "access_denied",
		    "field 'SAD' allows %s more signature(s), %zu asked", PQgetvalue(res, 0, 5), n);
out:
	PQclear(res);
	return r;
}

static int
refund(struct gw_request *req, const char *request_id, size_t n)
{
	char nb[24];
	int r;

	snprintf(nb, sizeof(nb), "%zu", n);
	if ((r = gw_db_query(req->db, NULL,
	    "UPDATE auth_requests SET remaining = remaining + $2::int WHERE id = $1", 2,
	    request_id, nb)) != 0)
		log_error("cannot refund %zu signature(s) to request %s", n, request_id);
	return r;
}

int
sg_sign_hash(struct gw_request *req, struct gw_reply *rep)
{
	const char *cred_id = NULL, *sad_b64 = NULL, *hoid = NULL, *soid = NULL;
	const char **hashes_b64 = NULL;
	uint8_t *sad = NULL, *params = NULL, **hashes = NULL, **sigs = NULL;
	size_t sadlen = 0, paramslen = 0, n = 0, i, hlen, *siglens = NULL;
	char *sad_bytea = NULL, nb[24], *msg = NULL, request_id[GW_UUID_LEN + 1];
	uint8_t digest[SHA256_DIGEST_LENGTH];
	PGresult *res = NULL;
	int r, sign_algo = 0, hash_algo = 0, h, key_algo, status = -1, spent = 0;
	json_t *arr = NULL;

	if ((r = sg_get_uuid(req, rep, "credentialID", true, &cred_id)) != 0 ||
	    (r = gw_get_str(req, rep, "SAD", 128 * 1024, true, &sad_b64)) != 0 ||
	    (r = gw_get_str_array(req, rep, "hashes", RSSP_MAX_HASHES, 128, true,
	    &hashes_b64, &n)) != 0 ||
	    (r = gw_get_str(req, rep, "hashAlgorithmOID", 64, false, &hoid)) != 0 ||
	    (r = gw_get_str(req, rep, "signAlgo", 64, true, &soid)) != 0 ||
	    (r = gw_get_b64(req, rep, "signAlgoParams", 256, false, &params, &paramslen)) != 0)
		goto out;
	if (sg_unb64(sad_b64, &sad, &sadlen) != 0) {
		r = gw_error(rep, 400, "invalid_request", "field 'SAD' must be base64");
		goto out;
	}
	for (i = 0; i < sizeof(sign_oids) / sizeof(sign_oids[0]); i++)
		if (strcmp(soid, sign_oids[i].oid) == 0) {
			sign_algo = sign_oids[i].sign_algo;
			hash_algo = sign_oids[i].hash_algo;
		}
	if (sign_algo == 0) {
		r = gw_error(rep, 400, "invalid_request", "field 'signAlgo' is not a supported algorithm");
		goto out;
	}
	if (params != NULL && sign_algo != SG_SIGN_RSA_PSS) {
		r = gw_error(rep, 400, "invalid_request", "field 'signAlgoParams' is only for RSASSA-PSS");
		goto out;
	}
	if (params != NULL) {
		if ((h = pss_params_hash(params, paramslen)) == 0) {
			r = gw_error(rep, 400, "invalid_request", "field 'signAlgoParams' must be "
			    "RSASSA-PSS-params with MGF1 of the same hash and salt = hash length");
			goto out;
		}
		hash_algo = h;
	}
	if (hoid != NULL) {
		if ((h = sg_hash_algo_from_oid(hoid)) == 0) {
			r = gw_error(rep, 400, "invalid_request", "field 'hashAlgorithmOID' is not a supported hash");
			goto out;
		}
		if (hash_algo != 0 && h != hash_algo) {
			r = gw_error(rep, 400, "invalid_request",
			    "field 'hashAlgorithmOID' does not match field 'signAlgo'");
			goto out;
		}
		hash_algo = h;
	}
	if (hash_algo == 0) {
		r = gw_error(rep, 400, "invalid_request", "missing field 'hashAlgorithmOID'");
		goto out;
	}
	hlen = rssp_hash_algo_len(hash_algo);
	if ((hashes = calloc(n, sizeof(*hashes))) == NULL) {
		r = RSSP_E_NOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		size_t l = 0;
		if (sg_unb64(hashes_b64[i], &hashes[i], &l) != 0 || l != hlen) {
			r = gw_error(rep, 400, "invalid_request",
			    "field 'hashes[%zu]' must be base64 of a %zu-byte digest", i, hlen);
			goto out;
		}
	}

	/* Spend n signatures, exactly once: one atomic statement that also checks the
	 * owner of the SAD, the credential and its state. */
	SHA256(sad, sadlen, digest);
	if ((sad_bytea = sg_bytea(digest, sizeof(digest))) == NULL) {
		r = RSSP_E_NOMEM;
		goto out;
	}
	snprintf(nb, sizeof(nb), "%zu", n);
	if ((r = gw_db_query(req->db, &res,
	    "UPDATE auth_requests r SET remaining = r.remaining - $3::int"
	    " FROM credentials c"
	    " WHERE r.sad_hash = $1 AND r.requester_id = $2::uuid AND r.status = 'CONFIRMED'"
	    " AND r.remaining >= $3::int AND r.sad_expires_at > extract(epoch FROM now())::bigint"
	    " AND c.id = r.credential_id AND c.id = $4::uuid AND c.status = 'ACTIVE'"
	    " RETURNING r.id, c.key_algo, r.hash_algo",
	    4, sad_bytea, req->principal.account_id, nb, cred_id)) != 0)
		goto out;
	if (PQntuples(res) != 1) {
		r = spend_refusal(req, rep, sad_bytea, cred_id, n);
		goto out;
	}
	spent = 1;
	snprintf(request_id, sizeof(request_id), "%s", PQgetvalue(res, 0, 0));
	key_algo = sg_key_algo_parse(PQgetvalue(res, 0, 1));
	if (atoi(PQgetvalue(res, 0, 2)) != hash_algo) {
		r = gw_error(rep, 400, "invalid_request",
		    "field 'hashAlgorithmOID' is not the algorithm that was approved");
		goto out;
	}
	if ((sign_algo == SG_SIGN_ECDSA) != (key_algo == SG_KEY_EC_P256 || key_algo == SG_KEY_EC_P384)) {
		r = gw_error(rep, 400, "invalid_request", "field 'signAlgo' does not fit the credential's key");
		goto out;
	}
	r = engine_sign_hash(req, cred_id, sad, sadlen, hash_algo, sign_algo, hashes, n, hlen,
	    &sigs, &siglens, &status, &msg);
	if (r == RSSP_E_TIMEOUT || r == RSSP_E_NOMEM || r == RSSP_E_INTERNAL ||
	    (r == 0 && (status == SG_GRPC_OK || status == SG_GRPC_DEADLINE_EXCEEDED ||
	    status == SG_GRPC_INTERNAL || status == 2 /* UNKNOWN */)))
		spent = 0; /* the engine may have signed: the count stays spent */
	if (r != 0 || status != SG_GRPC_OK) {
		r = sg_engine_error(rep, r, status, msg, "signature");
		goto out;
	}
	if ((arr = json_array()) == NULL) {
		r = RSSP_E_NOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		char *s = sg_b64(sigs[i], siglens[i]);
		if (s == NULL || json_array_append_new(arr, json_string(s)) != 0) {
			free(s);
			r = RSSP_E_NOMEM;
			goto out;
		}
		free(s);
	}
	gw_metrics_signatures(metric_name(sign_algo, hash_algo), (unsigned)n);
	r = gw_reply_json(rep, 200, json_pack("{s:o}", "signatures", arr));
	arr = NULL;
out:
	if (spent)
		(void)refund(req, request_id, n); /* the engine certainly refused */
	json_decref(arr);
	if (hashes != NULL)
		for (i = 0; i < n; i++)
			free(hashes[i]);
	free(hashes);
	if (sigs != NULL)
		for (i = 0; i < n; i++)
			free(sigs[i]);
	free(sigs);
	free(siglens);
	free(hashes_b64);
	free(params);
	free(sad_bytea);
	free(msg);
	if (sad != NULL)
		OPENSSL_clear_free(sad, sadlen);
	PQclear(res);
	return r;
}

/* ---- the route table --------------------------------------------------------------- */

#define SELF_ROLES (GW_ROLE_SIGNER | GW_ROLE_COMPANY_ADMIN)
#define ANY_ROLE GW_ROLES_ALL

const struct gw_route gw_routes_signing[] = {
	{ "/rssp/sic/activationCode", 0, ANY_ROLE, sic_activation_code },
	{ "/rssp/sic/activate/initialize", 0, ANY_ROLE, sic_activate_initialize },
	{ "/rssp/sic/activate/sendDevice", 0, ANY_ROLE, sic_activate_send_device },
	{ "/rssp/sic/status", 0, ANY_ROLE, sic_status },
	{ "/rssp/admin/devices/revoke", 0, GW_ROLE_ADMIN, sic_admin_devices_revoke },
	{ "/rssp/credentials/create", 0, GW_ROLE_ADMIN | GW_ROLE_RP | GW_ROLE_COMPANY_ADMIN, cred_create },
	{ "/rssp/credentials/list", 0, ANY_ROLE, cred_list },
	{ "/rssp/credentials/info", 0, ANY_ROLE, cred_info },
	{ "/rssp/credentials/activate/request", 0, ANY_ROLE, cred_activate_request },
	{ "/rssp/credentials/activate/response", GW_NEEDS_ENGINE | GW_LONG, ANY_ROLE,
	    cred_activate_response /* key generation: seconds, off the HTTP threads */ },
	{ "/rssp/credentials/activate/cancel", 0, ANY_ROLE, cred_activate_cancel },
	{ "/rssp/credentials/revoke", 0, ANY_ROLE, cred_revoke },
	{ "/rssp/credentials/authorize", 0, GW_ROLE_RP | SELF_ROLES, req_authorize },
	{ "/rssp/credentials/authorizeCheck", 0, ANY_ROLE, req_authorize_check },
	{ "/rssp/requests/list", 0, ANY_ROLE, req_list },
	{ "/rssp/requests/info", 0, ANY_ROLE, req_info },
	{ "/rssp/requests/confirm", GW_NEEDS_ENGINE, ANY_ROLE, req_confirm },
	{ "/rssp/requests/cancel", 0, ANY_ROLE, req_cancel },
	{ "/rssp/signatures/signHash", GW_NEEDS_ENGINE, ANY_ROLE, sg_sign_hash },
	/* The CSC v2 names of the same functions (api.md, "CSC v2 compatibility"). */
	{ "/csc/v2/credentials/list", 0, ANY_ROLE, cred_list },
	{ "/csc/v2/credentials/info", 0, ANY_ROLE, cred_info },
	{ "/csc/v2/credentials/authorize", 0, GW_ROLE_RP | SELF_ROLES, req_authorize },
	{ "/csc/v2/credentials/authorizeCheck", 0, ANY_ROLE, req_authorize_check },
	{ "/csc/v2/signatures/signHash", GW_NEEDS_ENGINE, ANY_ROLE, sg_sign_hash },
	{ 0 },
};
