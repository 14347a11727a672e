/* test_gw_metrics.c - the Prometheus text of the gateway's series (metrics.h) and the
 * deadlines of its timed waits (deadline.h), linked directly against rssp_gateway_lib.
 * Each test runs in its own process (Check's fork mode): the counters start at zero. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <check.h>

#include "deadline.h"
#include "metrics.h"

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
	Suite *s = suite_create("gw_metrics");
	TCase *t = tcase_create("metrics");

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
