/* test_outbox_delivery.c - RSSP_DELIVERY=deliver for real: a gateway sends its outbox to
 * an SMTP sink and a webhook sink on loopback (sinks.py), blanks the secrets once sent,
 * and retries a failed delivery; outbox_enqueue is part of the caller's transaction. */
#include <check.h>
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "gwtest.h"
#include "outbox.h"

static struct gwt *g;
static char sinkdir[256];
static pid_t sink_pid = -1;
static int sink_stdin = -1;
static char smtp_env[128], sms_env[128];
static const char *gw_env[] = { "RSSP_DELIVERY=deliver", smtp_env, sms_env,
    "RSSP_SMTP_FROM=rssp test <noreply@rssp.test>", NULL };

/* Reads a whole file (malloc'd, NUL-terminated) or returns NULL when it does not exist. */
static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t len = 0, n;
	char chunk[4096];

	if (f == NULL)
		return NULL;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		buf = realloc(buf, len + n + 1);
		ck_assert_ptr_nonnull(buf);
		memcpy(buf + len, chunk, n);
		len += n;
	}
	fclose(f);
	if (buf == NULL)
		buf = calloc(1, 1);
	buf[len] = '\0';
	return buf;
}

/* Waits (up to 60 s: the machine is shared, this is not a timing test) for a file. */
static char *
wait_file(const char *name)
{
	char path[512];
	char *s;

	snprintf(path, sizeof(path), "%s/%s", sinkdir, name);
	for (int i = 0; i < 600; i++) {
		if ((s = slurp(path)) != NULL)
			return s;
		usleep(100 * 1000);
	}
	ck_abort_msg("%s did not arrive", name);
	return NULL;
}

/* Waits until the SQL (one value) answers want. */
static void
wait_sql(const char *want, const char *sql, const char *param)
{
	char *v = NULL;

	for (int i = 0; i < 600; i++) {
		free(v);
		v = gwt_sql(g, sql, param, NULL);
		if (v != NULL && strcmp(v, want) == 0) {
			free(v);
			return;
		}
		usleep(100 * 1000);
	}
	ck_abort_msg("%s gave %s, not %s", sql, v ? v : "(no row)", want);
}

static void
setup(void)
{
	const char *work = getenv("RSSP_TEST_WORK");
	int p[2];
	char *ports;
	unsigned smtp_port = 0, http_port = 0;

	snprintf(sinkdir, sizeof(sinkdir), "%s/outbox-sinks-XXXXXX", work ? work : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(sinkdir));
	ck_assert_int_eq(pipe(p), 0);
	sink_pid = fork();
	ck_assert_int_ge(sink_pid, 0);
	if (sink_pid == 0) {
		dup2(p[0], 0);
		close(p[0]);
		close(p[1]);
		/* the first webhook POST fails so that the retry path runs */
		execl("/usr/bin/python3", "python3", SINKS_PY, sinkdir, "--sms-fail-first", "1", (char *)NULL);
		_exit(127);
	}
	close(p[0]);
	sink_stdin = p[1];
	ports = wait_file("ports");
	ck_assert_int_eq(sscanf(ports, "%u %u", &smtp_port, &http_port), 2);
	free(ports);
	snprintf(smtp_env, sizeof(smtp_env), "RSSP_SMTP_URL=smtp://127.0.0.1:%u", smtp_port);
	snprintf(sms_env, sizeof(sms_env), "RSSP_SMS_WEBHOOK=http://127.0.0.1:%u/sms", http_port);
	struct gwt_opts o = { .env = gw_env };
	g = gwt_start(&o);
}

static void
teardown(void)
{
	int st;

	gwt_stop(g);
	g = NULL;
	close(sink_stdin); /* the sinks exit when their stdin closes */
	if (waitpid(sink_pid, &st, 0) != sink_pid)
		kill(sink_pid, SIGKILL);
}

static PGconn *
db_connect(void)
{
	PGconn *db = PQconnectdb(gwt_db_url(g));

	ck_assert_msg(PQstatus(db) == CONNECTION_OK, "%s", PQerrorMessage(db));
	return db;
}

