/* kak_verify.c - KAK SPKI policy and signature verification (kak_verify.h). */
#include "kak_verify.h"

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

static int
kak_fits(EVP_PKEY *pkey, const struct rssp_kak_alg *ka)
{
	char group[32];
	size_t glen = 0;
	int bits;

	if (ka->type == RSSP_KEYTYPE_RSA) {
		if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA)
			return RSSP_E_UNSUPPORTED;
		bits = EVP_PKEY_get_bits(pkey);
		return bits >= KAK_MIN_RSA_BITS && bits <= KAK_MAX_RSA_BITS ? 0 : RSSP_E_INVAL;
	}
	if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_EC ||
	    !EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME,
	    group, sizeof(group), &glen) ||
	    strcmp(group, "prime256v1") != 0)
		return RSSP_E_UNSUPPORTED;
	return 0;
}

int
kak_spki_parse(const uint8_t *spki, size_t spkilen, int algo, EVP_PKEY **pkeyp)
{
	const struct rssp_kak_alg *ka = rssp_kak_alg(algo);
	const unsigned char *p = spki;
	EVP_PKEY *pkey = NULL;
	int r;

	if (ka == NULL)
		return RSSP_E_UNSUPPORTED;
	if (spki == NULL || spkilen == 0 || spkilen > KAK_MAX_SPKI)
		return RSSP_E_INVAL;
	if ((pkey = d2i_PUBKEY(NULL, &p, (long)spkilen)) == NULL || p != spki + spkilen) {
		r = RSSP_E_INVAL;
		goto out;
	}
	if ((r = kak_fits(pkey, ka)) != 0)
		goto out;
	*pkeyp = pkey;
	pkey = NULL;
out:
	ERR_clear_error();
	EVP_PKEY_free(pkey);
	return r;
}

int
kak_verify(EVP_PKEY *kak, int algo, const uint8_t *msg, size_t msglen,
    const uint8_t *sig, size_t siglen)
{
	const struct rssp_kak_alg *ka = rssp_kak_alg(algo);
	EVP_MD_CTX *mctx = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	const EVP_MD *md;
	int r = RSSP_E_DENIED;

	if (ka == NULL || sig == NULL || siglen == 0 || siglen > KAK_MAX_SIG)
		return RSSP_E_DENIED;
	md = ka->hash_algo == RSSP_HASH_SHA512 ? EVP_sha512() : EVP_sha256();
	if ((mctx = EVP_MD_CTX_new()) == NULL)
		return RSSP_E_NOMEM;
	if (EVP_DigestVerifyInit(mctx, &pctx, md, NULL, kak) != 1)
		goto out;
	if (ka->type == RSSP_KEYTYPE_RSA &&
	    (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
	    EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md) != 1 ||
	    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1))
		goto out;
	if (EVP_DigestVerify(mctx, sig, siglen, msg, msglen) == 1)
		r = 0;
out:
	ERR_clear_error();
	EVP_MD_CTX_free(mctx);
	return r;
}
