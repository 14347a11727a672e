/* The signature activation module's lifecycle and the checks every request goes through,
 * against a real SoftHSM2 token (sam_fixture.h): token initialisation, open (PIN file,
 * token, RA keys), malformed and mutated requests, undo, recovery after the token lost
 * its sessions and login. */
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

START_TEST(test_init_refuses_an_initialised_token_without_force)
{
	struct sam_init_opts opts = { NULL, 0, 0 };

	ck_assert_int_eq(sam_init_token(&cfg, &opts), RSSP_E_CONFLICT);
}
END_TEST

START_TEST(test_open_and_init_refuse_a_pin_file_readable_by_others)
{
	struct sam_config bad = cfg;
	struct sam_init_opts opts = { NULL, 0, 1 };
	struct sam *s2 = NULL;

	bad.pin_file = bad_pin_file;
	ck_assert_int_eq(sam_open(&bad, &s2), RSSP_E_DENIED);
	ck_assert_ptr_null(s2);
	ck_assert_int_eq(sam_init_token(&bad, &opts), RSSP_E_DENIED);
}
END_TEST

START_TEST(test_open_refuses_an_unknown_token)
{
	struct sam_config other = cfg;
	struct sam *s2 = NULL;

	other.token_label = "no-such-token";
	ck_assert_int_eq(sam_open(&other, &s2), RSSP_E_NOTFOUND);
}
END_TEST

START_TEST(test_requests_refuse_ids_that_are_not_utf8)
{
	struct act a;
	struct appr p;
	struct sam_audit au;

	act_init(&a, "credential-\xff", "user-u", KEY_P256, kak_ec, KAK_ECDSA);
	ck_assert_int_eq(activate(&a, NULL, &au), RSSP_E_INVAL);
	act_init(&a, "credential-\xc0\xaf", "user-u", KEY_P256, kak_ec, KAK_ECDSA); /* overlong */
	ck_assert_int_eq(activate(&a, NULL, &au), RSSP_E_INVAL);
	act_init(&a, "credential-utf", "user-u", KEY_P256, kak_ec, KAK_ECDSA);
	snprintf(a.subject_cn, sizeof(a.subject_cn), "Signer \xed\xa0\x80"); /* surrogate */
	ck_assert_int_eq(activate(&a, NULL, &au), RSSP_E_INVAL);
	appr_init(&p, &creds[2], H256, 1, 1);
	snprintf(p.description, sizeof(p.description), "bad \xe2\x82");
	ck_assert_int_eq(approve(&p, NULL, NULL, &au), RSSP_E_INVAL);
}
END_TEST

START_TEST(test_open_refuses_an_unreadable_or_bad_ra_key_set)
{
	struct sam_config other = cfg;
	struct sam *s2 = NULL;
	char path[700];
	FILE *f;

	other.ra_keys = "/nonexistent/ra";
	ck_assert_int_eq(sam_open(&other, &s2), RSSP_E_IO);
	snprintf(path, sizeof(path), "%s/ra-bad.pem", workdir);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(PEM_write_PUBKEY(f, kak_rsa), 1);
	fputs("-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n", f);
	fclose(f);
	other.ra_keys = path;
	ck_assert_int_eq(sam_open(&other, &s2), RSSP_E_INVAL);
	ck_assert_ptr_null(s2);
}
END_TEST

/* A call whose audit record could not be written spends nothing (sam_undo). */
START_TEST(test_undo_gives_back_a_count_and_forgets_an_unreleased_sad)
{
	struct appr p;
	struct sam_audit au, sau;
	uint8_t *sad = NULL, *sad2 = NULL;
	size_t sadlen, sadlen2;
	char id1[33];
	uint8_t h[1][64];

	appr_init(&p, &creds[0], H256, 1, 1);
	memcpy(h[0], p.hashes[0], 32);
	ck_assert_int_eq(approve(&p, &sad, &sadlen, &au), 0);
	memcpy(id1, au.sad_id, sizeof(id1));
	/* the SAD never left: forgotten, the approval may mint again (a new SAD) */
	sam_undo(S, &au);
	free(sad);
	ck_assert_int_eq(approve(&p, &sad, &sadlen, &au), 0);
	ck_assert_ptr_null(au.reason);
	ck_assert_str_ne(au.sad_id, id1);
	/* a replay answer is not undone: the SAD it repeats was released before */
	ck_assert_int_eq(approve(&p, &sad2, &sadlen2, &au), 0);
	sam_undo(S, &au);
	free(sad2);
	ck_assert_int_eq(approve(&p, &sad2, &sadlen2, &au), 0);
	ck_assert_int_eq(memcmp(sad, sad2, sadlen), 0);
	/* an activation whose answer was not released may be presented again */
	{
		struct act ac;
		Rssp__Engine__V1__ActivationResult *res = NULL;

		act_init(&ac, "credential-undo", "user-u", KEY_P256, kak_ec, KAK_ECDSA);
		ck_assert_int_eq(activate(&ac, &res, &au), 0);
		free_act_result(res);
		sam_undo(S, &au);
		ck_assert_int_eq(activate(&ac, &res, &au), 0);
		free_act_result(res);
		ck_assert_int_eq(activate(&ac, NULL, &au), RSSP_E_REPLAY);
	}
	/* the signature was not released: the count comes back */
	memset(&sau, 0, sizeof(sau));
	ck_assert_int_eq(sign_hashes(creds[0].id, sad, sadlen, H256, S_PKCS1,
	    (const uint8_t (*)[64])h, NULL, 1, NULL, &sau), 0);
	ck_assert_uint_eq(sau.signatures, 1);
	sam_undo(S, &sau);
	ck_assert_int_eq(sign_hashes(creds[0].id, sad, sadlen, H256, S_PKCS1,
	    (const uint8_t (*)[64])h, NULL, 1, NULL, NULL), 0);
	ck_assert_int_eq(sign_hashes(creds[0].id, sad, sadlen, H256, S_PKCS1,
	    (const uint8_t (*)[64])h, NULL, 1, NULL, &sau), RSSP_E_EXHAUSTED);
	free(sad);
	free(sad2);
}
END_TEST

