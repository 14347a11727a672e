/* sam_fixture.c - the sam suites' shared token and request builders (sam_fixture.h). */
#include <check.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <p11-kit/pkcs11.h>

#include <rssp/engine/v1/engine.pb-c.h>

#include "authdata.h"
#include "fixture.h"
#include "ra_keys.h"
#include "sam.h"
#include "voucher.h"

#include "sam_fixture.h"

char workdir[512], pin_file[600], bad_pin_file[600];
const char *module;
struct sam_config cfg;
struct sam *S;

EVP_PKEY *kak_rsa, *kak_ec, *kak_ec2;
/* Registration authorities: two the engine trusts (EC P-256, RSA), one it does not. */
EVP_PKEY *ra_ec, *ra_rsa, *ra_rogue;
uint8_t ra_ec_id[32], ra_rsa_id[32], ra_rogue_id[32];

struct cred creds[4]; /* rsa2048, rsa3072, p256, p384 */

/* ---- helpers ---- */

void
die(const char *what)
{
	fprintf(stderr, "test setup failed: %s\n", what);
	exit(1);
}

uint8_t *
spki_of(EVP_PKEY *k, size_t *lenp)
{
	uint8_t *der = NULL;
	int n = i2d_PUBKEY(k, &der);

	ck_assert_int_gt(n, 0);
	*lenp = (size_t)n;
	return der;
}

void
kak_sign(EVP_PKEY *k, int algo, const uint8_t *msg, size_t len, uint8_t **sigp, size_t *siglenp)
{
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pc = NULL;
	const EVP_MD *md = algo == KAK_PSS512 ? EVP_sha512() : EVP_sha256();
	size_t n = 0;
	uint8_t *sig;

	ck_assert_int_eq(EVP_DigestSignInit(m, &pc, md, NULL, k), 1);
	if (algo != KAK_ECDSA) {
		ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING), 1);
		ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_mgf1_md(pc, md), 1);
		ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, RSA_PSS_SALTLEN_DIGEST), 1);
	}
	ck_assert_int_eq(EVP_DigestSign(m, NULL, &n, msg, len), 1);
	sig = malloc(n);
	ck_assert_int_eq(EVP_DigestSign(m, sig, &n, msg, len), 1);
	EVP_MD_CTX_free(m);
	*sigp = sig;
	*siglenp = n;
}

void
key_id(EVP_PKEY *k, uint8_t id[32])
{
	size_t n;
	uint8_t *der = spki_of(k, &n);

	SHA256(der, n, id);
	OPENSSL_free(der);
}

/* An RA's signature: ECDSA P-256 SHA-256, or RSASSA-PSS SHA-256 salt 32. */
void
ra_sign(EVP_PKEY *k, const uint8_t *msg, size_t len, uint8_t **sigp, size_t *siglenp)
{
	kak_sign(k, EVP_PKEY_is_a(k, "EC") ? KAK_ECDSA : KAK_PSS256, msg, len, sigp, siglenp);
}

/* Activation request fields, signed as a whole, then packed (possibly edited). The
 * voucher (v, signed by ra) follows the request's user, device, name and KAK unless
 * v_fixed: then it is sent as it stands, as a gateway replaying another voucher would. */

void
voucher_follow(struct act *a)
{
	snprintf(a->v.user_id, sizeof(a->v.user_id), "%s", a->owner_id);
	snprintf(a->v.device_uuid, sizeof(a->v.device_uuid), "%s", a->device_uuid);
	snprintf(a->v.common_name, sizeof(a->v.common_name), "%s", a->subject_cn);
	key_id(a->kak, a->v.kak_sha256);
}

