/* test_gw_getters.c - the framework's JSON field getters and error replies (gw.h),
 * table-driven, the Prometheus text of its series (metrics.h) and the deadlines of its
 * timed waits (deadline.h); linked directly against rssp_gateway_lib. Each test runs in
 * its own process (Check's fork mode): the metrics counters start at zero. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <check.h>

#include "deadline.h"
#include "gw.h"
#include "gw_internal.h"
#include "metrics.h"
#include "secrets.h"

static json_t *
parse(const char *text)
{
	json_error_t e;
	json_t *o = json_loads(text, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &e);

	ck_assert_msg(o != NULL, "bad test JSON %s: %s", text, e.text);
	return o;
}

static const char *
desc(const struct gw_reply *rep)
{
	return json_string_value(json_object_get(rep->body, "error_description"));
}

static const char *
code(const struct gw_reply *rep)
{
	return json_string_value(json_object_get(rep->body, "error"));
}

struct str_case {
	const char *body;
	size_t maxlen;
	bool required;
	int ok;                 /* 1: success */
	const char *want;       /* the value (NULL: absent) */
	const char *desc_has;   /* on failure, a part of the description */
};

static const struct str_case str_cases[] = {
	{"{\"f\":\"abc\"}", 10, true, 1, "abc", NULL},
	{"{\"f\":\"abc\"}", 3, true, 1, "abc", NULL},
	{"{\"f\":\"abcd\"}", 3, true, 0, NULL, "at most 3"},
	{"{}", 10, true, 0, NULL, "missing field 'f'"},
	{"{\"f\":null}", 10, true, 0, NULL, "missing field 'f'"},
	{"{}", 10, false, 1, NULL, NULL},
	{"{\"f\":null}", 10, false, 1, NULL, NULL},
	{"{\"f\":\"\"}", 10, true, 0, NULL, "must not be empty"},
	{"{\"f\":\"\"}", 10, false, 1, "", NULL},
	{"{\"f\":5}", 10, true, 0, NULL, "'f' must be a string"},
	{"{\"f\":[\"a\"]}", 10, true, 0, NULL, "'f' must be a string"},
	{"{\"f\":\"a\\u0000b\"}", 10, true, 0, NULL, "NUL"},
	{"{\"f\":\"' OR 1=1; --\"}", 100, true, 1, "' OR 1=1; --", NULL},
};

START_TEST(test_string_getter_follows_its_table)
{
	const struct str_case *c = &str_cases[_i];
	struct gw_request req = {0};
	struct gw_reply rep = {0};
	const char *v = "unset";
	int r;

	req.body = parse(c->body);
	r = gw_get_str(&req, &rep, "f", c->maxlen, c->required, &v);
	if (c->ok) {
		ck_assert_msg(r == 0, "case %d: %s", _i, c->body);
		ck_assert_int_eq(rep.status, 0);
		if (c->want == NULL)
			ck_assert_ptr_null(v);
		else
			ck_assert_str_eq(v, c->want);
	} else {
		ck_assert_msg(r < 0, "case %d: %s", _i, c->body);
		ck_assert_str_eq(v, "unset"); /* out-parameters only on success */
		ck_assert_int_eq(rep.status, 400);
		ck_assert_str_eq(code(&rep), "invalid_request");
		ck_assert_msg(strstr(desc(&rep), c->desc_has) != NULL, "case %d: %s", _i, desc(&rep));
	}
	gw_reply_release(&rep);
	json_decref(req.body);
}
END_TEST

