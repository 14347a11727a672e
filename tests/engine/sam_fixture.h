/* sam_fixture.h - the sam suites' shared token (tests/engine/test_sam*.c): a private
 * SoftHSM2 token initialised with sam_init_token, registration-authority keys, an open
 * struct sam (S), KAKs and four credentials activated once (rsa2048, rsa3072, p256,
 * p384), and the request builders that pack AuthorizeRequest / SignHashRequest exactly
 * as the gRPC server hands them over. Each suite runs in one process (the token, its
 * login and the engine's caches are shared state): sam_fixture_main. */
#ifndef RSSP_TEST_SAM_FIXTURE_H
#define RSSP_TEST_SAM_FIXTURE_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <rssp/engine/v1/engine.pb-c.h>

#include "authdata.h"
#include "ra_keys.h"
#include "sam.h"
#include "voucher.h"

#define TOKEN "rssp-test"
#define PIN "4711-test"

enum { KAK_PSS256 = 1, KAK_PSS512 = 2, KAK_ECDSA = 3 };
enum { KEY_RSA2048 = 1, KEY_RSA3072, KEY_P256, KEY_P384 };
enum { H256 = 1, H384 = 2, H512 = 3 };
enum { S_PKCS1 = 1, S_PSS = 2, S_ECDSA = 3 };

/* A credential activated once for the whole suite. */
struct cred {
	char id[64];
	char owner[32];
	int key_algo;
	EVP_PKEY *kak;
	int kak_algo;
	char label[RSSP_MAX_ID_LEN + 1];
	uint8_t binding[64];
	size_t binding_len;
	X509 *cert;
};

/* Activation request fields, signed as a whole, then packed (possibly edited). */
struct act {
	char credential_id[160], owner_id[64], device_uuid[64], subject_cn[128];
	int key_algo;
	uint32_t validity_days;
	uint8_t nonce[32];
	size_t nonce_len;
	int64_t expires_at;
	EVP_PKEY *kak;
	int kak_algo;
	struct rssp_voucher v;
	EVP_PKEY *ra;
	int v_fixed;
	int no_voucher;
	int key_id_mismatch;     /* Voucher.ra_key_id differs from the voucher's */
	const char *extra;       /* raw protobuf bytes appended to the Activation */
	size_t extra_len;
};

/* Approval request fields. */
struct appr {
	char approval_id[64], credential_id[160], owner_id[64], device_uuid[64], key_label[160];
	uint8_t binding[64];
	size_t binding_len;
	int hash_algo;
	uint8_t hashes[RSSP_MAX_HASHES][64];
	size_t hash_lens[RSSP_MAX_HASHES];
	size_t n_hashes;
	uint32_t num_signatures;
	char rp_name[64], description[128];
	uint8_t nonce[32];
	size_t nonce_len;
	int64_t expires_at;
	EVP_PKEY *kak;
	int kak_algo;
};

extern char workdir[512], pin_file[600], bad_pin_file[600];
extern const char *module;
extern struct sam_config cfg;
extern struct sam *S;
extern EVP_PKEY *kak_rsa, *kak_ec, *kak_ec2;
extern EVP_PKEY *ra_ec, *ra_rsa, *ra_rogue;
extern uint8_t ra_ec_id[32], ra_rsa_id[32], ra_rogue_id[32];
extern struct cred creds[4]; /* rsa2048, rsa3072, p256, p384 */
extern long pss_salt;
extern X509 *ca_cert;
extern char ra_dir[600];

void die(const char *what);
uint8_t *spki_of(EVP_PKEY *k, size_t *lenp);
void kak_sign(EVP_PKEY *k, int algo, const uint8_t *msg, size_t len, uint8_t **sigp, size_t *siglenp);
void key_id(EVP_PKEY *k, uint8_t id[32]);
void ra_sign(EVP_PKEY *k, const uint8_t *msg, size_t len, uint8_t **sigp, size_t *siglenp);
void voucher_follow(struct act *a);
void act_init(struct act *a, const char *cred, const char *owner, int key_algo, EVP_PKEY *kak, int kak_algo);
void act_sign(const struct act *a, uint8_t **sigp, size_t *siglenp);
int act_call(const struct act *a, const uint8_t *sig, size_t siglen,
    Rssp__Engine__V1__ActivationResult **resp, struct sam_audit *au);
void free_act_result(Rssp__Engine__V1__ActivationResult *r);
int activate(const struct act *a, Rssp__Engine__V1__ActivationResult **resp, struct sam_audit *au);
size_t hlen_of(int hash_algo);
void appr_init(struct appr *p, const struct cred *c, int hash_algo, size_t n, uint32_t num);
void appr_sign(const struct appr *p, uint8_t **sigp, size_t *siglenp);
void appr_pack(const struct appr *p, const uint8_t *sig, size_t siglen, uint8_t **bufp, size_t *lenp);
int appr_call(const struct appr *p, const uint8_t *sig, size_t siglen, uint8_t **sadp,
    size_t *sadlenp, struct sam_audit *au);
int approve(const struct appr *p, uint8_t **sadp, size_t *sadlenp, struct sam_audit *au);
int sign_hashes(const char *cred, const uint8_t *sad, size_t sadlen, int hash_algo, int sign_algo,
    const uint8_t (*hashes)[64], const size_t *lens, size_t n,
    Rssp__Engine__V1__SignHashResponse **respp, struct sam_audit *au);
int verify_with_cert(X509 *cert, int sign_algo, int hash_algo, const uint8_t *dg,
    const uint8_t *sig, size_t siglen);
int chain_verifies(X509 *cert);
uint8_t *mint(const struct cred *c, struct appr *p, int hash_algo, size_t n, uint32_t num, size_t *sadlenp);
EVP_PKEY *gen_key(const char *type, const char *param);
void write_ra(const char *dir, const char *name, EVP_PKEY *k);
void setup_token(void);
void teardown_token(void);

/* Runs the tests (in this order) as suite name in one process around setup_token /
 * teardown_token; returns the process exit status. */
int sam_fixture_main(const char *name, const TTest *const *tests, size_t n);

#endif
