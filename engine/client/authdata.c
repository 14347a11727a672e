#include "authdata.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

struct abuf {
	uint8_t *p;
	size_t len, cap;
	int err;
};

static void
ab_put(struct abuf *b, const void *data, size_t n)
{
	if (b->err)
		return;
	if (b->len + n > b->cap) {
		size_t ncap = b->cap ? b->cap : 256;
		uint8_t *np;
		while (ncap < b->len + n)
			ncap *= 2;
		if ((np = realloc(b->p, ncap)) == NULL) {
			b->err = RSSP_E_NOMEM;
			return;
		}
		b->p = np;
		b->cap = ncap;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
}

static void
ab_hdr(struct abuf *b, int tag, size_t len)
{
	uint8_t h[5];

	h[0] = (uint8_t)tag;
	h[1] = (uint8_t)(len >> 24);
	h[2] = (uint8_t)(len >> 16);
	h[3] = (uint8_t)(len >> 8);
	h[4] = (uint8_t)len;
	ab_put(b, h, sizeof(h));
}

static void
ab_bytes(struct abuf *b, int tag, const uint8_t *v, size_t n)
{
	ab_hdr(b, tag, n);
	ab_put(b, v, n);
}

static void
ab_str(struct abuf *b, int tag, const char *s, size_t maxlen)
{
	size_t n;

	if (s == NULL || (n = strlen(s)) > maxlen) {
		b->err = RSSP_E_INVAL;
		return;
	}
	ab_bytes(b, tag, (const uint8_t *)s, n);
}

static void
ab_int(struct abuf *b, int tag, int64_t v)
{
	uint8_t be[8];
	uint64_t u = (uint64_t)v;
	int i;

	for (i = 7; i >= 0; i--, u >>= 8)
		be[i] = (uint8_t)u;
	ab_bytes(b, tag, be, sizeof(be));
}

static void
ab_kak(struct abuf *b, int tag, const uint8_t *spki, size_t len)
{
	uint8_t md[SHA256_DIGEST_LENGTH];

	if (spki == NULL || len == 0) {
		b->err = RSSP_E_INVAL;
		return;
	}
	SHA256(spki, len, md);
	ab_bytes(b, tag, md, sizeof(md));
}

static void
ab_nonce(struct abuf *b, int tag, const uint8_t *nonce, size_t len)
{
	if (nonce == NULL || len < RSSP_MIN_NONCE_LEN || len > RSSP_MAX_NONCE_LEN) {
		b->err = RSSP_E_INVAL;
		return;
	}
	ab_bytes(b, tag, nonce, len);
}

static void
ab_start(struct abuf *b, int purpose)
{
	uint8_t p = (uint8_t)purpose;

	memset(b, 0, sizeof(*b));
	ab_put(b, RSSP_AUTHDATA_MAGIC, RSSP_AUTHDATA_MAGIC_LEN);
	ab_put(b, &p, 1);
}

static int
ab_finish(struct abuf *b, uint8_t **outp, size_t *outlenp)
{
	if (b->err) {
		free(b->p);
		return b->err;
	}
	*outp = b->p;
	*outlenp = b->len;
	return RSSP_OK;
}

size_t
rssp_hash_algo_len(int hash_algo)
{
	switch (hash_algo) {
	case 1: return 32;
	case 2: return 48;
	case 3: return 64;
	}
	return 0;
}

int
rssp_authdata_activation(const struct rssp_activation_fields *f, uint8_t **outp,
    size_t *outlenp)
{
	struct abuf b;

	if (f->kak_algo < 1 || f->kak_algo > 3 || f->key_algo < 1 || f->key_algo > 4 ||
	    f->validity_days < 1 || f->validity_days > 3650)
		return RSSP_E_INVAL;
	ab_start(&b, RSSP_AUTHDATA_ACTIVATION);
	ab_str(&b, AD_ACT_CREDENTIAL_ID, f->credential_id, RSSP_MAX_ID_LEN);
	ab_str(&b, AD_ACT_OWNER_ID, f->owner_id, RSSP_MAX_ID_LEN);
	ab_str(&b, AD_ACT_DEVICE_UUID, f->device_uuid, RSSP_MAX_ID_LEN);
	ab_kak(&b, AD_ACT_KAK_SHA256, f->kak_spki, f->kak_spki_len);
	ab_int(&b, AD_ACT_KAK_ALGO, f->kak_algo);
	ab_int(&b, AD_ACT_KEY_ALGO, f->key_algo);
	ab_str(&b, AD_ACT_SUBJECT_CN, f->subject_cn, RSSP_MAX_TEXT_LEN);
	ab_int(&b, AD_ACT_VALIDITY_DAYS, f->validity_days);
	ab_nonce(&b, AD_ACT_NONCE, f->nonce, f->nonce_len);
	ab_int(&b, AD_ACT_EXPIRES_AT, f->expires_at);
	return ab_finish(&b, outp, outlenp);
}

int
rssp_authdata_approval(const struct rssp_approval_fields *f, uint8_t **outp,
    size_t *outlenp)
{
	struct abuf b;
	uint8_t cnt[4];
	size_t i, hl = rssp_hash_algo_len(f->hash_algo);

	if (hl == 0 || hl != f->hash_len || f->n_hashes < 1 || f->n_hashes > RSSP_MAX_HASHES ||
	    f->hashes == NULL || f->num_signatures < 1)
		return RSSP_E_INVAL;
	for (i = 0; i < f->n_hashes; i++)
		if (f->hashes[i] == NULL)
			return RSSP_E_INVAL;
	ab_start(&b, RSSP_AUTHDATA_APPROVAL);
	ab_str(&b, AD_APP_APPROVAL_ID, f->approval_id, RSSP_MAX_ID_LEN);
	ab_str(&b, AD_APP_CREDENTIAL_ID, f->credential_id, RSSP_MAX_ID_LEN);
	ab_str(&b, AD_APP_OWNER_ID, f->owner_id, RSSP_MAX_ID_LEN);
	ab_str(&b, AD_APP_DEVICE_UUID, f->device_uuid, RSSP_MAX_ID_LEN);
	ab_kak(&b, AD_APP_KAK_SHA256, f->kak_spki, f->kak_spki_len);
	ab_int(&b, AD_APP_HASH_ALGO, f->hash_algo);
	ab_hdr(&b, AD_APP_HASHES, 4 + f->n_hashes * hl);
	cnt[0] = (uint8_t)(f->n_hashes >> 24);
	cnt[1] = (uint8_t)(f->n_hashes >> 16);
	cnt[2] = (uint8_t)(f->n_hashes >> 8);
	cnt[3] = (uint8_t)f->n_hashes;
	ab_put(&b, cnt, 4);
	for (i = 0; i < f->n_hashes; i++)
		ab_put(&b, f->hashes[i], hl);
	ab_int(&b, AD_APP_NUM_SIGNATURES, f->num_signatures);
	ab_str(&b, AD_APP_RP_NAME, f->rp_name, RSSP_MAX_TEXT_LEN);
	ab_str(&b, AD_APP_DESCRIPTION, f->description, RSSP_MAX_TEXT_LEN);
	ab_nonce(&b, AD_APP_NONCE, f->nonce, f->nonce_len);
	ab_int(&b, AD_APP_EXPIRES_AT, f->expires_at);
	return ab_finish(&b, outp, outlenp);
}

int
rssp_authdata_walk(const uint8_t *buf, size_t len, int *purposep,
    rssp_authdata_field_cb cb, void *arg)
{
	size_t off;
	int last = 0, r;

	if (buf == NULL || len < RSSP_AUTHDATA_MAGIC_LEN + 1 ||
	    memcmp(buf, RSSP_AUTHDATA_MAGIC, RSSP_AUTHDATA_MAGIC_LEN) != 0)
		return RSSP_E_INVAL;
	if (buf[RSSP_AUTHDATA_MAGIC_LEN] != RSSP_AUTHDATA_ACTIVATION &&
	    buf[RSSP_AUTHDATA_MAGIC_LEN] != RSSP_AUTHDATA_APPROVAL)
		return RSSP_E_INVAL;
	*purposep = buf[RSSP_AUTHDATA_MAGIC_LEN];
	for (off = RSSP_AUTHDATA_MAGIC_LEN + 1; off < len;) {
		size_t flen;
		int tag;

		if (len - off < 5)
			return RSSP_E_INVAL;
		tag = buf[off];
		flen = ((size_t)buf[off + 1] << 24) | ((size_t)buf[off + 2] << 16) |
		    ((size_t)buf[off + 3] << 8) | buf[off + 4];
		off += 5;
		if (tag <= last || flen > len - off)
			return RSSP_E_INVAL;
		last = tag;
		if (cb != NULL && (r = cb(arg, tag, buf + off, flen)) != 0)
			return r;
		off += flen;
	}
	return RSSP_OK;
}
