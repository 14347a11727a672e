/* The activation handler (engine/sam_activate.c) against a real SoftHSM2 token
 * (sam_fixture.h): certificates for every key type, tampered and badly shaped
 * activations, replay, long labels, re-activation with another KAK. */
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
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <p11-kit/pkcs11.h>

#include <rssp/engine/v1/engine.pb-c.h>

#include "authdata.h"
#include "fixture.h"
#include "sam.h"

#include "sam_fixture.h"

START_TEST(test_activation_issues_a_chained_certificate_for_every_key_type)
{
	static const int bits[4] = { 2048, 3072, 256, 384 };
	int i;

	ck_assert_ptr_nonnull(ca_cert);
	ck_assert_int_eq(X509_check_ca(ca_cert), 1);
	for (i = 0; i < 4; i++) {
		struct cred *c = &creds[i];
		X509 *x = c->cert;
		char cn[128];
		const ASN1_BIT_STRING *sig;
		const X509_ALGOR *alg;

		ck_assert_msg(chain_verifies(x), "chain of %s", c->id);
		ck_assert_int_eq(X509_get_version(x), X509_VERSION_3);
		ck_assert_int_eq(X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName,
		    cn, sizeof(cn)), (int)strlen("Signer ") + (int)strlen(c->owner));
		ck_assert_ptr_nonnull(strstr(cn, c->owner));
		ck_assert_int_eq(X509_check_ca(x), 0);
		ck_assert_uint_eq(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION);
		ck_assert_int_ge(X509_get_ext_by_NID(x, NID_authority_key_identifier, -1), 0);
		ck_assert_int_ge(X509_get_ext_by_NID(x, NID_subject_key_identifier, -1), 0);
		ck_assert_int_eq(EVP_PKEY_get_bits(X509_get0_pubkey(x)), bits[i]);
		X509_get0_signature(&sig, &alg, x);
		ck_assert_int_eq(OBJ_obj2nid(alg->algorithm), NID_ecdsa_with_SHA384);
		ck_assert_msg(strncmp(c->label, c->id, strlen(c->id)) == 0 &&
		    c->label[strlen(c->id)] == '#' && strlen(c->label) == strlen(c->id) + 9,
		    "label %s", c->label);
		ck_assert_uint_eq(c->binding_len, 32);
	}
}
END_TEST

START_TEST(test_activation_refuses_each_tampered_field)
{
	struct act a, t;
	struct sam_audit au;
	uint8_t *sig;
	size_t siglen;
	int i, r;
	static const char *names[] = { "credential_id", "owner_id", "device_uuid", "key_algo",
		"subject_cn", "validity_days", "nonce", "expires_at", "kak algo", "signature" };

	for (i = 0; i < 10; i++) {
		act_init(&a, "credential-tamper", "user-t", KEY_P256, kak_rsa, KAK_PSS256);
		act_sign(&a, &sig, &siglen);
		t = a;
		switch (i) {
		case 0: strcat(t.credential_id, "x"); break;
		case 1: t.owner_id[0] ^= 1; break;
		case 2: strcat(t.device_uuid, "x"); break;
		case 3: t.key_algo = KEY_P384; break;
		case 4: strcat(t.subject_cn, "x"); break;
		case 5: t.validity_days = 3650; break;
		case 6: t.nonce[0] ^= 1; break;
		case 7: t.expires_at += 60; break;
		case 8: t.kak_algo = KAK_PSS512; break;
		case 9: sig[3] ^= 1; break;
		}
		r = act_call(&t, sig, siglen, NULL, &au);
		ck_assert_msg(r == RSSP_E_DENIED, "tampered %s: %s", names[i], rssp_strerror(r));
		ck_assert_str_eq(au.reason, "kak signature invalid");
		free(sig);
	}
}
END_TEST

