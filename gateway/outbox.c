/* outbox.c - the notification outbox and its delivery thread (see outbox.h). */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <sodium.h>

#include "buf.h"
#include "db.h"
#include "outbox.h"
#include "rssp_log.h"

#define OUTBOX_MAX_ATTEMPTS 16
#define OUTBOX_BACKOFF_CAP 3600
#define OUTBOX_IO_TIMEOUT_S 15L

static int
has_crlf(const char *s)
{
	return s != NULL && strpbrk(s, "\r\n") != NULL;
}

int
outbox_enqueue(PGconn *db, const char *channel, const char *recipient, const char *kind,
    const char *subject, const char *body, json_t *data)
{
	char *datatxt = NULL;
	PGresult *res = NULL;
	int r = RSSP_E_INVAL;

	if (db == NULL || channel == NULL || recipient == NULL || kind == NULL || body == NULL)
		goto out;
	if (strcmp(channel, "email") != 0 && strcmp(channel, "sms") != 0)
		goto out;
	if (*recipient == '\0' || has_crlf(recipient) || has_crlf(kind))
		goto out;
	if (data != NULL && !json_is_object(data))
		goto out;
	r = RSSP_E_NOMEM;
	if ((datatxt = data != NULL ? json_dumps(data, JSON_COMPACT) : strdup("{}")) == NULL)
		goto out;
	const char *params[6] = { channel, recipient, kind, subject != NULL ? subject : "",
	    body, datatxt };
	res = PQexecParams(db,
	    "INSERT INTO outbox (channel, recipient, kind, subject, body, data) "
	    "VALUES ($1, $2, $3, $4, $5, $6::jsonb)", 6, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		log_error("cannot enqueue %.40s message: %.200s", kind, PQerrorMessage(db));
		r = RSSP_E_DB;
		goto out;
	}
	PQclear(res);
	/* Delivered at commit, and only if the transaction commits. */
	res = PQexec(db, "NOTIFY rssp_outbox");
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		r = RSSP_E_DB;
		goto out;
	}
	r = 0;
out:
	PQclear(res);
	if (datatxt != NULL)
		OPENSSL_clear_free(datatxt, strlen(datatxt));
	return r;
}

/* ---- building the messages ---- */

/* The message is built on the shared growable buffer (engine/common/buf.h), which wipes
 * what it frees; these return its sticky error. */
static int
buf_add(struct rssp_buf *b, const char *s, size_t n)
{
	rssp_buf_put(b, s, n);
	return b->err;
}

static int
buf_str(struct rssp_buf *b, const char *s)
{
	return buf_add(b, s, strlen(s));
}

/* The subject as RFC 2047 encoded words when it is not plain printable ASCII; control
 * characters (a CR LF that would start a header of its own) become spaces. */
static int
add_subject(struct rssp_buf *b, const char *subject_in)
{
	int plain = 1, r;
	char *subject = strdup(subject_in);
	unsigned char *s;

	if (subject == NULL)
		return RSSP_E_NOMEM;
	for (s = (unsigned char *)subject; *s != '\0'; s++) {
		if (*s < 0x20 || *s == 0x7f)
			*s = ' ';
		if (*s > 0x7e)
			plain = 0;
	}
	if (plain) {
		r = buf_str(b, subject);
		free(subject);
		return r;
	}
	r = 0;
	size_t n = strlen(subject);
	/* Short encoded words keep header lines under 998 octets. */
	for (size_t off = 0; off < n;) {
		size_t take = n - off > 45 ? 45 : n - off;
		/* do not split a UTF-8 sequence */
		while (take < n - off && take > 1 &&
		    ((unsigned char)subject[off + take] & 0xc0) == 0x80)
			take--;
		char *enc = rssp_b64((const uint8_t *)subject + off, take);
		if (enc == NULL) {
			r = RSSP_E_NOMEM;
			break;
		}
		if ((r = buf_str(b, off == 0 ? "=?UTF-8?B?" : "\r\n =?UTF-8?B?")) != 0 ||
		    (r = buf_str(b, enc)) != 0 || (r = buf_str(b, "?=")) != 0) {
			free(enc);
			break;
		}
		free(enc);
		off += take;
	}
	free(subject);
	return r;
}