static void
db_exec(PGconn *db, const char *sql)
{
	PGresult *res = PQexec(db, sql);

	ck_assert_msg(PQresultStatus(res) == PGRES_COMMAND_OK, "%s: %s", sql, PQerrorMessage(db));
	PQclear(res);
}

/* The confirmation token in a mail: the line of 43 base64url characters. */
static char *
token_in(const char *mail)
{
	const char *p = mail;

	while ((p = strstr(p, "\n")) != NULL) {
		p++;
		size_t n = strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_");
		if (n == 43 && (p[n] == '\r' || p[n] == '\n'))
			return strndup(p, n);
	}
	return NULL;
}

START_TEST(test_deliver_mode_mails_the_confirmation_and_blanks_the_token)
{
	char *u = gwt_unique("deliver"), *email = NULL;
	ck_assert(asprintf(&email, "%s@example.org", u) > 0);
	json_t *b = json_pack("{s:s, s:s, s:s}", "email", email, "mobile", "+41791234567",
	    "fullName", "J\xc3\xbcrg M\xc3\xbcller");
	struct gwt_resp *r = gwt_post_json(g, "/rssp/users/register", gwt_admin_token(g), b);
	gwt_expect(r, 201, NULL);
	char *id = strdup(gwt_str(r, "userID"));
	gwt_resp_free(r);

	char *env = wait_file("mail-1.env"), *mail = wait_file("mail-1.eml");
	char *want = NULL;
	ck_assert(asprintf(&want, "from <noreply@rssp.test>\nto <%s>\n", email) > 0);
	ck_assert_str_eq(env, want);
	ck_assert_ptr_nonnull(strstr(mail, "From: rssp test <noreply@rssp.test>\r\n"));
	ck_assert_ptr_nonnull(strstr(mail, "Subject: Confirm your rssp account\r\n"));
	ck_assert_ptr_nonnull(strstr(mail, "Content-Type: text/plain; charset=UTF-8\r\n"));
	ck_assert_ptr_nonnull(strstr(mail, "J\xc3\xbcrg M\xc3\xbcller"));
	char *tok = token_in(mail);
	ck_assert_msg(tok != NULL, "no token in the mail:\n%s", mail);

	/* sent, and the secret is gone from the database */
	wait_sql("t", "SELECT sent_at IS NOT NULL FROM outbox WHERE recipient = $1", email);
	char *v = gwt_sql(g, "SELECT data::text FROM outbox WHERE recipient = $1", email, NULL);
	ck_assert_str_eq(v, "{\"token\": \"\"}");
	free(v);
	v = gwt_sql(g, "SELECT count(*) FROM outbox WHERE $1::text IS NOT NULL AND (position($2 in body) > 0 OR position($2 in data::text) > 0)",
	    email, tok, NULL);
	ck_assert_str_eq(v, "0");
	free(v);
	v = gwt_sql(g, "SELECT attempts::text || ' ' || (last_error IS NULL)::text FROM outbox WHERE recipient = $1",
	    email, NULL);
	ck_assert_str_eq(v, "1 true");
	free(v);
	/* the admin list shows no secret either */
	json_t *lb = json_pack("{s:s}", "recipient", email);
	r = gwt_post_json(g, "/rssp/admin/outbox/list", gwt_admin_token(g), lb);
	gwt_expect(r, 200, NULL);
	ck_assert_ptr_null(strstr(r->body, tok));
	ck_assert(json_is_string(json_object_get(json_array_get(json_object_get(r->json, "messages"), 0), "sentAt")));
	gwt_resp_free(r);

	/* the token as mailed confirms the account */
	json_t *cb = json_pack("{s:s, s:s}", "token", tok, "passphrase", "mailed passphrase");
	r = gwt_post_json(g, "/rssp/users/confirm", NULL, cb);
	gwt_expect(r, 200, NULL);
	ck_assert_str_eq(gwt_str(r, "userID"), id);
	gwt_resp_free(r);
	free(gwt_login(g, email, "mailed passphrase", NULL));

	json_decref(cb);
	json_decref(lb);
	json_decref(b);
	free(tok);
	free(want);
	free(env);
	free(mail);
	free(id);
	free(email);
	free(u);
}
END_TEST

