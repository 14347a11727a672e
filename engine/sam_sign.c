/* sam_sign.c - the SignHash handler (sam_handlers.h): finds and checks the SAD (its
 * seal in the HSM the first time, its credential, hash algorithm, expiry, hashes and
 * count), signs each digest with the credential key in the token, and verifies every
 * signature with the key of the credential's certificate before it leaves the engine. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <rssp/engine/v1/engine.pb-c.h>

#include "algo.h"
#include "buf.h"
#include "hsm.h"
#include "kvmap.h"
#include "rssp_log.h"
#include "sad.h"
#include "sam_handlers.h"

#define PUB_CACHE_MAX 20000 /* parsed credential keys; refilled from the token on a miss */

struct pub_entry {
	EVP_PKEY *pkey;
};

/* Verification contexts set up for one key and one algorithm, kept for reuse: a context
 * serves one call at a time (taken out of the list while in use). */
#define VCTX_PER_KEY 4
#define VCTX_CACHE_MAX 4096
struct vctx_entry {
	EVP_PKEY *pkey;            /* the key the contexts were made for (each holds a ref) */
	EVP_PKEY_CTX *ctx[VCTX_PER_KEY];
	unsigned n;
};


void
sam_pub_entry_free(void *v)
{
	struct pub_entry *e = v;

	if (e == NULL)
		return;
	EVP_PKEY_free(e->pkey);
	free(e);
}

void
sam_vctx_entry_free(void *v)
{
	struct vctx_entry *e = v;
	unsigned i;

	if (e == NULL)
		return;
	for (i = 0; i < e->n; i++)
		EVP_PKEY_CTX_free(e->ctx[i]);
	EVP_PKEY_free(e->pkey);
	free(e);
}

static const EVP_MD *
hash_md(int hash_algo)
{
	switch (hash_algo) {
	case RSSP_HASH_SHA256: return EVP_sha256();
	case RSSP_HASH_SHA384: return EVP_sha384();
	default: return EVP_sha512();
	}
}

/* DigestInfo for PKCS#1 v1.5: prefix || digest into buf (>= 19 + 64 bytes). */
static size_t
digest_info(int hash_algo, const uint8_t *dg, size_t len, uint8_t *buf)
{
	const struct rssp_hash_alg *h = rssp_hash_alg(hash_algo);

	memcpy(buf, h->digest_info, h->digest_info_len);
	memcpy(buf + h->digest_info_len, dg, len);
	return h->digest_info_len + len;
}

/* The credential's public key (from its certificate in the token), cached by label. */
static int
credential_key(struct sam *s, struct hsm_session *ss, const char *label, EVP_PKEY **pkeyp)
{
	struct pub_entry *e;
	EVP_PKEY *pkey = NULL;
	uint8_t *der = NULL;
	size_t derlen = 0;
	const unsigned char *p;
	X509 *x = NULL;
	int r;

	pthread_mutex_lock(&s->lock);
	if ((e = kvmap_get(s->pubs, label, strlen(label))) != NULL) {
		pkey = e->pkey;
		EVP_PKEY_up_ref(pkey);
	}
	pthread_mutex_unlock(&s->lock);
	if (pkey != NULL) {
		*pkeyp = pkey;
		return 0;
	}
	if ((r = hsm_read_certificate(s->hsm, ss, label, &der, &derlen)) != 0)
		goto out;
	p = der;
	if ((x = d2i_X509(NULL, &p, (long)derlen)) == NULL ||
	    (pkey = X509_get_pubkey(x)) == NULL) {
		r = RSSP_E_CRYPTO;
		goto out;
	}
	if ((e = calloc(1, sizeof(*e))) != NULL) {
		e->pkey = pkey;
		EVP_PKEY_up_ref(pkey);
		pthread_mutex_lock(&s->lock);
		if (kvmap_count(s->pubs) >= PUB_CACHE_MAX)
			kvmap_purge(s->pubs, sam_purge_any, NULL, sam_pub_entry_free);
		if (kvmap_put(s->pubs, label, strlen(label), e) == 0)
			e = NULL;
		pthread_mutex_unlock(&s->lock);
		sam_pub_entry_free(e);
	}
	*pkeyp = pkey;
	pkey = NULL;
	r = 0;
out:
	EVP_PKEY_free(pkey);
	X509_free(x);
	free(der);
	return r;
}

