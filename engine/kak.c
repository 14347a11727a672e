#include "kak.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "kvmap.h"

#define KAK_CACHE_MAX 4096


struct kak_cache {
	pthread_mutex_t lock;
	struct kvmap *map; /* SHA-256(SPKI) || algo -> EVP_PKEY */
};

static void
pkey_free_cb(void *v)
{
	EVP_PKEY_free(v);
}

struct kak_cache *
kak_cache_new(void)
{
	struct kak_cache *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	if ((c->map = kvmap_new()) == NULL) {
		free(c);
		return NULL;
	}
	pthread_mutex_init(&c->lock, NULL);
	return c;
}

void
kak_cache_free(struct kak_cache *c)
{
	if (c == NULL)
		return;
	kvmap_free(c->map, pkey_free_cb);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static int
always(void *arg, const void *key, size_t keylen, void *val)
{
	return 1;
}

int
kak_parse(struct kak_cache *c, const uint8_t *spki, size_t spkilen, int algo,
    EVP_PKEY **pkeyp, uint8_t kak_sha256[32])
{
	uint8_t key[33];
	EVP_PKEY *pkey = NULL;
	int r;

	if (rssp_kak_alg(algo) == NULL)
		return RSSP_E_UNSUPPORTED;
	if (spkilen == 0 || spkilen > KAK_MAX_SPKI)
		return RSSP_E_INVAL;
	SHA256(spki, spkilen, key);
	key[32] = (uint8_t)algo;
	pthread_mutex_lock(&c->lock);
	if ((pkey = kvmap_get(c->map, key, sizeof(key))) != NULL)
		EVP_PKEY_up_ref(pkey);
	pthread_mutex_unlock(&c->lock);
	if (pkey == NULL) {
		/* the engine reports any key that does not fit its algo as invalid */
		if (kak_spki_parse(spki, spkilen, algo, &pkey) != 0) {
			r = RSSP_E_INVAL;
			goto out;
		}
		pthread_mutex_lock(&c->lock);
		if (kvmap_count(c->map) >= KAK_CACHE_MAX)
			kvmap_purge(c->map, always, NULL, pkey_free_cb);
		if (kvmap_put(c->map, key, sizeof(key), pkey) == 0)
			EVP_PKEY_up_ref(pkey); /* the cache holds its own reference */
		pthread_mutex_unlock(&c->lock);
	}
	memcpy(kak_sha256, key, 32);
	*pkeyp = pkey;
	pkey = NULL;
	r = 0;
out:
	EVP_PKEY_free(pkey);
	return r;
}