void
act_init(struct act *a, const char *cred, const char *owner, int key_algo, EVP_PKEY *kak, int kak_algo)
{
	memset(a, 0, sizeof(*a));
	snprintf(a->credential_id, sizeof(a->credential_id), "%s", cred);
	snprintf(a->owner_id, sizeof(a->owner_id), "%s", owner);
	snprintf(a->device_uuid, sizeof(a->device_uuid), "dev-%s", owner);
	snprintf(a->subject_cn, sizeof(a->subject_cn), "Signer %s", owner);
	a->key_algo = key_algo;
	a->validity_days = 365;
	RAND_bytes(a->nonce, sizeof(a->nonce));
	a->nonce_len = sizeof(a->nonce);
	a->expires_at = (int64_t)time(NULL) + 600;
	a->kak = kak;
	a->kak_algo = kak_algo;
	a->ra = ra_ec;
	memcpy(a->v.ra_key_id, ra_ec_id, 32);
	a->v.issued_at = (int64_t)time(NULL) - 60;
	a->v.not_after = a->v.issued_at + 7 * 86400;
	voucher_follow(a);
}

void
act_sign(const struct act *a, uint8_t **sigp, size_t *siglenp)
{
	struct rssp_activation_fields f;
	uint8_t *spki, *ad = NULL;
	size_t spkilen, adlen = 0;

	spki = spki_of(a->kak, &spkilen);
	memset(&f, 0, sizeof(f));
	f.credential_id = a->credential_id;
	f.owner_id = a->owner_id;
	f.device_uuid = a->device_uuid;
	f.kak_spki = spki;
	f.kak_spki_len = spkilen;
	f.kak_algo = a->kak_algo;
	f.key_algo = a->key_algo;
	f.subject_cn = a->v_fixed ? a->v.common_name : a->subject_cn;
	f.validity_days = a->validity_days;
	f.nonce = a->nonce;
	f.nonce_len = a->nonce_len;
	f.expires_at = a->expires_at;
	if (rssp_authdata_activation(&f, &ad, &adlen) != 0) {
		/* fields the builder refuses: the engine must refuse them before any signature */
		*sigp = calloc(1, 64);
		*siglenp = 64;
	} else {
		kak_sign(a->kak, a->kak_algo, ad, adlen, sigp, siglenp);
	}
	free(ad);
	OPENSSL_free(spki);
}

