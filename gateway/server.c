/* server.c - the HTTP server (libmicrohttpd): body limits, request ids, routing,
 * bearer authentication, the per-request context, replies, the access log, and the
 * operational endpoints. */
#include <arpa/inet.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>
#include <openssl/crypto.h>

#include "buf.h"
#include "conn_guard.h"
#include "db.h"
#include "engine_client.h"
#include "engine_health.h"
#include "framing.h"
#include "gw.h"
#include "gw_internal.h"
#include "loadcap.h"
#include "metrics.h"
#include "routes.h"
#include "rssp_log.h"
#include "secrets.h"

#define GW_MAX_BODY (1024 * 1024)
#define GW_MAX_DISCARD (16 * 1024 * 1024)
#define GW_RID_MAX 128
#define GW_LONG_QUEUE_MAX 1024

struct gw_server {
	struct MHD_Daemon *d;
	const struct gw_config *cfg;
	struct gw_db_pool *pool;
	struct engine_client *engine;
	char *tls_cert_pem;
	char *tls_key_pem;
	/* the long pool: handlers that may wait (long-polls) */
	pthread_t *lthreads;
	unsigned n_lthreads;
	pthread_mutex_t lmu;
	pthread_cond_t lcv;
	struct job *lhead, *ltail;
	unsigned lqueued;   /* waiting for a thread */
	unsigned lpending;  /* submitted and not yet answered */
	int lstop;
	struct gw_conn_guard *guard; /* the whole-request deadline */
};

/* Per request (MHD's con_cls). */
struct rq {
	struct timespec t0;
	char rid[GW_RID_MAX + 1];
	char client[INET6_ADDRSTRLEN + 8];
	struct rssp_buf body; /* the bytes so far, a NUL after them (raw_body is a C string) */
	int too_big;
	size_t discarded;
	int replied; /* a response was queued early (413) */
	struct job *job; /* a POST being handled (on the long pool while suspended) */
	int begun; /* the access handler saw this request */
	const char *bad_target; /* framing.h: why the raw request target is refused, or NULL */
};

static double
elapsed(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

static int
rid_ok(const char *s)
{
	size_t i;

	if (s == NULL || *s == '\0')
		return 0;
	for (i = 0; s[i]; i++) {
		char c = s[i];
		if (i >= GW_RID_MAX)
			return 0;
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

static void
client_addr(struct MHD_Connection *conn, char *out, size_t n)
{
	const union MHD_ConnectionInfo *ci;
	const struct sockaddr *sa;

	snprintf(out, n, "unknown");
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci == NULL || (sa = ci->client_addr) == NULL)
		return;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out, (socklen_t)n);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out, (socklen_t)n);
}

/* Behind a trusted proxy (RSSP_TRUST_FORWARDED=1) the client is the last address the
 * proxy appended to X-Forwarded-For; anything that is not an IP address is ignored. */
static void
forwarded_addr(struct MHD_Connection *conn, char *out, size_t n)
{
	const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Forwarded-For");
	const char *last;
	char buf[INET6_ADDRSTRLEN];
	size_t len, i;
	unsigned char tmp[sizeof(struct in6_addr)];

	if (v == NULL)
		return;
	last = strrchr(v, ',');
	last = last ? last + 1 : v;
	while (*last == ' ')
		last++;
	len = strcspn(last, " ");
	if (len == 0 || len >= sizeof(buf))
		return;
	for (i = 0; i < len; i++)
		buf[i] = last[i];
	buf[len] = '\0';
	if (inet_pton(AF_INET, buf, tmp) == 1 || inet_pton(AF_INET6, buf, tmp) == 1)
		snprintf(out, n, "%s", buf);
}

/* One JSON line on stdout per request; a single write() keeps lines whole. */
static void
access_log(const struct rq *q, const char *method, const char *url, int status, double secs)
{
	char ts[80], *line;
	struct timespec now;
	struct tm tm;
	json_t *o;
	size_t len;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
	    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long)(now.tv_nsec / 1000000) % 1000);
	/* the path is attacker-supplied: bounded, and jansson escapes it (invalid UTF-8 is
	 * replaced by a placeholder) */
	o = json_pack("{s:s, s:s, s:s, s:s%, s:i, s:f, s:s}", "time", ts, "request_id", q->rid,
	    "method", method, "path", url, strnlen(url, 200), "status", status,
	    "duration_ms", secs * 1000.0, "client", q->client);
	if (o == NULL)
		o = json_pack("{s:s, s:s, s:s, s:s, s:i, s:f, s:s}", "time", ts, "request_id", q->rid,
		    "method", method, "path", "(invalid)", "status", status,
		    "duration_ms", secs * 1000.0, "client", q->client);
	if (o == NULL)
		return;
	line = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6));
	json_decref(o);
	if (line == NULL)
		return;
	len = strlen(line);
	line[len] = '\n'; /* overwrite the NUL: write len + 1 bytes */
	if (write(STDOUT_FILENO, line, len + 1) < 0) {
		/* nothing sensible to do */
	}
	free(line);
}

