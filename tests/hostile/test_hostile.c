/* test_hostile.c - the gateway under hostile load (issue 10), over real HTTP on loopback
 * against a real PostgreSQL: lockout races, login spellings, non-UTF-8 names, tenant
 * answers, a login flood, long-poll caps, per-address connections and the whole-request
 * deadline, strict framing and paths, ids and names refused at the door.
 * Every load here is bounded in count and time and stops by itself. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <openssl/evp.h>

#include "gwtest.h"

/* ---- a small raw HTTP client (thread-safe: the gwtest one is not) ------------------- */

static unsigned
port_of(struct gwt *g)
{
	const char *c = strrchr(gwt_url(g), ':');

	return (unsigned)atoi(c + 1);
}

static double
now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* A connection to the gateway from source address src (NULL: any), with a receive
 * timeout of rcv_s seconds. -1 when refused. */
static int
dial(struct gwt *g, const char *src, int rcv_s)
{
	struct sockaddr_in a = {0}, b = {0};
	struct timeval tv = {rcv_s, 0};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	if (src != NULL) {
		b.sin_family = AF_INET;
		inet_pton(AF_INET, src, &b.sin_addr);
		ck_assert_int_eq(bind(fd, (struct sockaddr *)&b, sizeof(b)), 0);
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port_of(g));
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void
send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

/* Reads until the peer closes (or the receive timeout): returns the bytes (malloc'd)
 * and *closedp = 1 when the peer closed. */
static char *
read_all(int fd, int *closedp)
{
	size_t n = 0, cap = 4096;
	char *buf = malloc(cap);

	*closedp = 0;
	for (;;) {
		ssize_t r;
		if (n + 1024 > cap)
			buf = realloc(buf, cap *= 2);
		r = recv(fd, buf + n, cap - n - 1, 0);
		if (r == 0) {
			*closedp = 1;
			break;
		}
		if (r < 0) {
			if (errno == ECONNRESET)
				*closedp = 1;
			break;
		}
		n += (size_t)r;
	}
	buf[n] = '\0';
	return buf;
}

static long
status_of(const char *resp)
{
	return strncmp(resp, "HTTP/1.", 7) == 0 ? strtol(resp + 9, NULL, 10) : -1;
}

/* Sends raw bytes on a new connection and reads the answer until the server closes
 * (within rcv_s). Returns the status (-1 for none); *closedp as read_all. */
static long
raw(struct gwt *g, const char *src, const char *bytes, size_t len, int rcv_s, char **respp, int *closedp)
{
	int fd = dial(g, src, rcv_s), closed;
	char *resp;
	long st;

	if (fd < 0)
		return -2;
	send_all(fd, bytes, len);
	resp = read_all(fd, &closed);
	close(fd);
	st = status_of(resp);
	if (closedp != NULL)
		*closedp = closed;
	if (respp != NULL)
		*respp = resp;
	else
		free(resp);
	return st;
}

/* POST path with a JSON body and extra header lines ("Name: v\r\n..."), Connection: close. */
static long
post(struct gwt *g, const char *src, const char *path, const char *hdrs, const char *body, char **respp)
{
	char *req = NULL;
	long st;
	int n = asprintf(&req, "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
	    "Content-Type: application/json\r\n%sContent-Length: %zu\r\n\r\n%s", path, hdrs ? hdrs : "",
	    strlen(body), body);

	ck_assert_int_gt(n, 0);
	st = raw(g, src, req, (size_t)n, 30, respp, NULL);
	free(req);
	return st;
}

static long
login_json(struct gwt *g, const char *xff, const char *user, const char *pass)
{
	json_t *b = json_pack("{s:s, s:s, s:s}", "grant_type", "password", "username", user, "password", pass);
	char *body = json_dumps(b, JSON_COMPACT), hdr[128] = "";
	long st;

	if (xff != NULL)
		snprintf(hdr, sizeof(hdr), "X-Forwarded-For: %s\r\n", xff);
	st = post(g, NULL, "/rssp/auth/login", hdr, body, NULL);
	free(body);
	json_decref(b);
	return st;
}

/* ---- accounts ---------------------------------------------------------------------- */

static char *
email_new(const char *prefix)
{
	char *u = gwt_unique(prefix), *e = NULL;

	ck_assert(asprintf(&e, "%s@example.org", u) > 0);
	free(u);
	return e;
}

/* A confirmed signer registered by token (admin or rp); returns its id. */
static char *
signer_make(struct gwt *g, const char *token, const char *email, const char *pass)
{
	json_t *b = json_pack("{s:s, s:s, s:s}", "email", email, "mobile", "+41791234567", "fullName", "Ada");
	struct gwt_resp *r = gwt_post_json(g, "/rssp/users/register", token, b);
	char *id, *tok;

	gwt_expect(r, 201, NULL);
	id = strdup(gwt_str(r, "userID"));
	gwt_resp_free(r);
	json_decref(b);
	tok = gwt_outbox_secret(g, email, "confirmation");
	ck_assert_ptr_nonnull(tok);
	b = json_pack("{s:s, s:s}", "token", tok, "passphrase", pass);
	r = gwt_post_json(g, "/rssp/users/confirm", NULL, b);
	gwt_expect(r, 200, NULL);
	gwt_resp_free(r);
	json_decref(b);
	free(tok);
	return id;
}

/* A new rp client, logged in; returns its token (and account id). */
static char *
rp_make(struct gwt *g, char **account_idp)
{
	struct gwt_resp *r = gwt_post(g, "/rssp/admin/clients/create", gwt_admin_token(g), "{\"name\":\"Bank\"}");
	char *tok;

	gwt_expect(r, 201, NULL);
	tok = gwt_login(g, gwt_str(r, "clientID"), gwt_str(r, "secretKey"), NULL);
	if (account_idp != NULL)
		*account_idp = strdup(gwt_str(r, "userID"));
	gwt_resp_free(r);
	return tok;
}

/* ---- 1. lockout races ----------------------------------------------------------------- */

struct login_job {
	struct gwt *g;
	const char *user, *pass, *xff;
	long status;
	double secs;
};

static void *
login_thread(void *arg)
{
	struct login_job *j = arg;
	double t0 = now_s();

	j->status = login_json(j->g, j->xff, j->user, j->pass);
	j->secs = now_s() - t0;
	return NULL;
}

START_TEST(test_concurrent_wrong_passphrases_are_evaluated_at_most_threshold_times)
{
	/* real argon2id cost, so that the 15 attempts overlap */
	static const char *env[] = {"RSSP_LOGIN_BURST=1000", "RSSP_LOGIN_QUEUE=64", "RSSP_LOCKOUT_THRESHOLD=5",
	    "RSSP_ARGON2_OPSLIMIT=2", "RSSP_ARGON2_MEMLIMIT_KIB=19456", NULL};
	struct gwt_opts o = {.env = env};
	struct gwt *g = gwt_start(&o);
	char *email = email_new("race");
	char *id = signer_make(g, gwt_admin_token(g), email, "correct horse battery");
	struct login_job jobs[16];
	pthread_t th[16];
	int i, n401 = 0, n423 = 0, n200 = 0;

	for (i = 0; i < 15; i++) {
		jobs[i] = (struct login_job){.g = g, .user = email, .pass = "wrong passphrase!"};
		ck_assert_int_eq(pthread_create(&th[i], NULL, login_thread, &jobs[i]), 0);
	}
	for (i = 0; i < 15; i++) {
		pthread_join(th[i], NULL);
		n401 += jobs[i].status == 401;
		n423 += jobs[i].status == 423;
	}
	ck_assert_msg(n401 <= 5, "%d wrong passphrases were evaluated (threshold 5)", n401);
	ck_assert_int_eq(n401 + n423, 15);
	/* the count is reached: the right passphrase is refused too */
	ck_assert_int_eq(login_json(g, NULL, email, "correct horse battery"), 423);
	char *fl = gwt_sql(g, "SELECT failed_logins::text || ' ' || status FROM accounts WHERE id = $1::uuid", id, NULL);
	ck_assert_str_eq(fl, "5 LOCKED");
	free(fl);

	/* the same burst with the right passphrase inside it: at most 5 evaluations fail,
	 * and the right one either came first (200) or finds the account locked (423) */
	free(gwt_sql(g, "UPDATE accounts SET status = 'ACTIVE', failed_logins = 0, locked_until = NULL"
	    " WHERE id = $1::uuid", id, NULL));
	n401 = n423 = 0;
	for (i = 0; i < 16; i++) {
		jobs[i] = (struct login_job){.g = g, .user = email,
		    .pass = i == 8 ? "correct horse battery" : "wrong passphrase!"};
		ck_assert_int_eq(pthread_create(&th[i], NULL, login_thread, &jobs[i]), 0);
	}
	for (i = 0; i < 16; i++) {
		pthread_join(th[i], NULL);
		if (i == 8) {
			ck_assert_msg(jobs[i].status == 200 || jobs[i].status == 423, "right passphrase: %ld", jobs[i].status);
			n200 += jobs[i].status == 200;
		} else {
			n401 += jobs[i].status == 401;
			n423 += jobs[i].status == 423;
		}
	}
	ck_assert_msg(n401 <= 5, "%d wrong passphrases were evaluated (threshold 5)", n401);
	ck_assert_int_eq(n401 + n423, 15);
	free(email);
	free(id);
	gwt_stop(g);
}
END_TEST

START_TEST(test_concurrent_right_passphrases_all_log_in)
{
	/* more right passphrases at once than the threshold has places: those that find
	 * every place held by evaluations in progress wait for one, none is refused */
	static const char *env[] = {"RSSP_LOGIN_BURST=1000", "RSSP_LOGIN_QUEUE=64", "RSSP_LOCKOUT_THRESHOLD=5",
	    "RSSP_ARGON2_OPSLIMIT=2", "RSSP_ARGON2_MEMLIMIT_KIB=19456", NULL};
	struct gwt_opts o = {.env = env};
	struct gwt *g = gwt_start(&o);
	char *email = email_new("crowd");
	char *id = signer_make(g, gwt_admin_token(g), email, "correct horse battery");
	struct login_job jobs[12];
	pthread_t th[12];
	int i;

	for (i = 0; i < 12; i++) {
		jobs[i] = (struct login_job){.g = g, .user = email, .pass = "correct horse battery"};
		ck_assert_int_eq(pthread_create(&th[i], NULL, login_thread, &jobs[i]), 0);
	}
	for (i = 0; i < 12; i++) {
		pthread_join(th[i], NULL);
		ck_assert_msg(jobs[i].status == 200, "right passphrase %d answered %ld", i, jobs[i].status);
	}
	char *fl = gwt_sql(g, "SELECT failed_logins::text || ' ' || status FROM accounts WHERE id = $1::uuid", id, NULL);
	ck_assert_str_eq(fl, "0 ACTIVE");
	free(fl);
	free(email);
	free(id);
	gwt_stop(g);
}
END_TEST

/* ---- 2. one spelling per account for the limits ------------------------------------ */

START_TEST(test_other_spellings_of_a_login_share_its_bucket_or_are_refused)
{
	/* each attempt from its own address (X-Forwarded-For): only the per-account bucket
	 * (3 attempts) can stop them */
	static const char *env[] = {"RSSP_TRUST_FORWARDED=1", "RSSP_LOGIN_BURST=3", "RSSP_LOGIN_RATE=1",
	    "RSSP_LOCKOUT_THRESHOLD=100", NULL};
	struct gwt_opts o = {.env = env};
	struct gwt *g = gwt_start(&o);
	char *u = gwt_unique("ki"), *email = NULL, *upper, *kelvin = NULL, *idot = NULL, *p;
	char xff[32];
	int i;

	ck_assert(asprintf(&email, "%s@example.org", u) > 0);
	free(signer_make(g, gwt_admin_token(g), email, "correct horse battery"));
	upper = strdup(email);
	for (p = upper; *p; p++)
		if (*p >= 'a' && *p <= 'z')
			*p = (char)(*p - 32);
	/* U+212A KELVIN SIGN for the 'k', U+0130 LATIN CAPITAL LETTER I WITH DOT ABOVE for the 'i' */
	ck_assert(asprintf(&kelvin, "\xe2\x84\xaa%s@example.org", u + 1) > 0);
	ck_assert(asprintf(&idot, "k\xc4\xb0%s@example.org", u + 2) > 0);
	for (i = 0; i < 3; i++) {
		snprintf(xff, sizeof(xff), "10.0.0.%d", i + 1);
		ck_assert_int_eq(login_json(g, xff, email, "wrong passphrase!"), 401);
	}
	/* the account's bucket is empty, whatever the case of the name */
	ck_assert_int_eq(login_json(g, "10.0.1.1", upper, "wrong passphrase!"), 429);
	ck_assert_int_eq(login_json(g, "10.0.1.2", email, "correct horse battery"), 429);
	/* spellings outside the rule never reach an account, nor a fresh bucket */
	ck_assert_int_eq(login_json(g, "10.0.2.1", kelvin, "correct horse battery"), 400);
	ck_assert_int_eq(login_json(g, "10.0.2.2", idot, "correct horse battery"), 400);
	free(u);
	free(email);
	free(upper);
	free(kelvin);
	free(idot);
	gwt_stop(g);
}
END_TEST

/* ---- 4. non-UTF-8 user names ----------------------------------------------------------- */

START_TEST(test_non_utf8_user_names_get_400_not_500)
{
	static const char *env[] = {"RSSP_LOGIN_BURST=1000", NULL};
	struct gwt_opts o = {.env = env};
	struct gwt *g = gwt_start(&o);
	const char raw_cred[] = "\xff\xfe\xc3(:some secret";
	unsigned char b64[64];
	char *req = NULL, *resp = NULL;
	int n;

	EVP_EncodeBlock(b64, (const unsigned char *)raw_cred, (int)strlen(raw_cred));
	n = asprintf(&req, "POST /rssp/auth/login HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
	    "Authorization: Basic %s\r\nContent-Length: 0\r\n\r\n", b64);
	ck_assert_int_eq(raw(g, NULL, req, (size_t)n, 10, &resp, NULL), 400);
	ck_assert_ptr_nonnull(strstr(resp, "'username'"));
	free(req);
	free(resp);
	n = asprintf(&req, "POST /rssp/auth/login HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
	    "Authorization: Digest username=\"\xff\xfe\xc3(\", realm=\"rssp\", nonce=\"abcdef\", "
	    "uri=\"/rssp/auth/login\", algorithm=SHA-256, response=\"00\", qop=auth, nc=00000001, "
	    "cnonce=\"c\"\r\nContent-Length: 0\r\n\r\n");
	long st = raw(g, NULL, req, (size_t)n, 10, &resp, NULL);
	ck_assert_msg(st == 400 || st == 401, "Digest with a non-UTF-8 name: %ld", st);
	free(req);
	free(resp);
	/* nothing was logged as an error */
	FILE *f = fopen(gwt_stderr_path(g), "r");
	char line[2048];
	while (f != NULL && fgets(line, sizeof(line), f) != NULL)
		ck_assert_msg(strstr(line, "\"error\"") == NULL && strstr(line, " error ") == NULL,
		    "error logged: %s", line);
	if (f != NULL)
		fclose(f);
	gwt_stop(g);
}
END_TEST

/* ---- 5. the same answers: another tenant's user, a disabled account ------------------ */

START_TEST(test_another_tenants_user_is_answered_as_an_unknown_one)
{
	static const char *env[] = {"RSSP_LOGIN_BURST=1000", NULL};
	struct gwt_opts o = {.env = env};
	struct gwt *g = gwt_start(&o);
	char *rp_a = rp_make(g, NULL), *rp_b = rp_make(g, NULL);
	char *email = email_new("tenant");
	json_t *b = json_pack("{s:s, s:s, s:s}", "email", email, "mobile", "+41791234567", "fullName", "Ada");
	struct gwt_resp *r = gwt_post_json(g, "/rssp/users/register", rp_a, b), *r2;
	char *id, body[128];

	gwt_expect(r, 201, NULL);
	id = strdup(gwt_str(r, "userID"));
	gwt_resp_free(r);
	json_decref(b);
	snprintf(body, sizeof(body), "{\"userID\":\"%s\"}", id);
	r = gwt_post(g, "/rssp/users/status", rp_b, body);
	r2 = gwt_post(g, "/rssp/users/status", rp_b, "{\"userID\":\"00000000-0000-4000-8000-000000000000\"}");
	gwt_expect(r, 404, "not_found");
	gwt_expect(r2, 404, "not_found");
	ck_assert_str_eq(gwt_str(r, "error_description"), gwt_str(r2, "error_description"));
	gwt_resp_free(r);
	gwt_resp_free(r2);
	free(rp_a);
	free(rp_b);
	free(email);
	free(id);
	gwt_stop(g);
}
END_TEST

START_TEST(test_a_disabled_account_answers_401_to_any_passphrase_and_locks)
{
	static const char *env[] = {"RSSP_LOGIN_BURST=1000", "RSSP_LOCKOUT_THRESHOLD=3", NULL};
	struct gwt_opts o = {.env = env};
	struct gwt *g = gwt_start(&o);
	char *email = email_new("dis"), *id = signer_make(g, gwt_admin_token(g), email, "correct horse battery");
	char body[128];
	char *right = NULL, *wrong = NULL;
	long st;

	snprintf(body, sizeof(body), "{\"userID\":\"%s\"}", id);
	gwt_post_expect(g, "/rssp/admin/users/disable", gwt_admin_token(g), body, 200, NULL, NULL);
	json_t *bw = json_pack("{s:s,s:s,s:s}", "grant_type", "password", "username", email, "password", "wrong passphrase!");
	json_t *br = json_pack("{s:s,s:s,s:s}", "grant_type", "password", "username", email, "password", "correct horse battery");
	char *jw = json_dumps(bw, JSON_COMPACT), *jr = json_dumps(br, JSON_COMPACT);
	st = post(g, NULL, "/rssp/auth/login", "", jr, &right);
	ck_assert_int_eq(st, 401);
	st = post(g, NULL, "/rssp/auth/login", "", jw, &wrong);
	ck_assert_int_eq(st, 401);
	/* the same body, word for word */
	ck_assert_str_eq(strstr(right, "\r\n\r\n"), strstr(wrong, "\r\n\r\n"));
	free(right);
	free(wrong);
	/* lockout applies: the third failure was the last evaluated */
	ck_assert_int_eq(post(g, NULL, "/rssp/auth/login", "", jr, NULL), 401);
	ck_assert_int_eq(post(g, NULL, "/rssp/auth/login", "", jr, NULL), 423);
	ck_assert_int_eq(post(g, NULL, "/rssp/auth/login", "", jw, NULL), 423);
	free(jw);
	free(jr);
	json_decref(bw);
	json_decref(br);
	free(email);
	free(id);
	gwt_stop(g);
}
END_TEST

/* ---- 6. a login flood holds no database connection; signing-side requests go on --- */

struct status_job {
	struct gwt *g;
	const char *hdr;
	const char *body;
	double stop_at;
	double lat[4096];
	int n, bad;
};

static void *
status_thread(void *arg)
{
	struct status_job *j = arg;

	while (now_s() < j->stop_at && j->n < 4096) {
		double t0 = now_s();
		long st = post(j->g, NULL, "/rssp/users/status", j->hdr, j->body, NULL);
		j->lat[j->n++] = now_s() - t0;
		if (st != 200)
			j->bad++;
		usleep(20000);
	}
	return NULL;
}

static int
cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double
pct(double *v, int n, double p)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_d);
	return n ? v[(int)((n - 1) * p)] : 0;
}

