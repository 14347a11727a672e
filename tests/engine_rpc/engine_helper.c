/* engine_helper.c - see engine_helper.h. Test code: the engine calls go through the
 * typed client (engine_client.h); errors are -1 or a negative RSSP_E_* code. */
#include "engine_helper.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "authdata.h"
#include "rssp_err.h"
#include "voucher.h"

int
eh_kak_new(int algo, struct eh_kak **kp)
{
	struct eh_kak *k = calloc(1, sizeof(*k));
	unsigned char *p;
	int n;

	if (k == NULL)
		return -1;
	k->algo = algo;
	k->key = algo == RSSP__ENGINE__V1__KAK_ALGO__KAK_ECDSA_P256_SHA256 ?
	    EVP_EC_gen("P-256") : EVP_RSA_gen(2048);
	if (k->key == NULL || (n = i2d_PUBKEY(k->key, NULL)) <= 0 ||
	    (k->spki = malloc((size_t)n)) == NULL) {
		eh_kak_free(k);
		return -1;
	}
	p = k->spki;
	k->spki_len = (size_t)i2d_PUBKEY(k->key, &p);
	*kp = k;
	return 0;
}

void
eh_kak_free(struct eh_kak *k)
{
	if (k == NULL)
		return;
	EVP_PKEY_free(k->key);
	free(k->spki);
	free(k);
}

int
eh_kak_sign(const struct eh_kak *k, const uint8_t *msg, size_t len, uint8_t **sigp,
    size_t *siglenp)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	const EVP_MD *md = k->algo == RSSP__ENGINE__V1__KAK_ALGO__KAK_RSASSA_PSS_SHA512 ?
	    EVP_sha512() : EVP_sha256();
	uint8_t *sig = NULL;
	size_t siglen = 0;
	int r = -1;

	if (ctx == NULL || EVP_DigestSignInit(ctx, &pctx, md, NULL, k->key) != 1)
		goto out;
	if (k->algo != RSSP__ENGINE__V1__KAK_ALGO__KAK_ECDSA_P256_SHA256 &&
	    (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
	    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1 ||
	    EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md) != 1))
		goto out;
	if (EVP_DigestSign(ctx, NULL, &siglen, msg, len) != 1 || (sig = malloc(siglen)) == NULL ||
	    EVP_DigestSign(ctx, sig, &siglen, msg, len) != 1)
		goto out;
	*sigp = sig;
	*siglenp = siglen;
	sig = NULL;
	r = 0;
out:
	free(sig);
	EVP_MD_CTX_free(ctx);
	return r;
}

/* What the eh_* calls return: 0 when the engine answered with a status (*statusp), else
 * a negative RSSP_E_* code. */
static int
answered(const struct engine_result *res, int *statusp)
{
	*statusp = res->grpc_status;
	if (res->grpc_status >= 0)
		return 0;
	switch (res->status) {
	case ENGINE_TIMEOUT:
		return RSSP_E_TIMEOUT;
	case ENGINE_UNAVAILABLE:
		return RSSP_E_UNAVAILABLE;
	default:
		return RSSP_E_INTERNAL;
	}
}

static EVP_PKEY *ra_key;

int
eh_ra_init(const char *priv_path, const char *pub_path)
{
	FILE *f;
	int fd;

	eh_ra_release();
	if ((f = fopen(priv_path, "r")) != NULL) {
		ra_key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
		fclose(f);
	} else {
		if ((ra_key = EVP_EC_gen("P-256")) == NULL ||
		    (fd = open(priv_path, O_WRONLY | O_CREAT | O_EXCL, 0600)) < 0 ||
		    (f = fdopen(fd, "w")) == NULL)
			return -1;
		if (PEM_write_PrivateKey(f, ra_key, NULL, NULL, 0, NULL, NULL) != 1) {
			fclose(f);
			return -1;
		}
		fclose(f);
	}
	if (ra_key == NULL)
		return -1;
	if (pub_path != NULL) {
		if ((f = fopen(pub_path, "w")) == NULL)
			return -1;
		if (PEM_write_PUBKEY(f, ra_key) != 1) {
			fclose(f);
			return -1;
		}
		fclose(f);
	}
	return 0;
}