static enum MHD_Result
send_reply(struct MHD_Connection *conn, const struct gw_server *s, struct rq *q,
    const char *method, const char *url, const char *route_label, struct gw_reply *rep)
{
	struct MHD_Response *resp;
	char *text = NULL;
	enum MHD_Result ret;
	unsigned i;
	int status = rep->status ? rep->status : 500;

	if (rep->text_ != NULL)
		text = strdup(rep->text_);
	else if (rep->body != NULL)
		text = json_dumps(rep->body, JSON_COMPACT);
	if (rep->body != NULL && text == NULL) {
		status = 500;
		text = strdup("{\"error\":\"internal_error\",\"error_description\":\"internal error\"}");
	}
	resp = MHD_create_response_from_buffer(text ? strlen(text) : 0, text ? text : (char *)"",
	    text ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
	if (resp == NULL) {
		free(text);
		return MHD_NO;
	}
	if (text != NULL)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
		    rep->text_ != NULL && rep->ctype_ != NULL ? rep->ctype_ : "application/json");
	MHD_add_response_header(resp, "X-Request-ID", q->rid);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	for (i = 0; i < rep->n_headers; i++)
		MHD_add_response_header(resp, rep->headers[i][0], rep->headers[i][1]);
	if (rep->flags_ & (GW_REPLY_DIGEST_CHALLENGE | GW_REPLY_DIGEST_STALE)) {
		ret = MHD_queue_auth_fail_response2(conn, s->cfg->service_name, "rssp", resp,
		    (rep->flags_ & GW_REPLY_DIGEST_STALE) ? MHD_YES : MHD_NO, MHD_DIGEST_ALG_SHA256);
		status = 401;
	} else {
		ret = MHD_queue_response(conn, (unsigned)status, resp);
	}
	MHD_destroy_response(resp);
	gw_metrics_request(route_label, status, elapsed(&q->t0));
	access_log(q, method, url, status, elapsed(&q->t0));
	return ret;
}

static const struct gw_route *
route_find(const char *path)
{
	const struct gw_route *r;

	for (r = gw_routes; r->path != NULL; r++)
		if (strcmp(r->path, path) == 0)
			return r;
	return NULL;
}