START_TEST(test_a_login_flood_leaves_database_connections_to_others)
{
	/* 4 database connections; 120 logins from 60 addresses at real argon2id cost */
	static const char *env[] = {"RSSP_TRUST_FORWARDED=1", "RSSP_LOGIN_BURST=10", "RSSP_DB_POOL=4", "RSSP_CONN_PER_ADDRESS=0",
	    "RSSP_ARGON2_OPSLIMIT=2", "RSSP_ARGON2_MEMLIMIT_KIB=19456", "RSSP_ARGON2_CONCURRENCY=1", NULL};
	struct gwt_opts o = {.env = env};
	struct gwt *g = gwt_start(&o);
	char *rp_acct, *rp = rp_make(g, &rp_acct), hdr[256], body[128];
	static struct status_job sj;
	static struct login_job lj[120];
	static char xffs[120][32], names[120][40];
	pthread_t st, th[120];
	int i, n200 = 0, nbusy = 0, nother = 0;
	double idle_p99, flood_p99, idle_max;

	snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\n", rp);
	snprintf(body, sizeof(body), "{\"userID\":\"%s\"}", rp_acct);
	/* idle */
	memset(&sj, 0, sizeof(sj));
	sj.g = g;
	sj.hdr = hdr;
	sj.body = body;
	sj.stop_at = now_s() + 1.5;
	status_thread(&sj);
	ck_assert_int_eq(sj.bad, 0);
	idle_p99 = pct(sj.lat, sj.n, 0.99);
	idle_max = sj.lat[sj.n - 1];
	/* flood */
	memset(&sj, 0, sizeof(sj));
	sj.g = g;
	sj.hdr = hdr;
	sj.body = body;
	sj.stop_at = now_s() + 4;
	for (i = 0; i < 120; i++) {
		snprintf(xffs[i], sizeof(xffs[i]), "10.9.%d.%d", i / 2, i % 2 + 1);
		/* unknown names: each costs an argon2id against the dummy hash, none locks */
		snprintf(names[i], sizeof(names[i]), "nobody-%d@example.org", i);
		lj[i] = (struct login_job){.g = g, .user = names[i], .pass = "wrong guess", .xff = xffs[i]};
	}
	ck_assert_int_eq(pthread_create(&st, NULL, status_thread, &sj), 0);
	for (i = 0; i < 120; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, login_thread, &lj[i]), 0);
	for (i = 0; i < 120; i++) {
		pthread_join(th[i], NULL);
		if (lj[i].status == 401)
			n200++;
		else if (lj[i].status == 503 || lj[i].status == 429)
			nbusy++;
		else
			nother++;
	}
	pthread_join(st, NULL);
	flood_p99 = pct(sj.lat, sj.n, 0.99);
	printf("users/status by an rp: idle p99 %.1f ms (max %.1f), during 120 logins p99 %.1f ms (%d calls);"
	    " logins evaluated %d, turned away %d\n", idle_p99 * 1e3, idle_max * 1e3, flood_p99 * 1e3, sj.n,
	    n200, nbusy);
	ck_assert_int_eq(nother, 0);
	ck_assert_msg(sj.bad == 0, "%d users/status calls failed during the login flood", sj.bad);
	ck_assert_msg(nbusy > 0, "no login was turned away by the bounded login queue");
	/* no database wait: well below the pool's 5 s timeout (shared 2-core machine: CPU
	 * contention with argon2id remains) */
	ck_assert_msg(flood_p99 < 1.0, "users/status p99 %.3f s during the login flood", flood_p99);
	free(rp);
	free(rp_acct);
	gwt_stop(g);
}
END_TEST

