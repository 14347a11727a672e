/* The approval handler (engine/sam_approve.c) against a real SoftHSM2 token
 * (sam_fixture.h): bindings, KAKs, tampered fields, expiry, replay, shapes. */
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

START_TEST(test_approval_refuses_a_forged_binding)
{
	struct appr p;
	struct sam_audit au;

	appr_init(&p, &creds[2], H256, 1, 1);
	p.binding[5] ^= 0x01;
	ck_assert_int_eq(approve(&p, NULL, NULL, &au), RSSP_E_DENIED);
	ck_assert_str_eq(au.reason, "binding invalid");
	appr_init(&p, &creds[2], H256, 1, 1);
	p.binding_len = 31;
	ck_assert_int_eq(approve(&p, NULL, NULL, &au), RSSP_E_DENIED);
}
END_TEST

START_TEST(test_approval_refuses_another_kak_with_a_valid_signature)
{
	struct appr p;
	struct sam_audit au;

	appr_init(&p, &creds[2], H256, 1, 1);
	p.kak = kak_ec2; /* a gateway swaps in its own KAK and signs with it */
	ck_assert_int_eq(approve(&p, NULL, NULL, &au), RSSP_E_DENIED);
	ck_assert_str_eq(au.reason, "binding invalid");
}
END_TEST

START_TEST(test_approval_refuses_a_binding_of_another_credential_or_key)
{
	struct appr p;

	appr_init(&p, &creds[2], H256, 1, 1);
	snprintf(p.key_label, sizeof(p.key_label), "%s", creds[3].label);
	ck_assert_int_eq(approve(&p, NULL, NULL, NULL), RSSP_E_DENIED);
	appr_init(&p, &creds[2], H256, 1, 1);
	memcpy(p.binding, creds[3].binding, 32);
	ck_assert_int_eq(approve(&p, NULL, NULL, NULL), RSSP_E_DENIED);
}
END_TEST

/* Each field changed after the signer signed: the engine rebuilds authData from what
 * it receives, so every change breaks the signature (or the binding). */
enum { T_APPROVAL_ID, T_CREDENTIAL_ID, T_OWNER_ID, T_DEVICE_UUID, T_KEY_LABEL, T_HASH,
	T_ADD_HASH, T_DROP_HASH, T_NUM_SIGNATURES, T_RP_NAME, T_DESCRIPTION, T_NONCE, T_EXPIRES_AT,
	T_KAK_ALGO, T_HASH_ALGO, T_SIG_BYTE, T_COUNT };

static const struct {
	const char *name;
	int code;
} approval_tampers[T_COUNT] = {
	[T_APPROVAL_ID] = { "approval_id", RSSP_E_DENIED },
	[T_CREDENTIAL_ID] = { "credential_id", RSSP_E_DENIED },
	[T_OWNER_ID] = { "owner_id", RSSP_E_DENIED },
	[T_DEVICE_UUID] = { "device_uuid", RSSP_E_DENIED },
	[T_KEY_LABEL] = { "key_label", RSSP_E_DENIED },
	[T_HASH] = { "hash", RSSP_E_DENIED },
	[T_ADD_HASH] = { "added hash", RSSP_E_DENIED },
	[T_DROP_HASH] = { "dropped hash", RSSP_E_DENIED },
	[T_NUM_SIGNATURES] = { "num_signatures", RSSP_E_DENIED },
	[T_RP_NAME] = { "rp_name", RSSP_E_DENIED },
	[T_DESCRIPTION] = { "description", RSSP_E_DENIED },
	[T_NONCE] = { "nonce", RSSP_E_DENIED },
	[T_EXPIRES_AT] = { "expires_at", RSSP_E_DENIED },
	[T_KAK_ALGO] = { "kak algo", RSSP_E_INVAL },          /* an EC key cannot be PSS */
	[T_HASH_ALGO] = { "hash_algo", RSSP_E_INVAL },        /* 32-byte digests are not SHA-384 */
	[T_SIG_BYTE] = { "signature byte", RSSP_E_DENIED },
};

