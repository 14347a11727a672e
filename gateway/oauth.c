/* oauth.c - OAuth 2.0 as CSC API v2 defines it (oauth.h):
 *
 *   GET  /csc/v2/oauth2/authorize   credential authorization (authorization code + PKCE
 *                                   S256): creates the approval request on the signer's
 *                                   app, then shows the signer a page that waits for it
 *   POST /csc/v2/oauth2/token       client_credentials (RP service authorization) and
 *                                   authorization_code (the credential token)
 *   POST /csc/v2/oauth2/revoke      RFC 7009
 *   POST /rssp/admin/clients/update the redirect URIs of an RP client
 *
 * Sole control does not move: the page shows what is asked and waits; nothing on it can
 * approve. The approval is the SIC confirm with the KAK (auth_requests.c), checked by the
 * engine; the code is issued only once the request is CONFIRMED, and the credential
 * token only stands for the SAD the engine minted (signHash still presents that SAD,
 * and the engine checks it). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "auth.h"
#include "csc.h"
#include "oauth.h"
#include "rssp_log.h"
#include "signing.h"
#include "db.h"
#include "login_name.h"
#include "ratelimit.h"
#include "secrets.h"

#define OAUTH_CODE_TTL 60        /* seconds an authorization code lives */
#define OAUTH_MAX_REDIRECTS 10   /* redirect URIs per client */
#define OAUTH_URI_MAX 2000
#define OAUTH_STATE_MAX 500
#define PAGE_PATH "/csc/v2/oauth2/authorize"
#define CSS_PATH "/csc/v2/oauth2/page.css"

extern const char gw_oauth_page_html[];
extern const char gw_oauth_page_css[];

/* ---- small helpers --------------------------------------------------------------- */

static void
sha256_hex(const char *s, char out[65])
{
	gw_sha256_hex(s, strlen(s), out);
}

/* base64url without padding of SHA-256(s): the PKCE S256 transform. */
static void
s256(const char *verifier, char out[44])
{
	static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	uint8_t d[32];
	size_t i, o = 0;
	uint32_t v;

	SHA256((const uint8_t *)verifier, strlen(verifier), d);
	for (i = 0; i + 3 <= 30; i += 3) {
		v = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8 | d[i + 2];
		out[o++] = al[v >> 18 & 63];
		out[o++] = al[v >> 12 & 63];
		out[o++] = al[v >> 6 & 63];
		out[o++] = al[v & 63];
	}
	v = (uint32_t)d[30] << 16 | (uint32_t)d[31] << 8;
	out[o++] = al[v >> 18 & 63];
	out[o++] = al[v >> 12 & 63];
	out[o++] = al[v >> 6 & 63];
	out[o] = '\0';
}

static int
charset_ok(const char *s, const char *extra, size_t min, size_t max)
{
	size_t n = strlen(s), i;

	if (n < min || n > max)
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= '0' && s[i] <= '9') || strchr(extra, s[i]) != NULL))
			return 0;
	return 1;
}

/* Appends s to a growing buffer, percent-encoding all but RFC 3986 unreserved. */
static int
buf_cat(char **bp, size_t *lenp, size_t *capp, const char *s, int encode)
{
	size_t need = strlen(s) * 3 + 1;
	char *b;

	if (*lenp + need > *capp) {
		size_t cap = (*capp ? *capp : 256);
		while (cap < *lenp + need)
			cap *= 2;
		if ((b = realloc(*bp, cap)) == NULL)
			return RSSP_E_NOMEM;
		*bp = b;
		*capp = cap;
	}
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (!encode || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~') {
			(*bp)[(*lenp)++] = (char)c;
		} else {
			snprintf(*bp + *lenp, 4, "%%%02X", c);
			*lenp += 3;
		}
	}
	(*bp)[*lenp] = '\0';
	return 0;
}

/* 303 to redirect_uri with the parameters (name, value pairs, NULL-terminated). */
static int
redirect_to(struct gw_reply *rep, const char *uri, ...)
{
	char *b = NULL;
	size_t len = 0, cap = 0;
	const char *k, *v;
	int r, first = strchr(uri, '?') == NULL;
	va_list ap;

	if ((r = buf_cat(&b, &len, &cap, uri, 0)) != 0)
		return r;
	va_start(ap, uri);
	while ((k = va_arg(ap, const char *)) != NULL) {
		v = va_arg(ap, const char *);
		if (v == NULL)
			continue;
		if ((r = buf_cat(&b, &len, &cap, first ? "?" : "&", 0)) != 0 ||
		    (r = buf_cat(&b, &len, &cap, k, 0)) != 0 || (r = buf_cat(&b, &len, &cap, "=", 0)) != 0 ||
		    (r = buf_cat(&b, &len, &cap, v, 1)) != 0)
			break;
		first = 0;
	}
	va_end(ap);
	if (r == 0 && (r = gw_reply_header(rep, "Location", b)) == 0)
		r = gw_reply_empty(rep, 303);
	if (b != NULL)
		OPENSSL_cleanse(b, len); /* may hold a code */
	free(b);
	return r;
}

/* An HTML-escaped copy of s (at most max bytes of it). */
static char *
html_escape(const char *s, size_t max)
{
	size_t n = strnlen(s, max), i, o = 0;
	char *b = malloc(n * 6 + 1);

	if (b == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		const char *e = s[i] == '<' ? "&lt;" : s[i] == '>' ? "&gt;" : s[i] == '&' ? "&amp;" :
		    s[i] == '"' ? "&quot;" : s[i] == '\'' ? "&#39;" : NULL;
		if (e != NULL) {
			memcpy(b + o, e, strlen(e));
			o += strlen(e);
		} else {
			b[o++] = s[i];
		}
	}
	b[o] = '\0';
	return b;
}

static int
page_headers(struct gw_reply *rep)
{
	int r;

	/* no inline script or style anywhere: the stylesheet comes from 'self' */
	if ((r = gw_reply_header(rep, "Content-Security-Policy", "default-src 'self'; "
	    "frame-ancestors 'none'; form-action 'none'; base-uri 'none'")) != 0 ||
	    (r = gw_reply_header(rep, "X-Frame-Options", "DENY")) != 0 ||
	    (r = gw_reply_header(rep, "Referrer-Policy", "no-referrer")) != 0)
		return r;
	return 0;
}