/* Content-Type without parameters, compared case-insensitively. */
static int
ctype_is(const char *ct, const char *want)
{
	size_t n = strlen(want);

	if (ct == NULL)
		return 0;
	while (*ct == ' ')
		ct++;
	return strncasecmp(ct, want, n) == 0 && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

/* Decodes application/x-www-form-urlencoded text in place; returns 0 or -1. */
static int
form_decode(char *s)
{
	char *o = s;
	int h, l;

	for (; *s; s++) {
		if (*s == '+') {
			*o++ = ' ';
		} else if (*s == '%') {
			if ((h = hexval(s[1])) < 0 || (l = hexval(s[2])) < 0 || (h == 0 && l == 0))
				return -1;
			*o++ = (char)(h * 16 + l);
			s += 2;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
	return 0;
}

/* Parses a form body into a JSON object of strings. Returns NULL on malformed input. */
static json_t *
form_parse(const char *body, size_t len)
{
	char *copy, *save = NULL, *pair, *eq;
	json_t *o = json_object(), *v;

	/* a NUL would end strndup's copy early and the wipe below would run past it */
	if (o == NULL || memchr(body, '\0', len) != NULL || (copy = strndup(body, len)) == NULL) {
		json_decref(o);
		return NULL;
	}
	for (pair = strtok_r(copy, "&", &save); pair != NULL; pair = strtok_r(NULL, "&", &save)) {
		if ((eq = strchr(pair, '=')) == NULL)
			goto bad;
		*eq = '\0';
		if (form_decode(pair) < 0 || form_decode(eq + 1) < 0 || *pair == '\0' ||
		    json_object_get(o, pair) != NULL)
			goto bad;
		if ((v = json_string(eq + 1)) == NULL) /* not UTF-8 */
			goto bad;
		json_object_set_new(o, pair, v);
	}
	OPENSSL_cleanse(copy, len); /* may hold a password */
	free(copy);
	return o;
bad:
	OPENSSL_cleanse(copy, len);
	free(copy);
	json_decref(o);
	return NULL;
}

static enum MHD_Result
reply_error(struct MHD_Connection *conn, const struct gw_server *s, struct rq *q,
    const char *method, const char *url, const char *label, int status, const char *code,
    const char *desc)
{
	struct gw_reply rep = {0};
	enum MHD_Result ret;

	(void)gw_error(&rep, status, code, "%s", desc);
	ret = send_reply(conn, s, q, method, url, label, &rep);
	gw_reply_release(&rep);
	return ret;
}

/* A request whose framing or target is refused (framing.h): 400, and the connection is
 * closed after the answer, since what follows on it cannot be trusted. */
static enum MHD_Result
reply_close(struct MHD_Connection *conn, const struct gw_server *s, struct rq *q,
    const char *method, const char *url, const char *why)
{
	struct gw_reply rep = {0};
	enum MHD_Result ret;

	log_info("malformed request refused: %s", why);
	(void)gw_error(&rep, 400, "invalid_request", "%s", why);
	if (gw_reply_header(&rep, MHD_HTTP_HEADER_CONNECTION, "close") < 0) {
		gw_reply_release(&rep);
		return MHD_NO;
	}
	ret = send_reply(conn, s, q, method, url, "other", &rep);
	gw_reply_release(&rep);
	return ret;
}

/* MHD_OPTION_URI_LOG_CALLBACK: the request target as sent, before MHD unescapes it.
 * The per-request state starts here (MHD hands it to on_request as *con_cls). */
static void *
on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct rq *q = calloc(1, sizeof(*q));

	(void)cls;
	(void)conn;
	if (q != NULL)
		q->bad_target = gw_framing_check_target(uri);
	return q;
}

static enum MHD_Result
reply_text(struct MHD_Connection *conn, const struct gw_server *s, struct rq *q,
    const char *method, const char *url, const char *label, int status, const char *ctype,
    char *text /* owned */, size_t len)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	MHD_add_response_header(resp, "X-Request-ID", q->rid);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	ret = MHD_queue_response(conn, (unsigned)status, resp);
	MHD_destroy_response(resp);
	gw_metrics_request(label, status, elapsed(&q->t0));
	access_log(q, method, url, status, elapsed(&q->t0));
	return ret;
}

static int
db_ping(struct gw_server *s)
{
	PGconn *c;
	int r;

	if ((r = gw_db_pool_get(s->pool, 1000, &c)) < 0)
		return r;
	r = gw_db_exec(c, NULL, "SELECT 1", 0, NULL);
	gw_db_pool_put(s->pool, c);
	return r;
}

static enum MHD_Result
serve_get(struct MHD_Connection *conn, struct gw_server *s, struct rq *q, const char *url)
{
	char *text;

	if (strcmp(url, "/healthz") == 0) {
		text = strdup("{\"status\":\"ok\"}");
		return reply_text(conn, s, q, "GET", url, "/healthz", 200, "application/json", text,
		    text ? strlen(text) : 0);
	}
	if (strcmp(url, "/readyz") == 0) {
		const char *why = NULL, *code = "engine_unavailable";
		if (db_ping(s) < 0) {
			why = "database unreachable";
			code = "database_unavailable";
		} else if (s->cfg->engine_socket_set && s->engine == NULL) {
			why = "engine unreachable";
		} else if (s->cfg->engine_socket_set && engine_health_ready(&code, &why) < 0) {
			/* the probe's verdict: no call here waits for a hung engine */
		}
		if (why != NULL) {
			struct gw_reply rep = {0};
			enum MHD_Result ret;
			(void)gw_error(&rep, 503, code, "%s", why);
			ret = send_reply(conn, s, q, "GET", url, "/readyz", &rep);
			gw_reply_release(&rep);
			return ret;
		}
		text = strdup("{\"status\":\"ready\"}");
		return reply_text(conn, s, q, "GET", url, "/readyz", 200, "application/json", text,
		    text ? strlen(text) : 0);
	}
	if (strcmp(url, "/metrics") == 0) {
		text = gw_metrics_render(gw_db_pool_in_use(s->pool), gw_db_pool_size(s->pool));
		return reply_text(conn, s, q, "GET", url, "/metrics", 200,
		    "text/plain; version=0.0.4; charset=utf-8", text, text ? strlen(text) : 0);
	}
	if (strcmp(url, "/openapi.json") == 0) {
		text = malloc(gw_openapi_json_len + 1);
		if (text != NULL)
			memcpy(text, gw_openapi_json, gw_openapi_json_len + 1);
		return reply_text(conn, s, q, "GET", url, "/openapi.json", 200, "application/json",
		    text, text ? gw_openapi_json_len : 0);
	}
	return reply_error(conn, s, q, "GET", url, "other", 404, "not_found", "no such resource");
}

static int
is_operational(const char *url)
{
	return strcmp(url, "/healthz") == 0 || strcmp(url, "/readyz") == 0 ||
	    strcmp(url, "/metrics") == 0 || strcmp(url, "/openapi.json") == 0;
}

static int
ensure_db(struct gw_request *req)
{
	return gw_db_reacquire(req);
}

/* One POST request in flight: the context a handler sees, and its reply. */
struct job {
	struct gw_req_priv pv;
	struct gw_request req;
	struct gw_reply rep;
	const struct gw_route *rt;
	struct MHD_Connection *conn;
	struct rq *q;
	struct job *next;
	int done;
	int waiting; /* holds a long-poll place of its account (loadcap.h) */
};

/* Passphrases, secret keys and tokens arrive as top-level strings: wipe them before
 * jansson frees them. */
static void
body_wipe(json_t *body)
{
	const char *k;
	json_t *v;

	if (!json_is_object(body))
		return;
	json_object_foreach(body, k, v)
		if (json_is_string(v))
			OPENSSL_cleanse((char *)(uintptr_t)json_string_value(v), json_string_length(v));
}

/* Runs the handler (on an HTTP thread, or on the long pool) and maps its failures. */
static void
job_run(struct gw_server *s, struct job *j)
{
	const struct gw_route *rt = j->rt;
	int r;

	(void)s;
	if (!(rt->flags & GW_NO_DB) && (r = ensure_db(&j->req)) < 0) {
		(void)gw_error(&j->rep, 503, "database_unavailable", "the database is not available; retry later");
		goto out;
	}
	r = rt->handler(&j->req, &j->rep);
	if (j->rep.status == 0) {
		if (r == 0)
			r = RSSP_E_INTERNAL; /* a handler that returns 0 without a reply */
		log_error("%s failed: %s", rt->path, rssp_strerror(r));
		if ((r == RSSP_E_UNAVAILABLE || r == RSSP_E_TIMEOUT || r == RSSP_E_DB) &&
		    (j->req.db == NULL || PQstatus(j->req.db) != CONNECTION_OK))
			(void)gw_error(&j->rep, 503, "database_unavailable",
			    "the database is not available; retry later");
		else if (r == RSSP_E_UNAVAILABLE || r == RSSP_E_TIMEOUT)
			(void)gw_error(&j->rep, 503, "engine_unavailable", "service unavailable, retry later");
		else
			(void)gw_error(&j->rep, 500, "internal_error", "internal error");
	}
out:
	if (j->req.db != NULL) {
		gw_tx_rollback(&j->req);
		gw_db_release(&j->req);
	}
}

static enum MHD_Result
job_finish(struct gw_server *s, struct job *j, const char *url)
{
	enum MHD_Result ret;

	if (j->req.db != NULL) {
		gw_tx_rollback(&j->req);
		gw_db_release(&j->req);
	}
	if (j->waiting)
		gw_wait_leave(j->req.principal.account_id);
	ret = send_reply(j->conn, s, j->q, j->req.method, url, j->rt->path, &j->rep);
	gw_reply_release(&j->rep);
	body_wipe(j->req.body);
	json_decref(j->req.body);
	j->q->job = NULL;
	free(j);
	return ret;
}

/* A request that may wait long (a GW_LONG route, or a positive "wait" member) runs on
 * the long pool, with its connection suspended, so that it never holds an HTTP thread
 * (each of which serves many connections). */
static int
job_is_long(const struct job *j)
{
	json_t *w = json_object_get(j->req.body, "wait");

	return (j->rt->flags & GW_LONG) || (json_is_integer(w) && json_integer_value(w) > 0);
}

static void *
long_main(void *arg)
{
	struct gw_server *s = arg;
	struct job *j;

	gw_thread_is_long = 1;
	/* what runs here (argon2id for logins, long-polls, waits for key generation) must
	 * never take the CPU from signing: on a busy machine the HTTP threads go first
	 * (10 more than the process's nice value: raising it needs no privilege, and a
	 * failure changes nothing else) */
	{
		id_t tid = (id_t)syscall(SYS_gettid);
		int prio = getpriority(PRIO_PROCESS, tid);

		(void)setpriority(PRIO_PROCESS, tid, prio + 10 > 19 ? 19 : prio + 10);
	}
	for (;;) {
		pthread_mutex_lock(&s->lmu);
		while (s->lhead == NULL && !s->lstop)
			pthread_cond_wait(&s->lcv, &s->lmu);
		if (s->lhead == NULL) {
			pthread_mutex_unlock(&s->lmu);
			return NULL;
		}
		j = s->lhead;
		s->lhead = j->next;
		if (s->lhead == NULL)
			s->ltail = NULL;
		s->lqueued--;
		pthread_mutex_unlock(&s->lmu);

		rssp_log_set_request_id(j->q->rid);
		job_run(s, j);
		rssp_log_set_request_id(NULL);
		pthread_mutex_lock(&s->lmu);
		j->done = 1;
		MHD_resume_connection(j->conn); /* MHD calls on_request again: job_finish */
		pthread_mutex_unlock(&s->lmu);
	}
}

/* Queues j on the long pool. Returns 0, or RSSP_E_EXHAUSTED when too many wait. */
static int
long_submit(struct gw_server *s, struct job *j)
{
	int r = 0;

	pthread_mutex_lock(&s->lmu);
	if (s->lqueued >= GW_LONG_QUEUE_MAX || s->lstop || gw_stopping()) {
		r = RSSP_E_EXHAUSTED;
	} else {
		s->lqueued++;
		s->lpending++;
		j->next = NULL;
		if (s->ltail != NULL)
			s->ltail->next = j;
		else
			s->lhead = j;
		s->ltail = j;
		j->q->job = j;
		MHD_suspend_connection(j->conn);
		pthread_cond_signal(&s->lcv);
	}
	pthread_mutex_unlock(&s->lmu);
	return r;
}

/* GET routes (GW_GET): the query parameters as an object of strings; a repeated name,
 * a name without a value or a value that is not UTF-8 makes it fail. */
struct qargs {
	json_t *o;
	int bad;
};

static enum MHD_Result
qarg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct qargs *a = cls;
	json_t *v;

	(void)kind;
	if (value == NULL || *key == '\0' || json_object_get(a->o, key) != NULL ||
	    (v = json_string(value)) == NULL) {
		a->bad = 1;
		return MHD_NO;
	}
	json_object_set_new(a->o, key, v);
	return MHD_YES;
}

