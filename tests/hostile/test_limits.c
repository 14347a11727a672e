/* test_limits.c - the login limiters' building blocks without a server: exact buckets
 * with bounded memory (ratelimit.h), the login rule (login_name.h), the long-poll and
 * login admission counters (loadcap.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "config.h"
#include "loadcap.h"
#include "login_name.h"
#include "ratelimit.h"

START_TEST(test_every_key_has_a_bucket_of_its_own)
{
	struct gw_ratelimit *rl;
	char key[64];
	unsigned w, allowed = 0;
	int i, k;

	/* 20,000 keys: a direct-mapped table of 4096 slots made colliding keys refill each
	 * other; here each key gets exactly its burst of 2, never more */
	ck_assert_int_eq(gw_ratelimit_new(1.0 / 60, 2, 100000, &rl), 0);
	for (k = 0; k < 3; k++)
		for (i = 0; i < 20000; i++) {
			snprintf(key, sizeof(key), "login\n%d@example.org", i);
			if (gw_ratelimit_take(rl, key, 100.0, &w) == 0)
				allowed++;
			else
				ck_assert_uint_ge(w, 1);
		}
	ck_assert_uint_eq(allowed, 40000);
	ck_assert_uint_eq(gw_ratelimit_count(rl), 20000);
	gw_ratelimit_free(rl);
}
END_TEST

START_TEST(test_memory_is_bounded_and_only_full_buckets_are_forgotten)
{
	struct gw_ratelimit *rl;
	unsigned w;

	ck_assert_int_eq(gw_ratelimit_new(1.0, 2, 3, &rl), 0);
	ck_assert_int_eq(gw_ratelimit_take(rl, "a", 0.0, &w), 0);
	ck_assert_int_eq(gw_ratelimit_take(rl, "a", 0.0, &w), 0);
	ck_assert_int_eq(gw_ratelimit_take(rl, "a", 0.0, &w), RSSP_E_EXHAUSTED);
	ck_assert_int_eq(gw_ratelimit_take(rl, "b", 0.0, &w), 0);
	ck_assert_int_eq(gw_ratelimit_take(rl, "c", 0.0, &w), 0);
	/* full of buckets still refilling: a new key is refused, not an old bucket dropped */
	ck_assert_int_eq(gw_ratelimit_take(rl, "d", 0.5, &w), RSSP_E_TOOBIG);
	ck_assert_int_eq(gw_ratelimit_take(rl, "a", 0.5, &w), RSSP_E_EXHAUSTED);
	ck_assert_uint_eq(gw_ratelimit_count(rl), 3);
	/* at t=10 every bucket is full again: a sweep forgets them, the new key enters */
	ck_assert_int_eq(gw_ratelimit_take(rl, "d", 10.0, &w), 0);
	ck_assert_uint_le(gw_ratelimit_count(rl), 3);
	/* "a" forgotten while full is the same as "a" kept: 2 tokens */
	ck_assert_int_eq(gw_ratelimit_take(rl, "a", 10.0, &w), 0);
	ck_assert_int_eq(gw_ratelimit_take(rl, "a", 10.0, &w), 0);
	ck_assert_int_eq(gw_ratelimit_take(rl, "a", 10.0, &w), RSSP_E_EXHAUSTED);
	gw_ratelimit_free(rl);
}
END_TEST

