/* rpc_server.h - the engine's transport: a gRPC C core server on a unix socket whose
 * connections the engine accepts itself (to check the peer's uid), a closed table of
 * methods with a size limit each, a worker pool for the handlers, an audit record per
 * decision, and a draining shutdown. Everything gRPC-specific of the server side stays
 * in rpc_server.c (the C core API changes between minor releases). */
#ifndef RSSP_RPC_SERVER_H
#define RSSP_RPC_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "audit.h"
#include "rssp_err.h"
#include "sam.h"

struct rpc_server;

/* A method's handler: in/inlen is the request message, at most the method's max_msg
 * bytes. Returns 0 with *outp (malloc'd; the server frees it) / *outlenp, or a negative
 * RSSP_E* code with a->reason set. Fills *a for the audit record (a->event may be left
 * NULL: the method's event is used). Called from the worker pool, concurrently. */
typedef int (*rpc_handler_fn)(void *arg, const uint8_t *in, size_t inlen,
    uint8_t **outp, size_t *outlenp, struct sam_audit *a);

struct rpc_method {
	const char *path;        /* full gRPC method, "/rssp.engine.v1.Engine/Authorize" */
	size_t max_msg;          /* larger requests: RESOURCE_EXHAUSTED, audited, not unpacked */
	rpc_handler_fn handler;
	const char *event;       /* audit event when the handler names none */
};

struct rpc_server_opts {
	const char *socket_path;
	const uid_t *uids;       /* peers allowed to connect */
	size_t n_uids;
	unsigned workers;        /* 1..64 */
	/* NULL, or returns 1 when a request of method m takes long (key generation). Such
	 * calls run on workers of their own (slow_workers), so that a burst of them never
	 * takes the workers the fast calls (SignHash) need; when slow_queue of them already
	 * wait, another is refused at once (RESOURCE_EXHAUSTED, audited). */
	int (*slow)(const struct rpc_method *m, const uint8_t *in, size_t inlen);
	unsigned slow_workers;   /* workers for slow calls, 0 = 1; 1..64 */
	unsigned slow_queue;     /* slow calls waiting for a worker at most, 0 = 16 */
	unsigned drain_seconds;  /* after a stop, in-flight calls get this long; 0 = 30 */
	struct audit *audit;     /* not owned */
	const struct rpc_method *methods; /* the closed table; not copied, must outlive */
	size_t n_methods;
	void *handler_arg;
	/* NULL, or called (with handler_arg) when a handler succeeded but its audit record
	 * could not be written, so nothing is released: gives back what the call spent
	 * (sam_undo). */
	void (*undo)(void *arg, const struct sam_audit *a);
	/* NULL, or the one method outside the table that liveness probes call (exactly
	 * RPC_PROBE_METHOD for the engine). It is answered UNIMPLEMENTED like any unknown
	 * method, but not audited call by call: it is counted, and rpc_server_audit_probes()
	 * writes the count. Every other unknown method is audited (rpc.unimplemented). */
	const char *probe_method;
};

/* The method `rssp-engine probe` and the gateway's circuit breaker call. */
#define RPC_PROBE_METHOD "/rssp.engine.v1.Engine/LivenessProbe"

/* Binds the socket: creates its directory (0750) if missing, refuses (RSSP_E_CONFLICT)
 * if a live process answers on the path, removes a stale socket file, makes the
 * socket 0660. Creates the gRPC server (not yet serving). Returns 0 or RSSP_E*; on
 * success *sp is owned by the caller, free with rpc_server_free(). */
int rpc_server_new(const struct rpc_server_opts *o, struct rpc_server **sp) RSSP_WUR;

/* Replaces opts->handler_arg (e.g. once the HSM is open, after the socket is bound).
 * Only before rpc_server_run. */
void rpc_server_set_handler_arg(struct rpc_server *s, void *arg);

/* Serves until stop_fd is readable (a signalfd, a pipe), then stops accepting, removes
 * the socket, refuses calls that still come on open connections (UNAVAILABLE "engine
 * stopping", audited, no handler runs), lets in-flight calls finish (cancelling them
 * after drain_seconds), and only then shuts gRPC down, so that every answer reaches its
 * client. Returns 0 after a clean drain, or RSSP_E*. Call once. */
int rpc_server_run(struct rpc_server *s, int stop_fd) RSSP_WUR;

void rpc_server_free(struct rpc_server *s);

/* Writes one engine.probes audit line with the number of probe_method calls answered
 * since the last such line (reason "<N> liveness probes"), when there were any; the
 * count is kept for the next line when the line cannot be written. Thread-safe; the
 * engine calls it every RSSP_AUDIT_PROBE_SECONDS and before engine.stop. Returns the
 * number of probes recorded (0: none, no line), or RSSP_E_IO / RSSP_E_NOMEM. */
long long rpc_server_audit_probes(struct rpc_server *s) RSSP_WUR;

/* Liveness: calls RPC_PROBE_METHOD (outside the table) on the engine at socket_path
 * with a deadline of timeout_ms; an engine that answers says UNIMPLEMENTED (and counts
 * the probe, see probe_method). Returns 0 when it did, else RSSP_E_UNAVAILABLE (*statusp: the
 * status seen, DEADLINE_EXCEEDED for a hung engine, UNAVAILABLE for none). */
int rpc_probe(const char *socket_path, unsigned timeout_ms, int *statusp) RSSP_WUR;

/* The gRPC status code (grpc_status_code) for an RSSP_E* code (sam.h's mapping). */
int rpc_status_of(int err);

#endif
