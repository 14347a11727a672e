/* The real rssp-engine binary on a SoftHSM2 token, called through engine_client:
 * activation, approval and SignHash for RSA-2048 and P-256, refusals, peer uids,
 * draining on SIGTERM, the audit record, a second instance, audit-verify, and a
 * compromised gateway on the socket against the enrolment voucher (issue 9). */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <grpc/status.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "engine_helper.h"
#include "fixture.h"
#include "rssp_err.h"

#define PIN "rpc-e2e-pin-7Q3Z"
#define TOKEN "rpc-e2e"

static char base[200], sock[400], auditpath[400];
static const char *engine_bin;
static int test_no;

/* Once per suite, in the parent: a SoftHSM2 configuration, a token, rssp-engine init. */
static void
suite_setup(void)
{
	char cmd[1200];

	ef_tempdir(base, sizeof(base), "rpce2e");
	engine_bin = ef_engine_bin(RSSP_ENGINE_BIN);
	ef_engine_token(base, TOKEN, PIN);
	/* the registration authority the engine trusts and eh_activate vouches with */
	if (eh_ra_setup(base) != 0)
		ef_run("false # ra key");
	snprintf(cmd, sizeof(cmd), "'%s' init --ca-subject 'CN=rpc e2e CA' >/dev/null", engine_bin);
	ef_run(cmd);
}

static void
suite_teardown(void)
{
	eh_ra_release();
	ef_rmtree(base);
}

static void
setup(void)
{
	char d[300];

	test_no++;
	snprintf(d, sizeof(d), "%s/t%d-%d", base, test_no, (int)getpid());
	mkdir(d, 0700);
	snprintf(sock, sizeof(sock), "%s/run/engine.sock", d);
	snprintf(auditpath, sizeof(auditpath), "%s/audit.log", d);
}

/* Starts the engine; extra: "NAME=value" or NULL. Waits until it answers. */
static pid_t
start_engine_env(const char *extra, int wait_ready)
{
	return ef_engine_start(engine_bin, sock, auditpath, NULL, extra, wait_ready);
}

