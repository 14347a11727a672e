/* sam_decode.c - decode-and-check of the engine's requests (sam_decode.h). */
#include "sam_decode.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <rssp/engine/v1/engine.pb-c.h>

#include "algo.h"
#include "buf.h"
#include "x509.h"

int
sam_refuse(struct sam_audit *a, int code, const char *reason)
{
	a->reason = reason;
	return code;
}

void
sam_audit_str(char *dst, const char *src)
{
	snprintf(dst, RSSP_MAX_ID_LEN + 1, "%s", src != NULL ? src : "");
}

/* Well-formed UTF-8 (buf.h): ids end up in PKCS#11 labels and certificate names. */
static int
utf8_ok(const char *str)
{
	return rssp_utf8_ok((const uint8_t *)str, strlen(str), 0);
}

static int
id_ok(const char *s)
{
	size_t n = s != NULL ? strlen(s) : 0;

	return n >= 1 && n <= RSSP_MAX_ID_LEN && utf8_ok(s);
}

static int
text_ok(const char *s)
{
	return s != NULL && strlen(s) <= RSSP_MAX_TEXT_LEN && utf8_ok(s);
}

/* Copies a string already checked to fit (size includes the NUL). */
static void
copy_str(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src != NULL ? src : "");
}

/* SHA-256 is fetched once: no implicit fetch per request. */
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static EVP_MD *sha256_md;