/* The envelope address inside "Name <addr>", or the whole string. */
static char *
envelope_address(const char *from)
{
	const char *lt = strrchr(from, '<'), *gt = lt != NULL ? strchr(lt, '>') : NULL;

	if (lt != NULL && gt != NULL) {
		char *s = malloc((size_t)(gt - lt) + 2);
		if (s != NULL)
			snprintf(s, (size_t)(gt - lt) + 2, "%.*s", (int)(gt - lt + 1), lt);
		return s;
	}
	size_t n = strlen(from) + 3;
	char *s = malloc(n);
	if (s != NULL)
		snprintf(s, n, "<%s>", from);
	return s;
}

static int
build_email(struct rssp_buf *m, int64_t id, const char *from, const char *to, const char *subject,
    const char *body)
{
	char line[256];
	time_t now = time(NULL);
	struct tm tm;
	int r;

	gmtime_r(&now, &tm);
	strftime(line, sizeof(line), "Date: %a, %d %b %Y %H:%M:%S +0000\r\n", &tm);
	if ((r = buf_str(m, line)) != 0 || (r = buf_str(m, "From: ")) != 0 ||
	    (r = buf_str(m, from)) != 0 || (r = buf_str(m, "\r\nTo: <")) != 0 ||
	    (r = buf_str(m, to)) != 0 || (r = buf_str(m, ">\r\nSubject: ")) != 0 ||
	    (r = add_subject(m, subject)) != 0)
		return r;
	uint8_t rnd[12];
	char hex[sizeof(rnd) * 2 + 1];
	randombytes_buf(rnd, sizeof(rnd));
	sodium_bin2hex(hex, sizeof(hex), rnd, sizeof(rnd));
	snprintf(line, sizeof(line),
	    "\r\nMessage-ID: <outbox-%" PRId64 ".%s@rssp>\r\nMIME-Version: 1.0\r\n"
	    "Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: 8bit\r\n"
	    "Auto-Submitted: auto-generated\r\n\r\n", id, hex);
	if ((r = buf_str(m, line)) != 0)
		return r;
	/* Bare LF becomes CRLF; libcurl dot-stuffs lines that start with '.'. */
	for (const char *p = body; *p != '\0'; p++) {
		if (*p == '\r')
			continue;
		if ((r = *p == '\n' ? buf_add(m, "\r\n", 2) : buf_add(m, p, 1)) != 0)
			return r;
	}
	return buf_add(m, "\r\n", 2);
}

struct upload {
	const char *p;
	size_t left;
};

static size_t
upload_read(char *dst, size_t size, size_t nmemb, void *arg)
{
	struct upload *u = arg;
	size_t n = size * nmemb < u->left ? size * nmemb : u->left;

	memcpy(dst, u->p, n);
	u->p += n;
	u->left -= n;
	return n;
}

static size_t
discard(char *p, size_t size, size_t nmemb, void *arg)
{
	(void)p;
	(void)arg;
	return size * nmemb;
}

/* Returns 0 when the relay accepted the message; on failure *why is a static text. */
static int
send_email(const struct outbox_delivery_conf *conf, int64_t id, const char *to,
    const char *subject, const char *body, const char **why)
{
	struct rssp_buf m = RSSP_BUF_INIT;
	struct curl_slist *rcpt = NULL;
	char *env_from = NULL, *env_to = NULL;
	const char *from = conf->smtp_from != NULL ? conf->smtp_from : "rssp@localhost";
	CURL *c = NULL;
	int r = RSSP_E_UNAVAILABLE;

	*why = "email delivery not configured (RSSP_SMTP_URL)";
	if (conf->smtp_url == NULL || *conf->smtp_url == '\0')
		goto out;
	*why = "invalid recipient";
	if (strpbrk(to, "\r\n<>") != NULL || has_crlf(from))
		goto out;
	*why = "out of memory";
	if (build_email(&m, id, from, to, subject, body) != 0 ||
	    (env_from = envelope_address(from)) == NULL || (env_to = envelope_address(to)) == NULL ||
	    (rcpt = curl_slist_append(NULL, env_to)) == NULL || (c = curl_easy_init()) == NULL)
		goto out;
	struct upload u = { (const char *)m.p, m.len };
	curl_easy_setopt(c, CURLOPT_URL, conf->smtp_url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	curl_easy_setopt(c, CURLOPT_USE_SSL, (long)CURLUSESSL_TRY);
	curl_easy_setopt(c, CURLOPT_MAIL_FROM, env_from);
	curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
	curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(c, CURLOPT_READFUNCTION, upload_read);
	curl_easy_setopt(c, CURLOPT_READDATA, &u);
	curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)m.len);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, OUTBOX_IO_TIMEOUT_S);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	CURLcode cr = curl_easy_perform(c);
	if (cr != CURLE_OK) {
		*why = curl_easy_strerror(cr);
		goto out;
	}
	*why = NULL;
	r = 0;