START_TEST(test_deliver_mode_retries_a_failed_sms_and_blanks_the_code)
{
	PGconn *db = db_connect();
	json_t *data = json_pack("{s:s}", "code", "73915286");

	db_exec(db, "BEGIN");
	ck_assert_int_eq(outbox_enqueue(db, "sms", "+41790000001", "sic_activation_code", NULL,
	    "Your rssp activation code: 73915286", data), 0);
	db_exec(db, "COMMIT");
	/* the first POST is answered 500; the second, a backoff later, is stored */
	char *sms = wait_file("sms-1.json");
	json_t *j = json_loads(sms, 0, NULL);
	ck_assert_ptr_nonnull(j);
	ck_assert_str_eq(json_string_value(json_object_get(j, "to")), "+41790000001");
	ck_assert_str_eq(json_string_value(json_object_get(j, "kind")), "sic_activation_code");
	ck_assert_str_eq(json_string_value(json_object_get(j, "body")), "Your rssp activation code: 73915286");
	ck_assert(json_is_integer(json_object_get(j, "id")));
	wait_sql("t", "SELECT sent_at IS NOT NULL FROM outbox WHERE recipient = $1", "+41790000001");
	char *v = gwt_sql(g, "SELECT attempts::text || '|' || body || '|' || data::text FROM outbox WHERE recipient = $1",
	    "+41790000001", NULL);
	ck_assert_str_eq(v, "2|Your rssp activation code: [sent]|{\"code\": \"\"}");
	free(v);
	json_decref(j);
	free(sms);
	json_decref(data);
	PQfinish(db);
}
END_TEST

START_TEST(test_enqueue_belongs_to_the_callers_transaction_and_checks_its_arguments)
{
	PGconn *db = db_connect();
	json_t *data = json_pack("{s:s}", "code", "11112222");

	db_exec(db, "BEGIN");
	ck_assert_int_eq(outbox_enqueue(db, "sms", "+41790000002", "sic_activation_code", NULL,
	    "code 11112222", data), 0);
	db_exec(db, "ROLLBACK");
	char *v = gwt_sql(g, "SELECT count(*) FROM outbox WHERE recipient = $1", "+41790000002", NULL);
	ck_assert_str_eq(v, "0");
	free(v);
	ck_assert_int_eq(outbox_enqueue(db, "fax", "+41790000002", "x", NULL, "b", NULL), RSSP_E_INVAL);
	ck_assert_int_eq(outbox_enqueue(db, "email", "a@b.org\r\nBcc: c@d.org", "x", "s", "b", NULL), RSSP_E_INVAL);
	ck_assert_int_eq(outbox_enqueue(db, "email", "", "x", "s", "b", NULL), RSSP_E_INVAL);
	json_t *arr = json_array();
	ck_assert_int_eq(outbox_enqueue(db, "email", "a@b.org", "x", "s", "b", arr), RSSP_E_INVAL);
	json_decref(arr);
	json_decref(data);
	PQfinish(db);
}
END_TEST

/* The mail the sink received for a recipient (waits for it). */
static char *
wait_mail_for(const char *rcpt)
{
	char want[300];

	snprintf(want, sizeof(want), "to <%s>\n", rcpt);
	for (int i = 0; i < 600; i++) {
		for (int m = 1; m < 1000; m++) {
			char path[512], *env;
			snprintf(path, sizeof(path), "%s/mail-%d.env", sinkdir, m);
			if ((env = slurp(path)) == NULL)
				break;
			int hit = strstr(env, want) != NULL;
			free(env);
			if (hit) {
				snprintf(path, sizeof(path), "mail-%d.eml", m);
				return wait_file(path);
			}
		}
		usleep(100 * 1000);
	}
	ck_abort_msg("no mail for %s", rcpt);
	return NULL;
}

