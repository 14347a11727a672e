/* fake_engine.h - the engine's real transport (rpc_server) serving a test's own method
 * table in this process, on a thread of its own: what the transport (engine_rpc_transport),
 * typed-client (engine_rpc_client) and circuit-breaker (gateway_engine_health) suites talk
 * to instead of the rssp-engine binary. The handlers are the test's; the socket rules,
 * the closed method table, the peer-uid check, draining and the audit log are the
 * engine's own code.
 *
 * Call these from inside a Check test: a set-up that fails is a failed assertion. */
#ifndef RSSP_TEST_FAKE_ENGINE_H
#define RSSP_TEST_FAKE_ENGINE_H

#include <pthread.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/un.h>

#include "rpc_server.h"

/* Where a fake engine lives: a private temporary directory (fixture.h's ef_tempdir),
 * its socket <dir>/run/engine.sock (the run/ directory is the server's to create) and
 * its audit log <dir>/audit.log. */
struct fe_paths {
	char dir[256];
	char sock[300];
	char audit[300];
};

/* Creates the directory "<prefix>XXXXXX" and fills p. */
void fe_paths_new(struct fe_paths *p, const char *prefix);
/* Removes p->dir and everything below it. */
void fe_paths_free(struct fe_paths *p);

/* A running fake engine. */
struct fake_engine {
	struct rpc_server *s;
	struct audit *audit;
	pthread_t th;
	int stop[2];
	int rc;
	uid_t uid;
};

/* Starts serving: o as the caller filled it (socket_path, methods, n_methods, workers,
 * and any slow / probe option), except that the only peer allowed is uid and the audit
 * log is opened at audit_path (appended to) here. Returns when the server thread runs;
 * calls may arrive before the socket is bound (clients wait or retry). */
void fake_engine_start(struct fake_engine *fe, const struct rpc_server_opts *o, uid_t uid,
    const char *audit_path);

/* Stops it as SIGTERM stops the engine (no new calls, calls in flight drain), asserts
 * that the server's run ended cleanly (0), and frees it and its audit log. */
void fake_engine_stop(struct fake_engine *fe);

/* Fills sa with the unix socket address of path (asserts that it fits). */
void fe_sockaddr(const char *path, struct sockaddr_un *sa);

#endif