out:
	curl_easy_cleanup(c);
	curl_slist_free_all(rcpt);
	free(env_from);
	free(env_to);
	rssp_buf_free(&m);
	return r;
}

static int
send_sms(const struct outbox_delivery_conf *conf, int64_t id, const char *to, const char *kind,
    const char *body, const char **why)
{
	struct curl_slist *hdr = NULL;
	json_t *j = NULL;
	char *txt = NULL;
	CURL *c = NULL;
	long status = 0;
	int r = RSSP_E_UNAVAILABLE;

	*why = "sms delivery not configured (RSSP_SMS_WEBHOOK)";
	if (conf->sms_webhook == NULL || *conf->sms_webhook == '\0')
		goto out;
	*why = "out of memory";
	if ((j = json_pack("{s:I, s:s, s:s, s:s}", "id", (json_int_t)id, "to", to, "kind", kind,
	    "body", body)) == NULL || (txt = json_dumps(j, JSON_COMPACT)) == NULL ||
	    (hdr = curl_slist_append(NULL, "Content-Type: application/json")) == NULL ||
	    (c = curl_easy_init()) == NULL)
		goto out;
	curl_easy_setopt(c, CURLOPT_URL, conf->sms_webhook);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, txt);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(txt));
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, OUTBOX_IO_TIMEOUT_S);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	CURLcode cr = curl_easy_perform(c);
	if (cr != CURLE_OK) {
		*why = curl_easy_strerror(cr);
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (status < 200 || status > 299) {
		*why = "webhook answered an error status";
		goto out;
	}
	*why = NULL;
	r = 0;
out:
	curl_easy_cleanup(c);
	curl_slist_free_all(hdr);
	if (txt != NULL)
		OPENSSL_clear_free(txt, strlen(txt));
	json_decref(j);
	return r;
}

/* ---- delivery rounds ---- */

static int
exec_ok(PGconn *db, const char *sql)
{
	PGresult *res = PQexec(db, sql);
	int ok = PQresultStatus(res) == PGRES_COMMAND_OK;

	PQclear(res);
	return ok ? 0 : RSSP_E_DB;
}

/* Marks a message sent and blanks its secrets: every string of data becomes "" and
 * every occurrence of one of them in subject and body becomes "[sent]". */
static int
mark_sent(PGconn *db, const char *id)
{
	const char *params[1] = { id };
	PGresult *res = PQexecParams(db,
	    "UPDATE outbox SET sent_at = now(), attempts = attempts + 1, last_error = NULL, "
	    " subject = outbox_redact(subject, data), body = outbox_redact(body, data), "
	    " data = outbox_blank(data) WHERE id = $1::bigint", 1, NULL, params, NULL, NULL, 0);
	int ok = PQresultStatus(res) == PGRES_COMMAND_OK;

	if (!ok)
		log_error("cannot mark outbox message %s sent: %.200s", id, PQerrorMessage(db));
	PQclear(res);
	return ok ? 0 : RSSP_E_DB;
}

