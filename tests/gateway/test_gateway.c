/* test_gateway.c - the gateway foundation over real HTTP against a real PostgreSQL:
 * info, login (Basic, password grant JSON and form, refresh, Digest), revoke, bearer
 * middleware, lockout, rate limits, limits on bodies, request ids, metrics, TLS, two
 * replicas on one database, argon2id defaults. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>
#include <curl/curl.h>
#include <openssl/evp.h>
#include <sodium.h>

#include "gwtest.h"

static const char *fast_env[] = {"RSSP_LOGIN_BURST=1000", NULL};
static const struct gwt_opts fast = {.env = fast_env};

static const char *
work(void)
{
	const char *w = getenv("RSSP_TEST_WORK");
	return w && *w ? w : "/tmp";
}

static char *
basic_header(const char *user, const char *pass)
{
	char raw[512], b64[800], *h;

	snprintf(raw, sizeof(raw), "%s:%s", user, pass);
	EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)raw, (int)strlen(raw));
	h = malloc(strlen(b64) + 32);
	sprintf(h, "Authorization: Basic %s", b64);
	return h;
}

static struct gwt_resp *
login_basic(struct gwt *g, const char *user, const char *pass)
{
	char *h = basic_header(user, pass);
	const char *hdrs[] = {h, NULL};
	struct gwt_resp *r = gwt_request(g, "POST", "/rssp/auth/login", NULL, 0, hdrs);

	free(h);
	return r;
}

static struct gwt_resp *
login_pw(struct gwt *g, const char *user, const char *pass)
{
	json_t *b = json_pack("{s:s, s:s, s:s}", "grant_type", "password", "username", user, "password", pass);
	struct gwt_resp *r = gwt_post_json(g, "/rssp/auth/login", NULL, b);

	json_decref(b);
	return r;
}

/* Creates an rp client through the admin function; returns clientID and secretKey. */
static void
make_rp(struct gwt *g, char **idp, char **secretp)
{
	gwt_rp_create(g, "Test RP", idp, secretp, NULL);
}

START_TEST(test_info_lists_the_functions_and_echoes_the_request_id)
{
	struct gwt *g = gwt_start(&fast);
	const char *hdrs[] = {"Content-Type: application/json", "X-Request-ID: my-req.42_x", NULL};
	struct gwt_resp *r = gwt_request(g, "POST", "/rssp/info", "{}", 2, hdrs);
	json_t *m;
	size_t i;
	int login = 0;
	char *rid;

	gwt_expect(r, 200, NULL);
	ck_assert_str_eq(gwt_str(r, "name"), "rssp");
	m = json_object_get(r->json, "methods");
	ck_assert(json_is_array(m));
	for (i = 0; i < json_array_size(m); i++)
		if (strcmp(json_string_value(json_array_get(m, i)), "auth/login") == 0)
			login = 1;
	ck_assert(login);
	ck_assert(json_array_size(json_object_get(r->json, "authTypes")) == 2);
	rid = gwt_resp_header(r, "X-Request-ID");
	ck_assert_str_eq(rid, "my-req.42_x");
	free(rid);
	gwt_resp_free(r);

	/* an unusable request id is replaced by a generated one */
	{
		const char *bad[] = {"Content-Type: application/json", "X-Request-ID: bad id<script>", NULL};
		r = gwt_request(g, "POST", "/rssp/info", "{}", 2, bad);
		rid = gwt_resp_header(r, "X-Request-ID");
		ck_assert_ptr_nonnull(rid);
		ck_assert_int_eq(strlen(rid), 36);
		free(rid);
		gwt_resp_free(r);
	}
	/* the CSC v2 path answers too */
	r = gwt_post(g, "/csc/v2/info", NULL, "{}");
	gwt_expect(r, 200, NULL);
	ck_assert_ptr_nonnull(strstr(r->body, "\"auth/login\""));
	gwt_resp_free(r);
	/* a request that may wait runs on the long pool and is answered the same */
	r = gwt_post(g, "/rssp/info", NULL, "{\"wait\": 5}");
	gwt_expect(r, 200, NULL);
	ck_assert_str_eq(gwt_str(r, "name"), "rssp");
	gwt_resp_free(r);
	/* an empty body counts as {} */
	r = gwt_request(g, "POST", "/rssp/info", NULL, 0, NULL);
	gwt_expect(r, 200, NULL);
	gwt_resp_free(r);
	gwt_stop(g);
}
END_TEST

START_TEST(test_csc_faces_and_the_oauth_page_answer_without_a_signer)
{
	struct gwt *g = gwt_start(&fast);
	struct gwt_resp *r;
	char *h, *v1_head;

	r = gwt_post(g, "/csc/v1/info", NULL, "{}");
	gwt_expect(r, 200, NULL);
	ck_assert_str_eq(gwt_str(r, "specs"), "1.0.4.0");
	ck_assert_str_eq(gwt_str(r, "lang"), "en-US");
	ck_assert_int_eq(strncmp(gwt_str(r, "logo"), "data:image/", 11), 0);
	ck_assert_ptr_nonnull(json_object_get(r->json, "authType"));
	ck_assert_ptr_nonnull(json_object_get(r->json, "methods"));
	/* both versions describe the service alike (name .. description, before their own) */
	v1_head = strstr(r->body, "\"name\"");
	ck_assert_ptr_nonnull(v1_head);
	ck_assert_ptr_nonnull(strstr(v1_head, "\"authType\""));
	v1_head = strndup(v1_head, (size_t)(strstr(v1_head, "\"authType\"") - v1_head));
	gwt_resp_free(r);
	r = gwt_post(g, "/csc/v2/info", NULL, "{}");
	gwt_expect(r, 200, NULL);
	ck_assert_str_eq(gwt_str(r, "specs"), "2.0.0.2");
	ck_assert_ptr_nonnull(strstr(r->body, v1_head));
	free(v1_head);
	ck_assert(json_is_object(json_object_get(r->json, "signAlgorithms")));
	gwt_resp_free(r);
	/* a method of the specification that is not implemented */
	gwt_post_expect(g, "/csc/v2/signatures/signDoc", NULL, "{}", 501, "not_implemented", NULL);
	/* the signer's page: its stylesheet, an error page (never a redirect) under CSP */
	r = gwt_get(g, "/csc/v2/oauth2/page.css");
	ck_assert_int_eq(r->status, 200);
	h = gwt_resp_header(r, "Content-Type");
	ck_assert_ptr_nonnull(h);
	ck_assert_ptr_nonnull(strstr(h, "text/css"));
	free(h);
	gwt_resp_free(r);
	r = gwt_get(g, "/csc/v2/oauth2/authorize?client_id=rp-nobody&redirect_uri=https%3A%2F%2Fx.example%2Fcb");
	ck_assert_int_eq(r->status, 400);
	ck_assert_ptr_null(gwt_resp_header(r, "Location"));
	h = gwt_resp_header(r, "Content-Security-Policy");
	ck_assert_ptr_nonnull(h);
	ck_assert_ptr_nonnull(strstr(h, "default-src 'self'"));
	free(h);
	ck_assert_ptr_nonnull(strstr(r->body, "Unknown client_id"));
	gwt_resp_free(r);
	r = gwt_get(g, "/csc/v2/oauth2/authorize?page=%3Cscript%3E");
	ck_assert_int_eq(r->status, 404);
	ck_assert_ptr_null(strstr(r->body, "<script>"));
	gwt_resp_free(r);
	/* a repeated query parameter is refused; GET on a POST-only function is not served */
	r = gwt_get(g, "/csc/v2/oauth2/authorize?client_id=a&client_id=b");
	gwt_expect(r, 400, "invalid_request");
	gwt_resp_free(r);
	r = gwt_get(g, "/csc/v2/credentials/info");
	ck_assert_int_eq(r->status, 405);
	gwt_resp_free(r);
	/* token: client authentication first */
	gwt_post_expect(g, "/csc/v2/oauth2/token", NULL, "{\"grant_type\": \"authorization_code\"}",
	    401, "invalid_client", NULL);
	gwt_stop(g);
}
END_TEST

