/* The engine's transport (rpc_server + engine_client) with test handlers, in process:
 * the closed method table, size limits, peer uids, the socket rules, draining, audit. */
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

#include <grpc/status.h>

#include "audit.h"
#include "engine_client.h"
#include "fake_engine.h"
#include "fixture.h"
#include "rssp_log.h"

static struct fe_paths fp;
static int calls_seen;
static int slow_entered;
static int kg_entered, kg_release, kg_done, kg_busy;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;

/* Echoes the request; "deny..." is refused; "slow..." takes a while. */
static int
h_echo(void *arg, const uint8_t *in, size_t inlen, uint8_t **outp, size_t *outlenp,
    struct sam_audit *a)
{
	uint8_t *out;

	(void)arg;
	pthread_mutex_lock(&mu);
	calls_seen++;
	pthread_mutex_unlock(&mu);
	snprintf(a->credential_id, sizeof(a->credential_id), "cred-echo");
	if (inlen >= 4 && memcmp(in, "deny", 4) == 0) {
		a->reason = "test denial";
		return RSSP_E_DENIED;
	}
	if (inlen >= 7 && memcmp(in, "hsmfail", 7) == 0) {
		a->reason = "hsm failure";
		return RSSP_E_HSM;
	}
	if (inlen >= 6 && memcmp(in, "keygen", 6) == 0) {
		/* a key generation: runs until the test lets it end (at most 30 s) */
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 30;
		pthread_mutex_lock(&mu);
		kg_entered++;
		pthread_cond_broadcast(&cv);
		while (!kg_release && pthread_cond_timedwait(&cv, &mu, &until) == 0)
			;
		pthread_mutex_unlock(&mu);
	}
	if (inlen >= 4 && memcmp(in, "slow", 4) == 0) {
		pthread_mutex_lock(&mu);
		slow_entered++;
		pthread_cond_broadcast(&cv);
		pthread_mutex_unlock(&mu);
		usleep(500 * 1000);
	}
	if ((out = malloc(inlen + 1)) == NULL)
		return RSSP_E_NOMEM;
	memcpy(out, in, inlen);
	*outp = out;
	*outlenp = inlen;
	a->signatures = 1;
	return 0;
}

static const struct rpc_method methods[] = {
	{ "/rssp.engine.v1.Engine/Authorize", 1024, h_echo, AUDIT_AUTHORIZE_APPROVAL },
	{ "/rssp.engine.v1.Engine/SignHash", 4096, h_echo, AUDIT_SIGNHASH },
};

/* Authorize requests that start with "keygen" are slow (key generation). */
static int
is_keygen(const struct rpc_method *m, const uint8_t *in, size_t inlen)
{
	return strcmp(m->path, "/rssp.engine.v1.Engine/Authorize") == 0 && inlen >= 6 &&
	    memcmp(in, "keygen", 6) == 0;
}

static void
setup(void)
{
	fe_paths_new(&fp, "rpc");
	calls_seen = 0;
	slow_entered = 0;
	kg_entered = kg_release = kg_done = kg_busy = 0;
}

static void
teardown(void)
{
	fe_paths_free(&fp);
}

static void
start(struct fake_engine *r, uid_t uid)
{
	struct rpc_server_opts o;

	fake_engine_opts(&o, methods, 2, 4);
	o.probe_method = RPC_PROBE_METHOD;
	fake_engine_start(r, &fp, &o, uid);
}

/* start() with 2 workers, 1 key-generation worker and room for 2 waiting. */
static void
start_keygen(struct fake_engine *r)
{
	struct rpc_server_opts o;

	fake_engine_opts(&o, methods, 2, 2);
	o.slow = is_keygen;
	o.slow_workers = 1;
	o.slow_queue = 2;
	fake_engine_start(r, &fp, &o, getuid());
}