static int
mark_failed(PGconn *db, const char *id, const char *why)
{
	const char *params[4] = { id, why, NULL, NULL };
	char cap[16], max[16];

	snprintf(cap, sizeof(cap), "%d", OUTBOX_BACKOFF_CAP);
	snprintf(max, sizeof(max), "%d", OUTBOX_MAX_ATTEMPTS);
	params[2] = cap;
	params[3] = max;
	PGresult *res = PQexecParams(db,
	    "UPDATE outbox SET attempts = attempts + 1, last_error = left($2, 200), "
	    " next_attempt_at = CASE WHEN attempts + 1 >= $4::int THEN 'infinity'::timestamptz "
	    "   ELSE now() + make_interval(secs => least($3::int, power(2, least(attempts, 20))::int)) END "
	    "WHERE id = $1::bigint", 4, NULL, params, NULL, NULL, 0);
	int ok = PQresultStatus(res) == PGRES_COMMAND_OK;

	PQclear(res);
	return ok ? 0 : RSSP_E_DB;
}

int
outbox_deliver_due(PGconn *db, const struct outbox_delivery_conf *conf, int max, int *sentp)
{
	PGresult *res = NULL;
	char lim[16];
	int r = RSSP_E_DB, sent = 0, intx = 0;

	if (exec_ok(db, "BEGIN") != 0)
		goto out;
	intx = 1;
	snprintf(lim, sizeof(lim), "%d", max > 0 ? max : 1);
	const char *params[1] = { lim };
	res = PQexecParams(db,
	    "SELECT id, channel, recipient, kind, subject, body FROM outbox "
	    "WHERE sent_at IS NULL AND next_attempt_at <= now() ORDER BY id LIMIT $1::int "
	    "FOR UPDATE SKIP LOCKED", 1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		log_error("cannot read the outbox: %.200s", PQerrorMessage(db));
		goto out;
	}
	for (int i = 0; i < PQntuples(res); i++) {
		const char *id = gw_val(res, i, "id"), *channel = gw_val(res, i, "channel");
		const char *to = gw_val(res, i, "recipient"), *kind = gw_val(res, i, "kind");
		const char *subject = gw_val(res, i, "subject"), *body = gw_val(res, i, "body");
		const char *why = NULL;
		int64_t nid = strtoll(id, NULL, 10);
		int sr = strcmp(channel, "email") == 0 ?
		    send_email(conf, nid, to, subject, body, &why) :
		    send_sms(conf, nid, to, kind, body, &why);
		if (sr == 0) {
			if (mark_sent(db, id) != 0)
				goto out;
			sent++;
			log_info("outbox message %s (%.40s, %s) delivered", id, kind, channel);
		} else {
			if (mark_failed(db, id, why) != 0)
				goto out;
			log_warn("outbox message %s (%.40s, %s) not delivered: %.200s", id, kind,
			    channel, why);
		}
	}
	if (exec_ok(db, "COMMIT") != 0)
		goto out;
	intx = 0;
	if (sentp != NULL)
		*sentp = sent;
	r = 0;
out:
	/* The rows of PGresult held recipients and bodies with secrets: wipe them. */
	if (res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK)
		for (int i = 0; i < PQntuples(res); i++)
			for (int f = 0; f < PQnfields(res); f++)
				OPENSSL_cleanse(PQgetvalue(res, i, f), (size_t)PQgetlength(res, i, f));
	PQclear(res);
	if (intx)
		(void)exec_ok(db, "ROLLBACK");
	return r;
}

/* ---- the thread ---- */

struct outbox_delivery {
	struct outbox_delivery_conf conf;
	char *db_url, *smtp_url, *smtp_from, *sms_webhook;
	pthread_t thread;
	int wake[2];
};

static PGconn *
delivery_connect(const char *url)
{
	PGconn *db = PQconnectdb(url);

	if (PQstatus(db) != CONNECTION_OK) {
		log_warn("outbox delivery cannot connect to the database: %.200s", PQerrorMessage(db));
		PQfinish(db);
		return NULL;
	}
	if (exec_ok(db, "LISTEN rssp_outbox") != 0) {
		PQfinish(db);
		return NULL;
	}
	return db;
}