/* ---- 7. long-polls of one rp leave capacity to logins and to other tenants ---------- */

/* A PENDING authorization request of requester rp_acct, straight in the database (no
 * engine needed to wait on it); returns its id. */
static char *
pending_request(struct gwt *g, const char *rp_acct)
{
	char *email = email_new("lp"), *uid = signer_make(g, gwt_admin_token(g), email, "correct horse battery");
	char *dev, *cred, *id;

	dev = gwt_sql(g, "INSERT INTO devices (user_id, device_uuid, name, platform, kak_spki, kak_algo,"
	    " sign_algo, sha_algo, status) VALUES ($1::uuid, $2, 'phone', 'test', '\\x00'::bytea, 1, 'ECDSA',"
	    " 'sha256', 'ACTIVE') RETURNING id", uid, email, NULL);
	cred = gwt_sql(g, "INSERT INTO credentials (owner_id, key_algo, validity_days, status)"
	    " VALUES ($1::uuid, 'ecp256', 365, 'NEW') RETURNING id", uid, NULL);
	id = gwt_sql(g, "INSERT INTO auth_requests (credential_id, owner_id, device_id, requester_id, rp_name,"
	    " description, hash_algo, hashes, num_signatures, remaining, nonce, expires_at, auth_data, status)"
	    " VALUES ($1::uuid, $2::uuid, $3::uuid, $4::uuid, 'Bank', 'x', 1, '\\x00'::bytea, 1, 1,"
	    " '\\x00'::bytea, extract(epoch FROM now())::bigint + 600, '\\x00'::bytea, 'PENDING') RETURNING id",
	    cred, uid, dev, rp_acct, NULL);
	ck_assert_ptr_nonnull(id);
	free(email);
	free(uid);
	free(dev);
	free(cred);
	return id;
}

