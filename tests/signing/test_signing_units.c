/* The signing module's parsers and KAK checks, table-driven, without a server. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "sic.h"
#include "signing.h"

START_TEST(test_base64_decoder_accepts_only_padded_standard_base64)
{
	static const struct {
		const char *in;
		const char *out; /* NULL: refused */
	} cases[] = {
		{ "YQ==", "a" }, { "YWI=", "ab" }, { "YWJj", "abc" }, { "YWJjZA==", "abcd" },
		{ "", NULL }, { "YQ", NULL }, { "YQ=", NULL }, { "Y===", NULL }, { "YQ==YQ==", NULL },
		{ "YW J", NULL }, { "YWJ\n", NULL }, { "YW-j", NULL }, { "YW_j", NULL }, { "=YWJ", NULL },
		{ "Y=Jj", NULL },
	};
	size_t i, n;
	uint8_t *out;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		out = NULL;
		n = 0;
		if (cases[i].out == NULL) {
			ck_assert_msg(rssp_unb64(cases[i].in, &out, &n) == RSSP_E_INVAL, "accepted '%s'", cases[i].in);
			ck_assert_ptr_null(out);
		} else {
			ck_assert_msg(rssp_unb64(cases[i].in, &out, &n) == 0, "refused '%s'", cases[i].in);
			ck_assert_uint_eq(n, strlen(cases[i].out));
			ck_assert_mem_eq(out, cases[i].out, n);
			free(out);
		}
	}
}
END_TEST

START_TEST(test_base64_and_bytea_round_trip_every_length)
{
	uint8_t in[70], *out;
	char *s;
	size_t len, n;

	for (len = 1; len < sizeof(in); len++) {
		for (n = 0; n < len; n++)
			in[n] = (uint8_t)(n * 37 + len);
		s = rssp_b64(in, len);
		ck_assert_int_eq(rssp_unb64(s, &out, &n), 0);
		ck_assert_uint_eq(n, len);
		ck_assert_mem_eq(out, in, len);
		free(out);
		free(s);
		s = sg_bytea(in, len);
		ck_assert_int_eq(sg_unbytea(s, &out, &n), 0);
		ck_assert_uint_eq(n, len);
		ck_assert_mem_eq(out, in, len);
		free(out);
		free(s);
	}
	ck_assert_int_eq(sg_unbytea("\\x0", &out, &n), RSSP_E_INVAL);
	ck_assert_int_eq(sg_unbytea("\\xzz", &out, &n), RSSP_E_INVAL);
	ck_assert_int_eq(sg_unbytea("0011", &out, &n), RSSP_E_INVAL);
}
END_TEST

/* The gateway's lookups are those of the shared table (algo.h). */
static int
hash_algo_from_oid(const char *oid)
{
	return rssp_hash_alg_by_oid(oid) != NULL ? rssp_hash_alg_by_oid(oid)->algo : 0;
}

static const char *
hash_algo_oid(int hash_algo)
{
	return rssp_hash_alg(hash_algo) != NULL ? rssp_hash_alg(hash_algo)->oid : "";
}

static int
key_algo_parse(const char *name)
{
	return rssp_key_alg_by_name(name) != NULL ? rssp_key_alg_by_name(name)->algo : 0;
}

START_TEST(test_uuids_oids_and_key_algorithms_are_recognised_exactly)
{
	ck_assert(gw_is_uuid("0f9d6a4e-2b1c-4d3e-8f7a-1234567890ab"));
	ck_assert(!gw_is_uuid("0f9d6a4e-2b1c-4d3e-8f7a-1234567890a"));
	ck_assert(!gw_is_uuid("0f9d6a4e-2b1c-4d3e-8f7a-1234567890abc"));
	ck_assert(!gw_is_uuid("0f9d6a4e2b1c-4d3e-8f7a-1234567890ab-"));
	ck_assert(!gw_is_uuid("0f9d6a4e-2b1c-4d3e-8f7a-1234567890ag"));
	ck_assert(!gw_is_uuid("'; DROP TABLE accounts; --"));
	ck_assert_int_eq(hash_algo_from_oid("2.16.840.1.101.3.4.2.1"), RSSP_HASH_SHA256);
	ck_assert_int_eq(hash_algo_from_oid("2.16.840.1.101.3.4.2.2"), RSSP_HASH_SHA384);
	ck_assert_int_eq(hash_algo_from_oid("2.16.840.1.101.3.4.2.3"), RSSP_HASH_SHA512);
	ck_assert_int_eq(hash_algo_from_oid("1.3.14.3.2.26"), 0); /* SHA-1 */
	ck_assert_int_eq(hash_algo_from_oid("2.16.840.1.101.3.4.2.1.0"), 0);
	ck_assert_str_eq(hash_algo_oid(RSSP_HASH_SHA384), "2.16.840.1.101.3.4.2.2");
	ck_assert_int_eq(key_algo_parse("rsa2048"), RSSP_KEY_RSA2048);
	ck_assert_int_eq(key_algo_parse("ecp384"), RSSP_KEY_EC_P384);
	ck_assert_int_eq(key_algo_parse("RSA2048"), 0);
	ck_assert_int_eq(key_algo_parse("rsa1024"), 0);
}
END_TEST

static uint8_t *
spki(EVP_PKEY *k, size_t *lenp)
{
	unsigned char *der = NULL;
	int n = i2d_PUBKEY(k, &der);

	ck_assert_int_gt(n, 0);
	*lenp = (size_t)n;
	return der;
}