/* A page that says what went wrong (never a redirect: the redirect URI is not trusted
 * yet, RFC 6749 4.1.2.1). */
static int
error_page(struct gw_reply *rep, int status, const char *text)
{
	char *e = html_escape(text, 300), *page;
	size_t n;
	int r;

	if (e == NULL)
		return RSSP_E_NOMEM;
	n = strlen(e) + 600;
	if ((page = malloc(n)) == NULL) {
		free(e);
		return RSSP_E_NOMEM;
	}
	snprintf(page, n, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
	    "<title>Signature request</title><link rel=\"stylesheet\" href=\"%s\"></head><body>"
	    "<main class=\"card\"><h1>This request cannot be shown</h1><p id=\"error\">%s</p>"
	    "</main></body></html>\n", CSS_PATH, e);
	free(e);
	if ((r = page_headers(rep)) == 0)
		r = gw_reply_text(rep, status, "text/html; charset=utf-8", page);
	free(page);
	return r;
}

/* Replaces @NAME@ in the template by the values (already escaped). */
static char *
render(const char *tpl, const char *const *names, const char *const *values, size_t n)
{
	char *b = NULL;
	size_t len = 0, cap = 0, i;
	const char *p = tpl, *at;

	while ((at = strchr(p, '@')) != NULL) {
		char chunk[4096];
		size_t k = (size_t)(at - p);
		for (i = 0; i < n; i++)
			if (strncmp(at + 1, names[i], strlen(names[i])) == 0 && at[1 + strlen(names[i])] == '@')
				break;
		while (k > 0) {
			size_t c = k < sizeof(chunk) - 1 ? k : sizeof(chunk) - 1;
			memcpy(chunk, p, c);
			chunk[c] = '\0';
			if (buf_cat(&b, &len, &cap, chunk, 0) != 0)
				goto fail;
			p += c;
			k -= c;
		}
		if (i == n) {
			if (buf_cat(&b, &len, &cap, "@", 0) != 0)
				goto fail;
			p = at + 1;
			continue;
		}
		if (buf_cat(&b, &len, &cap, values[i], 0) != 0)
			goto fail;
		p = at + 2 + strlen(names[i]);
	}
	if (buf_cat(&b, &len, &cap, p, 0) != 0)
		goto fail;
	return b;
fail:
	free(b);
	return NULL;
}

/* ---- redirect URIs ----------------------------------------------------------------- */

/* RFC 6749 3.1.2 and RFC 8252: absolute, no fragment, https; http only to loopback. */
static int
redirect_uri_ok(const char *u)
{
	static const char *const loopback[] = { "127.0.0.1", "[::1]", "localhost" };
	size_t i, n = strlen(u), l;

	if (n < 8 || n > OAUTH_URI_MAX || strchr(u, '#') != NULL)
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)u[i] <= 0x20 || (unsigned char)u[i] >= 0x7f)
			return 0;
	if (strncmp(u, "https://", 8) == 0)
		return u[8] != '\0' && u[8] != '/';
	if (strncmp(u, "http://", 7) != 0)
		return 0;
	for (i = 0; i < sizeof(loopback) / sizeof(loopback[0]); i++) {
		l = strlen(loopback[i]);
		if (strncmp(u + 7, loopback[i], l) == 0 && (u[7 + l] == ':' || u[7 + l] == '/' ||
		    u[7 + l] == '\0'))
			return 1;
	}
	return 0;
}

int
oauth_redirects_store(struct gw_request *req, struct gw_reply *rep, const char *client_id,
    bool replace)
{
	const char **uris = NULL;
	size_t n = 0, i;
	int r;

	if ((r = gw_get_str_array(req, rep, "redirectURIs", OAUTH_MAX_REDIRECTS, OAUTH_URI_MAX,
	    replace, &uris, &n)) != 0)
		return r;
	for (i = 0; i < n; i++)
		if (!redirect_uri_ok(uris[i])) {
			r = gw_error(rep, 400, "invalid_request", "field 'redirectURIs[%zu]' must be an "
			    "absolute https URI (http only to 127.0.0.1, [::1] or localhost) without a "
			    "fragment", i);
			goto out;
		}
	if (replace && (r = gw_db_query(req->db, NULL,
	    "DELETE FROM oauth_redirect_uris WHERE client_id = $1", 1, client_id)) != 0)
		goto out;
	for (i = 0; i < n; i++)
		if ((r = gw_db_query(req->db, NULL, "INSERT INTO oauth_redirect_uris (client_id, uri)"
		    " VALUES ($1, $2) ON CONFLICT DO NOTHING", 2, client_id, uris[i])) != 0)
			goto out;
out:
	free(uris);
	return r;
}

int
oauth_clients_update(struct gw_request *req, struct gw_reply *rep)
{
	const char *client_id = NULL;
	PGresult *res = NULL;
	int r;

	if ((r = gw_get_str(req, rep, "clientID", 64, true, &client_id)) != 0)
		return r;
	if ((r = gw_tx_begin(req)) != 0 ||
	    (r = gw_db_query(req->db, &res, "SELECT 1 FROM rp_clients WHERE client_id = $1 FOR UPDATE",
	    1, client_id)) != 0)
		goto out;
	if (PQntuples(res) != 1) {
		r = gw_error(rep, 404, "not_found", "no such client in 'clientID'");
		goto out;
	}
	if ((r = oauth_redirects_store(req, rep, client_id, true)) != 0 || (r = gw_tx_commit(req)) != 0)
		goto out;
	r = gw_reply_json(rep, 200, json_pack("{s:s,s:O}", "clientID", client_id, "redirectURIs",
	    json_object_get(req->body, "redirectURIs")));
out:
	PQclear(res);
	return r;
}

/* ---- oauth2/authorize ----------------------------------------------------------------- */

/* base64url or base64 (padded or not) to standard padded base64; NULL when malformed. */
static char *
to_b64(const char *s)
{
	size_t n = strlen(s), i;
	char *b;

	if (n == 0 || n > 200 || (b = malloc(n + 4)) == NULL)
		return NULL;
	for (i = 0; i < n; i++)
		b[i] = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
	while (i % 4 != 0)
		b[i++] = '=';
	b[i] = '\0';
	return b;
}

