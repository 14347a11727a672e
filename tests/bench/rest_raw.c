/* rest_raw - the raw PKCS#11 signing rate, the baseline of the REST benchmark
 * (tests/bench/rest_bench.sh): a direct C_SignInit/C_Sign loop on the module's own
 * function list, one session per thread, with a session key pair of the benchmarked
 * type generated in the same token the engine uses. No libp11, no OpenSSL, no RPC.
 *
 * usage: rest_raw MODULE TOKEN_LABEL PIN_FILE rsa2048|ecp256 THREADS SECONDS
 * prints: "raw KEY threads=N signatures=S seconds=T rate=R cpu_ms=C" (R = signatures/s,
 * C = this process's CPU milliseconds per signature during the loop, key generation excluded)
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <p11-kit/pkcs11.h>

static CK_FUNCTION_LIST *fl;
static CK_SLOT_ID slot;
static CK_OBJECT_HANDLE priv;
static int is_ec;
static double seconds;
static pthread_barrier_t start;

struct worker {
	pthread_t tid;
	unsigned long count;
	int failed;
};

static double
cpu_now(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
	    ru.ru_stime.tv_usec / 1e6;
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The SHA-256 DigestInfo prefix: the engine signs PKCS#1 v1.5 over exactly this. */
static const unsigned char sha256_prefix[19] = {
	0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04,
	0x02, 0x01, 0x05, 0x00, 0x04, 0x20
};

static void *
run(void *arg)
{
	struct worker *w = arg;
	CK_SESSION_HANDLE s;
	CK_MECHANISM mech = { is_ec ? CKM_ECDSA : CKM_RSA_PKCS, NULL, 0 };
	unsigned char in[19 + 32], sig[512];
	CK_ULONG inlen, siglen;
	double end;
	unsigned i;

	memcpy(in, sha256_prefix, sizeof(sha256_prefix));
	for (i = 0; i < 32; i++)
		in[19 + i] = (unsigned char)(i * 13);
	inlen = is_ec ? 32 : sizeof(in);
	if (fl->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s) != CKR_OK) {
		w->failed = 1;
		pthread_barrier_wait(&start);
		return NULL;
	}
	pthread_barrier_wait(&start);
	end = now() + seconds;
	while (now() < end) {
		siglen = sizeof(sig);
		if (fl->C_SignInit(s, &mech, priv) != CKR_OK ||
		    fl->C_Sign(s, is_ec ? in + 19 : in, inlen, sig, &siglen) != CKR_OK) {
			w->failed = 1;
			break;
		}
		w->count++;
	}
	fl->C_CloseSession(s);
	return NULL;
}

