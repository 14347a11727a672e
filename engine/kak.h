/* kak.h - the signer's key-authorisation key (KAK): parsing its SubjectPublicKeyInfo
 * against the KakAlgo it claims (verifying its signatures: kak_verify.h).
 * Parsed keys are cached by SHA-256(SPKI) (parsing costs more than verifying). */
#ifndef RSSP_KAK_H
#define RSSP_KAK_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "kak_verify.h"
#include "rssp_err.h"

struct kak_cache;

/* A cache of parsed KAKs, thread-safe. NULL when out of memory. */
struct kak_cache *kak_cache_new(void);
void kak_cache_free(struct kak_cache *c);

/* Parses spki (exactly, nothing trailing) and checks it fits algo (KakAlgo of
 * engine.proto) by the shared policy (kak_spki_parse of kak_verify.h).
 * Returns 0, RSSP_E_UNSUPPORTED (unknown algo), RSSP_E_INVAL (not a key of that kind);
 * on success *pkeyp is a new reference (EVP_PKEY_free) and kak_sha256 the SPKI hash. */
int kak_parse(struct kak_cache *c, const uint8_t *spki, size_t spkilen, int algo,
    EVP_PKEY **pkeyp, uint8_t kak_sha256[32]) RSSP_WUR;

#endif
