/* engine/common: the algorithm table, hex/base64/buffer helpers and the one KAK SPKI
 * policy (kak_spki_parse) that the engine and the gateway share. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "algo.h"
#include "buf.h"
#include "dir_list.h"
#include "kak_verify.h"

START_TEST(test_hash_table_matches_proto_and_api)
{
	const struct rssp_hash_alg *h;

	ck_assert_ptr_null(rssp_hash_alg(RSSP__ENGINE__V1__HASH_ALGO__HASH_ALGO_UNSPECIFIED));
	ck_assert_ptr_null(rssp_hash_alg(4));
	h = rssp_hash_alg(RSSP__ENGINE__V1__HASH_ALGO__HASH_SHA384);
	ck_assert_ptr_nonnull(h);
	ck_assert_uint_eq(h->len, 48);
	ck_assert_str_eq(h->oid, "2.16.840.1.101.3.4.2.2");
	ck_assert_uint_eq(h->digest_info_len, 19);
	ck_assert_uint_eq(h->digest_info[h->digest_info_len - 1], 48); /* OCTET STRING length */
	ck_assert_ptr_eq(rssp_hash_alg_by_oid("2.16.840.1.101.3.4.2.3"), rssp_hash_alg(RSSP_HASH_SHA512));
	ck_assert_ptr_null(rssp_hash_alg_by_oid("1.3.14.3.2.26")); /* SHA-1 */
	ck_assert_ptr_null(rssp_hash_alg_by_oid(NULL));
	/* each digest's EVP length agrees */
	ck_assert_int_eq(EVP_MD_get_size(EVP_get_digestbyname(rssp_hash_alg(RSSP_HASH_SHA256)->name)), 32);
	ck_assert_int_eq(EVP_MD_get_size(EVP_get_digestbyname(rssp_hash_alg(RSSP_HASH_SHA512)->name)), 64);
}
END_TEST

START_TEST(test_key_sign_kak_tables)
{
	const struct rssp_key_alg *k;
	const struct rssp_sign_alg *sa;
	const struct rssp_kak_alg *ka;
	size_t i;

	k = rssp_key_alg_by_name("ecp384");
	ck_assert_ptr_nonnull(k);
	ck_assert_int_eq(k->algo, RSSP__ENGINE__V1__KEY_ALGO__KEY_EC_P384);
	ck_assert_int_eq(k->type, RSSP_KEYTYPE_EC);
	ck_assert_str_eq(k->group, "P-384");
	ck_assert_uint_eq(k->curve_der[0], 0x06);
	ck_assert_uint_eq(k->curve_der_len, 7);
	ck_assert_str_eq(k->curve_oid, "1.3.132.0.34");
	ck_assert_str_eq(rssp_key_alg(RSSP_KEY_EC_P256)->curve_oid, "1.2.840.10045.3.1.7");
	ck_assert_ptr_null(rssp_key_alg(RSSP_KEY_RSA2048)->curve_oid);
	ck_assert_uint_eq(rssp_key_alg(RSSP_KEY_RSA3072)->bits, 3072);
	ck_assert_ptr_null(rssp_key_alg_by_name("RSA2048"));
	ck_assert_ptr_null(rssp_key_alg(0));

	sa = rssp_sign_alg_by_oid("1.2.840.113549.1.1.10");
	ck_assert_ptr_nonnull(sa);
	ck_assert_int_eq(sa->sign_algo, RSSP__ENGINE__V1__SIGN_ALGO__SIGN_RSA_PSS);
	ck_assert_int_eq(sa->hash_algo, 0);
	sa = rssp_sign_alg_by_oid("1.2.840.10045.4.3.3");
	ck_assert_int_eq(sa->sign_algo, RSSP_SIGN_ECDSA);
	ck_assert_int_eq(sa->hash_algo, RSSP_HASH_SHA384);
	for (i = 0; rssp_sign_alg_at(i) != NULL; i++)
		;
	ck_assert_uint_eq(i, 7);
	ck_assert_str_eq(rssp_sign_alg_name(RSSP_SIGN_RSA_PKCS1, RSSP_HASH_SHA512), "rsa-pkcs1-sha512");
	ck_assert_str_eq(rssp_sign_alg_name(RSSP_SIGN_ECDSA, RSSP_HASH_SHA256), "ecdsa-sha256");
	ck_assert_ptr_null(rssp_sign_alg_name(4, RSSP_HASH_SHA256));
	ck_assert_ptr_null(rssp_sign_alg_name(RSSP_SIGN_ECDSA, 0));
	ck_assert_int_eq(rssp_sign_alg_key_type(RSSP_SIGN_RSA_PSS), RSSP_KEYTYPE_RSA);
	ck_assert_int_eq(rssp_sign_alg_key_type(0), 0);

	ka = rssp_kak_alg_by_names("RSASSA-PSS", "sha512");
	ck_assert_ptr_nonnull(ka);
	ck_assert_int_eq(ka->algo, RSSP__ENGINE__V1__KAK_ALGO__KAK_RSASSA_PSS_SHA512);
	ck_assert_str_eq(ka->name, "rsa-pss-sha512");
	ck_assert_ptr_null(rssp_kak_alg_by_names("ECDSA", "sha512"));
	ck_assert_str_eq(rssp_kak_alg(KAK_ECDSA_P256)->sign_algo, "ECDSA");
	ck_assert_ptr_null(rssp_kak_alg(4));
}
END_TEST

