/* The signing functions end to end: a real rssp-gateway (gwtest) on a fresh database and
 * a real rssp-engine on a SoftHSM2 token made here; KAKs made with OpenSSL in the test.
 * Every signature is verified against the certificate from credentials/info, and that
 * certificate against its chain. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "gwtest.h"

#define SHA256_OID "2.16.840.1.101.3.4.2.1"
#define SHA384_OID "2.16.840.1.101.3.4.2.2"
#define SHA512_OID "2.16.840.1.101.3.4.2.3"
#define RSA_SHA256 "1.2.840.113549.1.1.11"
#define RSA_SHA512 "1.2.840.113549.1.1.13"
#define RSA_PSS "1.2.840.113549.1.1.10"
#define ECDSA_SHA256 "1.2.840.10045.4.3.2"
#define ECDSA_SHA384 "1.2.840.10045.4.3.3"

/* ---- the stack: engine on its own token, gateway ---------------------------------- */

static char work[80], sock[108], pidfile[PATH_MAX], hsmconf[PATH_MAX],
    pinfile[PATH_MAX], engine_bin[PATH_MAX], label[64], ra_pem[PATH_MAX];
static struct gwt *G;
/* The registration authority the engine (and the gateway, for its early check) trust,
 * and one they do not. */
static EVP_PKEY *ra_key, *ra_rogue;
static char ra_id[65], ra_rogue_id[65];

static void
engine_env(void)
{
	const char *module = getenv("RSSP_TEST_PKCS11_MODULE");

	setenv("SOFTHSM2_CONF", hsmconf, 1);
	setenv("RSSP_PKCS11_MODULE", module ? module : "/usr/lib/softhsm/libsofthsm2.so", 1);
	setenv("RSSP_TOKEN_LABEL", label, 1);
	setenv("RSSP_PIN_FILE", pinfile, 1);
	setenv("RSSP_ENGINE_SOCKET", sock, 1);
	setenv("RSSP_ENGINE_WORKERS", "2", 1);
	setenv("RSSP_LOG_LEVEL", "warn", 1);
	setenv("RSSP_RA_KEYS", ra_pem, 1);
}

/* Runs argv with the engine's environment; output to work/cmd.log. Returns exit status. */
static int
run(char *const argv[])
{
	char logp[PATH_MAX + 16];
	pid_t pid;
	int st = -1, fd;

	snprintf(logp, sizeof(logp), "%s/cmd.log", work);
	if ((pid = fork()) == 0) {
		engine_env();
		if ((fd = open(logp, O_WRONLY | O_CREAT | O_APPEND, 0600)) >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execvp(argv[0], argv);
		_exit(127);
	}
	ck_assert_int_gt(pid, 0);
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int
engine_connectable(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0), ok;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

static void
engine_start(void)
{
	char logp[PATH_MAX + 16];
	pid_t pid;
	FILE *f;
	int fd, i;

	snprintf(logp, sizeof(logp), "%s/engine.stderr", work);
	if ((pid = fork()) == 0) {
		engine_env();
		setenv("RSSP_AUDIT_FILE", "-", 1);
		if ((fd = open(logp, O_WRONLY | O_CREAT | O_APPEND, 0600)) >= 0)
			dup2(fd, 2);
		if ((fd = open("/dev/null", O_WRONLY)) >= 0)
			dup2(fd, 1);
		execl(engine_bin, "rssp-engine", "serve", (char *)NULL);
		_exit(127);
	}
	ck_assert_int_gt(pid, 0);
	ck_assert_ptr_nonnull(f = fopen(pidfile, "w"));
	fprintf(f, "%d\n", (int)pid);
	fclose(f);
	for (i = 0; i < 600 && !engine_connectable(); i++)
		usleep(50 * 1000);
	ck_assert_msg(engine_connectable(), "rssp-engine did not start (see %s)", logp);
}

/* Stops the engine whose pid is in the pid file, whoever its parent is. */
static void
engine_stop(void)
{
	FILE *f = fopen(pidfile, "r");
	char statp[64], buf[256];
	int pid = 0, i, gone = 0;

	if (f == NULL)
		return;
	if (fscanf(f, "%d", &pid) != 1)
		pid = 0;
	fclose(f);
	unlink(pidfile);
	if (pid <= 0 || kill(pid, SIGTERM) != 0)
		return;
	snprintf(statp, sizeof(statp), "/proc/%d/stat", pid);
	for (i = 0; i < 200 && !gone; i++) {
		FILE *s = fopen(statp, "r");
		if (s == NULL || fgets(buf, sizeof(buf), s) == NULL || strstr(buf, ") Z ") != NULL)
			gone = 1;
		if (s != NULL)
			fclose(s);
		if (!gone)
			usleep(50 * 1000);
	}
	if (!gone)
		kill(pid, SIGKILL);
	waitpid(pid, NULL, WNOHANG);
}

static void
key_id_hex(EVP_PKEY *k, char out[65])
{
	unsigned char *der = NULL, md[32];
	int n = i2d_PUBKEY(k, &der), i;

	ck_assert_int_gt(n, 0);
	SHA256(der, (size_t)n, md);
	OPENSSL_free(der);
	for (i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void
ra_setup(void)
{
	FILE *f;

	if (ra_key == NULL) {
		ra_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
		ra_rogue = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
		ck_assert(ra_key != NULL && ra_rogue != NULL);
		key_id_hex(ra_key, ra_id);
		key_id_hex(ra_rogue, ra_rogue_id);
	}
	snprintf(ra_pem, sizeof(ra_pem), "%s/ra.pem", work);
	ck_assert_ptr_nonnull(f = fopen(ra_pem, "w"));
	ck_assert_int_eq(PEM_write_PUBKEY(f, ra_key), 1);
	fclose(f);
}

static void
stack_up(void)
{
	const char *base = getenv("RSSP_TEST_WORK"), *build = getenv("RSSP_TEST_BUILD");
	char dir[PATH_MAX + 32], env_sock[PATH_MAX + 32], env_ra[PATH_MAX + 32], pin[64];
	const char *env[7];
	struct gwt_opts o = { 0 };
	FILE *f;

	ck_assert_msg(snprintf(work, sizeof(work), "%s/sg-%d", base ? base : "/tmp", (int)getpid())
	    < (int)sizeof(work), "RSSP_TEST_WORK is too long for a unix socket path");
	mkdir(work, 0700);
	snprintf(dir, sizeof(dir), "%s/tokens", work);
	mkdir(dir, 0700);
	snprintf(hsmconf, sizeof(hsmconf), "%s/softhsm2.conf", work);
	ck_assert_ptr_nonnull(f = fopen(hsmconf, "w"));
	fprintf(f, "directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n"
	    "slots.removable = false\n", dir);
	fclose(f);
	snprintf(label, sizeof(label), "sg%d", (int)getpid());
	snprintf(pin, sizeof(pin), "pin-%d", (int)getpid());
	snprintf(pinfile, sizeof(pinfile), "%s/pin", work);
	ck_assert_ptr_nonnull(f = fopen(pinfile, "w"));
	fprintf(f, "%s\n", pin);
	fclose(f);
	chmod(pinfile, 0600);
	snprintf(dir, sizeof(dir), "%s/run", work);
	mkdir(dir, 0750);
	snprintf(sock, sizeof(sock), "%s/run/engine.sock", work);
	snprintf(pidfile, sizeof(pidfile), "%s/engine.pid", work);
	ra_setup();
	snprintf(engine_bin, sizeof(engine_bin), "%s/engine/rssp-engine", build ? build : RSSP_BUILD_DIR);
	{
		char *init_tok[] = { "softhsm2-util", "--init-token", "--free", "--label", label,
		    "--pin", pin, "--so-pin", "so-pin-signing", NULL };
		char *init_eng[] = { engine_bin, "init", "--ca-subject", "CN=rssp signing test CA,O=rssp", NULL };
		ck_assert_int_eq(run(init_tok), 0);
		ck_assert_msg(run(init_eng) == 0, "rssp-engine init failed (see %s/cmd.log)", work);
	}
	engine_start();
	snprintf(env_sock, sizeof(env_sock), "RSSP_ENGINE_SOCKET=%s", sock);
	snprintf(env_ra, sizeof(env_ra), "RSSP_RA_KEYS=%s", ra_pem);
	env[0] = env_sock;
	env[1] = "RSSP_ENGINE_TIMEOUT_MS=5000";
	env[2] = "RSSP_LOGIN_RATE=100000"; /* many logins from one address */
	env[3] = "RSSP_LOGIN_BURST=100000";
	env[4] = env_ra;
	env[5] = NULL;
	o.env = env;
	G = gwt_start(&o);
}

static void
stack_down(void)
{
	if (G != NULL)
		gwt_stop(G);
	G = NULL;
	engine_stop();
}

/* ---- small helpers ------------------------------------------------------------------ */

static char *
b64(const uint8_t *d, size_t n)
{
	char *s = malloc(4 * ((n + 2) / 3) + 1);

	EVP_EncodeBlock((unsigned char *)s, d, (int)n);
	return s;
}

static uint8_t *
unb64(const char *s, size_t *np)
{
	size_t n = strlen(s), pad = 0;
	uint8_t *d = malloc(n / 4 * 3 + 1);
	int l;

	ck_assert_ptr_nonnull(s);
	if (n >= 1 && s[n - 1] == '=')
		pad++;
	if (n >= 2 && s[n - 2] == '=')
		pad++;
	l = EVP_DecodeBlock(d, (const unsigned char *)s, (int)n);
	ck_assert_int_ge(l, 0);
	*np = (size_t)l - pad;
	return d;
}

static struct gwt_resp *
post(const char *path, const char *token, json_t *body)
{
	struct gwt_resp *r = gwt_post_json(G, path, token, body);

	json_decref(body);
	return r;
}

/* What a test allocates lives until the test ends (teardown frees it), so that a
 * failing assertion leaks nothing either. */
static void *garbage[4096];
static EVP_PKEY *garbage_keys[256];
static int n_garbage, n_garbage_keys;

static void *
keep(void *p)
{
	ck_assert_int_lt(n_garbage, 4096);
	garbage[n_garbage++] = p;
	return p;
}

static EVP_PKEY *
keep_key(EVP_PKEY *k)
{
	ck_assert_int_lt(n_garbage_keys, 256);
	garbage_keys[n_garbage_keys++] = k;
	return k;
}

static void
collect_garbage(void)
{
	while (n_garbage > 0)
		free(garbage[--n_garbage]);
	while (n_garbage_keys > 0)
		EVP_PKEY_free(garbage_keys[--n_garbage_keys]);
}

static char *
str_of(const struct gwt_resp *r, const char *m)
{
	const char *s = gwt_str(r, m);

	ck_assert_msg(s != NULL, "no '%s' in %s", m, r->body);
	return keep(strdup(s));
}

/* 1 when the file at path contains needle (or its first 64 characters). */
static int
file_contains(const char *path, const char *needle)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL, part[65];
	size_t cap = 0;
	ssize_t n;
	int found = 0;

	ck_assert_ptr_nonnull(f);
	snprintf(part, sizeof(part), "%s", needle);
	while (!found && (n = getline(&buf, &cap, f)) >= 0)
		found = strstr(buf, part) != NULL;
	free(buf);
	fclose(f);
	return found;
}

/* ---- actors ---------------------------------------------------------------------- */

struct rp {
	char *client_id, *secret, *token;
};

struct signer {
	char *email, *user_id, *token, *device;
	EVP_PKEY *kak;
	int ec;
};

static void
rp_new(struct rp *rp)
{
	char *name = gwt_unique("rp"), *id, *secret;

	gwt_rp_create(G, name, &id, &secret, NULL);
	rp->client_id = keep(id);
	rp->secret = keep(secret);
	rp->token = keep(gwt_login(G, rp->client_id, rp->secret, NULL));
	free(name);
}

static const char *PASS = "correct horse battery staple";

static void
signer_new(struct rp *rp, struct signer *s)
{
	char *u = gwt_unique("signer"), email[128];

	memset(s, 0, sizeof(*s));
	snprintf(email, sizeof(email), "%s@rssp.test", u);
	s->email = keep(strdup(email));
	s->user_id = keep(gwt_register(G, rp->token, email, "+491511234567", "Erika Mustermann"));
	gwt_confirm(G, email, PASS);
	s->token = keep(gwt_login(G, email, PASS, NULL));
	free(u);
}

static void
kak_sign(const struct signer *s, const uint8_t *msg, size_t len, uint8_t **sigp, size_t *siglenp)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	size_t siglen = 0;
	uint8_t *sig;

	ck_assert_int_eq(EVP_DigestSignInit(ctx, &pctx, EVP_sha256(), NULL, s->kak), 1);
	if (!s->ec) {
		ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING), 1);
		ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()), 1);
		ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST), 1);
	}
	ck_assert_int_eq(EVP_DigestSign(ctx, NULL, &siglen, msg, len), 1);
	sig = malloc(siglen);
	ck_assert_int_eq(EVP_DigestSign(ctx, sig, &siglen, msg, len), 1);
	EVP_MD_CTX_free(ctx);
	*sigp = sig;
	*siglenp = siglen;
}

