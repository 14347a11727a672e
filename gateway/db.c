/* db.c - libpq helpers, the connection pool, transactions, migrations. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-events.h>

#include "db.h"
#include "deadline.h"
#include "dir_list.h"
#include "gw.h"
#include "gw_internal.h"
#include "rssp_log.h"
#include "secrets.h"

#define GW_MAX_PARAMS 32

static void
notice_quiet(void *arg, const char *msg)
{
	(void)arg;
	(void)msg; /* NOTICEs (e.g. "relation exists, skipping") are not diagnostics */
}

/* ---- prepared statements -----------------------------------------------------------
 * Every parameterised query is prepared once per connection (named after a 64-bit hash
 * of its text) and then executed by name: PostgreSQL parses and plans it once. The set
 * of prepared names lives with the connection (libpq instance data) and is dropped when
 * the connection is reset or closed. */

#define STMT_SLOTS 256

struct stmt_set {
	uint64_t h[STMT_SLOTS]; /* 0 = empty; open addressing */
	unsigned n;
	int stale;              /* a prepared plan no longer fits the schema: drop the connection */
};

int gw_db_prepare_enabled = 1;

static int
stmt_event(PGEventId id, void *info, void *pass)
{
	(void)pass;
	if (id == PGEVT_CONNRESET) {
		PGconn *c = ((PGEventConnReset *)info)->conn;
		struct stmt_set *st = PQinstanceData(c, stmt_event);
		if (st != NULL)
			memset(st, 0, sizeof(*st));
	} else if (id == PGEVT_CONNDESTROY) {
		PGconn *c = ((PGEventConnDestroy *)info)->conn;
		free(PQinstanceData(c, stmt_event));
	}
	return 1;
}

static uint64_t
sql_hash(const char *sql)
{
	uint64_t h = 1469598103934665603ull;

	for (; *sql; sql++)
		h = (h ^ (unsigned char)*sql) * 1099511628211ull;
	return h ? h : 1;
}

/* 1 when h is known prepared on this connection; with add, records it. */
static int
stmt_known(struct stmt_set *st, uint64_t h, int add)
{
	unsigned i = (unsigned)(h % STMT_SLOTS), k;

	for (k = 0; k < STMT_SLOTS; k++, i = (i + 1) % STMT_SLOTS) {
		if (st->h[i] == h)
			return 1;
		if (st->h[i] == 0) {
			if (add && st->n < STMT_SLOTS * 3 / 4) {
				st->h[i] = h;
				st->n++;
			}
			return 0;
		}
	}
	return 0;
}

static PGresult *
exec_prepared(PGconn *db, const char *sql, int n, const char *const *params)
{
	struct stmt_set *st = PQinstanceData(db, stmt_event);
	uint64_t h;
	char name[24];
	PGresult *res;

	if (!gw_db_prepare_enabled || n == 0 || st == NULL || PQtransactionStatus(db) == PQTRANS_INERROR)
		return PQexecParams(db, sql, n, NULL, params, NULL, NULL, 0);
	h = sql_hash(sql);
	snprintf(name, sizeof(name), "g%016llx", (unsigned long long)h);
	if (!stmt_known(st, h, 0)) {
		res = PQprepare(db, name, sql, n, NULL);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			/* let the plain path report the error as usual */
			PQclear(res);
			return PQexecParams(db, sql, n, NULL, params, NULL, NULL, 0);
		}
		PQclear(res);
		(void)stmt_known(st, h, 1);
	}
	res = PQexecPrepared(db, name, n, params, NULL, NULL, 0);
	if (PQresultStatus(res) == PGRES_FATAL_ERROR) {
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		/* "cached plan must not change result type" after a migration elsewhere */
		if (state != NULL && strcmp(state, "0A000") == 0) {
			st->stale = 1;
			if (PQtransactionStatus(db) == PQTRANS_IDLE) {
				PQclear(res);
				res = PQexecParams(db, sql, n, NULL, params, NULL, NULL, 0);
			}
		}
	}
	return res;
}

static int
conn_stale(PGconn *c)
{
	struct stmt_set *st = PQinstanceData(c, stmt_event);

	return st != NULL && st->stale;
}