START_TEST(test_operational_endpoints_answer)
{
	struct gwt *g = gwt_start(&fast);
	struct gwt_resp *r;
	FILE *f;
	char line[2048], path[1024];
	int seen = 0;

	r = gwt_get(g, "/healthz");
	gwt_expect(r, 200, NULL);
	gwt_resp_free(r);
	r = gwt_get(g, "/readyz");
	gwt_expect(r, 200, NULL);
	gwt_resp_free(r);
	r = gwt_get(g, "/openapi.json");
	gwt_expect(r, 200, NULL);
	ck_assert_str_eq(gwt_str(r, "openapi"), "3.1.0");
	/* every function the gateway serves is documented */
	{
		struct gwt_resp *info = gwt_post(g, "/rssp/info", NULL, "{}");
		json_t *paths = json_object_get(r->json, "paths"), *m;
		size_t i;
		char fn[256];

		gwt_expect(info, 200, NULL);
		json_array_foreach(json_object_get(info->json, "methods"), i, m) {
			snprintf(fn, sizeof(fn), "/rssp/%s", json_string_value(m));
			ck_assert_msg(json_object_get(paths, fn) != NULL, "%s is not in gateway/openapi.json", fn);
		}
		ck_assert_int_gt(i, 10);
		gwt_resp_free(info);
	}
	gwt_resp_free(r);
	gwt_post_expect(g, "/rssp/no/such/function", NULL, "{}", 404, "not_found", NULL);
	r = gwt_get(g, "/rssp/info");
	gwt_expect(r, 405, NULL);
	gwt_resp_free(r);
	r = gwt_get(g, "/metrics");
	gwt_expect(r, 200, NULL);
	ck_assert_ptr_nonnull(strstr(r->body, "rssp_http_requests_total{route=\"/rssp/auth/login\",status=\"200\"} 1"));
	ck_assert_ptr_nonnull(strstr(r->body, "rssp_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"+Inf\"}"));
	ck_assert_ptr_nonnull(strstr(r->body, "rssp_http_requests_total{route=\"other\",status=\"404\"} 1"));
	ck_assert_ptr_nonnull(strstr(r->body, "rssp_db_pool_in_use "));
	ck_assert_ptr_nonnull(strstr(r->body, "rssp_db_pool_size 16"));
	ck_assert_ptr_nonnull(strstr(r->body, "rssp_logins_total{method=\"password\",result=\"ok\"} 1"));
	gwt_resp_free(r);
	snprintf(path, sizeof(path), "%s", gwt_stdout_path(g));
	gwt_stop(g);

	/* one JSON access-log line per request, without secrets */
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		json_error_t e;
		json_t *o = json_loads(line, 0, &e);
		ck_assert_msg(o != NULL, "access log line is not JSON: %s", line);
		ck_assert_ptr_nonnull(json_object_get(o, "request_id"));
		ck_assert_ptr_nonnull(json_object_get(o, "status"));
		ck_assert_ptr_nonnull(json_object_get(o, "duration_ms"));
		ck_assert_ptr_null(strstr(line, "passphrase"));
		json_decref(o);
		seen++;
	}
	fclose(f);
	ck_assert_int_ge(seen, 7);
}
END_TEST

START_TEST(test_login_works_four_ways_and_tokens_authenticate)
{
	struct gwt *g = gwt_start(&fast);
	struct gwt_resp *r;
	char form[512], *tok, *refresh, *id, *secret;
	const char *fh[] = {"Content-Type: application/x-www-form-urlencoded", NULL};

	/* Basic header */
	r = login_basic(g, gwt_admin_email(g), gwt_admin_password(g));
	gwt_expect(r, 200, NULL);
	ck_assert_str_eq(gwt_str(r, "token_type"), "bearer");
	ck_assert_int_eq(strlen(gwt_str(r, "access_token")), 43);
	ck_assert_int_eq(gwt_int(r, "expires_in"), 3600);
	gwt_resp_free(r);
	/* password grant, JSON */
	tok = gwt_login(g, gwt_admin_email(g), gwt_admin_password(g), &refresh);
	/* password grant, form (the passphrase has spaces: '+' encoded) */
	snprintf(form, sizeof(form), "grant_type=password&username=%s&password=", gwt_admin_email(g));
	{
		char *esc = curl_easy_escape(NULL, gwt_admin_password(g), 0);
		strncat(form, esc, sizeof(form) - strlen(form) - 1);
		curl_free(esc);
	}
	r = gwt_request(g, "POST", "/rssp/auth/login", form, strlen(form), fh);
	gwt_expect(r, 200, NULL);
	gwt_resp_free(r);
	/* refresh grant */
	{
		json_t *b = json_pack("{s:s, s:s}", "grant_type", "refresh_token", "refresh_token", refresh);
		r = gwt_post_json(g, "/rssp/auth/login", NULL, b);
		json_decref(b);
		gwt_expect(r, 200, NULL);
		ck_assert_str_ne(gwt_str(r, "refresh_token"), refresh);
		gwt_resp_free(r);
	}
	/* a bearer token opens a protected function; none or a bad one does not */
	gwt_post_expect(g, "/rssp/admin/users/list", tok, "{}", 200, NULL, NULL);
	r = gwt_post(g, "/rssp/admin/users/list", NULL, "{}");
	gwt_expect(r, 401, "invalid_token");
	{
		char *w = gwt_resp_header(r, "WWW-Authenticate");
		ck_assert_ptr_nonnull(w);
		ck_assert(strncmp(w, "Bearer", 6) == 0);
		free(w);
	}
	gwt_resp_free(r);
	gwt_post_expect(g, "/rssp/admin/users/list", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "{}",
	    401, "invalid_token", NULL);

	/* Digest with libcurl (SHA-256, qop=auth), for an rp account */
	make_rp(g, &id, &secret);
	{
		CURL *c = curl_easy_init();
		char url[256], up[512];
		long code = 0;
		FILE *devnull = fopen("/dev/null", "w");
		snprintf(url, sizeof(url), "%s/rssp/auth/login", gwt_url(g));
		snprintf(up, sizeof(up), "%s:%s", id, secret);
		curl_easy_setopt(c, CURLOPT_URL, url);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_DIGEST);
		curl_easy_setopt(c, CURLOPT_USERPWD, up);
		curl_easy_setopt(c, CURLOPT_WRITEDATA, devnull);
		ck_assert_int_eq(curl_easy_perform(c), CURLE_OK);
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
		ck_assert_int_eq(code, 200);
		curl_easy_cleanup(c);
		fclose(devnull);
	}
	/* and the rp's Basic login with the same secret */
	r = login_basic(g, id, secret);
	gwt_expect(r, 200, NULL);
	/* the rp may not call admin functions */
	{
		char *rptok = strdup(gwt_str(r, "access_token"));
		gwt_resp_free(r);
		r = gwt_post(g, "/rssp/admin/users/list", rptok, "{}");
		gwt_expect(r, 403, "access_denied");
		free(rptok);
	}
	gwt_resp_free(r);
	free(id);
	free(secret);
	free(tok);
	free(refresh);
	gwt_stop(g);
}
END_TEST

