/* The typed engine client (engine_activate, engine_approve, engine_sign_hash) against
 * the engine's real transport (rpc_server) with test handlers, in process: the fields
 * arrive as sent, answers come back as typed values, every gRPC status maps to one
 * engine_result, the per-call deadline is the call's, and broken answers are refused. */
#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rssp/engine/v1/engine.pb-c.h>

#include "audit.h"
#include "engine_client.h"
#include "fake_engine.h"

static struct fe_paths fp;

/* SignHash: the credential id says what to do. */
static int
h_sign(void *arg, const uint8_t *in, size_t inlen, uint8_t **outp, size_t *outlenp,
    struct sam_audit *a)
{
	Rssp__Engine__V1__SignHashRequest *rq;
	Rssp__Engine__V1__SignHashResponse rs = RSSP__ENGINE__V1__SIGN_HASH_RESPONSE__INIT;
	ProtobufCBinaryData sigs[8];
	char what[32];
	size_t i, n;
	uint8_t *out;
	int r = 0;

	(void)arg;
	if ((rq = rssp__engine__v1__sign_hash_request__unpack(NULL, inlen, in)) == NULL)
		return RSSP_E_INVAL;
	snprintf(what, sizeof(what), "%s", rq->credential_id);
	n = rq->n_hashes < 8 ? rq->n_hashes : 8;
	/* the fields arrive as sent */
	if (rq->sad.len != 3 || memcmp(rq->sad.data, "SAD", 3) != 0 || rq->hash_algo != 1 ||
	    rq->sign_algo != 3 || strcmp(rq->request_id, "rid-typed") != 0 ||
	    (n > 0 && rq->hashes[0].len != 32)) {
		r = RSSP_E_INVAL;
		goto out;
	}
	a->reason = "test";
	if (strcmp(what, "deny") == 0)
		r = RSSP_E_DENIED;
	else if (strcmp(what, "inval") == 0)
		r = RSSP_E_INVAL;
	else if (strcmp(what, "expired") == 0)
		r = RSSP_E_EXPIRED;
	else if (strcmp(what, "exhausted") == 0)
		r = RSSP_E_EXHAUSTED;
	else if (strcmp(what, "hsm") == 0)
		r = RSSP_E_HSM;
	else if (strcmp(what, "internal") == 0)
		r = RSSP_E_INTERNAL;
	else if (strcmp(what, "garbage") == 0) {
		if ((out = malloc(3)) == NULL)
			return RSSP_E_NOMEM;
		memcpy(out, "\xff\xff\xff", 3);
		*outp = out;
		*outlenp = 3;
	} else {
		if (strcmp(what, "slow") == 0)
			usleep(500 * 1000);
		if (strcmp(what, "short") == 0 && n > 0)
			n--;
		for (i = 0; i < n; i++) {
			sigs[i].data = (uint8_t *)"signature";
			sigs[i].len = 9;
		}
		rs.n_signatures = n;
		rs.signatures = sigs;
		*outlenp = rssp__engine__v1__sign_hash_response__get_packed_size(&rs);
		if ((*outp = malloc(*outlenp ? *outlenp : 1)) == NULL)
			return RSSP_E_NOMEM;
		rssp__engine__v1__sign_hash_response__pack(&rs, *outp);
	}
out:
	rssp__engine__v1__sign_hash_request__free_unpacked(rq, NULL);
	return r;
}

/* Authorize: an activation gets an ActivationResult with a chain of two; an approval
 * a SAD; an approval whose id is "wrong" gets an activation result instead. */
static int
h_authorize(void *arg, const uint8_t *in, size_t inlen, uint8_t **outp, size_t *outlenp,
    struct sam_audit *a)
{
	Rssp__Engine__V1__AuthorizeRequest *rq;
	Rssp__Engine__V1__AuthorizeResponse rs = RSSP__ENGINE__V1__AUTHORIZE_RESPONSE__INIT;
	Rssp__Engine__V1__ActivationResult act = RSSP__ENGINE__V1__ACTIVATION_RESULT__INIT;
	Rssp__Engine__V1__ApprovalResult app = RSSP__ENGINE__V1__APPROVAL_RESULT__INIT;
	ProtobufCBinaryData chain[2] = { { 2, (uint8_t *)"c1" }, { 3, (uint8_t *)"c22" } };
	int r = RSSP_E_INVAL;

