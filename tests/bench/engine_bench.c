/* rssp-bench-engine - the engine's SignHash rate through gRPC against the raw PKCS#11
 * rate of the same keys on the same token, and where the time goes.
 *
 * usage: rssp-bench-engine --socket PATH --module PATH --token LABEL --pin-file FILE
 *        [--ra-key FILE] (the RA private key, PEM, whose public key the engine trusts)
 *            [--engine-pid PID] [--seconds S]
 * tests/bench/engine.sh sets up a token and an engine and runs it. Prints only what it
 * measured: signatures/s for raw C_Sign (1 and 4 threads, a session each) and for
 * SignHash (concurrency 1 and 4, 1 and 16 hashes per call) for RSA-2048 (PKCS#1 v1.5)
 * and EC P-256 (ECDSA), the ratio engine/raw, the no-op gRPC round trip (an unknown
 * method), and CPU time per signature (raw: this process; engine: its /proc stat). */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <grpc/status.h>
#include <openssl/rand.h>
#include <p11-kit/pkcs11.h>

#include "engine_helper.h"

#define MAXT 4
#define SAD_SIGS 992          /* 62 calls of 16, or 992 calls of 1 */

static const char *sock_path, *module_path, *token_label, *pin_file;
static long engine_pid;
static double seconds = 3.0;
static unsigned timeout_ms = 30000;
static int rounds = 3;        /* raw and engine measured back to back, median taken */
static int want_keys = 3;     /* bit 0: RSA-2048, bit 1: EC P-256 */

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double
self_cpu(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* CPU seconds of the engine process, or -1. */
static double
engine_cpu(void)
{
	char path[64], buf[2048], *p;
	unsigned long ut, st;
	FILE *f;
	size_t n;

	if (engine_pid <= 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%ld/stat", engine_pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	if ((p = strrchr(buf, ')')) == NULL ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* ---- raw PKCS#11 ---- */

static CK_FUNCTION_LIST *fl;
static CK_SLOT_ID slot;

static const unsigned char sha256_prefix[19] = {
	0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04,
	0x02, 0x01, 0x05, 0x00, 0x04, 0x20
};

static int
p11_open(void)
{
	CK_C_GetFunctionList gfl;
	CK_SLOT_ID slots[64];
	CK_ULONG n = 64, i;
	CK_TOKEN_INFO ti;
	CK_SESSION_HANDLE s;
	CK_C_INITIALIZE_ARGS ia;
	CK_RV rv;
	char pin[256], label[33];
	FILE *f;
	void *h;
	size_t len;

	if ((h = dlopen(module_path, RTLD_NOW)) == NULL ||
	    (gfl = (CK_C_GetFunctionList)dlsym(h, "C_GetFunctionList")) == NULL ||
	    gfl(&fl) != CKR_OK)
		return -1;
	/* threads share the module: it must lock (NULL args mean "no threads") */
	memset(&ia, 0, sizeof(ia));
	ia.flags = CKF_OS_LOCKING_OK;
	rv = fl->C_Initialize(&ia);
	if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED)
		return -1;
	if (fl->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK)
		return -1;
	snprintf(label, sizeof(label), "%-32s", token_label);
	for (i = 0; i < n; i++)
		if (fl->C_GetTokenInfo(slots[i], &ti) == CKR_OK && memcmp(ti.label, label, 32) == 0)
			break;
	if (i == n)
		return -1;
	slot = slots[i];
	if ((f = fopen(pin_file, "r")) == NULL || fgets(pin, sizeof(pin), f) == NULL)
		return -1;
	fclose(f);
	len = strcspn(pin, "\r\n");
	if (fl->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s) != CKR_OK)
		return -1;
	rv = fl->C_Login(s, CKU_USER, (CK_UTF8CHAR *)pin, len);
	memset(pin, 0, sizeof(pin));
	/* the login holds while any session of this application stays open */
	return rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN ? 0 : -1;
}

struct raw_worker {
	pthread_t tid;
	const char *label;
	int is_ec;
	double deadline;
	unsigned long count;
	int failed;
};

static void *
raw_run(void *arg)
{
	struct raw_worker *w = arg;
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE tmpl[2] = {
		{ CKA_CLASS, &cls, sizeof(cls) },
		{ CKA_LABEL, (void *)w->label, strlen(w->label) },
	};
	CK_MECHANISM mech = { w->is_ec ? CKM_ECDSA : CKM_RSA_PKCS, NULL, 0 };
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE key;
	CK_ULONG found = 0, inlen, siglen;
	CK_RV rv = CKR_OK;
	unsigned char in[19 + 32], sig[512];
	int attempt;

	memcpy(in, sha256_prefix, sizeof(sha256_prefix));
	RAND_bytes(in + 19, 32);
	inlen = w->is_ec ? 32 : sizeof(in);
	if (fl->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s) != CKR_OK) {
		w->failed = 1;
		return NULL;
	}
	for (attempt = 0; attempt < 3 && found != 1; attempt++) {
		if (attempt > 0)
			fprintf(stderr, "raw: key %s not found, retrying\n", w->label);
		if (fl->C_FindObjectsInit(s, tmpl, 2) != CKR_OK ||
		    fl->C_FindObjects(s, &key, 1, &found) != CKR_OK ||
		    fl->C_FindObjectsFinal(s) != CKR_OK)
			found = 0;
	}
	if (found != 1) {
		fprintf(stderr, "raw: key %s not found (%lu)\n", w->label, (unsigned long)found);
		w->failed = 1;
		return NULL;
	}
	while (now() < w->deadline) {
		siglen = sizeof(sig);
		if ((rv = fl->C_SignInit(s, &mech, key)) != CKR_OK ||
		    (rv = fl->C_Sign(s, w->is_ec ? in + 19 : in, inlen, sig, &siglen)) != CKR_OK) {
			fprintf(stderr, "raw: sign failed: ckr 0x%lx\n", (unsigned long)rv);
			w->failed = 1;
			break;
		}
		w->count++;
	}
	fl->C_CloseSession(s);
	return NULL;
}