START_TEST(test_malformed_requests_are_refused_naming_the_problem)
{
	struct gwt *g = gwt_start(&fast);
	struct gwt_resp *r;
	const char *tp[] = {"Content-Type: text/plain", NULL};

	r = gwt_request(g, "POST", "/rssp/auth/revoke", "{}", 2, tp);
	gwt_expect(r, 400, "invalid_request");
	ck_assert_ptr_nonnull(strstr(gwt_str(r, "error_description"), "Content-Type"));
	gwt_resp_free(r);
	gwt_post_expect(g, "/rssp/auth/login", NULL, "{\"grant_type\": \"password\",",
	    400, "invalid_request", "JSON");
	gwt_post_expect(g, "/rssp/auth/login", NULL, "[1,2]", 400, "invalid_request", NULL);
	gwt_post_expect(g, "/rssp/auth/login", NULL, "{\"grant_type\":\"password\",\"password\":\"x\"}",
	    400, "invalid_request", "'username'");
	gwt_post_expect(g, "/rssp/auth/login", NULL, "{\"grant_type\":\"password\",\"username\":5,\"password\":\"x\"}",
	    400, "invalid_request", "'username'");
	gwt_post_expect(g, "/rssp/auth/login", NULL, "{\"grant_type\":\"password\",\"username\":\"a\\u0000b\",\"password\":\"x\"}",
	    400, "invalid_request", NULL);
	gwt_post_expect(g, "/rssp/auth/login", NULL, "{\"grant_type\":\"magic\"}",
	    400, "invalid_request", "'grant_type'");
	gwt_post_expect(g, "/rssp/auth/login", NULL, "{\"grant_type\":\"password\",\"grant_type\":\"password\"}",
	    400, "invalid_request", NULL);
	gwt_post_expect(g, "/rssp/auth/revoke", gwt_admin_token(g), "{\"token\": 12}",
	    400, "invalid_request", "'token'");
	/* invalid UTF-8 in JSON */
	gwt_post_expect(g, "/rssp/auth/login", NULL, "{\"grant_type\":\"\xff\xfe\"}",
	    400, "invalid_request", NULL);
	/* no credentials at all: 401 with a Digest (SHA-256) and a Basic challenge */
	r = gwt_post(g, "/rssp/auth/login", NULL, "{}");
	gwt_expect(r, 401, NULL);
	ck_assert_ptr_nonnull(strstr(r->headers, "Digest "));
	ck_assert_ptr_nonnull(strcasestr(r->headers, "algorithm=SHA-256"));
	ck_assert_ptr_nonnull(strstr(r->headers, "Basic realm"));
	gwt_resp_free(r);
	gwt_stop(g);
}
END_TEST

START_TEST(test_a_body_over_one_mebibyte_is_refused_with_413)
{
	struct gwt *g = gwt_start(&fast);
	size_t n = 1024 * 1024 + 1;
	char *big = malloc(n + 1);
	const char *ct[] = {"Content-Type: application/json", NULL};
	/* with a Content-Length over the limit the answer comes before the body is sent */
	const char *ct100[] = {"Content-Type: application/json", "Expect: 100-continue", NULL};
	const char *chunked[] = {"Content-Type: application/json", "Transfer-Encoding: chunked", NULL};
	struct gwt_resp *r;

	memset(big, ' ', n);
	memcpy(big, "{\"a\":\"", 6);
	big[n - 2] = '"';
	big[n - 1] = '}';
	big[n] = '\0';
	r = gwt_request(g, "POST", "/rssp/info", big, n, ct100);
	gwt_expect(r, 413, "payload_too_large");
	gwt_resp_free(r);
	/* without a Content-Length: the running total decides */
	r = gwt_request(g, "POST", "/rssp/info", big, n, chunked);
	gwt_expect(r, 413, "payload_too_large");
	gwt_resp_free(r);
	/* exactly 1 MiB is read */
	big[n - 3] = '"';
	big[n - 2] = '}';
	r = gwt_request(g, "POST", "/rssp/info", big, n - 1, ct);
	gwt_expect(r, 200, NULL);
	gwt_resp_free(r);
	free(big);
	/* the gateway is still alive */
	r = gwt_get(g, "/healthz");
	gwt_expect(r, 200, NULL);
	gwt_resp_free(r);
	gwt_stop(g);
}
END_TEST

START_TEST(test_unknown_user_and_wrong_passphrase_get_the_same_answer)
{
	struct gwt *g = gwt_start(&fast);
	struct gwt_resp *a = login_pw(g, "nobody@rssp.test", "some passphrase");
	struct gwt_resp *b = login_pw(g, gwt_admin_email(g), "wrong passphrase");
	struct gwt_resp *c = login_basic(g, "nobody@rssp.test", "some passphrase");

	gwt_expect(a, 401, "incorrect_credentials");
	gwt_expect(b, 401, "incorrect_credentials");
	gwt_expect(c, 401, "incorrect_credentials");
	ck_assert_str_eq(a->body, b->body);
	ck_assert_str_eq(a->body, c->body);
	gwt_resp_free(a);
	gwt_resp_free(b);
	gwt_resp_free(c);
	/* SQL metacharacters in the login name are data, not SQL */
	a = login_pw(g, "' OR '1'='1' --", "' OR '1'='1' --");
	gwt_expect(a, 401, "incorrect_credentials");
	gwt_resp_free(a);
	gwt_stop(g);
}
END_TEST

