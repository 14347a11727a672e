/* The activation handler (engine/sam_activate.c) against a real SoftHSM2 token
 * (sam_fixture.h): certificates for every key type, vouchers and their subjects,
 * tampered and badly shaped activations, replay, long labels, re-activation with
 * another KAK. */
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
		/* the vouched subject: CN the voucher's name, serialNumber its user id */
		ck_assert_int_eq(X509_NAME_get_text_by_NID(X509_get_subject_name(x),
		    NID_serialNumber, cn, sizeof(cn)), (int)strlen(c->owner));
		ck_assert_str_eq(cn, c->owner);
		ck_assert_int_eq(X509_NAME_entry_count(X509_get_subject_name(x)), 2);
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

/* ---- a compromised gateway (issue 9): the engine decides who a key belongs to ---- */

static int
refused(struct act *a, const char *reason)
{
	struct sam_audit au;
	int r = activate(a, NULL, &au);

	ck_assert_msg(r < 0, "activation was not refused (want %s)", reason);
	ck_assert_str_eq(au.reason, reason);
	ck_assert_str_eq(au.event, "authorize.activation");
	return r;
}

START_TEST(test_gateway_cannot_activate_its_own_kak_under_a_victims_user_id)
{
	struct act a;

	/* the victim's real voucher (victim's KAK), presented with the attacker's KAK that
	 * signs the activation: the voucher names another KAK */
	act_init(&a, "credential-victim", "user-victim", KEY_P256, kak_ec, KAK_ECDSA);
	a.v_fixed = 1;
	a.kak = kak_ec2;
	ck_assert_int_eq(refused(&a, "voucher for another kak"), RSSP_E_DENIED);
	/* no voucher at all */
	act_init(&a, "credential-victim", "user-victim", KEY_P256, kak_ec2, KAK_ECDSA);
	a.no_voucher = 1;
	ck_assert_int_eq(refused(&a, "voucher missing"), RSSP_E_INVAL);
	/* a voucher of its own making for its KAK: signed by a key the engine does not
	 * trust, or claiming a trusted key's id */
	act_init(&a, "credential-victim", "user-victim", KEY_P256, kak_ec2, KAK_ECDSA);
	a.ra = ra_rogue;
	memcpy(a.v.ra_key_id, ra_rogue_id, 32);
	ck_assert_int_eq(refused(&a, "voucher key unknown"), RSSP_E_DENIED);
	act_init(&a, "credential-victim", "user-victim", KEY_P256, kak_ec2, KAK_ECDSA);
	a.ra = ra_rogue;
	ck_assert_int_eq(refused(&a, "voucher signature invalid"), RSSP_E_DENIED);
	act_init(&a, "credential-victim", "user-victim", KEY_P256, kak_ec2, KAK_ECDSA);
	a.key_id_mismatch = 1;
	ck_assert_int_eq(refused(&a, "voucher key id mismatch"), RSSP_E_INVAL);
}
END_TEST

START_TEST(test_a_voucher_is_refused_for_another_user_device_or_time)
{
	struct act a;
	int64_t now = (int64_t)time(NULL);

	/* user A's voucher (with A's KAK, which signed) used for user B's credential */
	act_init(&a, "credential-of-b", "user-a", KEY_P256, kak_ec, KAK_ECDSA);
	a.v_fixed = 1;
	snprintf(a.owner_id, sizeof(a.owner_id), "user-b");
	ck_assert_int_eq(refused(&a, "voucher for another user"), RSSP_E_DENIED);
	act_init(&a, "credential-a", "user-a", KEY_P256, kak_ec, KAK_ECDSA);
	a.v_fixed = 1;
	snprintf(a.device_uuid, sizeof(a.device_uuid), "another-phone");
	ck_assert_int_eq(refused(&a, "voucher for another device"), RSSP_E_DENIED);
	act_init(&a, "credential-a", "user-a", KEY_P256, kak_ec, KAK_ECDSA);
	a.v.issued_at = now - 10 * 86400;
	a.v.not_after = now - 1;
	ck_assert_int_eq(refused(&a, "voucher expired"), RSSP_E_EXPIRED);
	act_init(&a, "credential-a", "user-a", KEY_P256, kak_ec, KAK_ECDSA);
	a.v.issued_at = now + 3600;
	a.v.not_after = now + 7200;
	ck_assert_int_eq(refused(&a, "voucher not yet valid"), RSSP_E_EXPIRED);
	/* more than 30 days: the builder refuses it, so the bytes are made by hand */
	{
		struct act b;
		struct sam_audit au;
		uint8_t *vb = NULL, *sig = NULL, *vsig = NULL;
		size_t vblen, siglen, vsiglen;
		Rssp__Engine__V1__AuthorizeRequest req = RSSP__ENGINE__V1__AUTHORIZE_REQUEST__INIT;
		Rssp__Engine__V1__Kak kak = RSSP__ENGINE__V1__KAK__INIT;
		Rssp__Engine__V1__Activation act = RSSP__ENGINE__V1__ACTIVATION__INIT;
		Rssp__Engine__V1__Voucher vo = RSSP__ENGINE__V1__VOUCHER__INIT;
		uint8_t *spki, *buf, *out = NULL;
		size_t spkilen, len, outlen;

		act_init(&b, "credential-a", "user-a", KEY_P256, kak_ec, KAK_ECDSA);
		ck_assert_int_eq(rssp_voucher_build(&b.v, &vb, &vblen), 0);
		/* not_after (tag 6) is the 8 bytes before the last field (5 + 32 bytes) */
		{
			int64_t na = now + 31 * 86400;
			size_t off = vblen - 37 - 8, k;
			int64_t ia = now - 60;

			for (k = 0; k < 8; k++)
				vb[off + k] = (uint8_t)((uint64_t)na >> (56 - 8 * k));
			for (k = 0; k < 8; k++)
				vb[off - 13 + k] = (uint8_t)((uint64_t)ia >> (56 - 8 * k));
		}
		ra_sign(ra_ec, vb, vblen, &vsig, &vsiglen);
		act_sign(&b, &sig, &siglen);
		spki = spki_of(kak_ec, &spkilen);
		kak.public_key.data = spki;
		kak.public_key.len = spkilen;
		kak.algo = RSSP__ENGINE__V1__KAK_ALGO__KAK_ECDSA_P256_SHA256;
		act.credential_id = b.credential_id;
		act.owner_id = b.owner_id;
		act.device_uuid = b.device_uuid;
		act.key_algo = b.key_algo;
		act.validity_days = b.validity_days;
		act.nonce.data = b.nonce;
		act.nonce.len = b.nonce_len;
		act.expires_at = b.expires_at;
		vo.to_be_signed.data = vb;
		vo.to_be_signed.len = vblen;
		vo.signature.data = vsig;
		vo.signature.len = vsiglen;
		vo.ra_key_id.data = ra_ec_id;
		vo.ra_key_id.len = 32;
		act.voucher = &vo;
		req.kak = &kak;
		req.signature.data = sig;
		req.signature.len = siglen;
		req.purpose_case = RSSP__ENGINE__V1__AUTHORIZE_REQUEST__PURPOSE_ACTIVATION;
		req.activation = &act;
		len = rssp__engine__v1__authorize_request__get_packed_size(&req);
		buf = malloc(len);
		rssp__engine__v1__authorize_request__pack(&req, buf);
		ck_assert_int_eq(sam_authorize(S, buf, len, &out, &outlen, &au), RSSP_E_INVAL);
		ck_assert_str_eq(au.reason, "voucher validity too long");
		free(buf);
		free(vb);
		free(vsig);
		free(sig);
		OPENSSL_free(spki);
	}
}
END_TEST