int
act_call(const struct act *a, const uint8_t *sig, size_t siglen,
    Rssp__Engine__V1__ActivationResult **resp, struct sam_audit *au)
{
	Rssp__Engine__V1__AuthorizeRequest req = RSSP__ENGINE__V1__AUTHORIZE_REQUEST__INIT;
	Rssp__Engine__V1__Kak kak = RSSP__ENGINE__V1__KAK__INIT;
	Rssp__Engine__V1__Activation act = RSSP__ENGINE__V1__ACTIVATION__INIT;
	Rssp__Engine__V1__Voucher vo = RSSP__ENGINE__V1__VOUCHER__INIT;
	Rssp__Engine__V1__AuthorizeResponse *ar;
	struct sam_audit local;
	struct act va = *a;
	uint8_t *spki, *buf, *out = NULL, *vb = NULL, *vsig = NULL, badid[32];
	size_t spkilen, len, outlen = 0, vblen = 0, vsiglen = 0;
	int r;

	if (!a->v_fixed)
		voucher_follow(&va);
	if (rssp_voucher_build(&va.v, &vb, &vblen) != 0) {
		/* fields a voucher cannot hold: sent as bytes the engine cannot parse */
		vb = (uint8_t *)strdup("not a voucher");
		vblen = strlen((char *)vb);
	}
	ra_sign(a->ra, vb, vblen, &vsig, &vsiglen);
	vo.to_be_signed.data = vb;
	vo.to_be_signed.len = vblen;
	vo.signature.data = vsig;
	vo.signature.len = vsiglen;
	memcpy(badid, va.v.ra_key_id, 32);
	if (a->key_id_mismatch)
		badid[0] ^= 1;
	vo.ra_key_id.data = badid;
	vo.ra_key_id.len = 32;
	if (!a->no_voucher)
		act.voucher = &vo;

	spki = spki_of(a->kak, &spkilen);
	kak.public_key.data = spki;
	kak.public_key.len = spkilen;
	kak.algo = a->kak_algo;
	act.credential_id = (char *)a->credential_id;
	act.owner_id = (char *)a->owner_id;
	act.device_uuid = (char *)a->device_uuid;
	act.key_algo = a->key_algo;
	act.validity_days = a->validity_days;
	act.nonce.data = (uint8_t *)a->nonce;
	act.nonce.len = a->nonce_len;
	act.expires_at = a->expires_at;
	req.request_id = "test-activation";
	req.kak = &kak;
	req.signature.data = (uint8_t *)sig;
	req.signature.len = siglen;
	req.purpose_case = RSSP__ENGINE__V1__AUTHORIZE_REQUEST__PURPOSE_ACTIVATION;
	req.activation = &act;
	if (a->extra == NULL) {
		len = rssp__engine__v1__authorize_request__get_packed_size(&req);
		buf = malloc(len);
		rssp__engine__v1__authorize_request__pack(&req, buf);
	} else {
		/* the request without its purpose, then field 10 (the Activation) by hand */
		size_t alen = rssp__engine__v1__activation__get_packed_size(&act), n;
		size_t body = alen + a->extra_len;

		req.purpose_case = RSSP__ENGINE__V1__AUTHORIZE_REQUEST__PURPOSE__NOT_SET;
		n = rssp__engine__v1__authorize_request__get_packed_size(&req);
		buf = malloc(n + 6 + body);
		rssp__engine__v1__authorize_request__pack(&req, buf);
		len = n;
		buf[len++] = 0x52; /* field 10, length-delimited */
		while (body >= 0x80) {
			buf[len++] = (uint8_t)(body | 0x80);
			body >>= 7;
		}
		buf[len++] = (uint8_t)body;
		len += rssp__engine__v1__activation__pack(&act, buf + len);
		memcpy(buf + len, a->extra, a->extra_len);
		len += a->extra_len;
	}
	if (au == NULL)
		au = &local;
	r = sam_authorize(S, buf, len, &out, &outlen, au);
	free(buf);
	free(vb);
	free(vsig);
	OPENSSL_free(spki);
	if (r == 0) {
		ck_assert_ptr_null(au->reason);
		ar = rssp__engine__v1__authorize_response__unpack(NULL, outlen, out);
		ck_assert_ptr_nonnull(ar);
		ck_assert_int_eq(ar->result_case, RSSP__ENGINE__V1__AUTHORIZE_RESPONSE__RESULT_ACTIVATION);
		free(out);
		if (resp != NULL) {
			*resp = ar->activation;
			ar->activation = NULL;
			ar->result_case = RSSP__ENGINE__V1__AUTHORIZE_RESPONSE__RESULT__NOT_SET;
		}
		rssp__engine__v1__authorize_response__free_unpacked(ar, NULL);
	} else {
		ck_assert_ptr_nonnull(au->reason);
	}
	return r;
}

void
free_act_result(Rssp__Engine__V1__ActivationResult *r)
{
	if (r != NULL)
		protobuf_c_message_free_unpacked(&r->base, NULL);
}

int
activate(const struct act *a, Rssp__Engine__V1__ActivationResult **resp, struct sam_audit *au)
{
	uint8_t *sig;
	size_t siglen;
	int r;

	act_sign(a, &sig, &siglen);
	r = act_call(a, sig, siglen, resp, au);
	free(sig);
	return r;
}

size_t
hlen_of(int hash_algo)
{
	return rssp_hash_algo_len(hash_algo);
}

void
appr_init(struct appr *p, const struct cred *c, int hash_algo, size_t n, uint32_t num)
{
	size_t i;
	static unsigned seq;

	memset(p, 0, sizeof(*p));
	snprintf(p->approval_id, sizeof(p->approval_id), "approval-%u-%ld", ++seq, (long)time(NULL));
	snprintf(p->credential_id, sizeof(p->credential_id), "%s", c->id);
	snprintf(p->owner_id, sizeof(p->owner_id), "%s", c->owner);
	snprintf(p->device_uuid, sizeof(p->device_uuid), "dev-%s", c->owner);
	snprintf(p->key_label, sizeof(p->key_label), "%s", c->label);
	memcpy(p->binding, c->binding, c->binding_len);
	p->binding_len = c->binding_len;
	p->hash_algo = hash_algo;
	p->n_hashes = n;
	for (i = 0; i < n; i++) {
		RAND_bytes(p->hashes[i], sizeof(p->hashes[i]));
		p->hash_lens[i] = hlen_of(hash_algo);
	}
	p->num_signatures = num;
	snprintf(p->rp_name, sizeof(p->rp_name), "Example RP");
	snprintf(p->description, sizeof(p->description), "Contract %u", seq);
	RAND_bytes(p->nonce, sizeof(p->nonce));
	p->nonce_len = 24;
	p->expires_at = (int64_t)time(NULL) + 300;
	p->kak = c->kak;
	p->kak_algo = c->kak_algo;
}