/* The credential authorization asked for: from authorization_details (type
 * "credential") or from scope=credential and its parameters. Sets an OAuth error
 * (code, text) and returns -1 when malformed. *bodyp: the rssp credentials/authorize
 * body. */
static int
credential_request(struct gw_request *req, json_t **bodyp, const char **codep, char *text, size_t tn)
{
	json_t *q = req->body, *ad = NULL, *d = NULL, *hashes = NULL, *b = NULL, *v;
	const char *scope = json_string_value(json_object_get(q, "scope"));
	const char *adtext = json_string_value(json_object_get(q, "authorization_details"));
	const char *cred = NULL, *hoid = NULL, *num_s = NULL, *desc;
	long long num = 0;
	size_t i;
	int r = -1;

	*codep = "invalid_request";
	if ((hashes = json_array()) == NULL)
		goto nomem;
	if (adtext != NULL) {
		json_error_t e;
		if ((ad = json_loads(adtext, JSON_REJECT_DUPLICATES, &e)) == NULL || !json_is_array(ad) ||
		    json_array_size(ad) != 1 || !json_is_object(d = json_array_get(ad, 0)) ||
		    !json_is_string(json_object_get(d, "type")) ||
		    strcmp(json_string_value(json_object_get(d, "type")), "credential") != 0) {
			snprintf(text, tn, "authorization_details must be a JSON array of one object of type \"credential\"");
			goto out;
		}
		cred = json_string_value(json_object_get(d, "credentialID"));
		hoid = json_string_value(json_object_get(d, "hashAlgorithmOID"));
		if (json_is_integer(v = json_object_get(d, "numSignatures")))
			num = json_integer_value(v);
		else if (v != NULL) {
			snprintf(text, tn, "authorization_details numSignatures must be an integer");
			goto out;
		}
		if (json_is_array(v = json_object_get(d, "hashes"))) {
			json_array_foreach(v, i, d) {
				char *b64 = json_is_string(d) ? to_b64(json_string_value(d)) : NULL;
				if (b64 == NULL)
					goto badhash;
				json_array_append_new(hashes, json_string(b64));
				free(b64);
			}
		} else if (json_is_array(v = json_object_get(json_array_get(ad, 0), "documentDigests"))) {
			json_t *dd;
			json_array_foreach(v, i, dd) {
				const char *h = json_string_value(json_object_get(dd, "hash"));
				char *b64 = h ? to_b64(h) : NULL;
				if (b64 == NULL)
					goto badhash;
				json_array_append_new(hashes, json_string(b64));
				free(b64);
			}
		}
	} else {
		const char *hs = json_string_value(json_object_get(q, "hashes"));
		char *copy, *save = NULL, *t;

		if (scope == NULL || strcmp(scope, "credential") != 0) {
			*codep = "invalid_scope";
			snprintf(text, tn, "scope must be \"credential\" (or use authorization_details); "
			    "service authorization is oauth2/token with client_credentials");
			goto out;
		}
		cred = json_string_value(json_object_get(q, "credentialID"));
		hoid = json_string_value(json_object_get(q, "hashAlgorithmOID"));
		num_s = json_string_value(json_object_get(q, "numSignatures"));
		if (num_s != NULL) {
			char *end;
			num = strtoll(num_s, &end, 10);
			if (*end != '\0' || end == num_s) {
				snprintf(text, tn, "numSignatures must be an integer");
				goto out;
			}
		}
		if (hs != NULL) {
			if ((copy = strdup(hs)) == NULL)
				goto nomem;
			for (t = strtok_r(copy, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
				char *b64 = to_b64(t);
				if (b64 == NULL) {
					free(copy);
					goto badhash;
				}
				json_array_append_new(hashes, json_string(b64));
				free(b64);
			}
			free(copy);
		}
	}
	if (cred == NULL || hoid == NULL || json_array_size(hashes) == 0) {
		snprintf(text, tn, "credentialID, hashes and hashAlgorithmOID are required");
		goto out;
	}
	if (num == 0)
		num = (long long)json_array_size(hashes);
	desc = json_string_value(json_object_get(q, "description"));
	b = json_pack("{s:s,s:I,s:O,s:s}", "credentialID", cred, "numSignatures", (json_int_t)num,
	    "hashes", hashes, "hashAlgorithmOID", hoid);
	if (b == NULL)
		goto nomem;
	if (desc != NULL)
		json_object_set_new(b, "description", json_string(desc));
	csc_copy(b, q, "clientData", NULL);
	*bodyp = b;
	r = 0;
	goto out;
badhash:
	snprintf(text, tn, "each hash must be base64url (or base64)");
	goto out;
nomem:
	r = RSSP_E_NOMEM;
out:
	json_decref(ad);
	json_decref(hashes);
	return r;
}

/* The RP client's account and name, or 0 rows. */
static int
client_lookup(struct gw_request *req, const char *client_id, PGresult **resp)
{
	return gw_db_query(req->db, resp, "SELECT c.account_id, c.name, a.status,"
	    " coalesce(a.company_id::text, ''), coalesce(a.registered_by::text, '')"
	    " FROM rp_clients c JOIN accounts a ON a.id = c.account_id WHERE c.client_id = $1",
	    1, client_id);
}

/* ---- the limits on approval prompts -----------------------------------------------
 * oauth2/authorize is unauthenticated by design (the signer's browser calls it), yet each
 * call pushes an approval prompt to the signer's phone: whoever knows a client_id and a
 * credentialID could prompt without end (MFA fatigue). So prompts are bounded per client
 * address and per credential (exact token buckets, ratelimit.h, keyed on the address key
 * of login_name.h and the lowercase credential uuid), and at most
 * RSSP_OAUTH_PENDING_PER_CREDENTIAL OAuth-originated requests may be pending per
 * credential at once. README "Limits under hostile load". */

static struct gw_ratelimit *addr_limiter, *cred_limiter;

int
oauth_limits_init(const struct gw_config *cfg)
{
	int r;

	if ((r = gw_ratelimit_new((double)cfg->oauth_addr_rate / 60.0, (double)cfg->oauth_addr_burst,
	    cfg->login_keys, &addr_limiter)) < 0 ||
	    (r = gw_ratelimit_new((double)cfg->oauth_cred_rate / 60.0, (double)cfg->oauth_cred_burst,
	    cfg->login_keys, &cred_limiter)) < 0) {
		oauth_limits_shutdown();
		return r;
	}
	return 0;
}

void
oauth_limits_shutdown(void)
{
	gw_ratelimit_free(addr_limiter);
	gw_ratelimit_free(cred_limiter);
	addr_limiter = cred_limiter = NULL;
}

static double
mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The advisory-lock key that serialises the pending count and the creation for one
 * credential (across gateway replicas: it is PostgreSQL's). */
#define PENDING_LOCK_SQL(op) "SELECT " op "(hashtextextended('rssp.oauth.pending:' || $1, 0))"

/* Checks the limits before an approval request for cred (NULL when not a lowercase
 * uuid: then it cannot be created, and only the address counts). Returns 0 and
 * *refusedp = 0 when the request may be created, with the credential's advisory lock
 * held on req->db (*lockedp = 1; give it back with pending_unlock() once the
 * oauth_authorizations row is written); or 0 and *refusedp = 1 with the refusal set (a
 * redirect with temporarily_unavailable); or a negative RSSP_E*. */
static int
authorize_limits(struct gw_request *req, struct gw_reply *rep, const char *cred, const char *ruri,
    const char *state, int *refusedp, int *lockedp)
{
	char key[GW_RATELIMIT_KEY_MAX], ak[80], ra[16], lim[16];
	const char *why = NULL;
	unsigned w = 0;
	double now = mono_now();
	PGresult *res = NULL;
	int r;

	*refusedp = *lockedp = 0;
	gw_login_addr_key(req->client_addr, ak, sizeof(ak));
	snprintf(key, sizeof(key), "oauth-addr\n%s", ak);
	if (gw_ratelimit_take(addr_limiter, key, now, &w) != 0) {
		log_info("oauth authorize rate limit reached for %.100s", req->client_addr);
		why = "too many signature requests from this address, retry later";
		goto refuse;
	}
	if (cred == NULL)
		return 0;
	snprintf(key, sizeof(key), "oauth-cred\n%s", cred);
	if (gw_ratelimit_take(cred_limiter, key, now, &w) != 0) {
		log_info("oauth authorize rate limit reached for credential %s", cred);
		why = "too many signature requests for this credential, retry later";
		goto refuse;
	}
	if ((r = gw_db_query(req->db, NULL, PENDING_LOCK_SQL("pg_advisory_lock"), 1, cred)) != 0)
		return r;
	*lockedp = 1;
	snprintf(lim, sizeof(lim), "%u", req->cfg->oauth_pending);
	if ((r = gw_db_query(req->db, &res, "SELECT count(*) >= $2::int FROM oauth_authorizations o"
	    " JOIN auth_requests r ON r.id = o.request_id WHERE r.credential_id = $1::uuid"
	    " AND r.status = 'PENDING' AND r.expires_at > extract(epoch FROM now())::bigint",
	    2, cred, lim)) != 0)
		return r;
	if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
		PQclear(res);
		return 0;
	}
	PQclear(res);
	log_info("oauth authorize: too many pending requests for credential %s", cred);
	why = "too many signature requests are waiting for the signer, retry later";
	w = 60;
refuse:
	*refusedp = 1;
	snprintf(ra, sizeof(ra), "%u", w > 0 ? w : 1);
	if ((r = gw_reply_header(rep, "Retry-After", ra)) != 0)
		return r;
	return redirect_to(rep, ruri, "error", "temporarily_unavailable", "error_description", why,
	    "state", state, NULL);
}

static void
pending_unlock(struct gw_request *req, const char *cred)
{
	/* a failure means the connection is broken: the pool drops it, and the lock with it */
	if (req->db != NULL && gw_db_query(req->db, NULL, PENDING_LOCK_SQL("pg_advisory_unlock"), 1, cred) != 0)
		log_warn("cannot release the oauth pending lock");
}

static int
authorize_new(struct gw_request *req, struct gw_reply *rep)
{
	json_t *q = req->body, *body = NULL, *in = NULL;
	const char *client_id = json_string_value(json_object_get(q, "client_id"));
	const char *ruri = json_string_value(json_object_get(q, "redirect_uri"));
	const char *state = json_string_value(json_object_get(q, "state"));
	const char *rtype = json_string_value(json_object_get(q, "response_type"));
	const char *chal = json_string_value(json_object_get(q, "code_challenge"));
	const char *method = json_string_value(json_object_get(q, "code_challenge_method"));
	const char *code = NULL, *rid;
	char text[300], page[GW_TOKEN_LEN + 1], page_hash[65], url[GW_TOKEN_LEN + 64];
	PGresult *res = NULL, *ok = NULL;
	char cred[GW_UUID_LEN + 1] = "";
	int r, st, refused = 0, locked = 0;

	if (client_id == NULL || ruri == NULL)
		return error_page(rep, 400, "client_id and redirect_uri are required.");
	if (strlen(client_id) > 64)
		return error_page(rep, 400, "Unknown client_id.");
	if ((r = client_lookup(req, client_id, &res)) != 0)
		goto out;
	if (PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 2), "ACTIVE") != 0) {
		r = error_page(rep, 400, "Unknown client_id.");
		goto out;
	}
	if ((r = gw_db_query(req->db, &ok, "SELECT 1 FROM oauth_redirect_uris WHERE client_id = $1"
	    " AND uri = $2", 2, client_id, ruri)) != 0)
		goto out;
	if (PQntuples(ok) != 1) {
		r = error_page(rep, 400, "The redirect_uri is not registered for this client.");
		goto out;
	}
	/* from here on, errors go back to the client's redirect URI */
	if (state != NULL && strlen(state) > OAUTH_STATE_MAX) {
		r = redirect_to(rep, ruri, "error", "invalid_request", "error_description",
		    "state is too long", NULL);
		goto out;
	}
	if (rtype == NULL || strcmp(rtype, "code") != 0) {
		r = redirect_to(rep, ruri, "error", "unsupported_response_type", "error_description",
		    "response_type must be code", "state", state, NULL);
		goto out;
	}
	if (method == NULL || strcmp(method, "S256") != 0 || chal == NULL ||
	    !charset_ok(chal, "-_", 43, 43)) {
		r = redirect_to(rep, ruri, "error", "invalid_request", "error_description",
		    "PKCE is required: code_challenge_method S256 and a 43-character code_challenge",
		    "state", state, NULL);
		goto out;
	}
	if ((r = credential_request(req, &body, &code, text, sizeof(text))) != 0) {
		if (r == RSSP_E_NOMEM)
			goto out;
		r = redirect_to(rep, ruri, "error", code, "error_description", text, "state", state, NULL);
		goto out;
	}
	{
		const char *c = json_string_value(json_object_get(body, "credentialID"));
		if (c != NULL && gw_is_uuid(c))
			snprintf(cred, sizeof(cred), "%s", c);
	}
	if ((r = authorize_limits(req, rep, cred[0] ? cred : NULL, ruri, state, &refused, &locked)) != 0 ||
	    refused)
		goto out;
	/* the approval request is the RP client's, as if it had called credentials/authorize
	 * (the body has no "wait": req->db, which holds the lock, is not given back meanwhile) */
	memset(&req->principal, 0, sizeof(req->principal));
	snprintf(req->principal.account_id, sizeof(req->principal.account_id), "%s", PQgetvalue(res, 0, 0));
	snprintf(req->principal.company_id, sizeof(req->principal.company_id), "%s", PQgetvalue(res, 0, 3));
	snprintf(req->principal.registered_by, sizeof(req->principal.registered_by), "%s",
	    PQgetvalue(res, 0, 4));
	req->principal.role = GW_ROLE_RP;
	req->authenticated = true;
	r = csc_call(req, rep, areq_authorize, body);
	body = NULL;
	if (r != 0 || rep->status >= 300) {
		json_t *d = json_object_get(rep->body, "error_description");
		snprintf(text, sizeof(text), "%s", json_is_string(d) ? json_string_value(d) : "refused");
		if (rep->status == 0)
			goto out; /* internal: the framework answers 500 */
		r = redirect_to(rep, ruri, "error", rep->status == 403 ? "access_denied" : "invalid_request",
		    "error_description", text, "state", state, NULL);
		goto out;
	}
	in = csc_take_reply(rep, &st);
	rid = json_string_value(json_object_get(in, "requestID"));
	gw_random_token(page);
	sha256_hex(page, page_hash);
	if (rid == NULL || (r = gw_db_query(req->db, NULL,
	    "INSERT INTO oauth_authorizations (page_hash, client_id, request_id, redirect_uri, state,"
	    " code_challenge) VALUES (decode($1, 'hex'), $2, $3::uuid, $4, $5, $6)", 6, page_hash,
	    client_id, rid, ruri, state, chal)) != 0) {
		r = r ? r : RSSP_E_INTERNAL;
		goto out;
	}
	/* the page lives at its own URL: reloading it never creates a second request */
	snprintf(url, sizeof(url), PAGE_PATH "?page=%s", page);
	if ((r = gw_reply_header(rep, "Location", url)) == 0)
		r = gw_reply_empty(rep, 303);