START_TEST(test_approval_refuses_each_tampered_field)
{
	struct appr p, t;
	struct sam_audit au;
	uint8_t *sig;
	size_t siglen, i;
	int r;

	for (i = 0; i < T_COUNT; i++) {
		appr_init(&p, &creds[2], H256, 2, 4);
		appr_sign(&p, &sig, &siglen);
		t = p;
		switch (i) {
		case T_APPROVAL_ID: t.approval_id[0] ^= 1; break;
		case T_CREDENTIAL_ID: strcat(t.credential_id, "x"); break;
		case T_OWNER_ID: t.owner_id[0] ^= 1; break;
		case T_DEVICE_UUID: strcat(t.device_uuid, "2"); break;
		case T_KEY_LABEL: t.key_label[strlen(t.key_label) - 1] ^= 1; break;
		case T_HASH: t.hashes[1][7] ^= 0x80; break;
		case T_ADD_HASH: RAND_bytes(t.hashes[2], 64); t.hash_lens[2] = 32; t.n_hashes = 3; break;
		case T_DROP_HASH: t.n_hashes = 1; break;
		case T_NUM_SIGNATURES: t.num_signatures = 5; break;
		case T_RP_NAME: strcat(t.rp_name, "!"); break;
		case T_DESCRIPTION: t.description[0] = 'c'; break;
		case T_NONCE: t.nonce[3] ^= 1; break;
		case T_EXPIRES_AT: t.expires_at += 1; break;
		case T_KAK_ALGO: t.kak_algo = KAK_PSS256; break;
		case T_HASH_ALGO: t.hash_algo = H384; break;
		case T_SIG_BYTE: sig[siglen / 2] ^= 1; break;
		}
		r = appr_call(&t, sig, siglen, NULL, NULL, &au);
		ck_assert_msg(r == approval_tampers[i].code, "tampered %s: %s (%s)",
		    approval_tampers[i].name, rssp_strerror(r), au.reason ? au.reason : "");
		/* the untouched approval still passes: the refusal was about the change */
		if (i == T_SIG_BYTE)
			sig[siglen / 2] ^= 1;
		ck_assert_int_eq(appr_call(&p, sig, siglen, NULL, NULL, NULL), 0);
		free(sig);
	}
}
END_TEST

START_TEST(test_approval_refuses_an_expired_approval)
{
	struct appr p;
	struct sam_audit au;

	appr_init(&p, &creds[2], H256, 1, 1);
	p.expires_at = time(NULL) - 1;
	ck_assert_int_eq(approve(&p, NULL, NULL, &au), RSSP_E_EXPIRED);
	ck_assert_str_eq(au.reason, "approval expired");
	appr_init(&p, &creds[2], H256, 1, 1);
	p.expires_at = time(NULL) + 2 * 86400;
	ck_assert_int_eq(approve(&p, NULL, NULL, &au), RSSP_E_INVAL);
}
END_TEST

/* PROTOCOL.md 3.2: the same approval again gets the SAD it minted (same bytes, same
 * count), never a second SAD; once that SAD has expired it is a replay. */
