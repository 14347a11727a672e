/* db.h - the database: parameterised queries and transactions for handlers, the libpq
 * connection pool and the migration runner (db.c). */
#ifndef RSSP_GW_DB_H
#define RSSP_GW_DB_H

#include <libpq-fe.h>

#include "rssp_err.h"

struct gw_db_pool;
struct gw_request;

/* ---- database ------------------------------------------------------------------------
 * Parameterised queries only: parameters are text (NULL = SQL NULL), results text. */

/* Runs sql with n params. Returns 0 and *resp (free with PQclear) when the result is
 * PGRES_COMMAND_OK or PGRES_TUPLES_OK; RSSP_E_CONFLICT on a unique violation (SQLSTATE
 * 23505); RSSP_E_UNAVAILABLE when the connection is broken; RSSP_E_DB otherwise. The
 * server's error is logged, never sent to a client. resp may be NULL when the result
 * is not needed. */
int gw_db_exec(PGconn *db, PGresult **resp, const char *sql, int n, const char *const *params) RSSP_WUR;
/* The same with the n parameters as variadic const char * arguments. */
int gw_db_query(PGconn *db, PGresult **resp, const char *sql, int n, ...) RSSP_WUR;

/* Result columns are read by name (the SQL names them with AS), never by position:
 * gw_val is the text of column name in row i ("" when the query has no such column,
 * so a misspelt name never reads another column), gw_isnull whether it is NULL (1 for
 * a missing column). */
const char *gw_val(const PGresult *res, int i, const char *name);
int gw_isnull(const PGresult *res, int i, const char *name);

/* Transactions on req->db. begin: BEGIN (READ COMMITTED); commit: COMMIT (a failed
 * commit returns RSSP_E_DB, or RSSP_E_CONFLICT on a serialization/unique failure);
 * rollback never fails. Return 0 or RSSP_E*. */
int gw_tx_begin(struct gw_request *req) RSSP_WUR;
int gw_tx_commit(struct gw_request *req) RSSP_WUR;
void gw_tx_rollback(struct gw_request *req);

/* Gives req->db back to the pool before a long wait (e.g. polling with "wait") and
 * takes one again. gw_db_reacquire returns 0 or RSSP_E_UNAVAILABLE. No transaction may
 * be open across a release. */
void gw_db_release(struct gw_request *req);
int gw_db_reacquire(struct gw_request *req) RSSP_WUR;

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
