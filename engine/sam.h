/* sam.h - the signature activation module: the engine's decisions, independent of the
 * transport. The gRPC server (engine/rpc_server.c) hands it the serialized request
 * bytes of a method and gets serialized response bytes back; sam_decode.h unpacks,
 * checks the shape exactly (proto/PROTOCOL.md), copies into internal structs and frees
 * the wire object; then a handler (sam_handlers.h) acts. Thread-safe: the server calls
 * it from its worker pool.
 *
 * Decisions (engine/sam*.c): the CA key is EC P-384 (certificates ecdsa-with-SHA384);
 * credential keys are labelled "<credential_id>#<8 random hex>", a new label every
 * activation; a SAD expires sad_ttl after minting, never after its approval; an
 * approval may be valid at most 1 day ahead, an activation 7 days; approvals and
 * activations are remembered (replay) and SAD counts kept in memory until they
 * expire; the PIN file is read again for a login after the token lost it.
 */
#ifndef RSSP_SAM_H
#define RSSP_SAM_H

#include <stddef.h>
#include <stdint.h>

#include "authdata.h"
#include "rssp_err.h"

struct sam;

struct sam_config {
	const char *module_path;   /* PKCS#11 module, e.g. /usr/lib/softhsm/libsofthsm2.so */
	const char *token_label;
	const char *pin_file;      /* read once, must not be group/world accessible */
	unsigned sessions;         /* PKCS#11 session pool size (= worker count) */
	unsigned sad_ttl;          /* seconds a SAD stays valid after minting (default 300) */
	const char *ra_keys;       /* RSSP_RA_KEYS (ra_keys.h): the RA keys trusted for enrolment
	                            * vouchers; NULL: none, every activation is refused */
};

struct sam_init_opts {
	const char *ca_subject;    /* e.g. "CN=rssp CA,O=rssp"; NULL for a default */
	unsigned ca_validity_days; /* 0 for a default (3650) */
	int force;                 /* replace an initialised token's MAC and CA keys */
};

/* What a decision was about, filled by sam_authorize / sam_sign_hash as far as the
 * request was understood, for the audit record. Holds no secret: no SAD, no key
 * material, no PIN. reason is a static lowercase string, NULL on success. */
struct sam_audit {
	const char *event;                      /* "authorize.activation", "authorize.approval", "signhash" */
	const char *reason;
	char credential_id[RSSP_MAX_ID_LEN + 1];
	char approval_id[RSSP_MAX_ID_LEN + 1];
	char key_label[RSSP_MAX_ID_LEN + 1];
	char kak_sha256[65];                    /* hex; the KAK an activation bound, or an approval used */
	char ra_key_id[65];                     /* hex; the RA key whose voucher an activation used */
	char sad_id[33];                        /* hex; identifies the SAD, is not the SAD */
	long long sad_expires_at;               /* the SAD an approval minted: its expiry */
	char approval_key[65];                  /* hex; an approval's replay key */
	unsigned n_hashes;
	char hashes_sha256[65];                 /* hex SHA-256 over the concatenated hashes */
	const char *algo;                       /* e.g. "rsa-pss-sha256", "ecdsa-sha384", static */
	unsigned signatures;                    /* signatures released by this call */
	uint8_t undo_key[32];                   /* not audited: an activation's replay key (sam_undo) */
};

/* Initialises a token for the engine: the non-extractable HMAC key that seals bindings
 * and SADs, the CA key pair and its self-signed certificate. Refuses (RSSP_E_CONFLICT)
 * when the token is already initialised unless opts->force. Returns 0 or RSSP_E*. */
int sam_init_token(const struct sam_config *cfg, const struct sam_init_opts *opts) RSSP_WUR;

/* Loads the module, logs in (the PIN is wiped after login), finds the MAC key and the
 * CA, loads the RA keys (a set that cannot be read or holds a key it does not accept:
 * RSSP_E_IO / RSSP_E_INVAL). Returns 0 or RSSP_E*; on success *samp is owned by the caller, free with sam_free(). */