/* Returns signatures/s; *cpu_per_sig gets this process's CPU seconds per signature. */
static double
raw_rate(const char *label, int is_ec, int threads, double *cpu_per_sig)
{
	struct raw_worker w[MAXT];
	double t0, t1, c0, c1;
	unsigned long total = 0;
	int i;

	memset(w, 0, sizeof(w));
	c0 = self_cpu();
	t0 = now();
	for (i = 0; i < threads; i++) {
		w[i].label = label;
		w[i].is_ec = is_ec;
		w[i].deadline = t0 + seconds;
		pthread_create(&w[i].tid, NULL, raw_run, &w[i]);
	}
	for (i = 0; i < threads; i++) {
		pthread_join(w[i].tid, NULL);
		if (w[i].failed) {
			fprintf(stderr, "raw signing failed\n");
			exit(1);
		}
		total += w[i].count;
	}
	t1 = now();
	c1 = self_cpu();
	*cpu_per_sig = total ? (c1 - c0) / (double)total : 0;
	return (double)total / (t1 - t0);
}

/* ---- through the engine ---- */

static struct engine_client *client;
static struct eh_kak *kak;
static unsigned long approvals;
static pthread_mutex_t approvals_lock = PTHREAD_MUTEX_INITIALIZER;

struct sad_slot {
	uint8_t *sad;
	size_t sadlen;
	unsigned left;
};

struct eng_worker {
	pthread_t tid;
	const struct eh_cred *cred;
	int sign_algo;
	size_t per_call;
	const uint8_t *hp[16];
	uint8_t h[16][32];
	struct sad_slot *sads;
	size_t nsads, cur;
	double deadline;
	unsigned long sigs, calls;
	int failed;
};

static int
mint(struct eng_worker *w, struct sad_slot *s)
{
	char aid[64];
	int status;
	unsigned long n;

	pthread_mutex_lock(&approvals_lock);
	n = ++approvals;
	pthread_mutex_unlock(&approvals_lock);
	snprintf(aid, sizeof(aid), "bench-approval-%lu", n);
	free(s->sad);
	s->sad = NULL;
	if (eh_approve(client, kak, w->cred, aid, 1, w->hp, w->per_call, SAD_SIGS, "bench",
	    &s->sad, &s->sadlen, &status) != 0 || status != GRPC_STATUS_OK)
		return -1;
	s->left = SAD_SIGS;
	return 0;
}