static void
sha256_fetch(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

/* The audit summary: hex SHA-256 over the concatenated digests. */
static void
audit_hashes(struct sam_audit *a, const ProtobufCBinaryData *v, size_t n)
{
	uint8_t md[32];
	EVP_MD_CTX *c;
	size_t i;

	memset(md, 0, sizeof(md));
	pthread_once(&sha256_once, sha256_fetch);
	if ((c = EVP_MD_CTX_new()) != NULL) {
		if (EVP_DigestInit_ex(c, sha256_md != NULL ? sha256_md : EVP_sha256(), NULL) == 1) {
			for (i = 0; i < n; i++)
				EVP_DigestUpdate(c, v[i].data, v[i].len);
			EVP_DigestFinal_ex(c, md, NULL);
		}
		EVP_MD_CTX_free(c);
	}
	rssp_hex(a->hashes_sha256, md, sizeof(md));
}

/* n digests of hlen bytes each into one array. */
static uint8_t *
copy_hashes(const ProtobufCBinaryData *v, size_t n, size_t hlen)
{
	uint8_t *h;
	size_t i;

	if ((h = malloc(n * hlen)) == NULL)
		return NULL;
	for (i = 0; i < n; i++)
		memcpy(h + i * hlen, v[i].data, hlen);
	return h;
}

static const char *
kak_name(const Rssp__Engine__V1__Kak *kak)
{
	const struct rssp_kak_alg *ka = kak != NULL ? rssp_kak_alg(kak->algo) : NULL;

	return ka != NULL ? ka->name : NULL;
}

/* The KAK and the signature, checked last for both purposes. */
static int
decode_kak_sig(const Rssp__Engine__V1__AuthorizeRequest *w, struct sam_authorize_req *r,
    struct sam_audit *a)
{
	const Rssp__Engine__V1__Kak *kak = w->kak;

	if (kak == NULL || kak->base.n_unknown_fields != 0)
		return sam_refuse(a, RSSP_E_INVAL, "kak missing");
	if (w->signature.len == 0 || w->signature.len > KAK_MAX_SIG)
		return sam_refuse(a, RSSP_E_INVAL, "signature length out of range");
	/* over the cap: kept as a length, refused as "kak invalid" when parsed */
	r->kak.algo = kak->algo;
	r->kak.spki_len = kak->public_key.len;
	if (kak->public_key.len <= KAK_MAX_SPKI)
		memcpy(r->kak.spki, kak->public_key.data, kak->public_key.len);
	else
		r->kak.spki_len = KAK_MAX_SPKI + 1;
	memcpy(r->sig, w->signature.data, w->signature.len);
	r->sig_len = w->signature.len;
	return 0;
}

/* The enrolment voucher: its bytes parsed (the RA key's signature and the time are the
 * handler's part), the key id it names the one sent beside it. */
static int
decode_voucher(const Rssp__Engine__V1__Voucher *vo, struct sam_voucher *d, struct sam_audit *a)
{
	if (vo == NULL)
		return sam_refuse(a, RSSP_E_INVAL, "voucher missing");
	if (vo->base.n_unknown_fields != 0)
		return sam_refuse(a, RSSP_E_INVAL, "unknown field");
	if (vo->to_be_signed.len > RSSP_VOUCHER_MAX_LEN ||
	    rssp_voucher_parse(vo->to_be_signed.data, vo->to_be_signed.len, &d->v) != 0)
		return sam_refuse(a, RSSP_E_INVAL, "voucher malformed");
	if (vo->ra_key_id.len != sizeof(d->v.ra_key_id) ||
	    CRYPTO_memcmp(vo->ra_key_id.data, d->v.ra_key_id, sizeof(d->v.ra_key_id)) != 0)
		return sam_refuse(a, RSSP_E_INVAL, "voucher key id mismatch");
	rssp_hex(a->ra_key_id, d->v.ra_key_id, sizeof(d->v.ra_key_id));
	if (vo->signature.len == 0 || vo->signature.len > KAK_MAX_SIG)
		return sam_refuse(a, RSSP_E_INVAL, "voucher signature length out of range");
	memcpy(d->tbs, vo->to_be_signed.data, vo->to_be_signed.len);
	d->tbs_len = vo->to_be_signed.len;
	memcpy(d->sig, vo->signature.data, vo->signature.len);
	d->sig_len = vo->signature.len;
	return 0;
}

static int
decode_activation(const Rssp__Engine__V1__AuthorizeRequest *w, struct sam_authorize_req *r,
    struct sam_audit *a)
{
	const Rssp__Engine__V1__Activation *act = w->activation;
	struct sam_activation *d = &r->activation;
	int rc;

	a->event = "authorize.activation";
	sam_audit_str(a->credential_id, act->credential_id);
	a->algo = kak_name(w->kak);
	if (!id_ok(act->credential_id) || !id_ok(act->owner_id) || !id_ok(act->device_uuid))
		return sam_refuse(a, RSSP_E_INVAL, "id length out of range");
	if (rssp_key_alg(act->key_algo) == NULL)
		return sam_refuse(a, RSSP_E_UNSUPPORTED, "unknown key algorithm");
	if (act->validity_days < 1 || act->validity_days > X509_MAX_DAYS)
		return sam_refuse(a, RSSP_E_INVAL, "validity out of range");
	if (act->nonce.len < RSSP_MIN_NONCE_LEN || act->nonce.len > RSSP_MAX_NONCE_LEN)
		return sam_refuse(a, RSSP_E_INVAL, "nonce length out of range");
	if ((rc = decode_kak_sig(w, r, a)) != 0)
		return rc;
	if ((rc = decode_voucher(act->voucher, &d->voucher, a)) != 0)
		return rc;
	r->purpose = SAM_PURPOSE_ACTIVATION;
	copy_str(d->credential_id, sizeof(d->credential_id), act->credential_id);
	copy_str(d->owner_id, sizeof(d->owner_id), act->owner_id);
	copy_str(d->device_uuid, sizeof(d->device_uuid), act->device_uuid);
	d->key_algo = act->key_algo;
	d->validity_days = act->validity_days;
	memcpy(d->nonce, act->nonce.data, act->nonce.len);
	d->nonce_len = act->nonce.len;
	d->expires_at = act->expires_at;
	return 0;
}

static int
decode_approval(const Rssp__Engine__V1__AuthorizeRequest *w, struct sam_authorize_req *r,
    struct sam_audit *a)
{
	const Rssp__Engine__V1__Approval *ap = w->approval;
	struct sam_approval *d = &r->approval;
	size_t hlen, i;
	int rc;

	a->event = "authorize.approval";
	sam_audit_str(a->credential_id, ap->credential_id);
	sam_audit_str(a->approval_id, ap->approval_id);
	sam_audit_str(a->key_label, ap->key_label);
	a->algo = kak_name(w->kak);
	if (!id_ok(ap->approval_id) || !id_ok(ap->credential_id) || !id_ok(ap->owner_id) ||
	    !id_ok(ap->device_uuid) || !id_ok(ap->key_label))
		return sam_refuse(a, RSSP_E_INVAL, "id length out of range");
	if ((hlen = rssp_hash_algo_len(ap->hash_algo)) == 0)
		return sam_refuse(a, RSSP_E_UNSUPPORTED, "unknown hash algorithm");
	if (ap->n_hashes < 1 || ap->n_hashes > RSSP_MAX_HASHES)
		return sam_refuse(a, RSSP_E_INVAL, "hash count out of range");
	a->n_hashes = (unsigned)ap->n_hashes;
	for (i = 0; i < ap->n_hashes; i++) {
		if (ap->hashes[i].len != hlen)
			return sam_refuse(a, RSSP_E_INVAL, "digest length mismatch");
	}
	audit_hashes(a, ap->hashes, ap->n_hashes);
	if (ap->num_signatures < 1 || ap->num_signatures > RSSP_MAX_HASHES)
		return sam_refuse(a, RSSP_E_INVAL, "num signatures out of range");
	if (!text_ok(ap->rp_name) || !text_ok(ap->description))
		return sam_refuse(a, RSSP_E_INVAL, "text too long or not utf-8");
	if (ap->nonce.len < RSSP_MIN_NONCE_LEN || ap->nonce.len > RSSP_MAX_NONCE_LEN)
		return sam_refuse(a, RSSP_E_INVAL, "nonce length out of range");
	if (ap->binding.len != BINDING_LEN)
		return sam_refuse(a, RSSP_E_DENIED, "binding invalid");
	if ((rc = decode_kak_sig(w, r, a)) != 0)
		return rc;
	if ((d->hashes = copy_hashes(ap->hashes, ap->n_hashes, hlen)) == NULL)
		return RSSP_E_NOMEM;
	r->purpose = SAM_PURPOSE_APPROVAL;
	copy_str(d->approval_id, sizeof(d->approval_id), ap->approval_id);
	copy_str(d->credential_id, sizeof(d->credential_id), ap->credential_id);
	copy_str(d->owner_id, sizeof(d->owner_id), ap->owner_id);
	copy_str(d->device_uuid, sizeof(d->device_uuid), ap->device_uuid);
	copy_str(d->key_label, sizeof(d->key_label), ap->key_label);
	memcpy(d->binding, ap->binding.data, BINDING_LEN);
	d->hash_algo = ap->hash_algo;
	d->hash_len = hlen;
	d->n_hashes = ap->n_hashes;
	d->num_signatures = ap->num_signatures;
	copy_str(d->rp_name, sizeof(d->rp_name), ap->rp_name);
	copy_str(d->description, sizeof(d->description), ap->description);
	memcpy(d->nonce, ap->nonce.data, ap->nonce.len);
	d->nonce_len = ap->nonce.len;
	d->expires_at = ap->expires_at;
	return 0;
}

int
sam_decode_authorize(const uint8_t *in, size_t inlen, struct sam_authorize_req **reqp,
    struct sam_audit *a)
{
	Rssp__Engine__V1__AuthorizeRequest *w = NULL;
	struct sam_authorize_req *r = NULL;
	int rc;

	*reqp = NULL;
	a->event = "authorize.approval"; /* until the purpose is known */
	if (inlen > SAM_MAX_AUTHORIZE_MSG)
		return sam_refuse(a, RSSP_E_EXHAUSTED, "message too large");
	if ((w = rssp__engine__v1__authorize_request__unpack(NULL, inlen, in)) == NULL)
		return sam_refuse(a, RSSP_E_INVAL, "malformed request");
	if (w->purpose_case == RSSP__ENGINE__V1__AUTHORIZE_REQUEST__PURPOSE_ACTIVATION)
		a->event = "authorize.activation";
	if (w->base.n_unknown_fields != 0 ||
	    (w->purpose_case == RSSP__ENGINE__V1__AUTHORIZE_REQUEST__PURPOSE_ACTIVATION &&
	    w->activation->base.n_unknown_fields != 0) ||
	    (w->purpose_case == RSSP__ENGINE__V1__AUTHORIZE_REQUEST__PURPOSE_APPROVAL &&
	    w->approval->base.n_unknown_fields != 0)) {
		rc = sam_refuse(a, RSSP_E_INVAL, "unknown field");
		goto out;
	}
	if (strlen(w->request_id) > RSSP_MAX_ID_LEN) {
		rc = sam_refuse(a, RSSP_E_INVAL, "request id too long");
		goto out;
	}
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		rc = RSSP_E_NOMEM;
		goto out;
	}
	copy_str(r->request_id, sizeof(r->request_id), w->request_id);
	switch (w->purpose_case) {
	case RSSP__ENGINE__V1__AUTHORIZE_REQUEST__PURPOSE_ACTIVATION:
		rc = decode_activation(w, r, a);
		break;
	case RSSP__ENGINE__V1__AUTHORIZE_REQUEST__PURPOSE_APPROVAL:
		rc = decode_approval(w, r, a);
		break;
	default:
		rc = sam_refuse(a, RSSP_E_INVAL, "purpose missing");
		break;
	}
	if (rc == 0) {
		*reqp = r;
		r = NULL;
	}
out:
	rssp__engine__v1__authorize_request__free_unpacked(w, NULL);
	sam_authorize_req_free(r);
	return rc;
}

