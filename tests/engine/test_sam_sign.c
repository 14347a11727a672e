/* The SignHash handler (engine/sam_sign.c) against a real SoftHSM2 token
 * (sam_fixture.h): every fitting algorithm verified with OpenSSL, PSS salts, a thousand
 * hashes, SADs of another credential, forged, expired, exhausted, concurrent callers. */
#include <check.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <p11-kit/pkcs11.h>

#include <rssp/engine/v1/engine.pb-c.h>

#include "authdata.h"
#include "fixture.h"
#include "ra_keys.h"
#include "sam.h"
#include "voucher.h"

#include "sam_fixture.h"

START_TEST(test_signhash_signs_with_every_fitting_algorithm_and_openssl_verifies)
{
	int i, sa, ha;

	for (i = 0; i < 4; i++) {
		struct cred *c = &creds[i];
		int rsa = c->key_algo == KEY_RSA2048 || c->key_algo == KEY_RSA3072;

		for (sa = S_PKCS1; sa <= S_ECDSA; sa++) {
			if (rsa != (sa != S_ECDSA))
				continue;
			for (ha = H256; ha <= H512; ha++) {
				struct appr p;
				Rssp__Engine__V1__SignHashResponse *resp = NULL;
				struct sam_audit au;
				size_t sadlen, k;
				uint8_t *sad = mint(c, &p, ha, 3, 3, &sadlen);

				ck_assert_int_eq(sign_hashes(c->id, sad, sadlen, ha, sa,
				    (const uint8_t (*)[64])p.hashes, NULL, 3, &resp, &au), 0);
				ck_assert_str_eq(au.event, "signhash");
				ck_assert_str_eq(au.key_label, c->label);
				ck_assert_uint_eq(strlen(au.sad_id), 32);
				for (k = 0; k < 3; k++)
					ck_assert_msg(verify_with_cert(c->cert, sa, ha, p.hashes[k],
					    resp->signatures[k].data, resp->signatures[k].len),
					    "%s sign %d hash %d #%zu", c->id, sa, ha, k);
				rssp__engine__v1__sign_hash_response__free_unpacked(resp, NULL);
				free(sad);
			}
		}
	}
}
END_TEST

START_TEST(test_signhash_pss_takes_any_salt_up_to_the_keys_maximum)
{
	/* emLen - hLen - 2: RSA-2048 with SHA-256 222, RSA-3072 with SHA-512 318 */
	static const struct { int cred, hash; long salts[4]; long max; } cases[] = {
		{ 0, H256, { 0, 20, 32, 222 }, 222 },
		{ 1, H512, { 0, 1, 64, 318 }, 318 },
	};
	size_t i, j, k;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cred *c = &creds[cases[i].cred];
		struct appr p;
		size_t sadlen;
		uint8_t *sad = mint(c, &p, cases[i].hash, 2, 10, &sadlen);
		struct sam_audit au;

		for (j = 0; j < 4; j++) {
			Rssp__Engine__V1__SignHashResponse *resp = NULL;

			pss_salt = cases[i].salts[j];
			ck_assert_int_eq(sign_hashes(c->id, sad, sadlen, cases[i].hash, S_PSS,
			    (const uint8_t (*)[64])p.hashes, NULL, 2, &resp, NULL), 0);
			for (k = 0; k < 2; k++)
				ck_assert_msg(verify_with_cert(c->cert, S_PSS, cases[i].hash, p.hashes[k],
				    resp->signatures[k].data, resp->signatures[k].len),
				    "%s salt %ld #%zu", c->id, pss_salt, k);
			rssp__engine__v1__sign_hash_response__free_unpacked(resp, NULL);
		}
		/* one byte over the maximum: refused before the token sees it, nothing counted */
		pss_salt = cases[i].max + 1;
		ck_assert_int_eq(sign_hashes(c->id, sad, sadlen, cases[i].hash, S_PSS,
		    (const uint8_t (*)[64])p.hashes, NULL, 1, NULL, &au), RSSP_E_INVAL);
		ck_assert_ptr_nonnull(strstr(au.reason, "salt"));
		/* PSS parameters with another algorithm */
		pss_salt = 32;
		ck_assert_int_eq(sign_hashes(c->id, sad, sadlen, cases[i].hash, S_PKCS1,
		    (const uint8_t (*)[64])p.hashes, NULL, 1, NULL, &au), RSSP_E_INVAL);
		ck_assert_ptr_nonnull(strstr(au.reason, "pss"));
		pss_salt = -1;
		/* 8 used, 2 left: the refusals did not spend any */
		ck_assert_int_eq(sign_hashes(c->id, sad, sadlen, cases[i].hash, S_PSS,
		    (const uint8_t (*)[64])p.hashes, NULL, 2, NULL, NULL), 0);
		free(sad);
	}
}
END_TEST