static int
find_slot(const char *label)
{
	CK_SLOT_ID slots[64];
	CK_ULONG n = 64, i;
	CK_TOKEN_INFO ti;
	size_t ll = strlen(label);

	if (fl->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK)
		return -1;
	for (i = 0; i < n; i++) {
		if (fl->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
			continue;
		/* Labels are blank-padded to 32 bytes. */
		if (ll <= 32 && memcmp(ti.label, label, ll) == 0 &&
		    (ll == 32 || ti.label[ll] == ' ')) {
			slot = slots[i];
			return 0;
		}
	}
	return -1;
}

static int
keygen(CK_SESSION_HANDLE s)
{
	CK_BBOOL t = CK_TRUE, f = CK_FALSE;
	CK_ULONG bits = 2048;
	CK_BYTE exp[] = { 1, 0, 1 };
	/* DER OID of prime256v1 */
	CK_BYTE p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
	CK_OBJECT_HANDLE pub;
	CK_MECHANISM rsa = { CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0 };
	CK_MECHANISM ec = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
	CK_ATTRIBUTE rsa_pub[] = { { CKA_TOKEN, &f, 1 }, { CKA_VERIFY, &t, 1 },
		{ CKA_MODULUS_BITS, &bits, sizeof(bits) }, { CKA_PUBLIC_EXPONENT, exp, 3 } };
	CK_ATTRIBUTE ec_pub[] = { { CKA_TOKEN, &f, 1 }, { CKA_VERIFY, &t, 1 },
		{ CKA_EC_PARAMS, p256, sizeof(p256) } };
	CK_ATTRIBUTE prv[] = { { CKA_TOKEN, &f, 1 }, { CKA_SIGN, &t, 1 },
		{ CKA_SENSITIVE, &t, 1 }, { CKA_EXTRACTABLE, &f, 1 }, { CKA_PRIVATE, &t, 1 } };

	if (is_ec)
		return fl->C_GenerateKeyPair(s, &ec, ec_pub, 3, prv, 5, &pub, &priv) == CKR_OK ? 0 : -1;
	return fl->C_GenerateKeyPair(s, &rsa, rsa_pub, 4, prv, 5, &pub, &priv) == CKR_OK ? 0 : -1;
}

int
main(int argc, char **argv)
{
	CK_RV (*getfl)(CK_FUNCTION_LIST **);
	/* Threads share the library: let it lock (NULL init args promise single-threaded use). */
	CK_C_INITIALIZE_ARGS ia = { .flags = CKF_OS_LOCKING_OK };
	CK_SESSION_HANDLE s0;
	struct worker *w;
	unsigned long total = 0;
	unsigned nthreads, i;
	char pin[256];
	size_t pinlen;
	double t0, t1, c0, c1;
	void *mod;
	FILE *pf;
	int failed = 0;

	if (argc != 7) {
		fprintf(stderr, "usage: rest_raw MODULE TOKEN PIN_FILE rsa2048|ecp256 THREADS SECONDS\n");
		return 2;
	}
	is_ec = strcmp(argv[4], "ecp256") == 0;
	nthreads = (unsigned)atoi(argv[5]);
	seconds = atof(argv[6]);
	if (nthreads < 1 || nthreads > 64 || seconds <= 0) {
		fprintf(stderr, "rest_raw: bad thread count or duration\n");
		return 2;
	}
	if ((mod = dlopen(argv[1], RTLD_NOW)) == NULL ||
	    (*(void **)&getfl = dlsym(mod, "C_GetFunctionList")) == NULL ||
	    getfl(&fl) != CKR_OK || fl->C_Initialize(&ia) != CKR_OK) {
		fprintf(stderr, "rest_raw: cannot load %s\n", argv[1]);
		return 1;
	}
	if (find_slot(argv[2]) != 0) {
		fprintf(stderr, "rest_raw: no token labelled %s\n", argv[2]);
		return 1;
	}
	if ((pf = fopen(argv[3], "r")) == NULL || fgets(pin, sizeof(pin), pf) == NULL) {
		fprintf(stderr, "rest_raw: cannot read pin file\n");
		return 1;
	}
	fclose(pf);
	pinlen = strcspn(pin, "\r\n");
	if (fl->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s0) != CKR_OK ||
	    fl->C_Login(s0, CKU_USER, (CK_UTF8CHAR *)pin, pinlen) != CKR_OK) {
		fprintf(stderr, "rest_raw: cannot log in\n");
		return 1;
	}
	memset(pin, 0, sizeof(pin));
	if (keygen(s0) != 0) {
		fprintf(stderr, "rest_raw: cannot generate the key pair\n");
		return 1;
	}
	w = calloc(nthreads, sizeof(*w));
	pthread_barrier_init(&start, NULL, nthreads + 1);
	for (i = 0; i < nthreads; i++)
		pthread_create(&w[i].tid, NULL, run, &w[i]);
	pthread_barrier_wait(&start);
	t0 = now();
	c0 = cpu_now();
	for (i = 0; i < nthreads; i++) {
		pthread_join(w[i].tid, NULL);
		total += w[i].count;
		failed |= w[i].failed;
	}
	t1 = now();
	c1 = cpu_now();
	printf("raw %s threads=%u signatures=%lu seconds=%.3f rate=%.1f cpu_ms=%.4f\n", argv[4],
	    nthreads, total, t1 - t0, total / (t1 - t0), total ? (c1 - c0) * 1000 / total : 0.0);
	free(w);
	fl->C_CloseSession(s0);
	fl->C_Finalize(NULL);
	if (failed)
		fprintf(stderr, "rest_raw: a signature failed\n");
	return failed;
}
