/* gwtest.c - a real rssp-gateway process on a fresh database, over real HTTP. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <curl/curl.h>
#include <libpq-fe.h>

#include "gwtest.h"

#ifndef GWTEST_BUILD_DIR
#define GWTEST_BUILD_DIR "."
#endif

struct gwt {
	pid_t pid;
	unsigned port;
	char url[128];
	char db_name[96];
	char *db_url;
	char *admin_id;
	char *admin_token;
	char admin_email[64];
	char admin_password[64];
	char out_path[512];
	char err_path[512];
	int tls;
	CURL *curl;
};

static char *
xstrdup(const char *s)
{
	char *p = strdup(s);

	ck_assert_msg(p != NULL, "out of memory");
	return p;
}

char *
gwt_unique(const char *prefix)
{
	static unsigned counter;
	char buf[128];

	snprintf(buf, sizeof(buf), "%s_%d_%u_%ld", prefix, (int)getpid(), counter++, (long)time(NULL) % 100000);
	return xstrdup(buf);
}

static const char *
work_dir(void)
{
	const char *w = getenv("RSSP_TEST_WORK");

	return w != NULL && *w ? w : "/tmp";
}

static const char *
gateway_bin(void)
{
	static char path[1024];
	const char *b = getenv("RSSP_TEST_BUILD");

	snprintf(path, sizeof(path), "%s/gateway/rssp-gateway", b != NULL && *b ? b : GWTEST_BUILD_DIR);
	return path;
}

/* The test cluster's URL with another database name. */
static char *
url_with_db(const char *base, const char *db)
{
	const char *p = strstr(base, "://"), *slash, *q;
	char *out;
	size_t n;

	ck_assert_msg(p != NULL, "RSSP_TEST_DB_URL is not a URL");
	slash = strchr(p + 3, '/');
	ck_assert_msg(slash != NULL, "RSSP_TEST_DB_URL has no database part");
	q = strchr(slash, '?');
	n = (size_t)(slash - base) + 1 + strlen(db) + (q ? strlen(q) : 0) + 1;
	out = malloc(n);
	ck_assert_msg(out != NULL, "out of memory");
	snprintf(out, n, "%.*s/%s%s", (int)(slash - base), base, db, q ? q : "");
	return out;
}

static const char *
base_db_url(void)
{
	const char *u = getenv("RSSP_TEST_DB_URL");

	ck_assert_msg(u != NULL && *u, "RSSP_TEST_DB_URL is not set");
	return u;
}

static void
exec_sql(const char *url, const char *sql)
{
	PGconn *c = PQconnectdb(url);
	PGresult *res;

	ck_assert_msg(PQstatus(c) == CONNECTION_OK, "cannot connect to %s: %s", url, PQerrorMessage(c));
	res = PQexec(c, sql);
	ck_assert_msg(PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK,
	    "%s: %s", sql, PQerrorMessage(c));
	PQclear(res);
	PQfinish(c);
}