static char *
kak_sign_b64(const struct signer *s, const char *msg_b64)
{
	size_t n, sl;
	uint8_t *m = unb64(msg_b64, &n), *sig;
	char *out;

	kak_sign(s, m, n, &sig, &sl);
	out = b64(sig, sl);
	free(m);
	free(sig);
	return out;
}

static char *
spki_b64(EVP_PKEY *k)
{
	unsigned char *der = NULL;
	int n = i2d_PUBKEY(k, &der);
	char *s;

	ck_assert_int_gt(n, 0);
	s = b64(der, (size_t)n);
	OPENSSL_free(der);
	return s;
}

/* sic/activationCode (by the rp) -> code from the outbox -> initialize -> sendDevice.
 * The device is then PENDING enrolment. */
static void
signer_enrol(struct rp *rp, struct signer *s, int ec)
{
	struct gwt_resp *r;
	char *code, *act, *sig, *spki, dev[64];

	s->ec = ec;
	s->kak = keep_key(ec ? EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256") :
	    EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048));
	ck_assert_ptr_nonnull(s->kak);
	r = post("/rssp/sic/activationCode", rp->token, json_pack("{s:s,s:s}", "userID", s->user_id,
	    "channel", "email"));
	gwt_expect(r, 202, NULL);
	ck_assert_str_eq(gwt_str(r, "channel"), "email");
	ck_assert_int_eq(gwt_int(r, "expiresIn"), 600);
	ck_assert_ptr_null(strstr(r->body, "code\""));
	gwt_resp_free(r);
	ck_assert_ptr_nonnull(code = gwt_outbox_secret(G, s->email, "sic_activation_code"));
	ck_assert_uint_eq(strlen(code), 8);
	snprintf(dev, sizeof(dev), "dev-%s-%d-%d", ec ? "ec" : "rsa", (int)getpid(), rand());
	s->device = keep(strdup(dev));
	r = post("/rssp/sic/activate/initialize", s->token, json_pack("{s:s,s:s}",
	    "activationCode", code, "deviceUUID", dev));
	gwt_expect(r, 200, NULL);
	act = str_of(r, "activationID");
	sig = kak_sign_b64(s, gwt_str(r, "challenge"));
	gwt_resp_free(r);
	spki = spki_b64(s->kak);
	r = post("/rssp/sic/activate/sendDevice", s->token, json_pack(
	    "{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "activationID", act, "deviceUUID", dev,
	    "deviceName", "test phone", "platform", "linux", "kakPublicKey", spki,
	    "signAlgo", ec ? "ECDSA" : "RSASSA-PSS", "shaAlgo", "sha256", "signature", sig));
	gwt_expect(r, 200, NULL);
	ck_assert_str_eq(gwt_str(r, "status"), "ACTIVE");
	gwt_resp_free(r);
	free(code);
	free(sig);
	free(spki);
}

/* An RA's signature (ECDSA P-256 SHA-256, DER), base64. */
static char *
ra_sign_b64(EVP_PKEY *k, const uint8_t *msg, size_t len)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint8_t sig[256];
	size_t siglen = sizeof(sig);

	ck_assert_int_eq(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k), 1);
	ck_assert_int_eq(EVP_DigestSign(ctx, sig, &siglen, msg, len), 1);
	EVP_MD_CTX_free(ctx);
	return b64(sig, siglen);
}

/* enrollments/list as the rp for the signer's PENDING device: the voucher bytes for
 * key_id (malloc'd, *lenp), checked against the fields the list shows. */
static uint8_t *
ra_voucher_bytes(struct rp *rp, struct signer *s, const char *key_id, size_t *lenp)
{
	struct gwt_resp *r = post("/rssp/enrollments/list", rp->token, json_pack("{s:s,s:s,s:s}",
	    "status", "PENDING", "userID", s->user_id, "raKeyID", key_id));
	json_t *e = NULL, *f, *arr;
	uint8_t *tbs = NULL;
	size_t i;

	gwt_expect(r, 200, NULL);
	arr = json_object_get(r->json, "enrollments");
	for (i = 0; i < json_array_size(arr); i++)
		if (strcmp(json_string_value(json_object_get(json_array_get(arr, i), "deviceUUID")),
		    s->device) == 0)
			e = json_array_get(arr, i);
	ck_assert_msg(e != NULL, "device %s not PENDING in %s", s->device, r->body);
	ck_assert_str_eq(json_string_value(json_object_get(e, "userID")), s->user_id);
	ck_assert_str_eq(json_string_value(json_object_get(e, "status")), "PENDING");
	f = json_object_get(e, "fields");
	ck_assert_str_eq(json_string_value(json_object_get(f, "commonName")), "Erika Mustermann");
	ck_assert_str_eq(json_string_value(json_object_get(f, "raKeyID")), key_id);
	ck_assert_str_eq(json_string_value(json_object_get(f, "kakSHA256")),
	    json_string_value(json_object_get(e, "kakSHA256")));
	tbs = unb64(json_string_value(json_object_get(e, "toBeSigned")), lenp);
	ck_assert_mem_eq(tbs, "rssp-voucher-v1", 15);
	gwt_resp_free(r);
	return tbs;
}

/* The rp's registration officer vouches for the signer's device. */
static void
ra_vouch(struct rp *rp, struct signer *s)
{
	size_t n;
	uint8_t *tbs = ra_voucher_bytes(rp, s, ra_id, &n);
	char *sig = ra_sign_b64(ra_key, tbs, n);
	struct gwt_resp *r = post("/rssp/enrollments/vouch", rp->token, json_pack("{s:s,s:s,s:s}",
	    "deviceUUID", s->device, "raKeyID", ra_id, "signature", sig));

	gwt_expect(r, 200, NULL);
	ck_assert_str_eq(gwt_str(r, "status"), "VOUCHED");
	gwt_resp_free(r);
	free(tbs);
	free(sig);
}

/* A signer's device, activated and vouched for. */
static void
signer_activate(struct rp *rp, struct signer *s, int ec)
{
	signer_enrol(rp, s, ec);
	ra_vouch(rp, s);
}

static char *
otp_decrypt(const struct signer *s, const char *enc_b64)
{
	size_t n, outlen = 0;
	uint8_t *enc = unb64(enc_b64, &n);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(s->kak, NULL);
	char *out;

	ck_assert_int_eq(EVP_PKEY_decrypt_init(ctx), 1);
	ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING), 1);
	ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256()), 1);
	ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()), 1);
	ck_assert_int_eq(EVP_PKEY_decrypt(ctx, NULL, &outlen, enc, n), 1);
	out = calloc(1, outlen + 1);
	ck_assert_int_eq(EVP_PKEY_decrypt(ctx, (unsigned char *)out, &outlen, enc, n), 1);
	out[outlen] = '\0';
	EVP_PKEY_CTX_free(ctx);
	free(enc);
	return out;
}

static char *
cred_create(struct rp *rp, struct signer *s, const char *key_algo)
{
	struct gwt_resp *r = post("/rssp/credentials/create", rp->token, json_pack(
	    "{s:s,s:s,s:i,s:s}", "userID", s->user_id, "keyAlgo", key_algo, "validityDays", 30,
	    "description", "test credential"));
	char *id;

	gwt_expect(r, 201, NULL);
	ck_assert_str_eq(gwt_str(r, "status"), "NEW");
	id = str_of(r, "credentialID");
	gwt_resp_free(r);
	return id;
}

/* activate/request -> sign the raw authData (+ the OTP for RSA KAKs) -> response. */
static void
cred_activate(struct signer *s, const char *cred)
{
	struct gwt_resp *r = post("/rssp/credentials/activate/request", s->token,
	    json_pack("{s:s,s:s}", "credentialID", cred, "deviceUUID", s->device));
	char *sig, *otp = NULL;
	json_t *body;

	gwt_expect(r, 200, NULL);
	ck_assert_str_eq(gwt_str(r, "signAlgo"), s->ec ? "ECDSA" : "RSASSA-PSS");
	ck_assert_str_eq(gwt_str(r, "shaAlgo"), "sha256");
	ck_assert_int_eq(gwt_str(r, "otpEncrypted") != NULL, !s->ec);
	sig = kak_sign_b64(s, gwt_str(r, "authData"));
	if (!s->ec)
		otp = otp_decrypt(s, gwt_str(r, "otpEncrypted"));
	gwt_resp_free(r);
	body = json_pack("{s:s,s:s,s:s,s:s,s:s}", "credentialID", cred, "deviceUUID", s->device,
	    "signAlgo", s->ec ? "ECDSA" : "RSASSA-PSS", "shaAlgo", "sha256", "authorizeSignature", sig);
	if (otp != NULL)
		json_object_set_new(body, "otpDecrypted", json_string(otp));
	r = post("/rssp/credentials/activate/response", s->token, body);
	gwt_expect(r, 200, NULL);
	ck_assert_str_eq(gwt_str(r, "status"), "ACTIVE");
	ck_assert_ptr_nonnull(gwt_str(r, "certificate"));
	gwt_resp_free(r);
	free(sig);
	free(otp);
}