out:
	if (locked)
		pending_unlock(req, cred);
	OPENSSL_cleanse(page, sizeof(page));
	json_decref(body);
	json_decref(in);
	PQclear(res);
	PQclear(ok);
	return r;
}

static int
authorize_page(struct gw_request *req, struct gw_reply *rep, const char *page)
{
	char page_hash[65], code[GW_TOKEN_LEN + 1], code_hash[65], exp_s[24], docs[24];
	PGresult *res = NULL, *upd = NULL;
	const char *status, *ruri, *state;
	char *html = NULL, *e_rp = NULL, *e_desc = NULL, *e_svc = NULL, *refresh = NULL;
	int r;

	if (!charset_ok(page, "-_", GW_TOKEN_LEN, GW_TOKEN_LEN))
		return error_page(rep, 404, "No such signature request.");
	sha256_hex(page, page_hash);
	if ((r = gw_db_query(req->db, &res,
	    "SELECT CASE WHEN r.status = 'PENDING' AND r.expires_at <= extract(epoch FROM now())::bigint"
	    "   THEN 'EXPIRED' ELSE r.status END, o.redirect_uri, o.state, o.code_hash IS NOT NULL,"
	    " c.name, r.description,"
	    " octet_length(r.hashes) / (CASE r.hash_algo WHEN 1 THEN 32 WHEN 2 THEN 48 ELSE 64 END),"
	    " to_char(to_timestamp(r.expires_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS \"UTC\"'), o.id"
	    " FROM oauth_authorizations o JOIN auth_requests r ON r.id = o.request_id"
	    " JOIN rp_clients c ON c.client_id = o.client_id WHERE o.page_hash = decode($1, 'hex')",
	    1, page_hash)) != 0)
		goto out;
	if (PQntuples(res) != 1) {
		r = error_page(rep, 404, "No such signature request.");
		goto out;
	}
	status = PQgetvalue(res, 0, 0);
	ruri = PQgetvalue(res, 0, 1);
	state = PQgetisnull(res, 0, 2) ? NULL : PQgetvalue(res, 0, 2);
	if (strcmp(status, "CONFIRMED") == 0) {
		if (strcmp(PQgetvalue(res, 0, 3), "t") == 0) {
			r = error_page(rep, 410, "This request is complete; its code was already issued.");
			goto out;
		}
		gw_random_token(code);
		sha256_hex(code, code_hash);
		snprintf(exp_s, sizeof(exp_s), "%lld", gw_now() + OAUTH_CODE_TTL);
		/* one code per authorization, even when two reloads race */
		if ((r = gw_db_query(req->db, &upd, "UPDATE oauth_authorizations SET code_hash ="
		    " decode($2, 'hex'), code_expires_at = $3::bigint WHERE id = $1 AND code_hash IS NULL"
		    " RETURNING 1", 3, PQgetvalue(res, 0, 8), code_hash, exp_s)) != 0)
			goto out;
		if (PQntuples(upd) != 1)
			r = error_page(rep, 410, "This request is complete; its code was already issued.");
		else
			r = redirect_to(rep, ruri, "code", code, "state", state, NULL);
		OPENSSL_cleanse(code, sizeof(code));
		goto out;
	}
	if (strcmp(status, "CANCELLED") == 0) {
		r = redirect_to(rep, ruri, "error", "access_denied", "error_description",
		    "the signer refused the request", "state", state, NULL);
		goto out;
	}
	if (strcmp(status, "EXPIRED") == 0) {
		r = redirect_to(rep, ruri, "error", "access_denied", "error_description",
		    "the request expired before the signer approved it", "state", state, NULL);
		goto out;
	}
	/* PENDING: the waiting page, reloaded every 2 s (meta refresh: no script) */
	snprintf(docs, sizeof(docs), "%s", PQgetvalue(res, 0, 6));
	if ((e_rp = html_escape(PQgetvalue(res, 0, 4), 200)) == NULL ||
	    (e_desc = html_escape(PQgetvalue(res, 0, 5), 500)) == NULL ||
	    (e_svc = html_escape(req->cfg->service_name, 100)) == NULL ||
	    (refresh = malloc(sizeof(PAGE_PATH) + GW_TOKEN_LEN + 16)) == NULL) {
		r = RSSP_E_NOMEM;
		goto out;
	}
	snprintf(refresh, sizeof(PAGE_PATH) + GW_TOKEN_LEN + 16, PAGE_PATH "?page=%s", page);
	{
		static const char *const names[] = { "REFRESH", "SERVICE", "CSS", "RP", "DESCRIPTION",
		    "DOCUMENTS", "EXPIRES" };
		const char *values[] = { refresh, e_svc, CSS_PATH, e_rp, e_desc, docs,
		    PQgetvalue(res, 0, 7) };
		if ((html = render(gw_oauth_page_html, names, values, 7)) == NULL) {
			r = RSSP_E_NOMEM;
			goto out;
		}
	}
	if ((r = page_headers(rep)) == 0)
		r = gw_reply_text(rep, 200, "text/html; charset=utf-8", html);
out:
	free(html);
	free(e_rp);
	free(e_desc);
	free(e_svc);
	free(refresh);
	PQclear(res);
	PQclear(upd);
	return r;
}