START_TEST(test_a_thousand_hashes_fit_the_message_limits_and_each_can_be_signed)
{
	static struct appr p;
	static uint8_t pick[RSSP_MAX_HASHES][64];
	Rssp__Engine__V1__SignHashResponse *resp = NULL;
	struct sam_audit au;
	size_t sadlen, i;
	uint8_t *sad, *req;
	size_t reqlen;

	appr_init(&p, &creds[2], H512, RSSP_MAX_HASHES, RSSP_MAX_HASHES);
	{
		uint8_t *sig;
		size_t siglen;

		appr_sign(&p, &sig, &siglen);
		appr_pack(&p, sig, siglen, &req, &reqlen);
		ck_assert_uint_le(reqlen, SAM_MAX_AUTHORIZE_MSG);
		free(req);
		ck_assert_int_eq(appr_call(&p, sig, siglen, &sad, &sadlen, NULL), 0);
		free(sig);
	}
	/* all of them, in reverse order, in one call: the largest SignHash there is */
	for (i = 0; i < RSSP_MAX_HASHES; i++)
		memcpy(pick[i], p.hashes[RSSP_MAX_HASHES - 1 - i], 64);
	ck_assert_uint_le(sadlen + RSSP_MAX_HASHES * (64 + 3) + 200, SAM_MAX_SIGNHASH_MSG);
	ck_assert_int_eq(sign_hashes(creds[2].id, sad, sadlen, H512, S_ECDSA,
	    (const uint8_t (*)[64])pick, NULL, RSSP_MAX_HASHES, &resp, &au), 0);
	ck_assert_uint_eq(au.signatures, RSSP_MAX_HASHES);
	for (i = 0; i < RSSP_MAX_HASHES; i += 97)
		ck_assert(verify_with_cert(creds[2].cert, S_ECDSA, H512, pick[i],
		    resp->signatures[i].data, resp->signatures[i].len));
	rssp__engine__v1__sign_hash_response__free_unpacked(resp, NULL);
	ck_assert_int_eq(sign_hashes(creds[2].id, sad, sadlen, H512, S_ECDSA,
	    (const uint8_t (*)[64])pick, NULL, 1, NULL, &au), RSSP_E_EXHAUSTED);
	free(sad);
}
END_TEST

START_TEST(test_signhash_refuses_a_sad_of_another_credential)
{
	struct appr p;
	struct sam_audit au;
	size_t sadlen;
	uint8_t *sad = mint(&creds[2], &p, H256, 1, 1, &sadlen);

	ck_assert_int_eq(sign_hashes(creds[3].id, sad, sadlen, H256, S_ECDSA,
	    (const uint8_t (*)[64])p.hashes, NULL, 1, NULL, &au), RSSP_E_DENIED);
	ck_assert_str_eq(au.reason, "sad of another credential");
	/* and it was not spent */
	ck_assert_int_eq(sign_hashes(creds[2].id, sad, sadlen, H256, S_ECDSA,
	    (const uint8_t (*)[64])p.hashes, NULL, 1, NULL, NULL), 0);
	free(sad);
}
END_TEST