int
gw_db_connect(const char *url, PGconn **cp)
{
	PGconn *c;
	struct stmt_set *st;

	c = PQconnectdb(url);
	if (c == NULL || PQstatus(c) != CONNECTION_OK) {
		log_error("cannot connect to the database: %.200s",
		    c ? PQerrorMessage(c) : "out of memory");
		PQfinish(c);
		return RSSP_E_UNAVAILABLE;
	}
	PQsetNoticeProcessor(c, notice_quiet, NULL);
	if ((st = calloc(1, sizeof(*st))) != NULL) {
		if (PQregisterEventProc(c, stmt_event, "rssp-stmt", NULL) &&
		    PQsetInstanceData(c, stmt_event, st))
			st = NULL; /* owned by the connection */
		free(st);
	}
	*cp = c;
	return 0;
}

int
gw_db_exec(PGconn *db, PGresult **resp, const char *sql, int n, const char *const *params)
{
	PGresult *res;
	ExecStatusType st;
	const char *state;
	int r;

	if (db == NULL)
		return RSSP_E_UNAVAILABLE;
	res = exec_prepared(db, sql, n, params);
	st = PQresultStatus(res);
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
		if (resp != NULL)
			*resp = res;
		else
			PQclear(res);
		return 0;
	}
	state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	if (state != NULL && strcmp(state, "23505") == 0) {
		r = RSSP_E_CONFLICT;
		log_debug("unique violation: %.200s", PQresultErrorMessage(res));
	} else if (PQstatus(db) != CONNECTION_OK) {
		r = RSSP_E_UNAVAILABLE;
		log_error("database connection lost: %.200s", PQerrorMessage(db));
	} else if (state != NULL && (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0)) {
		r = RSSP_E_CONFLICT;
		log_warn("serialization failure: %.200s", PQresultErrorMessage(res));
	} else {
		r = RSSP_E_DB;
		log_error("query failed (%s): %.300s", state ? state : "?",
		    res ? PQresultErrorMessage(res) : PQerrorMessage(db));
	}
	PQclear(res);
	return r;
}

int
gw_db_query(PGconn *db, PGresult **resp, const char *sql, int n, ...)
{
	const char *params[GW_MAX_PARAMS];
	va_list ap;
	int i;

	if (n < 0 || n > GW_MAX_PARAMS)
		return RSSP_E_INVAL;
	va_start(ap, n);
	for (i = 0; i < n; i++)
		params[i] = va_arg(ap, const char *);
	va_end(ap);
	return gw_db_exec(db, resp, sql, n, params);
}

int
gw_tx_begin(struct gw_request *req)
{
	return gw_db_exec(req->db, NULL, "BEGIN", 0, NULL);
}

int
gw_tx_commit(struct gw_request *req)
{
	return gw_db_exec(req->db, NULL, "COMMIT", 0, NULL);
}

void
gw_tx_rollback(struct gw_request *req)
{
	PGresult *res;

	if (req->db == NULL || PQtransactionStatus(req->db) == PQTRANS_IDLE)
		return;
	res = PQexec(req->db, "ROLLBACK");
	PQclear(res);
}

/* ---- pool ------------------------------------------------------------------------- */

struct gw_db_pool {
	char *url;
	unsigned size;
	unsigned in_use;   /* borrowed */
	unsigned n_idle;
	PGconn **idle;     /* size slots */
	pthread_mutex_t mu;
	pthread_cond_t cv;
};

int
gw_db_pool_new(const char *url, unsigned size, struct gw_db_pool **pp)
{
	struct gw_db_pool *p;
	pthread_condattr_t ca;

	if (size == 0)
		return RSSP_E_INVAL;
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return RSSP_E_NOMEM;
	p->url = strdup(url);
	p->idle = calloc(size, sizeof(*p->idle));
	if (p->url == NULL || p->idle == NULL) {
		free(p->url);
		free(p->idle);
		free(p);
		return RSSP_E_NOMEM;
	}
	p->size = size;
	pthread_mutex_init(&p->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cv, &ca);
	pthread_condattr_destroy(&ca);
	*pp = p;
	return 0;
}

void
gw_db_pool_free(struct gw_db_pool *p)
{
	unsigned i;

	if (p == NULL)
		return;
	for (i = 0; i < p->n_idle; i++)
		PQfinish(p->idle[i]);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p->idle);
	free(p->url);
	free(p);
}