START_TEST(test_five_failures_lock_the_account_until_an_admin_unlocks_it)
{
	struct gwt *g = gwt_start(&fast);
	struct gwt_resp *r;
	char *rp, *secret, *uid, body[256];
	int i;

	make_rp(g, &rp, &secret);
	for (i = 0; i < 5; i++) {
		r = login_basic(g, rp, "wrong secret");
		gwt_expect(r, 401, "incorrect_credentials");
		gwt_resp_free(r);
	}
	r = login_basic(g, rp, secret);
	gwt_expect(r, 423, "account_locked");
	{
		char *ra = gwt_resp_header(r, "Retry-After");
		ck_assert_ptr_nonnull(ra);
		ck_assert_int_gt(atoi(ra), 800);
		free(ra);
	}
	gwt_resp_free(r);
	uid = gwt_sql(g, "SELECT account_id FROM rp_clients WHERE client_id = $1", rp, NULL);
	snprintf(body, sizeof(body), "{\"userID\":\"%s\"}", uid);
	gwt_post_expect(g, "/rssp/admin/users/unlock", gwt_admin_token(g), body, 200, NULL, NULL);
	r = login_basic(g, rp, secret);
	gwt_expect(r, 200, NULL);
	gwt_resp_free(r);
	/* success reset the count: four failures do not lock */
	for (i = 0; i < 4; i++) {
		r = login_basic(g, rp, "wrong secret");
		gwt_expect(r, 401, "incorrect_credentials");
		gwt_resp_free(r);
	}
	r = login_basic(g, rp, secret);
	gwt_expect(r, 200, NULL);
	gwt_resp_free(r);
	/* a lock whose time is over ends by itself */
	for (i = 0; i < 5; i++) {
		r = login_basic(g, rp, "wrong secret");
		gwt_resp_free(r);
	}
	free(gwt_sql(g, "UPDATE accounts SET locked_until = now() - interval '1 second' WHERE id = $1", uid, NULL));
	r = login_basic(g, rp, secret);
	gwt_expect(r, 200, NULL);
	gwt_resp_free(r);
	free(uid);
	free(rp);
	free(secret);
	gwt_stop(g);
}
END_TEST

START_TEST(test_login_attempts_are_rate_limited_with_retry_after)
{
	static const char *env[] = {"RSSP_LOGIN_BURST=3", "RSSP_LOGIN_RATE=1", NULL};
	struct gwt_opts o = {.env = env};
	struct gwt *g = gwt_start(&o); /* the admin login took one token */
	struct gwt_resp *r;
	char *ra;
	int i;

	for (i = 0; i < 2; i++) {
		r = login_pw(g, "someone@rssp.test", "passphrase");
		gwt_expect(r, 401, "incorrect_credentials");
		gwt_resp_free(r);
	}
	r = login_pw(g, "someone@rssp.test", "passphrase");
	gwt_expect(r, 429, "too_many_requests");
	ra = gwt_resp_header(r, "Retry-After");
	ck_assert_ptr_nonnull(ra);
	ck_assert_int_ge(atoi(ra), 1);
	free(ra);
	gwt_resp_free(r);
	/* the signing path is not limited: authenticated calls go on */
	gwt_post_expect(g, "/rssp/admin/users/list", gwt_admin_token(g), "{}", 200, NULL, NULL);
	gwt_stop(g);
}
END_TEST

static struct gwt_resp *
login_from(struct gwt *g, const char *xff, const char *user)
{
	char h[128], body[256];
	const char *hdrs[] = {"Content-Type: application/json", h, NULL};

	snprintf(h, sizeof(h), "X-Forwarded-For: 203.0.113.9, %s", xff);
	snprintf(body, sizeof(body), "{\"grant_type\":\"password\",\"username\":\"%s\",\"password\":\"pw\"}", user);
	return gwt_request(g, "POST", "/rssp/auth/login", body, strlen(body), hdrs);
}

START_TEST(test_behind_a_trusted_proxy_the_forwarded_address_is_rate_limited)
{
	static const char *env[] = {"RSSP_LOGIN_BURST=2", "RSSP_LOGIN_RATE=1", "RSSP_TRUST_FORWARDED=1", NULL};
	struct gwt_opts o = {.env = env};
	struct gwt *g = gwt_start(&o);
	struct gwt_resp *r;

	r = login_from(g, "10.0.0.1", "a@rssp.test");
	gwt_expect(r, 401, "incorrect_credentials");
	gwt_resp_free(r);
	r = login_from(g, "10.0.0.1", "b@rssp.test");
	gwt_expect(r, 401, "incorrect_credentials");
	gwt_resp_free(r);
	r = login_from(g, "10.0.0.1", "c@rssp.test");
	gwt_expect(r, 429, "too_many_requests");
	gwt_resp_free(r);
	/* another client behind the same proxy is not held back */
	r = login_from(g, "10.0.0.2", "d@rssp.test");
	gwt_expect(r, 401, "incorrect_credentials");
	gwt_resp_free(r);
	/* a forged non-address is ignored: the peer address counts */
	r = login_from(g, "not-an-ip", "e@rssp.test");
	gwt_expect(r, 401, "incorrect_credentials");
	gwt_resp_free(r);
	gwt_stop(g);
}
END_TEST

START_TEST(test_expired_and_revoked_tokens_are_refused)
{
	static const char *env[] = {"RSSP_TOKEN_TTL=1", "RSSP_LOGIN_BURST=1000", NULL};
	struct gwt_opts o = {.env = env};
	struct gwt *g = gwt_start(&o);
	struct gwt_resp *r;
	char *tok, *refresh, body[128];

	/* expired: the admin token was issued with a lifetime of 1 s */
	r = gwt_post(g, "/rssp/admin/users/list", gwt_admin_token(g), "{}");
	gwt_resp_free(r);
	sleep(2);
	gwt_post_expect(g, "/rssp/admin/users/list", gwt_admin_token(g), "{}",
	    401, "invalid_token", NULL);
	gwt_stop(g);

	g = gwt_start(&fast);
	tok = gwt_login(g, gwt_admin_email(g), gwt_admin_password(g), &refresh);
	gwt_post_expect(g, "/rssp/admin/users/list", tok, "{}", 200, NULL, NULL);
	snprintf(body, sizeof(body), "{\"token\":\"%s\"}", tok);
	gwt_post_expect(g, "/rssp/auth/revoke", gwt_admin_token(g), body, 204, NULL, NULL);
	/* the next request on this replica sees it, although the token was cached */
	gwt_post_expect(g, "/rssp/admin/users/list", tok, "{}", 401, "invalid_token", NULL);
	/* revoking a refresh token ends its session; revoking without a token ends the caller's */
	free(tok);
	free(refresh);
	tok = gwt_login(g, gwt_admin_email(g), gwt_admin_password(g), &refresh);
	snprintf(body, sizeof(body), "{\"token\":\"%s\"}", refresh);
	gwt_post_expect(g, "/rssp/auth/revoke", tok, body, 204, NULL, NULL);
	gwt_post_expect(g, "/rssp/admin/users/list", tok, "{}", 401, "invalid_token", NULL);
	free(tok);
	tok = gwt_login(g, gwt_admin_email(g), gwt_admin_password(g), NULL);
	gwt_post_expect(g, "/rssp/auth/revoke", tok, "{}", 204, NULL, NULL);
	gwt_post_expect(g, "/rssp/auth/revoke", tok, "{}", 401, "invalid_token", NULL);
	free(tok);
	free(refresh);
	gwt_stop(g);
}
END_TEST