static json_t *
query_parse(struct MHD_Connection *conn)
{
	struct qargs a = { json_object(), 0 };

	if (a.o != NULL)
		MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, qarg, &a);
	if (a.bad) {
		json_decref(a.o);
		return NULL;
	}
	return a.o;
}

static enum MHD_Result
serve_post(struct MHD_Connection *conn, struct gw_server *s, struct rq *q, const char *url,
    const char *method)
{
	const struct gw_route *rt = route_find(url);
	struct job *j;
	const char *ct, *auth;
	int r;

	if (rt == NULL)
		return reply_error(conn, s, q, method, url, "other", 404, "not_found", "no such function");
	if ((j = calloc(1, sizeof(*j))) == NULL)
		return MHD_NO;
	j->rt = rt;
	j->conn = conn;
	j->q = q;
	q->job = j;
	j->pv.pool = s->pool;
	j->pv.conn = conn;
	j->pv.route = rt;
	j->req.priv_ = &j->pv;
	j->req.request_id = q->rid;
	j->req.client_addr = q->client;
	j->req.method = method;
	j->req.path = rt->path;
	j->req.raw_body = q->body.p != NULL ? (const char *)q->body.p : "";
	j->req.raw_body_len = q->body.len;
	j->req.engine = s->engine;
	j->req.cfg = s->cfg;
	j->req.routes = gw_routes;

	/* the body: JSON (or, for GW_RAW_BODY routes, a form or nothing) */
	ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
	if (strcmp(method, "GET") == 0) {
		if ((j->req.body = query_parse(conn)) == NULL) {
			(void)gw_error(&j->rep, 400, "invalid_request", "malformed query string");
			goto send;
		}
	} else if (q->body.len == 0 && (ct == NULL || ctype_is(ct, "application/json") ||
	    ctype_is(ct, "application/x-www-form-urlencoded"))) {
		j->req.body = json_object();
	} else if (ctype_is(ct, "application/json")) {
		json_error_t jerr;
		j->req.body = json_loadb((const char *)q->body.p, q->body.len, JSON_REJECT_DUPLICATES, &jerr);
		if (j->req.body == NULL || !json_is_object(j->req.body)) {
			(void)gw_error(&j->rep, 400, "invalid_request", "%s", j->req.body == NULL ?
			    "malformed JSON body" : "the body must be a JSON object");
			goto send;
		}
	} else if ((rt->flags & GW_RAW_BODY) && ctype_is(ct, "application/x-www-form-urlencoded")) {
		if ((j->req.body = form_parse((const char *)q->body.p, q->body.len)) == NULL) {
			(void)gw_error(&j->rep, 400, "invalid_request", "malformed form body");
			goto send;
		}
	} else {
		(void)gw_error(&j->rep, 400, "invalid_request",
		    "Content-Type must be application/json%s",
		    (rt->flags & GW_RAW_BODY) ? " or application/x-www-form-urlencoded" : "");
		goto send;
	}
	if (j->req.body == NULL) {
		(void)gw_error(&j->rep, 500, "internal_error", "internal error");
		goto send;
	}

	/* bearer authentication: required unless public; on public routes a valid bearer
	 * is used and an invalid one ignored */
	auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	if (!(rt->flags & GW_PUBLIC) || (auth != NULL && strncasecmp(auth, "Bearer ", 7) == 0)) {
		r = gw_auth_bearer(&j->req, &j->rep);
		if (r < 0 && (rt->flags & GW_PUBLIC) && r == RSSP_E_DENIED) {
			gw_reply_release(&j->rep);
			j->req.authenticated = false;
		} else if (r < 0) {
			if (j->rep.status == 0)
				(void)gw_error(&j->rep, r == RSSP_E_UNAVAILABLE ? 503 : 500,
				    r == RSSP_E_UNAVAILABLE ? "database_unavailable" : "internal_error",
				    "%s", r == RSSP_E_UNAVAILABLE ? "the database is not available; retry later" :
				    "internal error");
			goto send;
		}
		if (!(rt->flags & GW_PUBLIC) && !(rt->roles & j->req.principal.role)) {
			(void)gw_error(&j->rep, 403, "access_denied", "this function is not allowed for role %s",
			    gw_role_name(j->req.principal.role));
			goto send;
		}
	}
	if ((rt->flags & GW_NEEDS_ENGINE) && (s->engine == NULL || engine_health_admit() < 0)) {
		(void)gw_error(&j->rep, 503, "engine_unavailable", "the signing engine is not available");
		goto send;
	}
	if (job_is_long(j)) {
		/* a long-poll ("wait") holds a thread of the long pool for its whole wait: each
		 * account may hold only a few, and all of them together only part of the pool,
		 * so that logins and other tenants keep capacity of their own */
		if ((!(rt->flags & GW_LONG) || (rt->flags & GW_WAITS)) && j->req.authenticated) {
			r = gw_wait_admit(j->req.principal.account_id);
			if (r == RSSP_E_EXHAUSTED) {
				(void)gw_error(&j->rep, 429, "too_many_requests",
				    "at most %u requests of this client may wait at once; retry later or without 'wait'",
				    gw_loadcap_waits_per_client());
				goto send;
			}
			if (r < 0) {
				(void)gw_error(&j->rep, 503, "temporarily_unavailable",
				    "too many waiting requests, retry later or without 'wait'");
				goto send;
			}
			j->waiting = 1;
		}
		if (j->req.db != NULL)
			gw_db_release(&j->req);
		if (long_submit(s, j) == 0)
			return MHD_YES;
		(void)gw_error(&j->rep, 503, "engine_unavailable", "too many waiting requests, retry later");
		goto send;
	}
	job_run(s, j);
send:
	return job_finish(s, j, url);
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
    const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	struct gw_server *s = cls;
	struct rq *q = *con_cls;
	const char *v;
	enum MHD_Result ret;

	(void)version;
	if (q == NULL || !q->begun) {
		const char *why;

		if (q == NULL && (q = calloc(1, sizeof(*q))) == NULL)
			return MHD_NO;
		*con_cls = q;
		q->begun = 1;
		clock_gettime(CLOCK_MONOTONIC, &q->t0);
		v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-ID");
		if (rid_ok(v))
			snprintf(q->rid, sizeof(q->rid), "%s", v);
		else
			gw_random_uuid(q->rid);
		client_addr(conn, q->client, sizeof(q->client));
		if (s->cfg->trust_forwarded)
			forwarded_addr(conn, q->client, sizeof(q->client));
		/* strict framing (framing.h): refused and closed before anything is read */
		if ((why = q->bad_target) != NULL || (why = gw_framing_check_headers(conn)) != NULL) {
			q->too_big = 1;
			q->replied = 1;
			rssp_log_set_request_id(q->rid);
			ret = reply_close(conn, s, q, method, url, why);
			rssp_log_set_request_id(NULL);
			return ret;
		}
		v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (v != NULL && (strlen(v) > 9 || strtoull(v, NULL, 10) > GW_MAX_BODY)) {
			q->too_big = 1;
			q->replied = 1;
			rssp_log_set_request_id(q->rid);
			return reply_error(conn, s, q, method, url, "other", 413, "payload_too_large",
			    "the request body exceeds 1 MiB");
		}
		return MHD_YES;
	}
	if (q->replied) {
		*upload_data_size = 0; /* discard what still comes */
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		size_t n = *upload_data_size;
		if (q->too_big || q->body.len + n > GW_MAX_BODY) {
			/* no Content-Length told us in advance: what comes past 1 MiB is discarded
			 * unread (never stored) and answered with 413 at its end; a sender that
			 * goes on past GW_MAX_DISCARD is cut off */
			q->too_big = 1;
			q->discarded += n;
			*upload_data_size = 0;
			return q->discarded > GW_MAX_DISCARD ? MHD_NO : MHD_YES;
		}
		/* the bytes, then a NUL that stays after them (not counted in len) */
		rssp_buf_put(&q->body, upload_data, n);
		rssp_buf_putc(&q->body, '\0');
		if (q->body.err != 0)
			return MHD_NO;
		q->body.len--;
		*upload_data_size = 0;
		return MHD_YES;
	}

	if (q->job != NULL) {
		struct job *j = q->job;
		int done;

		pthread_mutex_lock(&s->lmu);
		done = j->done;
		pthread_mutex_unlock(&s->lmu);
		if (!done)
			return MHD_YES;
		rssp_log_set_request_id(q->rid);
		ret = job_finish(s, j, url);
		pthread_mutex_lock(&s->lmu);
		s->lpending--;
		pthread_cond_broadcast(&s->lcv);
		pthread_mutex_unlock(&s->lmu);
		rssp_log_set_request_id(NULL);
		return ret;
	}
	rssp_log_set_request_id(q->rid);
	gw_conn_guard_busy(s->guard, conn, 1); /* the whole request is in: the deadline stops */
	if (q->too_big)
		ret = reply_error(conn, s, q, method, url, "other", 413, "payload_too_large",
		    "the request body exceeds 1 MiB");
	else if (strcmp(method, "GET") == 0 && is_operational(url))
		ret = serve_get(conn, s, q, url);
	else if (strcmp(method, "POST") == 0)
		ret = serve_post(conn, s, q, url, "POST");
	else if (strcmp(method, "GET") == 0 && route_find(url) != NULL &&
	    (route_find(url)->flags & GW_GET))
		ret = serve_post(conn, s, q, url, "GET");
	else if (is_operational(url) || route_find(url) != NULL)
		ret = reply_error(conn, s, q, method, url, "other", 405, "invalid_request",
		    is_operational(url) ? "use GET" : "use POST");
	else
		ret = reply_error(conn, s, q, method, url, "other", 404, "not_found", "no such resource");
	rssp_log_set_request_id(NULL);
	return ret;
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	struct rq *q = *con_cls;
	struct gw_server *gs = cls;

	(void)toe;
	gw_conn_guard_busy(gs->guard, conn, 0); /* the next request's deadline starts now */
	if (q == NULL)
		return;
	if (q->job != NULL) {
		/* the connection ended before its answer could be sent */
		struct job *j = q->job;
		struct gw_server *s = cls;

		if (j->req.db != NULL) {
			gw_tx_rollback(&j->req);
			gw_db_release(&j->req);
		}
		if (j->waiting)
			gw_wait_leave(j->req.principal.account_id);
		gw_reply_release(&j->rep);
		body_wipe(j->req.body);
		json_decref(j->req.body);
		free(j);
		q->job = NULL;
		pthread_mutex_lock(&s->lmu);
		if (s->lpending > 0)
			s->lpending--;
		pthread_cond_broadcast(&s->lcv);
		pthread_mutex_unlock(&s->lmu);
	}
	rssp_buf_free(&q->body); /* wiped: may hold passphrases */
	free(q);
	*con_cls = NULL;
}

