/* audit.h - the engine's audit log: one JSON line per decision, hash-chained.
 *
 * Each line is a JSON object with the fields, in this order: time (RFC 3339 UTC),
 * seq (from 1), event, request_id, peer_uid, method, credential_id, approval_id,
 * key_label, kak_sha256, ra_key_id, sad_id, n_hashes, hashes_sha256, algo, signatures, result,
 * reason, prev. prev is the hex SHA-256 of the previous line's bytes (without its
 * newline); the first line of a log has 64 zeros. When the log is a file, the chain
 * continues across restarts (the last line is read on open). proto/PROTOCOL.md,
 * "Audit log". No line ever holds a PIN, SAD or key material: callers pass only
 * what struct sam_audit carries.
 */
#ifndef RSSP_AUDIT_H
#define RSSP_AUDIT_H

#include <stdio.h>
#include <sys/types.h>

#include "rssp_err.h"
#include "sam.h"

struct audit;

/* The closed set of events. */
#define AUDIT_ENGINE_START "engine.start"
#define AUDIT_ENGINE_STOP "engine.stop"
#define AUDIT_PEER_REFUSED "peer.refused"
#define AUDIT_RPC_UNIMPLEMENTED "rpc.unimplemented"
#define AUDIT_RPC_TOO_LARGE "rpc.too_large"
#define AUDIT_AUTHORIZE_ACTIVATION "authorize.activation"
#define AUDIT_AUTHORIZE_APPROVAL "authorize.approval"
#define AUDIT_SIGNHASH "signhash"

struct audit_record {
	const char *event;          /* one of AUDIT_* */
	const char *request_id;     /* NULL or sanitised by the caller; bounded to 128 here */
	long long peer_uid;         /* -1 when unknown */
	const char *method;         /* the gRPC method; NULL for none; bounded to 128 */
	const struct sam_audit *sam;/* NULL for events that are not about a request's content */
	const char *result;         /* "ok", "refused", "error" */
	const char *reason;         /* static text, NULL on success */
};

/* Opens the audit log: path "-" writes to standard output (a new chain), any other
 * path is opened for appending (created 0600) and the chain continues from its last
 * line. Returns 0, RSSP_E_IO (cannot open or read), RSSP_E_INVAL (the last line is not
 * an audit line: the operator must look before the engine writes more), RSSP_E_NOMEM.
 * On success *ap is owned by the caller, free with audit_free(). */
int audit_open(const char *path, struct audit **ap) RSSP_WUR;
void audit_free(struct audit *a);

/* Writes one line and flushes it (one write(2)). Thread-safe. Returns 0 or RSSP_E_IO /
 * RSSP_E_NOMEM; a decision whose record cannot be written must not be released. */
int audit_write(struct audit *a, const struct audit_record *r) RSSP_WUR;

/* Checks the chain of the log at path. Returns 0 and sets *nlinesp when intact; else
 * RSSP_E_DENIED and writes the first line that was edited, deleted or reordered (line
 * number, what is wrong) to out; RSSP_E_IO when the file cannot be read. The last line
 * has no successor to vouch for it: anchor the head (audit_verify prints its hash)
 * elsewhere when that matters. headhex (65 bytes) gets the hash of the last line. */
int audit_verify(const char *path, FILE *out, size_t *nlinesp, char headhex[65]) RSSP_WUR;

#endif