void
appr_sign(const struct appr *p, uint8_t **sigp, size_t *siglenp)
{
	struct rssp_approval_fields f;
	static const uint8_t *hv[RSSP_MAX_HASHES];
	uint8_t *spki, *ad = NULL;
	size_t spkilen, adlen = 0, i;

	spki = spki_of(p->kak, &spkilen);
	for (i = 0; i < p->n_hashes; i++)
		hv[i] = p->hashes[i];
	memset(&f, 0, sizeof(f));
	f.approval_id = p->approval_id;
	f.credential_id = p->credential_id;
	f.owner_id = p->owner_id;
	f.device_uuid = p->device_uuid;
	f.kak_spki = spki;
	f.kak_spki_len = spkilen;
	f.hash_algo = p->hash_algo;
	f.hashes = hv;
	f.n_hashes = p->n_hashes;
	f.hash_len = hlen_of(p->hash_algo);
	f.num_signatures = p->num_signatures;
	f.rp_name = p->rp_name;
	f.description = p->description;
	f.nonce = p->nonce;
	f.nonce_len = p->nonce_len;
	f.expires_at = p->expires_at;
	if (rssp_authdata_approval(&f, &ad, &adlen) != 0) {
		*sigp = calloc(1, 64);
		*siglenp = 64;
	} else {
		kak_sign(p->kak, p->kak_algo, ad, adlen, sigp, siglenp);
	}
	free(ad);
	OPENSSL_free(spki);
}

void
appr_pack(const struct appr *p, const uint8_t *sig, size_t siglen, uint8_t **bufp, size_t *lenp)
{
	Rssp__Engine__V1__AuthorizeRequest req = RSSP__ENGINE__V1__AUTHORIZE_REQUEST__INIT;
	Rssp__Engine__V1__Kak kak = RSSP__ENGINE__V1__KAK__INIT;
	Rssp__Engine__V1__Approval ap = RSSP__ENGINE__V1__APPROVAL__INIT;
	static ProtobufCBinaryData hv[RSSP_MAX_HASHES];
	uint8_t *spki;
	size_t spkilen, i;

	spki = spki_of(p->kak, &spkilen);
	kak.public_key.data = spki;
	kak.public_key.len = spkilen;
	kak.algo = p->kak_algo;
	ap.approval_id = (char *)p->approval_id;
	ap.credential_id = (char *)p->credential_id;
	ap.owner_id = (char *)p->owner_id;
	ap.device_uuid = (char *)p->device_uuid;
	ap.key_label = (char *)p->key_label;
	ap.binding.data = (uint8_t *)p->binding;
	ap.binding.len = p->binding_len;
	ap.hash_algo = p->hash_algo;
	for (i = 0; i < p->n_hashes; i++) {
		hv[i].data = (uint8_t *)p->hashes[i];
		hv[i].len = p->hash_lens[i];
	}
	ap.hashes = hv;
	ap.n_hashes = p->n_hashes;
	ap.num_signatures = p->num_signatures;
	ap.rp_name = (char *)p->rp_name;
	ap.description = (char *)p->description;
	ap.nonce.data = (uint8_t *)p->nonce;
	ap.nonce.len = p->nonce_len;
	ap.expires_at = p->expires_at;
	req.request_id = "test-approval";
	req.kak = &kak;
	req.signature.data = (uint8_t *)sig;
	req.signature.len = siglen;
	req.purpose_case = RSSP__ENGINE__V1__AUTHORIZE_REQUEST__PURPOSE_APPROVAL;
	req.approval = &ap;
	*lenp = rssp__engine__v1__authorize_request__get_packed_size(&req);
	*bufp = malloc(*lenp);
	rssp__engine__v1__authorize_request__pack(&req, *bufp);
	OPENSSL_free(spki);
}

