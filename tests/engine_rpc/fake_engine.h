/* fake_engine.h - the engine's real transport (rpc_server) serving a test's own method
 * table in this process, on a thread of its own: what the transport (engine_rpc_transport),
 * drain (engine_rpc_drain), typed-client (engine_rpc_client) and circuit-breaker
 * (gateway_engine_health) suites talk to instead of the rssp-engine binary. The
 * handlers are the test's; the socket rules, the closed method table, the peer-uid
 * check, draining and the audit log are the engine's own code.
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

/* Sets o to serve the table methods (n_methods of them) on workers workers, every other
 * option zero (the caller may set the slow / probe options afterwards). */
void fake_engine_opts(struct rpc_server_opts *o, const struct rpc_method *methods,
    size_t n_methods, unsigned workers);

/* Starts serving per o on p->sock, the only peer allowed uid, the audit log p->audit
 * (appended to); o's socket_path, uids and audit are set here. Returns when the server
 * thread runs; calls may arrive before the socket is bound (clients wait or retry). */
void fake_engine_start(struct fake_engine *fe, const struct fe_paths *p,
    const struct rpc_server_opts *o, uid_t uid);

/* Stops it as SIGTERM stops the engine (no new calls, calls in flight drain), asserts
 * that the server's run ended cleanly (0), and frees it and its audit log:
 * fake_engine_ask_stop, then fake_engine_finish. */
void fake_engine_stop(struct fake_engine *fe);

/* The two halves of fake_engine_stop, for a test that acts during the drain: asks the
 * server to stop and returns at once; waits for the drain to end and frees. */
void fake_engine_ask_stop(struct fake_engine *fe);
void fake_engine_finish(struct fake_engine *fe);

/* Fills sa with the unix socket address of path (asserts that it fits). */
void fe_sockaddr(const char *path, struct sockaddr_un *sa);

#endif
