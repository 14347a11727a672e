/* ratelimit.h - exact token buckets per key (a client address, a normalised login) with
 * bounded memory.
 *
 * Each distinct key has a bucket of its own (keys are compared whole, never by a hash
 * slot, so two keys never share or refill each other's bucket). A bucket that has
 * refilled to its size is the same as no bucket at all, so it may be forgotten without
 * changing any answer: that is how memory stays bounded. When max_keys buckets exist and
 * none of them is full again, a new key is refused (fail closed) rather than an old
 * bucket dropped: an attacker who spreads over many keys slows logins down, but never
 * gets more attempts for a key than the limit allows. Thread-safe. */
#ifndef RSSP_GW_RATELIMIT_H
#define RSSP_GW_RATELIMIT_H

#include <stddef.h>

#include "rssp_err.h"

#define GW_RATELIMIT_KEY_MAX 300 /* longest key kept; longer keys are cut (callers bound theirs) */

struct gw_ratelimit;

/* A limiter of rate tokens per second and buckets of burst tokens (burst >= 1), holding
 * at most max_keys buckets (>= 1). Returns 0 or RSSP_E_INVAL / RSSP_E_NOMEM; on success
 * *rlp is owned by the caller, free with gw_ratelimit_free(). */
int gw_ratelimit_new(double rate, double burst, size_t max_keys, struct gw_ratelimit **rlp) RSSP_WUR;
void gw_ratelimit_free(struct gw_ratelimit *rl);

/* Takes one token from key's bucket at time now (monotonic seconds). Returns 0 when a
 * token was taken; RSSP_E_EXHAUSTED when the bucket is empty, with *waitp the whole
 * seconds until a token is back (>= 1); RSSP_E_TOOBIG when the table is full of buckets
 * still refilling (*waitp = 1). */
int gw_ratelimit_take(struct gw_ratelimit *rl, const char *key, double now, unsigned *waitp) RSSP_WUR;

/* The number of buckets held (for tests and metrics). */
size_t gw_ratelimit_count(struct gw_ratelimit *rl);

#endif