START_TEST(test_kak_parse_allows_only_rsa_2048_pss_and_p256_ecdsa)
{
	EVP_PKEY *rsa1024 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	EVP_PKEY *rsa2048 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	EVP_PKEY *p256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	EVP_PKEY *p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	uint8_t *d1024, *d2048, *d256, *d384, *ded, junk[40] = { 0x30, 0x26 };
	size_t l1024, l2048, l256, l384, led;
	EVP_PKEY *pk = NULL;
	int algo = 0;

	d1024 = spki(rsa1024, &l1024);
	d2048 = spki(rsa2048, &l2048);
	d256 = spki(p256, &l256);
	d384 = spki(p384, &l384);
	ded = spki(ed, &led);
	ck_assert_int_eq(sic_kak_parse(d2048, l2048, "RSASSA-PSS", "sha256", &algo, &pk), 0);
	ck_assert_int_eq(algo, 1);
	EVP_PKEY_free(pk);
	ck_assert_int_eq(sic_kak_parse(d2048, l2048, "RSASSA-PSS", "sha512", &algo, &pk), 0);
	ck_assert_int_eq(algo, 2);
	EVP_PKEY_free(pk);
	ck_assert_int_eq(sic_kak_parse(d256, l256, "ECDSA", "sha256", &algo, &pk), 0);
	ck_assert_int_eq(algo, 3);
	EVP_PKEY_free(pk);
	pk = NULL;
	ck_assert_int_eq(sic_kak_parse(d1024, l1024, "RSASSA-PSS", "sha256", &algo, &pk), RSSP_E_INVAL);
	ck_assert_int_eq(sic_kak_parse(d256, l256, "ECDSA", "sha512", &algo, &pk), RSSP_E_UNSUPPORTED);
	ck_assert_int_eq(sic_kak_parse(d384, l384, "ECDSA", "sha256", &algo, &pk), RSSP_E_UNSUPPORTED);
	ck_assert_int_eq(sic_kak_parse(d256, l256, "RSASSA-PSS", "sha256", &algo, &pk), RSSP_E_UNSUPPORTED);
	ck_assert_int_eq(sic_kak_parse(d2048, l2048, "ECDSA", "sha256", &algo, &pk), RSSP_E_UNSUPPORTED);
	ck_assert_int_eq(sic_kak_parse(ded, led, "ECDSA", "sha256", &algo, &pk), RSSP_E_UNSUPPORTED);
	ck_assert_int_eq(sic_kak_parse(junk, sizeof(junk), "ECDSA", "sha256", &algo, &pk), RSSP_E_INVAL);
	ck_assert_int_eq(sic_kak_parse(d2048, l2048 - 1, "RSASSA-PSS", "sha256", &algo, &pk), RSSP_E_INVAL);
	ck_assert_ptr_null(pk);
	OPENSSL_free(d1024);
	OPENSSL_free(d2048);
	OPENSSL_free(d256);
	OPENSSL_free(d384);
	OPENSSL_free(ded);
	EVP_PKEY_free(rsa1024);
	EVP_PKEY_free(rsa2048);
	EVP_PKEY_free(p256);
	EVP_PKEY_free(p384);
	EVP_PKEY_free(ed);
}
END_TEST

static size_t
pss_sign(EVP_PKEY *k, int saltlen, const uint8_t *m, size_t mlen, uint8_t *sig, size_t cap)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	size_t n = cap;

	ck_assert_int_eq(EVP_DigestSignInit(ctx, &pctx, EVP_sha256(), NULL, k), 1);
	ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING), 1);
	ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, saltlen), 1);
	ck_assert_int_eq(EVP_DigestSign(ctx, sig, &n, m, mlen), 1);
	EVP_MD_CTX_free(ctx);
	return n;
}

START_TEST(test_kak_verify_wants_pss_with_salt_as_long_as_the_hash)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	const uint8_t msg[] = "the raw challenge bytes";
	uint8_t sig[512];
	size_t n;

	n = pss_sign(k, RSA_PSS_SALTLEN_DIGEST, msg, sizeof(msg), sig, sizeof(sig));
	ck_assert_int_eq(kak_verify(k, 1, msg, sizeof(msg), sig, n), 0);
	ck_assert_int_eq(kak_verify(k, 1, msg, sizeof(msg) - 1, sig, n), RSSP_E_DENIED);
	ck_assert_int_eq(kak_verify(k, 2, msg, sizeof(msg), sig, n), RSSP_E_DENIED);
	sig[10] ^= 1;
	ck_assert_int_eq(kak_verify(k, 1, msg, sizeof(msg), sig, n), RSSP_E_DENIED);
	n = pss_sign(k, 0, msg, sizeof(msg), sig, sizeof(sig));
	ck_assert_int_eq(kak_verify(k, 1, msg, sizeof(msg), sig, n), RSSP_E_DENIED);
	ck_assert_int_eq(kak_verify(k, 1, msg, sizeof(msg), sig, 0), RSSP_E_DENIED);
	EVP_PKEY_free(k);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("signing_units");
	TCase *tc = tcase_create("parsers");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_base64_decoder_accepts_only_padded_standard_base64);
	tcase_add_test(tc, test_base64_and_bytea_round_trip_every_length);
	tcase_add_test(tc, test_uuids_oids_and_key_algorithms_are_recognised_exactly);
	tcase_add_test(tc, test_kak_parse_allows_only_rsa_2048_pss_and_p256_ecdsa);
	tcase_add_test(tc, test_kak_verify_wants_pss_with_salt_as_long_as_the_hash);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
