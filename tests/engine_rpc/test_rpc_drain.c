/* The engine's graceful stop (rpc_server_run's shutdown order), in process: every call in
 * flight is answered and its answer reaches the client; a call that arrives during the
 * drain is refused by the engine (UNAVAILABLE, "engine stopping", audited), not lost. */
#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <grpc/status.h>

#include "audit.h"
#include "engine_client.h"
#include "fake_engine.h"
#include "fixture.h"

enum { CLIENTS = 4, PER_CLIENT = 4, CALLS = CLIENTS * PER_CLIENT, ROUNDS = 4 };

static struct fe_paths fp;
static int entered, hold_ms;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;

/* Echoes the request after hold_ms. */
static int
h_hold(void *arg, const uint8_t *in, size_t inlen, uint8_t **outp, size_t *outlenp,
    struct sam_audit *a)
{
	uint8_t *out;

	(void)arg;
	pthread_mutex_lock(&mu);
	entered++;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	usleep((useconds_t)hold_ms * 1000);
	if ((out = malloc(inlen + 1)) == NULL)
		return RSSP_E_NOMEM;
	memcpy(out, in, inlen);
	*outp = out;
	*outlenp = inlen;
	a->signatures = 1;
	return 0;
}

static const struct rpc_method methods[] = {
	{ "/rssp.engine.v1.Engine/Authorize", 1024, h_hold, AUDIT_AUTHORIZE_APPROVAL },
	{ "/rssp.engine.v1.Engine/SignHash", 4096, h_hold, AUDIT_SIGNHASH },
};

static void
setup(void)
{
	fe_paths_new(&fp, "rpcdrain");
	entered = 0;
}

static void
teardown(void)
{
	fe_paths_free(&fp);
}

static void
start(struct fake_engine *r, unsigned workers)
{
	struct rpc_server_opts o;

	fake_engine_opts(&o, methods, 2, workers);
	o.probe_method = RPC_PROBE_METHOD;
	fake_engine_start(r, &fp, &o, getuid());
}

static void
wait_entered(int n)
{
	pthread_mutex_lock(&mu);
	while (entered < n)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
}

struct job {
	struct engine_client *c;
	char req[32];
	int rc, status;
	int echoed;
};

static void *
job_main(void *arg)
{
	struct job *j = arg;
	uint8_t *resp = NULL;
	size_t resplen = 0;
	char *msg = NULL;

	j->rc = engine_call(j->c, ENGINE_METHOD_SIGNHASH, "rid-drain", (const uint8_t *)j->req,
	    strlen(j->req), &resp, &resplen, &j->status, &msg);
	j->echoed = resp != NULL && resplen == strlen(j->req) && memcmp(resp, j->req, resplen) == 0;
	free(resp);
	free(msg);
	return NULL;
}

/* Many calls on several connections when the stop comes, half of them on a worker: each
 * gets an answer from the engine, never a transport error. Every call that reached a
 * handler gets its own bytes back; one that came after the stop may be refused
 * (UNAVAILABLE, the engine did nothing), round after round. (Before the shutdown order,
 * an answer could reach the client as "broken pipe".) */
START_TEST(test_every_call_in_flight_at_a_stop_gets_its_answer)
{
	struct fake_engine r;
	struct engine_client *c[CLIENTS];
	struct job j[CALLS];
	pthread_t th[CALLS];
	int round, i, ok;

	hold_ms = 300;
	for (round = 0; round < ROUNDS; round++) {
		entered = 0;
		start(&r, CALLS / 2);
		for (i = 0; i < CLIENTS; i++)
			ck_assert_int_eq(engine_client_new(fp.sock, 20000, &c[i]), 0);
		for (i = 0; i < CALLS; i++) {
			memset(&j[i], 0, sizeof(j[i]));
			j[i].c = c[i % CLIENTS];
			snprintf(j[i].req, sizeof(j[i].req), "round %d call %d", round, i);
			ck_assert_int_eq(pthread_create(&th[i], NULL, job_main, &j[i]), 0);
		}
		wait_entered(CALLS / 2);
		fake_engine_ask_stop(&r);
		ok = 0;
		for (i = 0; i < CALLS; i++) {
			pthread_join(th[i], NULL);
			ck_assert_msg(j[i].rc == 0 && ((j[i].status == GRPC_STATUS_OK && j[i].echoed) ||
			    j[i].status == GRPC_STATUS_UNAVAILABLE),
			    "round %d call %d: rc %d status %d", round, i, j[i].rc, j[i].status);
			ok += j[i].status == GRPC_STATUS_OK;
		}
		fake_engine_finish(&r);
		ck_assert_int_ge(ok, CALLS / 2);
		ck_assert_int_eq(ok, entered); /* every call a handler took was answered */
		for (i = 0; i < CLIENTS; i++)
			engine_client_free(c[i]);
		ck_assert_int_eq(access(fp.sock, F_OK), -1);
	}
}
END_TEST

/* A call that comes on an open connection once the stop has begun is refused by the
 * engine itself (its metadata: the client knows the engine did nothing) and audited;
 * the call in flight still gets its answer. */
START_TEST(test_a_call_during_the_drain_is_refused_by_the_engine_and_audited)
{
	struct fake_engine r;
	struct engine_client *c;
	struct job inflight;
	pthread_t th;
	uint8_t *resp = NULL;
	size_t resplen = 0;
	char *msg = NULL, *log;
	int rc, status = -1;

	hold_ms = 1500;
	start(&r, 2);
	ck_assert_int_eq(engine_client_new(fp.sock, 20000, &c), 0);
	memset(&inflight, 0, sizeof(inflight));
	inflight.c = c;
	snprintf(inflight.req, sizeof(inflight.req), "in flight");
	ck_assert_int_eq(pthread_create(&th, NULL, job_main, &inflight), 0);
	wait_entered(1);
	fake_engine_ask_stop(&r);
	usleep(200 * 1000); /* the stop is seen at once; the call in flight holds 1.5 s */
	rc = engine_call(c, ENGINE_METHOD_AUTHORIZE, "rid-late", (const uint8_t *)"late", 4,
	    &resp, &resplen, &status, &msg);
	ck_assert_int_eq(rc, 0);                       /* the engine's answer, not the transport's */
	ck_assert_int_eq(status, GRPC_STATUS_UNAVAILABLE);
	ck_assert_ptr_nonnull(msg);
	ck_assert_str_eq(msg, "engine stopping");
	ck_assert_ptr_null(resp);
	free(msg);
	pthread_join(th, NULL);
	ck_assert_int_eq(inflight.rc, 0);
	ck_assert_int_eq(inflight.status, GRPC_STATUS_OK);
	ck_assert(inflight.echoed);
	fake_engine_finish(&r);
	engine_client_free(c);
	ck_assert_int_eq(entered, 1); /* the late call never reached a handler */
	log = ef_slurp(fp.audit);
	ck_assert_ptr_nonnull(strstr(log, "\"request_id\":\"rid-late\""));
	ck_assert_ptr_nonnull(strstr(log, "engine stopping"));
	free(log);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("engine_rpc_drain");
	TCase *tc = tcase_create("drain");
	SRunner *sr;
	int failed;

	signal(SIGPIPE, SIG_IGN);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_every_call_in_flight_at_a_stop_gets_its_answer);
	tcase_add_test(tc, test_a_call_during_the_drain_is_refused_by_the_engine_and_audited);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