/* Sends p signed with sig; on success *sadp / *sadlenp get the SAD (malloc'd). */
int
appr_call(const struct appr *p, const uint8_t *sig, size_t siglen, uint8_t **sadp,
    size_t *sadlenp, struct sam_audit *au)
{
	Rssp__Engine__V1__AuthorizeResponse *ar;
	struct sam_audit local;
	uint8_t *buf, *out = NULL;
	size_t len, outlen = 0;
	int r;

	appr_pack(p, sig, siglen, &buf, &len);
	if (au == NULL)
		au = &local;
	r = sam_authorize(S, buf, len, &out, &outlen, au);
	free(buf);
	if (r == 0) {
		ck_assert(au->reason == NULL || strcmp(au->reason, "approval replayed: same sad") == 0);
		ck_assert_int_gt(au->sad_expires_at, time(NULL));
		ck_assert_uint_eq(strlen(au->approval_key), 64);
		ar = rssp__engine__v1__authorize_response__unpack(NULL, outlen, out);
		ck_assert_ptr_nonnull(ar);
		ck_assert_int_eq(ar->result_case, RSSP__ENGINE__V1__AUTHORIZE_RESPONSE__RESULT_APPROVAL);
		ck_assert_int_gt(ar->approval->sad_expires_at, time(NULL));
		ck_assert_int_le(ar->approval->sad_expires_at, p->expires_at);
		if (sadp != NULL) {
			*sadp = malloc(ar->approval->sad.len);
			memcpy(*sadp, ar->approval->sad.data, ar->approval->sad.len);
			*sadlenp = ar->approval->sad.len;
		}
		rssp__engine__v1__authorize_response__free_unpacked(ar, NULL);
		free(out);
	} else {
		ck_assert_ptr_nonnull(au->reason);
	}
	return r;
}

int
approve(const struct appr *p, uint8_t **sadp, size_t *sadlenp, struct sam_audit *au)
{
	uint8_t *sig;
	size_t siglen;
	int r;

	appr_sign(p, &sig, &siglen);
	r = appr_call(p, sig, siglen, sadp, sadlenp, au);
	free(sig);
	return r;
}

/* The PSS salt length sign_hashes asks for: -1 = none given (the hash length). */
long pss_salt = -1;

/* SignHash; on success *respp is the unpacked response. */
int
sign_hashes(const char *cred, const uint8_t *sad, size_t sadlen, int hash_algo, int sign_algo,
    const uint8_t (*hashes)[64], const size_t *lens, size_t n,
    Rssp__Engine__V1__SignHashResponse **respp, struct sam_audit *au)
{
	Rssp__Engine__V1__SignHashRequest req = RSSP__ENGINE__V1__SIGN_HASH_REQUEST__INIT;
	Rssp__Engine__V1__SignHashResponse *resp;
	static ProtobufCBinaryData hv[RSSP_MAX_HASHES];
	struct sam_audit local;
	uint8_t *buf, *out = NULL;
	size_t len, outlen = 0, i;
	int r;

	req.request_id = "test-signhash";
	req.credential_id = (char *)cred;
	req.sad.data = (uint8_t *)sad;
	req.sad.len = sadlen;
	req.hash_algo = hash_algo;
	req.sign_algo = sign_algo;
	for (i = 0; i < n; i++) {
		hv[i].data = (uint8_t *)hashes[i];
		hv[i].len = lens != NULL ? lens[i] : hlen_of(hash_algo);
	}
	req.hashes = hv;
	req.n_hashes = n;
	Rssp__Engine__V1__PssParams pss = RSSP__ENGINE__V1__PSS_PARAMS__INIT;
	if (pss_salt >= 0) {
		pss.salt_length = (uint32_t)pss_salt;
		req.pss = &pss;
	}
	len = rssp__engine__v1__sign_hash_request__get_packed_size(&req);
	buf = malloc(len);
	rssp__engine__v1__sign_hash_request__pack(&req, buf);
	if (au == NULL)
		au = &local;
	r = sam_sign_hash(S, buf, len, &out, &outlen, au);
	free(buf);
	if (r == 0) {
		ck_assert_ptr_null(au->reason);
		resp = rssp__engine__v1__sign_hash_response__unpack(NULL, outlen, out);
		ck_assert_ptr_nonnull(resp);
		ck_assert_uint_eq(resp->n_signatures, n);
		ck_assert_uint_eq(au->signatures, n);
		free(out);
		if (respp != NULL)
			*respp = resp;
		else
			rssp__engine__v1__sign_hash_response__free_unpacked(resp, NULL);
	} else {
		ck_assert_ptr_nonnull(au->reason);
	}
	return r;
}