int
oauth_authorize(struct gw_request *req, struct gw_reply *rep)
{
	const char *page = json_string_value(json_object_get(req->body, "page"));

	if (strcmp(req->method, "GET") != 0)
		return gw_error(rep, 405, "invalid_request", "use GET (a browser opens this URL)");
	if (page != NULL)
		return authorize_page(req, rep, page);
	return authorize_new(req, rep);
}

int
oauth_css(struct gw_request *req, struct gw_reply *rep)
{
	(void)req;
	return gw_reply_text(rep, 200, "text/css; charset=utf-8", gw_oauth_page_css);
}

/* ---- client authentication (token, revoke) --------------------------------------- */

/* client_secret_basic (Authorization: Basic) or client_secret_post (client_id,
 * client_secret in the body). On success *account is the client's account id and
 * *client_id its id (copied). 401 invalid_client otherwise. argon2id: GW_LONG routes. */
static int
client_auth(struct gw_request *req, struct gw_reply *rep, char account[GW_UUID_LEN + 1],
    char client_id[65])
{
	const char *auth = gw_header(req, "Authorization"), *id = NULL, *secret = NULL;
	uint8_t *dec = NULL;
	size_t declen = 0;
	char *colon;
	PGresult *res = NULL;
	int r, ok;

	if (auth != NULL && strncasecmp(auth, "Basic ", 6) == 0) {
		if (rssp_unb64(auth + 6, &dec, &declen) != 0 || memchr(dec, '\0', declen) != NULL ||
		    (colon = memchr(dec, ':', declen)) == NULL) {
			r = gw_error(rep, 401, "invalid_client", "malformed Basic client credentials");
			goto out;
		}
		{
			uint8_t *nd = malloc(declen + 1);
			if (nd == NULL) {
				r = RSSP_E_NOMEM;
				goto out;
			}
			memcpy(nd, dec, declen);
			nd[declen] = '\0';
			OPENSSL_cleanse(dec, declen);
			free(dec);
			dec = nd;
			declen++; /* the NUL is wiped too */
		}
		colon = strchr((char *)dec, ':');
		*colon = '\0';
		id = (const char *)dec;
		secret = colon + 1;
	} else {
		id = json_string_value(json_object_get(req->body, "client_id"));
		secret = json_string_value(json_object_get(req->body, "client_secret"));
	}
	if (id == NULL || secret == NULL || strlen(id) > 64 || strlen(secret) > 256) {
		r = gw_error(rep, 401, "invalid_client", "client authentication is required "
		    "(HTTP Basic, or client_id and client_secret)");
		goto out;
	}
	if ((r = gw_db_query(req->db, &res, "SELECT a.id, a.passphrase_hash FROM rp_clients c"
	    " JOIN accounts a ON a.id = c.account_id WHERE c.client_id = $1 AND a.status = 'ACTIVE'",
	    1, id)) != 0)
		goto out;
	if (PQntuples(res) != 1) {
		gw_password_dummy_verify(secret); /* the same time as a wrong secret */
		ok = 0;
	} else {
		ok = gw_password_verify(PQgetvalue(res, 0, 1), secret) == 0;
	}
	if (!ok) {
		r = gw_error(rep, 401, "invalid_client", "client authentication failed");
		goto out;
	}
	snprintf(account, GW_UUID_LEN + 1, "%s", PQgetvalue(res, 0, 0));
	snprintf(client_id, 65, "%s", id);
	r = 0;
out:
	if (dec != NULL) {
		OPENSSL_cleanse(dec, declen);
		free(dec);
	}
	PQclear(res);
	return r;
}

