/* csc.c - what the CSC v1 and v2 faces share: running an rssp handler on a translated
 * body, dates, algorithm lists, the credentials/info reshaping. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "csc.h"
#include "rssp_log.h"
#include "signing.h"

/* A 1x1 transparent PNG would do; an SVG with the service's initial says more. */
static const char csc_logo_uri[] = "data:image/svg+xml;base64,"
    "PHN2ZyB4bWxucz0iaHR0cDovL3d3dy53My5vcmcvMjAwMC9zdmciIHZpZXdCb3g9IjAgMCA2NCA2NCI+"
    "PHJlY3Qgd2lkdGg9IjY0IiBoZWlnaHQ9IjY0IiByeD0iMTIiIGZpbGw9IiMxZjNhNWYiLz48dGV4dCB4"
    "PSIzMiIgeT0iNDQiIGZvbnQtc2l6ZT0iMzYiIHRleHQtYW5jaG9yPSJtaWRkbGUiIGZpbGw9IiNmZmYi"
    "IGZvbnQtZmFtaWx5PSJzYW5zLXNlcmlmIj5SPC90ZXh0Pjwvc3ZnPg==";

json_t *
csc_info_json(struct gw_request *req, const char *specs, json_t *rest)
{
	json_t *o = NULL;

	if (rest != NULL)
		o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}",
		    "specs", specs,
		    "name", req->cfg->service_name,
		    "logo", csc_logo_uri,
		    "region", req->cfg->csc_region,
		    "lang", "en-US",
		    "description", "HSM-backed remote signing service (CSC API, ETSI EN 419 241 SCAL2)");
	if (o != NULL && json_object_update(o, rest) != 0) {
		json_decref(o);
		o = NULL;
	}
	json_decref(rest);
	return o;
}

static void
wipe_strings(json_t *v)
{
	const char *k;
	json_t *x;
	size_t i;

	if (json_is_string(v))
		OPENSSL_cleanse((char *)(uintptr_t)json_string_value(v), json_string_length(v));
	else if (json_is_object(v))
		json_object_foreach(v, k, x)
			wipe_strings(x);
	else if (json_is_array(v))
		json_array_foreach(v, i, x)
			wipe_strings(x);
}

int
csc_call(struct gw_request *req, struct gw_reply *rep, gw_handler_fn fn, json_t *body)
{
	json_t *saved = req->body, *own;
	int r;

	/* body may share values with the caller's body (json_pack "O", csc_copy): the
	 * handler gets a copy of its own, which is wiped (it may hold a SAD) */
	own = body != NULL ? json_deep_copy(body) : NULL;
	json_decref(body);
	if (own == NULL)
		return RSSP_E_NOMEM;
	req->body = own;
	r = fn(req, rep);
	req->body = saved;
	wipe_strings(own);
	json_decref(own);
	return r;
}

json_t *
csc_take_reply(struct gw_reply *rep, int *statusp)
{
	json_t *b = rep->body;

	*statusp = rep->status;
	rep->body = NULL;
	rep->status = 0;
	return b;
}

int
csc_gentime(const char *s, char out[16])
{
	static const int pos[14] = { 0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18 };
	size_t i;

	if (s == NULL || strlen(s) != 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' ||
	    s[13] != ':' || s[16] != ':' || s[19] != 'Z')
		return RSSP_E_INVAL;
	for (i = 0; i < 14; i++) {
		if (s[pos[i]] < '0' || s[pos[i]] > '9')
			return RSSP_E_INVAL;
		out[i] = s[pos[i]];
	}
	out[14] = 'Z';
	out[15] = '\0';
	return 0;
}

int
csc_hash_algo_of_len(size_t len)
{
	return len == 32 ? RSSP_HASH_SHA256 : len == 48 ? RSSP_HASH_SHA384 : len == 64 ? RSSP_HASH_SHA512 : 0;
}

void
csc_copy(json_t *dst, const json_t *src, const char *name, const char *as)
{
	json_t *v = json_object_get(src, name);

	if (v != NULL)
		json_object_set(dst, as ? as : name, v);
}

int
csc_not_implemented(struct gw_request *req, struct gw_reply *rep)
{
	const char *m = strchr(req->path + 5, '/'); /* after "/csc/vN" */

	return gw_error(rep, 501, "not_implemented", "the method %s is not implemented by this service",
	    m ? m + 1 : req->path);
}

json_t *
csc_key_algos(const char *key_algo)
{
	const struct rssp_key_alg *ka = rssp_key_alg_by_name(key_algo);

	if (ka != NULL && ka->type == RSSP_KEYTYPE_EC)
		return json_pack("[s,s,s,s]", "1.2.840.10045.2.1", "1.2.840.10045.4.3.2",
		    "1.2.840.10045.4.3.3", "1.2.840.10045.4.3.4");
	return json_pack("[s,s,s,s,s]", "1.2.840.113549.1.1.1", "1.2.840.113549.1.1.11",
	    "1.2.840.113549.1.1.12", "1.2.840.113549.1.1.13", "1.2.840.113549.1.1.10");
}

/* key and cert in the CSC shape (same in v1 and v2); NULL on failure. */
static json_t *
key_obj(const json_t *in)
{
	const json_t *k = json_object_get(in, "key");
	json_t *o, *algos;

	if (!json_is_object(k) || (algos = csc_key_algos(json_string_value(json_object_get(in, "keyAlgo")))) == NULL)
		return NULL;
	o = json_pack("{s:O,s:o,s:O}", "status", json_object_get(k, "status"), "algo", algos,
	    "len", json_object_get(k, "len"));
	if (o != NULL)
		csc_copy(o, k, "curve", NULL);
	return o;
}

