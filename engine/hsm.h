/* hsm.h - the engine's PKCS#11 layer: one login, a pool of read-write sessions, key
 * handles cached by label, and recovery when a session or the login is lost.
 *
 * The module is loaded through libp11 (PKCS11_CTX_load, slot lookup by token label);
 * everything else goes through the module's own CK_FUNCTION_LIST, because libp11
 * 0.4.12 cannot generate EC keys, sign with CKM_RSA_PKCS_PSS or compute HMACs, and
 * keeps a copy of the PIN after PKCS11_login. The PIN is read from the PIN file for
 * each login (checked mode, wiped after use) and never kept.
 *
 * One PKCS#11 context per process, reference counted: several struct hsm may be open
 * at once (tests do), and C_Finalize runs only when the last one is freed.
 * All functions are thread-safe unless noted.
 */
#ifndef RSSP_HSM_H
#define RSSP_HSM_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "rssp_err.h"

struct hsm;
struct hsm_session;

/* Mechanisms hsm_sign knows. */
enum hsm_mech {
	HSM_MECH_RSA_PKCS = 1, /* input: a DigestInfo the caller built */
	HSM_MECH_RSA_PSS,      /* input: the digest; MGF1 with the same hash, salt = hash length */
	HSM_MECH_ECDSA,        /* input: the digest; output: r || s as the token returns it */
	HSM_MECH_HMAC_SHA256,  /* input: the message; output: 32 bytes */
};

/* Object classes the engine stores and finds by label. */
enum hsm_class { HSM_PRIVATE_KEY = 1, HSM_SECRET_KEY, HSM_CERTIFICATE, HSM_PUBLIC_KEY };

/* Reads a PIN file: a regular file without group/other permission bits, first line
 * (1..255 bytes) without its line end. Returns 0 or RSSP_E_DENIED (mode), RSSP_E_IO,
 * RSSP_E_INVAL; on success *pinp is owned by the caller: wipe and free with
 * hsm_pin_free(). */
int hsm_pin_read(const char *path, char **pinp) RSSP_WUR;
void hsm_pin_free(char *pin);

/* Loads module_path, finds the initialised token labelled token_label, opens nsessions
 * read-write sessions (at least 1) and logs in as the user with the PIN of pin_file.
 * Returns 0 or RSSP_E_DENIED (PIN file mode, wrong PIN), RSSP_E_NOTFOUND (no such
 * token), RSSP_E_CONFLICT (another module already loaded in this process), RSSP_E_HSM;
 * on success *hp is owned by the caller, free with hsm_free(). */
int hsm_open(const char *module_path, const char *token_label, const char *pin_file,
    unsigned nsessions, struct hsm **hp) RSSP_WUR;
/* Closes the sessions, logs out when it is the last open hsm. Accepts NULL. */
void hsm_free(struct hsm *h);

/* Takes a session from the pool, waiting while all are in use. Always succeeds. */
struct hsm_session *hsm_session_get(struct hsm *h);
void hsm_session_put(struct hsm *h, struct hsm_session *s);

/* Signs in/inlen with the object of class cls labelled label (a private key, or the
 * secret key for HSM_MECH_HMAC_SHA256). hash_len selects the PSS hash (32, 48, 64).
 * *outlenp holds the size of out on entry and the signature length on return.
 * Returns 0, RSSP_E_NOTFOUND (no such key), RSSP_E_HSM. */
int hsm_sign(struct hsm *h, struct hsm_session *s, const char *label, int cls, int mech,
    size_t hash_len, const uint8_t *in, size_t inlen, uint8_t *out, size_t *outlenp) RSSP_WUR;
/* The same with the PSS salt length given (hsm_sign uses hash_len); the token refuses a
 * salt too long for the key (RSSP_E_HSM), so the caller checks it first. */
int hsm_sign_salt(struct hsm *h, struct hsm_session *s, const char *label, int cls, int mech,
    size_t hash_len, size_t salt_len, const uint8_t *in, size_t inlen, uint8_t *out,
    size_t *outlenp) RSSP_WUR;

/* 1 when an object of class cls labelled label exists, 0 when not, or RSSP_E_HSM. */
int hsm_exists(struct hsm *h, struct hsm_session *s, const char *label, int cls) RSSP_WUR;

/* Destroys every object labelled label, whatever its class. Returns 0 or RSSP_E_HSM. */
int hsm_destroy_label(struct hsm *h, struct hsm_session *s, const char *label) RSSP_WUR;

/* Generates a token key pair: the private key labelled label (and CKA_ID id) is
 * private, sensitive, never extractable, sign-only; the public key is a session object
 * destroyed after its value is read. key_algo is a KeyAlgo of engine.proto. Returns 0,
 * RSSP_E_UNSUPPORTED, RSSP_E_HSM, RSSP_E_CRYPTO; on success *pubp (free with
 * EVP_PKEY_free) is the public key. */
int hsm_generate_key_pair(struct hsm *h, struct hsm_session *s, int key_algo,
    const char *label, const uint8_t *id, size_t idlen, EVP_PKEY **pubp) RSSP_WUR;

/* Generates the 256-bit generic secret labelled label for CKM_SHA256_HMAC: private,
 * sensitive, never extractable, sign/verify only. Returns 0 or RSSP_E_HSM. */
int hsm_generate_mac_key(struct hsm *h, struct hsm_session *s, const char *label) RSSP_WUR;

/* Stores an X.509 certificate (DER) as a public token object labelled label.
 * Returns 0, RSSP_E_INVAL (not a certificate), RSSP_E_HSM. */
int hsm_store_certificate(struct hsm *h, struct hsm_session *s, const char *label,
    const uint8_t *id, size_t idlen, const uint8_t *der, size_t derlen) RSSP_WUR;

/* Reads the value (DER) of the certificate labelled label. Returns 0, RSSP_E_NOTFOUND,
 * RSSP_E_HSM; on success *derp (free with free()) / *derlenp. */
int hsm_read_certificate(struct hsm *h, struct hsm_session *s, const char *label,
    uint8_t **derp, size_t *derlenp) RSSP_WUR;

#endif
