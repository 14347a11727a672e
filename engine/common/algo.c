/* algo.c - the algorithm table (algo.h). */
#include "algo.h"

#include <string.h>

static const uint8_t di_sha256[] = { 0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
	0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20 };
static const uint8_t di_sha384[] = { 0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
	0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30 };
static const uint8_t di_sha512[] = { 0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
	0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40 };

static const struct rssp_hash_alg hashes[] = {
	{ RSSP_HASH_SHA256, "sha256", "2.16.840.1.101.3.4.2.1", 32, di_sha256, sizeof(di_sha256) },
	{ RSSP_HASH_SHA384, "sha384", "2.16.840.1.101.3.4.2.2", 48, di_sha384, sizeof(di_sha384) },
	{ RSSP_HASH_SHA512, "sha512", "2.16.840.1.101.3.4.2.3", 64, di_sha512, sizeof(di_sha512) },
};

static const uint8_t oid_p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
static const uint8_t oid_p384[] = { 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22 };

static const struct rssp_key_alg keys[] = {
	{ RSSP_KEY_RSA2048, "rsa2048", "rsa-2048", RSSP_KEYTYPE_RSA, 2048, NULL, NULL, NULL, 0 },
	{ RSSP_KEY_RSA3072, "rsa3072", "rsa-3072", RSSP_KEYTYPE_RSA, 3072, NULL, NULL, NULL, 0 },
	{ RSSP_KEY_EC_P256, "ecp256", "ec-p256", RSSP_KEYTYPE_EC, 256, "P-256",
	  "1.2.840.10045.3.1.7", oid_p256, sizeof(oid_p256) },
	{ RSSP_KEY_EC_P384, "ecp384", "ec-p384", RSSP_KEYTYPE_EC, 384, "P-384",
	  "1.3.132.0.34", oid_p384, sizeof(oid_p384) },
};

/* the order the REST replies list signAlgo OIDs in (credentials/info, gateway/openapi.json) */
static const struct rssp_sign_alg signs[] = {
	{ RSSP_SIGN_RSA_PKCS1, RSSP_HASH_SHA256, "1.2.840.113549.1.1.11", RSSP_KEYTYPE_RSA },
	{ RSSP_SIGN_RSA_PKCS1, RSSP_HASH_SHA384, "1.2.840.113549.1.1.12", RSSP_KEYTYPE_RSA },
	{ RSSP_SIGN_RSA_PKCS1, RSSP_HASH_SHA512, "1.2.840.113549.1.1.13", RSSP_KEYTYPE_RSA },
	{ RSSP_SIGN_RSA_PSS, 0, "1.2.840.113549.1.1.10", RSSP_KEYTYPE_RSA },
	{ RSSP_SIGN_ECDSA, RSSP_HASH_SHA256, "1.2.840.10045.4.3.2", RSSP_KEYTYPE_EC },
	{ RSSP_SIGN_ECDSA, RSSP_HASH_SHA384, "1.2.840.10045.4.3.3", RSSP_KEYTYPE_EC },
	{ RSSP_SIGN_ECDSA, RSSP_HASH_SHA512, "1.2.840.10045.4.3.4", RSSP_KEYTYPE_EC },
};

static const struct {
	int sign_algo;
	const char *prefix;
	enum rssp_key_type type;
} sign_kinds[] = {
	{ RSSP_SIGN_RSA_PKCS1, "rsa-pkcs1", RSSP_KEYTYPE_RSA },
	{ RSSP_SIGN_RSA_PSS, "rsa-pss", RSSP_KEYTYPE_RSA },
	{ RSSP_SIGN_ECDSA, "ecdsa", RSSP_KEYTYPE_EC },
};

static const char *const sign_names[3][3] = {
	{ "rsa-pkcs1-sha256", "rsa-pkcs1-sha384", "rsa-pkcs1-sha512" },
	{ "rsa-pss-sha256", "rsa-pss-sha384", "rsa-pss-sha512" },
	{ "ecdsa-sha256", "ecdsa-sha384", "ecdsa-sha512" },
};

static const struct rssp_kak_alg kaks[] = {
	{ KAK_PSS_SHA256, "rsa-pss-sha256", "RSASSA-PSS", "sha256", RSSP_HASH_SHA256, RSSP_KEYTYPE_RSA },
	{ KAK_PSS_SHA512, "rsa-pss-sha512", "RSASSA-PSS", "sha512", RSSP_HASH_SHA512, RSSP_KEYTYPE_RSA },
	{ KAK_ECDSA_P256, "ecdsa-sha256", "ECDSA", "sha256", RSSP_HASH_SHA256, RSSP_KEYTYPE_EC },
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

const struct rssp_hash_alg *
rssp_hash_alg(int hash_algo)
{
	size_t i;

	for (i = 0; i < N(hashes); i++)
		if (hashes[i].algo == hash_algo)
			return &hashes[i];
	return NULL;
}

const struct rssp_hash_alg *
rssp_hash_alg_by_oid(const char *oid)
{
	size_t i;

	for (i = 0; oid != NULL && i < N(hashes); i++)
		if (strcmp(hashes[i].oid, oid) == 0)
			return &hashes[i];
	return NULL;
}

const struct rssp_key_alg *
rssp_key_alg(int key_algo)
{
	size_t i;

	for (i = 0; i < N(keys); i++)
		if (keys[i].algo == key_algo)
			return &keys[i];
	return NULL;
}

const struct rssp_key_alg *
rssp_key_alg_by_name(const char *name)
{
	size_t i;

	for (i = 0; name != NULL && i < N(keys); i++)
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

const struct rssp_sign_alg *
rssp_sign_alg_by_oid(const char *oid)
{
	size_t i;

	for (i = 0; oid != NULL && i < N(signs); i++)
		if (strcmp(signs[i].oid, oid) == 0)
			return &signs[i];
	return NULL;
}

const struct rssp_sign_alg *
rssp_sign_alg_at(size_t i)
{
	return i < N(signs) ? &signs[i] : NULL;
}

static int
sign_index(int sign_algo)
{
	size_t i;

	for (i = 0; i < N(sign_kinds); i++)
		if (sign_kinds[i].sign_algo == sign_algo)
			return (int)i;
	return -1;
}

enum rssp_key_type
rssp_sign_alg_key_type(int sign_algo)
{
	int i = sign_index(sign_algo);

	return i < 0 ? 0 : sign_kinds[i].type;
}

const char *
rssp_sign_alg_name(int sign_algo, int hash_algo)
{
	int i = sign_index(sign_algo);
	size_t j;

	if (i < 0)
		return NULL;
	for (j = 0; j < N(hashes); j++)
		if (hashes[j].algo == hash_algo)
			return sign_names[i][j];
	return NULL;
}

const struct rssp_kak_alg *
rssp_kak_alg(int kak_algo)
{
	size_t i;

	for (i = 0; i < N(kaks); i++)
		if (kaks[i].algo == kak_algo)
			return &kaks[i];
	return NULL;
}

const struct rssp_kak_alg *
rssp_kak_alg_by_names(const char *sign_algo, const char *sha_algo)
{
	size_t i;

	for (i = 0; sign_algo != NULL && sha_algo != NULL && i < N(kaks); i++)
		if (strcmp(kaks[i].sign_algo, sign_algo) == 0 && strcmp(kaks[i].sha_algo, sha_algo) == 0)
			return &kaks[i];
	return NULL;
}