/* ---- oauth2/token -------------------------------------------------------------------- */

/* client_credentials: a session access token for the RP client's account, through the
 * login function (its lockout and rate limit apply). No refresh token (RFC 6749 4.4.3). */
static int
token_client_credentials(struct gw_request *req, struct gw_reply *rep)
{
	const char *auth = gw_header(req, "Authorization"), *id, *secret;
	uint8_t *dec = NULL;
	size_t declen = 0;
	char *colon, *idc = NULL, *sc = NULL;
	json_t *in;
	int r, st;

	if (auth != NULL && strncasecmp(auth, "Basic ", 6) == 0) {
		if (rssp_unb64(auth + 6, &dec, &declen) != 0 || memchr(dec, '\0', declen) != NULL ||
		    (colon = memchr(dec, ':', declen)) == NULL) {
			r = gw_error(rep, 401, "invalid_client", "malformed Basic client credentials");
			goto out;
		}
		idc = strndup((char *)dec, (size_t)(colon - (char *)dec));
		sc = strndup(colon + 1, declen - (size_t)(colon + 1 - (char *)dec));
		id = idc;
		secret = sc;
	} else {
		id = json_string_value(json_object_get(req->body, "client_id"));
		secret = json_string_value(json_object_get(req->body, "client_secret"));
	}
	if (id == NULL || secret == NULL) {
		r = gw_error(rep, 401, "invalid_client", "client authentication is required "
		    "(HTTP Basic, or client_id and client_secret)");
		goto out;
	}
	r = csc_call(req, rep, auth_login, json_pack("{s:s,s:s,s:s}", "grant_type", "password",
	    "username", id, "password", secret));
	if (rep->status == 401) {
		r = gw_error(rep, 401, "invalid_client", "client authentication failed");
		goto out;
	}
	if (r != 0 || rep->status != 200)
		goto out;
	in = csc_take_reply(rep, &st);
	r = gw_reply_json(rep, 200, json_pack("{s:O,s:s,s:O}", "access_token",
	    json_object_get(in, "access_token"), "token_type", "Bearer", "expires_in",
	    json_object_get(in, "expires_in")));
	json_decref(in);
out:
	if (dec != NULL) {
		OPENSSL_cleanse(dec, declen);
		free(dec);
	}
	if (sc != NULL) {
		OPENSSL_cleanse(sc, strlen(sc));
		free(sc);
	}
	free(idc);
	return r;
}

