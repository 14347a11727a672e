/* Enrolment vouchers (voucher.h) and the RA key set (ra_keys.h): the canonical bytes,
 * the strict parser, and RA signatures of both kinds checked against a set loaded from
 * a directory or a bundle. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "ra_keys.h"
#include "voucher.h"

static struct rssp_voucher
sample(void)
{
	struct rssp_voucher v;

	memset(&v, 0, sizeof(v));
	snprintf(v.user_id, sizeof(v.user_id), "0b6f2c1e-5a4d-4c1e-9f00-1234567890ab");
	snprintf(v.common_name, sizeof(v.common_name), "Zo\xc3\xab Example");
	memset(v.kak_sha256, 0xab, sizeof(v.kak_sha256));
	snprintf(v.device_uuid, sizeof(v.device_uuid), "dev-1");
	v.issued_at = 1700000000;
	v.not_after = 1700000000 + 30 * 86400;
	memset(v.ra_key_id, 0xcd, sizeof(v.ra_key_id));
	return v;
}

START_TEST(test_voucher_round_trips_and_is_framed_as_specified)
{
	struct rssp_voucher v = sample(), w;
	uint8_t *b = NULL;
	size_t len;

	ck_assert_int_eq(rssp_voucher_build(&v, &b, &len), 0);
	ck_assert_mem_eq(b, "rssp-voucher-v1", 15);
	ck_assert_int_eq(b[15], VOUCHER_USER_ID);
	ck_assert_int_eq(b[16], 0);
	ck_assert_int_eq(b[19], (int)strlen(v.user_id));
	ck_assert_uint_eq(len, 15 + 7 * 5 + strlen(v.user_id) + strlen(v.common_name) + 32 +
	    strlen(v.device_uuid) + 8 + 8 + 32);
	ck_assert_int_eq(rssp_voucher_parse(b, len, &w), 0);
	ck_assert_mem_eq(&v, &w, sizeof(v));
	free(b);
}
END_TEST

START_TEST(test_voucher_parser_refuses_bad_framing)
{
	struct rssp_voucher v = sample(), w;
	uint8_t *b = NULL, *c;
	size_t len, i;

	ck_assert_int_eq(rssp_voucher_build(&v, &b, &len), 0);
	c = malloc(len + 1);
	memcpy(c, b, len);
	c[len] = 0;
	ck_assert_int_eq(rssp_voucher_parse(c, len + 1, &w), RSSP_E_INVAL);   /* trailing */
	for (i = 0; i < len; i++)                                             /* truncated */
		ck_assert_int_eq(rssp_voucher_parse(b, i, &w), RSSP_E_INVAL);
	c[0] ^= 1;                                                             /* magic */
	ck_assert_int_eq(rssp_voucher_parse(c, len, &w), RSSP_E_INVAL);
	memcpy(c, b, len);
	c[15] = VOUCHER_COMMON_NAME;                                           /* order */
	ck_assert_int_eq(rssp_voucher_parse(c, len, &w), RSSP_E_INVAL);
	memcpy(c, b, len);
	c[19] += 1;                                                            /* length */
	ck_assert_int_eq(rssp_voucher_parse(c, len, &w), RSSP_E_INVAL);
	memcpy(c, b, len);
	c[20] = 0;                                                             /* NUL in id */
	ck_assert_int_eq(rssp_voucher_parse(c, len, &w), RSSP_E_INVAL);
	memcpy(c, b, len);
	c[20] = 0xc0;                                                          /* bad UTF-8 */
	ck_assert_int_eq(rssp_voucher_parse(c, len, &w), RSSP_E_INVAL);
	free(b);
	free(c);
}
END_TEST

START_TEST(test_voucher_builder_refuses_bad_fields_and_windows)
{
	struct rssp_voucher v;
	uint8_t *b = NULL;
	size_t len;

	v = sample();
	v.user_id[0] = '\0';
	ck_assert_int_eq(rssp_voucher_build(&v, &b, &len), RSSP_E_INVAL);
	v = sample();
	snprintf(v.common_name, sizeof(v.common_name), "Line\nbreak");
	ck_assert_int_eq(rssp_voucher_build(&v, &b, &len), RSSP_E_INVAL);
	v = sample();
	memset(v.device_uuid, 'd', RSSP_VOUCHER_MAX_ID + 1);
	ck_assert_int_eq(rssp_voucher_build(&v, &b, &len), RSSP_E_INVAL);
	v = sample();
	v.not_after = v.issued_at + 30 * 86400 + 1;
	ck_assert_int_eq(rssp_voucher_window_ok(&v), 0);
	ck_assert_int_eq(rssp_voucher_build(&v, &b, &len), RSSP_E_INVAL);
	v.not_after = v.issued_at;
	ck_assert_int_eq(rssp_voucher_build(&v, &b, &len), RSSP_E_INVAL);
	v = sample();
	ck_assert_int_eq(rssp_voucher_window_ok(&v), 1);
}
END_TEST

