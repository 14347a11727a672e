/* sic.h - the signer's app (SIC): device activation and its key-authorisation key (KAK).
 * Routes are listed in the route table (routes.c); this header exposes the KAK
 * checks that credentials.c and auth_requests.c share (the verifier itself: kak_verify.h). */
#ifndef RSSP_GW_SIC_H
#define RSSP_GW_SIC_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "kak_verify.h"
#include "rssp_err.h"

/* Parses a KAK SubjectPublicKeyInfo (DER) for the scheme signAlgo/shaAlgo of sic/activate (gateway/openapi.json)
 * ("RSASSA-PSS" with an RSA key of at least 2048 bits, or "ECDSA" with a P-256 key and
 * sha256). Returns 0 and *kak_algop (engine.proto KakAlgo) and *pkp (free with
 * EVP_PKEY_free), RSSP_E_INVAL for a key that does not parse or is too weak,
 * RSSP_E_UNSUPPORTED for a key type or scheme not allowed. */
int sic_kak_parse(const uint8_t *spki, size_t spkilen, const char *sign_algo,
    const char *sha_algo, int *kak_algop, EVP_PKEY **pkp) RSSP_WUR;

/* The REST names of a KakAlgo: signAlgo ("RSASSA-PSS", "ECDSA") and shaAlgo. */
const char *sic_kak_sign_algo(int kak_algo);
const char *sic_kak_sha_algo(int kak_algo);

#endif