	(void)arg;
	(void)a;
	if ((rq = rssp__engine__v1__authorize_request__unpack(NULL, inlen, in)) == NULL)
		return RSSP_E_INVAL;
	if (rq->kak == NULL || rq->kak->public_key.len != 4 || rq->signature.len != 5)
		goto out;
	if (rq->purpose_case == RSSP__ENGINE__V1__AUTHORIZE_REQUEST__PURPOSE_ACTIVATION) {
		const Rssp__Engine__V1__Activation *x = rq->activation;
		if (rq->kak->algo != 3 || strcmp(x->credential_id, "cred-1") != 0 ||
		    strcmp(x->owner_id, "owner-1") != 0 || strcmp(x->device_uuid, "dev-1") != 0 ||
		    x->key_algo != 2 || x->voucher == NULL ||
		    x->voucher->to_be_signed.len != 3 || x->voucher->signature.len != 4 ||
		    x->voucher->ra_key_id.len != 32 ||
		    x->validity_days != 30 || x->nonce.len != 16 || x->expires_at != 1234)
			goto out;
		act.key_label = "label-1";
		act.binding.data = (uint8_t *)"bind";
		act.binding.len = 4;
		act.certificate.data = (uint8_t *)"cert";
		act.certificate.len = 4;
		act.n_chain = 2;
		act.chain = chain;
		act.public_key.data = (uint8_t *)"pub";
		act.public_key.len = 3;
		rs.result_case = RSSP__ENGINE__V1__AUTHORIZE_RESPONSE__RESULT_ACTIVATION;
		rs.activation = &act;
	} else if (rq->purpose_case == RSSP__ENGINE__V1__AUTHORIZE_REQUEST__PURPOSE_APPROVAL) {
		const Rssp__Engine__V1__Approval *x = rq->approval;
		if (rq->kak->algo != 1 || strcmp(x->key_label, "label-1") != 0 ||
		    x->binding.len != 4 || x->n_hashes != 2 || x->hashes[1].len != 32 ||
		    x->hash_algo != 1 || x->num_signatures != 2 || strcmp(x->rp_name, "RP") != 0)
			goto out;
		if (strcmp(x->approval_id, "wrong") == 0) {
			act.key_label = "label-1";
			act.binding.data = (uint8_t *)"bind";
			act.binding.len = 4;
			act.certificate.data = (uint8_t *)"cert";
			act.certificate.len = 4;
			rs.result_case = RSSP__ENGINE__V1__AUTHORIZE_RESPONSE__RESULT_ACTIVATION;
			rs.activation = &act;
		} else {
			app.sad.data = (uint8_t *)"the-sad";
			app.sad.len = 7;
			app.sad_expires_at = 99;
			rs.result_case = RSSP__ENGINE__V1__AUTHORIZE_RESPONSE__RESULT_APPROVAL;
			rs.approval = &app;
		}
	} else
		goto out;
	*outlenp = rssp__engine__v1__authorize_response__get_packed_size(&rs);
	if ((*outp = malloc(*outlenp)) == NULL) {
		r = RSSP_E_NOMEM;
		goto out;
	}
	rssp__engine__v1__authorize_response__pack(&rs, *outp);
	r = 0;
out:
	rssp__engine__v1__authorize_request__free_unpacked(rq, NULL);
	return r;
}

static const struct rpc_method methods[] = {
	{ "/rssp.engine.v1.Engine/Authorize", 64 * 1024, h_authorize, AUDIT_AUTHORIZE_APPROVAL },
	{ "/rssp.engine.v1.Engine/SignHash", 64 * 1024, h_sign, AUDIT_SIGNHASH },
};

static void
setup(void)
{
	fe_paths_new(&fp, "ec");
}

static void
teardown(void)
{
	fe_paths_free(&fp);
}

/* n_methods 1: only Authorize is served (SignHash is then outside the table). */
static void
start(struct fake_engine *r, size_t n_methods)
{
	struct rpc_server_opts o;

	fake_engine_opts(&o, methods, n_methods, 2);
	fake_engine_start(r, &fp, &o, getuid());
}

