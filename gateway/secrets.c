/* secrets.c - passphrase hashing, random ids and tokens, SHA-256, constant-time compare. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sodium.h>

#include "gw.h"
#include "gw_internal.h"

static unsigned long long pw_ops = 2, pw_mem = 19456ull * 1024;
static char dummy_hash[crypto_pwhash_STRBYTES];

int
gw_secrets_init(const struct gw_config *cfg)
{
	unsigned char pw[16];
	char hex[33];

	if (sodium_init() < 0)
		return RSSP_E_INTERNAL;
	if (cfg != NULL) {
		pw_ops = cfg->argon2_opslimit;
		pw_mem = cfg->argon2_memlimit_kib * 1024ull;
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

	if (crypto_pwhash_str_alg(h, passphrase, strlen(passphrase), pw_ops, (size_t)pw_mem,
	    crypto_pwhash_ALG_ARGON2ID13) != 0)
		return RSSP_E_NOMEM;
	memcpy(out, h, sizeof(h) < GW_PWHASH_MAX ? sizeof(h) : GW_PWHASH_MAX);
	out[GW_PWHASH_MAX - 1] = '\0';
	return 0;
}

int
gw_password_verify(const char *hash, const char *passphrase)
{
	if (hash == NULL || passphrase == NULL || strlen(hash) >= crypto_pwhash_STRBYTES)
		return RSSP_E_DENIED;
	if (crypto_pwhash_str_verify(hash, passphrase, strlen(passphrase)) != 0)
		return RSSP_E_DENIED;
	return 0;
}

void
gw_password_dummy_verify(const char *passphrase)
{
	if (dummy_hash[0] == '\0')
		return;
	if (crypto_pwhash_str_verify(dummy_hash, passphrase, strlen(passphrase)) == 0)
		dummy_hash[0] = dummy_hash[0]; /* nobody knows the dummy passphrase */
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

long long
gw_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec;
}
