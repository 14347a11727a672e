/* The SAD codec and the cache map: pure functions, no token. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvmap.h"
#include "sad.h"

static struct sad *
sample(size_t n)
{
	struct sad *s = calloc(1, sizeof(*s));
	size_t i;

	memset(s->id, 7, sizeof(s->id));
	s->expires_at = 1700000000;
	s->hash_algo = 1;
	s->hash_len = 32;
	s->num_signatures = (uint32_t)n;
	strcpy(s->credential_id, "cred-1");
	strcpy(s->key_label, "cred-1#0011aabb");
	s->n_hashes = n;
	s->hashes = malloc(n * 32);
	for (i = 0; i < n; i++)
		memset(s->hashes + i * 32, (int)(n - i), 32);
	return s;
}

START_TEST(test_sad_round_trips_and_sorts_hashes)
{
	struct sad *s = sample(5), *p = NULL;
	uint8_t *body = NULL, probe[32];
	size_t len = 0, bodylen = 0;

	ck_assert_int_eq(sad_encode_body(s, &body, &len), 0);
	memset(body + len, 0xee, SAD_MAC_LEN);
	ck_assert_int_eq(sad_parse(body, len + SAD_MAC_LEN, &p, &bodylen), 0);
	ck_assert_uint_eq(bodylen, len);
	ck_assert_mem_eq(p->id, s->id, SAD_ID_LEN);
	ck_assert_int_eq(p->expires_at, 1700000000);
	ck_assert_str_eq(p->credential_id, "cred-1");
	ck_assert_str_eq(p->key_label, "cred-1#0011aabb");
	ck_assert_uint_eq(p->n_hashes, 5);
	ck_assert_uint_eq(p->num_signatures, 5);
	memset(probe, 3, sizeof(probe));
	ck_assert(sad_has_hash(p, probe));
	memset(probe, 9, sizeof(probe));
	ck_assert(!sad_has_hash(p, probe));
	ck_assert_int_lt(memcmp(p->hashes, p->hashes + 32, 32), 0);
	{
		uint8_t id[SAD_ID_LEN];

		ck_assert_int_eq(sad_peek_id(body, len + SAD_MAC_LEN, id), 0);
		ck_assert_mem_eq(id, s->id, SAD_ID_LEN);
		ck_assert_int_eq(sad_peek_id(body, 11 + SAD_ID_LEN, id), RSSP_E_INVAL);
	}
	sad_free(p);
	sad_free(s);
	free(body);
}
END_TEST

START_TEST(test_sad_parse_refuses_every_truncation_and_trailing_byte)
{
	struct sad *s = sample(3), *p = NULL;
	uint8_t *body = NULL, *big;
	size_t len = 0, bodylen, cut;

	ck_assert_int_eq(sad_encode_body(s, &body, &len), 0);
	memset(body + len, 0, SAD_MAC_LEN);
	for (cut = 0; cut < len + SAD_MAC_LEN; cut++) {
		p = NULL;
		ck_assert_int_eq(sad_parse(body, cut, &p, &bodylen), RSSP_E_INVAL);
		ck_assert_ptr_null(p);
	}
	big = calloc(1, len + SAD_MAC_LEN + 1);
	memcpy(big, body, len);
	ck_assert_int_eq(sad_parse(big, len + SAD_MAC_LEN + 1, &p, &bodylen), RSSP_E_INVAL);
	free(big);
	body[0] ^= 1; /* magic */
	ck_assert_int_eq(sad_parse(body, len + SAD_MAC_LEN, &p, &bodylen), RSSP_E_INVAL);
	sad_free(s);
	free(body);
}
END_TEST

START_TEST(test_sad_parse_survives_random_bytes)
{
	uint8_t buf[512];
	struct sad *p;
	size_t bodylen, i, n;

	srand(42);
	for (i = 0; i < 20000; i++) {
		n = (size_t)rand() % sizeof(buf);
		for (size_t j = 0; j < n; j++)
			buf[j] = (uint8_t)rand();
		if (n > 11 && (i & 1))
			memcpy(buf, "rssp-sad-v1", 11);
		p = NULL;
		if (sad_parse(buf, n, &p, &bodylen) == 0)
			sad_free(p);
	}
}
END_TEST

static int
drop_odd(void *arg, const void *key, size_t keylen, void *val)
{
	return ((uintptr_t)val & 1) != 0;
}

START_TEST(test_kvmap_stores_finds_and_purges)
{
	struct kvmap *m = kvmap_new();
	char key[32];
	uintptr_t i;

	for (i = 1; i <= 5000; i++) {
		snprintf(key, sizeof(key), "k%lu", (unsigned long)i);
		ck_assert_int_eq(kvmap_put(m, key, strlen(key), (void *)i), 0);
	}
	ck_assert_int_eq(kvmap_put(m, "k7", 2, (void *)1), RSSP_E_CONFLICT);
	ck_assert_ptr_eq(kvmap_get(m, "k4999", 5), (void *)4999);
	kvmap_purge(m, drop_odd, NULL, NULL);
	ck_assert_uint_eq(kvmap_count(m), 2500);
	ck_assert_ptr_null(kvmap_get(m, "k7", 2));
	ck_assert_ptr_eq(kvmap_del(m, "k8", 2), (void *)8);
	ck_assert_ptr_null(kvmap_get(m, "k8", 2));
	kvmap_free(m, NULL);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("sad");
	TCase *tc = tcase_create("codec");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_sad_round_trips_and_sorts_hashes);
	tcase_add_test(tc, test_sad_parse_refuses_every_truncation_and_trailing_byte);
	tcase_add_test(tc, test_sad_parse_survives_random_bytes);
	tcase_add_test(tc, test_kvmap_stores_finds_and_purges);
	tcase_set_timeout(tc, 120);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