START_TEST(test_refresh_tokens_rotate_and_reuse_revokes_the_family)
{
	struct gwt *g = gwt_start(&fast);
	struct gwt_resp *r;
	char *tok, *r1, *r2, *t2, body[256];

	tok = gwt_login(g, gwt_admin_email(g), gwt_admin_password(g), &r1);
	snprintf(body, sizeof(body), "{\"grant_type\":\"refresh_token\",\"refresh_token\":\"%s\"}", r1);
	r = gwt_post(g, "/rssp/auth/login", NULL, body);
	gwt_expect(r, 200, NULL);
	r2 = strdup(gwt_str(r, "refresh_token"));
	t2 = strdup(gwt_str(r, "access_token"));
	gwt_resp_free(r);
	/* the new access token works */
	gwt_post_expect(g, "/rssp/admin/users/list", t2, "{}", 200, NULL, NULL);
	/* r1 again: reuse of a spent token */
	gwt_post_expect(g, "/rssp/auth/login", NULL, body, 400, "invalid_grant", NULL);
	/* ... which revoked the whole family: r2 and both access tokens */
	snprintf(body, sizeof(body), "{\"grant_type\":\"refresh_token\",\"refresh_token\":\"%s\"}", r2);
	gwt_post_expect(g, "/rssp/auth/login", NULL, body, 400, "invalid_grant", NULL);
	gwt_post_expect(g, "/rssp/admin/users/list", t2, "{}", 401, "invalid_token", NULL);
	gwt_post_expect(g, "/rssp/admin/users/list", tok, "{}", 401, "invalid_token", NULL);
	/* an unknown refresh token */
	gwt_post_expect(g, "/rssp/auth/login", NULL,
	    "{\"grant_type\":\"refresh_token\",\"refresh_token\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}",
	    400, "invalid_grant", NULL);
	/* the admin's own session (another family) is untouched */
	gwt_post_expect(g, "/rssp/admin/users/list", gwt_admin_token(g), "{}", 200, NULL, NULL);
	free(tok);
	free(r1);
	free(r2);
	free(t2);
	gwt_stop(g);
}
END_TEST

/* ---- Digest by hand (RFC 7616, SHA-256, qop=auth) ---- */

static void
sha256_hex(const char *s, char out[65])
{
	unsigned char md[32];
	unsigned int n;
	int i;

	EVP_Digest(s, strlen(s), md, &n, EVP_sha256(), NULL);
	for (i = 0; i < 32; i++)
		sprintf(out + 2 * i, "%02x", md[i]);
}

static void
param(const char *hdr, const char *name, char *out, size_t n)
{
	char key[64];
	const char *p, *e;

	snprintf(key, sizeof(key), "%s=\"", name);
	p = strstr(hdr, key);
	ck_assert_msg(p != NULL, "no %s in %s", name, hdr);
	p += strlen(key);
	e = strchr(p, '"');
	snprintf(out, n, "%.*s", (int)(e - p), p);
}

static char *
digest_challenge(struct gwt *g)
{
	struct gwt_resp *r = gwt_request(g, "POST", "/rssp/auth/login", NULL, 0, NULL);
	char *w = NULL;
	const char *p = r->headers;

	gwt_expect(r, 401, NULL);
	/* the Digest one of the WWW-Authenticate headers */
	while ((p = strcasestr(p, "WWW-Authenticate: ")) != NULL) {
		p += 18;
		if (strncmp(p, "Digest", 6) == 0) {
			w = strndup(p, strcspn(p, "\r\n"));
			break;
		}
	}
	ck_assert_ptr_nonnull(w);
	gwt_resp_free(r);
	return w;
}

static struct gwt_resp *
digest_login(struct gwt *g, const char *user, const char *pass, const char *chal, const char *nc)
{
	char realm[64], nonce[256], opaque[128], s[1024], ha1[65], ha2[65], resp[65], h[2048];
	const char *hdrs[2] = {h, NULL};

	param(chal, "realm", realm, sizeof(realm));
	param(chal, "nonce", nonce, sizeof(nonce));
	param(chal, "opaque", opaque, sizeof(opaque));
	snprintf(s, sizeof(s), "%s:%s:%s", user, realm, pass);
	sha256_hex(s, ha1);
	sha256_hex("POST:/rssp/auth/login", ha2);
	snprintf(s, sizeof(s), "%s:%s:%s:0a4f113b:auth:%s", ha1, nonce, nc, ha2);
	sha256_hex(s, resp);
	snprintf(h, sizeof(h), "Authorization: Digest username=\"%s\", realm=\"%s\", nonce=\"%s\", "
	    "uri=\"/rssp/auth/login\", algorithm=SHA-256, qop=auth, nc=%s, cnonce=\"0a4f113b\", "
	    "response=\"%s\", opaque=\"%s\"", user, realm, nonce, nc, resp, opaque);
	return gwt_request(g, "POST", "/rssp/auth/login", NULL, 0, hdrs);
}

START_TEST(test_digest_login_refuses_replayed_and_stale_nonces)
{
	static const char *env[] = {"RSSP_DIGEST_NONCE_TTL=1", "RSSP_LOGIN_BURST=1000", NULL};
	struct gwt_opts o = {.env = env};
	struct gwt *g = gwt_start(&o);
	struct gwt_resp *r;
	char *id, *secret, *chal;

	make_rp(g, &id, &secret);
	chal = digest_challenge(g);
	ck_assert_ptr_nonnull(strcasestr(chal, "algorithm=SHA-256"));
	ck_assert_ptr_nonnull(strstr(chal, "qop=\"auth\""));
	r = digest_login(g, id, secret, chal, "00000001");
	gwt_expect(r, 200, NULL);
	ck_assert_int_eq(strlen(gwt_str(r, "access_token")), 43);
	gwt_resp_free(r);
	/* the same nonce count again: a replay */
	r = digest_login(g, id, secret, chal, "00000001");
	gwt_expect(r, 401, NULL);
	ck_assert_ptr_null(gwt_str(r, "access_token"));
	gwt_resp_free(r);
	/* a wrong secret */
	r = digest_login(g, id, "not the secret", chal, "00000002");
	gwt_expect(r, 401, "incorrect_credentials");
	gwt_resp_free(r);
	/* a nonce past its lifetime: stale */
	sleep(2);
	r = digest_login(g, id, secret, chal, "00000003");
	gwt_expect(r, 401, NULL);
	ck_assert_msg(strcasestr(r->headers, "stale=\"true\"") != NULL || strcasestr(r->headers, "stale=true") != NULL,
	    "%s %s", r->headers, r->body);
	gwt_resp_free(r);
	/* an unknown client: the same 401 */
	free(chal);
	chal = digest_challenge(g);
	r = digest_login(g, "rp-unknown", secret, chal, "00000001");
	gwt_expect(r, 401, "incorrect_credentials");
	gwt_resp_free(r);
	free(chal);

	/* an independent client: python3-requests' HTTPDigestAuth */
	{
		char cmd[1024];
		int st;
		snprintf(cmd, sizeof(cmd),
		    "/usr/bin/python3 -c 'import sys,requests; from requests.auth import HTTPDigestAuth;"
		    " r = requests.post(sys.argv[1] + \"/rssp/auth/login\", auth=HTTPDigestAuth(sys.argv[2], sys.argv[3]));"
		    " sys.exit(0 if r.status_code == 200 and len(r.json()[\"access_token\"]) == 43 else 1)' %s %s %s",
		    gwt_url(g), id, secret);
		st = system(cmd);
		ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "python requests Digest login failed");
	}
	free(id);
	free(secret);
	gwt_stop(g);
}
END_TEST