static void
make_hashes(int hash_len, int n, const char *seed, char **out)
{
	uint8_t d[64];
	char in[128];
	int i;

	for (i = 0; i < n; i++) {
		snprintf(in, sizeof(in), "%s-%d-%d-%d", seed, i, (int)getpid(), rand());
		if (hash_len == 32)
			SHA256((const uint8_t *)in, strlen(in), d);
		else if (hash_len == 48)
			SHA384((const uint8_t *)in, strlen(in), d);
		else
			SHA512((const uint8_t *)in, strlen(in), d);
		out[i] = keep(b64(d, (size_t)hash_len));
	}
}

static json_t *
jarr(char **v, int n)
{
	json_t *a = json_array();
	int i;

	for (i = 0; i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

/* credentials/authorize -> 202 requestID. */
static char *
authorize(const char *token, const char *cred, char **hashes, int n, int num, const char *hoid)
{
	struct gwt_resp *r = post("/rssp/credentials/authorize", token, json_pack(
	    "{s:s,s:i,s:o,s:s,s:s}", "credentialID", cred, "numSignatures", num, "hashes",
	    jarr(hashes, n), "hashAlgorithmOID", hoid, "description", "Loan contract no. 42"));
	char *id;

	gwt_expect(r, 202, NULL);
	ck_assert_str_eq(gwt_str(r, "status"), "PENDING");
	ck_assert_int_gt(gwt_int(r, "expiresIn"), 0);
	id = str_of(r, "requestID");
	gwt_resp_free(r);
	return id;
}

static long confirm_with(struct signer *s, const char *req_id, int check_text);

/* requests/info -> sign the authData -> requests/confirm; returns the status. */
static long
confirm(struct signer *s, const char *req_id)
{
	return confirm_with(s, req_id, 1);
}

static long
confirm_any(struct signer *s, const char *req_id)
{
	return confirm_with(s, req_id, 0);
}

static long
confirm_with(struct signer *s, const char *req_id, int check_text)
{
	struct gwt_resp *r = post("/rssp/requests/info", s->token,
	    json_pack("{s:s}", "requestID", req_id));
	char *sig;
	long st;

	gwt_expect(r, 200, NULL);
	ck_assert_str_eq(gwt_str(r, "rpName")[0] ? "x" : "", "x");
	if (check_text)
		ck_assert_str_eq(gwt_str(r, "description"), "Loan contract no. 42");
	sig = kak_sign_b64(s, gwt_str(r, "authData"));
	gwt_resp_free(r);
	r = post("/rssp/requests/confirm", s->token, json_pack("{s:s,s:s,s:s}", "requestID", req_id,
	    "deviceUUID", s->device, "authorizeSignature", sig));
	st = r->status;
	if (st == 200)
		ck_assert_str_eq(gwt_str(r, "status"), "CONFIRMED");
	gwt_resp_free(r);
	free(sig);
	return st;
}

static char *
check_sad(const char *token, const char *req_id)
{
	struct gwt_resp *r = post("/rssp/credentials/authorizeCheck", token,
	    json_pack("{s:s}", "requestID", req_id));
	char *sad;

	gwt_expect(r, 200, NULL);
	ck_assert_str_eq(gwt_str(r, "status"), "CONFIRMED");
	ck_assert_int_gt(gwt_int(r, "expiresIn"), 0);
	sad = str_of(r, "SAD");
	gwt_resp_free(r);
	return sad;
}

/* authorize + confirm + authorizeCheck: the SAD. */
static char *
approve(struct rp *rp, struct signer *s, const char *cred, char **hashes, int n, int num,
    const char *hoid, char **req_idp)
{
	char *id = authorize(rp->token, cred, hashes, n, num, hoid), *sad;

	ck_assert_int_eq(confirm(s, id), 200);
	sad = check_sad(rp->token, id);
	if (req_idp)
		*req_idp = id;
	return sad;
}

static struct gwt_resp *
sign_hash(const char *token, const char *cred, const char *sad, char **hashes, int n,
    const char *hoid, const char *salgo, const char *params)
{
	json_t *b = json_pack("{s:s,s:s,s:o,s:s}", "credentialID", cred, "SAD", sad,
	    "hashes", jarr(hashes, n), "signAlgo", salgo);

	if (hoid)
		json_object_set_new(b, "hashAlgorithmOID", json_string(hoid));
	if (params)
		json_object_set_new(b, "signAlgoParams", json_string(params));
	return post("/rssp/signatures/signHash", token, b);
}

/* credentials/info with the chain: the signer's certificate, verified against its
 * chain (the last one is the CA, the trust anchor). */
static X509 *
cred_cert(const char *token, const char *cred)
{
	struct gwt_resp *r = post("/rssp/credentials/info", token, json_pack("{s:s,s:s}",
	    "credentialID", cred, "certificates", "chain"));
	json_t *certs, *c;
	X509 *leaf = NULL;
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	STACK_OF(X509) *untrusted = sk_X509_new_null();
	size_t i, n;

	gwt_expect(r, 200, NULL);
	ck_assert_str_eq(gwt_str(r, "status"), "ACTIVE");
	ck_assert_str_eq(gwt_str(r, "authMode"), "implicit");
	ck_assert_str_eq(gwt_str(r, "SCAL"), "2");
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(r->json, "key"), "status")),
	    "enabled");
	c = json_object_get(r->json, "cert");
	ck_assert_ptr_nonnull(c);
	ck_assert_str_eq(json_string_value(json_object_get(c, "status")), "valid");
	ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(c, "subjectDN")), "Erika Mustermann"));
	certs = json_object_get(c, "certificates");
	ck_assert_int_ge(json_array_size(certs), 2);
	for (i = 0; i < json_array_size(certs); i++) {
		uint8_t *der = unb64(json_string_value(json_array_get(certs, i)), &n);
		const unsigned char *p = der;
		X509 *x = d2i_X509(NULL, &p, (long)n);
		ck_assert_ptr_nonnull(x);
		if (i == 0)
			leaf = x;
		else if (i == json_array_size(certs) - 1) {
			X509_STORE_add_cert(store, x);
			X509_free(x);
		} else
			sk_X509_push(untrusted, x);
		free(der);
	}
	ck_assert_int_eq(X509_STORE_CTX_init(ctx, store, leaf, untrusted), 1);
	ck_assert_msg(X509_verify_cert(ctx) == 1, "certificate does not verify: %s",
	    X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	sk_X509_pop_free(untrusted, X509_free);
	gwt_resp_free(r);
	return leaf;
}

enum { V_PKCS1, V_PSS, V_ECDSA };

static void
verify_sig(X509 *cert, int kind, const EVP_MD *md, const char *hash_b64, const char *sig_b64)
{
	size_t hl, sl;
	uint8_t *h = unb64(hash_b64, &hl), *sig = unb64(sig_b64, &sl);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(X509_get0_pubkey(cert), NULL);

	ck_assert_int_eq(EVP_PKEY_verify_init(ctx), 1);
	ck_assert_int_eq(EVP_PKEY_CTX_set_signature_md(ctx, md), 1);
	if (kind == V_PKCS1)
		ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING), 1);
	if (kind == V_PSS) {
		ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING), 1);
		ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, RSA_PSS_SALTLEN_DIGEST), 1);
		ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md), 1);
	}
	ck_assert_msg(EVP_PKEY_verify(ctx, sig, sl, h, hl) == 1, "signature does not verify");
	EVP_PKEY_CTX_free(ctx);
	free(h);
	free(sig);
}

/* Approves n hashes, signs them in one call with salgo, verifies every signature. */
static void
sign_and_verify(struct rp *rp, struct signer *s, const char *cred, int hash_len,
    const char *hoid, const char *salgo, const char *params, int kind, const EVP_MD *md)
{
	char *hashes[3], *sad;
	struct gwt_resp *r;
	json_t *sigs;
	X509 *cert = cred_cert(rp->token, cred);
	int i;

	make_hashes(hash_len, 3, salgo, hashes);
	sad = approve(rp, s, cred, hashes, 3, 3, hoid, NULL);
	r = sign_hash(rp->token, cred, sad, hashes, 3, hoid, salgo, params);
	gwt_expect(r, 200, NULL);
	sigs = json_object_get(r->json, "signatures");
	ck_assert_int_eq(json_array_size(sigs), 3);
	for (i = 0; i < 3; i++)
		verify_sig(cert, kind, md, hashes[i], json_string_value(json_array_get(sigs, i)));
	gwt_resp_free(r);
	X509_free(cert);
}

/* A signer with an active device and one ACTIVE credential. */
static void
ready(struct rp *rp, struct signer *s, int ec, const char *key_algo, char **credp)
{
	rp_new(rp);
	signer_new(rp, s);
	signer_activate(rp, s, ec);
	*credp = cred_create(rp, s, key_algo);
	cred_activate(s, *credp);
}

/* RSASSA-PSS-params for SHA-256, MGF1-SHA-256, salt 32 (DER, base64). */
static const char *PSS_SHA256_PARAMS =
    "MDSgDzANBglghkgBZQMEAgEFAKEcMBoGCSqGSIb3DQEBCDANBglghkgBZQMEAgEFAKIDAgEg";

/* ---- the full flow ---------------------------------------------------------------- */

START_TEST(test_rsa_pss_kak_activates_rsa2048_and_ecp384_and_signatures_verify)
{
	struct rp rp;
	struct signer s;
	char *rsa, *ec;

	ready(&rp, &s, 0, "rsa2048", &rsa);
	sign_and_verify(&rp, &s, rsa, 32, SHA256_OID, RSA_SHA256, NULL, V_PKCS1, EVP_sha256());
	sign_and_verify(&rp, &s, rsa, 32, SHA256_OID, RSA_PSS, PSS_SHA256_PARAMS, V_PSS, EVP_sha256());
	sign_and_verify(&rp, &s, rsa, 32, SHA256_OID, RSA_PSS, NULL, V_PSS, EVP_sha256());
	ec = cred_create(&rp, &s, "ecp384");
	cred_activate(&s, ec);
	sign_and_verify(&rp, &s, ec, 48, SHA384_OID, ECDSA_SHA384, NULL, V_ECDSA, EVP_sha384());
}
END_TEST

