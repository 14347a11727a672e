/* engine_helper.c - see engine_helper.h. Test code: errors are -1 or engine_call's. */
#include "engine_helper.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "authdata.h"
#include "rssp_err.h"

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

static int
call_authorize(struct engine_client *c, Rssp__Engine__V1__AuthorizeRequest *req,
    const char *request_id, Rssp__Engine__V1__AuthorizeResponse **respp, int *statusp)
{
	size_t len = rssp__engine__v1__authorize_request__get_packed_size(req), resplen = 0;
	uint8_t *buf = malloc(len ? len : 1), *resp = NULL;
	char *msg = NULL;
	int r;

	if (buf == NULL)
		return RSSP_E_NOMEM;
	rssp__engine__v1__authorize_request__pack(req, buf);
	r = engine_call(c, ENGINE_METHOD_AUTHORIZE, request_id, buf, len, &resp, &resplen,
	    statusp, &msg);
	free(buf);
	free(msg);
	*respp = NULL;
	if (r == 0 && *statusp == 0) {
		*respp = rssp__engine__v1__authorize_response__unpack(NULL, resplen, resp);
		if (*respp == NULL)
			r = RSSP_E_INVAL;
	}
	free(resp);
	return r;
}

int
eh_activate(struct engine_client *c, const struct eh_kak *kak, int key_algo,
    const char *credential_id, const char *request_id, int tamper, struct eh_cred *cred,
    int *statusp)
{
	Rssp__Engine__V1__AuthorizeRequest req = RSSP__ENGINE__V1__AUTHORIZE_REQUEST__INIT;
	Rssp__Engine__V1__Kak k = RSSP__ENGINE__V1__KAK__INIT;
	Rssp__Engine__V1__Activation act = RSSP__ENGINE__V1__ACTIVATION__INIT;
	Rssp__Engine__V1__AuthorizeResponse *resp = NULL;
	struct rssp_activation_fields f;
	uint8_t nonce[16], *ad = NULL, *sig = NULL;
	const unsigned char *p;
	size_t adlen, siglen;
	X509 *x = NULL;
	int r = -1;

	memset(cred, 0, sizeof(*cred));
	if (RAND_bytes(nonce, sizeof(nonce)) != 1)
		return -1;
	memset(&f, 0, sizeof(f));
	f.credential_id = credential_id;
	f.owner_id = "owner-1";
	f.device_uuid = "device-1";
	f.kak_spki = kak->spki;
	f.kak_spki_len = kak->spki_len;
	f.kak_algo = kak->algo;
	f.key_algo = key_algo;
	f.subject_cn = "Test Signer";
	f.validity_days = 365;
	f.nonce = nonce;
	f.nonce_len = sizeof(nonce);
	f.expires_at = (int64_t)time(NULL) + 300;
	if (rssp_authdata_activation(&f, &ad, &adlen) != 0 ||
	    eh_kak_sign(kak, ad, adlen, &sig, &siglen) != 0)
		goto out;
	if (tamper)
		sig[siglen / 2] ^= 1;
	k.public_key.data = kak->spki;
	k.public_key.len = kak->spki_len;
	k.algo = kak->algo;
	act.credential_id = (char *)f.credential_id;
	act.owner_id = (char *)f.owner_id;
	act.device_uuid = (char *)f.device_uuid;
	act.key_algo = key_algo;
	act.subject_cn = (char *)f.subject_cn;
	act.validity_days = f.validity_days;
	act.nonce.data = nonce;
	act.nonce.len = sizeof(nonce);
	act.expires_at = f.expires_at;
	req.request_id = (char *)(request_id ? request_id : "");
	req.kak = &k;
	req.signature.data = sig;
	req.signature.len = siglen;
	req.purpose_case = RSSP__ENGINE__V1__AUTHORIZE_REQUEST__PURPOSE_ACTIVATION;
	req.activation = &act;
	if ((r = call_authorize(c, &req, request_id, &resp, statusp)) != 0 || *statusp != 0)
		goto out;
	r = -1;
	if (resp->result_case != RSSP__ENGINE__V1__AUTHORIZE_RESPONSE__RESULT_ACTIVATION ||
	    resp->activation->binding.len > sizeof(cred->binding))
		goto out;
	snprintf(cred->credential_id, sizeof(cred->credential_id), "%s", credential_id);
	snprintf(cred->owner_id, sizeof(cred->owner_id), "%s", f.owner_id);
	snprintf(cred->device_uuid, sizeof(cred->device_uuid), "%s", f.device_uuid);
	snprintf(cred->key_label, sizeof(cred->key_label), "%s", resp->activation->key_label);
	memcpy(cred->binding, resp->activation->binding.data, resp->activation->binding.len);
	cred->binding_len = resp->activation->binding.len;
	cred->key_algo = key_algo;
	p = resp->activation->certificate.data;
	if ((x = d2i_X509(NULL, &p, (long)resp->activation->certificate.len)) == NULL ||
	    (cred->pub = X509_get_pubkey(x)) == NULL)
		goto out;
	r = 0;
out:
	X509_free(x);
	if (resp != NULL)
		rssp__engine__v1__authorize_response__free_unpacked(resp, NULL);
	free(ad);
	free(sig);
	return r;
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
	Rssp__Engine__V1__AuthorizeRequest req = RSSP__ENGINE__V1__AUTHORIZE_REQUEST__INIT;
	Rssp__Engine__V1__Kak k = RSSP__ENGINE__V1__KAK__INIT;
	Rssp__Engine__V1__Approval app = RSSP__ENGINE__V1__APPROVAL__INIT;
	Rssp__Engine__V1__AuthorizeResponse *resp = NULL;
	ProtobufCBinaryData *hb = calloc(n ? n : 1, sizeof(*hb));
	struct rssp_approval_fields f;
	uint8_t nonce[16], *ad = NULL, *sig = NULL;
	size_t adlen, siglen, i, hlen = rssp_hash_algo_len(hash_algo);
	int r = -1;

	if (hb == NULL)
		goto out;
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
	f.hash_len = hlen;
	f.num_signatures = num_sigs;
	f.rp_name = "Test RP";
	f.description = "Test document";
	f.nonce = nonce;
	f.nonce_len = sizeof(nonce);
	f.expires_at = expires_at != 0 ? expires_at : (int64_t)time(NULL) + 300;
	if (rssp_authdata_approval(&f, &ad, &adlen) != 0 ||
	    eh_kak_sign(kak, ad, adlen, &sig, &siglen) != 0)
		goto out;
	for (i = 0; i < n; i++) {
		hb[i].data = (uint8_t *)hashes[i];
		hb[i].len = hlen;
	}
	k.public_key.data = kak->spki;
	k.public_key.len = kak->spki_len;
	k.algo = kak->algo;
	app.approval_id = (char *)approval_id;
	app.credential_id = (char *)cred->credential_id;
	app.owner_id = (char *)cred->owner_id;
	app.device_uuid = (char *)cred->device_uuid;
	app.key_label = (char *)cred->key_label;
	app.binding.data = (uint8_t *)cred->binding;
	app.binding.len = cred->binding_len;
	app.hash_algo = hash_algo;
	app.n_hashes = n;
	app.hashes = hb;
	app.num_signatures = num_sigs;
	app.rp_name = (char *)f.rp_name;
	app.description = (char *)f.description;
	app.nonce.data = nonce;
	app.nonce.len = sizeof(nonce);
	app.expires_at = f.expires_at;
	req.request_id = (char *)(request_id ? request_id : "");
	req.kak = &k;
	req.signature.data = sig;
	req.signature.len = siglen;
	req.purpose_case = RSSP__ENGINE__V1__AUTHORIZE_REQUEST__PURPOSE_APPROVAL;
	req.approval = &app;
	if ((r = call_authorize(c, &req, request_id, &resp, statusp)) != 0 || *statusp != 0)
		goto out;
	r = -1;
	if (resp->result_case != RSSP__ENGINE__V1__AUTHORIZE_RESPONSE__RESULT_APPROVAL ||
	    (*sadp = malloc(resp->approval->sad.len)) == NULL)
		goto out;
	memcpy(*sadp, resp->approval->sad.data, resp->approval->sad.len);
	*sadlenp = resp->approval->sad.len;
	r = 0;
out:
	if (resp != NULL)
		rssp__engine__v1__authorize_response__free_unpacked(resp, NULL);
	free(hb);
	free(ad);
	free(sig);
	return r;
}