/* An idle connection has nothing to read. If its socket is readable, the server said
 * something on its own - after a PostgreSQL restart, "terminating connection" and EOF -
 * and the connection is reset before use instead of failing the request that borrows
 * it. One poll(2), no round trip. */
static int
idle_conn_dead(PGconn *c)
{
	struct pollfd pfd;

	pfd.fd = PQsocket(c);
	pfd.events = POLLIN;
	pfd.revents = 0;
	if (pfd.fd < 0)
		return 1;
	/* readable: EOF, or the server's "terminating connection" before it (the EOF may
	 * not be read yet); any other unsolicited message on an idle connection is rare
	 * enough that a reconnect costs nothing */
	return poll(&pfd, 1, 0) > 0;
}

int
gw_db_pool_get(struct gw_db_pool *p, unsigned timeout_ms, PGconn **cp)
{
	struct timespec dl;
	PGconn *c = NULL;
	int r;

	gw_deadline_after_ms(CLOCK_MONOTONIC, timeout_ms, &dl);
	pthread_mutex_lock(&p->mu);
	while (p->n_idle == 0 && p->in_use >= p->size) {
		if (pthread_cond_timedwait(&p->cv, &p->mu, &dl) == ETIMEDOUT &&
		    p->n_idle == 0 && p->in_use >= p->size) {
			pthread_mutex_unlock(&p->mu);
			log_warn("no database connection free within %u ms", timeout_ms);
			return RSSP_E_UNAVAILABLE;
		}
	}
	if (p->n_idle > 0)
		c = p->idle[--p->n_idle];
	p->in_use++;
	pthread_mutex_unlock(&p->mu);

	if (c != NULL && (PQstatus(c) != CONNECTION_OK || idle_conn_dead(c))) {
		PQreset(c);
		if (PQstatus(c) != CONNECTION_OK) {
			PQfinish(c);
			c = NULL;
		}
	}
	if (c == NULL && (r = gw_db_connect(p->url, &c)) < 0) {
		pthread_mutex_lock(&p->mu);
		p->in_use--;
		pthread_cond_signal(&p->cv);
		pthread_mutex_unlock(&p->mu);
		return r;
	}
	*cp = c;
	return 0;
}