/* ---- enrolment: a registration authority vouches for each device (issue 9) --------- */

static void
expect_field(struct gwt_resp *r, long status, const char *code, const char *field)
{
	gwt_expect(r, status, code);
	ck_assert_msg(strstr(gwt_str(r, "error_description"), field) != NULL,
	    "'%s' not named in %s", field, r->body);
	gwt_resp_free(r);
}

START_TEST(test_activation_needs_a_vouched_device_and_vouches_are_checked)
{
	struct rp rp, other;
	struct signer s, t;
	struct gwt_resp *r;
	uint8_t *tbs;
	size_t n;
	char *cred, *sig, *rogue_sig, *rogue_tbs;
	X509 *cert;
	char buf[256];

	rp_new(&rp);
	rp_new(&other);
	signer_new(&rp, &s);
	signer_enrol(&rp, &s, 1);
	signer_new(&rp, &t);
	signer_enrol(&rp, &t, 0);
	cred = cred_create(&rp, &s, "ecp256");

	/* a device nobody vouched for activates nothing */
	r = post("/rssp/credentials/activate/request", s.token, json_pack("{s:s,s:s}",
	    "credentialID", cred, "deviceUUID", s.device));
	expect_field(r, 409, "enrollment_pending", "deviceUUID");
	/* only admins and rps list and vouch; an rp only its own users */
	r = post("/rssp/enrollments/list", s.token, json_pack("{s:s}", "raKeyID", ra_id));
	gwt_expect(r, 403, NULL);
	gwt_resp_free(r);
	r = post("/rssp/enrollments/list", other.token, json_pack("{s:s,s:s}", "userID", s.user_id,
	    "raKeyID", ra_id));
	gwt_expect(r, 200, NULL);
	ck_assert_int_eq(json_array_size(json_object_get(r->json, "enrollments")), 0);
	gwt_resp_free(r);
	r = post("/rssp/enrollments/list", rp.token, json_pack("{s:s,s:s}", "status", "DONE",
	    "raKeyID", ra_id));
	expect_field(r, 400, "invalid_request", "status");

	/* a key the service does not trust, even over the right bytes for that key */
	tbs = ra_voucher_bytes(&rp, &s, ra_rogue_id, &n);
	rogue_sig = ra_sign_b64(ra_rogue, tbs, n);
	rogue_tbs = b64(tbs, n);
	r = post("/rssp/enrollments/vouch", rp.token, json_pack("{s:s,s:s,s:s}",
	    "deviceUUID", s.device, "raKeyID", ra_rogue_id, "signature", rogue_sig));
	expect_field(r, 400, "invalid_request", "raKeyID");
	free(tbs);
	/* the trusted key's signature over another device's voucher */
	tbs = ra_voucher_bytes(&rp, &t, ra_id, &n);
	sig = ra_sign_b64(ra_key, tbs, n);
	r = post("/rssp/enrollments/vouch", rp.token, json_pack("{s:s,s:s,s:s}",
	    "deviceUUID", s.device, "raKeyID", ra_id, "signature", sig));
	expect_field(r, 400, "invalid_request", "signature");
	free(tbs);
	free(sig);
	/* shapes */
	r = post("/rssp/enrollments/vouch", rp.token, json_pack("{s:s,s:s,s:s}",
	    "deviceUUID", s.device, "raKeyID", "abc", "signature", "AAAA"));
	expect_field(r, 400, "invalid_request", "raKeyID");
	r = post("/rssp/enrollments/vouch", rp.token, json_pack("{s:s,s:s}",
	    "deviceUUID", s.device, "raKeyID", ra_id));
	expect_field(r, 400, "invalid_request", "signature");
	/* another rp cannot vouch for this rp's user, even with a good signature */
	tbs = ra_voucher_bytes(&rp, &s, ra_id, &n);
	sig = ra_sign_b64(ra_key, tbs, n);
	r = post("/rssp/enrollments/vouch", other.token, json_pack("{s:s,s:s,s:s}",
	    "deviceUUID", s.device, "raKeyID", ra_id, "signature", sig));
	expect_field(r, 404, "not_found", "deviceUUID");
	/* the rp's own officer: VOUCHED, once */
	r = post("/rssp/enrollments/vouch", rp.token, json_pack("{s:s,s:s,s:s}",
	    "deviceUUID", s.device, "raKeyID", ra_id, "signature", sig));
	gwt_expect(r, 200, NULL);
	ck_assert_str_eq(gwt_str(r, "status"), "VOUCHED");
	gwt_resp_free(r);
	r = post("/rssp/enrollments/vouch", rp.token, json_pack("{s:s,s:s,s:s}",
	    "deviceUUID", s.device, "raKeyID", ra_id, "signature", sig));
	expect_field(r, 409, "conflict", "deviceUUID");
	free(tbs);
	free(sig);
	r = post("/rssp/enrollments/list", rp.token, json_pack("{s:s,s:s}", "status", "VOUCHED",
	    "userID", s.user_id));
	gwt_expect(r, 200, NULL);
	ck_assert_int_eq(json_array_size(json_object_get(r->json, "enrollments")), 1);
	gwt_resp_free(r);

	/* activation now works, and the certificate names exactly the vouched subject */
	cred_activate(&s, cred);
	cert = cred_cert(s.token, cred);
	ck_assert_int_gt(X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName,
	    buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "Erika Mustermann");
	ck_assert_int_gt(X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_serialNumber,
	    buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, s.user_id);
	X509_free(cert);
	/* a voucher of a key the engine does not trust, written straight into the database
	 * (as a compromised gateway could): the engine refuses, the app gets a named 403 */
	{
		char *c2 = cred_create(&rp, &s, "ecp256");
		char *q = gwt_sql(G, "UPDATE enrollments SET voucher = decode($1, 'base64'),"
		    " ra_signature = decode($2, 'base64'), ra_key_id = decode($3, 'hex')"
		    " WHERE device_id = (SELECT id FROM devices WHERE device_uuid = $4"
		    " AND status = 'ACTIVE') RETURNING status", rogue_tbs, rogue_sig, ra_rogue_id,
		    s.device, NULL);
		char *asig;

		ck_assert_str_eq(q, "VOUCHED");
		free(q);
		r = post("/rssp/credentials/activate/request", s.token, json_pack("{s:s,s:s}",
		    "credentialID", c2, "deviceUUID", s.device));
		gwt_expect(r, 200, NULL);
		asig = kak_sign_b64(&s, gwt_str(r, "authData"));
		gwt_resp_free(r);
		r = post("/rssp/credentials/activate/response", s.token, json_pack(
		    "{s:s,s:s,s:s,s:s,s:s}", "credentialID", c2, "deviceUUID", s.device,
		    "signAlgo", "ECDSA", "shaAlgo", "sha256", "authorizeSignature", asig));
		expect_field(r, 403, "access_denied", "voucher key unknown");
		free(asig);
	}
	free(rogue_sig);
	free(rogue_tbs);
}
END_TEST

/* What a compromised gateway can write into its own database: a voucher row of another
 * device, another KAK on a vouched device. */
static void
sql_copy_voucher(const char *from_device, const char *to_device)
{
	char *q = gwt_sql(G, "UPDATE enrollments e SET status = 'VOUCHED', voucher = s.voucher,"
	    " ra_signature = s.ra_signature, ra_key_id = s.ra_key_id FROM enrollments s"
	    " WHERE s.device_id = (SELECT id FROM devices WHERE device_uuid = $1)"
	    " AND e.device_id = (SELECT id FROM devices WHERE device_uuid = $2)"
	    " RETURNING e.status", from_device, to_device, NULL);

	ck_assert_str_eq(q, "VOUCHED");
	free(q);
}

/* activate/request and /response signed by s's KAK: the engine's named refusal. */
static void
activation_refused(struct signer *s, const char *cred, long status, const char *code,
    const char *reason)
{
	struct gwt_resp *r = post("/rssp/credentials/activate/request", s->token,
	    json_pack("{s:s,s:s}", "credentialID", cred, "deviceUUID", s->device));
	char *sig, *st;

	gwt_expect(r, 200, NULL);
	sig = kak_sign_b64(s, gwt_str(r, "authData"));
	gwt_resp_free(r);
	r = post("/rssp/credentials/activate/response", s->token, json_pack(
	    "{s:s,s:s,s:s,s:s,s:s}", "credentialID", cred, "deviceUUID", s->device,
	    "signAlgo", "ECDSA", "shaAlgo", "sha256", "authorizeSignature", sig));
	expect_field(r, status, code, reason);
	free(sig);
	/* nothing half-written: the credential is still NEW, without a certificate */
	st = gwt_sql(G, "SELECT status FROM credentials WHERE id = $1", cred, NULL);
	ck_assert_str_eq(st, "NEW");
	free(st);
}

/* The engine-socket cases of tests/engine_rpc (a compromised gateway) through REST: the
 * rows a compromised gateway could write get the engine's named 4xx. */