static void *
eng_run(void *arg)
{
	struct eng_worker *w = arg;
	struct sad_slot *s;
	int status;
	char *msg = NULL;

	while (now() < w->deadline) {
		s = &w->sads[w->cur];
		if (s->left < w->per_call) {
			if (w->cur + 1 < w->nsads) {
				w->cur++;
				continue;
			}
			if (mint(w, s) != 0) { /* ran out of pre-minted SADs (counted in time) */
				w->failed = 1;
				break;
			}
		}
		if (eh_sign_hash(client, w->cred, s->sad, s->sadlen, 1, w->sign_algo, w->hp,
		    w->per_call, 32, "bench", NULL, &status, &msg) != 0 || status != GRPC_STATUS_OK) {
			fprintf(stderr, "signhash failed: status %d %s\n", status, msg ? msg : "");
			free(msg);
			w->failed = 1;
			break;
		}
		free(msg);
		msg = NULL;
		s->left -= (unsigned)w->per_call;
		w->sigs += w->per_call;
		w->calls++;
	}
	return NULL;
}

/* Returns signatures/s; *srv_cpu gets the engine's CPU seconds per signature (or -1),
 * *cli_cpu this (client) process's. */
static double
engine_rate(const struct eh_cred *cred, int sign_algo, size_t per_call, int threads,
    double expect_rate, double *srv_cpu, double *cli_cpu)
{
	struct eng_worker *w = calloc(MAXT, sizeof(*w));
	double t0, t1, c0, c1, s0, s1;
	unsigned long total = 0;
	size_t i, j, nsads;
	int t;

	/* pre-mint enough SADs that minting stays out of the timed loop */
	nsads = (size_t)(expect_rate * seconds * 1.5 / threads / SAD_SIGS) + 2;
	for (t = 0; t < threads; t++) {
		w[t].cred = cred;
		w[t].sign_algo = sign_algo;
		w[t].per_call = per_call;
		RAND_bytes((uint8_t *)w[t].h, sizeof(w[t].h));
		for (j = 0; j < 16; j++)
			w[t].hp[j] = w[t].h[j];
		w[t].sads = calloc(nsads, sizeof(*w[t].sads));
		w[t].nsads = nsads;
		for (i = 0; i < nsads; i++)
			if (mint(&w[t], &w[t].sads[i]) != 0) {
				fprintf(stderr, "approval failed\n");
				exit(1);
			}
	}
	c0 = engine_cpu();
	s0 = self_cpu();
	t0 = now();
	for (t = 0; t < threads; t++) {
		w[t].deadline = t0 + seconds;
		pthread_create(&w[t].tid, NULL, eng_run, &w[t]);
	}
	for (t = 0; t < threads; t++) {
		pthread_join(w[t].tid, NULL);
		if (w[t].failed)
			exit(1);
		total += w[t].sigs;
	}
	t1 = now();
	c1 = engine_cpu();
	s1 = self_cpu();
	*srv_cpu = c0 >= 0 && c1 >= 0 && total ? (c1 - c0) / (double)total : -1;
	*cli_cpu = total ? (s1 - s0) / (double)total : 0;
	for (t = 0; t < threads; t++) {
		for (i = 0; i < w[t].nsads; i++)
			free(w[t].sads[i].sad);
		free(w[t].sads);
	}
	free(w);
	return (double)total / (t1 - t0);
}

struct noop_worker {
	pthread_t tid;
	double deadline;
	unsigned long calls;
};

static void *
noop_run(void *arg)
{
	struct noop_worker *w = arg;
	uint8_t *resp = NULL;
	size_t resplen;
	int status;
	char *msg = NULL;

	while (now() < w->deadline) {
		if (engine_call_path(client, "/rssp.engine.v1.Engine/NoOp", "bench",
		    (const uint8_t *)"", 0, &resp, &resplen, &status, &msg) != 0)
			exit(1);
		free(msg);
		msg = NULL;
		w->calls++;
	}
	return NULL;
}