START_TEST(test_activation_refuses_bad_shapes_and_expiry)
{
	struct act a;
	struct sam_audit au;
	EVP_PKEY *p384 = gen_key("EC", "P-384");

	act_init(&a, "credential-shape", "user-s", KEY_P256, kak_ec, KAK_ECDSA);
	a.expires_at = time(NULL) - 1;
	ck_assert_int_eq(activate(&a, NULL, &au), RSSP_E_EXPIRED);
	act_init(&a, "credential-shape", "user-s", 9, kak_ec, KAK_ECDSA);
	ck_assert_int_eq(activate(&a, NULL, &au), RSSP_E_UNSUPPORTED);
	ck_assert_str_eq(au.reason, "unknown key algorithm");
	act_init(&a, "credential-shape", "user-s", KEY_P256, kak_ec, KAK_ECDSA);
	a.validity_days = 3651;
	ck_assert_int_eq(activate(&a, NULL, &au), RSSP_E_INVAL);
	act_init(&a, "credential-shape", "user-s", KEY_P256, kak_ec, KAK_ECDSA);
	a.nonce_len = 15;
	ck_assert_int_eq(activate(&a, NULL, &au), RSSP_E_INVAL);
	/* a P-384 KAK is not an ECDSA P-256 KAK; an EC key is not an RSA-PSS KAK */
	act_init(&a, "credential-shape", "user-s", KEY_P256, p384, KAK_ECDSA);
	ck_assert_int_eq(activate(&a, NULL, &au), RSSP_E_INVAL);
	ck_assert_str_eq(au.reason, "kak invalid");
	act_init(&a, "credential-shape", "user-s", KEY_P256, kak_ec, KAK_ECDSA);
	{
		uint8_t *sig;
		size_t siglen;

		act_sign(&a, &sig, &siglen);
		a.kak_algo = 7;
		ck_assert_int_eq(act_call(&a, sig, siglen, NULL, &au), RSSP_E_UNSUPPORTED);
		free(sig);
	}
	act_init(&a, "credential-shape", "user-s", KEY_P256, kak_ec, KAK_ECDSA);
	memset(a.subject_cn, 'A', 100); /* commonName is at most 64 characters */
	a.subject_cn[100] = '\0';
	ck_assert_int_eq(activate(&a, NULL, &au), RSSP_E_INVAL);
	EVP_PKEY_free(p384);
}
END_TEST

START_TEST(test_activation_refuses_a_replayed_activation)
{
	struct act a;
	struct sam_audit au;
	Rssp__Engine__V1__ActivationResult *res = NULL;

	act_init(&a, "credential-replay", "user-r", KEY_P256, kak_ec, KAK_ECDSA);
	ck_assert_int_eq(activate(&a, &res, NULL), 0);
	free_act_result(res);
	ck_assert_int_eq(activate(&a, NULL, &au), RSSP_E_REPLAY);
	ck_assert_str_eq(au.reason, "activation replayed");
}
END_TEST

START_TEST(test_activation_of_a_long_multibyte_credential_id_gets_a_valid_label)
{
	struct act a;
	Rssp__Engine__V1__ActivationResult *res = NULL;
	char id[RSSP_MAX_ID_LEN + 1];
	size_t i, n;

	/* 128 bytes: "a" then 127 / 2 two-byte characters, so the cut lands mid-character */
	id[0] = 'a';
	for (i = 1; i + 1 < RSSP_MAX_ID_LEN; i += 2) {
		id[i] = (char)0xc3;
		id[i + 1] = (char)0xa9; /* U+00E9 */
	}
	id[i] = '\0';
	ck_assert_uint_le(strlen(id), RSSP_MAX_ID_LEN);
	act_init(&a, id, "user-long", KEY_P256, kak_ec, KAK_ECDSA);
	ck_assert_int_eq(activate(&a, &res, NULL), 0);
	n = strlen(res->key_label);
	ck_assert_uint_le(n, RSSP_MAX_ID_LEN);
	ck_assert_int_eq(res->key_label[n - 9], '#');
	/* the cut kept whole characters: the prefix is 'a' plus complete pairs */
	ck_assert_uint_eq((n - 9 - 1) % 2, 0);
	ck_assert_int_eq(strncmp(res->key_label, id, n - 9), 0);
	free_act_result(res);
}
END_TEST