START_TEST(test_integer_and_boolean_getters_check_type_and_range)
{
	struct gw_request req = {0};
	struct gw_reply rep = {0};
	long long x = -7;
	bool b = false;

	req.body = parse("{\"n\": 5, \"big\": 1000, \"s\": \"5\", \"f\": 1.5, \"t\": true, \"z\": 0}");
	ck_assert_int_eq(gw_get_int(&req, &rep, "n", 1, 10, true, 0, &x), 0);
	ck_assert_int_eq(x, 5);
	ck_assert_int_eq(gw_get_int(&req, &rep, "absent", 1, 10, false, 3, &x), 0);
	ck_assert_int_eq(x, 3);
	ck_assert_int_lt(gw_get_int(&req, &rep, "big", 1, 600, true, 0, &x), 0);
	ck_assert_ptr_nonnull(strstr(desc(&rep), "'big' must be between 1 and 600"));
	ck_assert_int_lt(gw_get_int(&req, &rep, "s", 1, 10, true, 0, &x), 0);
	ck_assert_ptr_nonnull(strstr(desc(&rep), "'s' must be an integer"));
	ck_assert_int_lt(gw_get_int(&req, &rep, "f", 1, 10, true, 0, &x), 0);
	ck_assert_int_lt(gw_get_int(&req, &rep, "absent", 1, 10, true, 0, &x), 0);
	ck_assert_ptr_nonnull(strstr(desc(&rep), "missing field 'absent'"));
	ck_assert_int_eq(x, 3);
	ck_assert_int_eq(gw_get_bool(&req, &rep, "t", true, false, &b), 0);
	ck_assert(b);
	ck_assert_int_lt(gw_get_bool(&req, &rep, "z", true, false, &b), 0);
	ck_assert_ptr_nonnull(strstr(desc(&rep), "'z' must be a boolean"));
	ck_assert_int_eq(gw_get_bool(&req, &rep, "absent", false, false, &b), 0);
	ck_assert(!b);
	gw_reply_release(&rep);
	json_decref(req.body);
}
END_TEST

struct b64_case {
	const char *value;
	size_t maxlen;
	long want_len;          /* -1: refused */
};

static const struct b64_case b64_cases[] = {
	{"AAAA", 10, 3},
	{"AAA=", 10, 2},
	{"AA==", 10, 1},
	{"AAAAAA==", 4, 4},
	{"AAAAAAA=", 4, -1},     /* 5 bytes > 4 */
	{"AA=A", 10, -1},        /* padding inside */
	{"A===", 10, -1},
	{"AAA", 10, -1},         /* not a multiple of 4 */
	{"AA-_", 10, -1},        /* base64url is not accepted */
	{"AA AA", 10, -1},
	{"", 10, -1},
	{"====", 10, -1},
	{"AAAA\nAAAA", 10, -1},
};

START_TEST(test_base64_getter_is_strict)
{
	const struct b64_case *c = &b64_cases[_i];
	struct gw_request req = {0};
	struct gw_reply rep = {0};
	uint8_t *buf = NULL;
	size_t len = 99;
	int r;

	req.body = json_pack("{s:s}", "b", c->value);
	r = gw_get_b64(&req, &rep, "b", c->maxlen, true, &buf, &len);
	if (c->want_len < 0) {
		ck_assert_msg(r < 0, "case %d (%s) accepted", _i, c->value);
		ck_assert_ptr_null(buf);
		ck_assert_int_eq(len, 99);
		ck_assert_ptr_nonnull(strstr(desc(&rep), "'b'"));
	} else {
		ck_assert_msg(r == 0, "case %d (%s) refused", _i, c->value);
		ck_assert_int_eq(len, (size_t)c->want_len);
	}
	free(buf);
	gw_reply_release(&rep);
	json_decref(req.body);
}
END_TEST