static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[512];

	(void)cls;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	buf[strcspn(buf, "\n")] = '\0';
	log_debug("microhttpd: %.300s", buf);
}

static int
slurp(const char *path, char **textp)
{
	FILE *f = fopen(path, "r");
	struct rssp_buf b = RSSP_BUF_INIT;
	uint8_t chunk[4096], *text;
	size_t got, len;
	int r = RSSP_E_IO;

	if (f == NULL)
		return RSSP_E_IO;
	do {
		got = fread(chunk, 1, sizeof(chunk), f);
		rssp_buf_put(&b, chunk, got);
	} while (got == sizeof(chunk));
	OPENSSL_cleanse(chunk, sizeof(chunk));
	if (ferror(f))
		goto out;
	rssp_buf_putc(&b, '\0');
	if ((r = rssp_buf_take(&b, &text, &len)) != 0) {
		r = RSSP_E_NOMEM;
		goto out;
	}
	*textp = (char *)text;
	r = 0;
out:
	rssp_buf_free(&b); /* wiped: key files */
	fclose(f);
	return r;
}

int
gw_server_start(const struct gw_config *cfg, struct gw_db_pool *pool,
    struct engine_client *engine, struct gw_server **sp)
{
	struct gw_server *s;
	struct addrinfo hints = {0}, *ai = NULL;
	char port[16];
	unsigned flags;
	unsigned char rnd[32];
	int r = RSSP_E_INVAL;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return RSSP_E_NOMEM;
	s->cfg = cfg;
	s->pool = pool;
	s->engine = engine;
	pthread_mutex_init(&s->lmu, NULL);
	pthread_cond_init(&s->lcv, NULL);
	if ((s->lthreads = calloc(cfg->long_threads, sizeof(*s->lthreads))) == NULL) {
		r = RSSP_E_NOMEM;
		goto out;
	}
	for (; s->n_lthreads < cfg->long_threads; s->n_lthreads++)
		if (pthread_create(&s->lthreads[s->n_lthreads], NULL, long_main, s) != 0) {
			log_error("cannot start the long-poll threads");
			r = RSSP_E_NOMEM;
			goto out;
		}

	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(port, sizeof(port), "%u", cfg->listen_port);
	if (getaddrinfo(cfg->listen_host, port, &hints, &ai) != 0 || ai == NULL) {
		log_error("cannot resolve listen address %.100s", cfg->listen_host);
		goto out;
	}
	flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG |
	    MHD_ALLOW_SUSPEND_RESUME;
	if (ai->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	if (cfg->tls_cert != NULL) {
		if (slurp(cfg->tls_cert, &s->tls_cert_pem) < 0 || slurp(cfg->tls_key, &s->tls_key_pem) < 0) {
			log_error("cannot read the TLS certificate or key");
			r = RSSP_E_IO;
			goto out;
		}
		flags |= MHD_USE_TLS;
	}
	if ((r = gw_conn_guard_start(cfg->request_deadline, &s->guard)) < 0)
		goto out;
	r = RSSP_E_INVAL;
	gw_random_bytes(rnd, sizeof(rnd));
	{
		struct MHD_OptionItem o[24];
		unsigned n = 0;

#define OPT(a, b, c) o[n].option = (a), o[n].value = (intptr_t)(b), o[n].ptr_value = (void *)(c), n++
		OPT(MHD_OPTION_SOCK_ADDR, 0, ai->ai_addr);
		OPT(MHD_OPTION_THREAD_POOL_SIZE, cfg->http_threads, NULL);
		OPT(MHD_OPTION_NOTIFY_COMPLETED, on_completed, s);
		OPT(MHD_OPTION_CONNECTION_TIMEOUT, 60, NULL);
		OPT(MHD_OPTION_CONNECTION_LIMIT, 1000, NULL);
		OPT(MHD_OPTION_URI_LOG_CALLBACK, on_uri, s);
		OPT(MHD_OPTION_NOTIFY_CONNECTION, gw_conn_guard_notify, s->guard);
		/* behind a proxy every connection comes from the proxy: no per-address cap */
		if (cfg->conn_per_address > 0 && !cfg->trust_forwarded)
			OPT(MHD_OPTION_PER_IP_CONNECTION_LIMIT, cfg->conn_per_address, NULL);
		OPT(MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s);
		OPT(MHD_OPTION_DIGEST_AUTH_RANDOM, sizeof(rnd), rnd);
		OPT(MHD_OPTION_NONCE_NC_SIZE, 4096, NULL);
		if (cfg->tls_cert != NULL) {
			OPT(MHD_OPTION_HTTPS_MEM_CERT, 0, s->tls_cert_pem);
			OPT(MHD_OPTION_HTTPS_MEM_KEY, 0, s->tls_key_pem);
			OPT(MHD_OPTION_HTTPS_PRIORITIES, 0, "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2");
		}
		OPT(MHD_OPTION_END, 0, NULL);
#undef OPT
		s->d = MHD_start_daemon(flags, (uint16_t)cfg->listen_port, NULL, NULL, on_request, s,
		    MHD_OPTION_ARRAY, o, MHD_OPTION_END);
	}
	if (s->d == NULL) {
		log_error("cannot listen on %.100s:%u", cfg->listen_host, cfg->listen_port);
		r = RSSP_E_IO;
		goto out;
	}
	log_info("listening on %s:%u (%s)", cfg->listen_host, cfg->listen_port,
	    cfg->tls_cert ? "https" : "http");
	*sp = s;
	s = NULL;
	r = 0;
out:
	if (ai != NULL)
		freeaddrinfo(ai);
	gw_server_stop(s);
	return r;
}

void
gw_server_stop(struct gw_server *s)
{
	unsigned i;

	if (s == NULL)
		return;
	gw_stopping_set();
	if (s->d != NULL) {
		MHD_socket ls = MHD_quiesce_daemon(s->d); /* no new connections */
		/* requests on the long pool end (handlers see gw_stopping()) and are answered
		 * before the daemon stops: MHD must not stop with suspended connections */
		pthread_mutex_lock(&s->lmu);
		while (s->lpending > 0)
			pthread_cond_wait(&s->lcv, &s->lmu);
		pthread_mutex_unlock(&s->lmu);
		MHD_stop_daemon(s->d);
		if (ls != MHD_INVALID_SOCKET)
			close(ls);
	}
	gw_conn_guard_stop(s->guard);
	pthread_mutex_lock(&s->lmu);
	s->lstop = 1;
	pthread_cond_broadcast(&s->lcv);
	pthread_mutex_unlock(&s->lmu);
	for (i = 0; i < s->n_lthreads; i++)
		pthread_join(s->lthreads[i], NULL);
	free(s->lthreads);
	pthread_mutex_destroy(&s->lmu);
	pthread_cond_destroy(&s->lcv);
	if (s->tls_key_pem != NULL) {
		OPENSSL_cleanse(s->tls_key_pem, strlen(s->tls_key_pem));
		free(s->tls_key_pem);
	}
	free(s->tls_cert_pem);
	free(s);
}