START_TEST(test_signhash_refuses_forged_truncated_and_garbage_sads)
{
	struct appr p;
	struct sam_audit au;
	size_t sadlen, i;
	uint8_t *sad = mint(&creds[2], &p, H256, 1, 1000, &sadlen), *f, garbage[300];
	const uint8_t (*h)[64] = (const uint8_t (*)[64])p.hashes;

	f = malloc(sadlen + 1);
	/* every single bit flip in the SAD: in the id, the counts, the hashes, the MAC */
	for (i = 0; i < sadlen; i++) {
		memcpy(f, sad, sadlen);
		f[i] ^= 0x10;
		ck_assert_msg(sign_hashes(creds[2].id, f, sadlen, H256, S_ECDSA, h, NULL, 1, NULL,
		    &au) == RSSP_E_DENIED, "flip at %zu", i);
	}
	for (i = 0; i < sadlen; i += 7)
		ck_assert_int_eq(sign_hashes(creds[2].id, sad, i, H256, S_ECDSA, h, NULL, 1, NULL,
		    &au), RSSP_E_DENIED);
	memcpy(f, sad, sadlen);
	f[sadlen] = 0;
	ck_assert_int_eq(sign_hashes(creds[2].id, f, sadlen + 1, H256, S_ECDSA, h, NULL, 1, NULL,
	    &au), RSSP_E_DENIED);
	for (i = 0; i < 20; i++) {
		RAND_bytes(garbage, sizeof(garbage));
		if (i & 1)
			memcpy(garbage, sad, 40); /* a plausible header, then noise */
		ck_assert_int_eq(sign_hashes(creds[2].id, garbage, 40 + i * 13, H256, S_ECDSA, h,
		    NULL, 1, NULL, &au), RSSP_E_DENIED);
	}
	/* the genuine one still works: forgeries spent nothing */
	ck_assert_int_eq(sign_hashes(creds[2].id, sad, sadlen, H256, S_ECDSA, h, NULL, 1, NULL, NULL), 0);
	free(f);
	free(sad);
}
END_TEST

START_TEST(test_signhash_refuses_an_expired_sad)
{
	struct appr p;
	struct sam_audit au;
	size_t sadlen;
	uint8_t *sad = mint(&creds[2], &p, H256, 1, 2, &sadlen);
	const uint8_t (*h)[64] = (const uint8_t (*)[64])p.hashes;

	ck_assert_int_eq(sign_hashes(creds[2].id, sad, sadlen, H256, S_ECDSA, h, NULL, 1, NULL, NULL), 0);
	sam_set_clock_skew(S, (int64_t)cfg.sad_ttl + 1);
	ck_assert_int_eq(sign_hashes(creds[2].id, sad, sadlen, H256, S_ECDSA, h, NULL, 1, NULL, &au),
	    RSSP_E_EXPIRED);
	ck_assert_str_eq(au.reason, "sad expired");
	sam_set_clock_skew(S, 0);
	free(sad);
}
END_TEST

START_TEST(test_signhash_refuses_a_hash_not_in_the_sad)
{
	struct appr p;
	struct sam_audit au;
	size_t sadlen;
	uint8_t *sad = mint(&creds[0], &p, H256, 2, 2, &sadlen);
	uint8_t h[2][64];

	memcpy(h[0], p.hashes[0], 64);
	RAND_bytes(h[1], 64);
	ck_assert_int_eq(sign_hashes(creds[0].id, sad, sadlen, H256, S_PKCS1,
	    (const uint8_t (*)[64])h, NULL, 2, NULL, &au), RSSP_E_DENIED);
	ck_assert_str_eq(au.reason, "hash not in sad");
	free(sad);
}
END_TEST