struct poll_job {
	struct gwt *g;
	char hdr[256];
	char body[160];
	long status;
	double secs;
};

static void *
poll_thread(void *arg)
{
	struct poll_job *j = arg;
	double t0 = now_s();

	j->status = post(j->g, NULL, "/rssp/credentials/authorizeCheck", j->hdr, j->body, NULL);
	j->secs = now_s() - t0;
	return NULL;
}

START_TEST(test_long_polls_of_one_rp_leave_capacity_to_logins_and_other_tenants)
{
	/* 16 long threads: waits may take 8 of them in all, 4 per client */
	static const char *env[] = {"RSSP_LOGIN_BURST=1000", "RSSP_LONG_THREADS=16", "RSSP_WAITS_PER_CLIENT=4",
	    "RSSP_CONN_PER_ADDRESS=0", NULL};
	struct gwt_opts o = {.env = env};
	struct gwt *g = gwt_start(&o);
	char *a_acct, *c_acct, *d_acct, *rp_a = rp_make(g, &a_acct), *rp_c = rp_make(g, &c_acct),
	    *rp_d = rp_make(g, &d_acct);
	char *req_a = pending_request(g, a_acct), *req_c = pending_request(g, c_acct),
	    *req_d = pending_request(g, d_acct);
	static struct poll_job jobs[60];
	pthread_t th[60];
	struct poll_job dj;
	double idle = 0, worst = 0, t0;
	int i, waited_a = 0, refused_a = 0, waited_c = 0;

	for (i = 0; i < 3; i++) {
		t0 = now_s();
		ck_assert_int_eq(login_json(g, NULL, gwt_admin_email(g), gwt_admin_password(g)), 200);
		if (now_s() - t0 > idle)
			idle = now_s() - t0;
	}
	/* rp A: 50 long-polls of 4 s at once; rp C: 10 */
	for (i = 0; i < 60; i++) {
		jobs[i].g = g;
		snprintf(jobs[i].hdr, sizeof(jobs[i].hdr), "Authorization: Bearer %s\r\n", i < 50 ? rp_a : rp_c);
		snprintf(jobs[i].body, sizeof(jobs[i].body), "{\"requestID\":\"%s\",\"wait\":4}", i < 50 ? req_a : req_c);
		ck_assert_int_eq(pthread_create(&th[i], NULL, poll_thread, &jobs[i]), 0);
	}
	usleep(700 * 1000);
	/* all 8 places are taken: rp D's wait is turned away, its plain check is not */
	dj.g = g;
	snprintf(dj.hdr, sizeof(dj.hdr), "Authorization: Bearer %s\r\n", rp_d);
	snprintf(dj.body, sizeof(dj.body), "{\"requestID\":\"%s\",\"wait\":4}", req_d);
	poll_thread(&dj);
	ck_assert_int_eq(dj.status, 503);
	snprintf(dj.body, sizeof(dj.body), "{\"requestID\":\"%s\"}", req_d);
	poll_thread(&dj);
	ck_assert_int_eq(dj.status, 200);
	/* another tenant's logins go on at their usual pace */
	for (i = 0; i < 5; i++) {
		t0 = now_s();
		ck_assert_int_eq(login_json(g, NULL, gwt_admin_email(g), gwt_admin_password(g)), 200);
		if (now_s() - t0 > worst)
			worst = now_s() - t0;
	}
	for (i = 0; i < 60; i++) {
		pthread_join(th[i], NULL);
		if (i < 50) {
			waited_a += jobs[i].status == 200 && jobs[i].secs > 3.0;
			refused_a += jobs[i].status == 429;
		} else {
			waited_c += jobs[i].status == 200 && jobs[i].secs > 3.0;
		}
	}
	printf("login of another tenant: idle max %.1f ms, during 60 long-polls max %.1f ms;"
	    " rp A waited %d refused %d, rp C waited %d\n", idle * 1e3, worst * 1e3, waited_a, refused_a, waited_c);
	ck_assert_int_eq(waited_a, 4);
	ck_assert_int_eq(refused_a, 46);
	ck_assert_int_eq(waited_c, 4);
	ck_assert_msg(worst < 1.5, "a login took %.2f s during the long-poll flood", worst);
	free(rp_a);
	free(rp_c);
	free(rp_d);
	free(a_acct);
	free(c_acct);
	free(d_acct);
	free(req_a);
	free(req_c);
	free(req_d);
	gwt_stop(g);
}
END_TEST