START_TEST(test_a_subject_sent_by_the_gateway_is_refused)
{
	struct act a;
	static const char subject_cn[] = "\x2a\x07Mallory"; /* field 5, the old subject_cn */

	act_init(&a, "credential-subject", "user-m", KEY_P256, kak_ec, KAK_ECDSA);
	a.extra = subject_cn;
	a.extra_len = sizeof(subject_cn) - 1;
	ck_assert_int_eq(refused(&a, "unknown field"), RSSP_E_INVAL);
	act_init(&a, "credential-subject", "user-m", KEY_P256, kak_ec, KAK_ECDSA);
	a.v.common_name[0] = '\0';
	snprintf(a.subject_cn, sizeof(a.subject_cn), "Line\nBreak");
	ck_assert_int_eq(refused(&a, "voucher malformed"), RSSP_E_INVAL);
}
END_TEST

START_TEST(test_the_certificate_subject_is_the_vouched_subject_and_the_audit_names_the_ra_key)
{
	struct act a;
	struct sam_audit au;
	Rssp__Engine__V1__ActivationResult *res = NULL;
	const unsigned char *p;
	X509 *x;
	char buf[300], hex[65];

	/* vouched by the RSA (PSS) RA key this time */
	act_init(&a, "credential-vouched", "0b6f2c1e-5a4d-4c1e-9f00-1234567890ab", KEY_P256,
	    kak_rsa, KAK_PSS256);
	snprintf(a.subject_cn, sizeof(a.subject_cn), "Zo\xc3\xab Vouched-Name");
	a.ra = ra_rsa;
	memcpy(a.v.ra_key_id, ra_rsa_id, 32);
	ck_assert_int_eq(activate(&a, &res, &au), 0);
	ra_key_id_hex(ra_rsa_id, hex);
	ck_assert_str_eq(au.ra_key_id, hex);
	p = res->certificate.data;
	x = d2i_X509(NULL, &p, (long)res->certificate.len);
	ck_assert_ptr_nonnull(x);
	ck_assert_int_gt(X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName,
	    buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "Zo\xc3\xab Vouched-Name");
	ck_assert_int_gt(X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_serialNumber,
	    buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "0b6f2c1e-5a4d-4c1e-9f00-1234567890ab");
	ck_assert_int_eq(X509_NAME_entry_count(X509_get_subject_name(x)), 2);
	ck_assert(chain_verifies(x));
	X509_free(x);
	free_act_result(res);
	/* a refusal after the voucher was read names its key too */
	act_init(&a, "credential-vouched", "user-z", KEY_P256, kak_ec, KAK_ECDSA);
	a.v_fixed = 1;
	a.kak = kak_ec2;
	ck_assert_int_eq(activate(&a, NULL, &au), RSSP_E_DENIED);
	ra_key_id_hex(ra_ec_id, hex);
	ck_assert_str_eq(au.ra_key_id, hex);
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
		test_gateway_cannot_activate_its_own_kak_under_a_victims_user_id,
		test_a_voucher_is_refused_for_another_user_device_or_time,
		test_a_subject_sent_by_the_gateway_is_refused,
		test_the_certificate_subject_is_the_vouched_subject_and_the_audit_names_the_ra_key,
		test_reactivation_with_another_kak_yields_a_new_key_and_keeps_old_binding_to_old_kak,
	};

	return sam_fixture_main("sam_activate", tests, sizeof(tests) / sizeof(tests[0]));
}