START_TEST(test_signhash_refuses_bad_algorithms_and_digest_lengths)
{
	struct appr p;
	struct sam_audit au;
	size_t sadlen, lens[1] = { 31 };
	uint8_t *sad = mint(&creds[0], &p, H256, 1, 5, &sadlen);
	uint8_t *esad;
	size_t esadlen;
	struct appr ep;
	const uint8_t (*h)[64] = (const uint8_t (*)[64])p.hashes;

	ck_assert_int_eq(sign_hashes(creds[0].id, sad, sadlen, H256, S_PKCS1, h, lens, 1, NULL, &au),
	    RSSP_E_INVAL);
	ck_assert_str_eq(au.reason, "digest length mismatch");
	ck_assert_int_eq(sign_hashes(creds[0].id, sad, sadlen, 0, S_PKCS1, h, NULL, 1, NULL, &au),
	    RSSP_E_UNSUPPORTED);
	ck_assert_str_eq(au.reason, "unknown hash algorithm");
	ck_assert_int_eq(sign_hashes(creds[0].id, sad, sadlen, H256, 4, h, NULL, 1, NULL, &au),
	    RSSP_E_UNSUPPORTED);
	ck_assert_str_eq(au.reason, "unknown sign algorithm");
	ck_assert_int_eq(sign_hashes(creds[0].id, sad, sadlen, H256, S_ECDSA, h, NULL, 1, NULL, &au),
	    RSSP_E_UNSUPPORTED);
	ck_assert_str_eq(au.reason, "sign algorithm does not fit key");
	/* SHA-384 digests against a SHA-256 SAD */
	ck_assert_int_eq(sign_hashes(creds[0].id, sad, sadlen, H384, S_PKCS1, h, NULL, 1, NULL, &au),
	    RSSP_E_DENIED);
	ck_assert_int_eq(sign_hashes(creds[0].id, sad, sadlen, H256, S_PKCS1, h, NULL, 0, NULL, &au),
	    RSSP_E_INVAL);
	esad = mint(&creds[3], &ep, H384, 1, 1, &esadlen);
	ck_assert_int_eq(sign_hashes(creds[3].id, esad, esadlen, H384, S_PSS,
	    (const uint8_t (*)[64])ep.hashes, NULL, 1, NULL, &au), RSSP_E_UNSUPPORTED);
	/* none of these spent the counts */
	ck_assert_int_eq(sign_hashes(creds[3].id, esad, esadlen, H384, S_ECDSA,
	    (const uint8_t (*)[64])ep.hashes, NULL, 1, NULL, NULL), 0);
	ck_assert_int_eq(sign_hashes(creds[0].id, sad, sadlen, H256, S_PSS, h, NULL, 1, NULL, NULL), 0);
	free(sad);
	free(esad);
}
END_TEST

START_TEST(test_signhash_refuses_a_sad_used_beyond_its_count_in_one_call)
{
	struct appr p;
	struct sam_audit au;
	size_t sadlen;
	uint8_t *sad = mint(&creds[2], &p, H256, 2, 2, &sadlen);
	uint8_t h[3][64];

	memcpy(h[0], p.hashes[0], 64);
	memcpy(h[1], p.hashes[1], 64);
	memcpy(h[2], p.hashes[0], 64);
	ck_assert_int_eq(sign_hashes(creds[2].id, sad, sadlen, H256, S_ECDSA,
	    (const uint8_t (*)[64])h, NULL, 3, NULL, &au), RSSP_E_EXHAUSTED);
	ck_assert_str_eq(au.reason, "sad exhausted");
	ck_assert_uint_eq(au.signatures, 0);
	/* refused whole: both signatures are still there */
	ck_assert_int_eq(sign_hashes(creds[2].id, sad, sadlen, H256, S_ECDSA,
	    (const uint8_t (*)[64])h, NULL, 2, NULL, NULL), 0);
	ck_assert_int_eq(sign_hashes(creds[2].id, sad, sadlen, H256, S_ECDSA,
	    (const uint8_t (*)[64])h, NULL, 1, NULL, &au), RSSP_E_EXHAUSTED);
	free(sad);
}
END_TEST