void
sam_authorize_req_free(struct sam_authorize_req *r)
{
	if (r == NULL)
		return;
	free(r->approval.hashes);
	OPENSSL_cleanse(r, sizeof(*r));
	free(r);
}

int
sam_decode_sign_hash(const uint8_t *in, size_t inlen, struct sam_sign_req **reqp,
    struct sam_audit *a)
{
	Rssp__Engine__V1__SignHashRequest *w = NULL;
	struct sam_sign_req *r = NULL;
	size_t hlen, i, n;
	int rc;

	*reqp = NULL;
	a->event = "signhash";
	if (inlen > SAM_MAX_SIGNHASH_MSG)
		return sam_refuse(a, RSSP_E_EXHAUSTED, "message too large");
	if ((w = rssp__engine__v1__sign_hash_request__unpack(NULL, inlen, in)) == NULL)
		return sam_refuse(a, RSSP_E_INVAL, "malformed request");
	sam_audit_str(a->credential_id, w->credential_id);
	if (w->base.n_unknown_fields != 0) {
		rc = sam_refuse(a, RSSP_E_INVAL, "unknown field");
		goto out;
	}
	if (strlen(w->request_id) > RSSP_MAX_ID_LEN || !id_ok(w->credential_id)) {
		rc = sam_refuse(a, RSSP_E_INVAL, "id length out of range");
		goto out;
	}
	if ((hlen = rssp_hash_algo_len(w->hash_algo)) == 0) {
		rc = sam_refuse(a, RSSP_E_UNSUPPORTED, "unknown hash algorithm");
		goto out;
	}
	if ((a->algo = rssp_sign_alg_name(w->sign_algo, w->hash_algo)) == NULL) {
		rc = sam_refuse(a, RSSP_E_UNSUPPORTED, "unknown sign algorithm");
		goto out;
	}
	if (w->n_hashes < 1 || w->n_hashes > RSSP_MAX_HASHES) {
		rc = sam_refuse(a, RSSP_E_INVAL, "hash count out of range");
		goto out;
	}
	n = w->n_hashes;
	a->n_hashes = (unsigned)n;
	for (i = 0; i < n; i++) {
		if (w->hashes[i].len != hlen) {
			rc = sam_refuse(a, RSSP_E_INVAL, "digest length mismatch");
			goto out;
		}
	}
	if (w->pss != NULL && ((int)w->sign_algo != RSSP_SIGN_RSA_PSS ||
	    w->pss->base.n_unknown_fields != 0)) {
		rc = sam_refuse(a, RSSP_E_INVAL, "pss parameters out of place");
		goto out;
	}
	audit_hashes(a, w->hashes, n);
	rc = RSSP_E_NOMEM;
	if ((r = calloc(1, sizeof(*r))) == NULL ||
	    (r->hashes = copy_hashes(w->hashes, n, hlen)) == NULL)
		goto out;
	if (w->sad.len > 0) {
		if ((r->sad = malloc(w->sad.len)) == NULL)
			goto out;
		memcpy(r->sad, w->sad.data, w->sad.len);
		r->sad_len = w->sad.len;
	}
	copy_str(r->request_id, sizeof(r->request_id), w->request_id);
	copy_str(r->credential_id, sizeof(r->credential_id), w->credential_id);
	r->hash_algo = w->hash_algo;
	r->sign_algo = w->sign_algo;
	r->pss_salt = w->pss != NULL ? (long)w->pss->salt_length : -1;
	r->hash_len = hlen;
	r->n_hashes = n;
	*reqp = r;
	r = NULL;
	rc = 0;
out:
	rssp__engine__v1__sign_hash_request__free_unpacked(w, NULL);
	sam_sign_req_free(r);
	return rc;
}

void
sam_sign_req_free(struct sam_sign_req *r)
{
	if (r == NULL)
		return;
	free(r->hashes);
	free(r->sad);
	free(r);
}