START_TEST(test_a_voucher_of_another_user_device_or_kak_or_an_expired_one_is_refused_over_rest)
{
	struct rp rp;
	struct signer a, b, v, v2, x;
	struct gwt_resp *r;
	uint8_t *tbs;
	size_t n, i;
	char *cred_b, *cred_v, *cred_x, *sig, *tbs64, *q, *spki;
	int64_t now = (int64_t)time(NULL), iat = now - 10 * 86400, naf = now - 60;

	rp_new(&rp);
	/* user A's voucher on user B's device (and credential) */
	signer_new(&rp, &a);
	signer_activate(&rp, &a, 1);
	signer_new(&rp, &b);
	signer_enrol(&rp, &b, 1);
	cred_b = cred_create(&rp, &b, "ecp256");
	sql_copy_voucher(a.device, b.device);
	activation_refused(&b, cred_b, 403, "access_denied", "voucher for another user");

	/* the victim's voucher with the attacker's KAK: the gateway swaps the KAK of the
	 * victim's vouched device for its own and signs the activation with it */
	signer_new(&rp, &v);
	signer_activate(&rp, &v, 1);
	cred_v = cred_create(&rp, &v, "ecp256");
	v2 = v;
	v2.kak = keep_key(EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"));
	spki = spki_b64(v2.kak);
	q = gwt_sql(G, "UPDATE devices SET kak_spki = decode($1, 'base64') WHERE device_uuid = $2"
	    " RETURNING status", spki, v.device, NULL);
	ck_assert_str_eq(q, "ACTIVE");
	free(q);
	free(spki);
	activation_refused(&v2, cred_v, 403, "access_denied", "voucher for another kak");
	/* ... or the victim's voucher on a new device of the attacker's under her account */
	r = post("/rssp/admin/devices/revoke", gwt_admin_token(G), json_pack("{s:s}", "userID",
	    v.user_id));
	gwt_expect(r, 200, NULL);
	gwt_resp_free(r);
	v2 = v;
	signer_enrol(&rp, &v2, 1);
	sql_copy_voucher(v.device, v2.device);
	activation_refused(&v2, cred_v, 403, "access_denied", "voucher for another device");

	/* an expired voucher, genuinely signed by the trusted RA for this device: the gateway
	 * answers at once, 409 enrollment_pending naming the device (the engine's own
	 * "voucher expired" is asserted over the socket in tests/engine_rpc) */
	signer_new(&rp, &x);
	signer_enrol(&rp, &x, 1);
	cred_x = cred_create(&rp, &x, "ecp256");
	tbs = ra_voucher_bytes(&rp, &x, ra_id, &n);
	/* the two 8-byte times precede the last field (ra_key_id: tag, length, 32 bytes) */
	ck_assert_uint_gt(n, 37 + 13 + 13);
	ck_assert_uint_eq(tbs[n - 37 - 13], 6);
	ck_assert_uint_eq(tbs[n - 37 - 26], 5);
	for (i = 0; i < 8; i++) {
		tbs[n - 37 - 8 + i] = (uint8_t)((uint64_t)naf >> (56 - 8 * i));
		tbs[n - 37 - 13 - 8 + i] = (uint8_t)((uint64_t)iat >> (56 - 8 * i));
	}
	sig = ra_sign_b64(ra_key, tbs, n);
	tbs64 = b64(tbs, n);
	q = gwt_sql(G, "UPDATE enrollments SET status = 'VOUCHED', voucher = decode($1, 'base64'),"
	    " ra_signature = decode($2, 'base64'), ra_key_id = decode($3, 'hex')"
	    " WHERE device_id = (SELECT id FROM devices WHERE device_uuid = $4) RETURNING status",
	    tbs64, sig, ra_id, x.device, NULL);
	ck_assert_str_eq(q, "VOUCHED");
	free(q);
	r = post("/rssp/credentials/activate/request", x.token, json_pack("{s:s,s:s}",
	    "credentialID", cred_x, "deviceUUID", x.device));
	gwt_expect(r, 409, "enrollment_pending");
	ck_assert_ptr_nonnull(strstr(gwt_str(r, "error_description"), "expired"));
	expect_field(r, 409, "enrollment_pending", "deviceUUID");
	free(tbs);
	free(sig);
	free(tbs64);
	/* and, the forged row undone, a genuine voucher of B's own device works for B */
	q = gwt_sql(G, "UPDATE enrollments SET status = 'PENDING', voucher = NULL,"
	    " ra_signature = NULL, ra_key_id = NULL"
	    " WHERE device_id = (SELECT id FROM devices WHERE device_uuid = $1) RETURNING status",
	    b.device, NULL);
	ck_assert_str_eq(q, "PENDING");
	free(q);
	ra_vouch(&rp, &b);
	cred_activate(&b, cred_b);
}
END_TEST

START_TEST(test_ec_kak_activates_rsa3072_and_ecp256_and_signatures_verify)
{
	struct rp rp;
	struct signer s;
	char *rsa, *ec;

	ready(&rp, &s, 1, "ecp256", &ec);
	sign_and_verify(&rp, &s, ec, 32, SHA256_OID, ECDSA_SHA256, NULL, V_ECDSA, EVP_sha256());
	rsa = cred_create(&rp, &s, "rsa3072");
	cred_activate(&s, rsa);
	sign_and_verify(&rp, &s, rsa, 64, SHA512_OID, RSA_SHA512, NULL, V_PKCS1, EVP_sha512());

	/* The same through CSC v2.0.0.2 (asynchronous: 202 {handle}), without a description. */
	{
		char *hashes[1], *id, *sad;
		struct gwt_resp *r;

		make_hashes(32, 1, "csc", hashes);
		r = post("/csc/v2/credentials/authorize", rp.token, json_pack("{s:s,s:i,s:o,s:s}",
		    "credentialID", ec, "numSignatures", 1, "hashes", jarr(hashes, 1),
		    "hashAlgorithmOID", SHA256_OID));
		gwt_expect(r, 202, NULL);
		id = str_of(r, "handle");
		gwt_resp_free(r);
		r = post("/csc/v2/credentials/authorizeCheck", rp.token, json_pack("{s:s}", "handle", id));
		gwt_expect(r, 202, NULL);
		gwt_resp_free(r);
		r = post("/rssp/requests/info", s.token, json_pack("{s:s}", "requestID", id));
		gwt_expect(r, 200, NULL);
		ck_assert_str_eq(gwt_str(r, "description"), "Signature request");
		gwt_resp_free(r);
		ck_assert_int_eq(confirm_any(&s, id), 200);
		r = post("/csc/v2/credentials/authorizeCheck", rp.token, json_pack("{s:s}", "handle", id));
		gwt_expect(r, 200, NULL);
		sad = str_of(r, "SAD");
		gwt_resp_free(r);
		r = post("/csc/v2/signatures/signHash", rp.token, json_pack("{s:s,s:s,s:o,s:s,s:s}",
		    "credentialID", ec, "SAD", sad, "hashes", jarr(hashes, 1), "hashAlgorithmOID",
		    SHA256_OID, "signAlgo", ECDSA_SHA256));
		gwt_expect(r, 200, NULL);
		ck_assert_int_eq(json_array_size(json_object_get(r->json, "signatures")), 1);
		gwt_resp_free(r);
	}
}
END_TEST

struct waiter_arg {
	const char *token, *cred;
	char **hashes;
	long status;
	char *body;
	size_t len;
};

static size_t
waiter_collect(char *p, size_t sz, size_t n, void *arg)
{
	struct waiter_arg *a = arg;
	char *nb = realloc(a->body, a->len + sz * n + 1);

	if (nb == NULL)
		return 0;
	memcpy(nb + a->len, p, sz * n);
	a->len += sz * n;
	nb[a->len] = '\0';
	a->body = nb;
	return sz * n;
}

/* The RP's long-poll, on its own connection (gwtest's handle is not shared by threads). */
static void *
authorize_waiting(void *p)
{
	struct waiter_arg *a = p;
	json_t *b = json_pack("{s:s,s:i,s:o,s:s,s:s,s:i}", "credentialID", a->cred,
	    "numSignatures", 1, "hashes", jarr(a->hashes, 1), "hashAlgorithmOID", SHA256_OID,
	    "description", "Loan contract no. 42", "wait", 30);
	char *body = json_dumps(b, 0), url[256], auth[256];
	struct curl_slist *h = NULL;
	CURL *c = curl_easy_init();

	snprintf(url, sizeof(url), "%s/rssp/credentials/authorize", gwt_url(G));
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", a->token);
	h = curl_slist_append(h, auth);
	h = curl_slist_append(h, "Content-Type: application/json");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, waiter_collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, a);
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &a->status);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	free(body);
	json_decref(b);
	return NULL;
}

START_TEST(test_authorize_with_wait_answers_the_sad_as_soon_as_the_app_confirms)
{
	struct rp rp;
	struct signer s;
	char *cred, *hashes[1], *id = NULL;
	struct waiter_arg a = { 0 };
	struct gwt_resp *r;
	pthread_t t;
	int i;

	ready(&rp, &s, 1, "ecp256", &cred);
	make_hashes(32, 1, "wait", hashes);
	a.token = rp.token;
	a.cred = cred;
	a.hashes = hashes;
	pthread_create(&t, NULL, authorize_waiting, &a);
	/* The app sees the request appear, then confirms it. */
	for (i = 0; i < 200 && id == NULL; i++) {
		r = post("/rssp/requests/list", s.token, json_pack("{s:s,s:s}", "deviceUUID", s.device,
		    "status", "PENDING"));
		gwt_expect(r, 200, NULL);
		if (json_array_size(json_object_get(r->json, "requests")) == 1)
			id = keep(strdup(json_string_value(json_object_get(json_array_get(
			    json_object_get(r->json, "requests"), 0), "requestID"))));
		gwt_resp_free(r);
		if (id == NULL)
			usleep(50 * 1000);
	}
	ck_assert_ptr_nonnull(id);
	ck_assert_int_eq(confirm(&s, id), 200);
	pthread_join(t, NULL);
	ck_assert_msg(a.status == 200, "authorize with wait: %ld %s", a.status, a.body);
	{
		json_t *j = json_loads(a.body, 0, NULL);
		ck_assert_str_eq(json_string_value(json_object_get(j, "status")), "CONFIRMED");
		ck_assert_ptr_nonnull(json_string_value(json_object_get(j, "SAD")));
		r = sign_hash(rp.token, cred, json_string_value(json_object_get(j, "SAD")), hashes, 1,
		    SHA256_OID, ECDSA_SHA256, NULL);
		gwt_expect(r, 200, NULL);
		gwt_resp_free(r);
		json_decref(j);
	}
	free(a.body);
}
END_TEST

START_TEST(test_a_batch_of_1000_hashes_is_approved_once_and_signed_in_one_call)
{
	struct rp rp;
	struct signer s;
	char *cred, *hashes[1000], *sad;
	struct gwt_resp *r;
	json_t *sigs;
	X509 *cert;
	int i;

	ready(&rp, &s, 1, "ecp256", &cred);
	cert = cred_cert(rp.token, cred);
	make_hashes(32, 1000, "batch", hashes);
	sad = approve(&rp, &s, cred, hashes, 1000, 1000, SHA256_OID, NULL);
	r = sign_hash(rp.token, cred, sad, hashes, 1000, SHA256_OID, ECDSA_SHA256, NULL);
	gwt_expect(r, 200, NULL);
	sigs = json_object_get(r->json, "signatures");
	ck_assert_int_eq(json_array_size(sigs), 1000);
	for (i = 0; i < 1000; i += 111)
		verify_sig(cert, V_ECDSA, EVP_sha256(), hashes[i], json_string_value(json_array_get(sigs, i)));
	gwt_resp_free(r);
	X509_free(cert);
	/* The SAD is a bearer secret: neither the access log nor the diagnostics hold it. */
	ck_assert_msg(!file_contains(gwt_stdout_path(G), sad), "the SAD is in the access log");
	ck_assert_msg(!file_contains(gwt_stderr_path(G), sad), "the SAD is in the gateway log");
}
END_TEST

/* ---- refusals --------------------------------------------------------------------- */