START_TEST(test_signhash_refuses_a_sad_used_beyond_its_count_over_several_calls)
{
	struct appr p;
	struct sam_audit au;
	size_t sadlen;
	uint8_t *sad = mint(&creds[1], &p, H512, 1, 3, &sadlen);
	const uint8_t (*h)[64] = (const uint8_t (*)[64])p.hashes;
	uint8_t two[2][64];

	memcpy(two[0], p.hashes[0], 64);
	memcpy(two[1], p.hashes[0], 64);
	ck_assert_int_eq(sign_hashes(creds[1].id, sad, sadlen, H512, S_PSS, h, NULL, 1, NULL, NULL), 0);
	ck_assert_int_eq(sign_hashes(creds[1].id, sad, sadlen, H512, S_PSS,
	    (const uint8_t (*)[64])two, NULL, 2, NULL, NULL), 0);
	ck_assert_int_eq(sign_hashes(creds[1].id, sad, sadlen, H512, S_PKCS1, h, NULL, 1, NULL, &au),
	    RSSP_E_EXHAUSTED);
	free(sad);
}
END_TEST

struct race {
	const uint8_t *sad;
	size_t sadlen;
	const uint8_t (*h)[64];
	int ok, exhausted, other;
};

static void *
race_thread(void *arg)
{
	struct race *r = arg;
	Rssp__Engine__V1__SignHashRequest req = RSSP__ENGINE__V1__SIGN_HASH_REQUEST__INIT;
	ProtobufCBinaryData hv;
	struct sam_audit au;
	uint8_t buf[4096], *out;
	size_t len, outlen;
	int i, rc;

	req.credential_id = creds[2].id;
	req.sad.data = (uint8_t *)r->sad;
	req.sad.len = r->sadlen;
	req.hash_algo = (Rssp__Engine__V1__HashAlgo)H256;
	req.sign_algo = (Rssp__Engine__V1__SignAlgo)S_ECDSA;
	hv.data = (uint8_t *)r->h[0];
	hv.len = 32;
	req.hashes = &hv;
	req.n_hashes = 1;
	len = rssp__engine__v1__sign_hash_request__pack(&req, buf);
	for (i = 0; i < 10; i++) {
		out = NULL;
		rc = sam_sign_hash(S, buf, len, &out, &outlen, &au);
		if (rc == 0)
			r->ok++;
		else if (rc == RSSP_E_EXHAUSTED)
			r->exhausted++;
		else
			r->other++;
		free(out);
	}
	return NULL;
}

START_TEST(test_signhash_counts_exactly_under_concurrent_callers)
{
	struct appr p;
	size_t sadlen;
	uint8_t *sad;
	struct race rs[4];
	pthread_t t[4];
	int i, ok = 0, ex = 0, other = 0;

	/* a SAD of 30 signatures presented for the first time by four threads at once */
	sad = mint(&creds[2], &p, H256, 1, 30, &sadlen);
	for (i = 0; i < 4; i++) {
		rs[i] = (struct race){ sad, sadlen, (const uint8_t (*)[64])p.hashes, 0, 0, 0 };
		ck_assert_int_eq(pthread_create(&t[i], NULL, race_thread, &rs[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		ok += rs[i].ok;
		ex += rs[i].exhausted;
		other += rs[i].other;
	}
	ck_assert_int_eq(ok, 30);
	ck_assert_int_eq(ex, 10);
	ck_assert_int_eq(other, 0);
	free(sad);
}
END_TEST

int
main(void)
{
	const TTest *const tests[] = {
		test_signhash_signs_with_every_fitting_algorithm_and_openssl_verifies,
		test_signhash_pss_takes_any_salt_up_to_the_keys_maximum,
		test_a_thousand_hashes_fit_the_message_limits_and_each_can_be_signed,
		test_signhash_refuses_a_sad_of_another_credential,
		test_signhash_refuses_forged_truncated_and_garbage_sads,
		test_signhash_refuses_an_expired_sad,
		test_signhash_refuses_a_hash_not_in_the_sad,
		test_signhash_refuses_bad_algorithms_and_digest_lengths,
		test_signhash_refuses_a_sad_used_beyond_its_count_in_one_call,
		test_signhash_refuses_a_sad_used_beyond_its_count_over_several_calls,
		test_signhash_counts_exactly_under_concurrent_callers,
	};

	return sam_fixture_main("sam_sign", tests, sizeof(tests) / sizeof(tests[0]));
}
