/* The canonical authData builder: framing, determinism, and that every field counts. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "authdata.h"

static const uint8_t kak[] = { 0x30, 0x03, 0x02, 0x01, 0x01 };
static const uint8_t nonce[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
static uint8_t h1[32], h2[32];
static const uint8_t *hashes[2] = { h1, h2 };

static struct rssp_approval_fields
approval(void)
{
	struct rssp_approval_fields f = {
		.approval_id = "req-1", .credential_id = "cred-1", .owner_id = "user-1",
		.device_uuid = "dev-1", .kak_spki = kak, .kak_spki_len = sizeof(kak),
		.hash_algo = 1, .hashes = hashes, .n_hashes = 2, .hash_len = 32,
		.num_signatures = 2, .rp_name = "Bank", .description = "Loan contract",
		.nonce = nonce, .nonce_len = sizeof(nonce), .expires_at = 1700000000,
	};
	return f;
}

static int
count_cb(void *arg, int tag, const uint8_t *v, size_t n)
{
	(void)tag; (void)v; (void)n;
	(*(int *)arg)++;
	return 0;
}

START_TEST(test_approval_is_deterministic_and_well_framed)
{
	struct rssp_approval_fields f = approval();
	uint8_t *a = NULL, *b = NULL;
	size_t alen, blen;
	int purpose = 0, fields = 0;

	ck_assert_int_eq(rssp_authdata_approval(&f, &a, &alen), 0);
	ck_assert_int_eq(rssp_authdata_approval(&f, &b, &blen), 0);
	ck_assert_uint_eq(alen, blen);
	ck_assert_mem_eq(a, b, alen);
	ck_assert_int_eq(rssp_authdata_walk(a, alen, &purpose, count_cb, &fields), 0);
	ck_assert_int_eq(purpose, RSSP_AUTHDATA_APPROVAL);
	ck_assert_int_eq(fields, AD_APP_EXPIRES_AT);
	free(a);
	free(b);
}
END_TEST

START_TEST(test_every_approval_field_changes_the_bytes)
{
	struct rssp_approval_fields base = approval(), f;
	uint8_t *a = NULL, *b = NULL, other[32];
	const uint8_t *otherhashes[2] = { h1, other };
	size_t alen, blen;
	int i;

	memset(other, 0x55, sizeof(other));
	ck_assert_int_eq(rssp_authdata_approval(&base, &a, &alen), 0);
	for (i = 0; i < 12; i++) {
		f = base;
		switch (i) {
		case 0: f.approval_id = "req-2"; break;
		case 1: f.credential_id = "cred-2"; break;
		case 2: f.owner_id = "user-2"; break;
		case 3: f.device_uuid = "dev-2"; break;
		case 4: f.kak_spki_len = 4; break;
		case 5: f.hashes = otherhashes; break;
		case 6: f.n_hashes = 1; break;
		case 7: f.num_signatures = 3; break;
		case 8: f.rp_name = "Bank2"; break;
		case 9: f.description = "Loan contract!"; break;
		case 10: f.expires_at++; break;
		case 11: f.nonce = nonce + 0; f.nonce_len = 16; f.rp_name = "bank"; break;
		}
		ck_assert_int_eq(rssp_authdata_approval(&f, &b, &blen), 0);
		ck_assert_msg(alen != blen || memcmp(a, b, alen) != 0, "field %d ignored", i);
		free(b);
	}
	free(a);
}
END_TEST

START_TEST(test_approval_refuses_bad_fields)
{
	struct rssp_approval_fields f;
	uint8_t *a = NULL;
	size_t alen;
	char longid[RSSP_MAX_ID_LEN + 2];

	memset(longid, 'x', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = '\0';
	f = approval(); f.hash_algo = 9;
	ck_assert_int_eq(rssp_authdata_approval(&f, &a, &alen), RSSP_E_INVAL);
	f = approval(); f.hash_len = 48;
	ck_assert_int_eq(rssp_authdata_approval(&f, &a, &alen), RSSP_E_INVAL);
	f = approval(); f.n_hashes = 0;
	ck_assert_int_eq(rssp_authdata_approval(&f, &a, &alen), RSSP_E_INVAL);
	f = approval(); f.nonce_len = 8;
	ck_assert_int_eq(rssp_authdata_approval(&f, &a, &alen), RSSP_E_INVAL);
	f = approval(); f.credential_id = longid;
	ck_assert_int_eq(rssp_authdata_approval(&f, &a, &alen), RSSP_E_INVAL);
	f = approval(); f.description = NULL;
	ck_assert_int_eq(rssp_authdata_approval(&f, &a, &alen), RSSP_E_INVAL);
}
END_TEST

START_TEST(test_activation_builds_and_walk_refuses_bad_framing)
{
	struct rssp_activation_fields f = {
		.credential_id = "c", .owner_id = "u", .device_uuid = "d", .kak_spki = kak,
		.kak_spki_len = sizeof(kak), .kak_algo = 3, .key_algo = 1, .subject_cn = "Jane",
		.validity_days = 365, .nonce = nonce, .nonce_len = 16, .expires_at = 1,
	};
	uint8_t *a = NULL;
	size_t alen;
	int purpose, fields = 0;

	ck_assert_int_eq(rssp_authdata_activation(&f, &a, &alen), 0);
	ck_assert_int_eq(rssp_authdata_walk(a, alen, &purpose, count_cb, &fields), 0);
	ck_assert_int_eq(purpose, RSSP_AUTHDATA_ACTIVATION);
	ck_assert_int_eq(fields, AD_ACT_EXPIRES_AT);
	ck_assert_int_eq(rssp_authdata_walk(a, alen - 1, &purpose, NULL, NULL), RSSP_E_INVAL);
	a[0] ^= 1;
	ck_assert_int_eq(rssp_authdata_walk(a, alen, &purpose, NULL, NULL), RSSP_E_INVAL);
	free(a);
	f.validity_days = 0;
	ck_assert_int_eq(rssp_authdata_activation(&f, &a, &alen), RSSP_E_INVAL);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("authdata");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	memset(h1, 0x11, sizeof(h1));
	memset(h2, 0x22, sizeof(h2));
	tcase_add_test(tc, test_approval_is_deterministic_and_well_framed);
	tcase_add_test(tc, test_every_approval_field_changes_the_bytes);
	tcase_add_test(tc, test_approval_refuses_bad_fields);
	tcase_add_test(tc, test_activation_builds_and_walk_refuses_bad_framing);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
