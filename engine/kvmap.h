/* kvmap.h - a small chained hash map keyed by byte strings, for the engine's caches
 * (key handles by label, public keys, SADs, approval replay). Not thread-safe: the
 * owner holds its own lock around every call. Keys are copied; values are owned by
 * the caller unless a free function is passed to kvmap_free / kvmap_purge / kvmap_del. */
#ifndef RSSP_KVMAP_H
#define RSSP_KVMAP_H

#include <stddef.h>

#include "rssp_err.h"

struct kvmap;
typedef void (*kvmap_free_fn)(void *val);
/* Returns non-zero when the entry (key, val) must be removed. */
typedef int (*kvmap_pred_fn)(void *arg, const void *key, size_t keylen, void *val);

/* Returns a new empty map or NULL when out of memory. */
struct kvmap *kvmap_new(void);
/* Frees the map; calls fn on every value when fn is not NULL. Accepts NULL. */
void kvmap_free(struct kvmap *m, kvmap_free_fn fn);
/* The value stored under key, or NULL. */
void *kvmap_get(const struct kvmap *m, const void *key, size_t keylen);
/* Stores val (not NULL) under key. Returns 0, RSSP_E_CONFLICT when the key is present
 * (nothing changes), or RSSP_E_NOMEM. */
int kvmap_put(struct kvmap *m, const void *key, size_t keylen, void *val) RSSP_WUR;
/* Removes key; returns its value (not freed) or NULL. */
void *kvmap_del(struct kvmap *m, const void *key, size_t keylen);
/* Removes every entry for which pred returns non-zero, calling fn on its value. */
void kvmap_purge(struct kvmap *m, kvmap_pred_fn pred, void *arg, kvmap_free_fn fn);
size_t kvmap_count(const struct kvmap *m);

#endif
