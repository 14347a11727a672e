/* secrets.h - passphrase hashing (argon2id), random ids and tokens, SHA-256, HTTP Digest's
 * HA1 and the constant-time compare (secrets.c). Thread-safe. */
#ifndef RSSP_GW_SECRETS_H
#define RSSP_GW_SECRETS_H

#include <stddef.h>
#include <stdint.h>

#include "gw.h"
#include "rssp_err.h"

#define GW_PWHASH_MAX 128 /* >= crypto_pwhash_STRBYTES */

/* On the long pool (GW_LONG routes) the three functions below wait while
 * RSSP_ARGON2_CONCURRENCY computations run, so that logins cannot take every core from
 * signing; on an HTTP thread they run at once. A route that hashes should carry GW_LONG.
 * Hashes a passphrase with argon2id (libsodium crypto_pwhash_str, limits from the
 * configuration: RSSP_ARGON2_OPSLIMIT, RSSP_ARGON2_MEMLIMIT_KIB, p=1). Writes the
 * NUL-terminated encoded hash ("$argon2id$v=19$m=19456,t=2,p=1$...") into out. Returns 0
 * or RSSP_E_NOMEM. */
int gw_password_hash(const char *passphrase, char out[GW_PWHASH_MAX]) RSSP_WUR;
/* Returns 0 when passphrase matches the encoded hash, RSSP_E_DENIED otherwise
 * (including a NULL or malformed hash). */
int gw_password_verify(const char *hash, const char *passphrase) RSSP_WUR;
/* Verifies passphrase against a fixed dummy hash with the configured limits, so that an
 * unknown user costs the same as a wrong passphrase. */
void gw_password_dummy_verify(const char *passphrase);

/* Fills buf with n cryptographically secure random bytes. */
void gw_random_bytes(void *buf, size_t n);
/* A token of 32 random bytes as 43 base64url characters (no padding) + NUL. */
#define GW_TOKEN_LEN 43
void gw_random_token(char out[GW_TOKEN_LEN + 1]);
/* A random version-4 uuid in text form. */
void gw_random_uuid(char out[GW_UUID_LEN + 1]);
/* Lowercase hex SHA-256 of data. */
void gw_sha256_hex(const void *data, size_t len, char out[65]);
/* RFC 7616 HA1 for Digest with SHA-256: SHA-256("user:realm:secret"), binary. The
 * realm is cfg->service_name (RSSP_SERVICE_NAME); store it in rp_clients.digest_ha1. */
void gw_digest_ha1(const char *user, const char *realm, const char *secret, uint8_t out[32]);
/* Constant-time comparison: 1 when equal, 0 otherwise. */
int gw_ct_equal(const void *a, const void *b, size_t len);

#endif