START_TEST(test_reactivation_with_another_kak_yields_a_new_key_and_keeps_old_binding_to_old_kak)
{
	struct act a;
	struct appr p;
	struct cred neu;
	Rssp__Engine__V1__ActivationResult *res = NULL;
	const unsigned char *der;
	uint8_t *sad = NULL;
	size_t sadlen;

	/* credential-2 (P-256, bound to kak_ec) moves to a new phone with kak_ec2 */
	act_init(&a, creds[2].id, creds[2].owner, KEY_P256, kak_ec2, KAK_ECDSA);
	ck_assert_int_eq(activate(&a, &res, NULL), 0);
	neu = creds[2];
	snprintf(neu.label, sizeof(neu.label), "%s", res->key_label);
	memcpy(neu.binding, res->binding.data, 32);
	neu.kak = kak_ec2;
	der = res->certificate.data;
	neu.cert = d2i_X509(NULL, &der, (long)res->certificate.len);
	ck_assert_ptr_nonnull(neu.cert);
	ck_assert_str_ne(neu.label, creds[2].label);
	ck_assert_int_ne(X509_cmp(neu.cert, creds[2].cert), 0);
	ck_assert_int_ne(memcmp(neu.binding, creds[2].binding, 32), 0);
	free_act_result(res);

	/* the old binding verifies with the old KAK only */
	appr_init(&p, &creds[2], H256, 1, 1);
	ck_assert_int_eq(approve(&p, NULL, NULL, NULL), 0);
	appr_init(&p, &creds[2], H256, 1, 1);
	p.kak = kak_ec2;
	ck_assert_int_eq(approve(&p, NULL, NULL, NULL), RSSP_E_DENIED);
	/* the old key's label with the new binding, or the new key with the old KAK: refused */
	appr_init(&p, &neu, H256, 1, 1);
	snprintf(p.key_label, sizeof(p.key_label), "%s", creds[2].label);
	ck_assert_int_eq(approve(&p, NULL, NULL, NULL), RSSP_E_DENIED);
	appr_init(&p, &neu, H256, 1, 1);
	p.kak = kak_ec;
	ck_assert_int_eq(approve(&p, NULL, NULL, NULL), RSSP_E_DENIED);
	/* the new key signs under the new KAK, verified by the new certificate */
	{
		Rssp__Engine__V1__SignHashResponse *resp = NULL;

		sad = mint(&neu, &p, H256, 1, 1, &sadlen);
		ck_assert_int_eq(sign_hashes(neu.id, sad, sadlen, H256, S_ECDSA,
		    (const uint8_t (*)[64])p.hashes, NULL, 1, &resp, NULL), 0);
		ck_assert(verify_with_cert(neu.cert, S_ECDSA, H256, p.hashes[0],
		    resp->signatures[0].data, resp->signatures[0].len));
		ck_assert(!verify_with_cert(creds[2].cert, S_ECDSA, H256, p.hashes[0],
		    resp->signatures[0].data, resp->signatures[0].len));
		ck_assert(chain_verifies(neu.cert));
		rssp__engine__v1__sign_hash_response__free_unpacked(resp, NULL);
	}
	free(sad);
	X509_free(neu.cert);
}
END_TEST

int
main(void)
{
	const TTest *const tests[] = {
		test_activation_issues_a_chained_certificate_for_every_key_type,
		test_activation_refuses_each_tampered_field,
		test_activation_refuses_bad_shapes_and_expiry,
		test_activation_refuses_a_replayed_activation,
		test_activation_of_a_long_multibyte_credential_id_gets_a_valid_label,
		test_reactivation_with_another_kak_yields_a_new_key_and_keeps_old_binding_to_old_kak,
	};

	return sam_fixture_main("sam_activate", tests, sizeof(tests) / sizeof(tests[0]));
}