START_TEST(test_string_array_getter_bounds_items_and_lengths)
{
	struct gw_request req = {0};
	struct gw_reply rep = {0};
	const char **items = NULL;
	size_t n = 0;

	req.body = parse("{\"a\": [\"x\", \"yy\"], \"e\": [], \"m\": [\"x\", 1], \"l\": [\"toolong\"], \"s\": \"x\"}");
	ck_assert_int_eq(gw_get_str_array(&req, &rep, "a", 2, 2, true, &items, &n), 0);
	ck_assert_int_eq(n, 2);
	ck_assert_str_eq(items[1], "yy");
	free(items);
	items = NULL;
	ck_assert_int_lt(gw_get_str_array(&req, &rep, "a", 1, 2, true, &items, &n), 0);
	ck_assert_int_lt(gw_get_str_array(&req, &rep, "e", 5, 5, true, &items, &n), 0);
	ck_assert_int_lt(gw_get_str_array(&req, &rep, "m", 5, 5, true, &items, &n), 0);
	ck_assert_int_lt(gw_get_str_array(&req, &rep, "l", 5, 5, true, &items, &n), 0);
	ck_assert_int_lt(gw_get_str_array(&req, &rep, "s", 5, 5, true, &items, &n), 0);
	ck_assert_ptr_nonnull(strstr(desc(&rep), "'s'"));
	ck_assert_ptr_null(items);
	ck_assert_int_eq(gw_get_str_array(&req, &rep, "absent", 5, 5, false, &items, &n), 0);
	ck_assert_ptr_null(items);
	ck_assert_int_eq(n, 0);
	gw_reply_release(&rep);
	json_decref(req.body);
}
END_TEST

START_TEST(test_error_replies_carry_the_contract_headers)
{
	struct gw_reply rep = {0};
	unsigned i;
	int www = 0, retry = 0;

	ck_assert_int_lt(gw_error(&rep, 401, "invalid_token", "the bearer token is invalid"), 0);
	for (i = 0; i < rep.n_headers; i++)
		if (strcmp(rep.headers[i][0], "WWW-Authenticate") == 0 && strncmp(rep.headers[i][1], "Bearer", 6) == 0)
			www = 1;
	ck_assert(www);
	gw_reply_release(&rep);
	ck_assert_int_lt(gw_error(&rep, 429, "too_many_requests", "slow down"), 0);
	for (i = 0; i < rep.n_headers; i++)
		if (strcmp(rep.headers[i][0], "Retry-After") == 0)
			retry = 1;
	ck_assert(retry);
	ck_assert_int_eq(rep.status, 429);
	gw_reply_release(&rep);
	/* a description that is not UTF-8 is never echoed */
	ck_assert_int_lt(gw_error(&rep, 400, "invalid_request", "bad %s", "\xff\xfe"), 0);
	ck_assert_int_eq(rep.status, 400);
	ck_assert_ptr_nonnull(rep.body);
	ck_assert_str_eq(code(&rep), "invalid_request");
	gw_reply_release(&rep);
	/* a reply whose body could not be built is unset: the framework answers 500 */
	ck_assert_int_lt(gw_reply_json(&rep, 200, NULL), 0);
	ck_assert_int_eq(rep.status, 0);
	ck_assert_int_eq(gw_reply_empty(&rep, 204), 0);
	ck_assert_int_eq(rep.status, 204);
	gw_reply_release(&rep);
}
END_TEST

START_TEST(test_secret_helpers_hash_compare_and_generate)
{
	char hash[GW_PWHASH_MAX], tok[GW_TOKEN_LEN + 1], tok2[GW_TOKEN_LEN + 1], uuid[GW_UUID_LEN + 1], hex[65];
	uint8_t ha1[32];
	struct gw_config cfg = {0};

	cfg.argon2_opslimit = 1;
	cfg.argon2_memlimit_kib = 8192;
	ck_assert_int_eq(gw_secrets_init(&cfg), 0);
	ck_assert_int_eq(gw_password_hash("correct horse", hash), 0);
	ck_assert(strncmp(hash, "$argon2id$v=19$m=8192,t=1,p=1$", 30) == 0);
	ck_assert_int_eq(gw_password_verify(hash, "correct horse"), 0);
	ck_assert_int_eq(gw_password_verify(hash, "correct horsE"), RSSP_E_DENIED);
	ck_assert_int_eq(gw_password_verify(NULL, "x"), RSSP_E_DENIED);
	ck_assert_int_eq(gw_password_verify("$argon2id$garbage", "x"), RSSP_E_DENIED);
	gw_password_dummy_verify("anything");
	gw_random_token(tok);
	gw_random_token(tok2);
	ck_assert_int_eq(strlen(tok), GW_TOKEN_LEN);
	ck_assert_str_ne(tok, tok2);
	gw_random_uuid(uuid);
	ck_assert_int_eq(strlen(uuid), 36);
	ck_assert_int_eq(uuid[14], '4');
	gw_sha256_hex("abc", 3, hex);
	ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	/* HA1 = SHA-256("user:realm:secret") */
	gw_digest_ha1("Mufasa", "http-auth@example.org", "Circle of Life", ha1);
	{
		char want[65], got[65];
		gw_sha256_hex("Mufasa:http-auth@example.org:Circle of Life", 43, want);
		for (int i = 0; i < 32; i++)
			sprintf(got + 2 * i, "%02x", ha1[i]);
		ck_assert_str_eq(got, want);
	}
	ck_assert(gw_ct_equal("abc", "abc", 3));
	ck_assert(!gw_ct_equal("abc", "abd", 3));
	ck_assert_str_eq(gw_role_name(gw_role_parse("company_admin")), "company_admin");
	ck_assert_int_eq(gw_role_parse("root"), 0);
	ck_assert_str_eq(gw_role_name(GW_ROLE_ADMIN | GW_ROLE_RP), "");
}
END_TEST

