/* The gateway's engine circuit breaker (engine_health) against the engine's real
 * transport (rpc_server) in process, a socket nobody answers on (a hung engine), and no
 * socket at all: down and up are found within the probe's periods, calls in flight are
 * cut short when the engine hangs, and "audit log unavailable" answers make the gateway
 * not ready until a call succeeds. */
#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "engine_client.h"
#include "engine_health.h"
#include "fake_engine.h"

#define PROBE_MS 100

static struct fe_paths fp;

static int
h_refuse(void *arg, const uint8_t *in, size_t inlen, uint8_t **outp, size_t *outlenp,
    struct sam_audit *a)
{
	(void)arg;
	(void)in;
	(void)inlen;
	(void)outp;
	(void)outlenp;
	a->reason = "test";
	return RSSP_E_INVAL;
}

static const struct rpc_method methods[] = {
	{ "/rssp.engine.v1.Engine/SignHash", 64 * 1024, h_refuse, AUDIT_SIGNHASH },
};

static void
start(struct fake_engine *r)
{
	struct rpc_server_opts o;

	fake_engine_opts(&o, methods, 1, 1);
	fake_engine_start(r, &fp, &o, getuid());
}

static void
setup(void)
{
	fe_paths_new(&fp, "eh");
}

static void
teardown(void)
{
	engine_health_stop();
	fe_paths_free(&fp);
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Waits up to secs for the breaker to be ready (want 0) or not (want 1); returns the
 * seconds it took, or -1. */
static double
await_ready(int want_down, double secs)
{
	const char *code = NULL, *why = NULL;
	double t0 = now();

	while (now() - t0 < secs) {
		int down = engine_health_ready(&code, &why) < 0;
		if (down == want_down && (!down || engine_health_admit() < 0 ||
		    strcmp(code, "audit_unavailable") == 0))
			return now() - t0;
		usleep(10 * 1000);
	}
	return -1;
}

START_TEST(test_no_engine_is_down_and_calls_are_refused_at_once)
{
	const char *code = NULL, *why = NULL;
	double dt;

	ck_assert_int_eq(engine_health_start(fp.sock, PROBE_MS, PROBE_MS * 3 / 2, NULL, NULL), 0);
	dt = await_ready(1, 1.0);
	ck_assert_msg(dt >= 0, "no engine not found down within 1 s");
	ck_assert_int_eq(engine_health_admit(), RSSP_E_UNAVAILABLE);
	ck_assert_int_eq(engine_health_ready(&code, &why), RSSP_E_UNAVAILABLE);
	ck_assert_str_eq(code, "engine_unavailable");
}
END_TEST

START_TEST(test_an_engine_found_down_and_up_again_within_the_probe_periods)
{
	struct fake_engine r;
	double dt;

	start(&r);
	ck_assert_int_eq(engine_health_start(fp.sock, PROBE_MS, PROBE_MS * 3 / 2, NULL, NULL), 0);
	ck_assert_msg(await_ready(0, 1.0) >= 0, "a live engine not found up within 1 s");
	ck_assert_int_eq(engine_health_admit(), 0);
	fake_engine_stop(&r);
	dt = await_ready(1, 1.0);
	ck_assert_msg(dt >= 0, "a stopped engine not found down within 1 s");
	start(&r);
	dt = await_ready(0, 2.0);
	ck_assert_msg(dt >= 0, "a restarted engine not found up within 2 s");
	ck_assert_int_eq(engine_health_admit(), 0);
	fake_engine_stop(&r);
}
END_TEST

struct inflight {
	struct engine_client *c;
	int rc;
	double seconds;
};

static void *
call_thread(void *arg)
{
	struct inflight *f = arg;
	uint8_t *resp = NULL;
	size_t resplen = 0;
	char *msg = NULL;
	int status = -1;
	double t0 = now();

	f->rc = engine_call(f->c, ENGINE_METHOD_SIGNHASH, "rid-hung", (const uint8_t *)"", 0,
	    &resp, &resplen, &status, &msg);
	f->seconds = now() - t0;
	free(resp);
	free(msg);
	return NULL;
}

/* A hung engine: its socket accepts connections (the kernel does) and nothing answers. */
START_TEST(test_a_hung_engine_is_found_down_and_calls_in_flight_are_cut_short)
{
	struct sockaddr_un sa;
	struct inflight f;
	pthread_t th;
	char rundir[300];
	int fd;

	snprintf(rundir, sizeof(rundir), "%s/run", fp.dir);
	ck_assert_int_eq(mkdir(rundir, 0750), 0);
	ck_assert_int_ge(fd = socket(AF_UNIX, SOCK_STREAM, 0), 0);
	fe_sockaddr(fp.sock, &sa);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(fd, 64), 0);
	memset(&f, 0, sizeof(f));
	ck_assert_int_eq(engine_client_new(fp.sock, 10000, &f.c), 0);
	ck_assert_int_eq(pthread_create(&th, NULL, call_thread, &f), 0);
	usleep(50 * 1000);
	ck_assert_int_eq(engine_health_start(fp.sock, PROBE_MS, PROBE_MS * 3 / 2, f.c, NULL), 0);
	ck_assert_msg(await_ready(1, 1.0) >= 0, "a hung engine not found down within 1 s");
	pthread_join(th, NULL);
	/* the call's deadline was 10 s: it was cut short, and may have reached the engine */
	ck_assert_msg(f.seconds < 1.5, "the call in flight took %.2f s", f.seconds);
	ck_assert_int_eq(f.rc, RSSP_E_TIMEOUT);
	engine_health_stop();
	engine_client_free(f.c);
	close(fd);
}
END_TEST

