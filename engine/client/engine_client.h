/* engine_client.h - the gateway's client of the engine (gRPC over a unix socket).
 * Thread-safe: one client is shared by all threads; every call has its own queue.
 * Requests and responses are serialized protobuf-c messages of
 * <rssp/engine/v1/engine.pb-c.h>; this module knows only bytes. */
#ifndef RSSP_ENGINE_CLIENT_H
#define RSSP_ENGINE_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "rssp_err.h"

#define ENGINE_METHOD_AUTHORIZE 1
#define ENGINE_METHOD_SIGNHASH 2

struct engine_client;

/* Creates a client of the engine at socket_path (no connection is made yet).
 * timeout_ms is each call's deadline (0: 5000). Returns 0, RSSP_E_INVAL, RSSP_E_NOMEM;
 * on success *cp is owned by the caller, free with engine_client_free(). */
int engine_client_new(const char *socket_path, unsigned timeout_ms,
    struct engine_client **cp) RSSP_WUR;
void engine_client_free(struct engine_client *c);

/* Calls a method (ENGINE_METHOD_*) with the serialized request, a deadline, and
 * request_id (NULL for none; at most 128 printable chars are sent) as metadata
 * "x-request-id". Returns 0 when the engine answered, whatever the status: *statusp is
 * the grpc_status_code, *msgp a malloc'd status message or NULL, and when the status is
 * OK *respp (malloc'd, free with free()) / *resplenp the serialized response (else NULL/0).
 * Returns RSSP_E_UNAVAILABLE when no connection to the engine could be made, so the
 * request was certainly not delivered; RSSP_E_TIMEOUT when it was (or may have been)
 * delivered but no answer of the engine's came back (deadline passed, connection cut,
 * cancelled by engine_client_cancel_all): the engine may have acted on it;
 * RSSP_E_INVAL for a bad method, RSSP_E_NOMEM. A status other than OK with 0 returned is
 * the engine's own answer (a definite refusal: PROTOCOL.md, "Did the engine sign?"). */
int engine_call(struct engine_client *c, int method, const char *request_id,
    const uint8_t *req, size_t reqlen, uint8_t **respp, size_t *resplenp,
    int *statusp, char **msgp) RSSP_WUR;

/* As engine_call, for any method path ("/pkg.Service/Method"); for tests and tools. */
int engine_call_path(struct engine_client *c, const char *method_path,
    const char *request_id, const uint8_t *req, size_t reqlen, uint8_t **respp,
    size_t *resplenp, int *statusp, char **msgp) RSSP_WUR;

/* Cuts every call in flight on c short (they return RSSP_E_TIMEOUT within ~100 ms):
 * for a caller that learnt the engine stopped answering. Thread-safe. */
void engine_client_cancel_all(struct engine_client *c);

/* Forgets the reconnection backoff (up to a second after failures) so that the next
 * call or engine_client_ready() connects at once: for a caller that learnt the engine is
 * back. Thread-safe. */
void engine_client_reconnect(struct engine_client *c);

/* 0 if the engine is reachable within timeout_ms, else RSSP_E_UNAVAILABLE. */
int engine_client_ready(struct engine_client *c, unsigned timeout_ms) RSSP_WUR;

#endif