static json_t *
cert_obj(const json_t *in)
{
	const json_t *c = json_object_get(in, "cert");
	static const char *const copy[] = { "status", "certificates", "issuerDN", "serialNumber",
	    "subjectDN" };
	static const char *const dates[] = { "validFrom", "validTo" };
	json_t *o;
	char gt[16];
	size_t i;

	if (!json_is_object(c))
		return json_pack("{s:[]}", "certificates");
	if ((o = json_object()) == NULL)
		return NULL;
	for (i = 0; i < sizeof(copy) / sizeof(copy[0]); i++)
		csc_copy(o, c, copy[i], NULL);
	for (i = 0; i < sizeof(dates) / sizeof(dates[0]); i++) {
		const char *d = json_string_value(json_object_get(c, dates[i]));
		if (d == NULL)
			continue;
		if (csc_gentime(d, gt) != 0) {
			log_error("credential date %.40s does not parse", d);
			json_decref(o);
			return NULL;
		}
		json_object_set_new(o, dates[i], json_string(gt));
	}
	return o;
}

json_t *
csc_cred_info_v1(const json_t *in)
{
	json_t *o, *k = key_obj(in), *c = cert_obj(in);

	if (k == NULL || c == NULL) {
		json_decref(k);
		json_decref(c);
		return NULL;
	}
	/* v1 "implicit": the service collects the authorization itself, with the signer
	 * on the signer's own app; nothing (PIN, OTP) is asked of the client. */
	o = json_pack("{s:O,s:o,s:o,s:s,s:s,s:O,s:s}", "description",
	    json_object_get(in, "description"), "key", k, "cert", c, "authMode", "implicit",
	    "SCAL", "2", "multisign", json_object_get(in, "multisign"), "lang", "en-US");
	return o;
}

json_t *
csc_cred_info_v2(const json_t *in)
{
	json_t *o, *k = key_obj(in), *c = cert_obj(in), *auth;

	/* v2 has no "implicit" mode. "explicit": credentials/authorize takes no PIN or OTP
	 * object (objects is empty); the signer approves on the app bound to the
	 * credential, out of band, and the client polls authorizeCheck. The same
	 * approval is reachable through OAuth (oauth2/authorize, scope "credential"). */
	auth = json_pack("{s:s,s:[]}", "mode", "explicit", "objects");
	if (k == NULL || c == NULL || auth == NULL) {
		json_decref(k);
		json_decref(c);
		json_decref(auth);
		return NULL;
	}
	o = json_pack("{s:O,s:o,s:o,s:o,s:s,s:O,s:s}", "description",
	    json_object_get(in, "description"), "key", k, "cert", c, "auth", auth,
	    "SCAL", "2", "multisign", json_object_get(in, "multisign"), "lang", "en-US");
	return o;
}

int
csc_cred_info(struct gw_request *req, struct gw_reply *rep, const char *cred_id,
    json_t *(*shape)(const json_t *), json_t **outp)
{
	json_t *b, *in;
	int r, st;

	b = json_pack("{s:s}", "credentialID", cred_id);
	if (b != NULL) {
		csc_copy(b, req->body, "certificates", NULL);
		csc_copy(b, req->body, "certInfo", NULL);
		csc_copy(b, req->body, "authInfo", NULL);
	}
	if ((r = csc_call(req, rep, cred_info, b)) != 0 || rep->status != 200) {
		if (rep->status != 0)
			(void)csc_map_error(rep, "credentialID");
		return r ? r : RSSP_E_INVAL;
	}
	in = csc_take_reply(rep, &st);
	*outp = shape(in);
	json_decref(in);
	return *outp ? 0 : RSSP_E_NOMEM;
}

int
csc_map_error(struct gw_reply *rep, const char *field)
{
	json_t *d;

	if (rep->status == 404) {
		return gw_error(rep, 400, "invalid_request", "Invalid parameter %s", field);
	}
	if (rep->status == 410) {
		char text[300];
		d = json_object_get(rep->body, "error_description");
		snprintf(text, sizeof(text), "%s", json_is_string(d) ? json_string_value(d) : "expired");
		return gw_error(rep, 400, "invalid_request", "%s", text);
	}
	return RSSP_E_INVAL;
}

int
csc_need(struct gw_request *req, struct gw_reply *rep, const char *name, json_type type)
{
	json_t *v = json_object_get(req->body, name);

	if (v == NULL || json_typeof(v) != type || (type == JSON_STRING && json_string_length(v) == 0) ||
	    (type == JSON_ARRAY && json_array_size(v) == 0))
		return gw_error(rep, 400, "invalid_request", "Missing (or invalid type) %s parameter %s",
		    type == JSON_STRING ? "string" : type == JSON_ARRAY ? "array" :
		    type == JSON_INTEGER ? "integer" : "boolean", name);
	return 0;
}

const char *
csc_base_url(struct gw_request *req, char *buf, size_t n)
{
	const char *host = gw_header(req, "Host"), *proto = NULL;
	size_t i;

	if (req->cfg->trust_forwarded)
		proto = gw_header(req, "X-Forwarded-Proto");
	if (proto == NULL || (strcmp(proto, "https") != 0 && strcmp(proto, "http") != 0))
		proto = req->cfg->tls_cert != NULL ? "https" : "http";
	if (host == NULL || *host == '\0' || strlen(host) > 200)
		host = "localhost";
	for (i = 0; host[i]; i++) /* a Host header is attacker-supplied: host[:port] only */
		if (!((host[i] >= 'a' && host[i] <= 'z') || (host[i] >= 'A' && host[i] <= 'Z') ||
		    (host[i] >= '0' && host[i] <= '9') || strchr(".-:[]", host[i]) != NULL)) {
			host = "localhost";
			break;
		}
	snprintf(buf, n, "%s://%s", proto, host);
	return buf;
}
