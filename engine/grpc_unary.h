/* grpc_unary.h - the one gRPC client call of the tree: a unary call on a unix socket
 * channel (the six-op batch: initial metadata with an optional x-request-id, the
 * message, close; then the answer's initial metadata, message and status) on a private
 * pluck queue. Linked by the engine's client library (engine/client) and by the daemon
 * for `rssp-engine probe` alone; the gRPC C core API it uses is not stable between
 * minor releases, so it stays behind this header. Thread-safe: calls on one channel may
 * run on many threads. The caller holds a grpc_init() for as long as it uses it. */
#ifndef RSSP_GRPC_UNARY_H
#define RSSP_GRPC_UNARY_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <grpc/grpc.h>

#include "rssp_err.h"

/* A channel to unix:socket_path with args (NULL: gRPC's defaults). NULL when out of
 * memory or gRPC refuses; else free with grpc_channel_destroy(). */
grpc_channel *grpc_unary_channel_new(const char *socket_path, const grpc_channel_args *args);

/* What came back from a call that completed. */
struct grpc_unary_result {
	int status;         /* the grpc_status_code, the peer's or gRPC's own */
	int marked;         /* the answer's initial metadata held the key `mark` */
	int cancelled;      /* *cancel_gen changed while waiting: the call was cancelled */
	char *details;      /* the status text, NUL-terminated, malloc'd; NULL when empty */
	uint8_t *resp;      /* the message (malloc'd, non-NULL even when empty), or NULL
	                     * when none came */
	size_t resplen;
};

/* Calls a method on ch: the registered call reg (from grpc_channel_register_call) or,
 * when reg is NULL, the method path. The call ends at deadline_ms from now.
 * request_id: NULL or the x-request-id metadata (cut to 128 characters, bytes outside
 * printable ASCII sent as '?'). cancel_gen: NULL, or a counter read at the start; when it
 * changes while the call waits (checked every 100 ms) the call is cancelled. mark: NULL
 * or an initial metadata key to look for (res->marked).
 * Returns 0 when the call completed, whatever its status (*res filled, release it with
 * grpc_unary_result_release()), RSSP_E_NOMEM, or RSSP_E_INTERNAL (gRPC would not
 * create or run the call); on an error *res is left empty. */
int grpc_unary(grpc_channel *ch, void *reg, const char *path, unsigned deadline_ms,
    const char *request_id, const uint8_t *req, size_t reqlen, atomic_uint *cancel_gen,
    const char *mark, struct grpc_unary_result *res) RSSP_WUR;

/* Frees what a result holds and empties it; accepts an empty one. */
void grpc_unary_result_release(struct grpc_unary_result *res);

#endif