/* ---- 9. per-address connections, whole-request deadline ------------------------------- */

START_TEST(test_one_address_cannot_take_every_connection)
{
	static const char *env[] = {"RSSP_CONN_PER_ADDRESS=8", NULL};
	struct gwt_opts o = {.env = env};
	struct gwt *g = gwt_start(&o);
	int fds[40], i, opened = 0, closed;
	const char get[] = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

	/* 40 idle connections from 127.0.0.3: the ninth and later are closed at once */
	for (i = 0; i < 40; i++)
		fds[i] = dial(g, "127.0.0.3", 2);
	for (i = 0; i < 40; i++) {
		char c;
		struct pollfd p = {fds[i], POLLIN, 0};
		if (fds[i] < 0)
			continue;
		/* a connection the server kept open has nothing to read */
		if (poll(&p, 1, i < 8 ? 50 : 1000) == 0 || recv(fds[i], &c, 1, MSG_DONTWAIT) > 0)
			opened++;
	}
	ck_assert_msg(opened == 8, "%d idle connections of one address stayed open (cap 8)", opened);
	/* another address is served meanwhile */
	ck_assert_int_eq(raw(g, "127.0.0.4", get, sizeof(get) - 1, 5, NULL, &closed), 200);
	for (i = 0; i < 40; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	gwt_stop(g);
}
END_TEST

START_TEST(test_a_request_sent_byte_by_byte_is_cut_at_the_deadline)
{
	static const char *env[] = {"RSSP_REQUEST_DEADLINE=3", NULL};
	struct gwt_opts o = {.env = env};
	struct gwt *g = gwt_start(&o);
	const char req[] = "POST /rssp/info HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
	    "Content-Length: 2\r\n\r\n{}";
	int fd = dial(g, NULL, 1), cut = 0;
	double t0 = now_s();
	size_t i;

	ck_assert_int_ge(fd, 0);
	/* one byte every 0.5 s (well within the 60 s idle timeout): the request would take 40 s */
	for (i = 0; i < sizeof(req) - 1 && now_s() - t0 < 10; i++) {
		char c;
		if (send(fd, &req[i], 1, MSG_NOSIGNAL) != 1 || recv(fd, &c, 1, MSG_DONTWAIT) == 0) {
			cut = 1;
			break;
		}
		usleep(500000);
	}
	ck_assert_msg(cut, "a request sent byte by byte stayed open %.1f s", now_s() - t0);
	ck_assert_msg(now_s() - t0 < 6.0, "cut only after %.1f s (deadline 3 s)", now_s() - t0);
	close(fd);
	/* a request sent at once is answered as usual */
	const char ok[] = "POST /rssp/info HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
	    "Connection: close\r\nContent-Length: 2\r\n\r\n{}";
	ck_assert_int_eq(raw(g, NULL, ok, sizeof(ok) - 1, 5, NULL, NULL), 200);
	gwt_stop(g);
}
END_TEST

/* ---- 10. framing and raw paths ------------------------------------------------------------ */

START_TEST(test_ambiguous_framing_is_refused_and_closed)
{
	static const char *const reqs[] = {
		/* two different Content-Length headers */
		"POST /rssp/info HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
		"Content-Length: 2\r\nContent-Length: 40\r\n\r\n{}",
		/* two equal ones */
		"POST /rssp/info HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
		"Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}",
		/* Content-Length with Transfer-Encoding */
		"POST /rssp/info HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
		"Content-Length: 7\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
		/* a space before the colon */
		"POST /rssp/info HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
		"Content-Length : 2\r\n\r\n{}",
		/* an odd Transfer-Encoding */
		"POST /rssp/info HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
		"Transfer-Encoding: gzip, chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
	};
	struct gwt *g = gwt_start(NULL);
	size_t i;

	for (i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
		char *resp = NULL;
		int closed = 0;
		long st = raw(g, NULL, reqs[i], strlen(reqs[i]), 5, &resp, &closed);
		ck_assert_msg(st == 400, "request %zu answered %ld: %.200s", i, st, resp);
		ck_assert_msg(closed, "request %zu: the connection stayed open", i);
		ck_assert_msg(strstr(resp, "HTTP/1.1 200") == NULL, "request %zu: a second answer followed", i);
		free(resp);
	}
	/* a plain request and a chunked one still work */
	const char ok[] = "POST /rssp/info HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
	    "Connection: close\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n";
	ck_assert_int_eq(raw(g, NULL, ok, sizeof(ok) - 1, 5, NULL, NULL), 200);
	gwt_stop(g);
}
END_TEST

START_TEST(test_escaped_paths_never_reach_a_handler)
{
	static const char *const paths[] = {
		"GET /metrics%00 HTTP/1.1", "GET /metrics%00.txt HTTP/1.1", "GET /%6detrics HTTP/1.1",
		"POST /rssp/%61dmin/users/list HTTP/1.1", "POST /rssp/info%00 HTTP/1.1",
		"GET /healthz?x=%00 HTTP/1.1",
	};
	struct gwt *g = gwt_start(NULL);
	size_t i;

	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		char *req = NULL, *resp = NULL;
		int closed;
		int n = asprintf(&req, "%s\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n"
		    "Content-Length: 2\r\n\r\n{}", paths[i]);
		long st = raw(g, NULL, req, (size_t)n, 5, &resp, &closed);
		ck_assert_msg(st == 400, "%s answered %ld: %.200s", paths[i], st, resp);
		free(req);
		free(resp);
	}
	gwt_stop(g);
}
END_TEST