START_TEST(test_hex_and_base64)
{
	const uint8_t in[] = { 0x00, 0x7f, 0xab, 0xff };
	uint8_t back[4], *dec = NULL;
	char hex[9], *b64;
	size_t n = 0;

	rssp_hex(hex, in, sizeof(in));
	ck_assert_str_eq(hex, "007fabff");
	ck_assert_int_eq(rssp_unhex(back, sizeof(back), "007FabfF", 8), 0);
	ck_assert_mem_eq(back, in, sizeof(in));
	ck_assert_int_eq(rssp_unhex(back, sizeof(back), "007fabf", 7), RSSP_E_INVAL);
	ck_assert_int_eq(rssp_unhex(back, sizeof(back), "007fabfg", 8), RSSP_E_INVAL);

	b64 = rssp_b64(in, sizeof(in));
	ck_assert_str_eq(b64, "AH+r/w==");
	ck_assert_int_eq(rssp_unb64(b64, &dec, &n), 0);
	ck_assert_uint_eq(n, sizeof(in));
	ck_assert_mem_eq(dec, in, n);
	free(dec);
	free(b64);
	ck_assert_int_eq(rssp_unb64("", &dec, &n), RSSP_E_INVAL);
	ck_assert_int_eq(rssp_unb64("AH+r/w=", &dec, &n), RSSP_E_INVAL);   /* length */
	ck_assert_int_eq(rssp_unb64("AH=r/w==", &dec, &n), RSSP_E_INVAL);  /* '=' inside */
	ck_assert_int_eq(rssp_unb64("AH-r_w==", &dec, &n), RSSP_E_INVAL);  /* url alphabet */
	ck_assert_int_eq(rssp_unb64(NULL, &dec, &n), RSSP_E_INVAL);
}
END_TEST

START_TEST(test_buffer_grows_and_is_sticky)
{
	struct rssp_buf b = RSSP_BUF_INIT;
	uint8_t *out = NULL, big[1000];
	size_t n = 0, i;

	memset(big, 0xa5, sizeof(big));
	rssp_buf_putc(&b, 0x01);
	rssp_buf_put_be(&b, 0x0102030405060708ULL, 8);
	rssp_buf_put_be(&b, 0x1234, 2);
	for (i = 0; i < 5; i++)
		rssp_buf_put(&b, big, sizeof(big));
	ck_assert_int_eq(rssp_buf_take(&b, &out, &n), 0);
	ck_assert_uint_eq(n, 1 + 8 + 2 + 5000);
	ck_assert_uint_eq(out[0], 1);
	ck_assert_uint_eq(out[1], 1);
	ck_assert_uint_eq(out[8], 8);
	ck_assert_uint_eq(out[9], 0x12);
	ck_assert_uint_eq(out[10], 0x34);
	ck_assert_uint_eq(out[n - 1], 0xa5);
	ck_assert_ptr_null(b.p);
	free(out);

	rssp_buf_put_be(&b, 1, 9); /* a bad width poisons the buffer */
	rssp_buf_putc(&b, 1);
	ck_assert_uint_eq(b.len, 0);
	out = NULL;
	ck_assert_int_eq(rssp_buf_take(&b, &out, &n), RSSP_E_INVAL);
	ck_assert_ptr_null(out);
	rssp_buf_free(&b);
}
END_TEST