static unsigned
free_port(void)
{
	struct sockaddr_in a = {0};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

static int
has_env(const char *const *env, const char *name)
{
	size_t n = strlen(name);

	for (; env != NULL && *env != NULL; env++)
		if (strncmp(*env, name, n) == 0 && (*env)[n] == '=')
			return 1;
	return 0;
}

/* Sets the child's environment: the gateway's variables, then opts->env. */
static void
child_env(const struct gwt *g, const struct gwt_opts *o)
{
	char listen[64];
	const char *const *e;

	snprintf(listen, sizeof(listen), "127.0.0.1:%u", g->port);
	setenv("RSSP_DB_URL", g->db_url, 1);
	setenv("RSSP_LISTEN", listen, 1);
	if (!has_env(o ? o->env : NULL, "RSSP_ARGON2_OPSLIMIT"))
		setenv("RSSP_ARGON2_OPSLIMIT", "1", 1);
	if (!has_env(o ? o->env : NULL, "RSSP_ARGON2_MEMLIMIT_KIB"))
		setenv("RSSP_ARGON2_MEMLIMIT_KIB", "8192", 1);
	if (!has_env(o ? o->env : NULL, "RSSP_LOG_LEVEL"))
		setenv("RSSP_LOG_LEVEL", "debug", 1);
	unsetenv("RSSP_ENGINE_SOCKET");
	if (o != NULL && o->tls_cert != NULL) {
		setenv("RSSP_TLS_CERT", o->tls_cert, 1);
		setenv("RSSP_TLS_KEY", o->tls_key, 1);
	}
	for (e = o ? o->env : NULL; e != NULL && *e != NULL; e++)
		putenv((char *)*e);
}

/* Runs rssp-gateway with args; stdin from in_path (or /dev/null); returns its stdout. */
static char *
run_gateway_cmd(struct gwt *g, const struct gwt_opts *o, const char *const *args, const char *in_path, int *statusp)
{
	int pfd[2], st;
	pid_t pid;
	char *out = NULL;
	size_t len = 0, cap = 0;
	ssize_t n;

	ck_assert_int_eq(pipe(pfd), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int in = open(in_path ? in_path : "/dev/null", O_RDONLY);
		int err = open(g->err_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
		dup2(in, 0);
		dup2(pfd[1], 1);
		dup2(err, 2);
		close(pfd[0]);
		child_env(g, o);
		execv(gateway_bin(), (char *const *)args);
		_exit(127);
	}
	close(pfd[1]);
	for (;;) {
		if (len + 512 > cap) {
			cap = cap ? cap * 2 : 1024;
			out = realloc(out, cap);
			ck_assert_msg(out != NULL, "out of memory");
		}
		n = read(pfd[0], out + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	out[len] = '\0';
	close(pfd[0]);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	*statusp = st;
	return out;
}

static size_t
collect(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct { char *p; size_t len; } *b = ud;
	size_t n = size * nmemb;
	char *np = realloc(b->p, b->len + n + 1);

	if (np == NULL)
		return 0;
	memcpy(np + b->len, ptr, n);
	b->len += n;
	np[b->len] = '\0';
	b->p = np;
	return n;
}

struct gwt_resp *
gwt_request(struct gwt *g, const char *method, const char *path, const char *body, size_t body_len,
    const char *const *headers)
{
	struct { char *p; size_t len; } rb = {0}, hb = {0};
	struct curl_slist *hl = NULL;
	struct gwt_resp *r;
	char url[1024];
	CURLcode cc;
	json_error_t jerr;

	snprintf(url, sizeof(url), "%s%s", g->url, path);
	curl_easy_reset(g->curl);
	curl_easy_setopt(g->curl, CURLOPT_URL, url);
	curl_easy_setopt(g->curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(g->curl, CURLOPT_TIMEOUT, 60L);
	curl_easy_setopt(g->curl, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(g->curl, CURLOPT_WRITEDATA, &rb);
	curl_easy_setopt(g->curl, CURLOPT_HEADERFUNCTION, collect);
	curl_easy_setopt(g->curl, CURLOPT_HEADERDATA, &hb);
	if (g->tls) {
		curl_easy_setopt(g->curl, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(g->curl, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (strcmp(method, "GET") == 0) {
		curl_easy_setopt(g->curl, CURLOPT_HTTPGET, 1L);
	} else if (body != NULL) {
		curl_easy_setopt(g->curl, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(g->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
	} else if (strcmp(method, "POST") == 0) {
		curl_easy_setopt(g->curl, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(g->curl, CURLOPT_POSTFIELDSIZE, 0L);
	}
	hl = curl_slist_append(hl, "Expect:");
	if (body != NULL)
		hl = curl_slist_append(hl, "Content-Type:"); /* none unless the caller names one */
	for (; headers != NULL && *headers != NULL; headers++)
		hl = curl_slist_append(hl, *headers);
	curl_easy_setopt(g->curl, CURLOPT_HTTPHEADER, hl);
	cc = curl_easy_perform(g->curl);
	curl_slist_free_all(hl);
	ck_assert_msg(cc == CURLE_OK, "%s %s: %s", method, path, curl_easy_strerror(cc));
	r = calloc(1, sizeof(*r));
	ck_assert_msg(r != NULL, "out of memory");
	curl_easy_getinfo(g->curl, CURLINFO_RESPONSE_CODE, &r->status);
	r->body = rb.p ? rb.p : xstrdup("");
	r->body_len = rb.len;
	r->headers = hb.p ? hb.p : xstrdup("");
	if (rb.len > 0)
		r->json = json_loadb(r->body, rb.len, 0, &jerr);
	return r;
}

struct gwt_resp *
gwt_post(struct gwt *g, const char *path, const char *token, const char *json_body)
{
	char auth[256];
	const char *hdrs[3] = {"Content-Type: application/json", NULL, NULL};
	const char *b = json_body ? json_body : "{}";

	if (token != NULL) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
		hdrs[1] = auth;
	}
	return gwt_request(g, "POST", path, b, strlen(b), hdrs);
}

struct gwt_resp *
gwt_post_json(struct gwt *g, const char *path, const char *token, json_t *body)
{
	char *text = json_dumps(body, JSON_COMPACT);
	struct gwt_resp *r;

	ck_assert_msg(text != NULL, "cannot serialise the request body");
	r = gwt_post(g, path, token, text);
	free(text);
	return r;
}

struct gwt_resp *
gwt_get(struct gwt *g, const char *path)
{
	return gwt_request(g, "GET", path, NULL, 0, NULL);
}

void
gwt_resp_free(struct gwt_resp *r)
{
	if (r == NULL)
		return;
	json_decref(r->json);
	free(r->body);
	free(r->headers);
	free(r);
}

char *
gwt_resp_header(const struct gwt_resp *r, const char *name)
{
	const char *p = r->headers;
	size_t n = strlen(name);

	while (p != NULL && *p) {
		const char *eol = strstr(p, "\r\n");
		size_t ll = eol ? (size_t)(eol - p) : strlen(p);
		if (ll > n && strncasecmp(p, name, n) == 0 && p[n] == ':') {
			const char *v = p + n + 1;
			while (*v == ' ')
				v++;
			return strndup(v, ll - (size_t)(v - p));
		}
		p = eol ? eol + 2 : NULL;
	}
	return NULL;
}

const char *
gwt_str(const struct gwt_resp *r, const char *member)
{
	json_t *v = r->json ? json_object_get(r->json, member) : NULL;

	return json_is_string(v) ? json_string_value(v) : NULL;
}

long long
gwt_int(const struct gwt_resp *r, const char *member)
{
	json_t *v = r->json ? json_object_get(r->json, member) : NULL;

	return json_is_integer(v) ? json_integer_value(v) : -1;
}

void
gwt_expect(const struct gwt_resp *r, long status, const char *code)
{
	ck_assert_msg(r->status == status, "expected HTTP %ld, got %ld: %.500s", status, r->status, r->body);
	if (code != NULL)
		ck_assert_msg(gwt_str(r, "error") != NULL && strcmp(gwt_str(r, "error"), code) == 0,
		    "expected error %s, got: %.500s", code, r->body);
}

void
gwt_post_expect(struct gwt *g, const char *path, const char *token, const char *json_body,
    long status, const char *code, const char *says)
{
	struct gwt_resp *r = gwt_post(g, path, token, json_body);
	const char *d;

	gwt_expect(r, status, code);
	if (says != NULL) {
		d = gwt_str(r, "error_description");
		ck_assert_msg(d != NULL && strstr(d, says) != NULL,
		    "%s: error_description '%s' does not say %s", path, d != NULL ? d : "(none)",
		    says);
	}
	gwt_resp_free(r);
}

char *
gwt_login(struct gwt *g, const char *username, const char *password, char **refreshp)
{
	json_t *b = json_pack("{s:s, s:s, s:s}", "grant_type", "password", "username", username,
	    "password", password);
	struct gwt_resp *r = gwt_post_json(g, "/rssp/auth/login", NULL, b);
	char *tok;

	json_decref(b);
	gwt_expect(r, 200, NULL);
	ck_assert_ptr_nonnull(gwt_str(r, "access_token"));
	tok = xstrdup(gwt_str(r, "access_token"));
	if (refreshp != NULL)
		*refreshp = xstrdup(gwt_str(r, "refresh_token"));
	gwt_resp_free(r);
	return tok;
}

static int
wait_healthy(struct gwt *g)
{
	int i, st;

	for (i = 0; i < 300; i++) { /* 30 s: ASan builds start slowly */
		CURL *c;
		long code = 0;
		char url[256];

		if (waitpid(g->pid, &st, WNOHANG) == g->pid) {
			g->pid = -1;
			return -1;
		}
		c = curl_easy_init();
		snprintf(url, sizeof(url), "%s/healthz", g->url);
		curl_easy_setopt(c, CURLOPT_URL, url);
		curl_easy_setopt(c, CURLOPT_TIMEOUT, 2L);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
		curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
		{
			struct { char *p; size_t len; } sink = {0};
			curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
			if (curl_easy_perform(c) == CURLE_OK)
				curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
			free(sink.p);
		}
		curl_easy_cleanup(c);
		if (code == 200)
			return 0;
		usleep(100 * 1000);
	}
	return -1;
}

struct gwt *
gwt_start(const struct gwt_opts *o)
{
	struct gwt *g = calloc(1, sizeof(*g));
	char *name, *admin_url, pwpath[600], cmd[256];
	const char *serve_args[] = {"rssp-gateway", "serve", NULL};
	FILE *f;
	int st;

	ck_assert_msg(g != NULL, "out of memory");
	curl_global_init(CURL_GLOBAL_DEFAULT);
	g->curl = curl_easy_init();
	g->pid = -1;
	if (o != NULL && o->db_name != NULL) {
		snprintf(g->db_name, sizeof(g->db_name), "%s", o->db_name);
	} else {
		name = gwt_unique("gwt");
		snprintf(g->db_name, sizeof(g->db_name), "%s", name);
		free(name);
		snprintf(cmd, sizeof(cmd), "CREATE DATABASE \"%s\"", g->db_name);
		exec_sql(base_db_url(), cmd);
	}
	g->db_url = url_with_db(base_db_url(), g->db_name);
	g->port = free_port();
	g->tls = o != NULL && o->tls_cert != NULL;
	snprintf(g->url, sizeof(g->url), "%s://127.0.0.1:%u", g->tls ? "https" : "http", g->port);
	snprintf(g->out_path, sizeof(g->out_path), "%s/%s_%u.out", work_dir(), g->db_name, g->port);
	snprintf(g->err_path, sizeof(g->err_path), "%s/%s_%u.err", work_dir(), g->db_name, g->port);
	snprintf(g->admin_email, sizeof(g->admin_email), "admin@rssp.test");
	snprintf(g->admin_password, sizeof(g->admin_password), "admin passphrase %u", g->port);

	if (o == NULL || !o->no_admin) {
		const char *args[] = {"rssp-gateway", "bootstrap-admin", "--email", g->admin_email, NULL};
		char *out;
		snprintf(pwpath, sizeof(pwpath), "%s/%s.pw", work_dir(), g->db_name);
		f = fopen(pwpath, "w");
		ck_assert_msg(f != NULL, "cannot write %s", pwpath);
		fprintf(f, "%s\n", g->admin_password);
		fclose(f);
		out = run_gateway_cmd(g, o, args, pwpath, &st);
		ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "bootstrap-admin failed (see %s)", g->err_path);
		out[strcspn(out, "\n")] = '\0';
		ck_assert_msg(strlen(out) == 36, "bootstrap-admin printed '%s'", out);
		g->admin_id = out;
	}

	g->pid = fork();
	ck_assert_int_ge(g->pid, 0);
	if (g->pid == 0) {
		int out = open(g->out_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
		int err = open(g->err_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
		prctl(PR_SET_PDEATHSIG, SIGTERM); /* never outlive the test */
		dup2(out, 1);
		dup2(err, 2);
		child_env(g, o);
		execv(gateway_bin(), (char *const *)serve_args);
		_exit(127);
	}
	ck_assert_msg(wait_healthy(g) == 0, "rssp-gateway did not become healthy (see %s)", g->err_path);
	if (g->admin_id != NULL) {
		g->admin_token = gwt_login(g, g->admin_email, g->admin_password, NULL);
	}
	(void)admin_url;
	return g;
}

int
gwt_stop_status(struct gwt *g)
{
	int st = -1, i;

	if (g->pid > 0) {
		kill(g->pid, SIGTERM);
		for (i = 0; i < 100; i++) {
			if (waitpid(g->pid, &st, WNOHANG) == g->pid)
				break;
			usleep(100 * 1000);
		}
		if (i == 100) {
			kill(g->pid, SIGKILL);
			waitpid(g->pid, &st, 0);
			ck_abort_msg("rssp-gateway did not stop within 10 s of SIGTERM");
		}
		g->pid = -1;
	}
	curl_easy_cleanup(g->curl);
	free(g->db_url);
	free(g->admin_id);
	free(g->admin_token);
	free(g);
	return st;
}

void
gwt_stop(struct gwt *g)
{
	int st;

	if (g == NULL)
		return;
	st = gwt_stop_status(g);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "rssp-gateway exited with status 0x%x", st);
}

const char *gwt_url(const struct gwt *g) { return g->url; }
const char *gwt_db_name(const struct gwt *g) { return g->db_name; }
const char *gwt_db_url(const struct gwt *g) { return g->db_url; }
const char *gwt_admin_email(const struct gwt *g) { return g->admin_email; }
const char *gwt_admin_password(const struct gwt *g) { return g->admin_password; }
const char *gwt_admin_id(const struct gwt *g) { return g->admin_id; }
const char *gwt_admin_token(const struct gwt *g) { return g->admin_token; }
const char *gwt_stdout_path(const struct gwt *g) { return g->out_path; }
const char *gwt_stderr_path(const struct gwt *g) { return g->err_path; }

char *
gwt_sql(struct gwt *g, const char *sql, ...)
{
	const char *params[16];
	int n = 0;
	va_list ap;
	PGconn *c;
	PGresult *res;
	char *out = NULL;

	va_start(ap, sql);
	while (n < 16 && (params[n] = va_arg(ap, const char *)) != NULL)
		n++;
	va_end(ap);
	c = PQconnectdb(g->db_url);
	ck_assert_msg(PQstatus(c) == CONNECTION_OK, "cannot connect: %s", PQerrorMessage(c));
	res = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
	ck_assert_msg(PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK,
	    "%s: %s", sql, PQerrorMessage(c));
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0 && !PQgetisnull(res, 0, 0))
		out = xstrdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	PQfinish(c);
	return out;
}

char *
gwt_outbox_secret(struct gwt *g, const char *recipient, const char *kind)
{
	json_t *b = json_pack("{s:s, s:s, s:i}", "recipient", recipient, "kind", kind, "maxResults", 1);
	struct gwt_resp *r = gwt_post_json(g, "/rssp/admin/outbox/list", g->admin_token, b);
	json_t *m, *d, *v;
	char *out = NULL;

	json_decref(b);
	gwt_expect(r, 200, NULL);
	m = json_array_get(json_object_get(r->json, "messages"), 0);
	d = json_object_get(m, "data");
	v = json_object_get(d, "token");
	if (!json_is_string(v))
		v = json_object_get(d, "code");
	if (json_is_string(v))
		out = xstrdup(json_string_value(v));
	gwt_resp_free(r);
	return out;
}

void
gwt_rp_create(struct gwt *g, const char *name, char **client_idp, char **secretp,
    char **account_idp)
{
	json_t *b = json_pack("{s:s}", "name", name);
	struct gwt_resp *r;

	ck_assert_ptr_nonnull(b);
	r = gwt_post_json(g, "/rssp/admin/clients/create", gwt_admin_token(g), b);
	gwt_expect(r, 201, NULL);
	ck_assert_ptr_nonnull(gwt_str(r, "clientID"));
	ck_assert_ptr_nonnull(gwt_str(r, "secretKey"));
	if (client_idp != NULL)
		*client_idp = strdup(gwt_str(r, "clientID"));
	if (secretp != NULL)
		*secretp = strdup(gwt_str(r, "secretKey"));
	if (account_idp != NULL)
		*account_idp = strdup(gwt_str(r, "userID"));
	gwt_resp_free(r);
	json_decref(b);
}

char *
gwt_register(struct gwt *g, const char *token, const char *email, const char *mobile,
    const char *full_name)
{
	json_t *b = json_pack("{s:s, s:s, s:s}", "email", email, "mobile", mobile,
	    "fullName", full_name);
	struct gwt_resp *r;
	char *id;

	ck_assert_ptr_nonnull(b);
	r = gwt_post_json(g, "/rssp/users/register", token, b);
	gwt_expect(r, 201, NULL);
	ck_assert_str_eq(gwt_str(r, "status"), "PENDING_CONFIRMATION");
	id = strdup(gwt_str(r, "userID"));
	gwt_resp_free(r);
	json_decref(b);
	return id;
}

void
gwt_confirm(struct gwt *g, const char *email, const char *passphrase)
{
	char *tok = gwt_outbox_secret(g, email, "confirmation");
	json_t *b;
	struct gwt_resp *r;

	ck_assert_msg(tok != NULL, "no confirmation for %s in the outbox", email);
	b = json_pack("{s:s, s:s}", "token", tok, "passphrase", passphrase);
	r = gwt_post_json(g, "/rssp/users/confirm", NULL, b);
	gwt_expect(r, 200, NULL);
	ck_assert_str_eq(gwt_str(r, "status"), "ACTIVE");
	gwt_resp_free(r);
	json_decref(b);
	free(tok);
}
