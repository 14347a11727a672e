#include "kvmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct kv_entry {
	struct kv_entry *next;
	void *val;
	uint64_t hash;
	size_t keylen;
	unsigned char key[];
};

struct kvmap {
	struct kv_entry **buckets;
	size_t nbuckets; /* power of two */
	size_t count;
};

/* FNV-1a; keys are labels or digests, not chosen to collide by anyone we must resist
 * (SAD ids and digests are random or hashed, labels come from sealed data). */
static uint64_t
kv_hash(const void *key, size_t len)
{
	const unsigned char *p = key;
	uint64_t h = 1469598103934665603ULL;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= p[i];
		h *= 1099511628211ULL;
	}
	return h;
}

struct kvmap *
kvmap_new(void)
{
	struct kvmap *m;

	if ((m = calloc(1, sizeof(*m))) == NULL)
		return NULL;
	m->nbuckets = 64;
	if ((m->buckets = calloc(m->nbuckets, sizeof(*m->buckets))) == NULL) {
		free(m);
		return NULL;
	}
	return m;
}

void
kvmap_free(struct kvmap *m, kvmap_free_fn fn)
{
	size_t i;
	struct kv_entry *e, *next;

	if (m == NULL)
		return;
	for (i = 0; i < m->nbuckets; i++) {
		for (e = m->buckets[i]; e != NULL; e = next) {
			next = e->next;
			if (fn != NULL)
				fn(e->val);
			free(e);
		}
	}
	free(m->buckets);
	free(m);
}

static struct kv_entry **
kv_find(const struct kvmap *m, const void *key, size_t keylen, uint64_t h)
{
	struct kv_entry **pp;

	for (pp = &m->buckets[h & (m->nbuckets - 1)]; *pp != NULL; pp = &(*pp)->next) {
		if ((*pp)->hash == h && (*pp)->keylen == keylen &&
		    memcmp((*pp)->key, key, keylen) == 0)
			return pp;
	}
	return pp;
}

void *
kvmap_get(const struct kvmap *m, const void *key, size_t keylen)
{
	struct kv_entry **pp = kv_find(m, key, keylen, kv_hash(key, keylen));

	return *pp != NULL ? (*pp)->val : NULL;
}

static void
kv_grow(struct kvmap *m)
{
	size_t n = m->nbuckets * 2, i;
	struct kv_entry **nb, *e, *next;

	if ((nb = calloc(n, sizeof(*nb))) == NULL)
		return; /* keep the longer chains; still correct */
	for (i = 0; i < m->nbuckets; i++) {
		for (e = m->buckets[i]; e != NULL; e = next) {
			next = e->next;
			e->next = nb[e->hash & (n - 1)];
			nb[e->hash & (n - 1)] = e;
		}
	}
	free(m->buckets);
	m->buckets = nb;
	m->nbuckets = n;
}

int
kvmap_put(struct kvmap *m, const void *key, size_t keylen, void *val)
{
	uint64_t h = kv_hash(key, keylen);
	struct kv_entry **pp = kv_find(m, key, keylen, h), *e;

	if (*pp != NULL)
		return RSSP_E_CONFLICT;
	if ((e = malloc(sizeof(*e) + keylen)) == NULL)
		return RSSP_E_NOMEM;
	e->next = NULL;
	e->val = val;
	e->hash = h;
	e->keylen = keylen;
	memcpy(e->key, key, keylen);
	*pp = e;
	m->count++;
	if (m->count > m->nbuckets)
		kv_grow(m);
	return 0;
}

void *
kvmap_del(struct kvmap *m, const void *key, size_t keylen)
{
	struct kv_entry **pp = kv_find(m, key, keylen, kv_hash(key, keylen)), *e;
	void *val;

	if ((e = *pp) == NULL)
		return NULL;
	*pp = e->next;
	val = e->val;
	free(e);
	m->count--;
	return val;
}

void
kvmap_purge(struct kvmap *m, kvmap_pred_fn pred, void *arg, kvmap_free_fn fn)
{
	size_t i;
	struct kv_entry **pp, *e;

	for (i = 0; i < m->nbuckets; i++) {
		pp = &m->buckets[i];
		while ((e = *pp) != NULL) {
			if (pred(arg, e->key, e->keylen, e->val)) {
				*pp = e->next;
				if (fn != NULL)
					fn(e->val);
				free(e);
				m->count--;
			} else {
				pp = &e->next;
			}
		}
	}
}

size_t
kvmap_count(const struct kvmap *m)
{
	return m->count;
}