int sam_open(const struct sam_config *cfg, struct sam **samp) RSSP_WUR;
void sam_free(struct sam *s);

/* Authorize and SignHash: in/inlen is a serialized AuthorizeRequest / SignHashRequest.
 * Returns 0 and sets *outp (malloc'd, free with free()) / *outlenp to the serialized
 * response, or a negative RSSP_E* code with a->reason set. The transport maps codes to
 * gRPC status (proto/PROTOCOL.md):
 *   RSSP_E_INVAL, RSSP_E_UNSUPPORTED -> INVALID_ARGUMENT
 *   RSSP_E_DENIED, RSSP_E_REPLAY     -> PERMISSION_DENIED
 *   RSSP_E_EXPIRED                   -> FAILED_PRECONDITION
 *   RSSP_E_EXHAUSTED                 -> RESOURCE_EXHAUSTED
 *   RSSP_E_HSM, RSSP_E_UNAVAILABLE   -> UNAVAILABLE
 *   anything else                    -> INTERNAL
 * a->reason is the status message: a static text that names the refusal, never a secret. */
int sam_authorize(struct sam *s, const uint8_t *in, size_t inlen,
    uint8_t **outp, size_t *outlenp, struct sam_audit *a) RSSP_WUR;
int sam_sign_hash(struct sam *s, const uint8_t *in, size_t inlen,
    uint8_t **outp, size_t *outlenp, struct sam_audit *a) RSSP_WUR;
/* 1 when in is an AuthorizeRequest for an activation (it generates a key: seconds of
 * HSM work), else 0 (malformed requests included: sam_authorize refuses them). For the
 * transport, which runs key generation on workers of its own. */
int sam_authorize_generates_key(const uint8_t *in, size_t inlen);

/* Maximum serialized request size of each method, checked by the transport before
 * anything is unpacked. 1000 hashes of 64 bytes plus framing, and a SAD carrying them. */
#define SAM_MAX_AUTHORIZE_MSG (96 * 1024)
#define SAM_MAX_SIGNHASH_MSG (192 * 1024)

/* Labels of the engine's objects in the token. Credential keys are labelled
 * "<credential_id, cut to 119 bytes>#<8 random hex>", a new label every activation. */
#define SAM_MAC_LABEL "rssp-mac"
#define SAM_CA_LABEL "rssp-ca"
#define SAM_AUDIT_LABEL "rssp-audit"  /* EC P-256: seals the audit log's checkpoints */

/* The audit key (made by sam_init_token, or by sam_open for a token initialised before
 * it existed). sam_audit_seal has the audit_seal_fn shape (audit.h): ECDSA-SHA256 over
 * msg, DER, at most *siglenp bytes. Thread-safe. sam_audit_certificate gives the
 * certificate (DER, issued by the token's CA), owned by s. Return 0 or RSSP_E*. */
int sam_audit_seal(void *s, const uint8_t *msg, size_t len, uint8_t *sig, size_t *siglenp) RSSP_WUR;
int sam_audit_certificate(struct sam *s, const uint8_t **derp, size_t *derlenp) RSSP_WUR;

/* Gives back what a successful call spent when its audit record could not be written
 * (nothing was released): a SignHash's count, an approval's SAD and replay record. */
void sam_undo(struct sam *s, const struct sam_audit *a);

/* Restart: the audit log's lines (the caller reads them back from sam_restore_since())
 * rebuild the counts of SADs (signhash, ok) and the approvals whose SAD is still valid
 * (authorize.approval, ok), so that a used-up SAD stays used up and a replayed approval
 * gets its SAD again. Before serving. Returns 0 or RSSP_E_NOMEM. */
struct sam_restore_line {
	long long time;
	const char *event, *result, *sad_id, *approval_key;
	long long sad_expires_at;
	unsigned long long signatures;
};
int sam_restore_add(struct sam *s, const struct sam_restore_line *l) RSSP_WUR;
long long sam_restore_since(const struct sam *s);

/* For tests: shifts the engine's clock by seconds (expiry of approvals and SADs). */
void sam_set_clock_skew(struct sam *s, int64_t seconds);

#endif