START_TEST(test_no_header_can_be_injected_through_the_subject)
{
	PGconn *db = db_connect();

	ck_assert_int_eq(outbox_enqueue(db, "email", "inject@example.org", "notice",
	    "Gr\xc3\xbc\xc3\x9f" "e\r\nBcc: victim@example.org", "line one\n.\nline three", NULL), 0);
	char *mail = wait_mail_for("inject@example.org");
	/* the subject is one encoded word; no Bcc header; the lone dot survives */
	ck_assert_ptr_nonnull(strstr(mail, "Subject: =?UTF-8?B?"));
	ck_assert_ptr_null(strstr(mail, "\nBcc:"));
	ck_assert_ptr_nonnull(strstr(mail, "Subject: =?UTF-8?B?R3LDvMOfZSAgQmNjOiB2aWN0aW1AZXhhbXBsZS5vcmc=?=\r\n"));
	ck_assert_ptr_nonnull(strstr(mail, "\r\n\r\nline one\r\n.\r\nline three\r\n"));
	free(mail);
	PQfinish(db);
}
END_TEST

START_TEST(test_two_delivering_replicas_send_each_message_exactly_once)
{
	struct gwt_opts o = { .env = gw_env, .db_name = gwt_db_name(g), .no_admin = 1 };
	struct gwt *g2 = gwt_start(&o);
	PGconn *db = db_connect();
	char to[64];
	enum { N = 24 };
	int count[N] = { 0 };

	/* one transaction, so that both replicas wake up to all messages at once */
	db_exec(db, "BEGIN");
	for (int i = 0; i < N; i++) {
		snprintf(to, sizeof(to), "r%d@replicas.example.org", i);
		ck_assert_int_eq(outbox_enqueue(db, "email", to, "notice", "replica test", "hello", NULL), 0);
	}
	db_exec(db, "COMMIT");
	wait_sql("0", "SELECT count(*) FROM outbox WHERE recipient LIKE $1 AND sent_at IS NULL",
	    "%@replicas.example.org");
	char *v = gwt_sql(g, "SELECT count(*) FROM outbox WHERE recipient LIKE $1 AND attempts = 1",
	    "%@replicas.example.org", NULL);
	ck_assert_int_eq(atoi(v), N);
	free(v);
	/* every message reached the sink once: a sent row was committed after its mail */
	for (int m = 1; m < 1000; m++) {
		char name[64], path[512], *env;
		snprintf(name, sizeof(name), "mail-%d.env", m);
		snprintf(path, sizeof(path), "%s/%s", sinkdir, name);
		if ((env = slurp(path)) == NULL)
			break;
		int i;
		char *p = strstr(env, "to <r");
		if (p != NULL && sscanf(p, "to <r%d@replicas.example.org>", &i) == 1) {
			ck_assert(i >= 0 && i < N);
			count[i]++;
		}
		free(env);
	}
	for (int i = 0; i < N; i++)
		ck_assert_msg(count[i] == 1, "message %d delivered %d times", i, count[i]);
	gwt_stop(g2);
	PQfinish(db);
}
END_TEST

/* ---- delivery rounds, called directly on a database no delivery thread serves ---- */

static struct gwt *plain;

static void
plain_setup(void)
{
	plain = gwt_start(NULL); /* RSSP_DELIVERY=outbox: nothing sends but the test */
}

static void
plain_teardown(void)
{
	gwt_stop(plain);
	plain = NULL;
}

