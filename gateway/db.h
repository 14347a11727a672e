/* db.h - the libpq connection pool and the migration runner. */
#ifndef RSSP_GW_DB_H
#define RSSP_GW_DB_H

#include <libpq-fe.h>

#include "rssp_err.h"

struct gw_db_pool;

/* 1 (default): parameterised queries are prepared once per connection (RSSP_DB_PREPARE). */
extern int gw_db_prepare_enabled;

/* Opens one connection (checked). Returns 0 or RSSP_E_UNAVAILABLE; on success *cp is
 * owned by the caller (PQfinish). */
int gw_db_connect(const char *url, PGconn **cp) RSSP_WUR;

/* A pool of at most size connections to url, opened lazily. Returns 0 or RSSP_E_NOMEM;
 * on success *pp is owned by the caller, free with gw_db_pool_free() once no
 * connection is out. */
int gw_db_pool_new(const char *url, unsigned size, struct gw_db_pool **pp) RSSP_WUR;
void gw_db_pool_free(struct gw_db_pool *p);
/* Borrows a connection, waiting up to timeout_ms for one to be free. Returns 0 or
 * RSSP_E_UNAVAILABLE (none free in time, or the server is unreachable). */
int gw_db_pool_get(struct gw_db_pool *p, unsigned timeout_ms, PGconn **cp) RSSP_WUR;
/* Gives a connection back; an open transaction is rolled back, a broken connection
 * dropped. */
void gw_db_pool_put(struct gw_db_pool *p, PGconn *c);
/* Connections currently borrowed, and the pool's size. */
unsigned gw_db_pool_in_use(struct gw_db_pool *p);
unsigned gw_db_pool_size(struct gw_db_pool *p);

/* Applies schema_dir/NNN_*.sql in order, each in its own transaction under a
 * PostgreSQL advisory lock, recorded in schema_migrations (name, sha256, applied_at).
 * Several processes may run it at once: each migration is applied exactly once.
 * Returns 0 (and *appliedp = how many this call applied, when not NULL) or RSSP_E_IO
 * (directory unreadable) / RSSP_E_DB (a migration failed; nothing of it is kept). */
int gw_db_migrate(PGconn *c, const char *schema_dir, int *appliedp) RSSP_WUR;

#endif
