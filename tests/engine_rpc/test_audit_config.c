/* The audit log's hash chain (writing, continuing across restarts, verifying edits,
 * deletions and reorders) and the engine's configuration table. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit.h"
#include "config.h"
#include "fixture.h"

static char dir[256], logpath[300];

static void
setup(void)
{
	ef_tempdir(dir, sizeof(dir), "audit");
	snprintf(logpath, sizeof(logpath), "%s/audit.log", dir);
}

static void
teardown(void)
{
	ef_rmtree(dir);
}

static void
write_records(const char *path, int n, const char *tag)
{
	struct audit *a;
	struct sam_audit s;
	struct audit_record r;
	int i;

	ck_assert_int_eq(audit_open(path, &a), 0);
	for (i = 0; i < n; i++) {
		memset(&s, 0, sizeof(s));
		snprintf(s.credential_id, sizeof(s.credential_id), "cred-%s-%d", tag, i);
		s.n_hashes = (unsigned)i;
		s.algo = "ecdsa-sha256";
		memset(&r, 0, sizeof(r));
		r.event = AUDIT_SIGNHASH;
		r.request_id = "rid \"quoted\"\n";
		r.peer_uid = 1000;
		r.sam = &s;
		r.result = "ok";
		ck_assert_int_eq(audit_write(a, &r), 0);
	}
	audit_free(a);
}

/* Reads the log into lines[] (each without newline). */
static int
read_lines(char lines[][2048], int max)
{
	FILE *f = fopen(logpath, "r");
	int n = 0;

	ck_assert_ptr_nonnull(f);
	while (n < max && fgets(lines[n], 2048, f) != NULL) {
		lines[n][strcspn(lines[n], "\n")] = '\0';
		n++;
	}
	fclose(f);
	return n;
}

static void
write_lines(char lines[][2048], const int *order, int n)
{
	FILE *f = fopen(logpath, "w");
	int i;

	ck_assert_ptr_nonnull(f);
	for (i = 0; i < n; i++)
		fprintf(f, "%s\n", lines[order[i]]);
	fclose(f);
}

static char *
verify_output(int *rc, size_t *nlines)
{
	static char buf[4096];
	char head[65];
	FILE *out = fmemopen(buf, sizeof(buf), "w");

	memset(buf, 0, sizeof(buf));
	*rc = audit_verify(logpath, out, nlines, head);
	fclose(out);
	return buf;
}

START_TEST(test_an_intact_log_verifies_and_its_chain_continues_across_restarts)
{
	char lines[8][2048];
	size_t n = 0;
	int rc;

	write_records(logpath, 3, "a");
	write_records(logpath, 2, "b");
	verify_output(&rc, &n);
	ck_assert_int_eq(rc, 0);
	ck_assert_uint_eq(n, 5);
	ck_assert_int_eq(read_lines(lines, 8), 5);
	ck_assert_ptr_nonnull(strstr(lines[0], "\"seq\":1,"));
	ck_assert_ptr_nonnull(strstr(lines[0],
	    "\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\"}"));
	ck_assert_ptr_nonnull(strstr(lines[4], "\"seq\":5,"));
	ck_assert_ptr_nonnull(strstr(lines[4], "\"credential_id\":\"cred-b-1\""));
	/* attacker-supplied strings cannot break the line */
	ck_assert_ptr_nonnull(strstr(lines[0], "\"request_id\":\"rid \\\"quoted\\\"\\u000a\""));
}
END_TEST

/* Writes five records, rewrites the log as its lines in order (n of them; edit, when
 * not NULL, changes them first), and asserts that the check refuses it saying want. */
static void
assert_rewrite_refused(const int *order, int n, void (*edit)(char lines[][2048]),
    const char *want)
{
	char lines[8][2048], *msg;
	size_t nlines;
	int rc;

	write_records(logpath, 5, "a");
	read_lines(lines, 8);
	if (edit != NULL)
		edit(lines);
	write_lines(lines, order, n);
	msg = verify_output(&rc, &nlines);
	ck_assert_int_eq(rc, RSSP_E_DENIED);
	ck_assert_msg(strstr(msg, want) != NULL, "wanted \"%s\" in: %s", want, msg);
}