static int
call(struct engine_client *c, const char *path, const char *rid, const void *req, size_t len,
    int *status, char **msg, uint8_t **resp, size_t *resplen)
{
	*resp = NULL;
	*msg = NULL;
	if (path == NULL)
		return engine_call(c, ENGINE_METHOD_AUTHORIZE, rid, req, len, resp, resplen, status, msg);
	return engine_call_path(c, path, rid, req, len, resp, resplen, status, msg);
}

START_TEST(test_a_known_method_is_answered_and_audited_with_the_request_id)
{
	struct fake_engine r;
	struct engine_client *c;
	uint8_t *resp;
	size_t resplen;
	int status;
	char *msg, *log;

	start(&r, getuid());
	ck_assert_int_eq(engine_client_new(fp.sock, 5000, &c), 0);
	ck_assert_int_eq(engine_client_ready(c, 5000), 0);
	ck_assert_int_eq(call(c, NULL, "rid-abc-123", "hello", 5, &status, &msg, &resp, &resplen), 0);
	ck_assert_int_eq(status, GRPC_STATUS_OK);
	ck_assert_uint_eq(resplen, 5);
	ck_assert_mem_eq(resp, "hello", 5);
	free(resp);
	free(msg);
	ck_assert_int_eq(engine_call(c, ENGINE_METHOD_SIGNHASH, "rid-2", (const uint8_t *)"x", 1,
	    &resp, &resplen, &status, &msg), 0);
	ck_assert_int_eq(status, GRPC_STATUS_OK);
	free(resp);
	free(msg);
	engine_client_free(c);
	fake_engine_stop(&r);
	log = ef_slurp(fp.audit);
	ck_assert_ptr_nonnull(strstr(log, "\"event\":\"authorize.approval\",\"request_id\":\"rid-abc-123\""));
	ck_assert_ptr_nonnull(strstr(log, "\"event\":\"signhash\",\"request_id\":\"rid-2\""));
	{
		char want[64];
		snprintf(want, sizeof(want), "\"peer_uid\":%u,", (unsigned)getuid());
		ck_assert_ptr_nonnull(strstr(log, want));
	}
	ck_assert_ptr_nonnull(strstr(log, "\"credential_id\":\"cred-echo\""));
	free(log);
}
END_TEST

START_TEST(test_an_unknown_method_is_unimplemented_at_once_and_audited)
{
	struct fake_engine r;
	struct engine_client *c;
	uint8_t *resp;
	size_t resplen;
	int status;
	char *msg, *log;

	start(&r, getuid());
	/* a long deadline: an unanswered call would come back RSSP_E_TIMEOUT, not a status */
	ck_assert_int_eq(engine_client_new(fp.sock, 60000, &c), 0);
	ck_assert_int_eq(call(c, "/rssp.engine.v1.Engine/ExportKey", "rid-unk", "x", 1,
	    &status, &msg, &resp, &resplen), 0);
	ck_assert_int_eq(status, GRPC_STATUS_UNIMPLEMENTED);
	ck_assert_ptr_null(resp);
	free(msg);
	/* and again: the generic request is re-posted */
	ck_assert_int_eq(call(c, "/other.Service/Method\x01", "rid-unk2", "x", 1,
	    &status, &msg, &resp, &resplen), 0);
	ck_assert_int_eq(status, GRPC_STATUS_UNIMPLEMENTED);
	free(msg);
	engine_client_free(c);
	fake_engine_stop(&r);
	log = ef_slurp(fp.audit);
	ck_assert_ptr_nonnull(strstr(log, "\"event\":\"rpc.unimplemented\",\"request_id\":\"rid-unk\""));
	ck_assert_ptr_nonnull(strstr(log, "\"method\":\"/rssp.engine.v1.Engine/ExportKey\""));
	ck_assert_int_eq(calls_seen, 0);
	free(log);
}
END_TEST

