/* rest_engine - the engine's SignHash rate over gRPC for the REST benchmark
 * (tests/bench/rest_bench.sh), on the same credential and token as the REST phases, with
 * SADs the REST approval flow produced (the REST SAD is the engine's SAD in base64).
 * The gateway's own typed client (engine_sign_hash of engine_client.h) makes the calls.
 *
 * usage: rest_engine SOCKET CREDENTIAL_ID HASH_ALGO SIGN_ALGO SADS_FILE HASHES_B64 CALLS_PER_SAD
 *                    THREADS SECONDS
 *   HASH_ALGO, SIGN_ALGO: the numbers of engine.proto (1 = SHA-256; 1 = PKCS#1 v1.5, 3 = ECDSA)
 *   SADS_FILE: one base64 SAD per line; thread t uses SADs t, t + THREADS, ...
 *   HASHES_B64: comma-separated base64 digests, all sent in each call
 * prints: "engine threads=N calls=C signatures=S errors=E seconds=T rate=R"
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "engine_client.h"

struct bytes {
	uint8_t *data;
	size_t len;
};

static struct engine_client *client;
static const char *cred;
static int hash_algo, sign_algo;
static struct bytes *sads;
static uint8_t **hashes;
static size_t hash_len;
static size_t nsads, nhashes;
static unsigned calls_per_sad, nthreads;
static double seconds;
static pthread_barrier_t start;

struct worker {
	pthread_t tid;
	unsigned id;
	unsigned long calls, sigs, errors;
};

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int
unb64(const char *s, size_t n, struct bytes *out)
{
	unsigned char *buf = malloc(n / 4 * 3 + 3);
	int len;

	if (buf == NULL || n % 4 != 0 || (len = EVP_DecodeBlock(buf, (const unsigned char *)s, (int)n)) < 0) {
		free(buf);
		return -1;
	}
	while (n > 0 && s[n - 1] == '=') {
		len--;
		n--;
	}
	out->data = buf;
	out->len = (size_t)len;
	return 0;
}

static void *
run(void *arg)
{
	struct worker *w = arg;
	struct engine_signatures sigs;
	struct engine_result res;
	size_t k;
	char rid[64];
	double end;

	pthread_barrier_wait(&start);
	end = now() + seconds;
	while (now() < end) {
		k = w->id + (w->calls / calls_per_sad) * nthreads;
		if (k >= nsads)
			break; /* out of SADs: stop rather than measure refusals */
		snprintf(rid, sizeof(rid), "bench-%u-%lu", w->id, w->calls);
		if (engine_sign_hash(client, 0, rid, cred, sads[k].data, sads[k].len, hash_algo,
		    sign_algo, (const uint8_t *const *)hashes, nhashes, hash_len, &sigs,
		    &res) != ENGINE_OK) {
			if (w->errors++ < 2)
				fprintf(stderr, "rest_engine: SignHash status %d %.100s\n",
				    res.grpc_status, res.message);
		} else {
			w->sigs += nhashes;
			engine_signatures_release(&sigs);
		}
		w->calls++;
	}
	return NULL;
}

int
main(int argc, char **argv)
{
	struct worker *w;
	unsigned long calls = 0, sigs = 0, errors = 0;
	char line[16384], *p, *tok, *save = NULL;
	double t0, t1;
	unsigned i;
	FILE *f;

	if (argc != 10) {
		fprintf(stderr, "usage: rest_engine SOCKET CRED HASH_ALGO SIGN_ALGO SADS_FILE "
		    "HASHES_B64 CALLS_PER_SAD THREADS SECONDS\n");
		return 2;
	}
	cred = argv[2];
	hash_algo = atoi(argv[3]);
	sign_algo = atoi(argv[4]);
	calls_per_sad = (unsigned)atoi(argv[7]);
	nthreads = (unsigned)atoi(argv[8]);
	seconds = atof(argv[9]);
	if (calls_per_sad < 1 || nthreads < 1 || nthreads > 256 || seconds <= 0)
		return 2;
	if ((f = fopen(argv[5], "r")) == NULL) {
		perror(argv[5]);
		return 1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		size_t n = strcspn(line, "\r\n");
		if (n == 0)
			continue;
		if ((sads = realloc(sads, (nsads + 1) * sizeof(*sads))) == NULL ||
		    unb64(line, n, &sads[nsads]) != 0) {
			fprintf(stderr, "rest_engine: bad SAD line\n");
			return 1;
		}
		nsads++;
	}
	fclose(f);
	for (p = argv[6]; (tok = strtok_r(p, ",", &save)) != NULL; p = NULL) {
		struct bytes h;
		if ((hashes = realloc(hashes, (nhashes + 1) * sizeof(*hashes))) == NULL ||
		    unb64(tok, strlen(tok), &h) != 0 || (nhashes > 0 && h.len != hash_len)) {
			fprintf(stderr, "rest_engine: bad hash\n");
			return 1;
		}
		hash_len = h.len;
		hashes[nhashes++] = h.data;
	}
	if (engine_client_new(argv[1], 10000, &client) != 0 ||
	    engine_client_ready(client, 5000) != 0) {
		fprintf(stderr, "rest_engine: engine not reachable at %s\n", argv[1]);
		return 1;
	}
	w = calloc(nthreads, sizeof(*w));
	pthread_barrier_init(&start, NULL, nthreads + 1);
	for (i = 0; i < nthreads; i++) {
		w[i].id = i;
		pthread_create(&w[i].tid, NULL, run, &w[i]);
	}
	pthread_barrier_wait(&start);
	t0 = now();
	for (i = 0; i < nthreads; i++) {
		pthread_join(w[i].tid, NULL);
		calls += w[i].calls;
		sigs += w[i].sigs;
		errors += w[i].errors;
	}
	t1 = now();
	printf("engine threads=%u calls=%lu signatures=%lu errors=%lu seconds=%.3f rate=%.1f\n",
	    nthreads, calls, sigs, errors, t1 - t0, sigs / (t1 - t0));
	for (i = 0; i < nsads; i++)
		free(sads[i].data);
	for (i = 0; i < nhashes; i++)
		free(hashes[i]);
	free(sads);
	free(hashes);
	free(w);
	engine_client_free(client);
	return errors != 0;
}