static double
noop_rate(int threads, double *srv_cpu, double *cli_cpu)
{
	struct noop_worker w[MAXT];
	double t0, t1, c0, c1, s0, s1;
	unsigned long total = 0;
	int t;

	memset(w, 0, sizeof(w));
	c0 = engine_cpu();
	s0 = self_cpu();
	t0 = now();
	for (t = 0; t < threads; t++) {
		w[t].deadline = t0 + seconds;
		pthread_create(&w[t].tid, NULL, noop_run, &w[t]);
	}
	for (t = 0; t < threads; t++) {
		pthread_join(w[t].tid, NULL);
		total += w[t].calls;
	}
	t1 = now();
	c1 = engine_cpu();
	s1 = self_cpu();
	*srv_cpu = c0 >= 0 && c1 >= 0 && total ? (c1 - c0) / (double)total : -1;
	*cli_cpu = total ? (s1 - s0) / (double)total : 0;
	return (double)total / (t1 - t0);
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The median of v[0..n-1] (sorts a copy). */
static double
median(const double *v, int n)
{
	double t[15];

	memcpy(t, v, (size_t)n * sizeof(*t));
	qsort(t, (size_t)n, sizeof(*t), cmp_double);
	return n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

static void
usage(void)
{
	fprintf(stderr, "usage: rssp-bench-engine --socket PATH --module PATH --token LABEL "
	    "--pin-file FILE [--ra-key FILE] [--engine-pid PID] [--seconds S] [--rounds N] [--timeout-ms MS] [--keys rsa|ec|both|none]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	static const struct { const char *name; int key_algo, sign_algo, is_ec; } keys[2] = {
		{ "RSA-2048", RSSP__ENGINE__V1__KEY_ALGO__KEY_RSA2048,
		  RSSP__ENGINE__V1__SIGN_ALGO__SIGN_RSA_PKCS1_V15, 0 },
		{ "EC P-256", RSSP__ENGINE__V1__KEY_ALGO__KEY_EC_P256,
		  RSSP__ENGINE__V1__SIGN_ALGO__SIGN_ECDSA, 1 },
	};
	static const int conc[2] = { 1, 4 };
	static const size_t per[2] = { 1, 16 };
	struct eh_cred cred[2];
	double raw, eng, srv, cli, noop, noopcpu;
	char ratio[32];
	int i, k, c, p, r, status;
	char cid[64];

	for (i = 1; i < argc; i++) {
		if (i + 1 >= argc)
			usage();
		if (strcmp(argv[i], "--socket") == 0)
			sock_path = argv[++i];
		else if (strcmp(argv[i], "--module") == 0)
			module_path = argv[++i];
		else if (strcmp(argv[i], "--token") == 0)
			token_label = argv[++i];
		else if (strcmp(argv[i], "--pin-file") == 0)
			pin_file = argv[++i];
		else if (strcmp(argv[i], "--engine-pid") == 0)
			engine_pid = strtol(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--seconds") == 0)
			seconds = strtod(argv[++i], NULL);
		else if (strcmp(argv[i], "--rounds") == 0)
			rounds = atoi(argv[++i]);
		else if (strcmp(argv[i], "--timeout-ms") == 0)
			timeout_ms = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--ra-key") == 0) {
			if (eh_ra_init(argv[++i], NULL) != 0) {
				fprintf(stderr, "cannot read the ra key %s\n", argv[i]);
				return 1;
			}
		} else if (strcmp(argv[i], "--keys") == 0) {
			i++;
			want_keys = strcmp(argv[i], "rsa") == 0 ? 1 : strcmp(argv[i], "ec") == 0 ? 2 :
			    strcmp(argv[i], "none") == 0 ? 0 : 3;
		}
		else
			usage();
	}
	if (sock_path == NULL || module_path == NULL || token_label == NULL || pin_file == NULL ||
	    seconds <= 0 || rounds < 1 || rounds > 15)
		usage();
	if (engine_client_new(sock_path, timeout_ms, &client) != 0 ||
	    engine_client_ready(client, 60000) != 0) {	/* valgrind starts slowly on a busy machine */
		fprintf(stderr, "engine not reachable on %s\n", sock_path);
		return 1;
	}
	if (eh_kak_new(RSSP__ENGINE__V1__KAK_ALGO__KAK_ECDSA_P256_SHA256, &kak) != 0)
		return 1;
	memset(cred, 0, sizeof(cred));
	for (k = 0; k < 2; k++) {
		if (!(want_keys & (1 << k)))
			continue;
		snprintf(cid, sizeof(cid), "bench-%d-%ld", k, (long)getpid());
		status = -1;
		if ((r = eh_activate(client, kak, keys[k].key_algo, cid, "bench", 0, &cred[k],
		    &status)) != 0 || status != GRPC_STATUS_OK) {
			fprintf(stderr, "activation failed: %d, status %d\n", r, status);
			return 1;
		}
	}
	if (p11_open() != 0) {
		fprintf(stderr, "cannot open token %s in %s\n", token_label, module_path);
		return 1;
	}
	printf("# rssp engine benchmark: %.1f s per measurement, medians of %d rounds of raw and "
	    "engine back to back, %ld online CPUs\n", seconds, rounds, sysconf(_SC_NPROCESSORS_ONLN));
	/* cpu ratio: raw CPU / (engine + client CPU) per signature, the engine/raw ratio a
	 * CPU-bound machine would show; steadier than rates when other load shares it */
	printf("%-9s %-11s %-4s %10s %13s %10s %15s %18s %18s %9s\n", "key", "hashes/call", "conc",
	    "raw sig/s", "engine sig/s", "engine/raw", "raw CPU us/sig", "engine CPU us/sig",
	    "client CPU us/sig", "cpu ratio");
	for (k = 0; k < 2; k++) {
		if (!(want_keys & (1 << k)))
			continue;
		for (p = 0; p < 2; p++)
			for (c = 0; c < 2; c++) {
				double vr[15], ve[15], vq[15], vrc[15], vs[15], vc[15], rawcpu;
				/* the machine is shared: raw and engine back to back, several times */
				for (i = 0; i < rounds; i++) {
					vr[i] = raw_rate(cred[k].key_label, keys[k].is_ec, conc[c], &vrc[i]);
					ve[i] = engine_rate(&cred[k], keys[k].sign_algo, per[p], conc[c], vr[i],
					    &vs[i], &vc[i]);
					vq[i] = ve[i] / vr[i];
				}
				raw = median(vr, rounds);
				eng = median(ve, rounds);
				rawcpu = median(vrc, rounds);
				srv = median(vs, rounds);
				cli = median(vc, rounds);
				printf("%-9s %-11zu %-4d %10.0f %13.0f %10.2f %15.1f %18s %18.1f %9s\n",
				    keys[k].name, per[p], conc[c], raw, eng, median(vq, rounds),
				    rawcpu * 1e6,
				    srv >= 0 ? (snprintf(cid, sizeof(cid), "%.1f", srv * 1e6), cid) : "n/a",
				    cli * 1e6,
				    srv > 0 ? (snprintf(ratio, sizeof(ratio), "%.2f", rawcpu / (srv + cli)),
				    ratio) : "n/a");
				fflush(stdout);
			}
	}
	for (c = 0; c < 2; c++) {
		noop = noop_rate(conc[c], &noopcpu, &cli);
		printf("no-op gRPC round trip (unknown method), conc %d: %.0f calls/s, %.1f us/call",
		    conc[c], noop, 1e6 * conc[c] / noop);
		if (noopcpu >= 0)
			printf(", engine CPU %.1f us/call", noopcpu * 1e6);
		printf(", client CPU %.1f us/call\n", cli * 1e6);
	}
	for (k = 0; k < 2; k++)
		eh_cred_release(&cred[k]);
	eh_kak_free(kak);
	engine_client_free(client);
	return 0;
}
