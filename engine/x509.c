#include "x509.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include "rssp_log.h"

/* The one end of the name builders: with r == 0 hands name to *namep, else frees it;
 * clears OpenSSL's error queue either way. Returns r. */
static int
name_done(X509_NAME *name, int r, X509_NAME **namep)
{
	ERR_clear_error();
	if (r != 0) {
		X509_NAME_free(name);
		return r;
	}
	*namep = name; /* the caller's from here */
	return 0;
}

int
x509_parse_subject(const char *subject, X509_NAME **namep)
{
	X509_NAME *name = NULL;
	char *copy = NULL, *tok, *save = NULL, *eq;
	int r = RSSP_E_INVAL, n = 0;

	if (subject == NULL || strlen(subject) > 1024)
		goto out;
	if ((copy = strdup(subject)) == NULL || (name = X509_NAME_new()) == NULL) {
		r = RSSP_E_NOMEM;
		goto out;
	}
	for (tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		while (*tok == ' ')
			tok++;
		if ((eq = strchr(tok, '=')) == NULL || eq == tok || eq[1] == '\0')
			goto out;
		*eq = '\0';
		if (!X509_NAME_add_entry_by_txt(name, tok, MBSTRING_UTF8,
		    (const unsigned char *)eq + 1, -1, -1, 0))
			goto out;
		n++;
	}
	if (n == 0)
		goto out;
	r = 0;
out:
	free(copy);
	return name_done(name, r, namep);
}

int
x509_cn_name(const char *cn, X509_NAME **namep)
{
	X509_NAME *name = NULL;
	int r = RSSP_E_INVAL;

	if (cn == NULL || cn[0] == '\0')
		goto out;
	if ((name = X509_NAME_new()) == NULL) {
		r = RSSP_E_NOMEM;
		goto out;
	}
	/* MBSTRING_UTF8 rejects invalid UTF-8 and enforces ub-common-name (64). */
	if (!X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
	    (const unsigned char *)cn, -1, -1, 0))
		goto out;
	r = 0;
out:
	return name_done(name, r, namep);
}

int
x509_signer_name(const char *cn, const char *serial, X509_NAME **namep)
{
	X509_NAME *name = NULL;
	int r;

	if (serial == NULL || serial[0] == '\0')
		return RSSP_E_INVAL;
	if ((r = x509_cn_name(cn, &name)) != 0)
		return r;
	/* the string table allows serialNumber only as a PrintableString of 1..64 */
	r = X509_NAME_add_entry_by_NID(name, NID_serialNumber, MBSTRING_ASC,
	    (const unsigned char *)serial, -1, -1, 0) ? 0 : RSSP_E_INVAL;
	return name_done(name, r, namep);
}

static int
add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *ext;
	int ok;

	if ((ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value)) == NULL)
		return 0;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok;
}

static int
set_serial(X509 *x)
{
	BIGNUM *bn = NULL;
	int ok = 0;

	/* 127 random bits: positive, unpredictable, within RFC 5280's 20 octets. */
	if ((bn = BN_new()) != NULL && BN_rand(bn, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) &&
	    !BN_is_zero(bn) && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL)
		ok = 1;
	BN_free(bn);
	return ok;
}

/* Signs x with the EC P-384 key labelled ca_label in the HSM, then checks the result
 * with capub. On success *xp is replaced by a freshly parsed copy. */
static int
hsm_sign_cert(struct hsm *h, struct hsm_session *s, const char *ca_label, EVP_PKEY *capub,
    X509 **xp)
{
	X509 *x = *xp, *nx = NULL;
	X509_ALGOR *alg;
	const X509_ALGOR *calg;
	const ASN1_BIT_STRING *csig;
	ASN1_BIT_STRING *sig;
	unsigned char *tbs = NULL, *der = NULL, *sigder = NULL;
	const unsigned char *cp;
	int tbslen, derlen, siglen, r = RSSP_E_CRYPTO;
	uint8_t dgst[SHA384_DIGEST_LENGTH], rs[160];
	size_t rslen = sizeof(rs), half;
	ECDSA_SIG *es = NULL;
	BIGNUM *br = NULL, *bs = NULL;

	/* The TBS names the algorithm too: set it before encoding what is signed. */
	alg = (X509_ALGOR *)X509_get0_tbs_sigalg(x);
	if (!X509_ALGOR_set0(alg, OBJ_nid2obj(NID_ecdsa_with_SHA384), V_ASN1_UNDEF, NULL))
		goto out;
	X509_get0_signature(&csig, &calg, x);
	if (!X509_ALGOR_set0((X509_ALGOR *)calg, OBJ_nid2obj(NID_ecdsa_with_SHA384),
	    V_ASN1_UNDEF, NULL))
		goto out;
	if ((tbslen = i2d_re_X509_tbs(x, &tbs)) <= 0)
		goto out;
	SHA384(tbs, (size_t)tbslen, dgst);
	if ((r = hsm_sign(h, s, ca_label, HSM_PRIVATE_KEY, HSM_MECH_ECDSA, 0, dgst,
	    sizeof(dgst), rs, &rslen)) != 0)
		goto out;
	r = RSSP_E_CRYPTO;
	if (rslen == 0 || rslen % 2 != 0)
		goto out;
	half = rslen / 2;
	if ((es = ECDSA_SIG_new()) == NULL ||
	    (br = BN_bin2bn(rs, (int)half, NULL)) == NULL ||
	    (bs = BN_bin2bn(rs + half, (int)half, NULL)) == NULL ||
	    !ECDSA_SIG_set0(es, br, bs))
		goto out;
	br = bs = NULL;
	if ((siglen = i2d_ECDSA_SIG(es, &sigder)) <= 0)
		goto out;
	sig = (ASN1_BIT_STRING *)csig;
	if (!ASN1_BIT_STRING_set(sig, sigder, siglen))
		goto out;
	sig->flags &= ~(ASN1_STRING_FLAG_BITS_LEFT | 0x07);
	sig->flags |= ASN1_STRING_FLAG_BITS_LEFT;
	if ((derlen = i2d_X509(x, &der)) <= 0)
		goto out;
	cp = der;
	if ((nx = d2i_X509(NULL, &cp, derlen)) == NULL)
		goto out;
	if (X509_verify(nx, capub) != 1) {
		log_error("certificate signed by the hsm does not verify");
		goto out;
	}
	X509_free(x);
	*xp = nx;
	nx = NULL;
	r = 0;
out:
	ERR_clear_error();
	X509_free(nx);
	ECDSA_SIG_free(es);
	BN_free(br);
	BN_free(bs);
	OPENSSL_free(tbs);
	OPENSSL_free(der);
	OPENSSL_free(sigder);
	return r;
}

