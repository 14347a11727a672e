/* The real rssp-engine on a SoftHSM2 token, for issue 11: the audit log sealed by HSM
 * checkpoints (a rewrite with recomputed hashes, a truncation and a torn last line are
 * caught), rotation with the chain continuing across files, a full disk (refused with
 * UNAVAILABLE "audit log unavailable", no partial line, nothing spent), counts and
 * replayed approvals that survive a restart and a kill -9, the liveness probe, and one
 * engine per audit log. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <grpc/status.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "engine_helper.h"
#include "fixture.h"
#include "rssp_err.h"

#define PIN "rpc-audit-pin-5K2W"
#define TOKEN "rpc-audit"

static char base[200], dir[300], sock[400], auditpath[500], small[400];
static const char *engine_bin;
static int test_no;

static void
suite_setup(void)
{
	char path[400], cmd[1200];

	ef_tempdir(base, sizeof(base), "rpcaudit");
	engine_bin = ef_engine_bin(RSSP_ENGINE_BIN);
	ef_engine_token(base, TOKEN, PIN);
	/* the registration authority the engine trusts and eh_activate vouches with */
	if (eh_ra_setup(base) != 0)
		ef_run("false # ra key");
	/* init writes the audit key next to the audit log */
	snprintf(path, sizeof(path), "%s/init", base);
	mkdir(path, 0700);
	snprintf(cmd, sizeof(cmd), "RSSP_AUDIT_FILE='%s/init/audit.log' '%s' init "
	    "--ca-subject 'CN=rpc audit CA' >/dev/null", base, engine_bin);
	ef_run(cmd);
}

static void
suite_teardown(void)
{
	char line[1024], mnt[600];
	FILE *m;

	/* a failed test leaves its tmpfs mounted (its teardown does not run) */
	if ((m = fopen("/proc/mounts", "r")) != NULL) {
		while (fgets(line, sizeof(line), m) != NULL)
			if (sscanf(line, "%*s %599s", mnt) == 1 && strncmp(mnt, base, strlen(base)) == 0)
				umount2(mnt, MNT_DETACH);
		fclose(m);
	}

	eh_ra_release();
	ef_rmtree(base);
}

static void
setup(void)
{
	test_no++;
	snprintf(dir, sizeof(dir), "%s/t%d-%d", base, test_no, (int)getpid());
	mkdir(dir, 0700);
	snprintf(sock, sizeof(sock), "%s/run/engine.sock", dir);
	snprintf(auditpath, sizeof(auditpath), "%s/audit.log", dir);
	small[0] = '\0';
}

static void
teardown(void)
{
	if (small[0] != '\0' && umount2(small, MNT_DETACH) != 0)
		fprintf(stderr, "cannot unmount %s: %s\n", small, strerror(errno));
}

/* Starts the engine (stdout to dir/engine.out); extra: "NAME=value" or NULL. */
static pid_t
start_engine_env(const char *extra, int wait_ready)
{
	char out[500];

	snprintf(out, sizeof(out), "%s/engine.out", dir);
	return ef_engine_start(engine_bin, sock, auditpath, out, extra, wait_ready);
}

static pid_t
start_engine(void)
{
	return start_engine_env(NULL, 1);
}

static void
spit(const char *path, const char *s)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	fputs(s, f);
	fclose(f);
}