int
eh_ra_setup(const char *dir)
{
	char priv[1100], pub[1100];

	snprintf(priv, sizeof(priv), "%s/ra.key", dir);
	snprintf(pub, sizeof(pub), "%s/ra.pem", dir);
	if (eh_ra_init(priv, pub) != 0)
		return -1;
	return setenv("RSSP_RA_KEYS", pub, 1) == 0 ? 0 : -1;
}

void
eh_ra_release(void)
{
	EVP_PKEY_free(ra_key);
	ra_key = NULL;
}

static int make_voucher(const struct rssp_activation_fields *f,
    const struct eh_voucher_spec *vs, uint8_t **tbsp, size_t *tbslenp, uint8_t **sigp,
    size_t *siglenp, uint8_t key_id_out[32]);

/* eh_activate and eh_activate_as. */
static int
activate(struct engine_client *c, const struct eh_kak *kak, int key_algo,
    const char *credential_id, const char *owner_id, const char *device_uuid,
    const struct eh_voucher_spec *vs, const char *request_id, int tamper,
    struct eh_cred *cred, int *statusp, char *msg, size_t msgsz, X509 **certp)
{
	struct engine_activation act = { 0 };
	struct engine_result res;
	struct engine_voucher vo;
	struct rssp_activation_fields f;
	uint8_t nonce[16], *ad = NULL, *sig = NULL, *vtbs = NULL, *vsig = NULL, vid[32];
	size_t vtbslen = 0, vsiglen = 0;
	const unsigned char *p;
	size_t adlen, siglen;
	X509 *x = NULL;
	int r = -1;

	memset(cred, 0, sizeof(*cred));
	if (certp != NULL)
		*certp = NULL;
	if (msg != NULL && msgsz > 0)
		msg[0] = '\0';
	if (RAND_bytes(nonce, sizeof(nonce)) != 1)
		return -1;
	memset(&f, 0, sizeof(f));
	f.credential_id = credential_id;
	f.owner_id = owner_id;
	f.device_uuid = device_uuid;
	f.kak_spki = kak->spki;
	f.kak_spki_len = kak->spki_len;
	f.kak_algo = kak->algo;
	f.key_algo = key_algo;
	f.subject_cn = vs->common_name != NULL ? vs->common_name : "Test Signer";
	f.validity_days = 365;
	f.nonce = nonce;
	f.nonce_len = sizeof(nonce);
	f.expires_at = (int64_t)time(NULL) + 300;
	if (rssp_authdata_activation(&f, &ad, &adlen) != 0 ||
	    eh_kak_sign(kak, ad, adlen, &sig, &siglen) != 0)
		goto out;
	if (tamper)
		sig[siglen / 2] ^= 1;
	if (!vs->none) {
		if (make_voucher(&f, vs, &vtbs, &vtbslen, &vsig, &vsiglen, vid) != 0)
			goto out;
		vo.tbs = vtbs;
		vo.tbs_len = vtbslen;
		vo.sig = vsig;
		vo.sig_len = vsiglen;
		vo.ra_key_id = vid;
	}
	if (engine_activate(c, 0, request_id, &f, sig, siglen, !vs->none ? &vo : NULL, &act,
	    &res) != ENGINE_OK) {
		if (msg != NULL && msgsz > 0)
			snprintf(msg, msgsz, "%s", res.message);
		r = answered(&res, statusp);
		goto out;
	}
	*statusp = res.grpc_status;
	if (act.binding_len > sizeof(cred->binding))
		goto out;
	snprintf(cred->credential_id, sizeof(cred->credential_id), "%s", credential_id);
	snprintf(cred->owner_id, sizeof(cred->owner_id), "%s", f.owner_id);
	snprintf(cred->device_uuid, sizeof(cred->device_uuid), "%s", f.device_uuid);
	snprintf(cred->key_label, sizeof(cred->key_label), "%s", act.key_label);
	memcpy(cred->binding, act.binding, act.binding_len);
	cred->binding_len = act.binding_len;
	cred->key_algo = key_algo;
	p = act.cert;
	if ((x = d2i_X509(NULL, &p, (long)act.cert_len)) == NULL ||
	    (cred->pub = X509_get_pubkey(x)) == NULL)
		goto out;
	if (certp != NULL) {
		*certp = x;
		x = NULL;
	}
	r = 0;
out:
	X509_free(x);
	engine_activation_release(&act);
	free(ad);
	free(sig);
	free(vtbs);
	free(vsig);
	return r;
}