static void
tohex(const uint8_t *b, size_t n, char *out)
{
	size_t i;

	for (i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
}

static void
random_hashes(uint8_t (*h)[32], const uint8_t **hp, size_t n)
{
	size_t i;

	ck_assert_int_eq(RAND_bytes((uint8_t *)h, (int)(32 * n)), 1);
	for (i = 0; i < n; i++)
		hp[i] = h[i];
}

/* Activate, approve two hashes, sign them, verify the signatures. */
static void
sign_flow(struct engine_client *c, int key_algo, int kak_algo, int sign_algo, const char *cid,
    uint8_t **sadp, size_t *sadlenp)
{
	struct eh_kak *kak;
	struct eh_cred cred;
	struct engine_signatures resp = { 0 };
	uint8_t h[2][32], *sad = NULL;
	const uint8_t *hp[2];
	size_t sadlen = 0, i;
	int status;
	char *msg, rid[64];

	random_hashes(h, hp, 2);
	ck_assert_int_eq(eh_kak_new(kak_algo, &kak), 0);
	snprintf(rid, sizeof(rid), "rid-act-%s", cid);
	ck_assert_int_eq(eh_activate(c, kak, key_algo, cid, rid, 0, &cred, &status), 0);
	ck_assert_int_eq(status, GRPC_STATUS_OK);
	ck_assert_str_ne(cred.key_label, "");
	snprintf(rid, sizeof(rid), "rid-app-%s", cid);
	ck_assert_int_eq(eh_approve(c, kak, &cred, "approval-1", 1, hp, 2, 2, rid, &sad, &sadlen,
	    &status), 0);
	ck_assert_int_eq(status, GRPC_STATUS_OK);
	snprintf(rid, sizeof(rid), "rid-sign-%s", cid);
	ck_assert_int_eq(eh_sign_hash(c, &cred, sad, sadlen, 1, sign_algo, hp, 2, 32, rid, &resp,
	    &status, &msg), 0);
	ck_assert_msg(status == GRPC_STATUS_OK, "signhash status %d: %s", status, msg ? msg : "");
	free(msg);
	ck_assert_uint_eq(resp.n, 2);
	for (i = 0; i < 2; i++)
		ck_assert_int_eq(eh_verify(&cred, sign_algo, 1, hp[i], 32, resp.sig[i],
		    resp.len[i]), 0);
	engine_signatures_release(&resp);
	/* the count is spent: a third signature is refused */
	ck_assert_int_eq(eh_sign_hash(c, &cred, sad, sadlen, 1, sign_algo, hp, 1, 32, "rid-more",
	    NULL, &status, &msg), 0);
	ck_assert_int_eq(status, GRPC_STATUS_RESOURCE_EXHAUSTED);
	free(msg);
	eh_cred_release(&cred);
	eh_kak_free(kak);
	if (sadp != NULL) {
		*sadp = sad;
		*sadlenp = sadlen;
	} else {
		free(sad);
	}
}

START_TEST(test_activation_approval_and_signhash_work_for_rsa2048_and_p256)
{
	struct engine_client *c;
	pid_t pid = start_engine_env(NULL, 1);
	uint8_t *sad = NULL;
	size_t sadlen = 0;
	char *log, *hex, b64[8192];
	int n;

	ck_assert_int_eq(engine_client_new(sock, 20000, &c), 0);
	sign_flow(c, RSSP__ENGINE__V1__KEY_ALGO__KEY_RSA2048,
	    RSSP__ENGINE__V1__KAK_ALGO__KAK_ECDSA_P256_SHA256,
	    RSSP__ENGINE__V1__SIGN_ALGO__SIGN_RSA_PKCS1_V15, "cred-rsa", NULL, NULL);
	sign_flow(c, RSSP__ENGINE__V1__KEY_ALGO__KEY_RSA2048,
	    RSSP__ENGINE__V1__KAK_ALGO__KAK_RSASSA_PSS_SHA256,
	    RSSP__ENGINE__V1__SIGN_ALGO__SIGN_RSA_PSS, "cred-rsa-pss", NULL, NULL);
	sign_flow(c, RSSP__ENGINE__V1__KEY_ALGO__KEY_EC_P256,
	    RSSP__ENGINE__V1__KAK_ALGO__KAK_ECDSA_P256_SHA256,
	    RSSP__ENGINE__V1__SIGN_ALGO__SIGN_ECDSA, "cred-ec", &sad, &sadlen);
	engine_client_free(c);
	ck_assert_int_eq(ef_engine_stop(pid), 0);

	log = ef_slurp(auditpath);
	/* every decision carries its request id */
	ck_assert_ptr_nonnull(strstr(log, "\"event\":\"authorize.activation\",\"request_id\":\"rid-act-cred-rsa\""));
	ck_assert_ptr_nonnull(strstr(log, "\"event\":\"authorize.approval\",\"request_id\":\"rid-app-cred-ec\""));
	ck_assert_ptr_nonnull(strstr(log, "\"event\":\"signhash\",\"request_id\":\"rid-sign-cred-ec\""));
	ck_assert_ptr_nonnull(strstr(log, "\"event\":\"engine.start\""));
	ck_assert_ptr_nonnull(strstr(log, "\"event\":\"engine.stop\""));
	/* no SAD (hex or base64) and no PIN in the audit output */
	hex = malloc(2 * sadlen + 1);
	tohex(sad, sadlen, hex);
	ck_assert_ptr_null(strstr(log, hex));
	hex[40] = '\0';
	ck_assert_ptr_null(strstr(log, hex));
	n = EVP_EncodeBlock((unsigned char *)b64, sad, (int)sadlen);
	ck_assert_int_gt(n, 40);
	b64[40] = '\0';
	ck_assert_ptr_null(strstr(log, b64));
	ck_assert_ptr_null(strstr(log, PIN));
	free(hex);
	free(sad);
	free(log);
}
END_TEST

START_TEST(test_a_forged_sad_is_permission_denied)
{
	struct engine_client *c;
	struct eh_kak *kak;
	struct eh_cred cred;
	pid_t pid = start_engine_env(NULL, 1);
	uint8_t h[1][32], *sad = NULL;
	const uint8_t *hp[1];
	size_t sadlen = 0;
	int status;
	char *msg;

	random_hashes(h, hp, 1);
	ck_assert_int_eq(engine_client_new(sock, 20000, &c), 0);
	ck_assert_int_eq(eh_kak_new(RSSP__ENGINE__V1__KAK_ALGO__KAK_ECDSA_P256_SHA256, &kak), 0);
	ck_assert_int_eq(eh_activate(c, kak, RSSP__ENGINE__V1__KEY_ALGO__KEY_EC_P256, "cred-forge",
	    "rid-a", 0, &cred, &status), 0);
	ck_assert_int_eq(status, GRPC_STATUS_OK);
	ck_assert_int_eq(eh_approve(c, kak, &cred, "approval-f", 1, hp, 1, 5, "rid-b", &sad,
	    &sadlen, &status), 0);
	ck_assert_int_eq(status, GRPC_STATUS_OK);
	/* a flipped bit anywhere: the MAC no longer matches */
	sad[sadlen / 2] ^= 0x01;
	ck_assert_int_eq(eh_sign_hash(c, &cred, sad, sadlen, 1, RSSP__ENGINE__V1__SIGN_ALGO__SIGN_ECDSA,
	    hp, 1, 32, "rid-forged", NULL, &status, &msg), 0);
	ck_assert_int_eq(status, GRPC_STATUS_PERMISSION_DENIED);
	free(msg);
	sad[sadlen / 2] ^= 0x01;
	sad[sadlen - 1] ^= 0x80;
	ck_assert_int_eq(eh_sign_hash(c, &cred, sad, sadlen, 1, RSSP__ENGINE__V1__SIGN_ALGO__SIGN_ECDSA,
	    hp, 1, 32, "rid-forged2", NULL, &status, &msg), 0);
	ck_assert_int_eq(status, GRPC_STATUS_PERMISSION_DENIED);
	free(msg);
	/* a bad KAK signature on an activation is refused too */
	{
		struct eh_cred c2;
		ck_assert_int_eq(eh_activate(c, kak, RSSP__ENGINE__V1__KEY_ALGO__KEY_EC_P256,
		    "cred-forge2", "rid-c", 1, &c2, &status), 0);
		ck_assert_int_eq(status, GRPC_STATUS_PERMISSION_DENIED);
	}
	eh_cred_release(&cred);
	eh_kak_free(kak);
	free(sad);
	engine_client_free(c);
	ck_assert_int_eq(ef_engine_stop(pid), 0);
	msg = ef_slurp(auditpath);
	ck_assert_ptr_nonnull(strstr(msg, "\"event\":\"signhash\",\"request_id\":\"rid-forged\""));
	ck_assert_ptr_nonnull(strstr(msg, "\"result\":\"refused\""));
	free(msg);
}
END_TEST

START_TEST(test_an_unknown_method_and_an_oversize_message_are_refused_and_audited)
{
	struct engine_client *c;
	pid_t pid = start_engine_env(NULL, 1);
	uint8_t *resp = NULL, *big;
	size_t resplen;
	int status;
	char *msg = NULL, *log;

	ck_assert_int_eq(engine_client_new(sock, 60000, &c), 0);
	ck_assert_int_eq(engine_call_path(c, "/rssp.engine.v1.Engine/ExportKey", "rid-unknown",
	    (const uint8_t *)"", 0, &resp, &resplen, &status, &msg), 0);
	ck_assert_int_eq(status, GRPC_STATUS_UNIMPLEMENTED);
	free(msg);
	big = calloc(1, 200 * 1024);
	big[0] = 0x12; /* would be field 2 (credential_id) if anyone unpacked it */
	ck_assert_int_eq(engine_call(c, ENGINE_METHOD_SIGNHASH, "rid-big", big, 200 * 1024,
	    &resp, &resplen, &status, &msg), 0);
	ck_assert_int_eq(status, GRPC_STATUS_RESOURCE_EXHAUSTED);
	free(msg);
	ck_assert_int_eq(engine_call(c, ENGINE_METHOD_AUTHORIZE, "rid-big2", big, 97 * 1024,
	    &resp, &resplen, &status, &msg), 0);
	ck_assert_int_eq(status, GRPC_STATUS_RESOURCE_EXHAUSTED);
	free(msg);
	free(big);
	engine_client_free(c);
	ck_assert_int_eq(ef_engine_stop(pid), 0);
	log = ef_slurp(auditpath);
	ck_assert_ptr_nonnull(strstr(log, "\"event\":\"rpc.unimplemented\",\"request_id\":\"rid-unknown\""));
	ck_assert_ptr_nonnull(strstr(log, "\"event\":\"rpc.too_large\",\"request_id\":\"rid-big\""));
	ck_assert_ptr_nonnull(strstr(log, "\"event\":\"rpc.too_large\",\"request_id\":\"rid-big2\""));
	free(log);
}
END_TEST

START_TEST(test_a_peer_uid_not_allowed_is_refused_and_audited)
{
	struct engine_client *c;
	pid_t pid;
	uint8_t *resp = NULL;
	size_t resplen;
	int status, i;
	char *msg = NULL, *log = NULL, want[80];

	ck_assert_uint_ne(getuid(), 65534);
	pid = start_engine_env("RSSP_ENGINE_ALLOWED_UIDS=65534", 0);
	/* wait until it serves (engine.start is written after listen), then call: the
	 * connection is closed at once */
	for (i = 0; i < 400; i++) {
		FILE *f = fopen(auditpath, "r");
		char line[4096];
		int started = 0;
		while (f != NULL && fgets(line, sizeof(line), f) != NULL)
			started |= strstr(line, "\"event\":\"engine.start\"") != NULL;
		if (f != NULL)
			fclose(f);
		if (started)
			break;
		usleep(50 * 1000);
	}
	ck_assert_int_eq(engine_client_new(sock, 3000, &c), 0);
	ck_assert_int_eq(engine_call(c, ENGINE_METHOD_SIGNHASH, "rid-peer", (const uint8_t *)"", 0,
	    &resp, &resplen, &status, &msg), RSSP_E_UNAVAILABLE);
	engine_client_free(c);
	ck_assert_int_eq(ef_engine_stop(pid), 0);
	log = ef_slurp(auditpath);
	snprintf(want, sizeof(want), "\"event\":\"peer.refused\",\"request_id\":\"\",\"peer_uid\":%u,",
	    (unsigned)getuid());
	ck_assert_msg(strstr(log, want) != NULL, "no %s in %s", want, log);
	ck_assert_ptr_null(strstr(log, "rid-peer"));
	free(log);
}
END_TEST

struct inflight {
	struct engine_client *c;
	const struct eh_cred *cred;
	const uint8_t *sad;
	size_t sadlen;
	const uint8_t **hp;
	size_t n;
	int rc, status;
	size_t nsig;
};

static void *
inflight_call(void *arg)
{
	struct inflight *f = arg;
	struct engine_signatures resp = { 0 };
	char *msg = NULL;

	f->rc = eh_sign_hash(f->c, f->cred, f->sad, f->sadlen, 1,
	    RSSP__ENGINE__V1__SIGN_ALGO__SIGN_RSA_PKCS1_V15, f->hp, f->n, 32, "rid-drain", &resp,
	    &f->status, &msg);
	f->nsig = resp.n;
	engine_signatures_release(&resp);
	free(msg);
	return NULL;
}

START_TEST(test_sigterm_during_calls_in_flight_drains_them_and_exits_0)
{
	enum { N = 500, T = 2 };
	struct engine_client *c;
	struct eh_kak *kak;
	struct eh_cred cred;
	struct inflight f[T];
	pthread_t th[T];
	uint8_t (*h)[32] = malloc(N * 32), *sad = NULL;
	const uint8_t **hp = malloc(N * sizeof(*hp));
	size_t sadlen = 0;
	pid_t pid = start_engine_env("RSSP_ENGINE_WORKERS=2", 1);
	int status, i;

	random_hashes(h, hp, N);
	ck_assert_int_eq(engine_client_new(sock, 60000, &c), 0);
	ck_assert_int_eq(eh_kak_new(RSSP__ENGINE__V1__KAK_ALGO__KAK_ECDSA_P256_SHA256, &kak), 0);
	ck_assert_int_eq(eh_activate(c, kak, RSSP__ENGINE__V1__KEY_ALGO__KEY_RSA2048, "cred-drain",
	    "rid-a", 0, &cred, &status), 0);
	ck_assert_int_eq(status, GRPC_STATUS_OK);
	ck_assert_int_eq(eh_approve(c, kak, &cred, "approval-d", 1, hp, N, N * T, "rid-b", &sad,
	    &sadlen, &status), 0);
	ck_assert_int_eq(status, GRPC_STATUS_OK);
	for (i = 0; i < T; i++) {
		f[i] = (struct inflight){ .c = c, .cred = &cred, .sad = sad, .sadlen = sadlen,
		    .hp = hp, .n = N };
		ck_assert_int_eq(pthread_create(&th[i], NULL, inflight_call, &f[i]), 0);
	}
	/* each call signs 500 RSA hashes (about 300 ms on an idle machine); stop while
	 * they run */
	usleep(100 * 1000);
	kill(pid, SIGTERM);
	for (i = 0; i < T; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(f[i].rc, 0);
		ck_assert_int_eq(f[i].status, GRPC_STATUS_OK);
		ck_assert_uint_eq(f[i].nsig, N);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	ck_assert_int_ne(access(sock, F_OK), 0);
	eh_cred_release(&cred);
	eh_kak_free(kak);
	engine_client_free(c);
	free(sad);
	free(h);
	free(hp);
}
END_TEST

START_TEST(test_a_second_instance_on_a_live_socket_refuses_to_start)
{
	struct engine_client *c;
	pid_t pid = start_engine_env(NULL, 1), pid2;
	uint8_t *resp = NULL;
	size_t resplen;
	int st, status;
	char *msg = NULL;

	pid2 = start_engine_env(NULL, 0);
	ck_assert_int_eq(waitpid(pid2, &st, 0), pid2);
	ck_assert(WIFEXITED(st));
	ck_assert_int_ne(WEXITSTATUS(st), 0);
	/* the first still serves */
	ck_assert_int_eq(engine_client_new(sock, 5000, &c), 0);
	ck_assert_int_eq(engine_call_path(c, "/x.Y/Z", "rid", (const uint8_t *)"", 0, &resp,
	    &resplen, &status, &msg), 0);
	ck_assert_int_eq(status, GRPC_STATUS_UNIMPLEMENTED);
	free(msg);
	engine_client_free(c);
	ck_assert_int_eq(ef_engine_stop(pid), 0);
}
END_TEST

START_TEST(test_audit_verify_accepts_the_engines_log_and_catches_an_edit_a_deletion_and_a_reorder)
{
	struct engine_client *c;
	pid_t pid;
	uint8_t *resp = NULL;
	size_t resplen;
	int status, i;
	char *msg = NULL, *log, *p, *orig, cmd[800], out[512];
	FILE *f;

	/* two runs: the chain continues across the restart */
	for (i = 0; i < 2; i++) {
		pid = start_engine_env(NULL, 1);
		ck_assert_int_eq(engine_client_new(sock, 5000, &c), 0);
		ck_assert_int_eq(engine_call_path(c, "/x.Y/Z", "rid", (const uint8_t *)"", 0, &resp,
		    &resplen, &status, &msg), 0);
		free(msg);
		engine_client_free(c);
		ck_assert_int_eq(ef_engine_stop(pid), 0);
	}
	snprintf(cmd, sizeof(cmd), "'%s' audit-verify '%s' 2>/dev/null", engine_bin, auditpath);
	f = popen(cmd, "r");
	ck_assert_ptr_nonnull(fgets(out, sizeof(out), f));
	ck_assert_int_eq(pclose(f), 0);
	/* per run: start, the unknown method, stop, the shutdown checkpoint */
	ck_assert_str_eq(out, "ok 8 lines, 2 checkpoints, last seq 8, last sealed seq 8\n");
	/* edit the second line's event */
	log = ef_slurp(auditpath);
	orig = strdup(log);
	p = strstr(log, "rpc.unimplemented");
	ck_assert_ptr_nonnull(p);
	memcpy(p, "rpc.unimplementeD", 17);
	f = fopen(auditpath, "w");
	fputs(log, f);
	fclose(f);
	free(log);
	f = popen(cmd, "r");
	ck_assert_ptr_nonnull(fgets(out, sizeof(out), f));
	ck_assert_int_eq(WEXITSTATUS(pclose(f)), 1);
	ck_assert_str_eq(out, "line 2: edited (line 3's prev does not match it)\n");
	/* delete the third line, then swap the second and third */
	{
		char *lines[16], *save = NULL, *t;
		int n = 0;
		const int del[] = { 0, 1, 3, 4, 5, 6, 7 }, swp[] = { 0, 2, 1, 3, 4, 5, 6, 7 };
		const int *orders[2] = { del, swp };
		const int counts[2] = { 7, 8 };
		const char *want[2] = {
			"line 3: seq 4, expected 3: line(s) deleted before it\n",
			"line 2: seq 3 comes before seq 2 (line 3): lines reordered\n",
		};
		int k, j;

		for (t = strtok_r(orig, "\n", &save); t != NULL && n < 16; t = strtok_r(NULL, "\n", &save))
			lines[n++] = t;
		ck_assert_int_eq(n, 8);
		for (k = 0; k < 2; k++) {
			f = fopen(auditpath, "w");
			for (j = 0; j < counts[k]; j++)
				fprintf(f, "%s\n", lines[orders[k][j]]);
			fclose(f);
			f = popen(cmd, "r");
			ck_assert_ptr_nonnull(fgets(out, sizeof(out), f));
			ck_assert_int_eq(WEXITSTATUS(pclose(f)), 1);
			ck_assert_str_eq(out, want[k]);
		}
	}
	free(orig);
}
END_TEST

START_TEST(test_the_engine_runs_with_umask_077_and_without_core_dumps)
{
	pid_t pid = start_engine_env(NULL, 1);
	char path[64], *txt, *p;
	struct stat st;
	char d[400];

	snprintf(path, sizeof(path), "/proc/%d/limits", (int)pid);
	txt = ef_slurp(path);
	p = strstr(txt, "Max core file size");
	ck_assert_ptr_nonnull(p);
	{
		char soft[32], hard[32];
		ck_assert_int_eq(sscanf(p + strlen("Max core file size"), "%31s %31s", soft, hard), 2);
		ck_assert_str_eq(soft, "0");
		ck_assert_str_eq(hard, "0");
	}
	free(txt);
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	txt = ef_slurp(path);
	ck_assert_ptr_nonnull(strstr(txt, "Umask:\t0077\n"));
	free(txt);
	/* the socket directory is 0750, the socket 0660 */
	snprintf(d, sizeof(d), "%s", sock);
	*strrchr(d, '/') = '\0';
	ck_assert_int_eq(stat(d, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0750);
	ck_assert_int_eq(stat(sock, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0660);
	ck_assert_int_eq(ef_engine_stop(pid), 0);
}
END_TEST

START_TEST(test_check_prints_the_configuration_without_the_pin)
{
	char cmd[800], out[4096];
	size_t n;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "RSSP_ENGINE_SOCKET='%s' '%s' serve --check", sock, engine_bin);
	f = popen(cmd, "r");
	n = fread(out, 1, sizeof(out) - 1, f);
	out[n] = '\0';
	ck_assert_int_eq(pclose(f), 0);
	ck_assert_ptr_nonnull(strstr(out, "RSSP_PIN_FILE="));
	ck_assert_ptr_nonnull(strstr(out, "RSSP_TOKEN_LABEL=" TOKEN "\n"));
	ck_assert_ptr_nonnull(strstr(out, "configuration ok"));
	ck_assert_ptr_null(strstr(out, PIN));
	/* the trusted RA key, by its id */
	ck_assert_ptr_nonnull(strstr(out, "# ra key "));
	ck_assert_ptr_nonnull(strstr(out, " ec-p256\n"));
	ck_assert_ptr_nonnull(strstr(out, "# ra keys trusted: 1\n"));
}
END_TEST

/* One refused activation over the socket: the status, the engine's named reason. */
static void
refused(struct engine_client *c, const struct eh_kak *kak, const char *cid, const char *owner,
    const char *device, const struct eh_voucher_spec *vs, const char *rid, int want_status,
    const char *want_reason)
{
	struct eh_cred cred;
	char msg[ENGINE_MESSAGE_MAX];
	X509 *x = NULL;
	int status = -1;

	ck_assert_msg(eh_activate_as(c, kak, RSSP__ENGINE__V1__KEY_ALGO__KEY_EC_P256, cid, owner,
	    device, vs, rid, &cred, &status, msg, sizeof(msg), &x) == 0, "%s: no answer", rid);
	ck_assert_msg(status == want_status, "%s: status %d (%s), want %d (%s)", rid, status, msg,
	    want_status, want_reason);
	ck_assert_str_eq(msg, want_reason);
	ck_assert_ptr_null(x);
	eh_cred_release(&cred);
}

/* The gateway is the attacker: it holds the socket, every voucher the gateway ever saw,
 * and keys of its own, but no RA private key. The victim is "victim-1" on "phone-v"
 * (KAK vkak, vouched by the trusted RA); "user-b" is another user. */
START_TEST(test_a_compromised_gateway_on_the_socket_gets_no_key_without_a_matching_voucher)
{
	struct engine_client *c;
	struct eh_kak *vkak, *akak;
	EVP_PKEY *rogue = EVP_EC_gen("P-256");
	struct eh_voucher_spec vs;
	struct eh_cred cred;
	pid_t pid = start_engine_env(NULL, 1);
	int status;
	char *log;
	int64_t now = (int64_t)time(NULL);

	ck_assert_ptr_nonnull(rogue);
	ck_assert_int_eq(engine_client_new(sock, 20000, &c), 0);
	ck_assert_int_eq(eh_kak_new(RSSP__ENGINE__V1__KAK_ALGO__KAK_ECDSA_P256_SHA256, &vkak), 0);
	ck_assert_int_eq(eh_kak_new(RSSP__ENGINE__V1__KAK_ALGO__KAK_RSASSA_PSS_SHA256, &akak), 0);

	/* (a) its own KAK under the victim's user id: with no voucher at all */
	vs = (struct eh_voucher_spec){ .none = 1 };
	refused(c, akak, "cred-a1", "victim-1", "phone-v", &vs, "rid-a1",
	    GRPC_STATUS_INVALID_ARGUMENT, "voucher missing");
	/* ... with a voucher naming its KAK that it signed itself, claiming the trusted key */
	vs = (struct eh_voucher_spec){ .ra = rogue, .key_id_of = eh_ra_key() };
	refused(c, akak, "cred-a2", "victim-1", "phone-v", &vs, "rid-a2",
	    GRPC_STATUS_PERMISSION_DENIED, "voucher signature invalid");
	/* ... with the victim's real voucher (it names the victim's KAK) */
	vs = (struct eh_voucher_spec){ .kak = vkak };
	refused(c, akak, "cred-a3", "victim-1", "phone-v", &vs, "rid-a3",
	    GRPC_STATUS_PERMISSION_DENIED, "voucher for another kak");
	/* (b) the victim's real voucher, on the victim's own credential, with the attacker's
	 * KAK signing the activation */
	vs = (struct eh_voucher_spec){ .kak = vkak, .common_name = "Victim Person" };
	refused(c, akak, "cred-victim", "victim-1", "phone-v", &vs, "rid-b",
	    GRPC_STATUS_PERMISSION_DENIED, "voucher for another kak");
	/* (c) a voucher signed by a key the engine does not trust, under its own id */
	vs = (struct eh_voucher_spec){ .ra = rogue };
	refused(c, akak, "cred-c", "victim-1", "phone-v", &vs, "rid-c",
	    GRPC_STATUS_PERMISSION_DENIED, "voucher key unknown");
	/* (d) user A's voucher (for A's device and KAK) used for user B's credential */
	vs = (struct eh_voucher_spec){ .user_id = "victim-1" };
	refused(c, vkak, "cred-user-b", "user-b", "phone-v", &vs, "rid-d",
	    GRPC_STATUS_PERMISSION_DENIED, "voucher for another user");
	/* ... or for another of A's devices */
	vs = (struct eh_voucher_spec){ .device_uuid = "phone-v" };
	refused(c, vkak, "cred-d2", "victim-1", "phone-new", &vs, "rid-d2",
	    GRPC_STATUS_PERMISSION_DENIED, "voucher for another device");
	/* (e) an expired voucher (genuine otherwise) */
	vs = (struct eh_voucher_spec){ .issued_at = now - 10 * 86400, .not_after = now - 60 };
	refused(c, vkak, "cred-e", "victim-1", "phone-v", &vs, "rid-e",
	    GRPC_STATUS_FAILED_PRECONDITION, "voucher expired");
	/* the same victim, with the voucher and the device that are really hers: OK */
	vs = (struct eh_voucher_spec){ .common_name = "Victim Person" };
	ck_assert_int_eq(eh_activate_as(c, vkak, RSSP__ENGINE__V1__KEY_ALGO__KEY_EC_P256,
	    "cred-victim", "victim-1", "phone-v", &vs, "rid-ok", &cred, &status, NULL, 0, NULL), 0);
	ck_assert_int_eq(status, GRPC_STATUS_OK);
	eh_cred_release(&cred);

	engine_client_free(c);
	ck_assert_int_eq(ef_engine_stop(pid), 0);
	/* every refusal is audited with its reason; the activation names the RA key */
	log = ef_slurp(auditpath);
	ck_assert_ptr_nonnull(strstr(log, "\"request_id\":\"rid-a2\""));
	ck_assert_ptr_nonnull(strstr(log, "voucher signature invalid"));
	ck_assert_ptr_nonnull(strstr(log, "voucher for another kak"));
	ck_assert_ptr_nonnull(strstr(log, "voucher key unknown"));
	ck_assert_ptr_nonnull(strstr(log, "voucher for another user"));
	ck_assert_ptr_nonnull(strstr(log, "voucher expired"));
	{
		uint8_t *der = NULL, id[32];
		char hex[65], want[100];
		int n = i2d_PUBKEY(eh_ra_key(), &der);

		ck_assert_int_gt(n, 0);
		SHA256(der, (size_t)n, id);
		OPENSSL_free(der);
		tohex(id, 32, hex);
		snprintf(want, sizeof(want), "\"ra_key_id\":\"%s\"", hex);
		ck_assert_ptr_nonnull(strstr(strstr(log, "\"request_id\":\"rid-ok\""), want));
	}
	free(log);
	EVP_PKEY_free(rogue);
	eh_kak_free(vkak);
	eh_kak_free(akak);
}
END_TEST

/* The text of the one entry nid of name (exactly one), or fails. */
static void
one_entry(X509_NAME *name, int nid, const char *want)
{
	int i = X509_NAME_get_index_by_NID(name, nid, -1);
	ASN1_STRING *v;

	ck_assert_int_ge(i, 0);
	ck_assert_int_eq(X509_NAME_get_index_by_NID(name, nid, i), -1);
	v = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
	ck_assert_int_eq(ASN1_STRING_length(v), (int)strlen(want));
	ck_assert_mem_eq(ASN1_STRING_get0_data(v), want, strlen(want));
}

/* Whatever the gateway would like, the certificate's subject is the vouched one:
 * CN = the voucher's common name, serialNumber = its user id, nothing else. */
START_TEST(test_the_certificate_subject_is_exactly_the_vouched_subject)
{
	static const struct {
		const char *user, *device, *cn;
		int key_algo, kak_algo;
	} cases[] = {
		{ "alice-1", "phone-a", "Alice Example", RSSP__ENGINE__V1__KEY_ALGO__KEY_EC_P256,
		  RSSP__ENGINE__V1__KAK_ALGO__KAK_ECDSA_P256_SHA256 },
		{ "bob-2", "phone-b", "Bob \xc3\x96sterreicher-Ma\xc3\x9f", RSSP__ENGINE__V1__KEY_ALGO__KEY_RSA2048,
		  RSSP__ENGINE__V1__KAK_ALGO__KAK_RSASSA_PSS_SHA256 },
	};
	struct engine_client *c;
	pid_t pid = start_engine_env(NULL, 1);
	size_t i;

	ck_assert_int_eq(engine_client_new(sock, 20000, &c), 0);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct eh_voucher_spec vs = { .common_name = cases[i].cn };
		struct eh_kak *kak;
		struct eh_cred cred;
		X509 *x = NULL;
		X509_NAME *sub;
		char cid[64], rid[64];
		int status;

		snprintf(cid, sizeof(cid), "cred-subject-%zu", i);
		snprintf(rid, sizeof(rid), "rid-subject-%zu", i);
		ck_assert_int_eq(eh_kak_new(cases[i].kak_algo, &kak), 0);
		ck_assert_int_eq(eh_activate_as(c, kak, cases[i].key_algo, cid, cases[i].user,
		    cases[i].device, &vs, rid, &cred, &status, NULL, 0, &x), 0);
		ck_assert_int_eq(status, GRPC_STATUS_OK);
		ck_assert_ptr_nonnull(x);
		sub = X509_get_subject_name(x);
		ck_assert_int_eq(X509_NAME_entry_count(sub), 2);
		one_entry(sub, NID_commonName, cases[i].cn);
		one_entry(sub, NID_serialNumber, cases[i].user);
		/* the certificate certifies the key the engine answered */
		ck_assert_ptr_nonnull(cred.pub);
		X509_free(x);
		eh_cred_release(&cred);
		eh_kak_free(kak);
	}
	engine_client_free(c);
	ck_assert_int_eq(ef_engine_stop(pid), 0);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("engine_rpc_e2e");
	TCase *tc = tcase_create("e2e");
	SRunner *sr;
	int failed;

	signal(SIGPIPE, SIG_IGN);
	tcase_add_unchecked_fixture(tc, suite_setup, suite_teardown);
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_activation_approval_and_signhash_work_for_rsa2048_and_p256);
	tcase_add_test(tc, test_a_forged_sad_is_permission_denied);
	tcase_add_test(tc, test_an_unknown_method_and_an_oversize_message_are_refused_and_audited);
	tcase_add_test(tc, test_a_peer_uid_not_allowed_is_refused_and_audited);
	tcase_add_test(tc, test_sigterm_during_calls_in_flight_drains_them_and_exits_0);
	tcase_add_test(tc, test_a_second_instance_on_a_live_socket_refuses_to_start);
	tcase_add_test(tc, test_audit_verify_accepts_the_engines_log_and_catches_an_edit_a_deletion_and_a_reorder);
	tcase_add_test(tc, test_the_engine_runs_with_umask_077_and_without_core_dumps);
	tcase_add_test(tc, test_check_prints_the_configuration_without_the_pin);
	tcase_add_test(tc, test_a_compromised_gateway_on_the_socket_gets_no_key_without_a_matching_voucher);
	tcase_add_test(tc, test_the_certificate_subject_is_exactly_the_vouched_subject);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
