#include "kak_verify.h"

#include <openssl/err.h>
#include <openssl/rsa.h>

int
kak_verify(EVP_PKEY *kak, int algo, const uint8_t *msg, size_t msglen,
    const uint8_t *sig, size_t siglen)
{
	EVP_MD_CTX *mctx = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	const EVP_MD *md;
	int r = RSSP_E_DENIED;

	if (sig == NULL || siglen == 0 || siglen > 1024)
		return RSSP_E_DENIED;
	md = algo == KAK_PSS_SHA512 ? EVP_sha512() : EVP_sha256();
	if ((mctx = EVP_MD_CTX_new()) == NULL)
		return RSSP_E_NOMEM;
	if (EVP_DigestVerifyInit(mctx, &pctx, md, NULL, kak) != 1)
		goto out;
	if (algo != KAK_ECDSA_P256 &&
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