static void *
delivery_main(void *arg)
{
	struct outbox_delivery *d = arg;
	PGconn *db = NULL;

	rssp_log_set_request_id("outbox-delivery");
	for (;;) {
		struct pollfd pfd[2] = { { .fd = d->wake[0], .events = POLLIN }, { .fd = -1 } };
		int timeout = 1000;
		if (db == NULL)
			db = delivery_connect(d->db_url);
		if (db != NULL) {
			int sent = 0;
			if (outbox_deliver_due(db, &d->conf, 20, &sent) != 0 &&
			    PQstatus(db) != CONNECTION_OK) {
				PQfinish(db);
				db = NULL;
			} else if (sent == 20) {
				timeout = 0; /* more may be due; only look for a stop request */
			}
		}
		if (db != NULL) {
			pfd[1].fd = PQsocket(db);
			pfd[1].events = POLLIN;
		}
		if (poll(pfd, 2, timeout) < 0 && errno != EINTR)
			break;
		if (pfd[0].revents != 0)
			break;
		if (db != NULL && pfd[1].revents != 0) {
			PGnotify *n;
			if (!PQconsumeInput(db)) {
				PQfinish(db);
				db = NULL;
				continue;
			}
			while ((n = PQnotifies(db)) != NULL)
				PQfreemem(n);
		}
	}
	PQfinish(db);
	return NULL;
}

static char *
dup_or_null(const char *s)
{
	return s != NULL && *s != '\0' ? strdup(s) : NULL;
}

void
outbox_delivery_free(struct outbox_delivery *d)
{
	if (d == NULL)
		return;
	if (d->wake[1] >= 0) {
		if (write(d->wake[1], "x", 1) != 1)
			log_error("cannot stop the outbox delivery thread");
		pthread_join(d->thread, NULL);
	}
	if (d->wake[0] >= 0)
		close(d->wake[0]);
	if (d->wake[1] >= 0)
		close(d->wake[1]);
	free(d->db_url);
	if (d->smtp_url != NULL)
		OPENSSL_clear_free(d->smtp_url, strlen(d->smtp_url)); /* may hold credentials */
	free(d->smtp_from);
	if (d->sms_webhook != NULL)
		OPENSSL_clear_free(d->sms_webhook, strlen(d->sms_webhook));
	free(d);
}

int
outbox_delivery_start(const struct outbox_delivery_conf *conf, struct outbox_delivery **dp)
{
	struct outbox_delivery *d = NULL;
	int r = RSSP_E_INVAL;

	if (conf == NULL || conf->db_url == NULL)
		goto out;
	r = RSSP_E_NOMEM;
	if ((d = calloc(1, sizeof(*d))) == NULL)
		goto out;
	d->wake[0] = d->wake[1] = -1;
	if ((d->db_url = strdup(conf->db_url)) == NULL ||
	    (conf->smtp_url != NULL && *conf->smtp_url && (d->smtp_url = strdup(conf->smtp_url)) == NULL) ||
	    (conf->smtp_from != NULL && *conf->smtp_from && (d->smtp_from = strdup(conf->smtp_from)) == NULL) ||
	    (conf->sms_webhook != NULL && *conf->sms_webhook && (d->sms_webhook = dup_or_null(conf->sms_webhook)) == NULL))
		goto out;
	d->conf.db_url = d->db_url;
	d->conf.smtp_url = d->smtp_url;
	d->conf.smtp_from = d->smtp_from;
	d->conf.sms_webhook = d->sms_webhook;
	r = RSSP_E_INTERNAL;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		goto out;
	if (pipe(d->wake) != 0) {
		d->wake[0] = d->wake[1] = -1;
		goto out;
	}
	if (pthread_create(&d->thread, NULL, delivery_main, d) != 0) {
		close(d->wake[1]);
		d->wake[1] = -1;
		goto out;
	}
	log_info("outbox delivery started (email %s, sms %s)", d->smtp_url ? "on" : "off",
	    d->sms_webhook ? "on" : "off");
	*dp = d;
	d = NULL;
	r = 0;
out:
	outbox_delivery_free(d);
	return r;
}