/* Prepares a verification context for sign_algo/hash_algo with the credential key. */
static EVP_PKEY_CTX *
verify_ctx(EVP_PKEY *pkey, int sign_algo, int hash_algo)
{
	EVP_PKEY_CTX *ctx;
	const EVP_MD *md = hash_md(hash_algo);

	if ((ctx = EVP_PKEY_CTX_new(pkey, NULL)) == NULL)
		return NULL;
	if (EVP_PKEY_verify_init(ctx) != 1 || EVP_PKEY_CTX_set_signature_md(ctx, md) != 1)
		goto fail;
	if (sign_algo == RSSP_SIGN_RSA_PKCS1 && EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) != 1)
		goto fail;
	if (sign_algo == RSSP_SIGN_RSA_PSS &&
	    (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) != 1 ||
	    EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md) != 1 ||
	    EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, RSA_PSS_SALTLEN_DIGEST) != 1))
		goto fail;
	return ctx;
fail:
	EVP_PKEY_CTX_free(ctx);
	return NULL;
}

static size_t
vctx_key(char *buf, const char *label, int sign_algo, int hash_algo)
{
	size_t n = strlen(label);

	memcpy(buf, label, n);
	buf[n] = '\0';
	buf[n + 1] = (char)sign_algo;
	buf[n + 2] = (char)hash_algo;
	return n + 3;
}

/* A verification context for pkey (the key of label) and the algorithm: a cached one
 * when there is one for this very key, else a new one. Give it back with vctx_put. */
static EVP_PKEY_CTX *
vctx_get(struct sam *s, const char *label, EVP_PKEY *pkey, int sign_algo, int hash_algo)
{
	char key[RSSP_MAX_ID_LEN + 3];
	size_t klen = vctx_key(key, label, sign_algo, hash_algo);
	struct vctx_entry *e;
	EVP_PKEY_CTX *ctx = NULL;

	pthread_mutex_lock(&s->lock);
	if ((e = kvmap_get(s->vctxs, key, klen)) != NULL && e->pkey == pkey && e->n > 0)
		ctx = e->ctx[--e->n];
	pthread_mutex_unlock(&s->lock);
	return ctx != NULL ? ctx : verify_ctx(pkey, sign_algo, hash_algo);
}

/* Keeps ctx (made by vctx_get for pkey) for the next call, or frees it. */
static void
vctx_put(struct sam *s, const char *label, EVP_PKEY *pkey, int sign_algo, int hash_algo,
    EVP_PKEY_CTX *ctx)
{
	char key[RSSP_MAX_ID_LEN + 3];
	size_t klen = vctx_key(key, label, sign_algo, hash_algo);
	struct vctx_entry *e, *ne = NULL, *old = NULL;

	if (ctx == NULL)
		return;
	pthread_mutex_lock(&s->lock);
	e = kvmap_get(s->vctxs, key, klen);
	if (e != NULL && e->pkey != pkey) {
		/* the key was read again from the token since: start over with this one */
		old = kvmap_del(s->vctxs, key, klen);
		e = NULL;
	}
	if (e == NULL) {
		if (kvmap_count(s->vctxs) >= VCTX_CACHE_MAX)
			kvmap_purge(s->vctxs, sam_purge_any, NULL, sam_vctx_entry_free);
		if ((ne = calloc(1, sizeof(*ne))) != NULL) {
			ne->pkey = pkey;
			EVP_PKEY_up_ref(pkey);
			if (kvmap_put(s->vctxs, key, klen, ne) == 0) {
				e = ne;
				ne = NULL;
			}
		}
	}
	if (e != NULL && e->n < VCTX_PER_KEY) {
		e->ctx[e->n++] = ctx;
		ctx = NULL;
	}
	pthread_mutex_unlock(&s->lock);
	sam_vctx_entry_free(old);
	sam_vctx_entry_free(ne);
	EVP_PKEY_CTX_free(ctx);
}