static size_t
count_lines(const char *log, const char *needle)
{
	size_t n = 0;
	const char *p = log, *nl;

	while (*p != '\0') {
		nl = strchr(p, '\n');
		if (needle == NULL || memmem(p, nl != NULL ? (size_t)(nl - p) : strlen(p), needle,
		    strlen(needle)) != NULL)
			n++;
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	return n;
}

/* The liveness probe (every 500 ms from each gateway) is answered like any unknown
 * method but counted: one engine.probes line for many probes, not one line each. */
START_TEST(test_liveness_probes_are_counted_not_audited_one_by_one)
{
	struct fake_engine r;
	struct engine_client *c;
	uint8_t *resp;
	size_t resplen;
	int status, i;
	char *msg, *log;

	start(&r, getuid());
	ck_assert_int_eq(engine_client_new(fp.sock, 60000, &c), 0);
	for (i = 0; i < 300; i++) {
		ck_assert_int_eq(call(c, RPC_PROBE_METHOD, "engine-health-probe", "", 0, &status,
		    &msg, &resp, &resplen), 0);
		ck_assert_int_eq(status, GRPC_STATUS_UNIMPLEMENTED);
		ck_assert_str_eq(msg, "unknown method");
		ck_assert_ptr_null(resp);
		free(msg);
	}
	/* a name that only resembles it is an unknown method like any other: audited */
	ck_assert_int_eq(call(c, RPC_PROBE_METHOD "X", "rid-near", "", 0, &status, &msg, &resp,
	    &resplen), 0);
	ck_assert_int_eq(status, GRPC_STATUS_UNIMPLEMENTED);
	free(msg);
	ck_assert_int_eq(call(c, "/rssp.engine.v1.Engine/ExportKey", "rid-other", "x", 1, &status,
	    &msg, &resp, &resplen), 0);
	ck_assert_int_eq(status, GRPC_STATUS_UNIMPLEMENTED);
	free(msg);
	log = ef_slurp(fp.audit);
	ck_assert_uint_eq(count_lines(log, NULL), 2); /* 300 probes wrote nothing */
	ck_assert_uint_eq(count_lines(log, "\"event\":\"rpc.unimplemented\""), 2);
	ck_assert_ptr_nonnull(strstr(log, "\"request_id\":\"rid-other\",\"peer_uid\""));
	ck_assert_ptr_nonnull(strstr(log, "\"method\":\"" RPC_PROBE_METHOD "X\""));
	free(log);
	/* the count, in one line; nothing when there were none since */
	ck_assert_int_eq(rpc_server_audit_probes(r.s), 300);
	ck_assert_int_eq(rpc_server_audit_probes(r.s), 0);
	ck_assert_int_eq(call(c, RPC_PROBE_METHOD, NULL, "", 0, &status, &msg, &resp, &resplen), 0);
	ck_assert_int_eq(status, GRPC_STATUS_UNIMPLEMENTED);
	free(msg);
	ck_assert_int_eq(rpc_server_audit_probes(r.s), 1);
	engine_client_free(c);
	fake_engine_stop(&r);
	ck_assert_int_eq(calls_seen, 0);
	log = ef_slurp(fp.audit);
	ck_assert_uint_eq(count_lines(log, NULL), 4);
	ck_assert_uint_eq(count_lines(log, "\"event\":\"engine.probes\""), 2);
	ck_assert_ptr_nonnull(strstr(log, "\"event\":\"engine.probes\",\"request_id\":\"\","
	    "\"peer_uid\":-1,\"method\":\"" RPC_PROBE_METHOD "\""));
	ck_assert_ptr_nonnull(strstr(log, "\"result\":\"ok\",\"reason\":\"300 liveness probes\""));
	ck_assert_ptr_nonnull(strstr(log, "\"result\":\"ok\",\"reason\":\"1 liveness probes\""));
	free(log);
	/* the chain holds */
	{
		size_t n;
		char head[65];
		ck_assert_int_eq(audit_verify(fp.audit, stderr, &n, head), 0);
		ck_assert_uint_eq(n, 4);
	}
}
END_TEST

START_TEST(test_an_oversize_message_is_refused_before_the_handler_and_audited)
{
	struct fake_engine r;
	struct engine_client *c;
	uint8_t *resp, *big = calloc(1, 5000);
	size_t resplen;
	int status, rc, tries;
	char *msg, *log;

	start(&r, getuid());
	/* A deadline no busy machine reaches: each answer below must be a status, never a
	 * client-side RSSP_E_TIMEOUT. Connected first, so that no call waits on a connect. */
	ck_assert_int_eq(engine_client_new(fp.sock, 60000, &c), 0);
	ck_assert_int_eq(engine_client_ready(c, 20000), 0);
	/* Authorize's limit here is 1024 bytes */
	ck_assert_int_eq(call(c, NULL, "rid-big", big, 1025, &status, &msg, &resp, &resplen), 0);
	ck_assert_int_eq(status, GRPC_STATUS_RESOURCE_EXHAUSTED);
	free(msg);
	/* Beyond the channel's 1 MiB cap gRPC refuses it itself, while the client may still
	 * be sending it: the refusal then sometimes arrives as a reset of the stream or of
	 * the connection (a transport UNAVAILABLE, which the client reports as
	 * RSSP_E_TIMEOUT: "may have been delivered") instead of the RESOURCE_EXHAUSTED
	 * status. That race is gRPC's; the assertion stays: it is refused before any
	 * handler (calls_seen, the audit log below) and, asked again, with
	 * RESOURCE_EXHAUSTED. */
	{
		uint8_t *huge = calloc(1, 2 << 20);
		int saved = rssp_log_threshold;

		rssp_log_threshold = RSSP_LOG_DEBUG; /* the client logs what a reset said */
		for (tries = 0; tries < 5; tries++) {
			rc = call(c, NULL, "rid-huge", huge, 2 << 20, &status, &msg, &resp, &resplen);
			if (rc != RSSP_E_TIMEOUT)
				break;
			fprintf(stderr, "the 2 MiB call was reset instead of refused (try %d)\n",
			    tries + 1);
			ck_assert_int_eq(engine_client_ready(c, 20000), 0);
		}
		rssp_log_threshold = saved;
		ck_assert_int_eq(rc, 0);
		ck_assert_int_eq(status, GRPC_STATUS_RESOURCE_EXHAUSTED);
		ck_assert_ptr_null(resp);
		free(msg);
		free(huge);
	}
	ck_assert_int_eq(call(c, NULL, "rid-fits", big, 1024, &status, &msg, &resp, &resplen), 0);
	ck_assert_int_eq(status, GRPC_STATUS_OK);
	free(resp);
	free(msg);
	engine_client_free(c);
	fake_engine_stop(&r);
	ck_assert_int_eq(calls_seen, 1);
	log = ef_slurp(fp.audit);
	ck_assert_ptr_nonnull(strstr(log, "\"event\":\"rpc.too_large\",\"request_id\":\"rid-big\""));
	ck_assert_ptr_null(strstr(log, "rid-huge")); /* never reached the engine's code */
	free(log);
	free(big);
}
END_TEST

START_TEST(test_a_refusal_carries_its_status_and_reason)
{
	struct fake_engine r;
	struct engine_client *c;
	uint8_t *resp;
	size_t resplen;
	int status;
	char *msg, *log;

	start(&r, getuid());
	ck_assert_int_eq(engine_client_new(fp.sock, 5000, &c), 0);
	ck_assert_int_eq(call(c, NULL, "rid-deny", "deny", 4, &status, &msg, &resp, &resplen), 0);
	ck_assert_int_eq(status, GRPC_STATUS_PERMISSION_DENIED);
	ck_assert_str_eq(msg, "test denial");
	ck_assert_ptr_null(resp);
	free(msg);
	/* the engine's own UNAVAILABLE (its HSM) is an answer, not an unreachable engine */
	ck_assert_int_eq(call(c, NULL, "rid-hsm", "hsmfail", 7, &status, &msg, &resp, &resplen), 0);
	ck_assert_int_eq(status, GRPC_STATUS_UNAVAILABLE);
	ck_assert_str_eq(msg, "hsm failure");
	free(msg);
	engine_client_free(c);
	fake_engine_stop(&r);
	log = ef_slurp(fp.audit);
	ck_assert_ptr_nonnull(strstr(log, "\"result\":\"refused\",\"reason\":\"test denial\""));
	ck_assert_ptr_nonnull(strstr(log, "\"result\":\"error\",\"reason\":\"hsm failure\""));
	free(log);
}
END_TEST

START_TEST(test_a_peer_whose_uid_is_not_allowed_is_refused_and_audited)
{
	struct fake_engine r;
	struct engine_client *c;
	uint8_t *resp;
	size_t resplen;
	int status;
	char *msg, *log, want[64];

	ck_assert_uint_ne(getuid(), 65534);
	start(&r, 65534);
	ck_assert_int_eq(engine_client_new(fp.sock, 2000, &c), 0);
	ck_assert_int_eq(call(c, NULL, "rid-x", "hello", 5, &status, &msg, &resp, &resplen),
	    RSSP_E_UNAVAILABLE);
	ck_assert_int_eq(engine_client_ready(c, 300), RSSP_E_UNAVAILABLE);
	engine_client_free(c);
	fake_engine_stop(&r);
	ck_assert_int_eq(calls_seen, 0);
	log = ef_slurp(fp.audit);
	snprintf(want, sizeof(want), "\"event\":\"peer.refused\",\"request_id\":\"\",\"peer_uid\":%u,",
	    (unsigned)getuid());
	ck_assert_ptr_nonnull(strstr(log, want));
	free(log);
}
END_TEST

START_TEST(test_a_second_server_on_a_live_socket_refuses_and_a_stale_socket_is_replaced)
{
	struct fake_engine r, r2;
	struct rpc_server_opts o;
	struct rpc_server *s2 = NULL;
	struct audit *a2;
	struct engine_client *c;
	struct sockaddr_un sa;
	struct stat st;
	uid_t uid = getuid();
	uint8_t *resp;
	size_t resplen;
	int status, fd;
	char *msg;

	start(&r, uid);
	ck_assert_int_eq(audit_open("-", &a2), 0);
	fake_engine_opts(&o, methods, 2, 1);
	o.socket_path = fp.sock;
	o.uids = &uid;
	o.n_uids = 1;
	o.audit = a2;
	ck_assert_int_eq(rpc_server_new(&o, &s2), RSSP_E_CONFLICT);
	/* the first server still answers on its socket */
	ck_assert_int_eq(engine_client_new(fp.sock, 5000, &c), 0);
	ck_assert_int_eq(call(c, NULL, "rid", "hello", 5, &status, &msg, &resp, &resplen), 0);
	ck_assert_int_eq(status, GRPC_STATUS_OK);
	free(resp);
	free(msg);
	engine_client_free(c);
	fake_engine_stop(&r);
	/* the socket directory is 0750 */
	{
		char d[300];
		snprintf(d, sizeof(d), "%s/run", fp.dir);
		ck_assert_int_eq(stat(d, &st), 0);
		ck_assert_uint_eq(st.st_mode & 0777, 0750);
	}
	/* a stale socket file (nobody listening) is removed */
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	fe_sockaddr(fp.sock, &sa);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	start(&r2, uid);
	ck_assert_int_eq(engine_client_new(fp.sock, 5000, &c), 0);
	ck_assert_int_eq(call(c, NULL, "rid", "hello", 5, &status, &msg, &resp, &resplen), 0);
	ck_assert_int_eq(status, GRPC_STATUS_OK);
	free(resp);
	free(msg);
	engine_client_free(c);
	fake_engine_stop(&r2);
	audit_free(a2);
	ck_assert_int_ne(access(fp.sock, F_OK), 0);
}
END_TEST

struct inflight {
	struct engine_client *c;
	int rc, status;
};

static void *
slow_call(void *arg)
{
	struct inflight *f = arg;
	uint8_t *resp = NULL;
	size_t resplen;
	char *msg = NULL;

	f->rc = engine_call(f->c, ENGINE_METHOD_SIGNHASH, "rid-slow", (const uint8_t *)"slow", 4,
	    &resp, &resplen, &f->status, &msg);
	free(resp);
	free(msg);
	return NULL;
}

START_TEST(test_a_stop_drains_the_calls_in_flight)
{
	struct fake_engine r;
	struct engine_client *c;
	struct inflight f[3];
	pthread_t th[3];
	int i;

	/* Under load this fails about once in 25 runs with RSSP_E_TIMEOUT: the client logs
	 * "engine call failed (14): Broken pipe" (gRPC closes the connection after its
	 * graceful GOAWAY once the last call is answered; the client's write fails before
	 * it has read the answers). Logged at debug so that a failure shows the cause. */
	rssp_log_threshold = RSSP_LOG_DEBUG;
	start(&r, getuid());
	ck_assert_int_eq(engine_client_new(fp.sock, 20000, &c), 0);
	for (i = 0; i < 3; i++) {
		f[i].c = c;
		ck_assert_int_eq(pthread_create(&th[i], NULL, slow_call, &f[i]), 0);
	}
	pthread_mutex_lock(&mu);
	while (slow_entered < 3)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	fake_engine_stop(&r);
	for (i = 0; i < 3; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(f[i].rc, 0);
		ck_assert_int_eq(f[i].status, GRPC_STATUS_OK);
	}
	engine_client_free(c);
}
END_TEST

START_TEST(test_garbage_on_a_connection_does_not_disturb_the_server)
{
	struct fake_engine r;
	struct engine_client *c;
	struct sockaddr_un sa;
	uint8_t *resp, junk[4096];
	size_t resplen;
	int status, fd, i;
	char *msg;

	start(&r, getuid());
	fe_sockaddr(fp.sock, &sa);
	for (i = 0; i < 3; i++) {
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
		memset(junk, i == 0 ? 0xff : 'A' + i, sizeof(junk));
		if (i == 2)
			memcpy(junk, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24); /* preface, then junk */
		ck_assert_int_eq(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
		close(fd);
	}
	ck_assert_int_eq(engine_client_new(fp.sock, 5000, &c), 0);
	ck_assert_int_eq(call(c, NULL, "rid-after-junk", "hello", 5, &status, &msg, &resp, &resplen), 0);
	ck_assert_int_eq(status, GRPC_STATUS_OK);
	free(resp);
	free(msg);
	engine_client_free(c);
	fake_engine_stop(&r);
}
END_TEST

START_TEST(test_a_client_without_an_engine_gets_unavailable)
{
	struct engine_client *c;
	uint8_t *resp = NULL;
	size_t resplen;
	int status;
	char *msg = NULL;

	ck_assert_int_eq(engine_client_new(fp.sock, 2000, &c), 0);
	ck_assert_int_eq(engine_client_ready(c, 200), RSSP_E_UNAVAILABLE);
	ck_assert_int_eq(call(c, NULL, "rid", "x", 1, &status, &msg, &resp, &resplen),
	    RSSP_E_UNAVAILABLE);
	engine_client_free(c);
}
END_TEST

struct kg_job {
	struct engine_client *c;
	int status;
};

static void *
kg_thread(void *arg)
{
	struct kg_job *j = arg;
	uint8_t *resp = NULL;
	size_t resplen;
	char *msg = NULL;

	if (engine_call(j->c, ENGINE_METHOD_AUTHORIZE, "rid-kg", (const uint8_t *)"keygen rsa3072", 14,
	    &resp, &resplen, &j->status, &msg) != 0)
		j->status = -1;
	free(resp);
	free(msg);
	pthread_mutex_lock(&mu);
	kg_done++;
	kg_busy += j->status == GRPC_STATUS_RESOURCE_EXHAUSTED;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	return NULL;
}

START_TEST(test_key_generation_never_takes_the_workers_signing_needs)
{
	struct fake_engine r;
	struct engine_client *c;
	struct kg_job jobs[6];
	pthread_t th[6];
	uint8_t *resp;
	size_t resplen;
	int status, i, ok = 0, busy = 0;
	char *msg, *log;
	struct timespec t0, t1;
	double worst = 0;

	start_keygen(&r);
	ck_assert_int_eq(engine_client_new(fp.sock, 20000, &c), 0);
	ck_assert_int_eq(engine_client_ready(c, 5000), 0);
	/* six activations on a server with two workers, one of them for key generation
	 * (which runs until released below): the first one running, then five more */
	for (i = 0; i < 6; i++) {
		jobs[i].c = c;
		jobs[i].status = -2;
		ck_assert_int_eq(pthread_create(&th[i], NULL, kg_thread, &jobs[i]), 0);
		if (i > 0)
			continue;
		/* the key-generation worker has taken the first: it no longer waits */
		pthread_mutex_lock(&mu);
		while (kg_entered < 1)
			pthread_cond_wait(&cv, &mu);
		pthread_mutex_unlock(&mu);
	}
	/* of the five, two wait for the key-generation worker, three are refused at once */
	pthread_mutex_lock(&mu);
	while (kg_busy < 3)
		pthread_cond_wait(&cv, &mu);
	ck_assert_int_eq(kg_entered, 1);
	ck_assert_int_eq(kg_done, 3);
	pthread_mutex_unlock(&mu);
	/* SignHash and ordinary Authorize calls are answered at once meanwhile */
	for (i = 0; i < 10; i++) {
		double d;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		ck_assert_int_eq(engine_call(c, i % 2 ? ENGINE_METHOD_SIGNHASH : ENGINE_METHOD_AUTHORIZE,
		    "rid-fast", (const uint8_t *)"x", 1, &resp, &resplen, &status, &msg), 0);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		ck_assert_int_eq(status, GRPC_STATUS_OK);
		free(resp);
		free(msg);
		d = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
		if (d > worst)
			worst = d;
	}
	ck_assert_msg(worst < 0.5, "a fast call waited %.3f s behind key generation", worst);
	pthread_mutex_lock(&mu);
	kg_release = 1;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	for (i = 0; i < 6; i++) {
		pthread_join(th[i], NULL);
		ok += jobs[i].status == GRPC_STATUS_OK;
		busy += jobs[i].status == GRPC_STATUS_RESOURCE_EXHAUSTED;
	}
	/* one running, two waiting; the other three refused at once */
	ck_assert_int_eq(ok, 3);
	ck_assert_int_eq(busy, 3);
	engine_client_free(c);
	fake_engine_stop(&r);
	log = ef_slurp(fp.audit);
	ck_assert_ptr_nonnull(strstr(log, "too many key generations waiting"));
	free(log);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("engine_rpc_transport");
	TCase *tc = tcase_create("transport");
	SRunner *sr;
	int failed;

	signal(SIGPIPE, SIG_IGN);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_a_known_method_is_answered_and_audited_with_the_request_id);
	tcase_add_test(tc, test_key_generation_never_takes_the_workers_signing_needs);
	tcase_add_test(tc, test_an_unknown_method_is_unimplemented_at_once_and_audited);
	tcase_add_test(tc, test_liveness_probes_are_counted_not_audited_one_by_one);
	tcase_add_test(tc, test_an_oversize_message_is_refused_before_the_handler_and_audited);
	tcase_add_test(tc, test_a_refusal_carries_its_status_and_reason);
	tcase_add_test(tc, test_a_peer_whose_uid_is_not_allowed_is_refused_and_audited);
	tcase_add_test(tc, test_a_second_server_on_a_live_socket_refuses_and_a_stale_socket_is_replaced);
	tcase_add_test(tc, test_a_stop_drains_the_calls_in_flight);
	tcase_add_test(tc, test_garbage_on_a_connection_does_not_disturb_the_server);
	tcase_add_test(tc, test_a_client_without_an_engine_gets_unavailable);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