static void
edit_third_line(char lines[][2048])
{
	char *p = strstr(lines[2], "cred-a-2");

	ck_assert_ptr_nonnull(p);
	p[5] = 'X';
}

START_TEST(test_an_edited_line_is_reported_with_its_number)
{
	const int order[] = { 0, 1, 2, 3, 4 };

	assert_rewrite_refused(order, 5, edit_third_line, "line 3: edited");
}
END_TEST

START_TEST(test_a_deleted_line_is_reported)
{
	const int order[] = { 0, 1, 3, 4 };

	assert_rewrite_refused(order, 4, NULL, "line 3: seq 4, expected 3: line(s) deleted");
}
END_TEST

START_TEST(test_a_deleted_first_line_is_reported)
{
	const int order[] = { 1, 2, 3, 4 };

	assert_rewrite_refused(order, 4, NULL, "line 1: seq 2, expected 1");
}
END_TEST

START_TEST(test_two_reordered_lines_are_reported)
{
	const int order[] = { 0, 2, 1, 3, 4 };

	assert_rewrite_refused(order, 5, NULL,
	    "line 2: seq 3 comes before seq 2 (line 3): lines reordered");
}
END_TEST

START_TEST(test_a_log_whose_last_line_is_not_an_audit_line_is_not_continued)
{
	struct audit *a = NULL;
	FILE *f;

	write_records(logpath, 2, "a");
	f = fopen(logpath, "a");
	fputs("{\"time\":\"garbage\"}\n", f);
	fclose(f);
	ck_assert_int_eq(audit_open(logpath, &a), RSSP_E_INVAL);
	ck_assert_ptr_null(a);
}
END_TEST

static void
clear_env(void)
{
	unsetenv("RSSP_PKCS11_MODULE");
	unsetenv("RSSP_TOKEN_LABEL");
	unsetenv("RSSP_PIN_FILE");
	unsetenv("RSSP_ENGINE_SOCKET");
	unsetenv("RSSP_ENGINE_ALLOWED_UIDS");
	unsetenv("RSSP_ENGINE_WORKERS");
	unsetenv("RSSP_SAD_TTL");
	unsetenv("RSSP_AUDIT_FILE");
	unsetenv("RSSP_LOG_LEVEL");
}

START_TEST(test_the_configuration_takes_defaults_then_the_file_then_the_environment)
{
	struct engine_config *c = NULL;
	char path[300];
	FILE *f;

	clear_env();
	snprintf(path, sizeof(path), "%s/engine.conf", dir);
	f = fopen(path, "w");
	fprintf(f, "# comment\n\nRSSP_PIN_FILE = /x/pin\nRSSP_TOKEN_LABEL=fromfile\n"
	    "RSSP_ENGINE_WORKERS=7\nRSSP_ENGINE_ALLOWED_UIDS=1000, 1001\n");
	fclose(f);
	setenv("RSSP_TOKEN_LABEL", "fromenv", 1);
	ck_assert_int_eq(engine_config_load(path, &c), 0);
	ck_assert_str_eq(c->token_label, "fromenv");
	ck_assert_str_eq(c->pin_file, "/x/pin");
	ck_assert_uint_eq(c->workers, 7);
	ck_assert_uint_eq(c->sad_ttl, 300);
	ck_assert_str_eq(c->socket_path, "/run/rssp/engine.sock");
	ck_assert_str_eq(c->audit_file, "-");
	ck_assert_str_eq(c->pkcs11_module, "/usr/lib/softhsm/libsofthsm2.so");
	ck_assert_uint_eq(c->n_uids, 2);
	ck_assert_uint_eq(c->uids[0], 1000);
	ck_assert_uint_eq(c->uids[1], 1001);
	engine_config_free(c);
	/* no allowed uids: only the engine's own */
	clear_env();
	setenv("RSSP_PIN_FILE", "/x/pin", 1);
	ck_assert_int_eq(engine_config_load(NULL, &c), 0);
	ck_assert_uint_eq(c->n_uids, 1);
	ck_assert_uint_eq(c->uids[0], geteuid());
	engine_config_free(c);
}
END_TEST

