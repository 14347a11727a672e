/* The engine's decode-and-check step (engine/sam_decode.h) without a token: what it
 * copies into the internal structs, and each refusal's code, reason and audit fields,
 * in the order the contract lists. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include <rssp/engine/v1/engine.pb-c.h>

#include "algo.h"
#include "buf.h"
#include "sam_decode.h"
#include "voucher.h"

#define NONCE_LEN 16

static uint8_t spki[91], sig[72], nonce[RSSP_MAX_NONCE_LEN + 1], binding[32], h1[64], h2[64], sadb[100];
static ProtobufCBinaryData hv[2];
static uint8_t *vbytes, ra_id[32];
static size_t vlen;

struct msgs {
	Rssp__Engine__V1__AuthorizeRequest req;
	Rssp__Engine__V1__Kak kak;
	Rssp__Engine__V1__Activation act;
	Rssp__Engine__V1__Approval ap;
	Rssp__Engine__V1__Voucher vo;
};

static void
init_kak(struct msgs *m)
{
	rssp__engine__v1__authorize_request__init(&m->req);
	rssp__engine__v1__kak__init(&m->kak);
	m->kak.public_key.data = spki;
	m->kak.public_key.len = sizeof(spki);
	m->kak.algo = KAK_ECDSA_P256;
	m->req.kak = &m->kak;
	m->req.request_id = "rid-1";
	m->req.signature.data = sig;
	m->req.signature.len = sizeof(sig);
}

static void
activation(struct msgs *m)
{
	init_kak(m);
	rssp__engine__v1__activation__init(&m->act);
	m->act.credential_id = "cred-1";
	m->act.owner_id = "user-1";
	m->act.device_uuid = "dev-1";
	m->act.key_algo = RSSP_KEY_EC_P384;
	m->act.validity_days = 365;
	m->act.nonce.data = nonce;
	m->act.nonce.len = NONCE_LEN;
	m->act.expires_at = 1900000000;
	rssp__engine__v1__voucher__init(&m->vo);
	m->vo.to_be_signed.data = vbytes;
	m->vo.to_be_signed.len = vlen;
	m->vo.signature.data = sig;
	m->vo.signature.len = sizeof(sig);
	m->vo.ra_key_id.data = ra_id;
	m->vo.ra_key_id.len = sizeof(ra_id);
	m->act.voucher = &m->vo;
	m->req.purpose_case = RSSP__ENGINE__V1__AUTHORIZE_REQUEST__PURPOSE_ACTIVATION;
	m->req.activation = &m->act;
}

static void
approval(struct msgs *m)
{
	init_kak(m);
	rssp__engine__v1__approval__init(&m->ap);
	m->ap.approval_id = "req-1";
	m->ap.credential_id = "cred-1";
	m->ap.owner_id = "user-1";
	m->ap.device_uuid = "dev-1";
	m->ap.key_label = "cred-1#0a0b0c0d";
	m->ap.binding.data = binding;
	m->ap.binding.len = sizeof(binding);
	m->ap.hash_algo = RSSP_HASH_SHA384;
	hv[0].data = h1;
	hv[0].len = 48;
	hv[1].data = h2;
	hv[1].len = 48;
	m->ap.hashes = hv;
	m->ap.n_hashes = 2;
	m->ap.num_signatures = 2;
	m->ap.rp_name = "Bank";
	m->ap.description = "Loan contract";
	m->ap.nonce.data = nonce;
	m->ap.nonce.len = NONCE_LEN;
	m->ap.expires_at = 1900000000;
	m->req.purpose_case = RSSP__ENGINE__V1__AUTHORIZE_REQUEST__PURPOSE_APPROVAL;
	m->req.approval = &m->ap;
}

static int
decode_auth(const struct msgs *m, struct sam_authorize_req **rp, struct sam_audit *a)
{
	size_t n = rssp__engine__v1__authorize_request__get_packed_size(&m->req);
	uint8_t *buf = malloc(n + 1);
	int r;

	rssp__engine__v1__authorize_request__pack(&m->req, buf);
	memset(a, 0, sizeof(*a));
	r = sam_decode_authorize(buf, n, rp, a);
	free(buf);
	return r;
}

static void
sign_req(Rssp__Engine__V1__SignHashRequest *s)
{
	rssp__engine__v1__sign_hash_request__init(s);
	s->request_id = "rid-2";
	s->credential_id = "cred-1";
	s->sad.data = sadb;
	s->sad.len = sizeof(sadb);
	s->hash_algo = RSSP_HASH_SHA384;
	s->sign_algo = RSSP_SIGN_ECDSA;
	hv[0].data = h1;
	hv[0].len = 48;
	hv[1].data = h2;
	hv[1].len = 48;
	s->hashes = hv;
	s->n_hashes = 2;
}

static int
decode_sign(const Rssp__Engine__V1__SignHashRequest *s, struct sam_sign_req **rp,
    struct sam_audit *a)
{
	size_t n = rssp__engine__v1__sign_hash_request__get_packed_size(s);
	uint8_t *buf = malloc(n + 1);
	int r;

	rssp__engine__v1__sign_hash_request__pack(s, buf);
	memset(a, 0, sizeof(*a));
	r = sam_decode_sign_hash(buf, n, rp, a);
	free(buf);
	return r;
}

START_TEST(test_activation_is_copied_exactly)
{
	struct msgs m;
	struct sam_authorize_req *r = NULL;
	struct sam_audit a;

	activation(&m);
	ck_assert_int_eq(decode_auth(&m, &r, &a), 0);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->purpose, SAM_PURPOSE_ACTIVATION);
	ck_assert_str_eq(r->request_id, "rid-1");
	ck_assert_str_eq(r->activation.credential_id, "cred-1");
	ck_assert_str_eq(r->activation.owner_id, "user-1");
	ck_assert_str_eq(r->activation.device_uuid, "dev-1");
	ck_assert_str_eq(r->activation.voucher.v.common_name, "Jos\xc3\xa9 Doe");
	ck_assert_str_eq(r->activation.voucher.v.user_id, "user-1");
	ck_assert_uint_eq(r->activation.voucher.tbs_len, vlen);
	ck_assert_mem_eq(r->activation.voucher.tbs, vbytes, vlen);
	ck_assert_uint_eq(r->activation.voucher.sig_len, sizeof(sig));
	ck_assert_int_eq(r->activation.key_algo, RSSP_KEY_EC_P384);
	ck_assert_uint_eq(r->activation.validity_days, 365);
	ck_assert_uint_eq(r->activation.nonce_len, NONCE_LEN);
	ck_assert_mem_eq(r->activation.nonce, nonce, NONCE_LEN);
	ck_assert_int_eq(r->activation.expires_at, 1900000000);
	ck_assert_int_eq(r->kak.algo, KAK_ECDSA_P256);
	ck_assert_uint_eq(r->kak.spki_len, sizeof(spki));
	ck_assert_mem_eq(r->kak.spki, spki, sizeof(spki));
	ck_assert_uint_eq(r->sig_len, sizeof(sig));
	ck_assert_mem_eq(r->sig, sig, sizeof(sig));
	ck_assert_str_eq(a.event, "authorize.activation");
	ck_assert_str_eq(a.credential_id, "cred-1");
	ck_assert_str_eq(a.algo, "ecdsa-sha256");
	ck_assert_ptr_null(a.reason);
	sam_authorize_req_free(r);
}
END_TEST

START_TEST(test_approval_is_copied_exactly)
{
	struct msgs m;
	struct sam_authorize_req *r = NULL;
	struct sam_audit a;
	uint8_t both[96], md[32];
	char hexmd[65];

	approval(&m);
	ck_assert_int_eq(decode_auth(&m, &r, &a), 0);
	ck_assert_int_eq(r->purpose, SAM_PURPOSE_APPROVAL);
	ck_assert_str_eq(r->approval.approval_id, "req-1");
	ck_assert_str_eq(r->approval.key_label, "cred-1#0a0b0c0d");
	ck_assert_mem_eq(r->approval.binding, binding, sizeof(binding));
	ck_assert_int_eq(r->approval.hash_algo, RSSP_HASH_SHA384);
	ck_assert_uint_eq(r->approval.hash_len, 48);
	ck_assert_uint_eq(r->approval.n_hashes, 2);
	ck_assert_mem_eq(r->approval.hashes, h1, 48);       /* request order kept */
	ck_assert_mem_eq(r->approval.hashes + 48, h2, 48);
	ck_assert_uint_eq(r->approval.num_signatures, 2);
	ck_assert_str_eq(r->approval.rp_name, "Bank");
	ck_assert_str_eq(r->approval.description, "Loan contract");
	/* the audit summary is SHA-256 over the concatenated digests */
	memcpy(both, h1, 48);
	memcpy(both + 48, h2, 48);
	SHA256(both, sizeof(both), md);
	rssp_hex(hexmd, md, sizeof(md));
	ck_assert_str_eq(a.hashes_sha256, hexmd);
	ck_assert_uint_eq(a.n_hashes, 2);
	ck_assert_str_eq(a.approval_id, "req-1");
	ck_assert_str_eq(a.key_label, "cred-1#0a0b0c0d");
	sam_authorize_req_free(r);
}
END_TEST

