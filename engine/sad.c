#include "sad.h"

#include <stdlib.h>
#include <string.h>

#define SAD_MAGIC "rssp-sad-v1"
#define SAD_MAGIC_LEN 11

static int
cmp_digest(const void *a, const void *b, void *len)
{
	return memcmp(a, b, *(size_t *)len);
}

static void
sort_hashes(uint8_t *h, size_t n, size_t len)
{
	qsort_r(h, n, len, cmp_digest, &len);
}

int
sad_encode_body(struct sad *s, uint8_t **bodyp, size_t *bodylenp)
{
	size_t cl = strlen(s->credential_id), kl = strlen(s->key_label), n, off = 0;
	uint64_t e = (uint64_t)s->expires_at;
	uint8_t *b;
	int i;

	if (cl == 0 || cl > RSSP_MAX_ID_LEN || kl == 0 || kl > RSSP_MAX_ID_LEN ||
	    s->n_hashes == 0 || s->n_hashes > RSSP_MAX_HASHES ||
	    s->hash_len != rssp_hash_algo_len(s->hash_algo) || s->hash_len == 0)
		return RSSP_E_INVAL;
	sort_hashes(s->hashes, s->n_hashes, s->hash_len);
	n = SAD_MAGIC_LEN + SAD_ID_LEN + 8 + 1 + 4 + 1 + cl + 1 + kl + 2 +
	    s->n_hashes * s->hash_len;
	if ((b = malloc(n + SAD_MAC_LEN)) == NULL)
		return RSSP_E_NOMEM;
	memcpy(b, SAD_MAGIC, SAD_MAGIC_LEN);
	off = SAD_MAGIC_LEN;
	memcpy(b + off, s->id, SAD_ID_LEN);
	off += SAD_ID_LEN;
	for (i = 7; i >= 0; i--)
		b[off++] = (uint8_t)(e >> (8 * i));
	b[off++] = (uint8_t)s->hash_algo;
	for (i = 3; i >= 0; i--)
		b[off++] = (uint8_t)(s->num_signatures >> (8 * i));
	b[off++] = (uint8_t)cl;
	memcpy(b + off, s->credential_id, cl);
	off += cl;
	b[off++] = (uint8_t)kl;
	memcpy(b + off, s->key_label, kl);
	off += kl;
	b[off++] = (uint8_t)(s->n_hashes >> 8);
	b[off++] = (uint8_t)s->n_hashes;
	memcpy(b + off, s->hashes, s->n_hashes * s->hash_len);
	off += s->n_hashes * s->hash_len;
	*bodyp = b;
	*bodylenp = off;
	return 0;
}

int
sad_parse(const uint8_t *buf, size_t len, struct sad **sp, size_t *bodylenp)
{
	struct sad *s = NULL;
	size_t off = 0, l, i;
	uint64_t e = 0;
	int r = RSSP_E_INVAL;

#define NEED(k) do { if (len - off < (k)) goto out; } while (0)
	if (len < SAD_MAC_LEN)
		goto out;
	len -= SAD_MAC_LEN; /* what follows the body is the MAC */
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		r = RSSP_E_NOMEM;
		goto out;
	}
	NEED(SAD_MAGIC_LEN + SAD_ID_LEN + 8 + 1 + 4 + 1);
	if (memcmp(buf, SAD_MAGIC, SAD_MAGIC_LEN) != 0)
		goto out;
	off = SAD_MAGIC_LEN;
	memcpy(s->id, buf + off, SAD_ID_LEN);
	off += SAD_ID_LEN;
	for (i = 0; i < 8; i++)
		e = (e << 8) | buf[off++];
	s->expires_at = (int64_t)e;
	s->hash_algo = buf[off++];
	if ((s->hash_len = rssp_hash_algo_len(s->hash_algo)) == 0)
		goto out;
	for (i = 0; i < 4; i++)
		s->num_signatures = (s->num_signatures << 8) | buf[off++];
	l = buf[off++];
	if (l == 0 || l > RSSP_MAX_ID_LEN)
		goto out;
	NEED(l + 1);
	memcpy(s->credential_id, buf + off, l);
	off += l;
	l = buf[off++];
	if (l == 0 || l > RSSP_MAX_ID_LEN)
		goto out;
	NEED(l + 2);
	memcpy(s->key_label, buf + off, l);
	off += l;
	s->n_hashes = ((size_t)buf[off] << 8) | buf[off + 1];
	off += 2;
	if (s->n_hashes == 0 || s->n_hashes > RSSP_MAX_HASHES ||
	    strlen(s->credential_id) == 0 || strlen(s->key_label) == 0)
		goto out;
	l = s->n_hashes * s->hash_len;
	if (len - off != l)
		goto out;
	if ((s->hashes = malloc(l)) == NULL) {
		r = RSSP_E_NOMEM;
		goto out;
	}
	memcpy(s->hashes, buf + off, l);
	for (i = 1; i < s->n_hashes; i++) {
		if (memcmp(s->hashes + (i - 1) * s->hash_len, s->hashes + i * s->hash_len,
		    s->hash_len) > 0)
			goto out;
	}
	*sp = s;
	s = NULL;
	*bodylenp = len;
	r = 0;
#undef NEED
out:
	sad_free(s);
	return r;
}

int
sad_peek_id(const uint8_t *buf, size_t len, uint8_t id[SAD_ID_LEN])
{
	if (len < SAD_MAGIC_LEN + SAD_ID_LEN + SAD_MAC_LEN || memcmp(buf, SAD_MAGIC, SAD_MAGIC_LEN) != 0)
		return RSSP_E_INVAL;
	memcpy(id, buf + SAD_MAGIC_LEN, SAD_ID_LEN);
	return 0;
}

int
sad_has_hash(const struct sad *s, const uint8_t *digest)
{
	size_t lo = 0, hi = s->n_hashes, mid;
	int c;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		c = memcmp(s->hashes + mid * s->hash_len, digest, s->hash_len);
		if (c == 0)
			return 1;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

void
sad_free(struct sad *s)
{
	if (s == NULL)
		return;
	free(s->hashes);
	free(s);
}