static int run(const char *cmd);

START_TEST(test_sql_metacharacters_are_stored_and_returned_verbatim)
{
	struct gwt *g = gwt_start(&fast);
	const char *email = "o'brien\"; DROP TABLE accounts; --$1\\x@x.test";
	char pw[600], *id, *stored;
	const char *build = getenv("RSSP_TEST_BUILD");
	struct gwt_resp *r;
	char *tok;
	int st, p[2];
	pid_t pid;

	/* bootstrap-admin stores the email as given (argv, no shell) */
	snprintf(pw, sizeof(pw), "%s/meta_%d.pw", work(), (int)getpid());
	{
		FILE *f = fopen(pw, "w");
		fprintf(f, "metachar passphrase\n");
		fclose(f);
	}
	ck_assert_int_eq(pipe(p), 0);
	pid = fork();
	if (pid == 0) {
		char bin[1024];
		snprintf(bin, sizeof(bin), "%s/gateway/rssp-gateway", build && *build ? build : ".");
		setenv("RSSP_DB_URL", gwt_db_url(g), 1);
		setenv("RSSP_ARGON2_OPSLIMIT", "1", 1);
		setenv("RSSP_ARGON2_MEMLIMIT_KIB", "8192", 1);
		dup2(p[1], 1);
		dup2(open("/dev/null", O_WRONLY), 2);
		execl(bin, "rssp-gateway", "bootstrap-admin", "--email", email, "--password-file", pw, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	{
		char out[128] = "";
		ssize_t n = read(p[0], out, sizeof(out) - 1);
		out[n > 0 ? n : 0] = '\0';
		out[strcspn(out, "\n")] = '\0';
		id = strdup(out);
	}
	close(p[0]);
	waitpid(pid, &st, 0);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "bootstrap-admin failed");
	unlink(pw);
	stored = gwt_sql(g, "SELECT email FROM accounts WHERE id = $1", id, NULL);
	ck_assert_str_eq(stored, email);
	free(stored);
	/* log in with it (the lookup is a parameter, not SQL text) and read it back */
	tok = gwt_login(g, email, "metachar passphrase", NULL);
	r = gwt_post(g, "/rssp/admin/users/list", tok, "{}");
	gwt_expect(r, 200, NULL);
	{
		json_t *u;
		size_t i;
		int found = 0;
		json_array_foreach(json_object_get(r->json, "users"), i, u)
			if (json_is_string(json_object_get(u, "email")) &&
			    strcmp(json_string_value(json_object_get(u, "email")), email) == 0)
				found = 1;
		ck_assert_msg(found, "email not returned verbatim: %.600s", r->body);
	}
	gwt_resp_free(r);
	free(tok);
	free(id);
	gwt_stop(g);
}
END_TEST

static int
run(const char *cmd)
{
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

START_TEST(test_tls_refuses_1_1_and_accepts_1_2_and_1_3)
{
	char cert[512], key[512], cmd[2048];
	struct gwt_opts o = {.env = fast_env};
	struct gwt *g;
	unsigned port;
	const char *url;

	snprintf(cert, sizeof(cert), "%s/gwtls_%d.crt", work(), (int)getpid());
	snprintf(key, sizeof(key), "%s/gwtls_%d.key", work(), (int)getpid());
	snprintf(cmd, sizeof(cmd), "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
	    "-keyout %s -out %s -days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 2>/dev/null",
	    key, cert);
	ck_assert_int_eq(run(cmd), 0);
	o.tls_cert = cert;
	o.tls_key = key;
	g = gwt_start(&o);
	gwt_post_expect(g, "/rssp/info", NULL, "{}", 200, NULL, NULL);
	url = gwt_url(g);
	port = (unsigned)atoi(strrchr(url, ':') + 1);
	snprintf(cmd, sizeof(cmd), "openssl s_client -connect 127.0.0.1:%u -tls1_3 </dev/null >/dev/null 2>&1", port);
	ck_assert_int_eq(run(cmd), 0);
	snprintf(cmd, sizeof(cmd), "openssl s_client -connect 127.0.0.1:%u -tls1_2 </dev/null >/dev/null 2>&1", port);
	ck_assert_int_eq(run(cmd), 0);
	/* the client is made willing to speak TLS 1.1 (security level 0): the server refuses */
	snprintf(cmd, sizeof(cmd), "openssl s_client -connect 127.0.0.1:%u -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0' "
	    "</dev/null >/dev/null 2>&1", port);
	ck_assert_int_ne(run(cmd), 0);
	snprintf(cmd, sizeof(cmd), "curl -sk --tls-max 1.1 --tlsv1.0 -o /dev/null %s/healthz 2>/dev/null", url);
	ck_assert_int_ne(run(cmd), 0);
	snprintf(cmd, sizeof(cmd), "curl -sfk --tlsv1.2 --tls-max 1.2 -o /dev/null %s/healthz", url);
	ck_assert_int_eq(run(cmd), 0);
	gwt_stop(g);
	unlink(cert);
	unlink(key);
}
END_TEST

START_TEST(test_two_gateways_share_one_database)
{
	char *name = gwt_unique("gwt2"), cmd[1024], *url, *n;
	struct gwt_opts o2 = {.env = fast_env, .no_admin = 1};
	struct gwt *g1, *g2;
	char *t;
	const char *base = getenv("RSSP_TEST_DB_URL");
	const char *build = getenv("RSSP_TEST_BUILD");
	pid_t p[2];
	int i, st;

	/* two migrate runs at once on a fresh database: each migration applied exactly once */
	snprintf(cmd, sizeof(cmd), "psql -q '%s' -c 'CREATE DATABASE \"%s\"'", base, name);
	ck_assert_int_eq(run(cmd), 0);
	{
		const char *q = strchr(strstr(base, "://") + 3, '/');
		url = malloc(strlen(base) + strlen(name) + 2);
		sprintf(url, "%.*s/%s%s", (int)(q - base), base, name, strchr(q, '?') ? strchr(q, '?') : "");
	}
	for (i = 0; i < 2; i++) {
		p[i] = fork();
		if (p[i] == 0) {
			char bin[1024];
			snprintf(bin, sizeof(bin), "%s/gateway/rssp-gateway", build && *build ? build : ".");
			setenv("RSSP_DB_URL", url, 1);
			if (freopen("/dev/null", "w", stderr) == NULL)
				_exit(126);
			execl(bin, "rssp-gateway", "migrate", (char *)NULL);
			_exit(127);
		}
	}
	for (i = 0; i < 2; i++) {
		waitpid(p[i], &st, 0);
		ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "migrate %d failed", i);
	}
	free(url);

	{
		struct gwt_opts o1 = {.env = fast_env, .db_name = name};
		g1 = gwt_start(&o1);
	}
	o2.db_name = name;
	g2 = gwt_start(&o2);
	n = gwt_sql(g1, "SELECT count(*) FROM schema_migrations", NULL);
	{
		char ls[1024];
		FILE *f;
		int files = 0;
		const char *src = getenv("RSSP_TEST_ROOT");
		snprintf(ls, sizeof(ls), "ls %s/schema | grep -c '^[0-9][0-9][0-9]_.*\\.sql$'", src && *src ? src : "../..");
		f = popen(ls, "r");
		ck_assert(fscanf(f, "%d", &files) == 1);
		pclose(f);
		ck_assert_int_eq(atoi(n), files);
	}
	free(n);
	/* log in on either; a token of one works on the other */
	t = gwt_login(g2, gwt_admin_email(g1), gwt_admin_password(g1), NULL);
	gwt_post_expect(g1, "/rssp/admin/users/list", t, "{}", 200, NULL, NULL);
	free(t);
	t = gwt_login(g1, gwt_admin_email(g1), gwt_admin_password(g1), NULL);
	gwt_post_expect(g2, "/rssp/admin/users/list", t, "{}", 200, NULL, NULL);
	free(t);
	gwt_stop(g2);
	gwt_stop(g1);
	free(name);
}
END_TEST

START_TEST(test_passphrases_use_argon2id_19_mib_2_passes_by_default)
{
	static const char *env[] = {"RSSP_ARGON2_OPSLIMIT=", "RSSP_ARGON2_MEMLIMIT_KIB=", NULL};
	struct gwt_opts o = {.env = env};
	struct gwt *g = gwt_start(&o);
	char *h = gwt_sql(g, "SELECT passphrase_hash FROM accounts WHERE id = $1", gwt_admin_id(g), NULL);
	char *tok;

	ck_assert_ptr_nonnull(h);
	ck_assert_msg(strncmp(h, "$argon2id$v=19$m=19456,t=2,p=1$", 31) == 0, "hash is %.40s", h);
	free(h);
	/* tokens are stored as SHA-256, never as given */
	tok = gwt_login(g, gwt_admin_email(g), gwt_admin_password(g), NULL);
	h = gwt_sql(g, "SELECT count(*) FROM tokens WHERE token_hash = sha256(convert_to($1, 'UTF8'))", tok, NULL);
	ck_assert_str_eq(h, "1");
	free(h);
	h = gwt_sql(g, "SELECT count(*) FROM tokens WHERE encode(token_hash, 'escape') LIKE '%' || $1 || '%'", tok, NULL);
	ck_assert_str_eq(h, "0");
	free(h);
	free(tok);
	gwt_stop(g);
}
END_TEST

START_TEST(test_check_prints_the_configuration_with_secrets_masked)
{
	char cmd[1024], out[8192];
	const char *build = getenv("RSSP_TEST_BUILD");
	FILE *f;
	size_t n;

	snprintf(cmd, sizeof(cmd), "RSSP_DB_URL='postgresql://u:s3cret@db/x' RSSP_SMTP_URL='smtp://u:pw@relay' "
	    "%s/gateway/rssp-gateway serve --check", build && *build ? build : ".");
	f = popen(cmd, "r");
	n = fread(out, 1, sizeof(out) - 1, f);
	out[n] = '\0';
	ck_assert_int_eq(pclose(f), 0);
	ck_assert_ptr_nonnull(strstr(out, "RSSP_LISTEN=127.0.0.1:8080"));
	ck_assert_ptr_nonnull(strstr(out, "RSSP_DB_URL=********"));
	ck_assert_ptr_null(strstr(out, "s3cret"));
	ck_assert_ptr_null(strstr(out, "pw@relay"));
	snprintf(cmd, sizeof(cmd), "RSSP_DB_URL=x RSSP_TOKEN_TTL=abc %s/gateway/rssp-gateway serve --check >/dev/null 2>&1",
	    build && *build ? build : ".");
	ck_assert_int_ne(run(cmd), 0);
	snprintf(cmd, sizeof(cmd), "env -u RSSP_DB_URL %s/gateway/rssp-gateway serve --check >/dev/null 2>&1",
	    build && *build ? build : ".");
	ck_assert_int_ne(run(cmd), 0);
}
END_TEST

START_TEST(test_readyz_reports_an_unreachable_engine)
{
	char env0[600];
	const char *env[] = {env0, NULL};
	struct gwt_opts o = {.env = env};
	struct gwt *g;
	struct gwt_resp *r;

	snprintf(env0, sizeof(env0), "RSSP_ENGINE_SOCKET=%s/no-engine-%d.sock", work(), (int)getpid());
	g = gwt_start(&o);
	r = gwt_get(g, "/readyz");
	gwt_expect(r, 503, NULL);
	ck_assert_ptr_nonnull(gwt_str(r, "error"));
	gwt_resp_free(r);
	r = gwt_get(g, "/healthz");
	gwt_expect(r, 200, NULL);
	gwt_resp_free(r);
	gwt_stop(g);
}
END_TEST

/* Raw bytes on a TCP connection; returns what came back (at most n - 1 bytes). */
static void
raw_exchange(struct gwt *g, const char *data, size_t len, char *out, size_t n)
{
	char cmd[1024];
	unsigned port = (unsigned)atoi(strrchr(gwt_url(g), ':') + 1);
	char in[600];
	FILE *f;
	size_t got;

	snprintf(in, sizeof(in), "%s/raw_%d.bin", work(), (int)getpid());
	f = fopen(in, "wb");
	fwrite(data, 1, len, f);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "timeout 5 python3 -c 'import socket,sys; s=socket.create_connection((\"127.0.0.1\", %u)); "
	    "s.sendall(open(sys.argv[1],\"rb\").read()); s.shutdown(1); sys.stdout.buffer.write(s.recv(65536))' %s", port, in);
	f = popen(cmd, "r");
	got = fread(out, 1, n - 1, f);
	out[got] = '\0';
	pclose(f);
	unlink(in);
}

