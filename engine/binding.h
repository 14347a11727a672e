/* binding.h - the MAC that pins a credential key to one KAK. Computed in the HSM with
 * the token's HMAC-SHA256 key over a domain-separated encoding:
 *   "rssp-binding-v1" || len32 credential_id || len32 owner_id || len32 key_label
 *   || SHA-256(KAK SPKI)
 * (len32: 4-byte big-endian length, then the bytes). The gateway stores it opaquely. */
#ifndef RSSP_BINDING_H
#define RSSP_BINDING_H

#include <stddef.h>
#include <stdint.h>

#include "hsm.h"
#include "rssp_err.h"

#define BINDING_LEN 32

/* Computes the binding with the HMAC key mac_label. Returns 0, RSSP_E_INVAL (a field
 * too long), RSSP_E_NOTFOUND (no MAC key), RSSP_E_HSM. */
int binding_compute(struct hsm *h, struct hsm_session *s, const char *mac_label,
    const char *credential_id, const char *owner_id, const char *key_label,
    const uint8_t kak_sha256[32], uint8_t out[BINDING_LEN]) RSSP_WUR;

/* Recomputes the binding and compares it in constant time with binding/len.
 * Returns 0, RSSP_E_DENIED (no match), or an error of binding_compute. */
int binding_verify(struct hsm *h, struct hsm_session *s, const char *mac_label,
    const char *credential_id, const char *owner_id, const char *key_label,
    const uint8_t kak_sha256[32], const uint8_t *binding, size_t len) RSSP_WUR;

#endif