START_TEST(test_audit_unavailable_answers_mean_not_ready_until_a_call_succeeds)
{
	struct fake_engine r;
	struct engine_result er;
	const char *code = NULL, *why = NULL;

	start(&r);
	ck_assert_int_eq(engine_health_start(fp.sock, PROBE_MS, PROBE_MS * 3 / 2, NULL, NULL), 0);
	ck_assert_msg(await_ready(0, 1.0) >= 0, "a live engine not found up within 1 s");
	memset(&er, 0, sizeof(er));
	er.status = ENGINE_UNAVAILABLE;
	er.answered = true;
	er.grpc_status = 14;
	snprintf(er.message, sizeof(er.message), "%s", ENGINE_HEALTH_AUDIT_MSG);
	engine_health_note(&er);
	ck_assert_int_eq(engine_health_ready(&code, &why), RSSP_E_UNAVAILABLE);
	ck_assert_str_eq(code, "audit_unavailable");
	ck_assert_int_eq(engine_health_admit(), 0); /* calls still go: the engine refuses cheaply */
	/* probes do not clear it (they cannot tell), a successful call does */
	usleep(3 * PROBE_MS * 1000);
	ck_assert_int_eq(engine_health_ready(&code, &why), RSSP_E_UNAVAILABLE);
	memset(&er, 0, sizeof(er));
	er.status = ENGINE_OK;
	er.answered = true;
	engine_health_note(&er);
	ck_assert_int_eq(engine_health_ready(&code, &why), 0);
	engine_health_stop();
	fake_engine_stop(&r);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("engine_health");
	TCase *tc = tcase_create("breaker");
	SRunner *sr;
	int failed;

	signal(SIGPIPE, SIG_IGN);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_no_engine_is_down_and_calls_are_refused_at_once);
	tcase_add_test(tc, test_an_engine_found_down_and_up_again_within_the_probe_periods);
	tcase_add_test(tc, test_a_hung_engine_is_found_down_and_calls_in_flight_are_cut_short);
	tcase_add_test(tc, test_audit_unavailable_answers_mean_not_ready_until_a_call_succeeds);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