static uint8_t h1[32], h2[32];
static const uint8_t *const hashes[2] = { h1, h2 };

static enum engine_status
sign(struct engine_client *c, const char *what, unsigned deadline_ms,
    struct engine_signatures *sigs, struct engine_result *res)
{
	return engine_sign_hash(c, deadline_ms, "rid-typed", what, (const uint8_t *)"SAD", 3, 1,
	    3, hashes, 2, 32, sigs, res);
}

START_TEST(test_signhash_returns_typed_signatures)
{
	struct fake_engine r;
	struct engine_client *c;
	struct engine_signatures sigs = { 0 };
	struct engine_result res;

	start(&r, 2);
	ck_assert_int_eq(engine_client_new(fp.sock, 5000, &c), 0);
	ck_assert_int_eq(sign(c, "ok", 0, &sigs, &res), ENGINE_OK);
	ck_assert_int_eq(res.status, ENGINE_OK);
	ck_assert_int_eq(res.refusal, ENGINE_REFUSAL_NONE);
	ck_assert(res.answered);
	ck_assert_int_eq(res.grpc_status, 0);
	ck_assert(res.seconds > 0);
	ck_assert_uint_eq(sigs.n, 2);
	ck_assert_uint_eq(sigs.len[1], 9);
	ck_assert_mem_eq(sigs.sig[1], "signature", 9);
	ck_assert_int_eq(engine_may_have_acted(&res), 1);
	engine_signatures_release(&sigs);
	ck_assert_ptr_null(sigs.sig);
	engine_client_free(c);
	fake_engine_stop(&r);
}
END_TEST

START_TEST(test_every_refusal_maps_to_one_reason_and_nothing_was_done)
{
	static const struct {
		const char *what;
		enum engine_status status;
		enum engine_refusal refusal;
		int may_have_acted;
	} cases[] = {
		{ "inval", ENGINE_REFUSED, ENGINE_REFUSAL_INVALID, 0 },
		{ "deny", ENGINE_REFUSED, ENGINE_REFUSAL_DENIED, 0 },
		{ "expired", ENGINE_REFUSED, ENGINE_REFUSAL_EXPIRED, 0 },
		{ "exhausted", ENGINE_REFUSED, ENGINE_REFUSAL_EXHAUSTED, 0 },
		{ "hsm", ENGINE_UNAVAILABLE, ENGINE_REFUSAL_NONE, 0 },
		{ "internal", ENGINE_INTERNAL, ENGINE_REFUSAL_NONE, 1 },
		{ "short", ENGINE_INTERNAL, ENGINE_REFUSAL_NONE, 1 },   /* n signatures != n hashes */
		{ "garbage", ENGINE_INTERNAL, ENGINE_REFUSAL_NONE, 1 }, /* does not unpack */
	};
	struct fake_engine r;
	struct engine_client *c;
	struct engine_signatures sigs = { 0 };
	struct engine_result res;
	size_t i;

	start(&r, 2);
	ck_assert_int_eq(engine_client_new(fp.sock, 5000, &c), 0);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ck_assert_int_eq(sign(c, cases[i].what, 0, &sigs, &res), cases[i].status);
		ck_assert_msg(res.status == cases[i].status && res.refusal == cases[i].refusal,
		    "%s: status %d refusal %d", cases[i].what, res.status, res.refusal);
		ck_assert(res.answered);
		ck_assert_int_eq(engine_may_have_acted(&res), cases[i].may_have_acted);
		ck_assert_ptr_null(sigs.sig); /* set only on ENGINE_OK */
	}
	/* the engine's text comes with a refusal */
	ck_assert_int_eq(sign(c, "deny", 0, &sigs, &res), ENGINE_REFUSED);
	ck_assert_str_eq(res.message, "test");
	engine_client_free(c);
	fake_engine_stop(&r);
}
END_TEST

START_TEST(test_a_method_outside_the_engine_table_is_a_protocol_refusal)
{
	struct fake_engine r;
	struct engine_client *c;
	struct engine_signatures sigs = { 0 };
	struct engine_result res;

	start(&r, 1);
	ck_assert_int_eq(engine_client_new(fp.sock, 5000, &c), 0);
	ck_assert_int_eq(sign(c, "ok", 0, &sigs, &res), ENGINE_REFUSED);
	ck_assert_int_eq(res.refusal, ENGINE_REFUSAL_PROTOCOL);
	ck_assert_int_eq(engine_may_have_acted(&res), 0);
	engine_client_free(c);
	fake_engine_stop(&r);
}
END_TEST