static int
token_authorization_code(struct gw_request *req, struct gw_reply *rep)
{
	const char *code = json_string_value(json_object_get(req->body, "code"));
	const char *ruri = json_string_value(json_object_get(req->body, "redirect_uri"));
	const char *verifier = json_string_value(json_object_get(req->body, "code_verifier"));
	char account[GW_UUID_LEN + 1], client_id[65], code_hash[65], chal[44], tok[GW_TOKEN_LEN + 1],
	    tok_hash[65], exp_s[24];
	PGresult *res = NULL;
	long long now = gw_now(), exp;
	int r;

	if ((r = client_auth(req, rep, account, client_id)) != 0)
		return r;
	if (code == NULL || ruri == NULL || verifier == NULL)
		return gw_error(rep, 400, "invalid_request", "code, redirect_uri and code_verifier are required");
	if (!charset_ok(verifier, "-._~", 43, 128))
		return gw_error(rep, 400, "invalid_request", "code_verifier must be 43 to 128 characters "
		    "of A-Z a-z 0-9 - . _ ~ (RFC 7636)");
	if (!charset_ok(code, "-_", GW_TOKEN_LEN, GW_TOKEN_LEN))
		return gw_error(rep, 400, "invalid_grant", "unknown code");
	sha256_hex(code, code_hash);
	if ((r = gw_tx_begin(req)) != 0 ||
	    (r = gw_db_query(req->db, &res, "SELECT o.id, o.client_id, o.redirect_uri, o.code_challenge,"
	    " o.code_expires_at, o.code_used_at IS NOT NULL, o.request_id, r.credential_id,"
	    " r.sad_expires_at, r.status FROM oauth_authorizations o JOIN auth_requests r"
	    " ON r.id = o.request_id WHERE o.code_hash = decode($1, 'hex') FOR UPDATE OF o",
	    1, code_hash)) != 0)
		goto out;
	if (PQntuples(res) != 1) {
		r = gw_error(rep, 400, "invalid_grant", "unknown code");
		goto out;
	}
	if (strcmp(PQgetvalue(res, 0, 5), "t") == 0) {
		/* RFC 6749 4.1.2: a code presented twice revokes what it gave */
		if ((r = gw_db_query(req->db, NULL, "UPDATE oauth_credential_tokens SET revoked_at = now()"
		    " WHERE authorization_id = $1 AND revoked_at IS NULL", 1, PQgetvalue(res, 0, 0))) != 0 ||
		    (r = gw_tx_commit(req)) != 0)
			goto out;
		r = gw_error(rep, 400, "invalid_grant", "the code was already used");
		goto out;
	}
	if (strcmp(PQgetvalue(res, 0, 1), client_id) != 0) {
		r = gw_error(rep, 400, "invalid_grant", "the code was issued to another client");
		goto out;
	}
	if (strcmp(PQgetvalue(res, 0, 2), ruri) != 0) {
		r = gw_error(rep, 400, "invalid_grant", "redirect_uri differs from the authorization request's");
		goto out;
	}
	if (atoll(PQgetvalue(res, 0, 4)) <= now) {
		r = gw_error(rep, 400, "invalid_grant", "the code has expired");
		goto out;
	}
	s256(verifier, chal);
	if (!gw_ct_equal(chal, PQgetvalue(res, 0, 3), 43)) {
		r = gw_error(rep, 400, "invalid_grant", "code_verifier does not match the code_challenge");
		goto out;
	}
	exp = atoll(PQgetvalue(res, 0, 8));
	if (strcmp(PQgetvalue(res, 0, 9), "CONFIRMED") != 0 || exp <= now) {
		r = gw_error(rep, 400, "invalid_grant", "the authorization has expired");
		goto out;
	}
	gw_random_token(tok);
	sha256_hex(tok, tok_hash);
	snprintf(exp_s, sizeof(exp_s), "%lld", exp);
	if ((r = gw_db_query(req->db, NULL, "UPDATE oauth_authorizations SET code_used_at = now()"
	    " WHERE id = $1", 1, PQgetvalue(res, 0, 0))) != 0 ||
	    (r = gw_db_query(req->db, NULL, "INSERT INTO oauth_credential_tokens (token_hash,"
	    " authorization_id, request_id, account_id, credential_id, expires_at) VALUES"
	    " (decode($1, 'hex'), $2, $3, $4, $5, $6::bigint)", 6, tok_hash, PQgetvalue(res, 0, 0),
	    PQgetvalue(res, 0, 6), account, PQgetvalue(res, 0, 7), exp_s)) != 0 ||
	    (r = gw_tx_commit(req)) != 0)
		goto out;
	r = gw_reply_json(rep, 200, json_pack("{s:s,s:s,s:I,s:s,s:s}", "access_token", tok,
	    "token_type", "Bearer", "expires_in", (json_int_t)(exp - now), "scope", "credential",
	    "credentialID", PQgetvalue(res, 0, 7)));
out:
	OPENSSL_cleanse(tok, sizeof(tok));
	PQclear(res);
	return r;
}