START_TEST(test_the_gateway_survives_hostile_input)
{
	struct gwt *g = gwt_start(&fast);
	static const char *inputs[] = {
		"GARBAGE\r\n\r\n",
		"POST /rssp/info HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n{}",
		"POST /rssp/info HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n{}",
		"POST /rssp/info HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"POST /rssp/auth/login HTTP/1.1\r\nHost: x\r\nAuthorization: Digest username=\"\r\n\r\n",
		"POST /rssp/auth/login HTTP/1.1\r\nHost: x\r\nAuthorization: Basic !!!!\r\n\r\n",
		"POST /rssp/auth/login HTTP/1.1\r\nHost: x\r\nAuthorization: Digest username=\"a\", nc=zz, response=1\r\n\r\n",
		"POST /rssp/auth/revoke HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\r\n\r\n",
		"POST /rssp/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 9\r\n\r\na=%zz&b=c",
		"POST /rssp/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 12\r\n\r\n{\"a\":[[[[[[",
		"GET /\xff\xfe\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
	};
	char out[70000];
	struct gwt_resp *r;
	size_t i;

	for (i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
		raw_exchange(g, inputs[i], strlen(inputs[i]), out, sizeof(out));
		r = gwt_get(g, "/healthz");
		gwt_expect(r, 200, NULL);
		gwt_resp_free(r);
	}
	/* deep JSON nesting */
	{
		size_t n = 200000, k;
		char *deep = malloc(n + 1);
		const char *ct[] = {"Content-Type: application/json", NULL};
		for (k = 0; k < n / 2; k++)
			deep[k] = '[';
		for (; k < n; k++)
			deep[k] = ']';
		deep[n] = '\0';
		r = gwt_request(g, "POST", "/rssp/info", deep, n, ct);
		gwt_expect(r, 400, "invalid_request");
		gwt_resp_free(r);
		free(deep);
	}
	gwt_stop(g);
}
END_TEST