START_TEST(test_logins_are_ascii_and_folded_to_lower_case)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{"Ada@Example.ORG", "ada@example.org"},
		{"rp-0F9D6A4E-x", "rp-0f9d6a4e-x"},
		{"o'brien x@x.test", "o'brien x@x.test"},
		{"\xe2\x84\xaa" "i@example.org", NULL},  /* KELVIN SIGN */
		{"k\xc4\xb0@example.org", NULL},          /* I WITH DOT ABOVE */
		{"\xff\xfe@example.org", NULL},           /* not UTF-8 */
		{"a\tb@example.org", NULL},
		{"a\r\nb", NULL},
		{"", NULL},
	};
	char out[GW_LOGIN_MAX + 1], longname[GW_LOGIN_MAX + 2];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = gw_login_normalise(cases[i].in, out);
		if (cases[i].out == NULL) {
			ck_assert_msg(r == RSSP_E_INVAL, "case %zu accepted", i);
			ck_assert_str_eq(out, "");
		} else {
			ck_assert_int_eq(r, 0);
			ck_assert_str_eq(out, cases[i].out);
		}
	}
	memset(longname, 'a', GW_LOGIN_MAX);
	longname[GW_LOGIN_MAX] = '\0';
	ck_assert_int_eq(gw_login_normalise(longname, out), 0);
	longname[GW_LOGIN_MAX] = 'a';
	longname[GW_LOGIN_MAX + 1] = '\0';
	ck_assert_int_eq(gw_login_normalise(longname, out), RSSP_E_INVAL);
}
END_TEST

START_TEST(test_address_keys_group_an_ipv6_slash_64)
{
	char a[80], b[80];

	gw_login_addr_key("2001:db8:1:2:aaaa::1", a, sizeof(a));
	gw_login_addr_key("2001:db8:1:2:bbbb::2", b, sizeof(b));
	ck_assert_str_eq(a, b);
	ck_assert_str_eq(a, "2001:db8:1:2::/64");
	gw_login_addr_key("2001:db8:1:3::1", b, sizeof(b));
	ck_assert_str_ne(a, b);
	gw_login_addr_key("192.0.2.7", a, sizeof(a));
	ck_assert_str_eq(a, "192.0.2.7");
	gw_login_addr_key("::ffff:192.0.2.7", a, sizeof(a));
	gw_login_addr_key("::ffff:192.0.2.8", b, sizeof(b));
	ck_assert_str_ne(a, b);
}
END_TEST

START_TEST(test_waits_are_capped_per_client_and_in_total)
{
	struct gw_config cfg;
	int i;

	memset(&cfg, 0, sizeof(cfg));
	cfg.login_queue = 2;
	cfg.waits_per_client = 3;
	cfg.waits_total = 5;
	cfg.long_threads = 64;
	gw_loadcap_init(&cfg);
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(gw_wait_admit("rp-a"), 0);
	ck_assert_int_eq(gw_wait_admit("rp-a"), RSSP_E_EXHAUSTED);
	ck_assert_int_eq(gw_wait_admit("rp-b"), 0);
	ck_assert_int_eq(gw_wait_admit("rp-b"), 0);
	ck_assert_int_eq(gw_wait_admit("rp-c"), RSSP_E_UNAVAILABLE);
	gw_wait_leave("rp-a");
	ck_assert_int_eq(gw_wait_admit("rp-c"), 0);
	for (i = 0; i < 2; i++)
		gw_wait_leave("rp-a");
	gw_wait_leave("rp-b");
	gw_wait_leave("rp-b");
	gw_wait_leave("rp-c");
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(gw_wait_admit("rp-a"), 0);
	for (i = 0; i < 3; i++)
		gw_wait_leave("rp-a");
	/* logins in progress */
	ck_assert_int_eq(gw_login_admit(), 0);
	ck_assert_int_eq(gw_login_admit(), 0);
	ck_assert_int_eq(gw_login_admit(), RSSP_E_EXHAUSTED);
	gw_login_leave();
	ck_assert_int_eq(gw_login_admit(), 0);
	gw_login_leave();
	gw_login_leave();
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("limits");
	TCase *t = tcase_create("limits");
	SRunner *sr;
	int failed;

	tcase_add_test(t, test_every_key_has_a_bucket_of_its_own);
	tcase_add_test(t, test_memory_is_bounded_and_only_full_buckets_are_forgotten);
	tcase_add_test(t, test_logins_are_ascii_and_folded_to_lower_case);
	tcase_add_test(t, test_address_keys_group_an_ipv6_slash_64);
	tcase_add_test(t, test_waits_are_capped_per_client_and_in_total);
	suite_add_tcase(s, t);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