static void
has(const char *text, const char *want)
{
	ck_assert_msg(strstr(text, want) != NULL, "missing: %.300s", want);
}

static unsigned
count(const char *text, const char *part)
{
	unsigned n = 0;

	for (const char *p = text; (p = strstr(p, part)) != NULL; p += strlen(part))
		n++;
	return n;
}

START_TEST(test_http_and_engine_series_render_counter_then_histogram)
{
	char route_copy[] = "/rssp/auth/login"; /* the same text at another address */
	char *t;

	gw_metrics_request("/rssp/auth/login", 200, 0.002);
	gw_metrics_request("/rssp/auth/login", 200, 0.2);
	gw_metrics_request(route_copy, 200, 0.002);
	gw_metrics_request("other", 404, 0.0001);
	gw_metrics_engine_call("signhash", 0, 0.003);
	gw_metrics_engine_call("authorize", -1, 7.0);
	t = gw_metrics_render(2, 16);
	ck_assert_ptr_nonnull(t);
	has(t, "# HELP rssp_http_requests_total HTTP requests by route and status.\n"
	    "# TYPE rssp_http_requests_total counter\n"
	    "rssp_http_requests_total{route=\"/rssp/auth/login\",status=\"200\"} 3\n"
	    "rssp_http_requests_total{route=\"other\",status=\"404\"} 1\n"
	    "# HELP rssp_http_request_duration_seconds HTTP request latency by route.\n"
	    "# TYPE rssp_http_request_duration_seconds histogram\n"
	    "rssp_http_request_duration_seconds_bucket{route=\"/rssp/auth/login\",le=\"0.001\"} 0\n"
	    "rssp_http_request_duration_seconds_bucket{route=\"/rssp/auth/login\",le=\"0.0025\"} 2\n");
	has(t, "rssp_http_request_duration_seconds_bucket{route=\"/rssp/auth/login\",le=\"0.25\"} 3\n"
	    "rssp_http_request_duration_seconds_bucket{route=\"/rssp/auth/login\",le=\"0.5\"} 3\n");
	has(t, "rssp_http_request_duration_seconds_count{route=\"/rssp/auth/login\"} 3\n");
	has(t, "rssp_http_request_duration_seconds_count{route=\"other\"} 1\n"
	    "# HELP rssp_engine_calls_total Engine calls by method and gRPC status (-1: unreachable).\n"
	    "# TYPE rssp_engine_calls_total counter\n"
	    "rssp_engine_calls_total{method=\"signhash\",status=\"0\"} 1\n"
	    "rssp_engine_calls_total{method=\"authorize\",status=\"-1\"} 1\n"
	    "# HELP rssp_engine_call_duration_seconds Engine call latency by method.\n"
	    "# TYPE rssp_engine_call_duration_seconds histogram\n"
	    "rssp_engine_call_duration_seconds_bucket{method=\"signhash\",le=\"0.001\"} 0\n");
	has(t, "rssp_engine_call_duration_seconds_bucket{method=\"signhash\",le=\"0.005\"} 1\n");
	has(t, "rssp_engine_call_duration_seconds_bucket{method=\"authorize\",le=\"5\"} 0\n"
	    "rssp_engine_call_duration_seconds_bucket{method=\"authorize\",le=\"10\"} 1\n"
	    "rssp_engine_call_duration_seconds_bucket{method=\"authorize\",le=\"+Inf\"} 1\n"
	    "rssp_engine_call_duration_seconds_sum{method=\"authorize\"} 7.000000\n"
	    "rssp_engine_call_duration_seconds_count{method=\"authorize\"} 1\n"
	    "# HELP rssp_signatures_total");
	has(t, "rssp_db_pool_in_use 2\n");
	ck_assert_uint_eq(count(t, "route=\"/rssp/auth/login\",le=\"+Inf\""), 1);
	free(t);
}
END_TEST