EVP_PKEY *
eh_ra_key(void)
{
	return ra_key;
}

static int
key_id(EVP_PKEY *k, uint8_t id[32])
{
	uint8_t *der = NULL;
	int n;

	if ((n = i2d_PUBKEY(k, &der)) <= 0)
		return -1;
	SHA256(der, (size_t)n, id);
	OPENSSL_free(der);
	return 0;
}

/* The voucher for the activation f per vs (defaults: see eh_voucher_spec). */
static int
make_voucher(const struct rssp_activation_fields *f, const struct eh_voucher_spec *vs,
    uint8_t **tbsp, size_t *tbslenp, uint8_t **sigp, size_t *siglenp, uint8_t key_id_out[32])
{
	struct rssp_voucher v;
	EVP_PKEY *signer = vs->ra != NULL ? vs->ra : ra_key;
	struct eh_kak ra = { signer, NULL, 0, RSSP__ENGINE__V1__KAK_ALGO__KAK_ECDSA_P256_SHA256 };

	memset(&v, 0, sizeof(v));
	snprintf(v.user_id, sizeof(v.user_id), "%s", vs->user_id != NULL ? vs->user_id :
	    f->owner_id);
	snprintf(v.common_name, sizeof(v.common_name), "%s", f->subject_cn);
	snprintf(v.device_uuid, sizeof(v.device_uuid), "%s", vs->device_uuid != NULL ?
	    vs->device_uuid : f->device_uuid);
	if (vs->kak != NULL)
		SHA256(vs->kak->spki, vs->kak->spki_len, v.kak_sha256);
	else
		SHA256(f->kak_spki, f->kak_spki_len, v.kak_sha256);
	v.issued_at = vs->issued_at != 0 ? vs->issued_at : (int64_t)time(NULL) - 60;
	v.not_after = vs->not_after != 0 ? vs->not_after : v.issued_at + 86400;
	if (signer == NULL || key_id(vs->key_id_of != NULL ? vs->key_id_of : signer,
	    v.ra_key_id) != 0)
		return -1;
	memcpy(key_id_out, v.ra_key_id, 32);
	if (rssp_voucher_build(&v, tbsp, tbslenp) != 0)
		return -1;
	if (eh_kak_sign(&ra, *tbsp, *tbslenp, sigp, siglenp) != 0) {
		free(*tbsp);
		return -1;
	}
	return 0;
}

int
eh_activate(struct engine_client *c, const struct eh_kak *kak, int key_algo,
    const char *credential_id, const char *request_id, int tamper, struct eh_cred *cred,
    int *statusp)
{
	struct eh_voucher_spec vs = { .none = ra_key == NULL };

	return activate(c, kak, key_algo, credential_id, "owner-1", "device-1", &vs,
	    request_id, tamper, cred, statusp, NULL, 0, NULL);
}

int
eh_activate_as(struct engine_client *c, const struct eh_kak *kak, int key_algo,
    const char *credential_id, const char *owner_id, const char *device_uuid,
    const struct eh_voucher_spec *vs, const char *request_id, struct eh_cred *cred,
    int *statusp, char *msg, size_t msgsz, X509 **certp)
{
	struct eh_voucher_spec dflt = { 0 };

	return activate(c, kak, key_algo, credential_id, owner_id, device_uuid,
	    vs != NULL ? vs : &dflt, request_id, 0, cred, statusp, msg, msgsz, certp);
}

void
eh_cred_release(struct eh_cred *cred)
{
	EVP_PKEY_free(cred->pub);
	cred->pub = NULL;
}

int
eh_approve(struct engine_client *c, const struct eh_kak *kak, const struct eh_cred *cred,
    const char *approval_id, int hash_algo, const uint8_t *const *hashes, size_t n,
    uint32_t num_sigs, const char *request_id, uint8_t **sadp, size_t *sadlenp,
    int *statusp)
{
	return eh_approve_at(c, kak, cred, approval_id, hash_algo, hashes, n, num_sigs,
	    request_id, NULL, 0, sadp, sadlenp, statusp);
}

