/* authdata.h - the canonical authData a signer's KAK signs.
 *
 * One builder, linked by the gateway (which hands the bytes to the app) and by the
 * engine (which rebuilds them from the structured fields it receives and verifies the
 * KAK signature over them), so both sides build the very same bytes.
 *
 * Encoding (proto/PROTOCOL.md, "authData"):
 *   "rssp-authdata-v1" (16 ASCII bytes) || purpose (1 byte: 1 activation, 2 approval)
 *   || fields, each: tag (1 byte) || length (4 bytes, big endian) || value
 * Fields appear in ascending tag order, every one present. Strings are UTF-8 without
 * NUL; integers are 8-byte big-endian two's complement; KAK is SHA-256(SPKI DER);
 * hashes are count (4 bytes BE) || the digests concatenated (all hash_len bytes).
 */
#ifndef RSSP_AUTHDATA_H
#define RSSP_AUTHDATA_H

#include <stddef.h>
#include <stdint.h>

#include "rssp_err.h"

#define RSSP_AUTHDATA_MAGIC "rssp-authdata-v1"
#define RSSP_AUTHDATA_MAGIC_LEN 16
#define RSSP_AUTHDATA_ACTIVATION 1
#define RSSP_AUTHDATA_APPROVAL 2

#define RSSP_MAX_ID_LEN 128        /* ids, labels, device uuids */
#define RSSP_MAX_TEXT_LEN 1024     /* rp name, description, subject CN */
#define RSSP_MIN_NONCE_LEN 16
#define RSSP_MAX_NONCE_LEN 64
#define RSSP_MAX_HASHES 1000

/* Activation tags */
enum {
	AD_ACT_CREDENTIAL_ID = 1, AD_ACT_OWNER_ID, AD_ACT_DEVICE_UUID, AD_ACT_KAK_SHA256,
	AD_ACT_KAK_ALGO, AD_ACT_KEY_ALGO, AD_ACT_SUBJECT_CN, AD_ACT_VALIDITY_DAYS,
	AD_ACT_NONCE, AD_ACT_EXPIRES_AT,
};
/* Approval tags */
enum {
	AD_APP_APPROVAL_ID = 1, AD_APP_CREDENTIAL_ID, AD_APP_OWNER_ID, AD_APP_DEVICE_UUID,
	AD_APP_KAK_SHA256, AD_APP_HASH_ALGO, AD_APP_HASHES, AD_APP_NUM_SIGNATURES,
	AD_APP_RP_NAME, AD_APP_DESCRIPTION, AD_APP_NONCE, AD_APP_EXPIRES_AT,
};

/* Algorithm numbers are those of proto/rssp/engine/v1/engine.proto (KakAlgo, KeyAlgo,
 * HashAlgo). */
struct rssp_activation_fields {
	const char *credential_id;
	const char *owner_id;
	const char *device_uuid;
	const uint8_t *kak_spki;     /* SubjectPublicKeyInfo DER; hashed, not copied */
	size_t kak_spki_len;
	int kak_algo;
	int key_algo;
	const char *subject_cn;
	uint32_t validity_days;
	const uint8_t *nonce;
	size_t nonce_len;
	int64_t expires_at;
};

struct rssp_approval_fields {
	const char *approval_id;
	const char *credential_id;
	const char *owner_id;
	const char *device_uuid;
	const uint8_t *kak_spki;
	size_t kak_spki_len;
	int hash_algo;
	const uint8_t *const *hashes; /* n_hashes digests of hash_len bytes each */
	size_t n_hashes;
	size_t hash_len;
	uint32_t num_signatures;
	const char *rp_name;
	const char *description;
	const uint8_t *nonce;
	size_t nonce_len;
	int64_t expires_at;
};

/* Digest length of a HashAlgo (32, 48, 64), or 0 if unknown. */
size_t rssp_hash_algo_len(int hash_algo);

/* Builds activation authData. Returns 0 or RSSP_E_INVAL (a field missing, too long,
 * or an unknown algorithm) / RSSP_E_NOMEM; on success *outp is owned by the caller,
 * free with free(). */
int rssp_authdata_activation(const struct rssp_activation_fields *f,
    uint8_t **outp, size_t *outlenp) RSSP_WUR;

/* Builds approval authData; same contract. Every hash must be hash_len bytes and
 * hash_len must match hash_algo; 1..RSSP_MAX_HASHES hashes. */
int rssp_authdata_approval(const struct rssp_approval_fields *f,
    uint8_t **outp, size_t *outlenp) RSSP_WUR;

/* Walks an authData: checks magic, purpose and the TLV framing (tags ascending, every
 * length within the buffer, nothing trailing). Calls cb for each field; a non-zero
 * return from cb stops the walk and is returned. Returns 0, RSSP_E_INVAL on bad
 * framing. *purposep gets the purpose byte. For decoders and fuzzers. */
typedef int (*rssp_authdata_field_cb)(void *arg, int tag, const uint8_t *val, size_t len);
int rssp_authdata_walk(const uint8_t *buf, size_t len, int *purposep,
    rssp_authdata_field_cb cb, void *arg) RSSP_WUR;

#endif