/* Runs audit-verify with args; returns its exit code, its first stdout line in out. */
static int
verify(const char *args, char *out, size_t cap)
{
	char cmd[2000];
	FILE *f;
	int st;

	snprintf(cmd, sizeof(cmd), "'%s' audit-verify %s 2>/dev/null", engine_bin, args);
	f = popen(cmd, "r");
	ck_assert_ptr_nonnull(f);
	out[0] = '\0';
	if (fgets(out, (int)cap, f) == NULL)
		out[0] = '\0';
	while (fgetc(f) != EOF)
		;
	st = pclose(f);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void
unknown_calls(int n)
{
	struct engine_client *c;
	uint8_t *resp = NULL;
	size_t resplen;
	int status, i;
	char *msg = NULL;

	ck_assert_int_eq(engine_client_new(sock, 5000, &c), 0);
	for (i = 0; i < n; i++) {
		ck_assert_int_eq(engine_call_path(c, "/x.Y/Z", "rid", (const uint8_t *)"", 0, &resp,
		    &resplen, &status, &msg), 0);
		ck_assert_int_eq(status, GRPC_STATUS_UNIMPLEMENTED);
		free(msg);
		msg = NULL;
	}
	engine_client_free(c);
}

static size_t
count_lines(const char *s, const char *needle)
{
	size_t n = 0;
	const char *p = s;

	while ((p = strstr(p, needle)) != NULL) {
		n++;
		p += strlen(needle);
	}
	return n;
}

/* Rewrites a log line by line, making every prev match again (what an attacker with
 * write access but without the HSM can do). */
static char *
rechain(const char *log)
{
	static const char hx[] = "0123456789abcdef";
	char *out = strdup(log), *line, *nl, *p;
	unsigned char md[SHA256_DIGEST_LENGTH];
	char prevhex[65];
	size_t i;
	int first = 1;

	for (line = out; *line != '\0'; line = nl + 1) {
		nl = strchr(line, '\n');
		ck_assert_ptr_nonnull(nl);
		if (!first) {
			p = nl - 2 - 64;
			memcpy(p, prevhex, 64);
		}
		first = 0;
		SHA256((const unsigned char *)line, (size_t)(nl - line), md);
		for (i = 0; i < sizeof(md); i++) {
			prevhex[2 * i] = hx[md[i] >> 4];
			prevhex[2 * i + 1] = hx[md[i] & 15];
		}
	}
	return out;
}

/* The lines of s that hold needle (keep 1) or do not (keep 0), each with its newline. */
static char *
filter_lines(const char *s, const char *needle, int keep)
{
	char *out = calloc(1, strlen(s) + 1);
	const char *line, *nl;

	for (line = s; *line != '\0'; line = nl + 1) {
		nl = strchr(line, '\n');
		ck_assert_ptr_nonnull(nl);
		if ((memmem(line, (size_t)(nl - line), needle, strlen(needle)) != NULL) == keep)
			strncat(out, line, (size_t)(nl - line) + 1);
	}
	return out;
}

/* The lines of s holding needle. */
static char *
grep_lines(const char *s, const char *needle)
{
	return filter_lines(s, needle, 1);
}

/* Drops the lines of s holding needle. */
static char *
drop_lines(const char *s, const char *needle)
{
	return filter_lines(s, needle, 0);
}

START_TEST(test_init_writes_the_audit_key_and_its_certificate_next_to_the_log)
{
	char p[500], *pem;

	snprintf(p, sizeof(p), "%s/init/audit-key.pem", base);
	pem = ef_slurp(p);
	ck_assert_ptr_nonnull(strstr(pem, "-----BEGIN PUBLIC KEY-----"));
	free(pem);
	snprintf(p, sizeof(p), "%s/init/audit-key.crt", base);
	pem = ef_slurp(p);
	ck_assert_ptr_nonnull(strstr(pem, "-----BEGIN CERTIFICATE-----"));
	free(pem);
}
END_TEST

/* Renumbers seq 1, 2, 3 ... and recomputes every prev. */
static char *
renumber(const char *log)
{
	char *o = calloc(1, strlen(log) + 4096), *line, *nl, *sq, *r;
	char *in = strdup(log);
	int seq = 1;

	for (line = in; *line != '\0'; line = nl + 1) {
		nl = strchr(line, '\n');
		sq = strstr(line, "\"seq\":");
		strncat(o, line, (size_t)(sq - line));
		sprintf(o + strlen(o), "\"seq\":%d", seq++);
		sq += 6;
		while (*sq >= '0' && *sq <= '9')
			sq++;
		strncat(o, sq, (size_t)(nl - sq) + 1);
	}
	r = rechain(o);
	free(o);
	free(in);
	return r;
}

/* One run of the engine: start, n unknown-method calls, stop; checkpoints every 3 lines
 * and at shutdown. Returns the log; *anchorp gets the checkpoints the engine printed on
 * standard output, saved in dir/anchor. */
static char *
sealed_run(int n, char **anchorp)
{
	char p[500];
	pid_t pid;

	pid = start_engine_env("RSSP_AUDIT_CHECKPOINT_LINES=3", 1);
	unknown_calls(n);
	ck_assert_int_eq(ef_engine_stop(pid), 0);
	snprintf(p, sizeof(p), "%s/engine.out", dir);
	*anchorp = ef_slurp(p);
	snprintf(p, sizeof(p), "%s/anchor", dir);
	spit(p, *anchorp);
	return ef_slurp(auditpath);
}

START_TEST(test_checkpoints_are_sealed_by_the_hsm_and_go_to_stdout)
{
	char out[1024], args[1500], *log, *anchor, *ck;

	log = sealed_run(5, &anchor);
	/* start, 5 calls, stop = 7 lines, a checkpoint after every 3, one at shutdown */
	ck_assert_uint_eq(count_lines(log, "\"event\":\"audit.checkpoint\""), 3);
	ck_assert_uint_eq(count_lines(log, "\n"), 10);
	snprintf(args, sizeof(args), "'%s'", auditpath);
	ck_assert_int_eq(verify(args, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "ok 10 lines, 3 checkpoints, last seq 10, last sealed seq 10\n");
	/* the checkpoints also went to standard output (the log pipeline), and only they */
	ck = grep_lines(log, "\"event\":\"audit.checkpoint\"");
	ck_assert_str_eq(anchor, ck);
	snprintf(args, sizeof(args), "--anchor '%s/anchor' '%s'", dir, auditpath);
	ck_assert_int_eq(verify(args, out, sizeof(out)), 0);
	/* another key does not verify them */
	{
		char cmd[1200];
		snprintf(cmd, sizeof(cmd), "openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null"
		    " | openssl ec -pubout -out '%s/other.pem' 2>/dev/null", dir);
		ck_assert_int_eq(system(cmd), 0);
		snprintf(args, sizeof(args), "--key '%s/other.pem' '%s'", dir, auditpath);
		ck_assert_int_eq(verify(args, out, sizeof(out)), 1);
		ck_assert_str_eq(out, "line 4: checkpoint made with another key\n");
	}
	free(ck);
	free(anchor);
	free(log);
}
END_TEST

START_TEST(test_a_checkpoint_follows_new_lines_after_the_configured_seconds)
{
	char *log;
	pid_t pid;

	pid = start_engine_env("RSSP_AUDIT_CHECKPOINT_SECONDS=1", 1);
	usleep(1500 * 1000);
	log = ef_slurp(auditpath);
	/* engine.start is sealed within about a second, without waiting for 1000 lines */
	ck_assert_uint_eq(count_lines(log, "\"event\":\"audit.checkpoint\""), 1);
	free(log);
	usleep(1500 * 1000);
	log = ef_slurp(auditpath);
	ck_assert_uint_eq(count_lines(log, "\"event\":\"audit.checkpoint\""), 1); /* no new lines */
	free(log);
	unknown_calls(1);
	usleep(2000 * 1000);
	log = ef_slurp(auditpath);
	ck_assert_uint_eq(count_lines(log, "\"event\":\"audit.checkpoint\""), 2);
	free(log);
	ck_assert_int_eq(ef_engine_stop(pid), 0);
}
END_TEST

/* RSSP_AUDIT_FILE=-: standard output is the audit log and nothing else; its key comes
 * from `rssp-engine audit-key`; without a key only the chain is checked, and says so. */
START_TEST(test_a_log_on_stdout_verifies_with_the_key_audit_key_prints)
{
	char out[1024], args[1500], cmd[1500], p[600];
	pid_t pid;

	pid = start_engine_env("RSSP_AUDIT_FILE=-", 1);
	unknown_calls(2);
	ck_assert_int_eq(ef_engine_stop(pid), 0);
	snprintf(p, sizeof(p), "%s/engine.out", dir);
	snprintf(cmd, sizeof(cmd), "'%s' audit-key > '%s/key.pem' 2>/dev/null", engine_bin, dir);
	ck_assert_int_eq(system(cmd), 0);
	snprintf(args, sizeof(args), "--key '%s/key.pem' '%s'", dir, p);
	ck_assert_int_eq(verify(args, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "ok 5 lines, 1 checkpoints, last seq 5, last sealed seq 5\n");
	snprintf(args, sizeof(args), "'%s'", p);
	ck_assert_int_eq(verify(args, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "ok 5 lines (chain only), 1 checkpoints NOT checked (no audit key: "
	    "--key), last seq 5\n");
	snprintf(args, sizeof(args), "--anchor '%s' '%s'", p, p);
	ck_assert_int_eq(verify(args, out, sizeof(out)), 2);
}
END_TEST

START_TEST(test_a_rewrite_with_recomputed_hashes_fails)
{
	char out[1024], args[1500], *log, *anchor, *bad, *re, *nock;

	log = sealed_run(5, &anchor);
	snprintf(args, sizeof(args), "'%s'", auditpath);
	/* edit a call's request id and recompute every hash: the next checkpoint fails */
	bad = strdup(log);
	memcpy(strstr(bad, "\"request_id\":\"rid\""), "\"request_id\":\"RID\"", 18);
	re = rechain(bad);
	spit(auditpath, re);
	free(re);
	ck_assert_int_eq(verify(args, out, sizeof(out)), 1);
	ck_assert_str_eq(out, "line 4: checkpoint signature invalid: the chain before it was "
	    "rewritten\n");
	/* drop the checkpoints as well and renumber: the chain holds, nothing is sealed,
	 * and any retained checkpoint gives it away */
	nock = drop_lines(bad, "\"event\":\"audit.checkpoint\"");
	re = renumber(nock);
	spit(auditpath, re);
	ck_assert_int_eq(verify(args, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "ok 7 lines, 0 checkpoints, last seq 7, last sealed seq 0 "
	    "(7 lines after it not sealed yet)\n");
	snprintf(args, sizeof(args), "--anchor '%s/anchor' '%s'", dir, auditpath);
	ck_assert_int_eq(verify(args, out, sizeof(out)), 1);
	ck_assert_ptr_nonnull(strstr(out, "the checkpoint at seq 4 ("));
	ck_assert_ptr_nonnull(strstr(out, "differs from the log's line of that seq: the log was "
	    "rewritten"));
	free(re);
	free(nock);
	free(bad);
	free(anchor);
	free(log);
}
END_TEST

START_TEST(test_a_truncation_is_visible_and_fails_against_a_retained_checkpoint)
{
	char out[1024], args[1500], *log, *anchor, *p;

	log = sealed_run(5, &anchor);
	/* cut the last three lines (a call, stop, the shutdown checkpoint) */
	p = log + strlen(log) - 1;
	for (int k = 0; k < 3; k++) {
		*p = '\0';
		p = strrchr(log, '\n');
	}
	p[1] = '\0';
	spit(auditpath, log);
	snprintf(args, sizeof(args), "'%s'", auditpath);
	ck_assert_int_eq(verify(args, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "ok 7 lines, 1 checkpoints, last seq 7, last sealed seq 4 "
	    "(3 lines after it not sealed yet)\n");
	snprintf(args, sizeof(args), "--anchor '%s/anchor' '%s'", dir, auditpath);
	ck_assert_int_eq(verify(args, out, sizeof(out)), 1);
	ck_assert_ptr_nonnull(strstr(out, "truncated: the checkpoint at seq 8 ("));
	ck_assert_ptr_nonnull(strstr(out, "is beyond the end of the log (seq 7)"));
	free(anchor);
	free(log);
}
END_TEST

START_TEST(test_a_torn_last_line_is_caught_and_cut_off_at_start)
{
	char out[1024], args[1500], *log, *anchor, *log2;
	FILE *f;
	pid_t pid;

	log = sealed_run(2, &anchor);
	f = fopen(auditpath, "a");
	fputs("{\"time\":\"2026-12-03T06:00:00.000Z\",\"seq\":7,\"event\":\"sig", f);
	fclose(f);
	snprintf(args, sizeof(args), "'%s'", auditpath);
	ck_assert_int_eq(verify(args, out, sizeof(out)), 1);
	/* start, 2 calls, a checkpoint, stop, a checkpoint: the fragment is line 7 */
	ck_assert_str_eq(out, "line 7: incomplete (no newline): torn or truncated\n");
	/* the engine cuts the fragment off and continues the chain after the last whole line */
	pid = start_engine();
	unknown_calls(1);
	ck_assert_int_eq(ef_engine_stop(pid), 0);
	log2 = ef_slurp(auditpath);
	ck_assert_int_eq(strncmp(log2, log, strlen(log)), 0);
	ck_assert_ptr_nonnull(strstr(log2 + strlen(log), "\"seq\":7,\"event\":\"engine.start\""));
	ck_assert_int_eq(verify(args, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "ok 10 lines, 3 checkpoints, last seq 10, last sealed seq 10\n");
	free(log2);
	free(anchor);
	free(log);
}
END_TEST

START_TEST(test_rotation_on_sighup_and_by_size_continues_the_chain)
{
	char out[1024], args[4000], pat[600], *cur;
	glob_t g;
	pid_t pid;
	size_t i;

	pid = start_engine_env("RSSP_AUDIT_ROTATE_BYTES=3000", 1);
	unknown_calls(3);
	kill(pid, SIGHUP);
	usleep(300 * 1000);
	unknown_calls(24); /* lines of ~420 bytes: at least two rotations by size */
	ck_assert_int_eq(ef_engine_stop(pid), 0);
	snprintf(pat, sizeof(pat), "%s.*", auditpath);
	ck_assert_int_eq(glob(pat, 0, NULL, &g), 0);
	ck_assert_uint_ge(g.gl_pathc, 3); /* the SIGHUP and at least two by size */
	/* the files, oldest first, then the current one: one chain */
	args[0] = '\0';
	for (i = 0; i < g.gl_pathc; i++) {
		ck_assert_ptr_null(strstr(g.gl_pathv[i], ".pem"));
		ck_assert_ptr_null(strstr(g.gl_pathv[i], ".crt"));
		snprintf(args + strlen(args), sizeof(args) - strlen(args), "'%s' ", g.gl_pathv[i]);
	}
	snprintf(args + strlen(args), sizeof(args) - strlen(args), "'%s'", auditpath);
	ck_assert_int_eq(verify(args, out, sizeof(out)), 0);
	ck_assert_ptr_nonnull(strstr(out, "last sealed seq"));
	/* each rotated file ends with a checkpoint */
	for (i = 0; i < g.gl_pathc; i++) {
		char *t = ef_slurp(g.gl_pathv[i]), *last;
		t[strlen(t) - 1] = '\0';
		last = strrchr(t, '\n');
		ck_assert_ptr_nonnull(strstr(last != NULL ? last : t, "\"event\":\"audit.checkpoint\""));
		free(t);
	}
	/* the current file alone continues a chain: refused, unless --partial */
	snprintf(args, sizeof(args), "'%s'", auditpath);
	ck_assert_int_eq(verify(args, out, sizeof(out)), 1);
	ck_assert_ptr_nonnull(strstr(out, ", expected 1: lines or files before it are missing (give "
	    "them all, or --partial)\n"));
	snprintf(args, sizeof(args), "--partial '%s'", auditpath);
	ck_assert_int_eq(verify(args, out, sizeof(out)), 0);
	/* a file left out in the middle is a gap */
	if (g.gl_pathc >= 2) {
		snprintf(args, sizeof(args), "'%s' '%s'", g.gl_pathv[0], auditpath);
		ck_assert_int_eq(verify(args, out, sizeof(out)), 1);
		ck_assert_ptr_nonnull(strstr(out, "line(s) deleted before it"));
	}
	cur = ef_slurp(auditpath);
	ck_assert_ptr_nonnull(strstr(cur, "\"event\":\"engine.stop\""));
	free(cur);
	globfree(&g);
}
END_TEST

START_TEST(test_a_second_engine_on_the_same_audit_log_refuses_to_start)
{
	char cmd[1500], out[2048];
	FILE *f;
	size_t n;
	pid_t pid;
	int st;

	pid = start_engine();
	snprintf(cmd, sizeof(cmd), "RSSP_ENGINE_SOCKET='%s/other.sock' RSSP_AUDIT_FILE='%s' "
	    "'%s' serve 2>&1", dir, auditpath, engine_bin);
	f = popen(cmd, "r");
	n = fread(out, 1, sizeof(out) - 1, f);
	out[n] = '\0';
	st = pclose(f);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) != 0);
	ck_assert_ptr_nonnull(strstr(out, "is in use by another engine"));
	ck_assert_int_eq(ef_engine_stop(pid), 0);
}
END_TEST

/* rssp-engine probe: an unknown method must come back UNIMPLEMENTED within the timeout. */
START_TEST(test_the_probe_tells_a_live_engine_from_a_hung_or_absent_one)
{
	char cmd[1200];
	struct timespec t0, t1;
	double ms;
	pid_t pid;

	snprintf(cmd, sizeof(cmd), "RSSP_ENGINE_SOCKET='%s' '%s' probe --timeout-ms 1000 "
	    ">/dev/null 2>&1", sock, engine_bin);
	pid = start_engine();
	ck_assert_int_eq(WEXITSTATUS(system(cmd)), 0);
	kill(pid, SIGSTOP);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ck_assert_int_eq(WEXITSTATUS(system(cmd)), 1);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	ck_assert_msg(ms < 2500, "the probe of a hung engine took %.0f ms", ms);
	kill(pid, SIGCONT);
	ck_assert_int_eq(WEXITSTATUS(system(cmd)), 0);
	ck_assert_int_eq(ef_engine_stop(pid), 0);
	ck_assert_int_eq(WEXITSTATUS(system(cmd)), 1);
}
END_TEST

/* An idle gateway probes every 500 ms: the engine counts its probes (and those of
 * `rssp-engine probe`) into one engine.probes line every RSSP_AUDIT_PROBE_SECONDS and
 * one before engine.stop, instead of an audit line each; other unknown methods are
 * still audited one by one. */
START_TEST(test_liveness_probes_leave_a_count_in_the_audit_log_not_a_line_each)
{
	struct engine_client *c;
	char cmd[1200], *log, *probes, *p;
	uint8_t *resp;
	size_t resplen, lines = 0;
	long long sum = 0;
	int status, i, nprobes = 0;
	char *msg;
	pid_t pid;

	snprintf(cmd, sizeof(cmd), "RSSP_ENGINE_SOCKET='%s' '%s' probe --timeout-ms 5000 "
	    ">/dev/null 2>&1", sock, engine_bin);
	pid = start_engine_env("RSSP_AUDIT_PROBE_SECONDS=1", 1);
	ck_assert_int_eq(engine_client_new(sock, 60000, &c), 0);
	for (i = 0; i < 200; i++) {
		ck_assert_int_eq(engine_call_path(c, "/rssp.engine.v1.Engine/LivenessProbe",
		    "engine-health-probe", (const uint8_t *)"", 0, &resp, &resplen, &status, &msg), 0);
		ck_assert_int_eq(status, GRPC_STATUS_UNIMPLEMENTED);
		free(resp);
		free(msg);
	}
	ck_assert_int_eq(engine_call_path(c, "/rssp.engine.v1.Engine/ExportKey", "rid-export",
	    (const uint8_t *)"x", 1, &resp, &resplen, &status, &msg), 0);
	ck_assert_int_eq(status, GRPC_STATUS_UNIMPLEMENTED);
	free(resp);
	free(msg);
	ck_assert_int_eq(WEXITSTATUS(system(cmd)), 0);
	usleep(2500 * 1000); /* the keeper records them within about a second */
	log = ef_slurp(auditpath);
	ck_assert_ptr_nonnull(strstr(log, "\"event\":\"engine.probes\""));
	free(log);
	ck_assert_int_eq(WEXITSTATUS(system(cmd)), 0); /* recorded at the stop */
	engine_client_free(c);
	ck_assert_int_eq(ef_engine_stop(pid), 0);
	log = ef_slurp(auditpath);
	for (p = log; (p = strchr(p, '\n')) != NULL; p++)
		lines++;
	/* engine.start, rpc.unimplemented, engine.probes x2, engine.stop, a checkpoint */
	ck_assert_msg(lines <= 8, "%zu audit lines for 202 probes", lines);
	probes = grep_lines(log, "\"event\":\"engine.probes\"");
	for (p = probes; (p = strstr(p, "\"reason\":\"")) != NULL; p += 10) {
		sum += strtoll(p + 10, NULL, 10);
		nprobes++;
		ck_assert_ptr_nonnull(strstr(p, " liveness probes\""));
	}
	ck_assert_int_eq(nprobes, 2);
	ck_assert_int_eq(sum, 202);
	free(probes);
	/* only the other unknown method has a line of its own */
	probes = grep_lines(log, "\"event\":\"rpc.unimplemented\"");
	ck_assert_ptr_nonnull(strstr(probes, "\"request_id\":\"rid-export\""));
	ck_assert_ptr_null(strstr(probes, "LivenessProbe"));
	ck_assert_ptr_null(strchr(strchr(probes, '\n') + 1, '\n'));
	free(probes);
	free(log);
}
END_TEST

struct flow {
	struct engine_client *c;
	struct eh_kak *kak;
	struct eh_cred cred;
};

static void
flow_new(struct flow *f, const char *cid)
{
	int status;

	ck_assert_int_eq(engine_client_new(sock, 5000, &f->c), 0);
	ck_assert_int_eq(eh_kak_new(RSSP__ENGINE__V1__KAK_ALGO__KAK_ECDSA_P256_SHA256, &f->kak), 0);
	ck_assert_int_eq(eh_activate(f->c, f->kak, RSSP__ENGINE__V1__KEY_ALGO__KEY_EC_P256, cid,
	    "rid-act", 0, &f->cred, &status), 0);
	ck_assert_int_eq(status, GRPC_STATUS_OK);
}

static void
flow_reconnect(struct flow *f)
{
	engine_client_free(f->c);
	ck_assert_int_eq(engine_client_new(sock, 5000, &f->c), 0);
	ck_assert_int_eq(engine_client_ready(f->c, 20000), 0);
}

static void
flow_free(struct flow *f)
{
	engine_client_free(f->c);
	eh_cred_release(&f->cred);
	eh_kak_free(f->kak);
}

/* SignHash of one hash; returns the gRPC status, *msgp the message (free). */
static int
sign1(struct flow *f, const uint8_t *sad, size_t sadlen, const uint8_t *h, char **msgp)
{
	const uint8_t *hp[1] = { h };
	struct engine_signatures sigs = { 0 };
	int status = -1;

	*msgp = NULL;
	ck_assert_int_eq(eh_sign_hash(f->c, &f->cred, sad, sadlen, 1,
	    RSSP__ENGINE__V1__SIGN_ALGO__SIGN_ECDSA, hp, 1, 32, "rid-sign", &sigs, &status, msgp), 0);
	if (status == GRPC_STATUS_OK)
		ck_assert_uint_eq(sigs.n, 1);
	engine_signatures_release(&sigs);
	return status;
}

START_TEST(test_counts_and_replayed_approvals_survive_a_restart_and_a_kill)
{
	struct flow f;
	uint8_t h[32], h2[32], nonce[16], *sad = NULL, *sad2 = NULL, *sad3 = NULL;
	const uint8_t *hp[1] = { h }, *hp2[1] = { h2 };
	size_t sadlen, sadlen2, sadlen3;
	int64_t exp = (int64_t)time(NULL) + 300;
	int status;
	char *msg;
	pid_t pid;

	RAND_bytes(h, sizeof(h));
	RAND_bytes(h2, sizeof(h2));
	RAND_bytes(nonce, sizeof(nonce));
	pid = start_engine();
	flow_new(&f, "cred-restart");
	/* a one-signature SAD, used up */
	ck_assert_int_eq(eh_approve_at(f.c, f.kak, &f.cred, "approval-r1", 1, hp, 1, 1, "rid-a",
	    nonce, exp, &sad, &sadlen, &status), 0);
	ck_assert_int_eq(sign1(&f, sad, sadlen, h, &msg), GRPC_STATUS_OK);
	free(msg);
	/* a two-signature SAD, one used */
	ck_assert_int_eq(eh_approve(f.c, f.kak, &f.cred, "approval-r2", 1, hp2, 1, 2, "rid-b",
	    &sad2, &sadlen2, &status), 0);
	ck_assert_int_eq(sign1(&f, sad2, sadlen2, h2, &msg), GRPC_STATUS_OK);
	free(msg);
	ck_assert_int_eq(ef_engine_stop(pid), 0);

	/* a restarted engine: the used-up SAD stays used up, the other has one left */
	pid = start_engine();
	flow_reconnect(&f);
	ck_assert_int_eq(sign1(&f, sad, sadlen, h, &msg), GRPC_STATUS_RESOURCE_EXHAUSTED);
	ck_assert_str_eq(msg, "sad exhausted");
	free(msg);
	/* the same approval again: the same SAD, still used up */
	ck_assert_int_eq(eh_approve_at(f.c, f.kak, &f.cred, "approval-r1", 1, hp, 1, 1, "rid-a2",
	    nonce, exp, &sad3, &sadlen3, &status), 0);
	ck_assert_int_eq(status, GRPC_STATUS_OK);
	ck_assert_uint_eq(sadlen3, sadlen);
	ck_assert_int_eq(memcmp(sad3, sad, sadlen), 0);
	free(sad3);
	ck_assert_int_eq(sign1(&f, sad, sadlen, h, &msg), GRPC_STATUS_RESOURCE_EXHAUSTED);
	free(msg);

	/* kill -9 after the second signature: nothing is lost either */
	ck_assert_int_eq(sign1(&f, sad2, sadlen2, h2, &msg), GRPC_STATUS_OK);
	free(msg);
	ef_engine_kill(pid);
	unlink(sock);
	pid = start_engine();
	flow_reconnect(&f);
	ck_assert_int_eq(sign1(&f, sad2, sadlen2, h2, &msg), GRPC_STATUS_RESOURCE_EXHAUSTED);
	free(msg);
	ck_assert_int_eq(eh_approve_at(f.c, f.kak, &f.cred, "approval-r1", 1, hp, 1, 1, "rid-a3",
	    nonce, exp, &sad3, &sadlen3, &status), 0);
	ck_assert_int_eq(memcmp(sad3, sad, sadlen), 0);
	free(sad3);
	ck_assert_int_eq(ef_engine_stop(pid), 0);
	{
		char *log = ef_slurp(auditpath);
		ck_assert_uint_eq(count_lines(log, "\"reason\":\"approval replayed: same sad\""), 2);
		free(log);
	}
	free(sad);
	free(sad2);
	flow_free(&f);
}
END_TEST

/* Counts come back from rotated files too: with a rotation after every line, each
 * signature's line is in a file of its own by the time the engine restarts. */
START_TEST(test_counts_are_read_back_from_rotated_files)
{
	struct flow f;
	uint8_t h[32], *sad = NULL;
	const uint8_t *hp[1] = { h };
	size_t sadlen;
	int status;
	char *msg, pat[600];
	glob_t g;
	pid_t pid;

	RAND_bytes(h, sizeof(h));
	pid = start_engine_env("RSSP_AUDIT_ROTATE_BYTES=1", 1);
	flow_new(&f, "cred-rotated");
	ck_assert_int_eq(eh_approve(f.c, f.kak, &f.cred, "approval-rot", 1, hp, 1, 2, "rid-r",
	    &sad, &sadlen, &status), 0);
	ck_assert_int_eq(sign1(&f, sad, sadlen, h, &msg), GRPC_STATUS_OK);
	free(msg);
	ck_assert_int_eq(sign1(&f, sad, sadlen, h, &msg), GRPC_STATUS_OK);
	free(msg);
	ef_engine_kill(pid);
	unlink(sock);
	snprintf(pat, sizeof(pat), "%s.*", auditpath);
	ck_assert_int_eq(glob(pat, 0, NULL, &g), 0);
	ck_assert_uint_ge(g.gl_pathc, 5);
	globfree(&g);
	pid = start_engine();
	flow_reconnect(&f);
	ck_assert_int_eq(sign1(&f, sad, sadlen, h, &msg), GRPC_STATUS_RESOURCE_EXHAUSTED);
	ck_assert_str_eq(msg, "sad exhausted");
	free(msg);
	ck_assert_int_eq(ef_engine_stop(pid), 0);
	/* the killed engine left an empty current file: the restarted one continued the
	 * chain from the newest rotated file, so all the files are still one chain */
	{
		char args[8000], out[1024];
		size_t i;

		ck_assert_int_eq(glob(pat, 0, NULL, &g), 0);
		args[0] = '\0';
		for (i = 0; i < g.gl_pathc; i++)
			snprintf(args + strlen(args), sizeof(args) - strlen(args), "'%s' ", g.gl_pathv[i]);
		snprintf(args + strlen(args), sizeof(args) - strlen(args), "'%s'", auditpath);
		globfree(&g);
		ck_assert_int_eq(verify(args, out, sizeof(out)), 0);
	}
	free(sad);
	flow_free(&f);
}
END_TEST

/* logrotate's way: the file moved away, SIGHUP. When the path cannot be opened (here a
 * directory took its place) every call is refused, nothing spent, until it can. */
START_TEST(test_a_log_path_that_cannot_be_reopened_refuses_calls_until_it_can)
{
	struct flow f;
	uint8_t h[32], *sad = NULL;
	const uint8_t *hp[1] = { h };
	char moved[600], out[1024], args[1500], *msg;
	size_t sadlen;
	int status, i;
	pid_t pid;

	RAND_bytes(h, sizeof(h));
	pid = start_engine();
	flow_new(&f, "cred-reopen");
	ck_assert_int_eq(eh_approve(f.c, f.kak, &f.cred, "approval-reopen", 1, hp, 1, 1, "rid-o",
	    &sad, &sadlen, &status), 0);
	snprintf(moved, sizeof(moved), "%s.moved", auditpath);
	ck_assert_int_eq(rename(auditpath, moved), 0);
	ck_assert_int_eq(mkdir(auditpath, 0700), 0);
	kill(pid, SIGHUP);
	usleep(300 * 1000);
	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(sign1(&f, sad, sadlen, h, &msg), GRPC_STATUS_UNAVAILABLE);
		ck_assert_str_eq(msg, "audit log unavailable");
		free(msg);
	}
	/* the path can be opened again: the next call goes through, no SIGHUP needed, and
	 * the refused calls spent nothing of the one signature */
	ck_assert_int_eq(rmdir(auditpath), 0);
	ck_assert_int_eq(sign1(&f, sad, sadlen, h, &msg), GRPC_STATUS_OK);
	free(msg);
	ck_assert_int_eq(sign1(&f, sad, sadlen, h, &msg), GRPC_STATUS_RESOURCE_EXHAUSTED);
	free(msg);
	ck_assert_int_eq(ef_engine_stop(pid), 0);
	/* the moved file, sealed at the SIGHUP, and the new one: one chain */
	snprintf(args, sizeof(args), "'%s' '%s'", moved, auditpath);
	ck_assert_int_eq(verify(args, out, sizeof(out)), 0);
	free(sad);
	flow_free(&f);
}
END_TEST

/* Fills the filesystem of path's directory: returns the filler's path. */
static void
fill(const char *filler)
{
	static char block[4096];
	int fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ssize_t n;

	ck_assert_int_ge(fd, 0);
	do
		n = write(fd, block, sizeof(block));
	while (n > 0);
	do
		n = write(fd, block, 1);
	while (n > 0);
	close(fd);
}

START_TEST(test_a_full_disk_refuses_with_unavailable_spends_nothing_and_leaves_whole_lines)
{
	struct flow f;
	uint8_t h[32], *sad = NULL;
	const uint8_t *hp[1] = { h };
	char filler[500], out[1024], args[1200], *log, *msg;
	size_t sadlen;
	int status, i, refused = 0;
	pid_t pid;

	snprintf(small, sizeof(small), "%s/small", dir);
	mkdir(small, 0700);
	ck_assert_msg(mount("tmpfs", small, "tmpfs", 0, "size=64k,mode=0700") == 0,
	    "mount tmpfs: %s (the suite runs as root)", strerror(errno));
	snprintf(auditpath, sizeof(auditpath), "%s/audit.log", small);
	snprintf(filler, sizeof(filler), "%s/filler", small);
	RAND_bytes(h, sizeof(h));
	pid = start_engine();
	flow_new(&f, "cred-full");
	ck_assert_int_eq(eh_approve(f.c, f.kak, &f.cred, "approval-full", 1, hp, 1, 1, "rid-f",
	    &sad, &sadlen, &status), 0);
	fill(filler);
	/* the log's last page may still take a few lines: fill it with calls that spend
	 * nothing (an unknown method is answered whether or not its line is written) */
	unknown_calls(12);
	/* every call refused while the disk is full: UNAVAILABLE, named */
	for (i = 0; i < 5; i++) {
		status = sign1(&f, sad, sadlen, h, &msg);
		if (status == GRPC_STATUS_UNAVAILABLE) {
			ck_assert_str_eq(msg, "audit log unavailable");
			refused++;
		} else /* the last page of the log may still take a line or two */
			ck_assert_int_eq(status, GRPC_STATUS_OK);
		free(msg);
		if (status == GRPC_STATUS_OK)
			break;
	}
	ck_assert_msg(refused > 0 || status == GRPC_STATUS_OK, "nothing refused");
	/* no partial line was left */
	log = ef_slurp(auditpath);
	ck_assert_int_eq(log[strlen(log) - 1], '\n');
	free(log);
	if (status != GRPC_STATUS_OK) {
		/* space again: the refused calls spent nothing, the one signature is there */
		unlink(filler);
		ck_assert_int_eq(sign1(&f, sad, sadlen, h, &msg), GRPC_STATUS_OK);
		free(msg);
	}
	ck_assert_int_eq(sign1(&f, sad, sadlen, h, &msg), GRPC_STATUS_RESOURCE_EXHAUSTED);
	free(msg);
	ck_assert_int_gt(refused, 0);
	unlink(filler);
	ck_assert_int_eq(ef_engine_stop(pid), 0);
	snprintf(args, sizeof(args), "--key '%s/audit-key.pem' '%s'", small, auditpath);
	ck_assert_int_eq(verify(args, out, sizeof(out)), 0);
	log = ef_slurp(auditpath);
	ck_assert_uint_eq(count_lines(log, "\"event\":\"signhash\""), 2); /* ok, exhausted */
	ck_assert_uint_eq(count_lines(log, "\"signatures\":1,"), 1);
	free(log);
	free(sad);
	flow_free(&f);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("engine_audit");
	TCase *tc = tcase_create("audit");
	SRunner *sr;
	int failed;

	signal(SIGPIPE, SIG_IGN);
	tcase_add_unchecked_fixture(tc, suite_setup, suite_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_init_writes_the_audit_key_and_its_certificate_next_to_the_log);
	tcase_add_test(tc, test_checkpoints_are_sealed_by_the_hsm_and_go_to_stdout);
	tcase_add_test(tc, test_a_checkpoint_follows_new_lines_after_the_configured_seconds);
	tcase_add_test(tc, test_a_log_on_stdout_verifies_with_the_key_audit_key_prints);
	tcase_add_test(tc, test_a_rewrite_with_recomputed_hashes_fails);
	tcase_add_test(tc, test_a_truncation_is_visible_and_fails_against_a_retained_checkpoint);
	tcase_add_test(tc, test_a_torn_last_line_is_caught_and_cut_off_at_start);
	tcase_add_test(tc, test_rotation_on_sighup_and_by_size_continues_the_chain);
	tcase_add_test(tc, test_a_second_engine_on_the_same_audit_log_refuses_to_start);
	tcase_add_test(tc, test_the_probe_tells_a_live_engine_from_a_hung_or_absent_one);
	tcase_add_test(tc, test_liveness_probes_leave_a_count_in_the_audit_log_not_a_line_each);
	tcase_add_test(tc, test_counts_and_replayed_approvals_survive_a_restart_and_a_kill);
	tcase_add_test(tc, test_counts_are_read_back_from_rotated_files);
	tcase_add_test(tc, test_a_log_path_that_cannot_be_reopened_refuses_calls_until_it_can);
	tcase_add_test(tc, test_a_full_disk_refuses_with_unavailable_spends_nothing_and_leaves_whole_lines);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
