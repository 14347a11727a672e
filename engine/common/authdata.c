#include "authdata.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "algo.h"
#include "buf.h"

static void
ab_str(struct rssp_buf *b, int tag, const char *s, size_t maxlen)
{
	size_t n;

	if (s == NULL || (n = strlen(s)) > maxlen) {
		b->err = RSSP_E_INVAL;
		return;
	}
	rssp_buf_put_tlv(b, tag, s, n);
}

static void
ab_int(struct rssp_buf *b, int tag, int64_t v)
{
	rssp_buf_put_tlv_hdr(b, tag, 8);
	rssp_buf_put_be(b, (uint64_t)v, 8);
}

static void
ab_kak(struct rssp_buf *b, int tag, const uint8_t *spki, size_t len)
{
	uint8_t md[SHA256_DIGEST_LENGTH];

	if (spki == NULL || len == 0) {
		b->err = RSSP_E_INVAL;
		return;
	}
	SHA256(spki, len, md);
	rssp_buf_put_tlv(b, tag, md, sizeof(md));
}

static void
ab_nonce(struct rssp_buf *b, int tag, const uint8_t *nonce, size_t len)
{
	if (nonce == NULL || len < RSSP_MIN_NONCE_LEN || len > RSSP_MAX_NONCE_LEN) {
		b->err = RSSP_E_INVAL;
		return;
	}
	rssp_buf_put_tlv(b, tag, nonce, len);
}

static void
ab_start(struct rssp_buf *b, int purpose)
{
	memset(b, 0, sizeof(*b));
	rssp_buf_put(b, RSSP_AUTHDATA_MAGIC, RSSP_AUTHDATA_MAGIC_LEN);
	rssp_buf_putc(b, (uint8_t)purpose);
}

size_t
rssp_hash_algo_len(int hash_algo)
{
	const struct rssp_hash_alg *h = rssp_hash_alg(hash_algo);

	return h != NULL ? h->len : 0;
}

int
rssp_authdata_activation(const struct rssp_activation_fields *f, uint8_t **outp,
    size_t *outlenp)
{
	struct rssp_buf b;

	if (rssp_kak_alg(f->kak_algo) == NULL || rssp_key_alg(f->key_algo) == NULL ||
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
	return rssp_buf_take(&b, outp, outlenp);
}

int
rssp_authdata_approval(const struct rssp_approval_fields *f, uint8_t **outp,
    size_t *outlenp)
{
	struct rssp_buf b;
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
	rssp_buf_put_tlv_hdr(&b, AD_APP_HASHES, 4 + f->n_hashes * hl);
	rssp_buf_put_be(&b, f->n_hashes, 4);
	for (i = 0; i < f->n_hashes; i++)
		rssp_buf_put(&b, f->hashes[i], hl);
	ab_int(&b, AD_APP_NUM_SIGNATURES, f->num_signatures);
	ab_str(&b, AD_APP_RP_NAME, f->rp_name, RSSP_MAX_TEXT_LEN);
	ab_str(&b, AD_APP_DESCRIPTION, f->description, RSSP_MAX_TEXT_LEN);
	ab_nonce(&b, AD_APP_NONCE, f->nonce, f->nonce_len);
	ab_int(&b, AD_APP_EXPIRES_AT, f->expires_at);
	return rssp_buf_take(&b, outp, outlenp);
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
		const uint8_t *val;
		size_t flen;
		int tag;

		if (rssp_tlv_next(buf, len, &off, &tag, &val, &flen) != 0 || tag <= last)
			return RSSP_E_INVAL;
		last = tag;
		if (cb != NULL && (r = cb(arg, tag, val, flen)) != 0)
			return r;
	}
	return RSSP_OK;
}