/* ---- 11, 12. inputs refused at the door ------------------------------------------------ */

START_TEST(test_upper_case_ids_and_long_names_are_refused_with_400)
{
	static const char *env[] = {"RSSP_LOGIN_BURST=1000", NULL};
	struct gwt_opts o = {.env = env};
	struct gwt *g = gwt_start(&o);
	char *rp = rp_make(g, NULL), name[66];
	struct gwt_resp *r;

	gwt_post_expect(g, "/rssp/credentials/authorize", rp,
	    "{\"credentialID\":\"0F9D6A4E-2B1C-4D3E-8F7A-1234567890AB\",\"numSignatures\":1,"
	    "\"hashes\":[\"n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=\"],"
	    "\"hashAlgorithmOID\":\"2.16.840.1.101.3.4.2.1\",\"description\":\"x\"}",
	    400, "invalid_request", "'credentialID'");
	gwt_post_expect(g, "/rssp/users/status", rp, "{\"userID\":\"0F9D6A4E-2B1C-4D3E-8F7A-1234567890AB\"}",
	    400, "invalid_request", NULL);
	/* fullName becomes the certificate's commonName: 64 characters at most */
	memset(name, 'n', 65);
	name[65] = '\0';
	char *email = email_new("long");
	json_t *b = json_pack("{s:s, s:s, s:s}", "email", email, "mobile", "+41791234567", "fullName", name);
	r = gwt_post_json(g, "/rssp/users/register", rp, b);
	gwt_expect(r, 400, "invalid_request");
	ck_assert_ptr_nonnull(strstr(gwt_str(r, "error_description"), "'fullName'"));
	gwt_resp_free(r);
	json_decref(b);
	free(email);
	free(rp);
	gwt_stop(g);
}
END_TEST