START_TEST(test_a_replayed_approval_gets_the_same_sad_then_is_refused)
{
	struct appr p;
	struct sam_audit au;
	uint8_t *sad = NULL, *sad2 = NULL;
	size_t sadlen, sadlen2;
	char id1[33];
	uint8_t h[1][64];

	appr_init(&p, &creds[0], H256, 1, 1);
	p.expires_at = (int64_t)time(NULL) + 900; /* outlives the SAD (ttl 300) */
	memcpy(h[0], p.hashes[0], 32);
	ck_assert_int_eq(approve(&p, &sad, &sadlen, &au), 0);
	ck_assert_str_eq(au.event, "authorize.approval");
	ck_assert_str_eq(au.approval_id, p.approval_id);
	ck_assert_uint_eq(strlen(au.kak_sha256), 64);
	ck_assert_uint_eq(strlen(au.sad_id), 32);
	ck_assert_ptr_null(au.reason);
	memcpy(id1, au.sad_id, sizeof(id1));
	/* the one signature of the SAD */
	ck_assert_int_eq(sign_hashes(creds[0].id, sad, sadlen, H256, S_PKCS1,
	    (const uint8_t (*)[64])h, NULL, 1, NULL, NULL), 0);
	/* the answer was lost: the same approval again */
	ck_assert_int_eq(approve(&p, &sad2, &sadlen2, &au), 0);
	ck_assert_str_eq(au.reason, "approval replayed: same sad");
	ck_assert_str_eq(au.sad_id, id1);
	ck_assert_uint_eq(sadlen2, sadlen);
	ck_assert_int_eq(memcmp(sad, sad2, sadlen), 0);
	/* same count: already used up */
	ck_assert_int_eq(sign_hashes(creds[0].id, sad2, sadlen2, H256, S_PKCS1,
	    (const uint8_t (*)[64])h, NULL, 1, NULL, &au), RSSP_E_EXHAUSTED);
	/* the SAD expired, the approval not yet: a replay */
	sam_set_clock_skew(S, 400);
	ck_assert_int_eq(approve(&p, NULL, NULL, &au), RSSP_E_REPLAY);
	ck_assert_str_eq(au.reason, "approval replayed");
	sam_set_clock_skew(S, 0);
	free(sad);
	free(sad2);
}
END_TEST

START_TEST(test_approval_refuses_bad_shapes)
{
	struct appr p;
	struct sam_audit au;

	appr_init(&p, &creds[2], H256, 2, 2);
	p.hash_lens[1] = 31;
	ck_assert_int_eq(approve(&p, NULL, NULL, &au), RSSP_E_INVAL);
	ck_assert_str_eq(au.reason, "digest length mismatch");
	appr_init(&p, &creds[2], 9, 1, 1);
	p.hash_lens[0] = 32;
	ck_assert_int_eq(approve(&p, NULL, NULL, &au), RSSP_E_UNSUPPORTED);
	appr_init(&p, &creds[2], H256, 0, 1);
	ck_assert_int_eq(approve(&p, NULL, NULL, &au), RSSP_E_INVAL);
	appr_init(&p, &creds[2], H256, 3, 2); /* fewer signatures than distinct hashes */
	ck_assert_int_eq(approve(&p, NULL, NULL, &au), RSSP_E_INVAL);
	appr_init(&p, &creds[2], H256, 1, 0);
	ck_assert_int_eq(approve(&p, NULL, NULL, &au), RSSP_E_INVAL);
	appr_init(&p, &creds[2], H256, 1, 1001);
	ck_assert_int_eq(approve(&p, NULL, NULL, &au), RSSP_E_INVAL);
	appr_init(&p, &creds[2], H256, 1, 1);
	p.nonce_len = 8;
	ck_assert_int_eq(approve(&p, NULL, NULL, &au), RSSP_E_INVAL);
	appr_init(&p, &creds[2], H256, 1, 1);
	memset(p.approval_id, 0, sizeof(p.approval_id));
	ck_assert_int_eq(approve(&p, NULL, NULL, &au), RSSP_E_INVAL);
}
END_TEST

int
main(void)
{
	const TTest *const tests[] = {
		test_approval_refuses_a_forged_binding,
		test_approval_refuses_another_kak_with_a_valid_signature,
		test_approval_refuses_a_binding_of_another_credential_or_key,
		test_approval_refuses_each_tampered_field,
		test_approval_refuses_an_expired_approval,
		test_a_replayed_approval_gets_the_same_sad_then_is_refused,
		test_approval_refuses_bad_shapes,
	};

	return sam_fixture_main("sam_approve", tests, sizeof(tests) / sizeof(tests[0]));
}