void
gw_db_pool_put(struct gw_db_pool *p, PGconn *c)
{
	PGresult *res;

	if (c != NULL && PQstatus(c) == CONNECTION_OK && PQtransactionStatus(c) != PQTRANS_IDLE) {
		res = PQexec(c, "ROLLBACK");
		PQclear(res);
	}
	if (c != NULL && (PQstatus(c) != CONNECTION_OK || PQtransactionStatus(c) != PQTRANS_IDLE ||
	    conn_stale(c))) {
		PQfinish(c);
		c = NULL;
	}
	pthread_mutex_lock(&p->mu);
	p->in_use--;
	if (c != NULL)
		p->idle[p->n_idle++] = c; /* owned by the pool again */
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

unsigned
gw_db_pool_in_use(struct gw_db_pool *p)
{
	unsigned n;

	pthread_mutex_lock(&p->mu);
	n = p->in_use;
	pthread_mutex_unlock(&p->mu);
	return n;
}

unsigned
gw_db_pool_size(struct gw_db_pool *p)
{
	return p->size;
}

void
gw_db_release(struct gw_request *req)
{
	struct gw_db_pool *pool = gw_request_pool(req);

	if (pool == NULL || req->db == NULL)
		return;
	gw_db_pool_put(pool, req->db);
	req->db = NULL;
}

int
gw_db_reacquire(struct gw_request *req)
{
	struct gw_db_pool *pool = gw_request_pool(req);
	PGconn *c;
	int r;

	if (req->db != NULL)
		return 0;
	if (pool == NULL)
		return RSSP_E_UNAVAILABLE;
	if ((r = gw_db_pool_get(pool, 5000, &c)) < 0)
		return r;
	req->db = c;
	return 0;
}

/* ---- migrations -------------------------------------------------------------------- */

#define GW_MIGRATION_LOCK "7239110403" /* pg_advisory_xact_lock key: "rssp" schema */

static int
migration_name_ok(const char *n)
{
	size_t len = strlen(n);

	return len > 8 && n[0] >= '0' && n[0] <= '9' && n[1] >= '0' && n[1] <= '9' &&
	    n[2] >= '0' && n[2] <= '9' && n[3] == '_' && strcmp(n + len - 4, ".sql") == 0;
}

static int
read_file(const char *path, char **textp)
{
	FILE *f;
	char *buf = NULL;
	long len;
	int r = RSSP_E_IO;

	if ((f = fopen(path, "r")) == NULL)
		goto out;
	if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
		goto out;
	if ((buf = malloc((size_t)len + 1)) == NULL) {
		r = RSSP_E_NOMEM;
		goto out;
	}
	if (fread(buf, 1, (size_t)len, f) != (size_t)len)
		goto out;
	buf[len] = '\0';
	*textp = buf;
	buf = NULL;
	r = 0;
out:
	free(buf);
	if (f != NULL)
		fclose(f);
	return r;
}

static int
apply_one(PGconn *c, const char *dir, const char *name, int *appliedp)
{
	char path[4096], sum[65];
	char *sql = NULL;
	PGresult *res = NULL;
	int r;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((r = read_file(path, &sql)) < 0) {
		log_error("cannot read migration %s", path);
		return r;
	}
	gw_sha256_hex(sql, strlen(sql), sum);
	if ((r = gw_db_exec(c, NULL, "BEGIN", 0, NULL)) < 0)
		goto out;
	/* one replica at a time; the lock ends with the transaction */
	if ((r = gw_db_exec(c, NULL, "SELECT pg_advisory_xact_lock(" GW_MIGRATION_LOCK ")", 0, NULL)) < 0)
		goto out;
	if ((r = gw_db_exec(c, NULL,
	    "CREATE TABLE IF NOT EXISTS schema_migrations ("
	    " name text PRIMARY KEY, sha256 text NOT NULL,"
	    " applied_at timestamptz NOT NULL DEFAULT now())", 0, NULL)) < 0)
		goto out;
	if ((r = gw_db_query(c, &res, "SELECT sha256 FROM schema_migrations WHERE name = $1", 1, name)) < 0)
		goto out;
	if (PQntuples(res) > 0) {
		if (strcmp(gw_val(res, 0, "sha256"), sum) != 0)
			log_warn("migration %s changed since it was applied", name);
		r = gw_db_exec(c, NULL, "COMMIT", 0, NULL);
		goto out;
	}
	PQclear(res);
	res = PQexec(c, sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
		log_error("migration %s failed: %.500s", name, PQresultErrorMessage(res));
		r = RSSP_E_DB;
		goto out;
	}
	if ((r = gw_db_query(c, NULL, "INSERT INTO schema_migrations (name, sha256) VALUES ($1, $2)",
	    2, name, sum)) < 0)
		goto out;
	if ((r = gw_db_exec(c, NULL, "COMMIT", 0, NULL)) < 0)
		goto out;
	log_info("applied migration %s", name);
	(*appliedp)++;
out:
	if (r < 0 && PQtransactionStatus(c) != PQTRANS_IDLE)
		PQclear(PQexec(c, "ROLLBACK"));
	PQclear(res);
	free(sql);
	return r;
}

int
gw_db_migrate(PGconn *c, const char *schema_dir, int *appliedp)
{
	char **names = NULL;
	size_t n = 0, i;
	int applied = 0, r;

	if ((r = dir_list(schema_dir, ".sql", 0, &names, &n)) != 0) {
		if (r == RSSP_E_IO)
			log_error("cannot open schema directory %s", schema_dir);
		return r;
	}
	for (i = 0; i < n; i++)
		if (migration_name_ok(names[i]) &&
		    (r = apply_one(c, schema_dir, names[i], &applied)) < 0)
			goto out;
	if (appliedp != NULL)
		*appliedp = applied;
out:
	dir_list_free(names, n);
	return r;
}

const char *
gw_val(const PGresult *res, int i, const char *name)
{
	int c = PQfnumber(res, name);

	return c < 0 ? "" : PQgetvalue(res, i, c);
}

int
gw_isnull(const PGresult *res, int i, const char *name)
{
	int c = PQfnumber(res, name);

	return c < 0 ? 1 : PQgetisnull(res, i, c);
}