int
eh_sign_hash(struct engine_client *c, const struct eh_cred *cred, const uint8_t *sad,
    size_t sadlen, int hash_algo, int sign_algo, const uint8_t *const *hashes, size_t n,
    size_t hash_len, const char *request_id, Rssp__Engine__V1__SignHashResponse **respp,
    int *statusp, char **msgp)
{
	Rssp__Engine__V1__SignHashRequest req = RSSP__ENGINE__V1__SIGN_HASH_REQUEST__INIT;
	ProtobufCBinaryData *hb = calloc(n ? n : 1, sizeof(*hb));
	uint8_t *buf = NULL, *resp = NULL;
	size_t len, resplen = 0, i;
	char *msg = NULL;
	int r = RSSP_E_NOMEM;

	if (respp != NULL)
		*respp = NULL;
	if (hb == NULL)
		goto out;
	for (i = 0; i < n; i++) {
		hb[i].data = (uint8_t *)hashes[i];
		hb[i].len = hash_len;
	}
	req.request_id = (char *)(request_id ? request_id : "");
	req.credential_id = (char *)cred->credential_id;
	req.sad.data = (uint8_t *)sad;
	req.sad.len = sadlen;
	req.hash_algo = hash_algo;
	req.sign_algo = sign_algo;
	req.n_hashes = n;
	req.hashes = hb;
	len = rssp__engine__v1__sign_hash_request__get_packed_size(&req);
	if ((buf = malloc(len ? len : 1)) == NULL)
		goto out;
	rssp__engine__v1__sign_hash_request__pack(&req, buf);
	r = engine_call(c, ENGINE_METHOD_SIGNHASH, request_id, buf, len, &resp, &resplen,
	    statusp, &msg);
	if (r == 0 && *statusp == 0 && respp != NULL) {
		*respp = rssp__engine__v1__sign_hash_response__unpack(NULL, resplen, resp);
		if (*respp == NULL)
			r = RSSP_E_INVAL;
	}
out:
	if (msgp != NULL)
		*msgp = msg;
	else
		free(msg);
	free(resp);
	free(buf);
	free(hb);
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