START_TEST(test_sign_hash_is_copied_exactly)
{
	Rssp__Engine__V1__SignHashRequest s;
	struct sam_sign_req *r = NULL;
	struct sam_audit a;

	sign_req(&s);
	ck_assert_int_eq(decode_sign(&s, &r, &a), 0);
	ck_assert_str_eq(r->credential_id, "cred-1");
	ck_assert_str_eq(r->request_id, "rid-2");
	ck_assert_int_eq(r->sign_algo, RSSP_SIGN_ECDSA);
	ck_assert_uint_eq(r->hash_len, 48);
	ck_assert_uint_eq(r->n_hashes, 2);
	ck_assert_mem_eq(r->hashes + 48, h2, 48);
	ck_assert_uint_eq(r->sad_len, sizeof(sadb));
	ck_assert_mem_eq(r->sad, sadb, sizeof(sadb));
	ck_assert_str_eq(a.event, "signhash");
	ck_assert_str_eq(a.algo, "ecdsa-sha384");
	sam_sign_req_free(r);

	s.sad.len = 0; /* an empty SAD is the handler's to refuse */
	ck_assert_int_eq(decode_sign(&s, &r, &a), 0);
	ck_assert_ptr_null(r->sad);
	ck_assert_uint_eq(r->sad_len, 0);
	sam_sign_req_free(r);
}
END_TEST