START_TEST(test_requests_refuse_malformed_protobuf_bytes)
{
	static const uint8_t junk[][8] = {
		{ 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff },
		{ 0x0a, 0x7f, 0x41 },           /* a string longer than the buffer */
		{ 0x12, 0x03, 0x0a, 0x01 },     /* truncated nested message */
		{ 0xf8, 0x06, 0x01 },           /* unknown field 111 */
	};
	static const size_t lens[] = { 8, 3, 4, 3 };
	struct sam_audit au;
	uint8_t *out = NULL;
	size_t outlen = 0, i;

	for (i = 0; i < 4; i++) {
		ck_assert_int_eq(sam_authorize(S, junk[i], lens[i], &out, &outlen, &au), RSSP_E_INVAL);
		ck_assert_ptr_nonnull(au.reason);
		ck_assert_int_eq(sam_sign_hash(S, junk[i], lens[i], &out, &outlen, &au), RSSP_E_INVAL);
		ck_assert_ptr_nonnull(au.reason);
	}
	/* an empty AuthorizeRequest names no purpose */
	ck_assert_int_eq(sam_authorize(S, (const uint8_t *)"", 0, &out, &outlen, &au), RSSP_E_INVAL);
	ck_assert_str_eq(au.reason, "purpose missing");
	ck_assert_ptr_null(out);
}
END_TEST

/* Finds the token's slot through the module's own function list, independently of
 * the engine. */
static CK_FUNCTION_LIST *
module_slot(CK_SLOT_ID *slotp)
{
	void *dl = dlopen(module, RTLD_NOW | RTLD_NOLOAD);
	CK_C_GetFunctionList gfl;
	CK_FUNCTION_LIST *fl = NULL;
	CK_SLOT_ID slots[16];
	CK_ULONG n = 16, i;
	CK_TOKEN_INFO ti;
	char want[32];

	ck_assert_ptr_nonnull(dl);
	gfl = (CK_C_GetFunctionList)dlsym(dl, "C_GetFunctionList");
	ck_assert_ptr_nonnull(gfl);
	ck_assert_int_eq(gfl(&fl), CKR_OK);
	dlclose(dl);
	ck_assert_int_eq(fl->C_GetSlotList(CK_TRUE, slots, &n), CKR_OK);
	memset(want, ' ', sizeof(want));
	memcpy(want, TOKEN, strlen(TOKEN));
	for (i = 0; i < n; i++) {
		if (fl->C_GetTokenInfo(slots[i], &ti) == CKR_OK &&
		    memcmp(ti.label, want, sizeof(want)) == 0) {
			*slotp = slots[i];
			return fl;
		}
	}
	ck_abort_msg("token slot not found");
	return NULL;
}

START_TEST(test_signing_recovers_after_all_sessions_are_closed_and_logged_out)
{
	CK_SLOT_ID slot;
	CK_FUNCTION_LIST *fl = module_slot(&slot);
	struct appr p;
	size_t sadlen, sadlen2;
	uint8_t *sad = mint(&creds[0], &p, H256, 1, 4, &sadlen), *sad2;
	const uint8_t (*h)[64] = (const uint8_t (*)[64])p.hashes;
	struct appr p2;
	Rssp__Engine__V1__SignHashResponse *resp = NULL;
	int round;

	ck_assert_int_eq(sign_hashes(creds[0].id, sad, sadlen, H256, S_PKCS1, h, NULL, 1, NULL, NULL), 0);
	for (round = 0; round < 2; round++) {
		/* every session of the engine is gone and the token is logged out */
		ck_assert_int_eq(fl->C_CloseAllSessions(slot), CKR_OK);
		ck_assert_int_eq(sign_hashes(creds[0].id, sad, sadlen, H256, S_PKCS1, h, NULL, 1,
		    &resp, NULL), 0);
		ck_assert(verify_with_cert(creds[0].cert, S_PKCS1, H256, p.hashes[0],
		    resp->signatures[0].data, resp->signatures[0].len));
		rssp__engine__v1__sign_hash_response__free_unpacked(resp, NULL);
	}
	/* the HMAC key works again too: a new approval and a never-cached SAD */
	ck_assert_int_eq(fl->C_CloseAllSessions(slot), CKR_OK);
	sad2 = mint(&creds[3], &p2, H512, 1, 1, &sadlen2);
	ck_assert_int_eq(sign_hashes(creds[3].id, sad2, sadlen2, H512, S_ECDSA,
	    (const uint8_t (*)[64])p2.hashes, NULL, 1, NULL, NULL), 0);
	free(sad);
	free(sad2);
}
END_TEST