static Suite *
hostile_suite(void)
{
	Suite *s = suite_create("hostile");
	TCase *t = tcase_create("hostile");

	tcase_set_timeout(t, 120);
	tcase_add_test(t, test_concurrent_wrong_passphrases_are_evaluated_at_most_threshold_times);
	tcase_add_test(t, test_concurrent_right_passphrases_all_log_in);
	tcase_add_test(t, test_other_spellings_of_a_login_share_its_bucket_or_are_refused);
	tcase_add_test(t, test_non_utf8_user_names_get_400_not_500);
	tcase_add_test(t, test_another_tenants_user_is_answered_as_an_unknown_one);
	tcase_add_test(t, test_a_disabled_account_answers_401_to_any_passphrase_and_locks);
	tcase_add_test(t, test_a_login_flood_leaves_database_connections_to_others);
	tcase_add_test(t, test_long_polls_of_one_rp_leave_capacity_to_logins_and_other_tenants);
	tcase_add_test(t, test_one_address_cannot_take_every_connection);
	tcase_add_test(t, test_a_request_sent_byte_by_byte_is_cut_at_the_deadline);
	tcase_add_test(t, test_ambiguous_framing_is_refused_and_closed);
	tcase_add_test(t, test_escaped_paths_never_reach_a_handler);
	tcase_add_test(t, test_upper_case_ids_and_long_names_are_refused_with_400);
	suite_add_tcase(s, t);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(hostile_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