#define REFUSED(call, code, why) do {                                   \
	ck_assert_int_eq((call), (code));                               \
	ck_assert_ptr_nonnull(a.reason);                                \
	ck_assert_str_eq(a.reason, (why));                              \
} while (0)

START_TEST(test_activation_refusals_in_order)
{
	struct msgs m;
	struct sam_authorize_req *r = NULL;
	struct sam_audit a;
	uint8_t big[KAK_MAX_SIG + 1] = { 0 }, junk[3] = { 0xff, 0xff, 0xff };
	char longid[RSSP_MAX_ID_LEN + 2];

	memset(longid, 'x', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = '\0';

	memset(&a, 0, sizeof(a));
	REFUSED(sam_decode_authorize(junk, sizeof(junk), &r, &a), RSSP_E_INVAL, "malformed request");
	REFUSED(sam_decode_authorize(junk, SAM_MAX_AUTHORIZE_MSG + 1, &r, &a), RSSP_E_EXHAUSTED,
	    "message too large");
	activation(&m);
	m.req.request_id = longid;
	REFUSED(decode_auth(&m, &r, &a), RSSP_E_INVAL, "request id too long");
	activation(&m);
	m.req.purpose_case = RSSP__ENGINE__V1__AUTHORIZE_REQUEST__PURPOSE__NOT_SET;
	REFUSED(decode_auth(&m, &r, &a), RSSP_E_INVAL, "purpose missing");
	activation(&m);
	m.act.device_uuid = "";
	REFUSED(decode_auth(&m, &r, &a), RSSP_E_INVAL, "id length out of range");
	ck_assert_str_eq(a.credential_id, "cred-1"); /* audited as far as understood */
	activation(&m);
	m.act.owner_id = "bad\xc0\xaf";                /* overlong UTF-8 */
	REFUSED(decode_auth(&m, &r, &a), RSSP_E_INVAL, "id length out of range");
	activation(&m);
	m.act.key_algo = 5;
	REFUSED(decode_auth(&m, &r, &a), RSSP_E_UNSUPPORTED, "unknown key algorithm");
	activation(&m);
	m.act.validity_days = 0;
	REFUSED(decode_auth(&m, &r, &a), RSSP_E_INVAL, "validity out of range");
	activation(&m);
	m.act.nonce.len = RSSP_MIN_NONCE_LEN - 1;
	REFUSED(decode_auth(&m, &r, &a), RSSP_E_INVAL, "nonce length out of range");
	activation(&m);
	m.req.kak = NULL;
	REFUSED(decode_auth(&m, &r, &a), RSSP_E_INVAL, "kak missing");
	ck_assert_ptr_null(a.algo);
	activation(&m);
	m.req.signature.data = big;
	m.req.signature.len = sizeof(big);
	REFUSED(decode_auth(&m, &r, &a), RSSP_E_INVAL, "signature length out of range");
	activation(&m);
	m.act.voucher = NULL;
	REFUSED(decode_auth(&m, &r, &a), RSSP_E_INVAL, "voucher missing");
	activation(&m);
	m.vo.to_be_signed.len = vlen - 1;
	REFUSED(decode_auth(&m, &r, &a), RSSP_E_INVAL, "voucher malformed");
	activation(&m);
	m.vo.ra_key_id.len = 31;
	REFUSED(decode_auth(&m, &r, &a), RSSP_E_INVAL, "voucher key id mismatch");
	activation(&m);
	m.vo.signature.len = 0;
	REFUSED(decode_auth(&m, &r, &a), RSSP_E_INVAL, "voucher signature length out of range");
	/* first failure wins: a bad key algorithm and no KAK report the algorithm */
	activation(&m);
	m.act.key_algo = 0;
	m.req.kak = NULL;
	REFUSED(decode_auth(&m, &r, &a), RSSP_E_UNSUPPORTED, "unknown key algorithm");
	ck_assert_ptr_null(r);
}
END_TEST

START_TEST(test_approval_refusals_in_order)
{
	struct msgs m;
	struct sam_authorize_req *r = NULL;
	struct sam_audit a;
	static uint8_t spki_big[KAK_MAX_SPKI + 1];

	approval(&m);
	m.ap.key_label = "";
	REFUSED(decode_auth(&m, &r, &a), RSSP_E_INVAL, "id length out of range");
	ck_assert_str_eq(a.event, "authorize.approval");
	ck_assert_str_eq(a.approval_id, "req-1");
	approval(&m);
	m.ap.hash_algo = 4;
	REFUSED(decode_auth(&m, &r, &a), RSSP_E_UNSUPPORTED, "unknown hash algorithm");
	approval(&m);
	m.ap.n_hashes = 0;
	REFUSED(decode_auth(&m, &r, &a), RSSP_E_INVAL, "hash count out of range");
	approval(&m);
	hv[1].len = 47;
	REFUSED(decode_auth(&m, &r, &a), RSSP_E_INVAL, "digest length mismatch");
	ck_assert_uint_eq(a.n_hashes, 2);
	ck_assert_str_eq(a.hashes_sha256, "");      /* not summed: the digests were not understood */
	approval(&m);
	m.ap.num_signatures = 0;
	REFUSED(decode_auth(&m, &r, &a), RSSP_E_INVAL, "num signatures out of range");
	ck_assert_uint_eq(strlen(a.hashes_sha256), 64); /* summed before this check */
	approval(&m);
	m.ap.num_signatures = RSSP_MAX_HASHES + 1;
	REFUSED(decode_auth(&m, &r, &a), RSSP_E_INVAL, "num signatures out of range");
	approval(&m);
	m.ap.description = "\xff";
	REFUSED(decode_auth(&m, &r, &a), RSSP_E_INVAL, "text too long or not utf-8");
	approval(&m);
	m.ap.nonce.len = RSSP_MAX_NONCE_LEN + 1;
	REFUSED(decode_auth(&m, &r, &a), RSSP_E_INVAL, "nonce length out of range");
	approval(&m);
	m.ap.binding.len = 31;
	REFUSED(decode_auth(&m, &r, &a), RSSP_E_DENIED, "binding invalid");
	approval(&m);
	m.req.kak = NULL;
	REFUSED(decode_auth(&m, &r, &a), RSSP_E_INVAL, "kak missing");
	approval(&m);
	m.req.signature.len = 0;
	REFUSED(decode_auth(&m, &r, &a), RSSP_E_INVAL, "signature length out of range");
	ck_assert_ptr_null(r);

	/* an SPKI over the cap is kept as a length only: the KAK parser refuses it */
	approval(&m);
	m.kak.public_key.data = spki_big;
	m.kak.public_key.len = sizeof(spki_big);
	ck_assert_int_eq(decode_auth(&m, &r, &a), 0);
	ck_assert_uint_eq(r->kak.spki_len, KAK_MAX_SPKI + 1);
	sam_authorize_req_free(r);
}
END_TEST

START_TEST(test_sign_hash_refusals_in_order)
{
	Rssp__Engine__V1__SignHashRequest s;
	struct sam_sign_req *r = NULL;
	struct sam_audit a;
	uint8_t junk[2] = { 0x0a, 0xff };

	memset(&a, 0, sizeof(a));
	REFUSED(sam_decode_sign_hash(junk, sizeof(junk), &r, &a), RSSP_E_INVAL, "malformed request");
	REFUSED(sam_decode_sign_hash(junk, SAM_MAX_SIGNHASH_MSG + 1, &r, &a), RSSP_E_EXHAUSTED,
	    "message too large");
	sign_req(&s);
	s.credential_id = "";
	REFUSED(decode_sign(&s, &r, &a), RSSP_E_INVAL, "id length out of range");
	sign_req(&s);
	s.hash_algo = 0;
	REFUSED(decode_sign(&s, &r, &a), RSSP_E_UNSUPPORTED, "unknown hash algorithm");
	sign_req(&s);
	s.sign_algo = 4;
	REFUSED(decode_sign(&s, &r, &a), RSSP_E_UNSUPPORTED, "unknown sign algorithm");
	ck_assert_ptr_null(a.algo);
	ck_assert_str_eq(a.credential_id, "cred-1");
	sign_req(&s);
	s.n_hashes = 0;
	REFUSED(decode_sign(&s, &r, &a), RSSP_E_INVAL, "hash count out of range");
	sign_req(&s);
	hv[0].len = 64;
	REFUSED(decode_sign(&s, &r, &a), RSSP_E_INVAL, "digest length mismatch");
	ck_assert_uint_eq(a.n_hashes, 2);
	ck_assert_ptr_null(r);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("sam_decode");
	TCase *tc = tcase_create("decode");
	SRunner *sr;
	int failed;

	memset(spki, 0x30, sizeof(spki));
	memset(sig, 0x31, sizeof(sig));
	memset(nonce, 0x4e, sizeof(nonce));
	memset(binding, 0xb1, sizeof(binding));
	memset(h1, 0x11, sizeof(h1));
	memset(h2, 0x22, sizeof(h2));
	memset(sadb, 0x5a, sizeof(sadb));
	{
		struct rssp_voucher v;

		memset(&v, 0, sizeof(v));
		memset(ra_id, 0x7a, sizeof(ra_id));
		snprintf(v.user_id, sizeof(v.user_id), "user-1");
		snprintf(v.common_name, sizeof(v.common_name), "Jos\xc3\xa9 Doe");
		snprintf(v.device_uuid, sizeof(v.device_uuid), "dev-1");
		memset(v.kak_sha256, 0x4b, sizeof(v.kak_sha256));
		v.issued_at = 1800000000;
		v.not_after = v.issued_at + 86400;
		memcpy(v.ra_key_id, ra_id, sizeof(ra_id));
		if (rssp_voucher_build(&v, &vbytes, &vlen) != 0)
			return EXIT_FAILURE;
	}
	tcase_add_test(tc, test_activation_is_copied_exactly);
	tcase_add_test(tc, test_approval_is_copied_exactly);
	tcase_add_test(tc, test_sign_hash_is_copied_exactly);
	tcase_add_test(tc, test_activation_refusals_in_order);
	tcase_add_test(tc, test_approval_refusals_in_order);
	tcase_add_test(tc, test_sign_hash_refusals_in_order);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	free(vbytes);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