/* Valid requests with random bytes changed, cut or appended: every answer is a code,
 * never a crash (ASan and UBSan watch this in the sanitizer build). */
START_TEST(test_mutated_requests_are_refused_without_crashing)
{
	struct appr p;
	struct sam_audit au;
	uint8_t *sig, *req, *m, *out, *sad;
	size_t siglen, reqlen, sadlen, outlen, n, k, i;
	Rssp__Engine__V1__SignHashRequest sr = RSSP__ENGINE__V1__SIGN_HASH_REQUEST__INIT;
	ProtobufCBinaryData hv[2];
	uint8_t sreq[1024];
	size_t sreqlen;
	char first_id[33] = "";
	int r, ok = 0;

	srand(20261128);
	appr_init(&p, &creds[2], H256, 2, 2);
	appr_sign(&p, &sig, &siglen);
	appr_pack(&p, sig, siglen, &req, &reqlen);
	m = malloc(reqlen + 16);
	for (i = 0; i < 1500; i++) {
		memcpy(m, req, reqlen);
		n = reqlen;
		for (k = 0; k < 1 + (size_t)rand() % 4; k++)
			m[(size_t)rand() % n] ^= (uint8_t)(1 + rand() % 255);
		if (i % 5 == 0)
			n = (size_t)rand() % reqlen;
		else if (i % 7 == 0)
			n += (size_t)rand() % 16;
		out = NULL;
		memset(&au, 0, sizeof(au));
		r = sam_authorize(S, m, n, &out, &outlen, &au);
		ck_assert(r == 0 || (r < 0 && au.reason != NULL));
		if (r == 0) {
			if (ok == 0)
				memcpy(first_id, au.sad_id, sizeof(first_id));
			else /* the same approval again: the same SAD */
				ck_assert_str_eq(au.sad_id, first_id);
		}
		ok += r == 0;
		free(out);
	}
	free(m);
	free(req);
	free(sig);
	/* (a change in request_id alone keeps the approval valid: at most one SAD is
	 * minted, the others that pass are answered with it) */

	sad = mint(&creds[2], &p, H256, 2, 1000, &sadlen);
	sr.credential_id = creds[2].id;
	sr.sad.data = sad;
	sr.sad.len = sadlen;
	sr.hash_algo = (Rssp__Engine__V1__HashAlgo)H256;
	sr.sign_algo = (Rssp__Engine__V1__SignAlgo)S_ECDSA;
	hv[0].data = p.hashes[0];
	hv[0].len = 32;
	hv[1].data = p.hashes[1];
	hv[1].len = 32;
	sr.hashes = hv;
	sr.n_hashes = 2;
	sreqlen = rssp__engine__v1__sign_hash_request__pack(&sr, sreq);
	m = malloc(sreqlen + 16);
	for (i = 0; i < 1500; i++) {
		memcpy(m, sreq, sreqlen);
		n = sreqlen;
		for (k = 0; k < 1 + (size_t)rand() % 4; k++)
			m[(size_t)rand() % n] ^= (uint8_t)(1 + rand() % 255);
		if (i % 5 == 0)
			n = (size_t)rand() % sreqlen;
		out = NULL;
		r = sam_sign_hash(S, m, n, &out, &outlen, &au);
		ck_assert(r == 0 || (r < 0 && au.reason != NULL));
		free(out);
	}
	free(m);
	free(sad);
}
END_TEST

int
main(void)
{
	const TTest *const tests[] = {
		test_init_refuses_an_initialised_token_without_force,
		test_open_and_init_refuse_a_pin_file_readable_by_others,
		test_open_refuses_an_unknown_token,
		test_requests_refuse_ids_that_are_not_utf8,
		test_open_refuses_an_unreadable_or_bad_ra_key_set,
		test_undo_gives_back_a_count_and_forgets_an_unreleased_sad,
		test_requests_refuse_malformed_protobuf_bytes,
		test_signing_recovers_after_all_sessions_are_closed_and_logged_out,
		test_mutated_requests_are_refused_without_crashing,
	};

	return sam_fixture_main("sam", tests, sizeof(tests) / sizeof(tests[0]));
}