int
oauth_token(struct gw_request *req, struct gw_reply *rep)
{
	const char *grant = json_string_value(json_object_get(req->body, "grant_type"));

	if (grant == NULL)
		return gw_error(rep, 400, "invalid_request", "missing field 'grant_type'");
	if (strcmp(grant, "client_credentials") == 0)
		return token_client_credentials(req, rep);
	if (strcmp(grant, "authorization_code") == 0)
		return token_authorization_code(req, rep);
	return gw_error(rep, 400, "unsupported_grant_type",
	    "grant_type must be client_credentials or authorization_code");
}

/* ---- oauth2/revoke (RFC 7009) -------------------------------------------------------- */

int
oauth_revoke(struct gw_request *req, struct gw_reply *rep)
{
	const char *tok = json_string_value(json_object_get(req->body, "token"));
	char account[GW_UUID_LEN + 1], client_id[65], h[65];
	PGresult *res = NULL;
	int r;

	if ((r = client_auth(req, rep, account, client_id)) != 0)
		return r;
	if (tok == NULL)
		return gw_error(rep, 400, "invalid_request", "missing field 'token'");
	if (strlen(tok) > 256)
		return gw_reply_empty(rep, 200); /* not one of ours: nothing to do */
	sha256_hex(tok, h);
	/* only the client's own tokens; anything else is answered the same */
	if ((r = gw_db_query(req->db, NULL, "UPDATE oauth_credential_tokens SET revoked_at = now()"
	    " WHERE token_hash = decode($1, 'hex') AND account_id = $2 AND revoked_at IS NULL",
	    2, h, account)) != 0 ||
	    (r = gw_db_query(req->db, &res, "UPDATE tokens t SET revoked_at = now() WHERE"
	    " t.account_id = $2 AND t.revoked_at IS NULL AND (t.token_hash = decode($1, 'hex') OR"
	    " t.family_id = (SELECT family_id FROM tokens WHERE token_hash = decode($1, 'hex')"
	    " AND kind = 'refresh')) RETURNING 1", 2, h, account)) != 0)
		goto out;
	if (PQntuples(res) > 0)
		gw_token_cache_forget_account(account);
	r = gw_reply_empty(rep, 200);
out:
	PQclear(res);
	return r;
}

/* ---- the credential token in signatures/signHash ----------------------------------- */

int
oauth_credential_sad(struct gw_request *req, struct gw_reply *rep, const char *cred_id,
    char **sadp, char tok_hash[65])
{
	const char *auth = gw_header(req, "Authorization");
	PGresult *res = NULL;
	uint8_t *sad = NULL;
	size_t sadlen = 0;
	char h[65];
	int r;

	if (auth == NULL || strncasecmp(auth, "Bearer ", 7) != 0 ||
	    !charset_ok(auth + 7, "-_", GW_TOKEN_LEN, GW_TOKEN_LEN))
		goto none;
	sha256_hex(auth + 7, h);
	if ((r = gw_db_query(req->db, &res, "UPDATE oauth_credential_tokens t SET used_at = now()"
	    " FROM auth_requests r, accounts a WHERE t.token_hash = decode($1, 'hex')"
	    " AND t.used_at IS NULL AND t.revoked_at IS NULL"
	    " AND t.expires_at > extract(epoch FROM now())::bigint AND r.id = t.request_id"
	    " AND a.id = t.account_id AND a.status = 'ACTIVE'"
	    " RETURNING t.account_id, t.credential_id, r.sad, coalesce(a.company_id::text, ''),"
	    " coalesce(a.registered_by::text, '')", 1, h)) != 0)
		return r;
	if (PQntuples(res) != 1 || PQgetisnull(res, 0, 2))
		goto none;
	snprintf(tok_hash, 65, "%s", h);
	if (strcmp(PQgetvalue(res, 0, 1), cred_id) != 0) {
		oauth_credential_done(req, tok_hash, false);
		tok_hash[0] = '\0';
		r = gw_error(rep, 400, "invalid_request",
		    "Invalid parameter credentialID: the access token is for another credential");
		goto out;
	}
	if ((r = sg_unbytea(PQgetvalue(res, 0, 2), &sad, &sadlen)) != 0 ||
	    (*sadp = rssp_b64(sad, sadlen)) == NULL) {
		oauth_credential_done(req, tok_hash, false);
		tok_hash[0] = '\0';
		r = r ? r : RSSP_E_NOMEM;
		goto out;
	}
	memset(&req->principal, 0, sizeof(req->principal));
	snprintf(req->principal.account_id, sizeof(req->principal.account_id), "%s", PQgetvalue(res, 0, 0));
	snprintf(req->principal.company_id, sizeof(req->principal.company_id), "%s", PQgetvalue(res, 0, 3));
	snprintf(req->principal.registered_by, sizeof(req->principal.registered_by), "%s",
	    PQgetvalue(res, 0, 4));
	req->principal.role = GW_ROLE_RP;
	req->authenticated = true;
	r = 0;
	goto out;
none:
	if (req->authenticated)
		r = gw_error(rep, 400, "invalid_request", "Missing (or invalid type) string parameter SAD");
	else
		r = gw_error(rep, 401, "invalid_token", "the access token is unknown, used, revoked or expired");
out:
	if (sad != NULL)
		OPENSSL_clear_free(sad, sadlen);
	PQclear(res);
	return r;
}

void
oauth_credential_done(struct gw_request *req, const char *tok_hash, bool ok)
{
	if (ok || tok_hash == NULL || tok_hash[0] == '\0')
		return;
	if (gw_db_query(req->db, NULL, "UPDATE oauth_credential_tokens SET used_at = NULL"
	    " WHERE token_hash = decode($1, 'hex')", 1, tok_hash) != 0)
		log_error("cannot give back a credential token after a refused signHash");
}
