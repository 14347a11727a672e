/* algo.h - the one table of rssp's algorithms, keyed by the generated protobuf enums of
 * proto/rssp/engine/v1/engine.proto (KeyAlgo, HashAlgo, SignAlgo, KakAlgo).
 *
 * Every name, OID, digest length and key type of an algorithm is written here once; the
 * engine (hsm.c, sam) and the gateway (credentials, signing, sic) look them up instead
 * of spelling numbers. Names are those of the REST API, gateway/openapi.json ("rsa2048",
 * the signAlgo and hashAlgorithmOID OIDs, "RSASSA-PSS"/"sha256" for KAKs) and, for audit records and
 * metrics, the short lowercase names ("rsa-pss-sha256").
 *
 * Lookups return a pointer into a static const table, or NULL for an unknown value
 * (0, the proto's *_UNSPECIFIED, is always unknown). Pure functions, thread-safe.
 */
#ifndef RSSP_ALGO_H
#define RSSP_ALGO_H

#include <stddef.h>
#include <stdint.h>

#include <rssp/engine/v1/engine.pb-c.h>

/* Short names of the proto's values (the generated ones are long). */
#define RSSP_HASH_SHA256 RSSP__ENGINE__V1__HASH_ALGO__HASH_SHA256
#define RSSP_HASH_SHA384 RSSP__ENGINE__V1__HASH_ALGO__HASH_SHA384
#define RSSP_HASH_SHA512 RSSP__ENGINE__V1__HASH_ALGO__HASH_SHA512
#define RSSP_KEY_RSA2048 RSSP__ENGINE__V1__KEY_ALGO__KEY_RSA2048
#define RSSP_KEY_RSA3072 RSSP__ENGINE__V1__KEY_ALGO__KEY_RSA3072
#define RSSP_KEY_EC_P256 RSSP__ENGINE__V1__KEY_ALGO__KEY_EC_P256
#define RSSP_KEY_EC_P384 RSSP__ENGINE__V1__KEY_ALGO__KEY_EC_P384
#define RSSP_SIGN_RSA_PKCS1 RSSP__ENGINE__V1__SIGN_ALGO__SIGN_RSA_PKCS1_V15
#define RSSP_SIGN_RSA_PSS RSSP__ENGINE__V1__SIGN_ALGO__SIGN_RSA_PSS
#define RSSP_SIGN_ECDSA RSSP__ENGINE__V1__SIGN_ALGO__SIGN_ECDSA
#define KAK_PSS_SHA256 RSSP__ENGINE__V1__KAK_ALGO__KAK_RSASSA_PSS_SHA256
#define KAK_PSS_SHA512 RSSP__ENGINE__V1__KAK_ALGO__KAK_RSASSA_PSS_SHA512
#define KAK_ECDSA_P256 RSSP__ENGINE__V1__KAK_ALGO__KAK_ECDSA_P256_SHA256

/* Key types (the kind of key an algorithm needs). */
enum rssp_key_type { RSSP_KEYTYPE_RSA = 1, RSSP_KEYTYPE_EC };

struct rssp_hash_alg {
	int algo;                   /* HashAlgo */
	const char *name;           /* "sha256", "sha384", "sha512" (OpenSSL digest name) */
	const char *oid;            /* hashAlgorithmOID, e.g. "2.16.840.1.101.3.4.2.1" */
	size_t len;                 /* digest length: 32, 48, 64 */
	const uint8_t *digest_info; /* DER DigestInfo prefix for PKCS#1 v1.5 (digest follows) */
	size_t digest_info_len;     /* 19 for all three */
};

struct rssp_key_alg {
	int algo;                   /* KeyAlgo */
	const char *name;           /* REST keyAlgo: "rsa2048", "rsa3072", "ecp256", "ecp384" */
	const char *audit_name;     /* "rsa-2048", ..., "ec-p384" */
	enum rssp_key_type type;
	unsigned bits;              /* 2048, 3072, 256, 384 */
	const char *group;          /* EC: "P-256", "P-384" (OpenSSL group name); RSA: NULL */
	const char *curve_oid;      /* EC: the curve's OID, dotted ("1.2.840.10045.3.1.7") */
	const uint8_t *curve_der;   /* EC: the curve's DER OBJECT IDENTIFIER (CKA_EC_PARAMS) */
	size_t curve_der_len;
};

struct rssp_sign_alg {
	int sign_algo;              /* SignAlgo */
	int hash_algo;              /* HashAlgo; 0 for RSASSA-PSS, whose hash is a parameter */
	const char *oid;            /* REST signAlgo OID */
	enum rssp_key_type type;    /* the key kind it needs */
};

struct rssp_kak_alg {
	int algo;                   /* KakAlgo */
	const char *name;           /* audit name: "rsa-pss-sha256", "rsa-pss-sha512", "ecdsa-sha256" */
	const char *sign_algo;      /* REST signAlgo of the device (sendDevice): "RSASSA-PSS" or "ECDSA" */
	const char *sha_algo;       /* REST shaAlgo: "sha256" or "sha512" */
	int hash_algo;              /* HashAlgo of the signature */
	enum rssp_key_type type;
};

/* HashAlgo -> entry, or NULL. */
const struct rssp_hash_alg *rssp_hash_alg(int hash_algo);
/* hashAlgorithmOID (dotted) -> entry, or NULL (also for NULL). */
const struct rssp_hash_alg *rssp_hash_alg_by_oid(const char *oid);

/* KeyAlgo -> entry, or NULL; by the REST keyAlgo name ("rsa2048"), or NULL. */
const struct rssp_key_alg *rssp_key_alg(int key_algo);
const struct rssp_key_alg *rssp_key_alg_by_name(const char *name);

/* signAlgo OID -> entry, or NULL. The entries in the order of the REST replies are also reachable by
 * index (rssp_sign_alg_at(i) for i = 0.. until NULL), for listing them. */
const struct rssp_sign_alg *rssp_sign_alg_by_oid(const char *oid);
const struct rssp_sign_alg *rssp_sign_alg_at(size_t i);
/* The key kind a SignAlgo needs, or 0 for an unknown one. */
enum rssp_key_type rssp_sign_alg_key_type(int sign_algo);
/* "rsa-pkcs1-sha256", "rsa-pss-sha384", "ecdsa-sha512", ... for a known (SignAlgo,
 * HashAlgo) pair, else NULL. For audit records and metrics. */
const char *rssp_sign_alg_name(int sign_algo, int hash_algo);

/* KakAlgo -> entry, or NULL; by the REST (signAlgo, shaAlgo) pair of sendDevice, or NULL. */
const struct rssp_kak_alg *rssp_kak_alg(int kak_algo);
const struct rssp_kak_alg *rssp_kak_alg_by_names(const char *sign_algo, const char *sha_algo);

#endif
