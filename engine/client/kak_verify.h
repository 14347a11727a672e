/* kak_verify.h - verifying a signature by the signer's key-authorisation key (KAK).
 * One verifier, linked by the engine (KAK over authData) and the gateway (KAK over the
 * device-activation challenge), so both accept exactly the same signatures. */
#ifndef RSSP_KAK_VERIFY_H
#define RSSP_KAK_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "rssp_err.h"

/* KakAlgo numbers of engine.proto. */
enum { KAK_PSS_SHA256 = 1, KAK_PSS_SHA512 = 2, KAK_ECDSA_P256 = 3 };

/* Verifies sig over msg with the KAK under algo (RSASSA-PSS SHA-256/512, MGF1 same
 * hash, salt = hash length; or ECDSA P-256 SHA-256 DER). The key must already fit algo.
 * Returns 0, RSSP_E_DENIED (no signature, over 1024 bytes, or not valid), RSSP_E_NOMEM. */
int kak_verify(EVP_PKEY *kak, int algo, const uint8_t *msg, size_t msglen,
    const uint8_t *sig, size_t siglen) RSSP_WUR;

#endif