/* Verifies a signature with the certificate, independently of the engine. */
int
verify_with_cert(X509 *cert, int sign_algo, int hash_algo, const uint8_t *dg,
    const uint8_t *sig, size_t siglen)
{
	EVP_PKEY *k = X509_get0_pubkey(cert);
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(k, NULL);
	const EVP_MD *md = hash_algo == H256 ? EVP_sha256() : hash_algo == H384 ? EVP_sha384() : EVP_sha512();
	int ok;

	ck_assert_int_eq(EVP_PKEY_verify_init(c), 1);
	ck_assert_int_eq(EVP_PKEY_CTX_set_signature_md(c, md), 1);
	if (sign_algo == S_PKCS1)
		ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING), 1);
	if (sign_algo == S_PSS) {
		ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PSS_PADDING), 1);
		ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_pss_saltlen(c,
		    pss_salt >= 0 ? (int)pss_salt : (int)EVP_MD_get_size(md)), 1);
		ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_mgf1_md(c, md), 1);
	}
	ok = EVP_PKEY_verify(c, sig, siglen, dg, (size_t)EVP_MD_get_size(md)) == 1;
	EVP_PKEY_CTX_free(c);
	ERR_clear_error();
	return ok;
}

/* The CA certificate from the chain of the first activation. */
X509 *ca_cert;

int
chain_verifies(X509 *cert)
{
	X509_STORE *st = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	int ok;

	X509_STORE_add_cert(st, ca_cert);
	X509_STORE_CTX_init(ctx, st, cert, NULL);
	ok = X509_verify_cert(ctx) == 1;
	if (!ok)
		fprintf(stderr, "verify: %s\n",
		    X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	return ok;
}

/* An approval for c and a SAD for it; fails the test unless minted. */
uint8_t *
mint(const struct cred *c, struct appr *p, int hash_algo, size_t n, uint32_t num, size_t *sadlenp)
{
	uint8_t *sad = NULL;

	appr_init(p, c, hash_algo, n, num);
	ck_assert_int_eq(approve(p, &sad, sadlenp, NULL), 0);
	return sad;
}

/* ---- suite-wide setup: a token, its initialisation, four credentials ---- */

EVP_PKEY *
gen_key(const char *type, const char *param)
{
	EVP_PKEY *k = NULL;

	if (strcmp(type, "RSA") == 0)
		k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)strtoul(param, NULL, 10));
	else
		k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", param);
	if (k == NULL)
		die("keygen");
	return k;
}

char ra_dir[600];

void
write_ra(const char *dir, const char *name, EVP_PKEY *k)
{
	char path[700];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((f = fopen(path, "w")) == NULL || PEM_write_PUBKEY(f, k) != 1)
		die("ra key file");
	fclose(f);
}