START_TEST(test_every_field_changes_the_bytes)
{
	struct rssp_voucher v = sample();
	uint8_t *base = NULL, *b = NULL;
	size_t blen, len;
	int i;

	ck_assert_int_eq(rssp_voucher_build(&v, &base, &blen), 0);
	for (i = 0; i < 7; i++) {
		v = sample();
		switch (i) {
		case 0: v.user_id[0] = '1'; break;
		case 1: v.common_name[0] = 'X'; break;
		case 2: v.kak_sha256[31] ^= 1; break;
		case 3: v.device_uuid[4] = '2'; break;
		case 4: v.issued_at++; break;
		case 5: v.not_after--; break;
		case 6: v.ra_key_id[0] ^= 1; break;
		}
		ck_assert_int_eq(rssp_voucher_build(&v, &b, &len), 0);
		ck_assert(len != blen || memcmp(b, base, len) != 0);
		free(b);
	}
	free(base);
}
END_TEST

/* ---- RA keys ---- */

static char dir[64];

static EVP_PKEY *
gen(const char *kind)
{
	EVP_PKEY *k = NULL;

	if (strcmp(kind, "ec") == 0)
		k = EVP_EC_gen("P-256");
	else if (strcmp(kind, "ec384") == 0)
		k = EVP_EC_gen("P-384");
	else if (strcmp(kind, "rsa-pss") == 0) {
		EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(NULL, "RSA-PSS", NULL);

		ck_assert_ptr_nonnull(c);
		ck_assert_int_eq(EVP_PKEY_keygen_init(c), 1);
		ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_keygen_bits(c, 2048), 1);
		ck_assert_int_eq(EVP_PKEY_generate(c, &k), 1);
		EVP_PKEY_CTX_free(c);
	} else
		k = EVP_RSA_gen(2048);
	ck_assert_ptr_nonnull(k);
	return k;
}

static void
write_pub(const char *path, EVP_PKEY *k, const char *mode)
{
	FILE *f = fopen(path, mode);

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(PEM_write_PUBKEY(f, k), 1);
	fclose(f);
}

static void
key_id(EVP_PKEY *k, uint8_t id[32])
{
	uint8_t *der = NULL;
	int n = i2d_PUBKEY(k, &der);

	ck_assert_int_gt(n, 0);
	SHA256(der, (size_t)n, id);
	OPENSSL_free(der);
}

static size_t
ra_sign(EVP_PKEY *k, const uint8_t *msg, size_t len, uint8_t *sig)
{
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	EVP_PKEY_CTX *p = NULL;
	size_t slen = 1024;

	ck_assert_int_eq(EVP_DigestSignInit(m, &p, EVP_sha256(), NULL, k), 1);
	if (!EVP_PKEY_is_a(k, "EC")) {
		ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_padding(p, RSA_PKCS1_PSS_PADDING), 1);
		ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_pss_saltlen(p, 32), 1);
	}
	ck_assert_int_eq(EVP_DigestSign(m, sig, &slen, msg, len), 1);
	EVP_MD_CTX_free(m);
	return slen;
}

static void
cleanup_dir(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}