static int
set_validity(X509 *x, unsigned days)
{
	return X509_gmtime_adj(X509_getm_notBefore(x), 0) != NULL &&
	    X509_time_adj_ex(X509_getm_notAfter(x), (int)days, 0, NULL) != NULL;
}

/* A v3 certificate with a random serial, subject, issuer, validity from now and the
 * public key, not yet signed, with the n extensions nids[i] = values[i]; ext_issuer is
 * the issuer's certificate for the extension context (NULL: self-issued). NULL on
 * failure. */
static X509 *
cert_new(const X509_NAME *subject, const X509_NAME *issuer, X509 *ext_issuer, unsigned days,
    EVP_PKEY *pub, const int *nids, const char *const *values, size_t n)
{
	X509 *x;
	X509V3_CTX ctx;
	size_t i;

	if ((x = X509_new()) == NULL ||
	    !X509_set_version(x, X509_VERSION_3) || !set_serial(x) ||
	    !X509_set_subject_name(x, subject) || !X509_set_issuer_name(x, issuer) ||
	    !set_validity(x, days) || !X509_set_pubkey(x, pub))
		goto fail;
	X509V3_set_ctx(&ctx, ext_issuer != NULL ? ext_issuer : x, x, NULL, NULL, 0);
	for (i = 0; i < n; i++)
		if (!add_ext(x, &ctx, nids[i], values[i]))
			goto fail;
	return x;
fail:
	X509_free(x);
	return NULL;
}

/* A new certificate (cert_new) signed with the CA key ca_label and checked with capub:
 * the common tail of x509_make_ca and x509_issue. */
static int
make_cert(struct hsm *h, struct hsm_session *s, const char *ca_label, EVP_PKEY *capub,
    const X509_NAME *subject, const X509_NAME *issuer, X509 *ext_issuer, unsigned days,
    EVP_PKEY *pub, const int *nids, const char *const *values, size_t n, X509 **certp)
{
	X509 *x = NULL;
	int r = RSSP_E_CRYPTO;

	if ((x = cert_new(subject, issuer, ext_issuer, days, pub, nids, values, n)) == NULL)
		goto out;
	if ((r = hsm_sign_cert(h, s, ca_label, capub, &x)) != 0)
		goto out;
	*certp = x;
	x = NULL;
	r = 0;
out:
	ERR_clear_error();
	X509_free(x);
	return r;
}

int
x509_make_ca(struct hsm *h, struct hsm_session *s, const char *ca_label, EVP_PKEY *pub,
    const X509_NAME *subject, unsigned days, X509 **certp)
{
	static const int nids[] = { NID_basic_constraints, NID_key_usage,
		NID_subject_key_identifier };
	static const char *const values[] = { "critical,CA:TRUE", "critical,keyCertSign,cRLSign",
		"hash" };

	if (days == 0 || days > 36500)
		return RSSP_E_INVAL;
	return make_cert(h, s, ca_label, pub, subject, subject, NULL, days, pub, nids, values, 3,
	    certp);
}

int
x509_issue(struct hsm *h, struct hsm_session *s, const char *ca_label, X509 *ca,
    EVP_PKEY *pub, const X509_NAME *subject, unsigned days, X509 **certp)
{
	static const int nids[] = { NID_basic_constraints, NID_key_usage,
		NID_subject_key_identifier, NID_authority_key_identifier };
	static const char *const values[] = { "critical,CA:FALSE",
		"critical,digitalSignature,nonRepudiation", "hash", "keyid:always" };
	EVP_PKEY *capub;

	if (days == 0 || days > X509_MAX_DAYS)
		return RSSP_E_INVAL;
	if ((capub = X509_get0_pubkey(ca)) == NULL)
		return RSSP_E_CRYPTO;
	return make_cert(h, s, ca_label, capub, subject, X509_get_subject_name(ca), ca, days, pub,
	    nids, values, 4, certp);
}
