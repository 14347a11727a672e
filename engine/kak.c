#include "kak.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

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

static int
kak_check(EVP_PKEY *pkey, int algo)
{
	char group[32];
	size_t glen = 0;
	int bits;

	switch (algo) {
	case KAK_PSS_SHA256:
	case KAK_PSS_SHA512:
		if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA)
			return RSSP_E_INVAL;
		bits = EVP_PKEY_get_bits(pkey);
		return bits >= 2048 && bits <= 8192 ? 0 : RSSP_E_INVAL;
	case KAK_ECDSA_P256:
		if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_EC ||
		    !EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME,
		    group, sizeof(group), &glen) ||
		    strcmp(group, "prime256v1") != 0)
			return RSSP_E_INVAL;
		return 0;
	default:
		return RSSP_E_UNSUPPORTED;
	}
}

int
kak_parse(struct kak_cache *c, const uint8_t *spki, size_t spkilen, int algo,
    EVP_PKEY **pkeyp, uint8_t kak_sha256[32])
{
	uint8_t key[33];
	const unsigned char *p = spki;
	EVP_PKEY *pkey = NULL;
	int r;

	if (algo != KAK_PSS_SHA256 && algo != KAK_PSS_SHA512 && algo != KAK_ECDSA_P256)
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
		if ((pkey = d2i_PUBKEY(NULL, &p, (long)spkilen)) == NULL || p != spki + spkilen) {
			r = RSSP_E_INVAL;
			goto out;
		}
		if ((r = kak_check(pkey, algo)) != 0)
			goto out;
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