/* ECDSA r || s (two halves) to a DER ECDSA-Sig-Value; *derp malloc'd by OpenSSL. */
int
sam_rs_to_der(const uint8_t *rs, size_t len, uint8_t **derp, size_t *derlenp)
{
	ECDSA_SIG *es = NULL;
	BIGNUM *br = NULL, *bs = NULL;
	unsigned char *der = NULL;
	int n, r = RSSP_E_CRYPTO;

	if (len == 0 || len % 2 != 0)
		return RSSP_E_HSM;
	if ((es = ECDSA_SIG_new()) == NULL ||
	    (br = BN_bin2bn(rs, (int)(len / 2), NULL)) == NULL ||
	    (bs = BN_bin2bn(rs + len / 2, (int)(len / 2), NULL)) == NULL ||
	    !ECDSA_SIG_set0(es, br, bs))
		goto out;
	br = bs = NULL;
	if ((n = i2d_ECDSA_SIG(es, &der)) <= 0)
		goto out;
	*derp = der;
	*derlenp = (size_t)n;
	r = 0;
out:
	BN_free(br);
	BN_free(bs);
	ECDSA_SIG_free(es);
	return r;
}

/* Finds the verified SAD for wire bytes, checking its seal in the HSM the first time.
 * On success *idp holds the SAD id. */
static int
sad_lookup(struct sam *s, struct hsm_session *ss, const uint8_t *wire, size_t len,
    uint8_t idp[SAD_ID_LEN], struct sam_audit *a)
{
	struct sad *sad = NULL;
	struct sad_entry *e, *ne = NULL;
	uint8_t mac[SAD_MAC_LEN];
	size_t bodylen = 0, maclen = sizeof(mac);
	int r, hit = 0;

	if (sad_peek_id(wire, len, idp) != 0)
		return sam_refuse(a, RSSP_E_DENIED, "sad malformed");
	/* Seen and verified before: the very same bytes need neither parse nor HSM. */
	pthread_mutex_lock(&s->lock);
	if ((e = kvmap_get(s->sads, idp, SAD_ID_LEN)) != NULL)
		hit = e->wirelen == len && CRYPTO_memcmp(e->wire, wire, len) == 0;
	pthread_mutex_unlock(&s->lock);
	if (hit) {
		rssp_hex(a->sad_id, idp, SAD_ID_LEN);
		return 0;
	}
	if (sad_parse(wire, len, &sad, &bodylen) != 0)
		return sam_refuse(a, RSSP_E_DENIED, "sad malformed");
	rssp_hex(a->sad_id, sad->id, SAD_ID_LEN);
	if ((r = hsm_sign(s->hsm, ss, SAM_MAC_LABEL, HSM_SECRET_KEY, HSM_MECH_HMAC_SHA256, 0,
	    wire, bodylen, mac, &maclen)) != 0) {
		r = sam_refuse(a, RSSP_E_HSM, "hsm failure");
		goto out;
	}
	if (maclen != SAD_MAC_LEN || CRYPTO_memcmp(mac, wire + bodylen, SAD_MAC_LEN) != 0) {
		r = sam_refuse(a, RSSP_E_DENIED, "sad seal invalid");
		goto out;
	}
	if ((ne = calloc(1, sizeof(*ne))) == NULL || (ne->wire = malloc(len)) == NULL) {
		r = RSSP_E_NOMEM;
		goto out;
	}
	memcpy(ne->wire, wire, len);
	ne->wirelen = len;
	ne->sad = sad;
	pthread_mutex_lock(&s->lock);
	ne->used = sam_restored_used(s, sad->id);
	/* Present already: a concurrent first use inserted the same SAD (same id, same
	 * MAC key: same bytes), keep that entry and its count. */
	if (kvmap_put(s->sads, sad->id, SAD_ID_LEN, ne) == 0) {
		sad = NULL;
		ne = NULL;
	}
	pthread_mutex_unlock(&s->lock);
	if (ne != NULL)
		ne->sad = NULL;
	r = 0;
out:
	sam_sad_entry_free(ne);
	sad_free(sad);
	return r;
}

