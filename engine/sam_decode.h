/* sam_decode.h - the engine's decode-and-check step: serialized AuthorizeRequest /
 * SignHashRequest bytes in, fixed internal structs out (proto/PROTOCOL.md).
 *
 * Contract: unpacks with protobuf-c, checks the shape exactly (no unknown field, ids
 * 1..RSSP_MAX_ID_LEN bytes of UTF-8, texts, algorithms known, nonce, digest and
 * signature lengths, counts), copies every field it accepts into the request struct and
 * frees the wire object before it returns, on success and on failure. Nothing here
 * touches the HSM, a file, a clock or a cache: it is a pure function of its input (the
 * fuzzer tests/fuzz/fuzz_sam_decode.c drives it directly). What needs state (expiry
 * against the clock, KAK parsing, bindings, SADs, replay) is the handlers' part
 * (sam_handlers.h).
 *
 * On failure the return is a negative RSSP_E* code and a->reason names the refusal
 * (a static string); a is filled as far as the request was understood, for the audit
 * record, in the same order as the checks (so a refused request is audited alike
 * whichever step refused it). Checks run in this order, first failure wins:
 *   both: message size (RSSP_E_EXHAUSTED), protobuf framing, unknown fields, request id;
 *   activation: ids, key algorithm (RSSP_E_UNSUPPORTED), validity days, nonce, KAK
 *     present, signature length, voucher present, its bytes well-formed, the key id
 *     beside them the one they name, its signature length;
 *   approval: ids, hash algorithm (RSSP_E_UNSUPPORTED), hash count, digest lengths,
 *     num_signatures, texts, nonce, binding length (RSSP_E_DENIED), KAK present,
 *     signature length;
 *   sign hash: ids, hash algorithm, sign algorithm (both RSSP_E_UNSUPPORTED), hash
 *     count, digest lengths.
 */
#ifndef RSSP_SAM_DECODE_H
#define RSSP_SAM_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "authdata.h"
#include "binding.h"
#include "kak_verify.h"
#include "rssp_err.h"
#include "sam.h"
#include "voucher.h"

#define SAM_ID_SIZE (RSSP_MAX_ID_LEN + 1)
#define SAM_TEXT_SIZE (RSSP_MAX_TEXT_LEN + 1)

/* The KAK as sent; its SPKI is not parsed here (kak.h does, with a cache). */
struct sam_kak {
	int algo;                               /* KakAlgo, any value (checked when parsed) */
	size_t spki_len;                        /* 0..KAK_MAX_SPKI, or KAK_MAX_SPKI + 1 for a
	                                         * longer one: then spki holds nothing (the
	                                         * KAK parser refuses it by its length) */
	uint8_t spki[KAK_MAX_SPKI];
};

/* The enrolment voucher as sent: its bytes parsed (not yet verified), and the RA's
 * signature over them. */
struct sam_voucher {
	struct rssp_voucher v;                  /* tbs, decoded */
	size_t tbs_len;                         /* 1..RSSP_VOUCHER_MAX_LEN */
	uint8_t tbs[RSSP_VOUCHER_MAX_LEN];
	size_t sig_len;                         /* 1..KAK_MAX_SIG */
	uint8_t sig[KAK_MAX_SIG];
};

struct sam_activation {
	char credential_id[SAM_ID_SIZE];
	char owner_id[SAM_ID_SIZE];
	char device_uuid[SAM_ID_SIZE];
	int key_algo;                           /* a known KeyAlgo */
	uint32_t validity_days;                 /* 1..X509_MAX_DAYS */
	size_t nonce_len;                       /* RSSP_MIN_NONCE_LEN..RSSP_MAX_NONCE_LEN */
	uint8_t nonce[RSSP_MAX_NONCE_LEN];
	int64_t expires_at;                     /* not checked against a clock here */
	struct sam_voucher voucher;             /* the certificate subject comes from here */
};

struct sam_approval {
	char approval_id[SAM_ID_SIZE];
	char credential_id[SAM_ID_SIZE];
	char owner_id[SAM_ID_SIZE];
	char device_uuid[SAM_ID_SIZE];
	char key_label[SAM_ID_SIZE];
	uint8_t binding[BINDING_LEN];
	int hash_algo;                          /* a known HashAlgo */
	size_t hash_len;                        /* its digest length */
	size_t n_hashes;                        /* 1..RSSP_MAX_HASHES */
	uint8_t *hashes;                        /* n_hashes * hash_len, in request order */
	uint32_t num_signatures;                /* 1..RSSP_MAX_HASHES */
	char rp_name[SAM_TEXT_SIZE];
	char description[SAM_TEXT_SIZE];
	size_t nonce_len;
	uint8_t nonce[RSSP_MAX_NONCE_LEN];
	int64_t expires_at;
};

enum sam_purpose { SAM_PURPOSE_ACTIVATION = 1, SAM_PURPOSE_APPROVAL };

struct sam_authorize_req {
	enum sam_purpose purpose;
	char request_id[SAM_ID_SIZE];           /* may be empty */
	struct sam_kak kak;
	size_t sig_len;                         /* 1..KAK_MAX_SIG */
	uint8_t sig[KAK_MAX_SIG];
	struct sam_activation activation;       /* when purpose is SAM_PURPOSE_ACTIVATION */
	struct sam_approval approval;           /* when purpose is SAM_PURPOSE_APPROVAL */
};

struct sam_sign_req {
	char request_id[SAM_ID_SIZE];
	char credential_id[SAM_ID_SIZE];
	int hash_algo;                          /* a known HashAlgo */
	int sign_algo;                          /* a known SignAlgo (key fit: checked later) */
	long pss_salt;                          /* RSSP_SIGN_RSA_PSS: the salt length asked for
	                                           (0..UINT32_MAX; the key's maximum: checked
	                                           later); -1 when none was (hash length) */
	size_t hash_len;
	size_t n_hashes;                        /* 1..RSSP_MAX_HASHES */
	uint8_t *hashes;                        /* n_hashes * hash_len, in request order */
	size_t sad_len;                         /* any length, may be 0 (checked later) */
	uint8_t *sad;                           /* NULL when sad_len is 0 */
};

/* Decodes an AuthorizeRequest. Returns 0 with *reqp set (free with
 * sam_authorize_req_free), or an RSSP_E* code with a->reason set and *reqp NULL.
 * Sets a->event. */
int sam_decode_authorize(const uint8_t *in, size_t inlen, struct sam_authorize_req **reqp,
    struct sam_audit *a) RSSP_WUR;
/* Wipes and frees; accepts NULL. */
void sam_authorize_req_free(struct sam_authorize_req *r);

/* Decodes a SignHashRequest; same contract (free with sam_sign_req_free). */
int sam_decode_sign_hash(const uint8_t *in, size_t inlen, struct sam_sign_req **reqp,
    struct sam_audit *a) RSSP_WUR;
void sam_sign_req_free(struct sam_sign_req *r);

/* Sets a->reason and returns code: the one way a refusal is reported. */
int sam_refuse(struct sam_audit *a, int code, const char *reason);
/* Copies an id into an audit field (dst holds RSSP_MAX_ID_LEN + 1), cut to fit; NULL
 * as empty. */
void sam_audit_str(char *dst, const char *src);

#endif