/* A form body with NUL bytes (found by fuzz_form): refused as malformed, no heap damage
 * (the parser used to wipe its copy past a NUL). */
START_TEST(test_a_form_body_with_nul_bytes_is_refused)
{
	struct gwt *g = gwt_start(&fast);
	static const char body[] = "grant_type=password&\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0"
	    "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0&username=a&password=b";
	const char *ct[] = {"Content-Type: application/x-www-form-urlencoded", NULL};
	struct gwt_resp *r;
	int i;

	for (i = 0; i < 20; i++) {
		r = gwt_request(g, "POST", "/rssp/auth/login", body, sizeof(body) - 1, ct);
		gwt_expect(r, 400, "invalid_request");
		gwt_resp_free(r);
	}
	r = gwt_get(g, "/healthz");
	gwt_expect(r, 200, NULL);
	gwt_resp_free(r);
	gwt_stop(g);
}
END_TEST

START_TEST(test_a_slow_login_does_not_hold_the_http_thread)
{
	static const char *env[] = {"RSSP_HTTP_THREADS=1", "RSSP_LOGIN_BURST=1000", NULL};
	struct gwt_opts o = {.env = env};
	struct gwt *g = gwt_start(&o);
	char hash[crypto_pwhash_STRBYTES], cmd[1024];
	pid_t pid;
	int st, i;

	/* an account whose stored hash is very expensive to verify (argon2id t=60) */
	ck_assert_int_eq(sodium_init() >= 0, 1);
	ck_assert_int_eq(crypto_pwhash_str_alg(hash, "slow passphrase", 15, 60, 19456 * 1024,
	    crypto_pwhash_ALG_ARGON2ID13), 0);
	free(gwt_sql(g, "INSERT INTO accounts (email, role, status, passphrase_hash) VALUES"
	    " ('slow@rssp.test', 'signer', 'ACTIVE', $1) RETURNING id", hash, NULL));
	snprintf(cmd, sizeof(cmd), "curl -s -o /dev/null -w '%%{http_code}' %s/rssp/auth/login "
	    "-H 'Content-Type: application/json' -d '{\"grant_type\":\"password\","
	    "\"username\":\"slow@rssp.test\",\"password\":\"slow passphrase\"}' | grep -q 200",
	    gwt_url(g));
	pid = fork();
	if (pid == 0)
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
	/* the one HTTP thread keeps answering while the login verifies on the long pool */
	usleep(100 * 1000);
	for (i = 0; i < 5; i++) {
		gwt_post_expect(g, "/rssp/info", gwt_admin_token(g), "{}", 200, NULL, NULL);
	}
	ck_assert_msg(waitpid(pid, &st, WNOHANG) == 0, "the slow login ended before the other requests");
	waitpid(pid, &st, 0);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the slow login failed");
	gwt_stop(g);
}
END_TEST

static Suite *
suite(void)
{
	Suite *s = suite_create("gateway");
	TCase *t = tcase_create("gateway");

	tcase_set_timeout(t, 120);
	tcase_add_test(t, test_info_lists_the_functions_and_echoes_the_request_id);
	tcase_add_test(t, test_operational_endpoints_answer);
	tcase_add_test(t, test_csc_faces_and_the_oauth_page_answer_without_a_signer);
	tcase_add_test(t, test_login_works_four_ways_and_tokens_authenticate);
	tcase_add_test(t, test_malformed_requests_are_refused_naming_the_problem);
	tcase_add_test(t, test_a_body_over_one_mebibyte_is_refused_with_413);
	tcase_add_test(t, test_unknown_user_and_wrong_passphrase_get_the_same_answer);
	tcase_add_test(t, test_five_failures_lock_the_account_until_an_admin_unlocks_it);
	tcase_add_test(t, test_login_attempts_are_rate_limited_with_retry_after);
	tcase_add_test(t, test_behind_a_trusted_proxy_the_forwarded_address_is_rate_limited);
	tcase_add_test(t, test_expired_and_revoked_tokens_are_refused);
	tcase_add_test(t, test_refresh_tokens_rotate_and_reuse_revokes_the_family);
	tcase_add_test(t, test_digest_login_refuses_replayed_and_stale_nonces);
	tcase_add_test(t, test_sql_metacharacters_are_stored_and_returned_verbatim);
	tcase_add_test(t, test_tls_refuses_1_1_and_accepts_1_2_and_1_3);
	tcase_add_test(t, test_two_gateways_share_one_database);
	tcase_add_test(t, test_passphrases_use_argon2id_19_mib_2_passes_by_default);
	tcase_add_test(t, test_check_prints_the_configuration_with_secrets_masked);
	tcase_add_test(t, test_readyz_reports_an_unreachable_engine);
	tcase_add_test(t, test_the_gateway_survives_hostile_input);
	tcase_add_test(t, test_a_slow_login_does_not_hold_the_http_thread);
	tcase_add_test(t, test_a_form_body_with_nul_bytes_is_refused);
	suite_add_tcase(s, t);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
