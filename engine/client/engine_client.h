/* engine_client.h - the gateway's client of the engine (gRPC over a unix socket).
 * Thread-safe: one client is shared by all threads; every call has its own queue.
 *
 * The typed calls (engine_activate, engine_approve, engine_sign_hash) are the seam
 * between the two processes: they own all protobuf work (proto/PROTOCOL.md) and map
 * every gRPC status to one result (struct engine_result), so that callers never see
 * the wire format or a gRPC status number. engine_call / engine_call_path pass raw
 * bytes: for the transport's own tests and for tests that send hostile messages. */
#ifndef RSSP_ENGINE_CLIENT_H
#define RSSP_ENGINE_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "authdata.h"
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
 * RSSP_E_INVAL for a bad method, RSSP_E_NOMEM. With 0 returned, a status other than OK
 * is the engine's own refusal, or gRPC's (a message over the channel's cap). */
int engine_call(struct engine_client *c, int method, const char *request_id,
    const uint8_t *req, size_t reqlen, uint8_t **respp, size_t *resplenp,
    int *statusp, char **msgp) RSSP_WUR;

/* As engine_call, for any method path ("/pkg.Service/Method"); for tests and tools. */
int engine_call_path(struct engine_client *c, const char *method_path,
    const char *request_id, const uint8_t *req, size_t reqlen, uint8_t **respp,
    size_t *resplenp, int *statusp, char **msgp) RSSP_WUR;

/* ---- typed calls ---------------------------------------------------------------- */

/* What became of a call. */
enum engine_status {
	ENGINE_OK = 0,
	ENGINE_REFUSED,     /* the engine answered and refused (see engine_refusal); it acted on nothing */
	ENGINE_UNAVAILABLE, /* not reached, or the engine cannot serve now (HSM down); nothing done */
	ENGINE_TIMEOUT,     /* no answer before the deadline: the engine may have acted */
	ENGINE_INTERNAL,    /* the engine failed, its answer broke the protocol, or a local failure
	                       (memory): the engine may have acted */
};

/* Why the engine refused (PROTOCOL.md, "Refusals"). */
enum engine_refusal {
	ENGINE_REFUSAL_NONE = 0,
	ENGINE_REFUSAL_INVALID,   /* malformed or out-of-range field (INVALID_ARGUMENT) */
	ENGINE_REFUSAL_DENIED,    /* signature, binding or SAD does not verify; replay (PERMISSION_DENIED) */
	ENGINE_REFUSAL_EXPIRED,   /* approval or SAD past its validity (FAILED_PRECONDITION) */
	ENGINE_REFUSAL_EXHAUSTED, /* the SAD's count used up; message too large (RESOURCE_EXHAUSTED) */
	ENGINE_REFUSAL_PROTOCOL,  /* any other status: a call outside the engine's protocol */
};

#define ENGINE_MESSAGE_MAX 128

/* The one result of a typed call. Filled by every typed call, whatever happened. */
struct engine_result {
	enum engine_status status;
	enum engine_refusal refusal;   /* ENGINE_REFUSAL_NONE unless status is ENGINE_REFUSED */
	bool answered;                 /* the engine itself answered (not only the transport) */
	int grpc_status;               /* the status received, for metrics and tests only; -1 when
	                                  none was (unreachable, deadline, local failure) */
	double seconds;                /* duration of the call on the wire */
	char message[ENGINE_MESSAGE_MAX]; /* the engine's status text, truncated; "" if none.
	                                  The engine never puts a secret there. */
};

/* What an activation returns; release with engine_activation_release(). */
struct engine_activation {
	char *key_label;
	uint8_t *binding; size_t binding_len;
	uint8_t *cert; size_t cert_len;         /* the credential's certificate, DER */
	uint8_t *chain; size_t chain_len;       /* issuers' DER concatenated, nearest first */
	uint8_t *pub; size_t pub_len;           /* the credential's SubjectPublicKeyInfo, DER */
};
void engine_activation_release(struct engine_activation *a);

/* Signatures returned by engine_sign_hash; release with engine_signatures_release(). */
struct engine_signatures {
	uint8_t **sig;                          /* n signatures, in the order of the hashes */
	size_t *len;
	size_t n;
};
void engine_signatures_release(struct engine_signatures *s);

/* Every typed call: deadline_ms is this call's deadline (0: the client's default given
 * to engine_client_new); request_id as for engine_call (NULL: none; also sent in the
 * message). Returns res->status and fills *res in every case; the out-parameter is set
 * only when ENGINE_OK. A wrong argument (NULL, a count that does not fit) is
 * ENGINE_INTERNAL without a call. */

/* The device's enrolment voucher as a registration authority signed it
 * (engine/common/voucher.h): the canonical bytes, the RA's signature, the RA key id. */
struct engine_voucher {
	const uint8_t *tbs; size_t tbs_len;
	const uint8_t *sig; size_t sig_len;
	const uint8_t *ra_key_id;               /* 32 bytes */
};

/* Authorize(activation) with the fields the KAK signed (f->kak_algo is the KAK's
 * algorithm; f->subject_cn is not sent: the engine takes the voucher's common name),
 * the signature and the voucher. On ENGINE_OK, *out is owned by the caller. */
enum engine_status engine_activate(struct engine_client *c, unsigned deadline_ms,
    const char *request_id, const struct rssp_activation_fields *f,
    const uint8_t *sig, size_t siglen, const struct engine_voucher *vo,
    struct engine_activation *out, struct engine_result *res) RSSP_WUR;

/* Authorize(approval) with the fields the KAK signed, the KAK's algorithm (approval
 * authData does not carry it), the credential's key label and binding, and the
 * signature. On ENGINE_OK, *sadp (malloc'd; the caller wipes and frees it) / *sadlenp
 * and *sad_expp (unix seconds) are set. */
enum engine_status engine_approve(struct engine_client *c, unsigned deadline_ms,
    const char *request_id, const struct rssp_approval_fields *f, int kak_algo,
    const char *key_label, const uint8_t *binding, size_t binding_len,
    const uint8_t *sig, size_t siglen, uint8_t **sadp, size_t *sadlenp,
    int64_t *sad_expp, struct engine_result *res) RSSP_WUR;

/* SignHash: n digests of hash_len bytes with the SAD. The SAD's copy in the packed
 * request is wiped after the call. On ENGINE_OK, *out holds exactly n signatures. */
enum engine_status engine_sign_hash(struct engine_client *c, unsigned deadline_ms,
    const char *request_id, const char *credential_id, const uint8_t *sad, size_t sadlen,
    int hash_algo, int sign_algo, const uint8_t *const *hashes, size_t n, size_t hash_len,
    struct engine_signatures *out, struct engine_result *res) RSSP_WUR;
/* The same with RSASSA-PSS parameters: pss_salt >= 0 asks for that salt length
 * (SignHashRequest.pss; the engine refuses one over the key's maximum), -1 for the
 * default (the hash length). */
enum engine_status engine_sign_hash_pss(struct engine_client *c, unsigned deadline_ms,
    const char *request_id, const char *credential_id, const uint8_t *sad, size_t sadlen,
    int hash_algo, int sign_algo, long pss_salt, const uint8_t *const *hashes, size_t n,
    size_t hash_len, struct engine_signatures *out, struct engine_result *res) RSSP_WUR;

/* 1 when the engine may have carried the call out although it did not say so
 * (ENGINE_OK, ENGINE_TIMEOUT, ENGINE_INTERNAL): a caller that spent something before
 * the call (a SAD's count) must not give it back. 0 when it certainly did nothing. */
int engine_may_have_acted(const struct engine_result *res);

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
