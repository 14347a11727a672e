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

#include <stdint.h>
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
#define AUDIT_ENGINE_PROBES "engine.probes"     /* liveness probes answered, counted */
#define AUDIT_RPC_TOO_LARGE "rpc.too_large"
#define AUDIT_AUTHORIZE_ACTIVATION "authorize.activation"
#define AUDIT_AUTHORIZE_APPROVAL "authorize.approval"
#define AUDIT_SIGNHASH "signhash"

#define AUDIT_CHECKPOINT "audit.checkpoint"

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
 * path is opened for appending (created 0600), locked (flock, exclusive: a second
 * engine on the same log is refused with RSSP_E_CONFLICT), a torn last line (no
 * newline) is cut off, and the chain continues from its last line. Returns 0, RSSP_E_IO
 * (cannot open or read), RSSP_E_CONFLICT (locked by another process), RSSP_E_INVAL (the
 * last whole line is not an audit line: the operator must look before the engine writes
 * more), RSSP_E_NOMEM. On success *ap is owned by the caller, free with audit_free(). */
int audit_open(const char *path, struct audit **ap) RSSP_WUR;
void audit_free(struct audit *a);

/* Signs msg/len with the audit key; writes a DER ECDSA signature to sig (room for
 * AUDIT_MAX_SIG bytes) and its length to *siglenp. Returns 0 or RSSP_E*. */
#define AUDIT_MAX_SIG 160
typedef int (*audit_seal_fn)(void *arg, const uint8_t *msg, size_t len, uint8_t *sig,
    size_t *siglenp);

/* Turns checkpoints on: every `lines` lines, every `seconds` seconds with new lines (see
 * audit_tick), before a rotation and at audit_checkpoint. key_sha256 is the hex SHA-256
 * of the audit key's SubjectPublicKeyInfo (DER). When the log is a file, checkpoint lines
 * are also written to echo_fd (>= 0; standard output) for the log pipeline. Before
 * audit_write is called from several threads. */
void audit_set_sealer(struct audit *a, audit_seal_fn fn, void *arg, const char key_sha256[65],
    unsigned lines, unsigned seconds, int echo_fd);
/* Rotation by size: after a line makes the file at least max_bytes long (0: never). */
void audit_set_rotate_bytes(struct audit *a, unsigned long long max_bytes);

/* Writes one line and flushes it (one write(2)). A line written in part is cut off
 * again (ftruncate to the last whole line). Thread-safe. Returns 0 or RSSP_E_IO /
 * RSSP_E_NOMEM; a decision whose record cannot be written must not be released. */
int audit_write(struct audit *a, const struct audit_record *r) RSSP_WUR;

/* Writes a checkpoint now (shutdown). Returns 0, RSSP_E_UNSUPPORTED (no sealer), RSSP_E_IO. */
int audit_checkpoint(struct audit *a) RSSP_WUR;
/* A checkpoint when `seconds` passed since the last one and lines were written since.
 * Call about once a second. Returns 0 or the checkpoint's error. */
int audit_tick(struct audit *a) RSSP_WUR;
/* Rotation (SIGHUP): seals the file, renames it to PATH.<last seq, 20 digits> unless it
 * was moved already, continues the chain in a new PATH. A no-op for "-". Returns 0 or
 * RSSP_E_IO (the engine keeps writing to the old file). */
int audit_rotate(struct audit *a) RSSP_WUR;

/* What audit_scan hands back of a line. Strings are NUL-terminated, "" when absent. */
struct audit_entry {
	long long time;             /* unix seconds */
	char event[32];
	char result[16];
	char sad_id[33];
	char approval_key[65];
	long long sad_expires_at;
	unsigned long long signatures;
};

/* Reads the log at path and its rotated files (PATH.<20 digits>, newest first, as far
 * back as a file still holds lines at or after since) and calls fn for every line whose
 * time is at or after since. Lines are not verified here (audit-verify does that).
 * Returns 0, or RSSP_E_IO. A missing log is 0 with no call. */
int audit_scan(const char *path, long long since,
    void (*fn)(void *arg, const struct audit_entry *e), void *arg) RSSP_WUR;

struct audit_verify_opts {
	const char *key_pem;        /* the audit public key (PEM); NULL: audit-key.pem next to
	                               the first file, if there is one */
	const char *anchor;         /* NULL or a file of checkpoint lines that must match */
	int partial;                /* the first file may start after seq 1 */
};

struct audit_verify_result {
	size_t lines;
	size_t checkpoints;
	unsigned long long last_seq;
	unsigned long long sealed_seq;   /* seq of the last checkpoint, 0 when none or unchecked */
	int unchecked;                   /* no key: checkpoints were not checked */
	char head[65];                   /* hash of the last line */
};

/* Checks the chain over files (in the given order, one chain), every checkpoint's
 * signature (without a key: not checked, res->unchecked set) and every anchor (needs
 * the key). Returns 0
 * and fills *res when intact; else RSSP_E_DENIED and writes the first problem (file,
 * line number, what is wrong) to out; RSSP_E_IO when a file cannot be read. */
int audit_verify_files(const char *const *paths, size_t n, const struct audit_verify_opts *o,
    FILE *out, struct audit_verify_result *res) RSSP_WUR;

/* One file, no key, no anchor (checkpoint lines are then chain lines only). */
int audit_verify(const char *path, FILE *out, size_t *nlinesp, char headhex[65]) RSSP_WUR;

#endif