START_TEST(test_engine_series_keeps_at_most_8_methods_and_32_pairs)
{
	static const char *methods[] = {"m0", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "m9"};
	char *t;

	for (int m = 0; m < 10; m++)
		for (int st = 0; st < 4; st++)
			gw_metrics_engine_call(methods[m], st, 0.01);
	t = gw_metrics_render(0, 1);
	ck_assert_ptr_nonnull(t);
	ck_assert_uint_eq(count(t, "rssp_engine_call_duration_seconds_count{"), 8);
	ck_assert_uint_eq(count(t, "\nrssp_engine_calls_total{"), 32);
	has(t, "rssp_engine_calls_total{method=\"m7\",status=\"3\"} 1\n");
	ck_assert_ptr_null(strstr(t, "method=\"m8\""));
	free(t);
}
END_TEST

START_TEST(test_deadline_is_now_plus_ms_normalised)
{
	static const unsigned ms[] = {0, 1, 999, 1000, 1001, 1999, 2500, 60000};
	static const clockid_t clocks[] = {CLOCK_MONOTONIC, CLOCK_REALTIME};

	for (size_t c = 0; c < 2; c++)
		for (size_t i = 0; i < sizeof(ms) / sizeof(ms[0]); i++) {
			struct timespec before, dl, after;
			double lo, hi, got;

			clock_gettime(clocks[c], &before);
			gw_deadline_after_ms(clocks[c], ms[i], &dl);
			clock_gettime(clocks[c], &after);
			ck_assert(dl.tv_nsec >= 0 && dl.tv_nsec < 1000000000L);
			lo = (double)before.tv_sec + before.tv_nsec / 1e9 + ms[i] / 1e3;
			hi = (double)after.tv_sec + after.tv_nsec / 1e9 + ms[i] / 1e3;
			got = (double)dl.tv_sec + dl.tv_nsec / 1e9;
			ck_assert_msg(got >= lo - 1e-6 && got <= hi + 1e-6,
			    "clock %zu, %u ms: %.9f not in [%.9f, %.9f]", c, ms[i], got, lo, hi);
		}
}
END_TEST

static Suite *
suite(void)
{
	Suite *s = suite_create("gw_getters");
	TCase *t = tcase_create("getters");

	tcase_add_loop_test(t, test_string_getter_follows_its_table, 0, (int)(sizeof(str_cases) / sizeof(str_cases[0])));
	tcase_add_test(t, test_integer_and_boolean_getters_check_type_and_range);
	tcase_add_loop_test(t, test_base64_getter_is_strict, 0, (int)(sizeof(b64_cases) / sizeof(b64_cases[0])));
	tcase_add_test(t, test_string_array_getter_bounds_items_and_lengths);
	tcase_add_test(t, test_error_replies_carry_the_contract_headers);
	tcase_add_test(t, test_secret_helpers_hash_compare_and_generate);
	suite_add_tcase(s, t);
	t = tcase_create("metrics");
	tcase_add_test(t, test_http_and_engine_series_render_counter_then_histogram);
	tcase_add_test(t, test_engine_series_keeps_at_most_8_methods_and_32_pairs);
	tcase_add_test(t, test_deadline_is_now_plus_ms_normalised);
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