START_TEST(test_the_deadline_is_the_calls_own)
{
	struct fake_engine r;
	struct engine_client *c;
	struct engine_signatures sigs = { 0 };
	struct engine_result res;

	start(&r, 2);
	/* the client's default is short; a call that passes a longer deadline waits */
	ck_assert_int_eq(engine_client_new(fp.sock, 100, &c), 0);
	ck_assert_int_eq(sign(c, "slow", 0, &sigs, &res), ENGINE_TIMEOUT);
	ck_assert(!res.answered);
	ck_assert_int_eq(res.grpc_status, -1);
	ck_assert_int_eq(engine_may_have_acted(&res), 1);
	ck_assert_int_eq(sign(c, "slow", 5000, &sigs, &res), ENGINE_OK);
	ck_assert_uint_eq(sigs.n, 2);
	engine_signatures_release(&sigs);
	ck_assert_int_eq(sign(c, "slow", 100, &sigs, &res), ENGINE_TIMEOUT);
	engine_client_free(c);
	fake_engine_stop(&r);
}
END_TEST

static void *
cancel_soon(void *arg)
{
	usleep(150 * 1000);
	engine_client_cancel_all(arg);
	return NULL;
}

START_TEST(test_a_call_cut_short_by_cancel_all_may_have_acted)
{
	struct fake_engine r;
	struct engine_client *c;
	struct engine_signatures sigs = { 0 };
	struct engine_result res;
	struct timespec t0, t1;
	pthread_t th;
	double dt;

	start(&r, 2);
	ck_assert_int_eq(engine_client_new(fp.sock, 5000, &c), 0);
	ck_assert_int_eq(pthread_create(&th, NULL, cancel_soon, c), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* the handler takes 500 ms; the call is cut after ~150 ms, long before its deadline */
	ck_assert_int_eq(sign(c, "slow", 0, &sigs, &res), ENGINE_TIMEOUT);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	pthread_join(th, NULL);
	dt = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	ck_assert_msg(dt < 0.45, "the cut call took %.3f s", dt);
	ck_assert(!res.answered);
	ck_assert_int_eq(engine_may_have_acted(&res), 1); /* it reached the engine */
	/* later calls are not affected */
	ck_assert_int_eq(sign(c, "ok", 0, &sigs, &res), ENGINE_OK);
	engine_signatures_release(&sigs);
	engine_client_free(c);
	fake_engine_stop(&r);
}
END_TEST

START_TEST(test_no_engine_is_unavailable_without_an_answer)
{
	struct engine_client *c;
	struct engine_signatures sigs = { 0 };
	struct engine_result res;

	ck_assert_int_eq(engine_client_new(fp.sock, 300, &c), 0);
	ck_assert_int_eq(sign(c, "ok", 0, &sigs, &res), ENGINE_UNAVAILABLE);
	ck_assert(!res.answered);
	ck_assert_int_eq(res.grpc_status, -1);
	ck_assert_int_eq(engine_may_have_acted(&res), 0);
	engine_client_free(c);
	/* and a gateway without a client at all */
	ck_assert_int_eq(sign(NULL, "ok", 0, &sigs, &res), ENGINE_UNAVAILABLE);
	ck_assert(!res.answered);
}
END_TEST

START_TEST(test_activation_and_approval_carry_their_fields_both_ways)
{
	struct fake_engine r;
	struct engine_client *c;
	struct engine_activation act = { 0 };
	struct engine_result res;
	struct rssp_activation_fields f;
	struct rssp_approval_fields p;
	struct engine_voucher vo;
	static const uint8_t rakey[32] = { 9 };
	uint8_t nonce[16] = { 1 }, *sad = NULL;
	size_t sadlen = 0;
	int64_t exp = 0;

	start(&r, 2);
	ck_assert_int_eq(engine_client_new(fp.sock, 5000, &c), 0);
	memset(&f, 0, sizeof(f));
	f.credential_id = "cred-1";
	f.owner_id = "owner-1";
	f.device_uuid = "dev-1";
	f.kak_spki = (const uint8_t *)"spki";
	f.kak_spki_len = 4;
	f.kak_algo = 3;
	f.key_algo = 2;
	f.subject_cn = "Jane";
	f.validity_days = 30;
	vo.tbs = (const uint8_t *)"tbs";
	vo.tbs_len = 3;
	vo.sig = (const uint8_t *)"rsig";
	vo.sig_len = 4;
	vo.ra_key_id = rakey;
	f.nonce = nonce;
	f.nonce_len = sizeof(nonce);
	f.expires_at = 1234;
	ck_assert_int_eq(engine_activate(c, 0, "rid-a", &f, (const uint8_t *)"sig-1", 5, &vo, &act,
	    &res), ENGINE_OK);
	ck_assert_str_eq(act.key_label, "label-1");
	ck_assert_uint_eq(act.binding_len, 4);
	ck_assert_mem_eq(act.binding, "bind", 4);
	ck_assert_uint_eq(act.cert_len, 4);
	ck_assert_uint_eq(act.chain_len, 5);
	ck_assert_mem_eq(act.chain, "c1c22", 5); /* nearest first, concatenated */
	ck_assert_uint_eq(act.pub_len, 3);
	engine_activation_release(&act);
	ck_assert_ptr_null(act.key_label);

	memset(&p, 0, sizeof(p));
	p.approval_id = "app-1";
	p.credential_id = "cred-1";
	p.owner_id = "owner-1";
	p.device_uuid = "dev-1";
	p.kak_spki = (const uint8_t *)"spki";
	p.kak_spki_len = 4;
	p.hash_algo = 1;
	p.hashes = hashes;
	p.n_hashes = 2;
	p.hash_len = 32;
	p.num_signatures = 2;
	p.rp_name = "RP";
	p.description = "doc";
	p.nonce = nonce;
	p.nonce_len = sizeof(nonce);
	p.expires_at = 1234;
	ck_assert_int_eq(engine_approve(c, 0, "rid-b", &p, 1, "label-1", (const uint8_t *)"bind", 4,
	    (const uint8_t *)"sig-2", 5, &sad, &sadlen, &exp, &res), ENGINE_OK);
	ck_assert_uint_eq(sadlen, 7);
	ck_assert_mem_eq(sad, "the-sad", 7);
	ck_assert_int_eq(exp, 99);
	free(sad);
	sad = NULL;
	/* an answer of the wrong kind breaks the protocol: nothing is handed out */
	p.approval_id = "wrong";
	ck_assert_int_eq(engine_approve(c, 0, "rid-c", &p, 1, "label-1", (const uint8_t *)"bind", 4,
	    (const uint8_t *)"sig-2", 5, &sad, &sadlen, &exp, &res), ENGINE_INTERNAL);
	ck_assert_ptr_null(sad);
	/* a refusal: the handler refuses a field it does not expect */
	f.key_algo = 1;
	ck_assert_int_eq(engine_activate(c, 0, "rid-d", &f, (const uint8_t *)"sig-1", 5, &vo, &act,
	    &res), ENGINE_REFUSED);
	ck_assert_int_eq(res.refusal, ENGINE_REFUSAL_INVALID);
	ck_assert_ptr_null(act.key_label);
	engine_client_free(c);
	fake_engine_stop(&r);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("engine_client");
	TCase *tc = tcase_create("typed");
	SRunner *sr;
	int failed;

	signal(SIGPIPE, SIG_IGN);
	memset(h1, 0x11, sizeof(h1));
	memset(h2, 0x22, sizeof(h2));
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_signhash_returns_typed_signatures);
	tcase_add_test(tc, test_every_refusal_maps_to_one_reason_and_nothing_was_done);
	tcase_add_test(tc, test_a_method_outside_the_engine_table_is_a_protocol_refusal);
	tcase_add_test(tc, test_the_deadline_is_the_calls_own);
	tcase_add_test(tc, test_no_engine_is_unavailable_without_an_answer);
	tcase_add_test(tc, test_a_call_cut_short_by_cancel_all_may_have_acted);
	tcase_add_test(tc, test_activation_and_approval_carry_their_fields_both_ways);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