START_TEST(test_utf8_and_tlv)
{
	struct rssp_buf b = RSSP_BUF_INIT;
	const uint8_t *val;
	uint8_t *out = NULL;
	size_t n = 0, off = 0, vlen;
	int tag;

	ck_assert_int_eq(rssp_utf8_ok((const uint8_t *)"Jos\xc3\xa9", 5, 1), 1);
	ck_assert_int_eq(rssp_utf8_ok((const uint8_t *)"\xf0\x9f\x98\x80", 4, 0), 1);
	ck_assert_int_eq(rssp_utf8_ok((const uint8_t *)"\xc0\xaf", 2, 0), 0);    /* overlong */
	ck_assert_int_eq(rssp_utf8_ok((const uint8_t *)"\xed\xa0\x80", 3, 0), 0); /* surrogate */
	ck_assert_int_eq(rssp_utf8_ok((const uint8_t *)"\xf4\x90\x80\x80", 4, 0), 0); /* > U+10FFFF */
	ck_assert_int_eq(rssp_utf8_ok((const uint8_t *)"\xc3", 1, 0), 0);         /* cut */
	ck_assert_int_eq(rssp_utf8_ok((const uint8_t *)"a\0b", 3, 0), 0);          /* NUL */
	ck_assert_int_eq(rssp_utf8_ok((const uint8_t *)"a\tb", 3, 0), 1);
	ck_assert_int_eq(rssp_utf8_ok((const uint8_t *)"a\tb", 3, 1), 0);          /* control */
	ck_assert_int_eq(rssp_utf8_ok((const uint8_t *)"a\x7f", 2, 1), 0);         /* DEL */

	rssp_buf_put_tlv(&b, 1, "abc", 3);
	rssp_buf_put_tlv(&b, 7, "", 0);
	rssp_buf_put_tlv_hdr(&b, 9, 2);
	rssp_buf_put(&b, "xy", 2);
	ck_assert_int_eq(rssp_buf_take(&b, &out, &n), 0);
	ck_assert_uint_eq(n, 8 + 5 + 7);
	ck_assert_mem_eq(out, "\x01\x00\x00\x00\x03" "abc", 8);
	ck_assert_int_eq(rssp_tlv_next(out, n, &off, &tag, &val, &vlen), 0);
	ck_assert_int_eq(tag, 1);
	ck_assert_uint_eq(vlen, 3);
	ck_assert_mem_eq(val, "abc", 3);
	ck_assert_int_eq(rssp_tlv_next(out, n, &off, &tag, &val, &vlen), 0);
	ck_assert_int_eq(tag, 7);
	ck_assert_uint_eq(vlen, 0);
	ck_assert_int_eq(rssp_tlv_next(out, n, &off, &tag, &val, &vlen), 0);
	ck_assert_int_eq(tag, 9);
	ck_assert_mem_eq(val, "xy", 2);
	ck_assert_uint_eq(off, n);
	ck_assert_int_eq(rssp_tlv_next(out, n, &off, &tag, &val, &vlen), RSSP_E_INVAL); /* at the end */
	off = 0;
	ck_assert_int_eq(rssp_tlv_next(out, 4, &off, &tag, &val, &vlen), RSSP_E_INVAL); /* short header */
	ck_assert_int_eq(rssp_tlv_next(out, 7, &off, &tag, &val, &vlen), RSSP_E_INVAL); /* value overruns */
	ck_assert_uint_eq(off, 0);
	free(out);
}
END_TEST

static uint8_t *
spki(EVP_PKEY *k, size_t *len)
{
	uint8_t *d = NULL;
	int n = i2d_PUBKEY(k, &d);

	ck_assert_int_gt(n, 0);
	*len = (size_t)n;
	return d;
}

