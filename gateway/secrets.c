/* secrets.c - passphrase hashing, random ids and tokens, SHA-256, constant-time compare. */
#include <semaphore.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sodium.h>

#include "gw.h"
#include "gw_internal.h"
#include "secrets.h"
#include "rssp_log.h"

static unsigned long long pw_ops = 2, pw_mem = 19456ull * 1024;
static char dummy_hash[crypto_pwhash_STRBYTES];

/* At most this many argon2id computations at once (RSSP_ARGON2_CONCURRENCY; default
 * half the CPUs): logins queue rather than take every core from the signing path. */
static sem_t pw_sem;
static int pw_sem_ok;

/* Only threads of the long pool queue here: a caller on an HTTP thread must not wait
 * behind logins (it would hold every connection of that thread). */
static void
pw_enter(void)
{
	if (pw_sem_ok && gw_thread_is_long)
		while (sem_wait(&pw_sem) != 0)
			;
}

static void
pw_leave(void)
{
	if (pw_sem_ok && gw_thread_is_long)
		sem_post(&pw_sem);
}

int
gw_secrets_init(const struct gw_config *cfg)
{
	unsigned char pw[16];
	char hex[33];

	if (sodium_init() < 0)
		return RSSP_E_INTERNAL;
	if (cfg != NULL) {
		long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		unsigned n = cfg->argon2_concurrency ? cfg->argon2_concurrency :
		    (unsigned)(ncpu > 1 ? ncpu / 2 : 1);

		pw_ops = cfg->argon2_opslimit;
		pw_mem = cfg->argon2_memlimit_kib * 1024ull;
		if (!pw_sem_ok && sem_init(&pw_sem, 0, n) == 0)
			pw_sem_ok = 1;
	}
	/* a dummy hash at the configured cost, of a random passphrase nobody knows */
	randombytes_buf(pw, sizeof(pw));
	sodium_bin2hex(hex, sizeof(hex), pw, sizeof(pw));
	if (crypto_pwhash_str(dummy_hash, hex, strlen(hex), pw_ops, (size_t)pw_mem) != 0)
		return RSSP_E_NOMEM;
	sodium_memzero(hex, sizeof(hex));
	sodium_memzero(pw, sizeof(pw));
	return 0;
}

int
gw_password_hash(const char *passphrase, char out[GW_PWHASH_MAX])
{
	char h[crypto_pwhash_STRBYTES];
	int r;

	pw_enter();
	r = crypto_pwhash_str_alg(h, passphrase, strlen(passphrase), pw_ops, (size_t)pw_mem,
	    crypto_pwhash_ALG_ARGON2ID13);
	pw_leave();
	if (r != 0)
		return RSSP_E_NOMEM;
	memcpy(out, h, sizeof(h) < GW_PWHASH_MAX ? sizeof(h) : GW_PWHASH_MAX);
	out[GW_PWHASH_MAX - 1] = '\0';
	return 0;
}

int
gw_password_verify(const char *hash, const char *passphrase)
{
	int r;

	if (hash == NULL || passphrase == NULL || strlen(hash) >= crypto_pwhash_STRBYTES)
		return RSSP_E_DENIED;
	pw_enter();
	r = crypto_pwhash_str_verify(hash, passphrase, strlen(passphrase));
	pw_leave();
	return r == 0 ? 0 : RSSP_E_DENIED;
}

void
gw_password_dummy_verify(const char *passphrase)
{
	int r;

	if (dummy_hash[0] == '\0')
		return;
	pw_enter();
	r = crypto_pwhash_str_verify(dummy_hash, passphrase, strlen(passphrase));
	pw_leave();
	if (r == 0)
		log_warn("the dummy passphrase matched"); /* nobody knows it: cannot happen */
}

void
gw_random_bytes(void *buf, size_t n)
{
	randombytes_buf(buf, n);
}

void
gw_random_token(char out[GW_TOKEN_LEN + 1])
{
	unsigned char b[32];

	randombytes_buf(b, sizeof(b));
	sodium_bin2base64(out, GW_TOKEN_LEN + 1, b, sizeof(b), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(b, sizeof(b));
}

void
gw_random_uuid(char out[GW_UUID_LEN + 1])
{
	unsigned char b[16];

	randombytes_buf(b, sizeof(b));
	b[6] = (b[6] & 0x0f) | 0x40;
	b[8] = (b[8] & 0x3f) | 0x80;
	snprintf(out, GW_UUID_LEN + 1,
	    "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
	    b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11],
	    b[12], b[13], b[14], b[15]);
}

void
gw_sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[32];

	crypto_hash_sha256(md, data, len);
	sodium_bin2hex(out, 65, md, sizeof(md));
}

void
gw_digest_ha1(const char *user, const char *realm, const char *secret, uint8_t out[32])
{
	crypto_hash_sha256_state st;

	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, (const unsigned char *)user, strlen(user));
	crypto_hash_sha256_update(&st, (const unsigned char *)":", 1);
	crypto_hash_sha256_update(&st, (const unsigned char *)realm, strlen(realm));
	crypto_hash_sha256_update(&st, (const unsigned char *)":", 1);
	crypto_hash_sha256_update(&st, (const unsigned char *)secret, strlen(secret));
	crypto_hash_sha256_final(&st, out);
	sodium_memzero(&st, sizeof(st));
}

int
gw_ct_equal(const void *a, const void *b, size_t len)
{
	return CRYPTO_memcmp(a, b, len) == 0;
}