START_TEST(test_ra_keys_from_a_directory_verify_ec_and_rsa_pss_vouchers)
{
	EVP_PKEY *ec = gen("ec"), *rsa = gen("rsa"), *pss = gen("rsa-pss"), *other = gen("ec");
	struct ra_keys *set = NULL;
	struct rssp_voucher v = sample();
	uint8_t *b = NULL, sig[1024], id[32], oid[32];
	char path[128], hex[65];
	size_t len, slen;
	EVP_PKEY *keys[3] = { ec, rsa, pss };
	int i;

	snprintf(dir, sizeof(dir), "/tmp/rssp-ra-test.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/a.pem", dir);
	write_pub(path, ec, "w");
	snprintf(path, sizeof(path), "%s/b.pem", dir);
	write_pub(path, rsa, "w");
	snprintf(path, sizeof(path), "%s/c.pem", dir);
	write_pub(path, pss, "w");
	snprintf(path, sizeof(path), "%s/README", dir);   /* not *.pem: ignored */
	write_pub(path, other, "w");
	ck_assert_int_eq(ra_keys_load(dir, &set), 0);
	ck_assert_uint_eq(ra_keys_count(set), 3);
	ck_assert_str_eq(ra_keys_kind(set, 0), "ec-p256");
	ck_assert_str_eq(ra_keys_kind(set, 1), "rsa-2048");
	for (i = 0; i < 3; i++) {
		key_id(keys[i], id);
		ck_assert_mem_eq(ra_keys_id(set, (size_t)i), id, 32);
		memcpy(v.ra_key_id, id, 32);
		ck_assert_int_eq(rssp_voucher_build(&v, &b, &len), 0);
		slen = ra_sign(keys[i], b, len, sig);
		ck_assert_int_eq(ra_keys_verify(set, id, b, len, sig, slen), 0);
		b[len - 1] ^= 1;
		ck_assert_int_eq(ra_keys_verify(set, id, b, len, sig, slen), RSSP_E_DENIED);
		b[len - 1] ^= 1;
		/* signed by a key the set does not hold */
		key_id(other, oid);
		slen = ra_sign(other, b, len, sig);
		ck_assert_int_eq(ra_keys_verify(set, oid, b, len, sig, slen), RSSP_E_NOTFOUND);
		ck_assert_int_eq(ra_keys_verify(set, id, b, len, sig, slen), RSSP_E_DENIED);
		free(b);
	}
	ra_key_id_hex(ra_keys_id(set, 0), hex);
	ck_assert_uint_eq(strlen(hex), 64);
	ck_assert_int_eq(ra_keys_verify(NULL, id, (const uint8_t *)"x", 1, sig, slen),
	    RSSP_E_NOTFOUND);
	ra_keys_free(set);
	cleanup_dir();
	EVP_PKEY_free(ec);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(pss);
	EVP_PKEY_free(other);
}
END_TEST

START_TEST(test_ra_keys_bundle_loads_and_bad_sets_are_refused)
{
	EVP_PKEY *ec = gen("ec"), *rsa = gen("rsa"), *p384 = gen("ec384");
	struct ra_keys *set = NULL;
	char path[128];
	FILE *f;

	snprintf(dir, sizeof(dir), "/tmp/rssp-ra-test.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/bundle.pem", dir);
	write_pub(path, ec, "w");
	write_pub(path, rsa, "a");
	ck_assert_int_eq(ra_keys_load(path, &set), 0);
	ck_assert_uint_eq(ra_keys_count(set), 2);
	ra_keys_free(set);
	set = NULL;
	write_pub(path, ec, "a");                      /* the same key twice */
	ck_assert_int_eq(ra_keys_load(path, &set), RSSP_E_INVAL);
	write_pub(path, p384, "w");                    /* P-384 is not an RA key kind */
	ck_assert_int_eq(ra_keys_load(path, &set), RSSP_E_INVAL);
	f = fopen(path, "w");                          /* a private key is not a public key */
	ck_assert_int_eq(PEM_write_PrivateKey(f, ec, NULL, NULL, 0, NULL, NULL), 1);
	fclose(f);
	ck_assert_int_eq(ra_keys_load(path, &set), RSSP_E_INVAL);
	f = fopen(path, "w");                          /* empty */
	fclose(f);
	ck_assert_int_eq(ra_keys_load(path, &set), RSSP_E_INVAL);
	snprintf(path, sizeof(path), "%s/missing.pem", dir);
	ck_assert_int_eq(ra_keys_load(path, &set), RSSP_E_IO);
	ck_assert_ptr_null(set);
	cleanup_dir();
	EVP_PKEY_free(ec);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(p384);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("voucher");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_voucher_round_trips_and_is_framed_as_specified);
	tcase_add_test(tc, test_voucher_parser_refuses_bad_framing);
	tcase_add_test(tc, test_voucher_builder_refuses_bad_fields_and_windows);
	tcase_add_test(tc, test_every_field_changes_the_bytes);
	tcase_add_test(tc, test_ra_keys_from_a_directory_verify_ec_and_rsa_pss_vouchers);
	tcase_add_test(tc, test_ra_keys_bundle_loads_and_bad_sets_are_refused);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
