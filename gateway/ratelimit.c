/* ratelimit.c - exact token buckets per key with bounded memory (ratelimit.h). */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "ratelimit.h"

struct entry {
	struct entry *next;
	double tokens;
	double last;
	size_t keylen;
	char key[];            /* keylen bytes + NUL */
};

struct gw_ratelimit {
	pthread_mutex_t mu;
	double rate, burst;
	size_t max_keys, count, nslots;
	struct entry **slots;
	double last_sweep;
	/* keyed hash: an attacker cannot aim many keys at one chain */
	unsigned char hkey[crypto_shorthash_KEYBYTES];
};

int
gw_ratelimit_new(double rate, double burst, size_t max_keys, struct gw_ratelimit **rlp)
{
	struct gw_ratelimit *rl;
	size_t n = 64;

	if (!(rate > 0) || !(burst >= 1) || max_keys == 0)
		return RSSP_E_INVAL;
	if (sodium_init() < 0)
		return RSSP_E_INVAL;
	if ((rl = calloc(1, sizeof(*rl))) == NULL)
		return RSSP_E_NOMEM;
	while (n < max_keys && n < ((size_t)1 << 24))
		n <<= 1;
	if ((rl->slots = calloc(n, sizeof(*rl->slots))) == NULL) {
		free(rl);
		return RSSP_E_NOMEM;
	}
	pthread_mutex_init(&rl->mu, NULL);
	rl->rate = rate;
	rl->burst = burst;
	rl->max_keys = max_keys;
	rl->nslots = n;
	rl->last_sweep = -1e9;
	randombytes_buf(rl->hkey, sizeof(rl->hkey));
	*rlp = rl;
	return 0;
}

void
gw_ratelimit_free(struct gw_ratelimit *rl)
{
	size_t i;
	struct entry *e, *next;

	if (rl == NULL)
		return;
	for (i = 0; i < rl->nslots; i++)
		for (e = rl->slots[i]; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
	free(rl->slots);
	pthread_mutex_destroy(&rl->mu);
	free(rl);
}

static double
refilled(const struct gw_ratelimit *rl, const struct entry *e, double now)
{
	double t = e->tokens + (now - e->last) * rl->rate;

	return t > rl->burst ? rl->burst : t;
}

/* Drops every bucket that is full again (the same as no bucket). Under mu. */
static void
sweep(struct gw_ratelimit *rl, double now)
{
	size_t i;
	struct entry **pp, *e;

	rl->last_sweep = now;
	for (i = 0; i < rl->nslots; i++) {
		pp = &rl->slots[i];
		while ((e = *pp) != NULL) {
			if (refilled(rl, e, now) >= rl->burst) {
				*pp = e->next;
				free(e);
				rl->count--;
			} else {
				pp = &e->next;
			}
		}
	}
}

int
gw_ratelimit_take(struct gw_ratelimit *rl, const char *key, double now, unsigned *waitp)
{
	unsigned char h[crypto_shorthash_BYTES];
	uint64_t hv;
	size_t klen = strnlen(key, GW_RATELIMIT_KEY_MAX), slot;
	struct entry *e;
	int r = 0;

	crypto_shorthash(h, (const unsigned char *)key, klen, rl->hkey);
	memcpy(&hv, h, sizeof(hv));
	slot = (size_t)(hv & (rl->nslots - 1));
	pthread_mutex_lock(&rl->mu);
	for (e = rl->slots[slot]; e != NULL; e = e->next)
		if (e->keylen == klen && memcmp(e->key, key, klen) == 0)
			break;
	if (e == NULL) {
		/* at most one full sweep a second: a table full of live buckets must not turn
		 * every new key into a scan */
		if (rl->count >= rl->max_keys && now - rl->last_sweep >= 1.0)
			sweep(rl, now);
		if (rl->count >= rl->max_keys) {
			*waitp = 1;
			r = RSSP_E_TOOBIG;
			goto out;
		}
		if ((e = malloc(sizeof(*e) + klen + 1)) == NULL) {
			*waitp = 1;
			r = RSSP_E_TOOBIG;
			goto out;
		}
		memcpy(e->key, key, klen);
		e->key[klen] = '\0';
		e->keylen = klen;
		e->tokens = rl->burst;
		e->last = now;
		e->next = rl->slots[slot];
		rl->slots[slot] = e;
		rl->count++;
	}
	e->tokens = refilled(rl, e, now);
	e->last = now;
	if (e->tokens >= 1.0) {
		e->tokens -= 1.0;
	} else {
		double w = ceil((1.0 - e->tokens) / rl->rate);
		*waitp = w < 1 ? 1 : (unsigned)w;
		r = RSSP_E_EXHAUSTED;
	}
out:
	pthread_mutex_unlock(&rl->mu);
	return r;
}

size_t
gw_ratelimit_count(struct gw_ratelimit *rl)
{
	size_t n;

	pthread_mutex_lock(&rl->mu);
	n = rl->count;
	pthread_mutex_unlock(&rl->mu);
	return n;
}
