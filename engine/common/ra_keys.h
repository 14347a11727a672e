/* ra_keys.h - the registration-authority (RA) public keys a process trusts for
 * enrolment vouchers (voucher.h).
 *
 * Read once from RSSP_RA_KEYS: a directory (every regular file in it whose name ends in
 * ".pem", in name order) or one file; each file holds one or more PEM "PUBLIC KEY"
 * blocks (SubjectPublicKeyInfo). Accepted: EC P-256 keys (signatures ECDSA SHA-256, DER)
 * and RSA keys of 2048..8192 bits, rsaEncryption or RSASSA-PSS (signatures RSASSA-PSS
 * SHA-256, MGF1 SHA-256, salt 32). Anything else in a file refuses the whole set. A key's
 * id is SHA-256 of its SPKI DER. The engine's set is the one that counts; the gateway may
 * hold the same keys for an early answer. Immutable once loaded: thread-safe to read.
 */
#ifndef RSSP_RA_KEYS_H
#define RSSP_RA_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "rssp_err.h"

#define RA_KEYS_MAX 64

struct ra_keys;

/* Loads the keys at path (see above). Returns 0, RSSP_E_IO (cannot read), RSSP_E_INVAL
 * (no key, a block that is not an accepted public key, more than RA_KEYS_MAX, a key
 * twice), RSSP_E_NOMEM; on success *setp is owned by the caller, free with
 * ra_keys_free(). */
int ra_keys_load(const char *path, struct ra_keys **setp) RSSP_WUR;
void ra_keys_free(struct ra_keys *set);

/* Number of keys; the i-th key's id (32 bytes) and kind ("ec-p256", "rsa-3072", ...). */
size_t ra_keys_count(const struct ra_keys *set);
const uint8_t *ra_keys_id(const struct ra_keys *set, size_t i);
const char *ra_keys_kind(const struct ra_keys *set, size_t i);

/* Verifies sig over msg under the key whose id is key_id. Returns 0, RSSP_E_NOTFOUND
 * (no such key; also for set == NULL), RSSP_E_DENIED (the signature does not verify),
 * RSSP_E_NOMEM. */
int ra_keys_verify(const struct ra_keys *set, const uint8_t key_id[32], const uint8_t *msg,
    size_t msglen, const uint8_t *sig, size_t siglen) RSSP_WUR;

/* Hex (lowercase) of a 32-byte key id into out[65]. */
void ra_key_id_hex(const uint8_t id[32], char out[65]);

#endif