START_TEST(test_signhash_refuses_beyond_num_signatures_unapproved_hashes_and_tampered_sads)
{
	struct rp rp, rp2;
	struct signer s;
	char *cred, *hashes[2], *other[1], *sad, *bad, *rid;
	struct gwt_resp *r;

	ready(&rp, &s, 0, "ecp256", &cred);
	make_hashes(32, 2, "count", hashes);
	make_hashes(32, 1, "other", other);
	sad = approve(&rp, &s, cred, hashes, 2, 2, SHA256_OID, &rid);

	/* A hash that was not approved: the engine refuses, the count is refunded. */
	r = sign_hash(rp.token, cred, sad, other, 1, SHA256_OID, ECDSA_SHA256, NULL);
	ck_assert_int_eq(r->status, 403);
	gwt_resp_free(r);
	/* RP B cannot use RP A's SAD. */
	rp_new(&rp2);
	r = sign_hash(rp2.token, cred, sad, hashes, 1, SHA256_OID, ECDSA_SHA256, NULL);
	gwt_expect(r, 403, "access_denied");
	gwt_resp_free(r);
	/* A tampered SAD is a client error, never a 500. */
	bad = keep(strdup(sad));
	bad[5] = bad[5] == 'A' ? 'B' : 'A';
	r = sign_hash(rp.token, cred, bad, hashes, 1, SHA256_OID, ECDSA_SHA256, NULL);
	ck_assert_int_ge(r->status, 400);
	ck_assert_int_lt(r->status, 500);
	gwt_resp_free(r);
	/* Wrong digest length, unknown algorithm, bad base64: 400 naming the field. */
	r = sign_hash(rp.token, cred, sad, hashes, 1, SHA384_OID, ECDSA_SHA384, NULL);
	gwt_expect(r, 400, "invalid_request");
	ck_assert_ptr_nonnull(strstr(gwt_str(r, "error_description"), "hashes[0]"));
	gwt_resp_free(r);
	r = sign_hash(rp.token, cred, sad, hashes, 1, SHA256_OID, "1.2.3.4.5", NULL);
	gwt_expect(r, 400, "invalid_request");
	ck_assert_ptr_nonnull(strstr(gwt_str(r, "error_description"), "signAlgo"));
	gwt_resp_free(r);
	/* RSASSA-PSS with salt 20 parses (any salt up to the key's maximum is allowed), but
	 * not on an EC key; MGF1 with another hash does not parse. */
	r = sign_hash(rp.token, cred, sad, hashes, 1, SHA256_OID, RSA_PSS,
	    "MDSgDzANBglghkgBZQMEAgEFAKEcMBoGCSqGSIb3DQEBCDANBglghkgBZQMEAgEFAKIDAgEU");
	gwt_expect(r, 400, "invalid_request");
	ck_assert_ptr_nonnull(strstr(gwt_str(r, "error_description"), "signAlgo"));
	gwt_resp_free(r);
	r = sign_hash(rp.token, cred, sad, hashes, 1, SHA256_OID, RSA_PSS,
	    "MDCgDzANBglghkgBZQMEAgEFAKEYMBYGCSqGSIb3DQEBCDAJBgUrDgMCGgUAogMCASA=");
	gwt_expect(r, 400, "invalid_request");
	ck_assert_ptr_nonnull(strstr(gwt_str(r, "error_description"), "signAlgoParams"));
	gwt_resp_free(r);
	/* RSASSA-PSS on an EC key: refused, and the count is refunded. */
	r = sign_hash(rp.token, cred, sad, hashes, 1, SHA256_OID, RSA_PSS, NULL);
	gwt_expect(r, 400, "invalid_request");
	gwt_resp_free(r);
	r = sign_hash(rp.token, cred, "not base64!", hashes, 1, SHA256_OID, ECDSA_SHA256, NULL);
	gwt_expect(r, 400, "invalid_request");
	ck_assert_ptr_nonnull(strstr(gwt_str(r, "error_description"), "SAD"));
	gwt_resp_free(r);
	/* The two approved signatures work (one call each), a third is refused. */
	r = sign_hash(rp.token, cred, sad, hashes, 1, SHA256_OID, ECDSA_SHA256, NULL);
	gwt_expect(r, 200, NULL);
	gwt_resp_free(r);
	r = sign_hash(rp.token, cred, sad, hashes + 1, 1, SHA256_OID, ECDSA_SHA256, NULL);
	gwt_expect(r, 200, NULL);
	gwt_resp_free(r);
	r = sign_hash(rp.token, cred, sad, hashes, 1, SHA256_OID, ECDSA_SHA256, NULL);
	gwt_expect(r, 403, "access_denied");
	gwt_resp_free(r);
	free(gwt_sql(G, "SELECT remaining FROM auth_requests WHERE id = $1", rid, NULL));
	{
		char *rem = gwt_sql(G, "SELECT remaining::text FROM auth_requests WHERE id = $1", rid, NULL);
		ck_assert_str_eq(rem, "0");
		free(rem);
	}
}
END_TEST

START_TEST(test_confirm_refuses_a_wrong_or_replayed_signature_and_an_expired_request)
{
	struct rp rp;
	struct signer s, fake;
	char *cred, *hashes[1], *id, *sig;
	struct gwt_resp *r;

	ready(&rp, &s, 0, "ecp256", &cred);
	make_hashes(32, 1, "confirm", hashes);
	id = authorize(rp.token, cred, hashes, 1, 1, SHA256_OID);
	/* Signed by another key: the engine refuses. */
	fake = s;
	fake.kak = keep_key(EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048));
	r = post("/rssp/requests/info", s.token, json_pack("{s:s}", "requestID", id));
	gwt_expect(r, 200, NULL);
	sig = kak_sign_b64(&fake, gwt_str(r, "authData"));
	gwt_resp_free(r);
	r = post("/rssp/requests/confirm", s.token, json_pack("{s:s,s:s,s:s}", "requestID", id,
	    "deviceUUID", s.device, "authorizeSignature", sig));
	gwt_expect(r, 403, "access_denied");
	gwt_resp_free(r);
	free(sig);
	/* The right signature works once; replayed, it is refused. */
	ck_assert_int_eq(confirm(&s, id), 200);
	ck_assert_int_eq(confirm(&s, id), 409);
	/* An expired request: 410 for the app and for the RP. */
	id = authorize(rp.token, cred, hashes, 1, 1, SHA256_OID);
	free(gwt_sql(G, "UPDATE auth_requests SET expires_at = 1 WHERE id = $1 RETURNING 1", id, NULL));
	ck_assert_int_eq(confirm(&s, id), 410);
	r = post("/rssp/credentials/authorizeCheck", rp.token, json_pack("{s:s}", "requestID", id));
	gwt_expect(r, 410, "expired");
	gwt_resp_free(r);
}
END_TEST

START_TEST(test_user_b_neither_sees_nor_confirms_user_a_requests)
{
	struct rp rp;
	struct signer a, b;
	char *cred_a, *cred_b, *hashes[1], *id, *sig;
	struct gwt_resp *r;

	ready(&rp, &a, 1, "ecp256", &cred_a);
	signer_new(&rp, &b);
	signer_activate(&rp, &b, 1);
	cred_b = cred_create(&rp, &b, "ecp256");
	make_hashes(32, 1, "tenant", hashes);
	id = authorize(rp.token, cred_a, hashes, 1, 1, SHA256_OID);
	r = post("/rssp/requests/list", b.token, json_pack("{s:s}", "deviceUUID", b.device));
	gwt_expect(r, 200, NULL);
	ck_assert_ptr_null(strstr(r->body, id));
	gwt_resp_free(r);
	r = post("/rssp/requests/info", b.token, json_pack("{s:s}", "requestID", id));
	ck_assert(r->status == 403 || r->status == 404);
	gwt_resp_free(r);
	r = post("/rssp/requests/info", a.token, json_pack("{s:s}", "requestID", id));
	gwt_expect(r, 200, NULL);
	sig = kak_sign_b64(&a, gwt_str(r, "authData"));
	gwt_resp_free(r);
	/* B replays A's valid signature from B's own device. */
	r = post("/rssp/requests/confirm", b.token, json_pack("{s:s,s:s,s:s}", "requestID", id,
	    "deviceUUID", b.device, "authorizeSignature", sig));
	ck_assert(r->status == 403 || r->status == 404);
	gwt_resp_free(r);
	/* B cannot authorize on A's credential, nor read it. */
	r = post("/rssp/credentials/authorize", b.token, json_pack("{s:s,s:i,s:o,s:s,s:s}",
	    "credentialID", cred_a, "numSignatures", 1, "hashes", jarr(hashes, 1),
	    "hashAlgorithmOID", SHA256_OID, "description", "x"));
	gwt_expect(r, 403, "access_denied");
	gwt_resp_free(r);
	r = post("/rssp/credentials/info", b.token, json_pack("{s:s}", "credentialID", cred_a));
	gwt_expect(r, 403, "access_denied");
	gwt_resp_free(r);
	/* B's list shows only B's credential. */
	r = post("/rssp/credentials/list", b.token, json_pack("{}"));
	gwt_expect(r, 200, NULL);
	ck_assert_int_eq(json_array_size(json_object_get(r->json, "credentialIDs")), 1);
	ck_assert_ptr_nonnull(strstr(r->body, cred_b));
	gwt_resp_free(r);
	free(sig);
}
END_TEST

START_TEST(test_a_revoked_device_cannot_confirm_and_its_credentials_fall_back_to_new)
{
	struct rp rp;
	struct signer s;
	char *cred, *hashes[1], *id, *st;
	struct gwt_resp *r;

	ready(&rp, &s, 0, "ecp256", &cred);
	make_hashes(32, 1, "revoked", hashes);
	id = authorize(rp.token, cred, hashes, 1, 1, SHA256_OID);
	r = post("/rssp/admin/devices/revoke", gwt_admin_token(G), json_pack("{s:s}", "userID", s.user_id));
	gwt_expect(r, 200, NULL);
	ck_assert_str_eq(gwt_str(r, "status"), "REVOKED");
	gwt_resp_free(r);
	r = post("/rssp/requests/info", s.token, json_pack("{s:s}", "requestID", id));
	gwt_expect(r, 200, NULL);
	{
		char *sig = kak_sign_b64(&s, gwt_str(r, "authData"));
		struct gwt_resp *c = post("/rssp/requests/confirm", s.token, json_pack("{s:s,s:s,s:s}",
		    "requestID", id, "deviceUUID", s.device, "authorizeSignature", sig));
		gwt_expect(c, 403, "access_denied");
		gwt_resp_free(c);
		free(sig);
	}
	gwt_resp_free(r);
	st = gwt_sql(G, "SELECT status FROM credentials WHERE id = $1", cred, NULL);
	ck_assert_str_eq(st, "NEW");
	free(st);
	r = post("/rssp/sic/status", s.token, json_pack("{}"));
	gwt_expect(r, 200, NULL);
	ck_assert_str_eq(gwt_str(r, "status"), "REVOKED");
	gwt_resp_free(r);
	/* A new device: the credential is activated again with a new key and certificate.
	 * A new phone is a new device: it needs its own voucher first. */
	signer_enrol(&rp, &s, 1);
	r = post("/rssp/credentials/activate/request", s.token, json_pack("{s:s,s:s}",
	    "credentialID", cred, "deviceUUID", s.device));
	expect_field(r, 409, "enrollment_pending", "deviceUUID");
	ra_vouch(&rp, &s);
	cred_activate(&s, cred);
	sign_and_verify(&rp, &s, cred, 32, SHA256_OID, ECDSA_SHA256, NULL, V_ECDSA, EVP_sha256());
}
END_TEST