int
sam_sign(struct sam *s, const struct sam_sign_req *req,
    uint8_t **outp, size_t *outlenp, struct sam_audit *a)
{
	Rssp__Engine__V1__SignHashResponse resp = RSSP__ENGINE__V1__SIGN_HASH_RESPONSE__INIT;
	ProtobufCBinaryData *sigs = NULL;
	struct hsm_session *ss = NULL;
	struct sad_entry *e;
	EVP_PKEY *pkey = NULL;
	EVP_PKEY_CTX *vctx = NULL;
	uint8_t sad_id[SAD_ID_LEN], buf[MAX_SIG_LEN], di[128], *out = NULL;
	char label[RSSP_MAX_ID_LEN + 1];
	size_t hlen, i, n = 0, buflen, outlen, salt;
	int r, keytype, reserved = 0, mech, own_vctx = 0;
	int64_t now;

	n = req->n_hashes;
	hlen = req->hash_len;
	ss = hsm_session_get(s->hsm);
	if ((r = sad_lookup(s, ss, req->sad, req->sad_len, sad_id, a)) != 0)
		goto out;

	now = sam_now(s);
	pthread_mutex_lock(&s->lock);
	e = kvmap_get(s->sads, sad_id, SAD_ID_LEN);
	if (e == NULL) {
		r = sam_refuse(a, RSSP_E_EXPIRED, "sad expired"); /* purged since sad_lookup */
	} else if (strcmp(e->sad->credential_id, req->credential_id) != 0) {
		r = sam_refuse(a, RSSP_E_DENIED, "sad of another credential");
	} else if (e->sad->hash_algo != (int)req->hash_algo) {
		r = sam_refuse(a, RSSP_E_DENIED, "hash algorithm differs from sad");
	} else if (now >= e->sad->expires_at) {
		r = sam_refuse(a, RSSP_E_EXPIRED, "sad expired");
	} else {
		r = 0;
		for (i = 0; i < n; i++) {
			if (!sad_has_hash(e->sad, req->hashes + i * hlen)) {
				r = sam_refuse(a, RSSP_E_DENIED, "hash not in sad");
				break;
			}
		}
		memcpy(label, e->sad->key_label, sizeof(label));
	}
	pthread_mutex_unlock(&s->lock);
	if (r != 0)
		goto out;
	sam_audit_str(a->key_label, label);

	if ((r = credential_key(s, ss, label, &pkey)) != 0) {
		r = sam_refuse(a, r == RSSP_E_NOTFOUND ? RSSP_E_NOTFOUND : RSSP_E_HSM, "credential key missing");
		goto out;
	}
	keytype = EVP_PKEY_get_base_id(pkey);
	if ((keytype == EVP_PKEY_RSA && (int)req->sign_algo == RSSP_SIGN_ECDSA) ||
	    (keytype == EVP_PKEY_EC && (int)req->sign_algo != RSSP_SIGN_ECDSA) ||
	    (keytype != EVP_PKEY_RSA && keytype != EVP_PKEY_EC)) {
		r = sam_refuse(a, RSSP_E_UNSUPPORTED, "sign algorithm does not fit key");
		goto out;
	}
	if (req->pss_salt < 0 || (size_t)req->pss_salt == hlen) {
		salt = hlen;
		vctx = vctx_get(s, label, pkey, req->sign_algo, req->hash_algo);
	} else {
		/* another salt length: RFC 8017 9.1.1 bounds it by emLen - hLen - 2,
		 * emLen = ceil((modBits - 1) / 8) */
		size_t emlen = ((size_t)EVP_PKEY_get_bits(pkey) - 1 + 7) / 8;
		salt = (size_t)req->pss_salt;
		if (emlen < hlen + 2 || salt > emlen - hlen - 2) {
			r = sam_refuse(a, RSSP_E_INVAL, "pss salt too long for the key");
			goto out;
		}
		own_vctx = 1; /* not cached: the cache holds contexts for the default salt */
		if ((vctx = verify_ctx(pkey, req->sign_algo, req->hash_algo)) != NULL &&
		    EVP_PKEY_CTX_set_rsa_pss_saltlen(vctx, (int)salt) != 1) {
			EVP_PKEY_CTX_free(vctx);
			vctx = NULL;
		}
	}
	if (vctx == NULL) {
		r = sam_refuse(a, RSSP_E_CRYPTO, "verifier setup failed");
		goto out;
	}

	/* Spend the count before signing; the whole call or nothing. */
	pthread_mutex_lock(&s->lock);
	sam_purge_locked(s, now);
	e = kvmap_get(s->sads, sad_id, SAD_ID_LEN);
	if (e == NULL) {
		r = sam_refuse(a, RSSP_E_EXPIRED, "sad expired");
	} else if ((uint64_t)e->used + n > e->sad->num_signatures) {
		r = sam_refuse(a, RSSP_E_EXHAUSTED, "sad exhausted");
	} else {
		e->used += (uint32_t)n;
		reserved = 1;
	}
	pthread_mutex_unlock(&s->lock);
	if (r != 0)
		goto out;

	if ((sigs = calloc(n, sizeof(*sigs))) == NULL) {
		r = RSSP_E_NOMEM;
		goto out;
	}
	mech = (int)req->sign_algo == RSSP_SIGN_RSA_PKCS1 ? HSM_MECH_RSA_PKCS :
	    (int)req->sign_algo == RSSP_SIGN_RSA_PSS ? HSM_MECH_RSA_PSS : HSM_MECH_ECDSA;
	for (i = 0; i < n; i++) {
		const uint8_t *dg = req->hashes + i * hlen, *tbs = dg;
		size_t tbslen = hlen;

		if (mech == HSM_MECH_RSA_PKCS) {
			tbslen = digest_info(req->hash_algo, dg, hlen, di);
			tbs = di;
		}
		buflen = sizeof(buf);
		if ((r = hsm_sign_salt(s->hsm, ss, label, HSM_PRIVATE_KEY, mech, hlen, salt, tbs,
		    tbslen, buf, &buflen)) != 0) {
			r = sam_refuse(a, r == RSSP_E_NOTFOUND ? r : RSSP_E_HSM, "hsm failure");
			goto out;
		}
		if (mech == HSM_MECH_ECDSA) {
			if ((r = sam_rs_to_der(buf, buflen, &sigs[i].data, &sigs[i].len)) != 0) {
				r = sam_refuse(a, r, "hsm failure");
				goto out;
			}
		} else {
			if ((sigs[i].data = OPENSSL_malloc(buflen)) == NULL) {
				r = RSSP_E_NOMEM;
				goto out;
			}
			memcpy(sigs[i].data, buf, buflen);
			sigs[i].len = buflen;
		}
		/* Verify before release: a faulty signature never leaves the engine. */
		if (EVP_PKEY_verify(vctx, sigs[i].data, sigs[i].len, dg, hlen) != 1) {
			ERR_clear_error();
			log_error("signature by %s does not verify", label);
			r = sam_refuse(a, RSSP_E_HSM, "signature verification failed");
			goto out;
		}
	}
	resp.signatures = sigs;
	resp.n_signatures = n;
	outlen = rssp__engine__v1__sign_hash_response__get_packed_size(&resp);
	if ((out = malloc(outlen)) == NULL) {
		r = RSSP_E_NOMEM;
		goto out;
	}
	rssp__engine__v1__sign_hash_response__pack(&resp, out);
	*outp = out;
	*outlenp = outlen;
	out = NULL;
	a->signatures = (unsigned)n;
	reserved = 0;
	r = 0;
out:
	if (reserved) {
		/* Nothing was released: give the count back. */
		pthread_mutex_lock(&s->lock);
		if ((e = kvmap_get(s->sads, sad_id, SAD_ID_LEN)) != NULL && e->used >= n)
			e->used -= (uint32_t)n;
		pthread_mutex_unlock(&s->lock);
	}
	if (sigs != NULL) {
		for (i = 0; i < n; i++)
			OPENSSL_free(sigs[i].data);
		free(sigs);
	}
	hsm_session_put(s->hsm, ss);
	free(out);
	if (r == 0 && !own_vctx) /* a context that served a clean call serves the next one */
		vctx_put(s, label, pkey, req->sign_algo, req->hash_algo, vctx);
	else
		EVP_PKEY_CTX_free(vctx);
	EVP_PKEY_free(pkey);
	return r;
}