void
setup_token(void)
{
	struct sam_init_opts opts = { "CN=rssp test CA,O=rssp tests,C=DE", 30, 0 };
	struct act a;
	Rssp__Engine__V1__ActivationResult *res = NULL;
	const unsigned char *p;
	int i, r;
	static const int algos[4] = { KEY_RSA2048, KEY_RSA3072, KEY_P256, KEY_P384 };

	ef_tempdir(workdir, sizeof(workdir), "engine-core.");
	ef_softhsm_token(workdir, TOKEN, PIN);
	snprintf(pin_file, sizeof(pin_file), "%s/pin", workdir);
	snprintf(bad_pin_file, sizeof(bad_pin_file), "%s/pin-0644", workdir);
	ef_write_pin(pin_file, PIN, 0600);
	ef_write_pin(bad_pin_file, PIN, 0644);
	module = ef_pkcs11_module();
	cfg.module_path = module;
	cfg.token_label = TOKEN;
	cfg.pin_file = pin_file;
	cfg.sessions = 4;
	cfg.sad_ttl = 300;
	ra_ec = gen_key("EC", "P-256");
	ra_rsa = gen_key("RSA", "2048");
	ra_rogue = gen_key("EC", "P-256");
	key_id(ra_ec, ra_ec_id);
	key_id(ra_rsa, ra_rsa_id);
	key_id(ra_rogue, ra_rogue_id);
	snprintf(ra_dir, sizeof(ra_dir), "%s/ra", workdir);
	if (mkdir(ra_dir, 0700) != 0)
		die("ra dir");
	write_ra(ra_dir, "officer.pem", ra_ec);
	write_ra(ra_dir, "kyc-backend.pem", ra_rsa);
	cfg.ra_keys = ra_dir;
	if (sam_init_token(&cfg, &opts) != 0)
		die("sam_init_token");
	/* force replaces the MAC key and the CA: the open below must use the new ones */
	opts.force = 1;
	if (sam_init_token(&cfg, &opts) != 0)
		die("sam_init_token force");
	if ((r = sam_open(&cfg, &S)) != 0) {
		fprintf(stderr, "sam_open: %s\n", rssp_strerror(r));
		die("sam_open");
	}

	kak_rsa = gen_key("RSA", "2048");
	kak_ec = gen_key("EC", "P-256");
	kak_ec2 = gen_key("EC", "P-256");
	for (i = 0; i < 4; i++) {
		struct cred *c = &creds[i];

		snprintf(c->id, sizeof(c->id), "credential-%d", i);
		snprintf(c->owner, sizeof(c->owner), "user-%d", i);
		c->key_algo = algos[i];
		/* every KAK algorithm in use: PSS-SHA256, PSS-SHA512, ECDSA */
		c->kak = i < 2 ? kak_rsa : kak_ec;
		c->kak_algo = i == 0 ? KAK_PSS256 : i == 1 ? KAK_PSS512 : KAK_ECDSA;
		act_init(&a, c->id, c->owner, c->key_algo, c->kak, c->kak_algo);
		if ((r = activate(&a, &res, NULL)) != 0) {
			fprintf(stderr, "activation %d: %s\n", i, rssp_strerror(r));
			die("activation");
		}
		snprintf(c->label, sizeof(c->label), "%s", res->key_label);
		memcpy(c->binding, res->binding.data, res->binding.len);
		c->binding_len = res->binding.len;
		p = res->certificate.data;
		c->cert = d2i_X509(NULL, &p, (long)res->certificate.len);
		if (c->cert == NULL || res->n_chain != 1)
			die("certificate");
		if (ca_cert == NULL) {
			p = res->chain[0].data;
			ca_cert = d2i_X509(NULL, &p, (long)res->chain[0].len);
		}
		free_act_result(res);
	}
}

void
teardown_token(void)
{
	int i;

	sam_free(S);
	for (i = 0; i < 4; i++)
		X509_free(creds[i].cert);
	X509_free(ca_cert);
	EVP_PKEY_free(kak_rsa);
	EVP_PKEY_free(kak_ec);
	EVP_PKEY_free(kak_ec2);
	EVP_PKEY_free(ra_ec);
	EVP_PKEY_free(ra_rsa);
	EVP_PKEY_free(ra_rogue);
	ef_rmtree(workdir);
}

int
sam_fixture_main(const char *name, const TTest *const *tests, size_t n)
{
	Suite *s = suite_create(name);
	TCase *tc = tcase_create("token");
	SRunner *sr;
	size_t i;
	int failed;

	tcase_add_unchecked_fixture(tc, setup_token, teardown_token);
	for (i = 0; i < n; i++)
		tcase_add_test(tc, tests[i]);
	tcase_set_timeout(tc, 300);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	/* One process: the token, its login and the engine's caches are shared state. */
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