int
eh_approve_at(struct engine_client *c, const struct eh_kak *kak, const struct eh_cred *cred,
    const char *approval_id, int hash_algo, const uint8_t *const *hashes, size_t n,
    uint32_t num_sigs, const char *request_id, const uint8_t *fixed_nonce, int64_t expires_at,
    uint8_t **sadp, size_t *sadlenp, int *statusp)
{
	struct engine_result res;
	struct rssp_approval_fields f;
	uint8_t nonce[16], *ad = NULL, *sig = NULL;
	size_t adlen, siglen;
	int64_t sad_exp;
	int r = -1;

	if (fixed_nonce != NULL)
		memcpy(nonce, fixed_nonce, sizeof(nonce));
	else if (RAND_bytes(nonce, sizeof(nonce)) != 1)
		goto out;
	memset(&f, 0, sizeof(f));
	f.approval_id = approval_id;
	f.credential_id = cred->credential_id;
	f.owner_id = cred->owner_id;
	f.device_uuid = cred->device_uuid;
	f.kak_spki = kak->spki;
	f.kak_spki_len = kak->spki_len;
	f.hash_algo = hash_algo;
	f.hashes = hashes;
	f.n_hashes = n;
	f.hash_len = rssp_hash_algo_len(hash_algo);
	f.num_signatures = num_sigs;
	f.rp_name = "Test RP";
	f.description = "Test document";
	f.nonce = nonce;
	f.nonce_len = sizeof(nonce);
	f.expires_at = expires_at != 0 ? expires_at : (int64_t)time(NULL) + 300;
	if (rssp_authdata_approval(&f, &ad, &adlen) != 0 ||
	    eh_kak_sign(kak, ad, adlen, &sig, &siglen) != 0)
		goto out;
	if (engine_approve(c, 0, request_id, &f, kak->algo, cred->key_label, cred->binding,
	    cred->binding_len, sig, siglen, sadp, sadlenp, &sad_exp, &res) != ENGINE_OK) {
		r = answered(&res, statusp);
		goto out;
	}
	*statusp = res.grpc_status;
	r = 0;
out:
	free(ad);
	free(sig);
	return r;
}

int
eh_sign_hash(struct engine_client *c, const struct eh_cred *cred, const uint8_t *sad,
    size_t sadlen, int hash_algo, int sign_algo, const uint8_t *const *hashes, size_t n,
    size_t hash_len, const char *request_id, struct engine_signatures *sigsp,
    int *statusp, char **msgp)
{
	struct engine_signatures sigs = { 0 };
	struct engine_result res;
	int r;

	if (engine_sign_hash(c, 0, request_id, cred->credential_id, sad, sadlen, hash_algo,
	    sign_algo, hashes, n, hash_len, &sigs, &res) == ENGINE_OK) {
		*statusp = res.grpc_status;
		r = 0;
	} else
		r = answered(&res, statusp);
	if (msgp != NULL)
		*msgp = res.message[0] != '\0' ? strdup(res.message) : NULL;
	if (sigsp != NULL) {
		*sigsp = sigs; /* owned by the caller */
		memset(&sigs, 0, sizeof(sigs));
	}
	engine_signatures_release(&sigs);
	return r;
}

int
eh_verify(const struct eh_cred *cred, int sign_algo, int hash_algo, const uint8_t *digest,
    size_t dlen, const uint8_t *sig, size_t siglen)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(cred->pub, NULL);
	const EVP_MD *md = hash_algo == 2 ? EVP_sha384() : hash_algo == 3 ? EVP_sha512() : EVP_sha256();
	int r = -1;

	if (ctx == NULL || EVP_PKEY_verify_init(ctx) != 1)
		goto out;
	if (sign_algo != RSSP__ENGINE__V1__SIGN_ALGO__SIGN_ECDSA &&
	    (EVP_PKEY_CTX_set_rsa_padding(ctx, sign_algo == RSSP__ENGINE__V1__SIGN_ALGO__SIGN_RSA_PSS ?
	    RSA_PKCS1_PSS_PADDING : RSA_PKCS1_PADDING) != 1))
		goto out;
	if (sign_algo == RSSP__ENGINE__V1__SIGN_ALGO__SIGN_RSA_PSS &&
	    (EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, RSA_PSS_SALTLEN_DIGEST) != 1 ||
	    EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md) != 1))
		goto out;
	if (EVP_PKEY_CTX_set_signature_md(ctx, md) != 1)
		goto out;
	if (EVP_PKEY_verify(ctx, sig, siglen, digest, dlen) == 1)
		r = 0;
out:
	EVP_PKEY_CTX_free(ctx);
	return r;
}
