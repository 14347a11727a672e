/* engine_helper.h - a signer for tests and the benchmark: a KAK made with OpenSSL, and
 * credential activation, approval and SignHash through engine_client, building the
 * authData with the shared builder (engine/common/authdata.h). */
#ifndef RSSP_ENGINE_HELPER_H
#define RSSP_ENGINE_HELPER_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "engine_client.h"
#include "rssp/engine/v1/engine.pb-c.h"

struct eh_kak {
	EVP_PKEY *key;
	uint8_t *spki;
	size_t spki_len;
	int algo;                      /* KakAlgo */
};

struct eh_cred {
	char credential_id[129];
	char owner_id[129];
	char device_uuid[129];
	char key_label[129];
	uint8_t binding[256];
	size_t binding_len;
	int key_algo;
	EVP_PKEY *pub;                 /* from the certificate */
};

/* algo: a KakAlgo. Returns 0 or -1. Free with eh_kak_free. */
int eh_kak_new(int algo, struct eh_kak **kp);
void eh_kak_free(struct eh_kak *k);
/* KAK signature over msg (PSS salt = hash length, or DER ECDSA). Returns 0 or -1. */
int eh_kak_sign(const struct eh_kak *k, const uint8_t *msg, size_t len, uint8_t **sigp,
    size_t *siglenp);

/* The registration authority whose vouchers eh_activate presents: an EC P-256 key read
 * from the PEM private key file priv_path, or, when that file does not exist, made here
 * and written there (0600) with its public key in pub_path (PEM, for RSSP_RA_KEYS; may
 * be NULL). Returns 0 or -1. Without it, eh_activate sends no voucher. */
int eh_ra_init(const char *priv_path, const char *pub_path);
void eh_ra_release(void);

/* eh_ra_init with <dir>/ra.key and <dir>/ra.pem, and RSSP_RA_KEYS pointed at ra.pem
 * (the engine started after this trusts that key). Returns 0 or -1. */
int eh_ra_setup(const char *dir);

/* Activates credential_id for owner "owner-1" on device "device-1" with key_algo, with
 * a voucher (subject "Test Signer") signed by the eh_ra_init key.
 * Returns 0 when the engine answered, *statusp the gRPC status it answered (tests
 * assert the wire status; the gateway sees only engine_result); on OK fills cred.
 * tamper: 0, or 1 to corrupt the KAK signature. */
int eh_activate(struct engine_client *c, const struct eh_kak *kak, int key_algo,
    const char *credential_id, const char *request_id, int tamper, struct eh_cred *cred,
    int *statusp);
void eh_cred_release(struct eh_cred *cred);

/* What the voucher of eh_activate_as says and who signs it; a zero field takes the
 * default: user_id / device_uuid the activation's, common_name "Test Signer", kak the
 * activating KAK, ra the eh_ra_init key, issued_at now - 60, not_after issued_at + 1 day.
 * key_id_of (when not NULL) is the key whose id the voucher names (a forger claims the
 * trusted key's id); none: true to send no voucher at all. */
struct eh_voucher_spec {
	const char *user_id;
	const char *common_name;
	const char *device_uuid;
	const struct eh_kak *kak;
	EVP_PKEY *ra;
	EVP_PKEY *key_id_of;
	int64_t issued_at;
	int64_t not_after;
	int none;
};

/* The eh_init RA key (not owned: do not free), or NULL. */
EVP_PKEY *eh_ra_key(void);

/* eh_activate for owner_id / device_uuid, the voucher per vs (NULL: all defaults).
 * msg (when not NULL, msgsz bytes) receives the engine's status text; *certp (when not
 * NULL) the credential's certificate on OK (X509_free), else NULL. Returns as
 * eh_activate. */
int eh_activate_as(struct engine_client *c, const struct eh_kak *kak, int key_algo,
    const char *credential_id, const char *owner_id, const char *device_uuid,
    const struct eh_voucher_spec *vs, const char *request_id, struct eh_cred *cred,
    int *statusp, char *msg, size_t msgsz, X509 **certp);

/* Approves n hashes of hash_algo for num_sigs signatures. On OK *sadp (free()) holds
 * the SAD. */
int eh_approve(struct engine_client *c, const struct eh_kak *kak, const struct eh_cred *cred,
    const char *approval_id, int hash_algo, const uint8_t *const *hashes, size_t n,
    uint32_t num_sigs, const char *request_id, uint8_t **sadp, size_t *sadlenp,
    int *statusp);

/* The same with a given 16-byte nonce and expiry (to present one approval twice);
 * fixed_nonce NULL / expires_at 0: random / now + 300. */
int eh_approve_at(struct engine_client *c, const struct eh_kak *kak, const struct eh_cred *cred,
    const char *approval_id, int hash_algo, const uint8_t *const *hashes, size_t n,
    uint32_t num_sigs, const char *request_id, const uint8_t *fixed_nonce, int64_t expires_at,
    uint8_t **sadp, size_t *sadlenp, int *statusp);

/* SignHash. On OK *sigsp (when not NULL) holds the signatures (release with
 * engine_signatures_release); otherwise it is left empty. *msgp: the engine's status
 * text, malloc'd, or NULL. */
int eh_sign_hash(struct engine_client *c, const struct eh_cred *cred, const uint8_t *sad,
    size_t sadlen, int hash_algo, int sign_algo, const uint8_t *const *hashes, size_t n,
    size_t hash_len, const char *request_id, struct engine_signatures *sigsp,
    int *statusp, char **msgp);

/* Verifies sig over digest with the credential's public key (PKCS#1 v1.5, PSS or ECDSA
 * DER per sign_algo). Returns 0 or -1. */
int eh_verify(const struct eh_cred *cred, int sign_algo, int hash_algo,
    const uint8_t *digest, size_t dlen, const uint8_t *sig, size_t siglen);

#endif