START_TEST(test_signhash_refuses_a_revoked_or_cancelled_credential)
{
	struct rp rp;
	struct signer s;
	char *cred, *cred2, *hashes[1], *sad;
	struct gwt_resp *r;

	ready(&rp, &s, 1, "ecp256", &cred);
	make_hashes(32, 1, "revoke", hashes);
	sad = approve(&rp, &s, cred, hashes, 1, 1, SHA256_OID, NULL);
	/* A cancelled credential: the SAD of another is refused for it, and it cannot be
	 * authorized. */
	cred2 = cred_create(&rp, &s, "ecp256");
	r = post("/rssp/credentials/activate/cancel", s.token, json_pack("{s:s,s:s}",
	    "credentialID", cred2, "deviceUUID", s.device));
	gwt_expect(r, 200, NULL);
	ck_assert_str_eq(gwt_str(r, "status"), "CANCELLED");
	gwt_resp_free(r);
	r = sign_hash(rp.token, cred2, sad, hashes, 1, SHA256_OID, ECDSA_SHA256, NULL);
	ck_assert_int_ge(r->status, 400);
	ck_assert_int_lt(r->status, 500);
	gwt_resp_free(r);
	r = post("/rssp/credentials/authorize", rp.token, json_pack("{s:s,s:i,s:o,s:s,s:s}",
	    "credentialID", cred2, "numSignatures", 1, "hashes", jarr(hashes, 1),
	    "hashAlgorithmOID", SHA256_OID, "description", "x"));
	gwt_expect(r, 409, "conflict");
	gwt_resp_free(r);
	/* Revoked: its SAD signs nothing more. */
	r = post("/rssp/credentials/revoke", s.token, json_pack("{s:s,s:s}", "credentialID", cred,
	    "reason", "lost"));
	gwt_expect(r, 200, NULL);
	ck_assert_str_eq(gwt_str(r, "status"), "REVOKED");
	gwt_resp_free(r);
	r = sign_hash(rp.token, cred, sad, hashes, 1, SHA256_OID, ECDSA_SHA256, NULL);
	gwt_expect(r, 409, "conflict");
	gwt_resp_free(r);
}
END_TEST

START_TEST(test_activation_code_is_locked_after_five_wrong_tries)
{
	struct rp rp;
	struct signer s;
	struct gwt_resp *r;
	char *code, wrong[16];
	int i;

	rp_new(&rp);
	signer_new(&rp, &s);
	r = post("/rssp/sic/activationCode", rp.token, json_pack("{s:s,s:s}", "userID", s.user_id,
	    "channel", "sms"));
	gwt_expect(r, 202, NULL);
	gwt_resp_free(r);
	ck_assert_ptr_nonnull(code = gwt_outbox_secret(G, "+491511234567", "sic_activation_code"));
	snprintf(wrong, sizeof(wrong), "%08d", (atoi(code) + 1) % 100000000);
	for (i = 0; i < 5; i++) {
		r = post("/rssp/sic/activate/initialize", s.token, json_pack("{s:s,s:s}",
		    "activationCode", wrong, "deviceUUID", "dev-locked"));
		gwt_expect(r, 400, "invalid_request");
		ck_assert_ptr_nonnull(strstr(gwt_str(r, "error_description"), "activationCode"));
		gwt_resp_free(r);
	}
	r = post("/rssp/sic/activate/initialize", s.token, json_pack("{s:s,s:s}",
	    "activationCode", code, "deviceUUID", "dev-locked"));
	gwt_expect(r, 410, "expired");
	gwt_resp_free(r);
	/* An expired code is refused the same way. */
	r = post("/rssp/sic/activationCode", rp.token, json_pack("{s:s,s:s}", "userID", s.user_id,
	    "channel", "email"));
	gwt_expect(r, 202, NULL);
	gwt_resp_free(r);
	free(code);
	ck_assert_ptr_nonnull(code = gwt_outbox_secret(G, s.email, "sic_activation_code"));
	free(gwt_sql(G, "UPDATE sic_activation_codes SET expires_at = now() - interval '1 second'"
	    " WHERE user_id = $1 RETURNING 1", s.user_id, NULL));
	r = post("/rssp/sic/activate/initialize", s.token, json_pack("{s:s,s:s}",
	    "activationCode", code, "deviceUUID", "dev-locked"));
	gwt_expect(r, 410, "expired");
	gwt_resp_free(r);
	free(code);
}
END_TEST

START_TEST(test_fields_are_validated_with_a_message_naming_the_field)
{
	struct rp rp;
	struct signer s;
	struct gwt_resp *r;
	EVP_PKEY *weak = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	char *spki = spki_b64(weak), *code;

	rp_new(&rp);
	signer_new(&rp, &s);
	r = post("/rssp/sic/activationCode", rp.token, json_pack("{s:s,s:s}", "userID", s.user_id,
	    "channel", "pigeon"));
	gwt_expect(r, 400, "invalid_request");
	ck_assert_ptr_nonnull(strstr(gwt_str(r, "error_description"), "channel"));
	gwt_resp_free(r);
	r = post("/rssp/sic/activationCode", rp.token, json_pack("{s:s,s:s}", "userID", s.user_id,
	    "channel", "email"));
	gwt_expect(r, 202, NULL);
	gwt_resp_free(r);
	code = gwt_outbox_secret(G, s.email, "sic_activation_code");
	r = post("/rssp/sic/activate/initialize", s.token, json_pack("{s:s,s:s}",
	    "activationCode", code, "deviceUUID", "dev-weak"));
	gwt_expect(r, 200, NULL);
	{
		char *act = str_of(r, "activationID");
		struct gwt_resp *d = post("/rssp/sic/activate/sendDevice", s.token, json_pack(
		    "{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "activationID", act, "deviceUUID", "dev-weak",
		    "deviceName", "old phone", "platform", "linux", "kakPublicKey", spki,
		    "signAlgo", "RSASSA-PSS", "shaAlgo", "sha256", "signature", "AAAA"));
		gwt_expect(d, 400, "invalid_request");
		ck_assert_ptr_nonnull(strstr(gwt_str(d, "error_description"), "kakPublicKey"));
		gwt_resp_free(d);
		d = post("/rssp/sic/activate/sendDevice", s.token, json_pack(
		    "{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "activationID", act, "deviceUUID", "dev-weak",
		    "deviceName", "old phone", "platform", "linux", "kakPublicKey", spki,
		    "signAlgo", "DSA", "shaAlgo", "sha256", "signature", "AAAA"));
		gwt_expect(d, 400, "invalid_request");
		ck_assert_ptr_nonnull(strstr(gwt_str(d, "error_description"), "signAlgo"));
		gwt_resp_free(d);
	}
	gwt_resp_free(r);
	r = post("/rssp/credentials/create", rp.token, json_pack("{s:s,s:s}", "userID", s.user_id,
	    "keyAlgo", "rsa1024"));
	gwt_expect(r, 400, "invalid_request");
	ck_assert_ptr_nonnull(strstr(gwt_str(r, "error_description"), "keyAlgo"));
	gwt_resp_free(r);
	r = post("/rssp/credentials/create", rp.token, json_pack("{s:s,s:s,s:i}", "userID", s.user_id,
	    "keyAlgo", "ecp256", "validityDays", 5000));
	gwt_expect(r, 400, "invalid_request");
	ck_assert_ptr_nonnull(strstr(gwt_str(r, "error_description"), "validityDays"));
	gwt_resp_free(r);
	r = post("/rssp/credentials/info", rp.token, json_pack("{s:s}", "credentialID", "nope"));
	gwt_expect(r, 400, "invalid_request");
	ck_assert_ptr_nonnull(strstr(gwt_str(r, "error_description"), "credentialID"));
	gwt_resp_free(r);
	EVP_PKEY_free(weak);
	free(spki);
	free(code);
}
END_TEST

