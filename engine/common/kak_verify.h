/* kak_verify.h - the signer's key-authorisation key (KAK): the one SubjectPublicKeyInfo
 * parser and key policy, and the one signature verifier. Linked by the engine (KAK over
 * authData, engine/kak.h caches parsed keys) and the gateway (device activation, KAK
 * over the activation challenge), so both accept exactly the same keys and signatures.
 *
 * Policy: an SPKI of 1..KAK_MAX_SPKI bytes of DER with nothing trailing; for the PSS
 * algorithms an RSA key of 2048..8192 bits, for ECDSA an EC key on P-256. KakAlgo
 * numbers, names and hashes: algo.h (rssp_kak_alg). */
#ifndef RSSP_KAK_VERIFY_H
#define RSSP_KAK_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "algo.h"
#include "rssp_err.h"

/* The largest SPKI accepted (an RSA-8192 SPKI is about 1,100 bytes). */
#define KAK_MAX_SPKI 2048
#define KAK_MIN_RSA_BITS 2048
#define KAK_MAX_RSA_BITS 8192
/* The largest KAK signature accepted (RSA-8192: 1024 bytes). */
#define KAK_MAX_SIG 1024

/* Parses spki (exactly, nothing trailing) and checks it fits algo (a KakAlgo).
 * Returns 0, RSSP_E_UNSUPPORTED (unknown algo, or a key of the wrong kind: RSA for
 * ECDSA, EC for PSS, an EC key on another curve), RSSP_E_INVAL (empty or over
 * KAK_MAX_SPKI, not DER, trailing bytes, RSA size out of range); on success *pkeyp is
 * a new key (EVP_PKEY_free). */
int kak_spki_parse(const uint8_t *spki, size_t spkilen, int algo, EVP_PKEY **pkeyp) RSSP_WUR;

/* Verifies sig over msg with the KAK under algo (RSASSA-PSS SHA-256/512, MGF1 same
 * hash, salt = hash length; or ECDSA P-256 SHA-256 DER). The key must already fit algo.
 * Returns 0, RSSP_E_DENIED (no signature, over KAK_MAX_SIG bytes, or not valid),
 * RSSP_E_NOMEM. */
int kak_verify(EVP_PKEY *kak, int algo, const uint8_t *msg, size_t msglen,
    const uint8_t *sig, size_t siglen) RSSP_WUR;

#endif