START_TEST(test_kak_policy_is_one)
{
	EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	EVP_PKEY *p256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	EVP_PKEY *p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	EVP_PKEY *pk = NULL;
	uint8_t *dr, *d256, *d384, *huge;
	size_t lr, l256, l384;

	dr = spki(rsa, &lr);
	d256 = spki(p256, &l256);
	d384 = spki(p384, &l384);
	ck_assert_int_eq(kak_spki_parse(dr, lr, KAK_PSS_SHA256, &pk), 0);
	ck_assert_ptr_nonnull(pk);
	EVP_PKEY_free(pk);
	pk = NULL;
	ck_assert_int_eq(kak_spki_parse(d256, l256, KAK_ECDSA_P256, &pk), 0);
	EVP_PKEY_free(pk);
	pk = NULL;
	ck_assert_int_eq(kak_spki_parse(dr, lr, 0, &pk), RSSP_E_UNSUPPORTED);
	ck_assert_int_eq(kak_spki_parse(dr, lr, KAK_ECDSA_P256, &pk), RSSP_E_UNSUPPORTED);
	ck_assert_int_eq(kak_spki_parse(d256, l256, KAK_PSS_SHA512, &pk), RSSP_E_UNSUPPORTED);
	ck_assert_int_eq(kak_spki_parse(d384, l384, KAK_ECDSA_P256, &pk), RSSP_E_UNSUPPORTED);
	ck_assert_int_eq(kak_spki_parse(dr, lr - 1, KAK_PSS_SHA256, &pk), RSSP_E_INVAL);
	ck_assert_int_eq(kak_spki_parse(dr, 0, KAK_PSS_SHA256, &pk), RSSP_E_INVAL);
	/* one size cap: a valid key followed by padding past KAK_MAX_SPKI is refused first */
	huge = calloc(1, KAK_MAX_SPKI + 1);
	memcpy(huge, dr, lr);
	ck_assert_int_eq(kak_spki_parse(huge, KAK_MAX_SPKI + 1, KAK_PSS_SHA256, &pk), RSSP_E_INVAL);
	ck_assert_ptr_null(pk);
	free(huge);
	OPENSSL_free(dr);
	OPENSSL_free(d256);
	OPENSSL_free(d384);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(p256);
	EVP_PKEY_free(p384);
}
END_TEST

/* dir_list: names with the suffix, longer than it, not hidden, sorted by bytes; the cap
 * refuses a directory with more; a missing directory is RSSP_E_IO. */
static void
touch(const char *dir, const char *name)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	fclose(f);
}

START_TEST(test_dir_list_sorts_one_suffix)
{
	static const char *const files[] = { "010_b.sql", "002_a.sql", "B.sql", "a.sql.bak",
		".hidden.sql", ".sql", "readme", "001_x.pem", "sql" };
	char dir[64], path[128], **names = NULL;
	size_t n = 99, i;

	snprintf(dir, sizeof(dir), "/tmp/rssp-dirlist-test.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		touch(dir, files[i]);
	snprintf(path, sizeof(path), "%s/sub.sql", dir);   /* a directory: listed by name too */
	ck_assert_int_eq(mkdir(path, 0700), 0);

	ck_assert_int_eq(dir_list(dir, ".sql", 0, &names, &n), 0);
	ck_assert_uint_eq(n, 4);
	ck_assert_str_eq(names[0], "002_a.sql");
	ck_assert_str_eq(names[1], "010_b.sql");
	ck_assert_str_eq(names[2], "B.sql");
	ck_assert_str_eq(names[3], "sub.sql");
	dir_list_free(names, n);

	/* a cap at the count is fine, one below refuses the directory */
	ck_assert_int_eq(dir_list(dir, ".sql", 4, &names, &n), 0);
	dir_list_free(names, n);
	names = NULL;
	n = 99;
	ck_assert_int_eq(dir_list(dir, ".sql", 3, &names, &n), RSSP_E_INVAL);
	ck_assert_ptr_null(names);
	ck_assert_uint_eq(n, 99);

	ck_assert_int_eq(dir_list(dir, ".pem", 0, &names, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(names[0], "001_x.pem");
	dir_list_free(names, n);

	/* none: an empty list, NULL */
	ck_assert_int_eq(dir_list(dir, ".crt", 0, &names, &n), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_ptr_null(names);
	dir_list_free(NULL, 0);

	ck_assert_int_eq(rmdir(path), 0);
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		ck_assert_int_eq(unlink(path), 0);
	}
	ck_assert_int_eq(dir_list(dir, ".sql", 0, &names, &n), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(rmdir(dir), 0);
	ck_assert_int_eq(dir_list(dir, ".sql", 0, &names, &n), RSSP_E_IO);
	ck_assert_int_eq(dir_list(NULL, ".sql", 0, &names, &n), RSSP_E_INVAL);
	ck_assert_int_eq(dir_list(dir, NULL, 0, &names, &n), RSSP_E_INVAL);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("common");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_hash_table_matches_proto_and_api);
	tcase_add_test(tc, test_key_sign_kak_tables);
	tcase_add_test(tc, test_hex_and_base64);
	tcase_add_test(tc, test_buffer_grows_and_is_sticky);
	tcase_add_test(tc, test_utf8_and_tlv);
	tcase_add_test(tc, test_kak_policy_is_one);
	tcase_add_test(tc, test_dir_list_sorts_one_suffix);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