START_TEST(test_status_list_pages_and_cancel_follow_the_lifecycle)
{
	struct rp rp, rp2;
	struct signer s;
	struct gwt_resp *r;
	char *cred, *c2, *c3, *hashes[1], *id, *id2, *page;

	rp_new(&rp);
	signer_new(&rp, &s);
	r = post("/rssp/sic/status", rp.token, json_pack("{s:s}", "userID", s.user_id));
	gwt_expect(r, 200, NULL);
	ck_assert_str_eq(gwt_str(r, "status"), "NONE");
	gwt_resp_free(r);
	signer_activate(&rp, &s, 1);
	r = post("/rssp/sic/status", rp.token, json_pack("{s:s}", "userID", s.user_id));
	gwt_expect(r, 200, NULL);
	ck_assert_str_eq(gwt_str(r, "status"), "ACTIVE");
	ck_assert_str_eq(gwt_str(r, "deviceUUID"), s.device);
	gwt_resp_free(r);
	r = post("/rssp/users/status", rp.token, json_pack("{s:s}", "userID", s.user_id));
	gwt_expect(r, 200, NULL);
	ck_assert_str_eq(gwt_str(r, "sicStatus"), "ACTIVE");
	gwt_resp_free(r);

	/* A NEW credential has no certificate yet; three credentials page two by two. */
	cred = cred_create(&rp, &s, "ecp256");
	c2 = cred_create(&rp, &s, "ecp256");
	c3 = cred_create(&rp, &s, "rsa2048");
	r = post("/rssp/credentials/info", rp.token, json_pack("{s:s}", "credentialID", c3));
	gwt_expect(r, 200, NULL);
	ck_assert_str_eq(gwt_str(r, "status"), "NEW");
	ck_assert_ptr_null(json_object_get(r->json, "cert"));
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(r->json, "key"), "len")), 2048);
	gwt_resp_free(r);
	r = post("/rssp/credentials/list", rp.token, json_pack("{s:s,s:i}", "userID", s.user_id, "maxResults", 2));
	gwt_expect(r, 200, NULL);
	ck_assert_int_eq(json_array_size(json_object_get(r->json, "credentialIDs")), 2);
	page = str_of(r, "nextPageToken");
	gwt_resp_free(r);
	r = post("/rssp/credentials/list", rp.token, json_pack("{s:s,s:i,s:s}", "userID", s.user_id,
	    "maxResults", 2, "pageToken", page));
	gwt_expect(r, 200, NULL);
	ck_assert_int_eq(json_array_size(json_object_get(r->json, "credentialIDs")), 1);
	ck_assert_ptr_null(json_object_get(r->json, "nextPageToken"));
	gwt_resp_free(r);
	(void)c2;

	/* Another rp sees nothing of them. */
	rp_new(&rp2);
	r = post("/rssp/credentials/list", rp2.token, json_pack("{}"));
	gwt_expect(r, 200, NULL);
	ck_assert_int_eq(json_array_size(json_object_get(r->json, "credentialIDs")), 0);
	gwt_resp_free(r);
	r = post("/rssp/credentials/list", rp2.token, json_pack("{s:s}", "userID", s.user_id));
	gwt_expect(r, 403, "access_denied");
	gwt_resp_free(r);

	/* Cancel by the app, and by the rp that asked; not by another rp. */
	cred_activate(&s, cred);
	make_hashes(32, 1, "cancel", hashes);
	id = authorize(rp.token, cred, hashes, 1, 1, SHA256_OID);
	r = post("/rssp/credentials/authorizeCheck", rp2.token, json_pack("{s:s}", "requestID", id));
	gwt_expect(r, 403, "access_denied");
	gwt_resp_free(r);
	r = post("/rssp/requests/cancel", rp2.token, json_pack("{s:s}", "requestID", id));
	gwt_expect(r, 403, "access_denied");
	gwt_resp_free(r);
	r = post("/rssp/requests/cancel", s.token, json_pack("{s:s}", "requestID", id));
	gwt_expect(r, 200, NULL);
	ck_assert_str_eq(gwt_str(r, "status"), "CANCELLED");
	gwt_resp_free(r);
	r = post("/rssp/credentials/authorizeCheck", rp.token, json_pack("{s:s}", "requestID", id));
	gwt_expect(r, 200, NULL);
	ck_assert_str_eq(gwt_str(r, "status"), "CANCELLED");
	ck_assert_ptr_null(gwt_str(r, "SAD"));
	gwt_resp_free(r);
	ck_assert_int_eq(confirm(&s, id), 409);
	id2 = authorize(rp.token, cred, hashes, 1, 1, SHA256_OID);
	r = post("/rssp/requests/cancel", rp.token, json_pack("{s:s}", "requestID", id2));
	gwt_expect(r, 200, NULL);
	gwt_resp_free(r);
	r = post("/rssp/requests/list", s.token, json_pack("{s:s,s:s}", "deviceUUID", s.device,
	    "status", "CANCELLED"));
	gwt_expect(r, 200, NULL);
	ck_assert_int_eq(json_array_size(json_object_get(r->json, "requests")), 2);
	gwt_resp_free(r);
}
END_TEST

START_TEST(test_engine_down_answers_503_with_retry_after_then_recovers)
{
	struct rp rp;
	struct signer s;
	char *cred, *hashes[1], *sad, *ra;
	struct gwt_resp *r;
	time_t t0;
	int i;

	ready(&rp, &s, 1, "ecp256", &cred);
	make_hashes(32, 1, "down", hashes);
	sad = approve(&rp, &s, cred, hashes, 1, 1, SHA256_OID, NULL);
	engine_stop();
	t0 = time(NULL);
	r = sign_hash(rp.token, cred, sad, hashes, 1, SHA256_OID, ECDSA_SHA256, NULL);
	gwt_expect(r, 503, "engine_unavailable");
	ck_assert_ptr_nonnull(ra = gwt_resp_header(r, "Retry-After"));
	ck_assert_int_le(time(NULL) - t0, 3);
	free(ra);
	gwt_resp_free(r);
	engine_start();
	/* The gateway reconnects by itself; a client honours Retry-After meanwhile. The
	 * refused call spent nothing: the one approved signature is still there. */
	for (i = 0; i < 30; i++) {
		r = sign_hash(rp.token, cred, sad, hashes, 1, SHA256_OID, ECDSA_SHA256, NULL);
		if (r->status != 503)
			break;
		gwt_resp_free(r);
		sleep(1);
	}
	gwt_expect(r, 200, NULL);
	gwt_resp_free(r);
}
END_TEST

/* Activation makes the engine generate a key: it runs under RSSP_ENGINE_KEYGEN_TIMEOUT_MS
 * (default 60 s), not RSSP_ENGINE_TIMEOUT_MS. A gateway whose ordinary engine deadline
 * is 1 ms (no RSA-3072 key is generated that fast) still activates a credential.
 */
START_TEST(test_activation_runs_under_the_keygen_deadline_not_the_engine_timeout)
{
	struct rp rp;
	struct signer s;
	char *cred, env_sock[PATH_MAX + 32];
	const char *env[5];
	struct gwt_opts o = { 0 };
	struct gwt *outer = G;

	rp_new(&rp);
	signer_new(&rp, &s);
	signer_activate(&rp, &s, 1);
	cred = cred_create(&rp, &s, "rsa3072");
	snprintf(env_sock, sizeof(env_sock), "RSSP_ENGINE_SOCKET=%s", sock);
	env[0] = env_sock;
	env[1] = "RSSP_ENGINE_TIMEOUT_MS=1";
	env[2] = "RSSP_LOGIN_RATE=100000";
	env[3] = "RSSP_LOGIN_BURST=100000";
	env[4] = NULL;
	o.env = env;
	o.db_name = gwt_db_name(G);
	o.no_admin = 1;
	G = gwt_start(&o);
	cred_activate(&s, cred); /* asserts 200 ACTIVE with a certificate */
	gwt_stop(G);
	G = outer;
}
END_TEST

/* A gateway stopping (SIGTERM) ends its long-polls at once instead of waiting out their
 * "wait": the process exits and the waiting client gets an answer or a closed
 * connection. A second gateway on the same database serves the long-poll. */
START_TEST(test_sigterm_ends_a_long_poll_promptly)
{
	struct rp rp;
	struct signer s;
	char *cred, *hashes[1], *id, env_sock[PATH_MAX + 32], cmd[8192], outfile[PATH_MAX], code[16] = "";
	const char *env[4];
	struct gwt_opts o = { 0 };
	struct gwt *g2;
	struct timespec t0, t1;
	FILE *f;
	pid_t pid;
	int st;

	ready(&rp, &s, 1, "ecp256", &cred);
	make_hashes(32, 1, "sigterm", hashes);
	id = authorize(rp.token, cred, hashes, 1, 1, SHA256_OID); /* kept by str_of */
	snprintf(env_sock, sizeof(env_sock), "RSSP_ENGINE_SOCKET=%s", sock);
	env[0] = env_sock;
	env[1] = "RSSP_LOGIN_RATE=100000";
	env[2] = "RSSP_LOGIN_BURST=100000";
	env[3] = NULL;
	o.env = env;
	o.db_name = gwt_db_name(G);
	o.no_admin = 1;
	g2 = gwt_start(&o);
	snprintf(outfile, sizeof(outfile), "%s/longpoll-%d.code", work, (int)getpid());
	snprintf(cmd, sizeof(cmd), "curl -s -o /dev/null -w '%%{http_code}' --max-time 120 "
	    "%s/rssp/credentials/authorizeCheck -H 'Authorization: Bearer %s' "
	    "-H 'Content-Type: application/json' -d '{\"requestID\":\"%s\",\"wait\":60}' > %s",
	    gwt_url(g2), rp.token, id, outfile);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	usleep(500 * 1000); /* the long-poll is waiting (if not yet, the test proves less, never fails) */
	ck_assert_msg(waitpid(pid, &st, WNOHANG) == 0, "the long-poll answered before its wait");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	st = gwt_stop_status(g2); /* fails the test after 10 s */
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "rssp-gateway exited with status 0x%x", st);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_ptr_nonnull(f = fopen(outfile, "r"));
	ck_assert_ptr_nonnull(fgets(code, sizeof(code), f));
	fclose(f);
	/* an answer with the request still PENDING, or the connection closed */
	ck_assert_msg(strcmp(code, "200") == 0 || strcmp(code, "000") == 0 || strcmp(code, "503") == 0,
	    "the long-poll got HTTP %s", code);
	fprintf(stderr, "gateway stopped %.2f s after SIGTERM with a long-poll waiting (HTTP %s)\n",
	    (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9, code);
	/* the thread that woke the long-poll is stopped and joined too (gw_runtime_shutdown),
	 * at once: it does not wait out its own poll */
	ck_assert_msg((double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9 < 5.0,
	    "the gateway took more than 5 s to stop");
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("signing");
	TCase *tc = tcase_create("flow");
	SRunner *sr;
	int failed;

	srand((unsigned)getpid());
	tcase_add_unchecked_fixture(tc, stack_up, stack_down);
	tcase_add_checked_fixture(tc, NULL, collect_garbage);
	tcase_set_timeout(tc, 240);
	tcase_add_test(tc, test_rsa_pss_kak_activates_rsa2048_and_ecp384_and_signatures_verify);
	tcase_add_test(tc, test_ec_kak_activates_rsa3072_and_ecp256_and_signatures_verify);
	tcase_add_test(tc, test_activation_needs_a_vouched_device_and_vouches_are_checked);
	tcase_add_test(tc, test_a_voucher_of_another_user_device_or_kak_or_an_expired_one_is_refused_over_rest);
	tcase_add_test(tc, test_authorize_with_wait_answers_the_sad_as_soon_as_the_app_confirms);
	tcase_add_test(tc, test_a_batch_of_1000_hashes_is_approved_once_and_signed_in_one_call);
	tcase_add_test(tc, test_signhash_refuses_beyond_num_signatures_unapproved_hashes_and_tampered_sads);
	tcase_add_test(tc, test_confirm_refuses_a_wrong_or_replayed_signature_and_an_expired_request);
	tcase_add_test(tc, test_user_b_neither_sees_nor_confirms_user_a_requests);
	tcase_add_test(tc, test_a_revoked_device_cannot_confirm_and_its_credentials_fall_back_to_new);
	tcase_add_test(tc, test_signhash_refuses_a_revoked_or_cancelled_credential);
	tcase_add_test(tc, test_activation_code_is_locked_after_five_wrong_tries);
	tcase_add_test(tc, test_fields_are_validated_with_a_message_naming_the_field);
	tcase_add_test(tc, test_status_list_pages_and_cancel_follow_the_lifecycle);
	tcase_add_test(tc, test_engine_down_answers_503_with_retry_after_then_recovers);
	tcase_add_test(tc, test_sigterm_ends_a_long_poll_promptly);
	tcase_add_test(tc, test_activation_runs_under_the_keygen_deadline_not_the_engine_timeout);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	/* One process: gwtest's keep-alive connection must not be shared by forked children. */
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