START_TEST(test_the_configuration_refuses_bad_values_and_unknown_names)
{
	static const char *bad_files[] = {
		"RSSP_PIN_FILE=/p\nRSSP_NO_SUCH=1\n",
		"RSSP_PIN_FILE=/p\nnot a setting\n",
		"RSSP_PIN_FILE=/p\nRSSP_ENGINE_WORKERS=0\n",
		"RSSP_PIN_FILE=/p\nRSSP_ENGINE_WORKERS=4x\n",
		"RSSP_PIN_FILE=/p\nRSSP_SAD_TTL=-5\n",
		"RSSP_PIN_FILE=/p\nRSSP_ENGINE_ALLOWED_UIDS=1000,,2\n",
		"RSSP_PIN_FILE=/p\nRSSP_ENGINE_ALLOWED_UIDS=-1\n",
		"RSSP_PIN_FILE=/p\nRSSP_LOG_LEVEL=loud\n",
		"RSSP_PIN_FILE=/p\nRSSP_ENGINE_SOCKET=relative.sock\n",
		"RSSP_TOKEN_LABEL=x\n", /* no pin file */
	};
	struct engine_config *c = NULL;
	char path[300];
	size_t i;
	FILE *f;

	clear_env();
	snprintf(path, sizeof(path), "%s/bad.conf", dir);
	for (i = 0; i < sizeof(bad_files) / sizeof(bad_files[0]); i++) {
		f = fopen(path, "w");
		fputs(bad_files[i], f);
		fclose(f);
		ck_assert_msg(engine_config_load(path, &c) == RSSP_E_INVAL, "accepted: %s", bad_files[i]);
		ck_assert_ptr_null(c);
	}
	ck_assert_int_eq(engine_config_load("/nonexistent/engine.conf", &c), RSSP_E_IO);
}
END_TEST

START_TEST(test_the_check_refuses_a_pin_file_readable_by_others)
{
	struct engine_config *c = NULL;
	char pin[300], sock[300], buf[2048];
	FILE *f, *err;

	clear_env();
	snprintf(pin, sizeof(pin), "%s/pin", dir);
	snprintf(sock, sizeof(sock), "%s/run/engine.sock", dir);
	f = fopen(pin, "w");
	fputs("1234\n", f);
	fclose(f);
	chmod(pin, 0644);
	setenv("RSSP_PIN_FILE", pin, 1);
	setenv("RSSP_ENGINE_SOCKET", sock, 1);
	ck_assert_int_eq(engine_config_load(NULL, &c), 0);
	memset(buf, 0, sizeof(buf));
	err = fmemopen(buf, sizeof(buf), "w");
	ck_assert_int_eq(engine_config_validate(c, err), RSSP_E_INVAL);
	fclose(err);
	ck_assert_ptr_nonnull(strstr(buf, "accessible by group or others"));
	chmod(pin, 0600);
	err = fmemopen(buf, sizeof(buf), "w");
	ck_assert_int_eq(engine_config_validate(c, err), 0);
	fclose(err);
	/* the printout names the pin file, never its contents */
	memset(buf, 0, sizeof(buf));
	err = fmemopen(buf, sizeof(buf), "w");
	engine_config_print(c, err);
	fclose(err);
	ck_assert_ptr_nonnull(strstr(buf, "RSSP_PIN_FILE="));
	ck_assert_ptr_null(strstr(buf, "1234"));
	engine_config_free(c);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("engine_audit_config");
	TCase *tc = tcase_create("audit_config");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_an_intact_log_verifies_and_its_chain_continues_across_restarts);
	tcase_add_test(tc, test_an_edited_line_is_reported_with_its_number);
	tcase_add_test(tc, test_a_deleted_line_is_reported);
	tcase_add_test(tc, test_a_deleted_first_line_is_reported);
	tcase_add_test(tc, test_two_reordered_lines_are_reported);
	tcase_add_test(tc, test_a_log_whose_last_line_is_not_an_audit_line_is_not_continued);
	tcase_add_test(tc, test_the_configuration_takes_defaults_then_the_file_then_the_environment);
	tcase_add_test(tc, test_the_configuration_refuses_bad_values_and_unknown_names);
	tcase_add_test(tc, test_the_check_refuses_a_pin_file_readable_by_others);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