START_TEST(test_a_failed_delivery_counts_an_attempt_backs_off_and_gives_up_at_last)
{
	PGconn *db = PQconnectdb(gwt_db_url(plain));
	/* port 1 on loopback: nothing listens there */
	struct outbox_delivery_conf conf = { .db_url = gwt_db_url(plain),
	    .smtp_url = "smtp://127.0.0.1:1", .sms_webhook = NULL };
	json_t *data = json_pack("{s:s}", "code", "55554444");
	int sent = -1;
	char *v;

	ck_assert_int_eq(PQstatus(db), CONNECTION_OK);
	free(gwt_sql(plain, "UPDATE outbox SET sent_at = now() WHERE sent_at IS NULL RETURNING 1", NULL));
	ck_assert_int_eq(outbox_enqueue(db, "email", "down@example.org", "notice", "s", "code 55554444", data), 0);
	ck_assert_int_eq(outbox_enqueue(db, "sms", "+41790000003", "notice", NULL, "code 55554444", data), 0);
	/* The backoff is checked against the database clock before and after each round,
	 * so that no assertion depends on how fast this machine is. */
	char *t0 = gwt_sql(plain, "SELECT now()::text", NULL);
	ck_assert_int_eq(outbox_deliver_due(db, &conf, 10, &sent), 0);
	ck_assert_int_eq(sent, 0);
	v = gwt_sql(plain, "SELECT string_agg(attempts || ' ' || (sent_at IS NULL) || ' ' || "
	    "(next_attempt_at BETWEEN $1::timestamptz + interval '1 second' AND now() + interval '1 second') "
	    "|| ' ' || (last_error IS NOT NULL) || ' ' || (data->>'code'), ',' ORDER BY id) "
	    "FROM outbox WHERE sent_at IS NULL", t0, NULL);
	ck_assert_str_eq(v, "1 true true true 55554444,1 true true true 55554444");
	free(v);
	free(t0);
	/* a message is not tried before its next attempt is due */
	free(gwt_sql(plain, "UPDATE outbox SET next_attempt_at = now() + interval '1 hour' "
	    "WHERE sent_at IS NULL RETURNING 1", NULL));
	ck_assert_int_eq(outbox_deliver_due(db, &conf, 10, &sent), 0);
	v = gwt_sql(plain, "SELECT sum(attempts) FROM outbox WHERE sent_at IS NULL", NULL);
	ck_assert_str_eq(v, "2");
	free(v);
	/* the backoff doubles: 1 s after the first failure, 2 s after the second, 8 s after the fourth */
	free(gwt_sql(plain, "UPDATE outbox SET attempts = 3, next_attempt_at = now() WHERE sent_at IS NULL "
	    "RETURNING 1", NULL));
	t0 = gwt_sql(plain, "SELECT now()::text", NULL);
	ck_assert_int_eq(outbox_deliver_due(db, &conf, 10, &sent), 0);
	v = gwt_sql(plain, "SELECT bool_and(attempts = 4 AND next_attempt_at BETWEEN $1::timestamptz + "
	    "interval '8 seconds' AND now() + interval '8 seconds') FROM outbox WHERE sent_at IS NULL", t0, NULL);
	ck_assert_str_eq(v, "t");
	free(v);
	free(t0);
	/* the sixteenth failure leaves the message for an operator */
	free(gwt_sql(plain, "UPDATE outbox SET attempts = 15, next_attempt_at = now() WHERE sent_at IS NULL "
	    "RETURNING 1", NULL));
	ck_assert_int_eq(outbox_deliver_due(db, &conf, 10, &sent), 0);
	v = gwt_sql(plain, "SELECT string_agg(attempts || ' ' || (next_attempt_at = 'infinity'), ',') "
	    "FROM outbox WHERE sent_at IS NULL", NULL);
	ck_assert_str_eq(v, "16 true,16 true");
	free(v);
	/* why: the relay could not be reached; sms is not configured */
	v = gwt_sql(plain, "SELECT string_agg(channel || ': ' || last_error, ',' ORDER BY id) "
	    "FROM outbox WHERE sent_at IS NULL", NULL);
	ck_assert_msg(strstr(v, "sms: sms delivery not configured") != NULL, "%s", v);
	free(v);
	json_decref(data);
	PQfinish(db);
}
END_TEST

static Suite *
delivery_suite(void)
{
	Suite *s = suite_create("gateway_outbox_delivery");
	TCase *tc = tcase_create("deliver");

	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_deliver_mode_mails_the_confirmation_and_blanks_the_token);
	tcase_add_test(tc, test_deliver_mode_retries_a_failed_sms_and_blanks_the_code);
	tcase_add_test(tc, test_no_header_can_be_injected_through_the_subject);
	tcase_add_test(tc, test_two_delivering_replicas_send_each_message_exactly_once);
	tcase_add_test(tc, test_enqueue_belongs_to_the_callers_transaction_and_checks_its_arguments);
	suite_add_tcase(s, tc);
	tc = tcase_create("rounds");
	tcase_add_unchecked_fixture(tc, plain_setup, plain_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_a_failed_delivery_counts_an_attempt_backs_off_and_gives_up_at_last);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(delivery_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
