/* The signature activation module against a real SoftHSM2 token, through the real
 * PKCS#11 path: the test makes its own token with softhsm2-util under a private
 * SOFTHSM2_CONF, initialises it with sam_init_token, and drives sam_authorize /
 * sam_sign_hash with serialized protobuf requests, exactly as the gRPC server does.
 * KAKs are generated here with OpenSSL; every signature and certificate the engine
 * returns is checked here with OpenSSL. */
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
#include "ra_keys.h"
#include "sam.h"
#include "voucher.h"

#define TOKEN "rssp-test"
#define PIN "4711-test"

enum { KAK_PSS256 = 1, KAK_PSS512 = 2, KAK_ECDSA = 3 };
enum { KEY_RSA2048 = 1, KEY_RSA3072, KEY_P256, KEY_P384 };
enum { H256 = 1, H384 = 2, H512 = 3 };
enum { S_PKCS1 = 1, S_PSS = 2, S_ECDSA = 3 };

static char workdir[512], pin_file[600], bad_pin_file[600];
static const char *module;
static struct sam_config cfg;
static struct sam *S;

static EVP_PKEY *kak_rsa, *kak_ec, *kak_ec2;
/* Registration authorities: two the engine trusts (EC P-256, RSA), one it does not. */
static EVP_PKEY *ra_ec, *ra_rsa, *ra_rogue;
static uint8_t ra_ec_id[32], ra_rsa_id[32], ra_rogue_id[32];

/* A credential activated once for the whole suite. */
struct cred {
	char id[64];
	char owner[32];
	int key_algo;
	EVP_PKEY *kak;
	int kak_algo;
	char label[RSSP_MAX_ID_LEN + 1];
	uint8_t binding[64];
	size_t binding_len;
	X509 *cert;
};
static struct cred creds[4]; /* rsa2048, rsa3072, p256, p384 */

/* ---- helpers ---- */

static void
die(const char *what)
{
	fprintf(stderr, "test setup failed: %s\n", what);
	exit(1);
}

static uint8_t *
spki_of(EVP_PKEY *k, size_t *lenp)
{
	uint8_t *der = NULL;
	int n = i2d_PUBKEY(k, &der);

	ck_assert_int_gt(n, 0);
	*lenp = (size_t)n;
	return der;
}

static void
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

static void
key_id(EVP_PKEY *k, uint8_t id[32])
{
	size_t n;
	uint8_t *der = spki_of(k, &n);

	SHA256(der, n, id);
	OPENSSL_free(der);
}

/* An RA's signature: ECDSA P-256 SHA-256, or RSASSA-PSS SHA-256 salt 32. */
static void
ra_sign(EVP_PKEY *k, const uint8_t *msg, size_t len, uint8_t **sigp, size_t *siglenp)
{
	kak_sign(k, EVP_PKEY_is_a(k, "EC") ? KAK_ECDSA : KAK_PSS256, msg, len, sigp, siglenp);
}

/* Activation request fields, signed as a whole, then packed (possibly edited). The
 * voucher (v, signed by ra) follows the request's user, device, name and KAK unless
 * v_fixed: then it is sent as it stands, as a gateway replaying another voucher would. */
struct act {
	char credential_id[160], owner_id[64], device_uuid[64], subject_cn[128];
	int key_algo;
	uint32_t validity_days;
	uint8_t nonce[32];
	size_t nonce_len;
	int64_t expires_at;
	EVP_PKEY *kak;
	int kak_algo;
	struct rssp_voucher v;
	EVP_PKEY *ra;
	int v_fixed;
	int no_voucher;
	int key_id_mismatch;     /* Voucher.ra_key_id differs from the voucher's */
	const char *extra;       /* raw protobuf bytes appended to the Activation */
	size_t extra_len;
};

static void
voucher_follow(struct act *a)
{
	snprintf(a->v.user_id, sizeof(a->v.user_id), "%s", a->owner_id);
	snprintf(a->v.device_uuid, sizeof(a->v.device_uuid), "%s", a->device_uuid);
	snprintf(a->v.common_name, sizeof(a->v.common_name), "%s", a->subject_cn);
	key_id(a->kak, a->v.kak_sha256);
}

static void
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

static void
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

static int
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

static void
free_act_result(Rssp__Engine__V1__ActivationResult *r)
{
	if (r != NULL)
		protobuf_c_message_free_unpacked(&r->base, NULL);
}

static int
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

/* Approval request fields. */
struct appr {
	char approval_id[64], credential_id[160], owner_id[64], device_uuid[64], key_label[160];
	uint8_t binding[64];
	size_t binding_len;
	int hash_algo;
	uint8_t hashes[RSSP_MAX_HASHES][64];
	size_t hash_lens[RSSP_MAX_HASHES];
	size_t n_hashes;
	uint32_t num_signatures;
	char rp_name[64], description[128];
	uint8_t nonce[32];
	size_t nonce_len;
	int64_t expires_at;
	EVP_PKEY *kak;
	int kak_algo;
};

static size_t
hlen_of(int hash_algo)
{
	return rssp_hash_algo_len(hash_algo);
}

static void
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

static void
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

static void
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
static int
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

static int
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
static long pss_salt = -1;

/* SignHash; on success *respp is the unpacked response. */
static int
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
static int
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
static X509 *ca_cert;

static int
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
static uint8_t *
mint(const struct cred *c, struct appr *p, int hash_algo, size_t n, uint32_t num, size_t *sadlenp)
{
	uint8_t *sad = NULL;

	appr_init(p, c, hash_algo, n, num);
	ck_assert_int_eq(approve(p, &sad, sadlenp, NULL), 0);
	return sad;
}

/* ---- suite-wide setup: a token, its initialisation, four credentials ---- */

static void
run(const char *cmd)
{
	if (system(cmd) != 0)
		die(cmd);
}

static void
write_pin(const char *path, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd == -1 || write(fd, PIN "\n", strlen(PIN) + 1) < 0 || fchmod(fd, mode) != 0)
		die("pin file");
	close(fd);
}

static EVP_PKEY *
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

static char ra_dir[600];

static void
write_ra(const char *dir, const char *name, EVP_PKEY *k)
{
	char path[700];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((f = fopen(path, "w")) == NULL || PEM_write_PUBKEY(f, k) != 1)
		die("ra key file");
	fclose(f);
}

static void
setup_token(void)
{
	const char *base = getenv("RSSP_TEST_WORK");
	char conf[700], cmd[1400];
	FILE *f;
	struct sam_init_opts opts = { "CN=rssp test CA,O=rssp tests,C=DE", 30, 0 };
	struct act a;
	Rssp__Engine__V1__ActivationResult *res = NULL;
	const unsigned char *p;
	int i, r;
	static const int algos[4] = { KEY_RSA2048, KEY_RSA3072, KEY_P256, KEY_P384 };

	snprintf(workdir, sizeof(workdir), "%s/engine-core.XXXXXX", base != NULL ? base : "/tmp");
	if (mkdtemp(workdir) == NULL)
		die("mkdtemp");
	snprintf(conf, sizeof(conf), "%s/softhsm2.conf", workdir);
	snprintf(cmd, sizeof(cmd), "%s/tokens", workdir);
	if (mkdir(cmd, 0700) != 0 || (f = fopen(conf, "w")) == NULL)
		die("softhsm dir");
	fprintf(f, "directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n"
	    "slots.removable = false\n", workdir);
	fclose(f);
	setenv("SOFTHSM2_CONF", conf, 1);
	snprintf(cmd, sizeof(cmd), "softhsm2-util --init-token --free --label %s --pin %s "
	    "--so-pin so-%s >/dev/null", TOKEN, PIN, PIN);
	run(cmd);
	snprintf(pin_file, sizeof(pin_file), "%s/pin", workdir);
	snprintf(bad_pin_file, sizeof(bad_pin_file), "%s/pin-0644", workdir);
	write_pin(pin_file, 0600);
	write_pin(bad_pin_file, 0644);

	module = getenv("RSSP_TEST_PKCS11_MODULE");
	if (module == NULL || module[0] == '\0')
		module = "/usr/lib/softhsm/libsofthsm2.so";
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

static void
teardown_token(void)
{
	int i;
	char cmd[700];

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
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", workdir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", workdir);
}

/* ---- tests ---- */

START_TEST(test_init_refuses_an_initialised_token_without_force)
{
	struct sam_init_opts opts = { NULL, 0, 0 };

	ck_assert_int_eq(sam_init_token(&cfg, &opts), RSSP_E_CONFLICT);
}
END_TEST

START_TEST(test_open_and_init_refuse_a_pin_file_readable_by_others)
{
	struct sam_config bad = cfg;
	struct sam_init_opts opts = { NULL, 0, 1 };
	struct sam *s2 = NULL;

	bad.pin_file = bad_pin_file;
	ck_assert_int_eq(sam_open(&bad, &s2), RSSP_E_DENIED);
	ck_assert_ptr_null(s2);
	ck_assert_int_eq(sam_init_token(&bad, &opts), RSSP_E_DENIED);
}
END_TEST

START_TEST(test_open_refuses_an_unknown_token)
{
	struct sam_config other = cfg;
	struct sam *s2 = NULL;

	other.token_label = "no-such-token";
	ck_assert_int_eq(sam_open(&other, &s2), RSSP_E_NOTFOUND);
}
END_TEST

START_TEST(test_activation_issues_a_chained_certificate_for_every_key_type)
{
	static const int bits[4] = { 2048, 3072, 256, 384 };
	int i;

	ck_assert_ptr_nonnull(ca_cert);
	ck_assert_int_eq(X509_check_ca(ca_cert), 1);
	for (i = 0; i < 4; i++) {
		struct cred *c = &creds[i];
		X509 *x = c->cert;
		char cn[128];
		const ASN1_BIT_STRING *sig;
		const X509_ALGOR *alg;

		ck_assert_msg(chain_verifies(x), "chain of %s", c->id);
		ck_assert_int_eq(X509_get_version(x), X509_VERSION_3);
		ck_assert_int_eq(X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName,
		    cn, sizeof(cn)), (int)strlen("Signer ") + (int)strlen(c->owner));
		ck_assert_ptr_nonnull(strstr(cn, c->owner));
		/* the vouched subject: CN the voucher's name, serialNumber its user id */
		ck_assert_int_eq(X509_NAME_get_text_by_NID(X509_get_subject_name(x),
		    NID_serialNumber, cn, sizeof(cn)), (int)strlen(c->owner));
		ck_assert_str_eq(cn, c->owner);
		ck_assert_int_eq(X509_NAME_entry_count(X509_get_subject_name(x)), 2);
		ck_assert_int_eq(X509_check_ca(x), 0);
		ck_assert_uint_eq(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION);
		ck_assert_int_ge(X509_get_ext_by_NID(x, NID_authority_key_identifier, -1), 0);
		ck_assert_int_ge(X509_get_ext_by_NID(x, NID_subject_key_identifier, -1), 0);
		ck_assert_int_eq(EVP_PKEY_get_bits(X509_get0_pubkey(x)), bits[i]);
		X509_get0_signature(&sig, &alg, x);
		ck_assert_int_eq(OBJ_obj2nid(alg->algorithm), NID_ecdsa_with_SHA384);
		ck_assert_msg(strncmp(c->label, c->id, strlen(c->id)) == 0 &&
		    c->label[strlen(c->id)] == '#' && strlen(c->label) == strlen(c->id) + 9,
		    "label %s", c->label);
		ck_assert_uint_eq(c->binding_len, 32);
	}
}
END_TEST

START_TEST(test_signhash_signs_with_every_fitting_algorithm_and_openssl_verifies)
{
	int i, sa, ha;

	for (i = 0; i < 4; i++) {
		struct cred *c = &creds[i];
		int rsa = c->key_algo == KEY_RSA2048 || c->key_algo == KEY_RSA3072;

		for (sa = S_PKCS1; sa <= S_ECDSA; sa++) {
			if (rsa != (sa != S_ECDSA))
				continue;
			for (ha = H256; ha <= H512; ha++) {
				struct appr p;
				Rssp__Engine__V1__SignHashResponse *resp = NULL;
				struct sam_audit au;
				size_t sadlen, k;
				uint8_t *sad = mint(c, &p, ha, 3, 3, &sadlen);

				ck_assert_int_eq(sign_hashes(c->id, sad, sadlen, ha, sa,
				    (const uint8_t (*)[64])p.hashes, NULL, 3, &resp, &au), 0);
				ck_assert_str_eq(au.event, "signhash");
				ck_assert_str_eq(au.key_label, c->label);
				ck_assert_uint_eq(strlen(au.sad_id), 32);
				for (k = 0; k < 3; k++)
					ck_assert_msg(verify_with_cert(c->cert, sa, ha, p.hashes[k],
					    resp->signatures[k].data, resp->signatures[k].len),
					    "%s sign %d hash %d #%zu", c->id, sa, ha, k);
				rssp__engine__v1__sign_hash_response__free_unpacked(resp, NULL);
				free(sad);
			}
		}
	}
}
END_TEST

START_TEST(test_signhash_pss_takes_any_salt_up_to_the_keys_maximum)
{
	/* emLen - hLen - 2: RSA-2048 with SHA-256 222, RSA-3072 with SHA-512 318 */
	static const struct { int cred, hash; long salts[4]; long max; } cases[] = {
		{ 0, H256, { 0, 20, 32, 222 }, 222 },
		{ 1, H512, { 0, 1, 64, 318 }, 318 },
	};
	size_t i, j, k;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cred *c = &creds[cases[i].cred];
		struct appr p;
		size_t sadlen;
		uint8_t *sad = mint(c, &p, cases[i].hash, 2, 10, &sadlen);
		struct sam_audit au;

		for (j = 0; j < 4; j++) {
			Rssp__Engine__V1__SignHashResponse *resp = NULL;

			pss_salt = cases[i].salts[j];
			ck_assert_int_eq(sign_hashes(c->id, sad, sadlen, cases[i].hash, S_PSS,
			    (const uint8_t (*)[64])p.hashes, NULL, 2, &resp, NULL), 0);
			for (k = 0; k < 2; k++)
				ck_assert_msg(verify_with_cert(c->cert, S_PSS, cases[i].hash, p.hashes[k],
				    resp->signatures[k].data, resp->signatures[k].len),
				    "%s salt %ld #%zu", c->id, pss_salt, k);
			rssp__engine__v1__sign_hash_response__free_unpacked(resp, NULL);
		}
		/* one byte over the maximum: refused before the token sees it, nothing counted */
		pss_salt = cases[i].max + 1;
		ck_assert_int_eq(sign_hashes(c->id, sad, sadlen, cases[i].hash, S_PSS,
		    (const uint8_t (*)[64])p.hashes, NULL, 1, NULL, &au), RSSP_E_INVAL);
		ck_assert_ptr_nonnull(strstr(au.reason, "salt"));
		/* PSS parameters with another algorithm */
		pss_salt = 32;
		ck_assert_int_eq(sign_hashes(c->id, sad, sadlen, cases[i].hash, S_PKCS1,
		    (const uint8_t (*)[64])p.hashes, NULL, 1, NULL, &au), RSSP_E_INVAL);
		ck_assert_ptr_nonnull(strstr(au.reason, "pss"));
		pss_salt = -1;
		/* 8 used, 2 left: the refusals did not spend any */
		ck_assert_int_eq(sign_hashes(c->id, sad, sadlen, cases[i].hash, S_PSS,
		    (const uint8_t (*)[64])p.hashes, NULL, 2, NULL, NULL), 0);
		free(sad);
	}
}
END_TEST

START_TEST(test_a_thousand_hashes_fit_the_message_limits_and_each_can_be_signed)
{
	static struct appr p;
	static uint8_t pick[RSSP_MAX_HASHES][64];
	Rssp__Engine__V1__SignHashResponse *resp = NULL;
	struct sam_audit au;
	size_t sadlen, i;
	uint8_t *sad, *req;
	size_t reqlen;

	appr_init(&p, &creds[2], H512, RSSP_MAX_HASHES, RSSP_MAX_HASHES);
	{
		uint8_t *sig;
		size_t siglen;

		appr_sign(&p, &sig, &siglen);
		appr_pack(&p, sig, siglen, &req, &reqlen);
		ck_assert_uint_le(reqlen, SAM_MAX_AUTHORIZE_MSG);
		free(req);
		ck_assert_int_eq(appr_call(&p, sig, siglen, &sad, &sadlen, NULL), 0);
		free(sig);
	}
	/* all of them, in reverse order, in one call: the largest SignHash there is */
	for (i = 0; i < RSSP_MAX_HASHES; i++)
		memcpy(pick[i], p.hashes[RSSP_MAX_HASHES - 1 - i], 64);
	ck_assert_uint_le(sadlen + RSSP_MAX_HASHES * (64 + 3) + 200, SAM_MAX_SIGNHASH_MSG);
	ck_assert_int_eq(sign_hashes(creds[2].id, sad, sadlen, H512, S_ECDSA,
	    (const uint8_t (*)[64])pick, NULL, RSSP_MAX_HASHES, &resp, &au), 0);
	ck_assert_uint_eq(au.signatures, RSSP_MAX_HASHES);
	for (i = 0; i < RSSP_MAX_HASHES; i += 97)
		ck_assert(verify_with_cert(creds[2].cert, S_ECDSA, H512, pick[i],
		    resp->signatures[i].data, resp->signatures[i].len));
	rssp__engine__v1__sign_hash_response__free_unpacked(resp, NULL);
	ck_assert_int_eq(sign_hashes(creds[2].id, sad, sadlen, H512, S_ECDSA,
	    (const uint8_t (*)[64])pick, NULL, 1, NULL, &au), RSSP_E_EXHAUSTED);
	free(sad);
}
END_TEST

START_TEST(test_approval_refuses_a_forged_binding)
{
	struct appr p;
	struct sam_audit au;

	appr_init(&p, &creds[2], H256, 1, 1);
	p.binding[5] ^= 0x01;
	ck_assert_int_eq(approve(&p, NULL, NULL, &au), RSSP_E_DENIED);
	ck_assert_str_eq(au.reason, "binding invalid");
	appr_init(&p, &creds[2], H256, 1, 1);
	p.binding_len = 31;
	ck_assert_int_eq(approve(&p, NULL, NULL, &au), RSSP_E_DENIED);
}
END_TEST

START_TEST(test_approval_refuses_another_kak_with_a_valid_signature)
{
	struct appr p;
	struct sam_audit au;

	appr_init(&p, &creds[2], H256, 1, 1);
	p.kak = kak_ec2; /* a gateway swaps in its own KAK and signs with it */
	ck_assert_int_eq(approve(&p, NULL, NULL, &au), RSSP_E_DENIED);
	ck_assert_str_eq(au.reason, "binding invalid");
}
END_TEST

START_TEST(test_approval_refuses_a_binding_of_another_credential_or_key)
{
	struct appr p;

	appr_init(&p, &creds[2], H256, 1, 1);
	snprintf(p.key_label, sizeof(p.key_label), "%s", creds[3].label);
	ck_assert_int_eq(approve(&p, NULL, NULL, NULL), RSSP_E_DENIED);
	appr_init(&p, &creds[2], H256, 1, 1);
	memcpy(p.binding, creds[3].binding, 32);
	ck_assert_int_eq(approve(&p, NULL, NULL, NULL), RSSP_E_DENIED);
}
END_TEST

/* Each field changed after the signer signed: the engine rebuilds authData from what
 * it receives, so every change breaks the signature (or the binding). */
enum { T_APPROVAL_ID, T_CREDENTIAL_ID, T_OWNER_ID, T_DEVICE_UUID, T_KEY_LABEL, T_HASH,
	T_ADD_HASH, T_DROP_HASH, T_NUM_SIGNATURES, T_RP_NAME, T_DESCRIPTION, T_NONCE, T_EXPIRES_AT,
	T_KAK_ALGO, T_HASH_ALGO, T_SIG_BYTE, T_COUNT };

static const struct {
	const char *name;
	int code;
} approval_tampers[T_COUNT] = {
	[T_APPROVAL_ID] = { "approval_id", RSSP_E_DENIED },
	[T_CREDENTIAL_ID] = { "credential_id", RSSP_E_DENIED },
	[T_OWNER_ID] = { "owner_id", RSSP_E_DENIED },
	[T_DEVICE_UUID] = { "device_uuid", RSSP_E_DENIED },
	[T_KEY_LABEL] = { "key_label", RSSP_E_DENIED },
	[T_HASH] = { "hash", RSSP_E_DENIED },
	[T_ADD_HASH] = { "added hash", RSSP_E_DENIED },
	[T_DROP_HASH] = { "dropped hash", RSSP_E_DENIED },
	[T_NUM_SIGNATURES] = { "num_signatures", RSSP_E_DENIED },
	[T_RP_NAME] = { "rp_name", RSSP_E_DENIED },
	[T_DESCRIPTION] = { "description", RSSP_E_DENIED },
	[T_NONCE] = { "nonce", RSSP_E_DENIED },
	[T_EXPIRES_AT] = { "expires_at", RSSP_E_DENIED },
	[T_KAK_ALGO] = { "kak algo", RSSP_E_INVAL },          /* an EC key cannot be PSS */
	[T_HASH_ALGO] = { "hash_algo", RSSP_E_INVAL },        /* 32-byte digests are not SHA-384 */
	[T_SIG_BYTE] = { "signature byte", RSSP_E_DENIED },
};

START_TEST(test_approval_refuses_each_tampered_field)
{
	struct appr p, t;
	struct sam_audit au;
	uint8_t *sig;
	size_t siglen, i;
	int r;

	for (i = 0; i < T_COUNT; i++) {
		appr_init(&p, &creds[2], H256, 2, 4);
		appr_sign(&p, &sig, &siglen);
		t = p;
		switch (i) {
		case T_APPROVAL_ID: t.approval_id[0] ^= 1; break;
		case T_CREDENTIAL_ID: strcat(t.credential_id, "x"); break;
		case T_OWNER_ID: t.owner_id[0] ^= 1; break;
		case T_DEVICE_UUID: strcat(t.device_uuid, "2"); break;
		case T_KEY_LABEL: t.key_label[strlen(t.key_label) - 1] ^= 1; break;
		case T_HASH: t.hashes[1][7] ^= 0x80; break;
		case T_ADD_HASH: RAND_bytes(t.hashes[2], 64); t.hash_lens[2] = 32; t.n_hashes = 3; break;
		case T_DROP_HASH: t.n_hashes = 1; break;
		case T_NUM_SIGNATURES: t.num_signatures = 5; break;
		case T_RP_NAME: strcat(t.rp_name, "!"); break;
		case T_DESCRIPTION: t.description[0] = 'c'; break;
		case T_NONCE: t.nonce[3] ^= 1; break;
		case T_EXPIRES_AT: t.expires_at += 1; break;
		case T_KAK_ALGO: t.kak_algo = KAK_PSS256; break;
		case T_HASH_ALGO: t.hash_algo = H384; break;
		case T_SIG_BYTE: sig[siglen / 2] ^= 1; break;
		}
		r = appr_call(&t, sig, siglen, NULL, NULL, &au);
		ck_assert_msg(r == approval_tampers[i].code, "tampered %s: %s (%s)",
		    approval_tampers[i].name, rssp_strerror(r), au.reason ? au.reason : "");
		/* the untouched approval still passes: the refusal was about the change */
		if (i == T_SIG_BYTE)
			sig[siglen / 2] ^= 1;
		ck_assert_int_eq(appr_call(&p, sig, siglen, NULL, NULL, NULL), 0);
		free(sig);
	}
}
END_TEST

START_TEST(test_activation_refuses_each_tampered_field)
{
	struct act a, t;
	struct sam_audit au;
	uint8_t *sig;
	size_t siglen;
	int i, r;
	static const char *names[] = { "credential_id", "owner_id", "device_uuid", "key_algo",
		"subject_cn", "validity_days", "nonce", "expires_at", "kak algo", "signature" };

	for (i = 0; i < 10; i++) {
		act_init(&a, "credential-tamper", "user-t", KEY_P256, kak_rsa, KAK_PSS256);
		act_sign(&a, &sig, &siglen);
		t = a;
		switch (i) {
		case 0: strcat(t.credential_id, "x"); break;
		case 1: t.owner_id[0] ^= 1; break;
		case 2: strcat(t.device_uuid, "x"); break;
		case 3: t.key_algo = KEY_P384; break;
		case 4: strcat(t.subject_cn, "x"); break;
		case 5: t.validity_days = 3650; break;
		case 6: t.nonce[0] ^= 1; break;
		case 7: t.expires_at += 60; break;
		case 8: t.kak_algo = KAK_PSS512; break;
		case 9: sig[3] ^= 1; break;
		}
		r = act_call(&t, sig, siglen, NULL, &au);
		ck_assert_msg(r == RSSP_E_DENIED, "tampered %s: %s", names[i], rssp_strerror(r));
		ck_assert_str_eq(au.reason, "kak signature invalid");
		free(sig);
	}
}
END_TEST

START_TEST(test_activation_refuses_bad_shapes_and_expiry)
{
	struct act a;
	struct sam_audit au;
	EVP_PKEY *p384 = gen_key("EC", "P-384");

	act_init(&a, "credential-shape", "user-s", KEY_P256, kak_ec, KAK_ECDSA);
	a.expires_at = time(NULL) - 1;
	ck_assert_int_eq(activate(&a, NULL, &au), RSSP_E_EXPIRED);
	act_init(&a, "credential-shape", "user-s", 9, kak_ec, KAK_ECDSA);
	ck_assert_int_eq(activate(&a, NULL, &au), RSSP_E_UNSUPPORTED);
	ck_assert_str_eq(au.reason, "unknown key algorithm");
	act_init(&a, "credential-shape", "user-s", KEY_P256, kak_ec, KAK_ECDSA);
	a.validity_days = 3651;
	ck_assert_int_eq(activate(&a, NULL, &au), RSSP_E_INVAL);
	act_init(&a, "credential-shape", "user-s", KEY_P256, kak_ec, KAK_ECDSA);
	a.nonce_len = 15;
	ck_assert_int_eq(activate(&a, NULL, &au), RSSP_E_INVAL);
	/* a P-384 KAK is not an ECDSA P-256 KAK; an EC key is not an RSA-PSS KAK */
	act_init(&a, "credential-shape", "user-s", KEY_P256, p384, KAK_ECDSA);
	ck_assert_int_eq(activate(&a, NULL, &au), RSSP_E_INVAL);
	ck_assert_str_eq(au.reason, "kak invalid");
	act_init(&a, "credential-shape", "user-s", KEY_P256, kak_ec, KAK_ECDSA);
	{
		uint8_t *sig;
		size_t siglen;

		act_sign(&a, &sig, &siglen);
		a.kak_algo = 7;
		ck_assert_int_eq(act_call(&a, sig, siglen, NULL, &au), RSSP_E_UNSUPPORTED);
		free(sig);
	}
	act_init(&a, "credential-shape", "user-s", KEY_P256, kak_ec, KAK_ECDSA);
	memset(a.subject_cn, 'A', 100); /* commonName is at most 64 characters */
	a.subject_cn[100] = '\0';
	ck_assert_int_eq(activate(&a, NULL, &au), RSSP_E_INVAL);
	EVP_PKEY_free(p384);
}
END_TEST

START_TEST(test_activation_of_a_long_multibyte_credential_id_gets_a_valid_label)
{
	struct act a;
	Rssp__Engine__V1__ActivationResult *res = NULL;
	char id[RSSP_MAX_ID_LEN + 1];
	size_t i, n;

	/* 128 bytes: "a" then 127 / 2 two-byte characters, so the cut lands mid-character */
	id[0] = 'a';
	for (i = 1; i + 1 < RSSP_MAX_ID_LEN; i += 2) {
		id[i] = (char)0xc3;
		id[i + 1] = (char)0xa9; /* U+00E9 */
	}
	id[i] = '\0';
	ck_assert_uint_le(strlen(id), RSSP_MAX_ID_LEN);
	act_init(&a, id, "user-long", KEY_P256, kak_ec, KAK_ECDSA);
	ck_assert_int_eq(activate(&a, &res, NULL), 0);
	n = strlen(res->key_label);
	ck_assert_uint_le(n, RSSP_MAX_ID_LEN);
	ck_assert_int_eq(res->key_label[n - 9], '#');
	/* the cut kept whole characters: the prefix is 'a' plus complete pairs */
	ck_assert_uint_eq((n - 9 - 1) % 2, 0);
	ck_assert_int_eq(strncmp(res->key_label, id, n - 9), 0);
	free_act_result(res);
}
END_TEST

START_TEST(test_requests_refuse_ids_that_are_not_utf8)
{
	struct act a;
	struct appr p;
	struct sam_audit au;

	act_init(&a, "credential-\xff", "user-u", KEY_P256, kak_ec, KAK_ECDSA);
	ck_assert_int_eq(activate(&a, NULL, &au), RSSP_E_INVAL);
	act_init(&a, "credential-\xc0\xaf", "user-u", KEY_P256, kak_ec, KAK_ECDSA); /* overlong */
	ck_assert_int_eq(activate(&a, NULL, &au), RSSP_E_INVAL);
	act_init(&a, "credential-utf", "user-u", KEY_P256, kak_ec, KAK_ECDSA);
	snprintf(a.subject_cn, sizeof(a.subject_cn), "Signer \xed\xa0\x80"); /* surrogate */
	ck_assert_int_eq(activate(&a, NULL, &au), RSSP_E_INVAL);
	appr_init(&p, &creds[2], H256, 1, 1);
	snprintf(p.description, sizeof(p.description), "bad \xe2\x82");
	ck_assert_int_eq(approve(&p, NULL, NULL, &au), RSSP_E_INVAL);
}
END_TEST

START_TEST(test_activation_refuses_a_replayed_activation)
{
	struct act a;
	struct sam_audit au;
	Rssp__Engine__V1__ActivationResult *res = NULL;

	act_init(&a, "credential-replay", "user-r", KEY_P256, kak_ec, KAK_ECDSA);
	ck_assert_int_eq(activate(&a, &res, NULL), 0);
	free_act_result(res);
	ck_assert_int_eq(activate(&a, NULL, &au), RSSP_E_REPLAY);
	ck_assert_str_eq(au.reason, "activation replayed");
}
END_TEST

/* ---- a compromised gateway (issue 9): the engine decides who a key belongs to ---- */

static int
refused(struct act *a, const char *reason)
{
	struct sam_audit au;
	int r = activate(a, NULL, &au);

	ck_assert_msg(r < 0, "activation was not refused (want %s)", reason);
	ck_assert_str_eq(au.reason, reason);
	ck_assert_str_eq(au.event, "authorize.activation");
	return r;
}

START_TEST(test_gateway_cannot_activate_its_own_kak_under_a_victims_user_id)
{
	struct act a;

	/* the victim's real voucher (victim's KAK), presented with the attacker's KAK that
	 * signs the activation: the voucher names another KAK */
	act_init(&a, "credential-victim", "user-victim", KEY_P256, kak_ec, KAK_ECDSA);
	a.v_fixed = 1;
	a.kak = kak_ec2;
	ck_assert_int_eq(refused(&a, "voucher for another kak"), RSSP_E_DENIED);
	/* no voucher at all */
	act_init(&a, "credential-victim", "user-victim", KEY_P256, kak_ec2, KAK_ECDSA);
	a.no_voucher = 1;
	ck_assert_int_eq(refused(&a, "voucher missing"), RSSP_E_INVAL);
	/* a voucher of its own making for its KAK: signed by a key the engine does not
	 * trust, or claiming a trusted key's id */
	act_init(&a, "credential-victim", "user-victim", KEY_P256, kak_ec2, KAK_ECDSA);
	a.ra = ra_rogue;
	memcpy(a.v.ra_key_id, ra_rogue_id, 32);
	ck_assert_int_eq(refused(&a, "voucher key unknown"), RSSP_E_DENIED);
	act_init(&a, "credential-victim", "user-victim", KEY_P256, kak_ec2, KAK_ECDSA);
	a.ra = ra_rogue;
	ck_assert_int_eq(refused(&a, "voucher signature invalid"), RSSP_E_DENIED);
	act_init(&a, "credential-victim", "user-victim", KEY_P256, kak_ec2, KAK_ECDSA);
	a.key_id_mismatch = 1;
	ck_assert_int_eq(refused(&a, "voucher key id mismatch"), RSSP_E_INVAL);
}
END_TEST

START_TEST(test_a_voucher_is_refused_for_another_user_device_or_time)
{
	struct act a;
	int64_t now = (int64_t)time(NULL);

	/* user A's voucher (with A's KAK, which signed) used for user B's credential */
	act_init(&a, "credential-of-b", "user-a", KEY_P256, kak_ec, KAK_ECDSA);
	a.v_fixed = 1;
	snprintf(a.owner_id, sizeof(a.owner_id), "user-b");
	ck_assert_int_eq(refused(&a, "voucher for another user"), RSSP_E_DENIED);
	act_init(&a, "credential-a", "user-a", KEY_P256, kak_ec, KAK_ECDSA);
	a.v_fixed = 1;
	snprintf(a.device_uuid, sizeof(a.device_uuid), "another-phone");
	ck_assert_int_eq(refused(&a, "voucher for another device"), RSSP_E_DENIED);
	act_init(&a, "credential-a", "user-a", KEY_P256, kak_ec, KAK_ECDSA);
	a.v.issued_at = now - 10 * 86400;
	a.v.not_after = now - 1;
	ck_assert_int_eq(refused(&a, "voucher expired"), RSSP_E_EXPIRED);
	act_init(&a, "credential-a", "user-a", KEY_P256, kak_ec, KAK_ECDSA);
	a.v.issued_at = now + 3600;
	a.v.not_after = now + 7200;
	ck_assert_int_eq(refused(&a, "voucher not yet valid"), RSSP_E_EXPIRED);
	/* more than 30 days: the builder refuses it, so the bytes are made by hand */
	{
		struct act b;
		struct sam_audit au;
		uint8_t *vb = NULL, *sig = NULL, *vsig = NULL;
		size_t vblen, siglen, vsiglen;
		Rssp__Engine__V1__AuthorizeRequest req = RSSP__ENGINE__V1__AUTHORIZE_REQUEST__INIT;
		Rssp__Engine__V1__Kak kak = RSSP__ENGINE__V1__KAK__INIT;
		Rssp__Engine__V1__Activation act = RSSP__ENGINE__V1__ACTIVATION__INIT;
		Rssp__Engine__V1__Voucher vo = RSSP__ENGINE__V1__VOUCHER__INIT;
		uint8_t *spki, *buf, *out = NULL;
		size_t spkilen, len, outlen;

		act_init(&b, "credential-a", "user-a", KEY_P256, kak_ec, KAK_ECDSA);
		ck_assert_int_eq(rssp_voucher_build(&b.v, &vb, &vblen), 0);
		/* not_after (tag 6) is the 8 bytes before the last field (5 + 32 bytes) */
		{
			int64_t na = now + 31 * 86400;
			size_t off = vblen - 37 - 8, k;
			int64_t ia = now - 60;

			for (k = 0; k < 8; k++)
				vb[off + k] = (uint8_t)((uint64_t)na >> (56 - 8 * k));
			for (k = 0; k < 8; k++)
				vb[off - 13 + k] = (uint8_t)((uint64_t)ia >> (56 - 8 * k));
		}
		ra_sign(ra_ec, vb, vblen, &vsig, &vsiglen);
		act_sign(&b, &sig, &siglen);
		spki = spki_of(kak_ec, &spkilen);
		kak.public_key.data = spki;
		kak.public_key.len = spkilen;
		kak.algo = RSSP__ENGINE__V1__KAK_ALGO__KAK_ECDSA_P256_SHA256;
		act.credential_id = b.credential_id;
		act.owner_id = b.owner_id;
		act.device_uuid = b.device_uuid;
		act.key_algo = b.key_algo;
		act.validity_days = b.validity_days;
		act.nonce.data = b.nonce;
		act.nonce.len = b.nonce_len;
		act.expires_at = b.expires_at;
		vo.to_be_signed.data = vb;
		vo.to_be_signed.len = vblen;
		vo.signature.data = vsig;
		vo.signature.len = vsiglen;
		vo.ra_key_id.data = ra_ec_id;
		vo.ra_key_id.len = 32;
		act.voucher = &vo;
		req.kak = &kak;
		req.signature.data = sig;
		req.signature.len = siglen;
		req.purpose_case = RSSP__ENGINE__V1__AUTHORIZE_REQUEST__PURPOSE_ACTIVATION;
		req.activation = &act;
		len = rssp__engine__v1__authorize_request__get_packed_size(&req);
		buf = malloc(len);
		rssp__engine__v1__authorize_request__pack(&req, buf);
		ck_assert_int_eq(sam_authorize(S, buf, len, &out, &outlen, &au), RSSP_E_INVAL);
		ck_assert_str_eq(au.reason, "voucher validity too long");
		free(buf);
		free(vb);
		free(vsig);
		free(sig);
		OPENSSL_free(spki);
	}
}
END_TEST

START_TEST(test_a_subject_sent_by_the_gateway_is_refused)
{
	struct act a;
	static const char subject_cn[] = "\x2a\x07Mallory"; /* field 5, the old subject_cn */

	act_init(&a, "credential-subject", "user-m", KEY_P256, kak_ec, KAK_ECDSA);
	a.extra = subject_cn;
	a.extra_len = sizeof(subject_cn) - 1;
	ck_assert_int_eq(refused(&a, "unknown field"), RSSP_E_INVAL);
	act_init(&a, "credential-subject", "user-m", KEY_P256, kak_ec, KAK_ECDSA);
	a.v.common_name[0] = '\0';
	snprintf(a.subject_cn, sizeof(a.subject_cn), "Line\nBreak");
	ck_assert_int_eq(refused(&a, "voucher malformed"), RSSP_E_INVAL);
}
END_TEST

START_TEST(test_the_certificate_subject_is_the_vouched_subject_and_the_audit_names_the_ra_key)
{
	struct act a;
	struct sam_audit au;
	Rssp__Engine__V1__ActivationResult *res = NULL;
	const unsigned char *p;
	X509 *x;
	char buf[300], hex[65];

	/* vouched by the RSA (PSS) RA key this time */
	act_init(&a, "credential-vouched", "0b6f2c1e-5a4d-4c1e-9f00-1234567890ab", KEY_P256,
	    kak_rsa, KAK_PSS256);
	snprintf(a.subject_cn, sizeof(a.subject_cn), "Zo\xc3\xab Vouched-Name");
	a.ra = ra_rsa;
	memcpy(a.v.ra_key_id, ra_rsa_id, 32);
	ck_assert_int_eq(activate(&a, &res, &au), 0);
	ra_key_id_hex(ra_rsa_id, hex);
	ck_assert_str_eq(au.ra_key_id, hex);
	p = res->certificate.data;
	x = d2i_X509(NULL, &p, (long)res->certificate.len);
	ck_assert_ptr_nonnull(x);
	ck_assert_int_gt(X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName,
	    buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "Zo\xc3\xab Vouched-Name");
	ck_assert_int_gt(X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_serialNumber,
	    buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "0b6f2c1e-5a4d-4c1e-9f00-1234567890ab");
	ck_assert_int_eq(X509_NAME_entry_count(X509_get_subject_name(x)), 2);
	ck_assert(chain_verifies(x));
	X509_free(x);
	free_act_result(res);
	/* a refusal after the voucher was read names its key too */
	act_init(&a, "credential-vouched", "user-z", KEY_P256, kak_ec, KAK_ECDSA);
	a.v_fixed = 1;
	a.kak = kak_ec2;
	ck_assert_int_eq(activate(&a, NULL, &au), RSSP_E_DENIED);
	ra_key_id_hex(ra_ec_id, hex);
	ck_assert_str_eq(au.ra_key_id, hex);
}
END_TEST

START_TEST(test_open_refuses_an_unreadable_or_bad_ra_key_set)
{
	struct sam_config other = cfg;
	struct sam *s2 = NULL;
	char path[700];
	FILE *f;

	other.ra_keys = "/nonexistent/ra";
	ck_assert_int_eq(sam_open(&other, &s2), RSSP_E_IO);
	snprintf(path, sizeof(path), "%s/ra-bad.pem", workdir);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(PEM_write_PUBKEY(f, kak_rsa), 1);
	fputs("-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n", f);
	fclose(f);
	other.ra_keys = path;
	ck_assert_int_eq(sam_open(&other, &s2), RSSP_E_INVAL);
	ck_assert_ptr_null(s2);
}
END_TEST

START_TEST(test_approval_refuses_an_expired_approval)
{
	struct appr p;
	struct sam_audit au;

	appr_init(&p, &creds[2], H256, 1, 1);
	p.expires_at = time(NULL) - 1;
	ck_assert_int_eq(approve(&p, NULL, NULL, &au), RSSP_E_EXPIRED);
	ck_assert_str_eq(au.reason, "approval expired");
	appr_init(&p, &creds[2], H256, 1, 1);
	p.expires_at = time(NULL) + 2 * 86400;
	ck_assert_int_eq(approve(&p, NULL, NULL, &au), RSSP_E_INVAL);
}
END_TEST

/* PROTOCOL.md 3.2: the same approval again gets the SAD it minted (same bytes, same
 * count), never a second SAD; once that SAD has expired it is a replay. */
START_TEST(test_a_replayed_approval_gets_the_same_sad_then_is_refused)
{
	struct appr p;
	struct sam_audit au;
	uint8_t *sad = NULL, *sad2 = NULL;
	size_t sadlen, sadlen2;
	char id1[33];
	uint8_t h[1][64];

	appr_init(&p, &creds[0], H256, 1, 1);
	p.expires_at = (int64_t)time(NULL) + 900; /* outlives the SAD (ttl 300) */
	memcpy(h[0], p.hashes[0], 32);
	ck_assert_int_eq(approve(&p, &sad, &sadlen, &au), 0);
	ck_assert_str_eq(au.event, "authorize.approval");
	ck_assert_str_eq(au.approval_id, p.approval_id);
	ck_assert_uint_eq(strlen(au.kak_sha256), 64);
	ck_assert_uint_eq(strlen(au.sad_id), 32);
	ck_assert_ptr_null(au.reason);
	memcpy(id1, au.sad_id, sizeof(id1));
	/* the one signature of the SAD */
	ck_assert_int_eq(sign_hashes(creds[0].id, sad, sadlen, H256, S_PKCS1,
	    (const uint8_t (*)[64])h, NULL, 1, NULL, NULL), 0);
	/* the answer was lost: the same approval again */
	ck_assert_int_eq(approve(&p, &sad2, &sadlen2, &au), 0);
	ck_assert_str_eq(au.reason, "approval replayed: same sad");
	ck_assert_str_eq(au.sad_id, id1);
	ck_assert_uint_eq(sadlen2, sadlen);
	ck_assert_int_eq(memcmp(sad, sad2, sadlen), 0);
	/* same count: already used up */
	ck_assert_int_eq(sign_hashes(creds[0].id, sad2, sadlen2, H256, S_PKCS1,
	    (const uint8_t (*)[64])h, NULL, 1, NULL, &au), RSSP_E_EXHAUSTED);
	/* the SAD expired, the approval not yet: a replay */
	sam_set_clock_skew(S, 400);
	ck_assert_int_eq(approve(&p, NULL, NULL, &au), RSSP_E_REPLAY);
	ck_assert_str_eq(au.reason, "approval replayed");
	sam_set_clock_skew(S, 0);
	free(sad);
	free(sad2);
}
END_TEST

/* A call whose audit record could not be written spends nothing (sam_undo). */
START_TEST(test_undo_gives_back_a_count_and_forgets_an_unreleased_sad)
{
	struct appr p;
	struct sam_audit au, sau;
	uint8_t *sad = NULL, *sad2 = NULL;
	size_t sadlen, sadlen2;
	char id1[33];
	uint8_t h[1][64];

	appr_init(&p, &creds[0], H256, 1, 1);
	memcpy(h[0], p.hashes[0], 32);
	ck_assert_int_eq(approve(&p, &sad, &sadlen, &au), 0);
	memcpy(id1, au.sad_id, sizeof(id1));
	/* the SAD never left: forgotten, the approval may mint again (a new SAD) */
	sam_undo(S, &au);
	free(sad);
	ck_assert_int_eq(approve(&p, &sad, &sadlen, &au), 0);
	ck_assert_ptr_null(au.reason);
	ck_assert_str_ne(au.sad_id, id1);
	/* a replay answer is not undone: the SAD it repeats was released before */
	ck_assert_int_eq(approve(&p, &sad2, &sadlen2, &au), 0);
	sam_undo(S, &au);
	free(sad2);
	ck_assert_int_eq(approve(&p, &sad2, &sadlen2, &au), 0);
	ck_assert_int_eq(memcmp(sad, sad2, sadlen), 0);
	/* an activation whose answer was not released may be presented again */
	{
		struct act ac;
		Rssp__Engine__V1__ActivationResult *res = NULL;

		act_init(&ac, "credential-undo", "user-u", KEY_P256, kak_ec, KAK_ECDSA);
		ck_assert_int_eq(activate(&ac, &res, &au), 0);
		free_act_result(res);
		sam_undo(S, &au);
		ck_assert_int_eq(activate(&ac, &res, &au), 0);
		free_act_result(res);
		ck_assert_int_eq(activate(&ac, NULL, &au), RSSP_E_REPLAY);
	}
	/* the signature was not released: the count comes back */
	memset(&sau, 0, sizeof(sau));
	ck_assert_int_eq(sign_hashes(creds[0].id, sad, sadlen, H256, S_PKCS1,
	    (const uint8_t (*)[64])h, NULL, 1, NULL, &sau), 0);
	ck_assert_uint_eq(sau.signatures, 1);
	sam_undo(S, &sau);
	ck_assert_int_eq(sign_hashes(creds[0].id, sad, sadlen, H256, S_PKCS1,
	    (const uint8_t (*)[64])h, NULL, 1, NULL, NULL), 0);
	ck_assert_int_eq(sign_hashes(creds[0].id, sad, sadlen, H256, S_PKCS1,
	    (const uint8_t (*)[64])h, NULL, 1, NULL, &sau), RSSP_E_EXHAUSTED);
	free(sad);
	free(sad2);
}
END_TEST

START_TEST(test_approval_refuses_bad_shapes)
{
	struct appr p;
	struct sam_audit au;

	appr_init(&p, &creds[2], H256, 2, 2);
	p.hash_lens[1] = 31;
	ck_assert_int_eq(approve(&p, NULL, NULL, &au), RSSP_E_INVAL);
	ck_assert_str_eq(au.reason, "digest length mismatch");
	appr_init(&p, &creds[2], 9, 1, 1);
	p.hash_lens[0] = 32;
	ck_assert_int_eq(approve(&p, NULL, NULL, &au), RSSP_E_UNSUPPORTED);
	appr_init(&p, &creds[2], H256, 0, 1);
	ck_assert_int_eq(approve(&p, NULL, NULL, &au), RSSP_E_INVAL);
	appr_init(&p, &creds[2], H256, 3, 2); /* fewer signatures than distinct hashes */
	ck_assert_int_eq(approve(&p, NULL, NULL, &au), RSSP_E_INVAL);
	appr_init(&p, &creds[2], H256, 1, 0);
	ck_assert_int_eq(approve(&p, NULL, NULL, &au), RSSP_E_INVAL);
	appr_init(&p, &creds[2], H256, 1, 1001);
	ck_assert_int_eq(approve(&p, NULL, NULL, &au), RSSP_E_INVAL);
	appr_init(&p, &creds[2], H256, 1, 1);
	p.nonce_len = 8;
	ck_assert_int_eq(approve(&p, NULL, NULL, &au), RSSP_E_INVAL);
	appr_init(&p, &creds[2], H256, 1, 1);
	memset(p.approval_id, 0, sizeof(p.approval_id));
	ck_assert_int_eq(approve(&p, NULL, NULL, &au), RSSP_E_INVAL);
}
END_TEST

START_TEST(test_requests_refuse_malformed_protobuf_bytes)
{
	static const uint8_t junk[][8] = {
		{ 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff },
		{ 0x0a, 0x7f, 0x41 },           /* a string longer than the buffer */
		{ 0x12, 0x03, 0x0a, 0x01 },     /* truncated nested message */
		{ 0xf8, 0x06, 0x01 },           /* unknown field 111 */
	};
	static const size_t lens[] = { 8, 3, 4, 3 };
	struct sam_audit au;
	uint8_t *out = NULL;
	size_t outlen = 0, i;

	for (i = 0; i < 4; i++) {
		ck_assert_int_eq(sam_authorize(S, junk[i], lens[i], &out, &outlen, &au), RSSP_E_INVAL);
		ck_assert_ptr_nonnull(au.reason);
		ck_assert_int_eq(sam_sign_hash(S, junk[i], lens[i], &out, &outlen, &au), RSSP_E_INVAL);
		ck_assert_ptr_nonnull(au.reason);
	}
	/* an empty AuthorizeRequest names no purpose */
	ck_assert_int_eq(sam_authorize(S, (const uint8_t *)"", 0, &out, &outlen, &au), RSSP_E_INVAL);
	ck_assert_str_eq(au.reason, "purpose missing");
	ck_assert_ptr_null(out);
}
END_TEST

START_TEST(test_signhash_refuses_a_sad_of_another_credential)
{
	struct appr p;
	struct sam_audit au;
	size_t sadlen;
	uint8_t *sad = mint(&creds[2], &p, H256, 1, 1, &sadlen);

	ck_assert_int_eq(sign_hashes(creds[3].id, sad, sadlen, H256, S_ECDSA,
	    (const uint8_t (*)[64])p.hashes, NULL, 1, NULL, &au), RSSP_E_DENIED);
	ck_assert_str_eq(au.reason, "sad of another credential");
	/* and it was not spent */
	ck_assert_int_eq(sign_hashes(creds[2].id, sad, sadlen, H256, S_ECDSA,
	    (const uint8_t (*)[64])p.hashes, NULL, 1, NULL, NULL), 0);
	free(sad);
}
END_TEST

START_TEST(test_signhash_refuses_forged_truncated_and_garbage_sads)
{
	struct appr p;
	struct sam_audit au;
	size_t sadlen, i;
	uint8_t *sad = mint(&creds[2], &p, H256, 1, 1000, &sadlen), *f, garbage[300];
	const uint8_t (*h)[64] = (const uint8_t (*)[64])p.hashes;

	f = malloc(sadlen + 1);
	/* every single bit flip in the SAD: in the id, the counts, the hashes, the MAC */
	for (i = 0; i < sadlen; i++) {
		memcpy(f, sad, sadlen);
		f[i] ^= 0x10;
		ck_assert_msg(sign_hashes(creds[2].id, f, sadlen, H256, S_ECDSA, h, NULL, 1, NULL,
		    &au) == RSSP_E_DENIED, "flip at %zu", i);
	}
	for (i = 0; i < sadlen; i += 7)
		ck_assert_int_eq(sign_hashes(creds[2].id, sad, i, H256, S_ECDSA, h, NULL, 1, NULL,
		    &au), RSSP_E_DENIED);
	memcpy(f, sad, sadlen);
	f[sadlen] = 0;
	ck_assert_int_eq(sign_hashes(creds[2].id, f, sadlen + 1, H256, S_ECDSA, h, NULL, 1, NULL,
	    &au), RSSP_E_DENIED);
	for (i = 0; i < 20; i++) {
		RAND_bytes(garbage, sizeof(garbage));
		if (i & 1)
			memcpy(garbage, sad, 40); /* a plausible header, then noise */
		ck_assert_int_eq(sign_hashes(creds[2].id, garbage, 40 + i * 13, H256, S_ECDSA, h,
		    NULL, 1, NULL, &au), RSSP_E_DENIED);
	}
	/* the genuine one still works: forgeries spent nothing */
	ck_assert_int_eq(sign_hashes(creds[2].id, sad, sadlen, H256, S_ECDSA, h, NULL, 1, NULL, NULL), 0);
	free(f);
	free(sad);
}
END_TEST

START_TEST(test_signhash_refuses_an_expired_sad)
{
	struct appr p;
	struct sam_audit au;
	size_t sadlen;
	uint8_t *sad = mint(&creds[2], &p, H256, 1, 2, &sadlen);
	const uint8_t (*h)[64] = (const uint8_t (*)[64])p.hashes;

	ck_assert_int_eq(sign_hashes(creds[2].id, sad, sadlen, H256, S_ECDSA, h, NULL, 1, NULL, NULL), 0);
	sam_set_clock_skew(S, (int64_t)cfg.sad_ttl + 1);
	ck_assert_int_eq(sign_hashes(creds[2].id, sad, sadlen, H256, S_ECDSA, h, NULL, 1, NULL, &au),
	    RSSP_E_EXPIRED);
	ck_assert_str_eq(au.reason, "sad expired");
	sam_set_clock_skew(S, 0);
	free(sad);
}
END_TEST

START_TEST(test_signhash_refuses_a_hash_not_in_the_sad)
{
	struct appr p;
	struct sam_audit au;
	size_t sadlen;
	uint8_t *sad = mint(&creds[0], &p, H256, 2, 2, &sadlen);
	uint8_t h[2][64];

	memcpy(h[0], p.hashes[0], 64);
	RAND_bytes(h[1], 64);
	ck_assert_int_eq(sign_hashes(creds[0].id, sad, sadlen, H256, S_PKCS1,
	    (const uint8_t (*)[64])h, NULL, 2, NULL, &au), RSSP_E_DENIED);
	ck_assert_str_eq(au.reason, "hash not in sad");
	free(sad);
}
END_TEST

START_TEST(test_signhash_refuses_bad_algorithms_and_digest_lengths)
{
	struct appr p;
	struct sam_audit au;
	size_t sadlen, lens[1] = { 31 };
	uint8_t *sad = mint(&creds[0], &p, H256, 1, 5, &sadlen);
	uint8_t *esad;
	size_t esadlen;
	struct appr ep;
	const uint8_t (*h)[64] = (const uint8_t (*)[64])p.hashes;

	ck_assert_int_eq(sign_hashes(creds[0].id, sad, sadlen, H256, S_PKCS1, h, lens, 1, NULL, &au),
	    RSSP_E_INVAL);
	ck_assert_str_eq(au.reason, "digest length mismatch");
	ck_assert_int_eq(sign_hashes(creds[0].id, sad, sadlen, 0, S_PKCS1, h, NULL, 1, NULL, &au),
	    RSSP_E_UNSUPPORTED);
	ck_assert_str_eq(au.reason, "unknown hash algorithm");
	ck_assert_int_eq(sign_hashes(creds[0].id, sad, sadlen, H256, 4, h, NULL, 1, NULL, &au),
	    RSSP_E_UNSUPPORTED);
	ck_assert_str_eq(au.reason, "unknown sign algorithm");
	ck_assert_int_eq(sign_hashes(creds[0].id, sad, sadlen, H256, S_ECDSA, h, NULL, 1, NULL, &au),
	    RSSP_E_UNSUPPORTED);
	ck_assert_str_eq(au.reason, "sign algorithm does not fit key");
	/* SHA-384 digests against a SHA-256 SAD */
	ck_assert_int_eq(sign_hashes(creds[0].id, sad, sadlen, H384, S_PKCS1, h, NULL, 1, NULL, &au),
	    RSSP_E_DENIED);
	ck_assert_int_eq(sign_hashes(creds[0].id, sad, sadlen, H256, S_PKCS1, h, NULL, 0, NULL, &au),
	    RSSP_E_INVAL);
	esad = mint(&creds[3], &ep, H384, 1, 1, &esadlen);
	ck_assert_int_eq(sign_hashes(creds[3].id, esad, esadlen, H384, S_PSS,
	    (const uint8_t (*)[64])ep.hashes, NULL, 1, NULL, &au), RSSP_E_UNSUPPORTED);
	/* none of these spent the counts */
	ck_assert_int_eq(sign_hashes(creds[3].id, esad, esadlen, H384, S_ECDSA,
	    (const uint8_t (*)[64])ep.hashes, NULL, 1, NULL, NULL), 0);
	ck_assert_int_eq(sign_hashes(creds[0].id, sad, sadlen, H256, S_PSS, h, NULL, 1, NULL, NULL), 0);
	free(sad);
	free(esad);
}
END_TEST

START_TEST(test_signhash_refuses_a_sad_used_beyond_its_count_in_one_call)
{
	struct appr p;
	struct sam_audit au;
	size_t sadlen;
	uint8_t *sad = mint(&creds[2], &p, H256, 2, 2, &sadlen);
	uint8_t h[3][64];

	memcpy(h[0], p.hashes[0], 64);
	memcpy(h[1], p.hashes[1], 64);
	memcpy(h[2], p.hashes[0], 64);
	ck_assert_int_eq(sign_hashes(creds[2].id, sad, sadlen, H256, S_ECDSA,
	    (const uint8_t (*)[64])h, NULL, 3, NULL, &au), RSSP_E_EXHAUSTED);
	ck_assert_str_eq(au.reason, "sad exhausted");
	ck_assert_uint_eq(au.signatures, 0);
	/* refused whole: both signatures are still there */
	ck_assert_int_eq(sign_hashes(creds[2].id, sad, sadlen, H256, S_ECDSA,
	    (const uint8_t (*)[64])h, NULL, 2, NULL, NULL), 0);
	ck_assert_int_eq(sign_hashes(creds[2].id, sad, sadlen, H256, S_ECDSA,
	    (const uint8_t (*)[64])h, NULL, 1, NULL, &au), RSSP_E_EXHAUSTED);
	free(sad);
}
END_TEST

START_TEST(test_signhash_refuses_a_sad_used_beyond_its_count_over_several_calls)
{
	struct appr p;
	struct sam_audit au;
	size_t sadlen;
	uint8_t *sad = mint(&creds[1], &p, H512, 1, 3, &sadlen);
	const uint8_t (*h)[64] = (const uint8_t (*)[64])p.hashes;
	uint8_t two[2][64];

	memcpy(two[0], p.hashes[0], 64);
	memcpy(two[1], p.hashes[0], 64);
	ck_assert_int_eq(sign_hashes(creds[1].id, sad, sadlen, H512, S_PSS, h, NULL, 1, NULL, NULL), 0);
	ck_assert_int_eq(sign_hashes(creds[1].id, sad, sadlen, H512, S_PSS,
	    (const uint8_t (*)[64])two, NULL, 2, NULL, NULL), 0);
	ck_assert_int_eq(sign_hashes(creds[1].id, sad, sadlen, H512, S_PKCS1, h, NULL, 1, NULL, &au),
	    RSSP_E_EXHAUSTED);
	free(sad);
}
END_TEST

struct race {
	const uint8_t *sad;
	size_t sadlen;
	const uint8_t (*h)[64];
	int ok, exhausted, other;
};

static void *
race_thread(void *arg)
{
	struct race *r = arg;
	Rssp__Engine__V1__SignHashRequest req = RSSP__ENGINE__V1__SIGN_HASH_REQUEST__INIT;
	ProtobufCBinaryData hv;
	struct sam_audit au;
	uint8_t buf[4096], *out;
	size_t len, outlen;
	int i, rc;

	req.credential_id = creds[2].id;
	req.sad.data = (uint8_t *)r->sad;
	req.sad.len = r->sadlen;
	req.hash_algo = (Rssp__Engine__V1__HashAlgo)H256;
	req.sign_algo = (Rssp__Engine__V1__SignAlgo)S_ECDSA;
	hv.data = (uint8_t *)r->h[0];
	hv.len = 32;
	req.hashes = &hv;
	req.n_hashes = 1;
	len = rssp__engine__v1__sign_hash_request__pack(&req, buf);
	for (i = 0; i < 10; i++) {
		out = NULL;
		rc = sam_sign_hash(S, buf, len, &out, &outlen, &au);
		if (rc == 0)
			r->ok++;
		else if (rc == RSSP_E_EXHAUSTED)
			r->exhausted++;
		else
			r->other++;
		free(out);
	}
	return NULL;
}

START_TEST(test_signhash_counts_exactly_under_concurrent_callers)
{
	struct appr p;
	size_t sadlen;
	uint8_t *sad;
	struct race rs[4];
	pthread_t t[4];
	int i, ok = 0, ex = 0, other = 0;

	/* a SAD of 30 signatures presented for the first time by four threads at once */
	sad = mint(&creds[2], &p, H256, 1, 30, &sadlen);
	for (i = 0; i < 4; i++) {
		rs[i] = (struct race){ sad, sadlen, (const uint8_t (*)[64])p.hashes, 0, 0, 0 };
		ck_assert_int_eq(pthread_create(&t[i], NULL, race_thread, &rs[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		ok += rs[i].ok;
		ex += rs[i].exhausted;
		other += rs[i].other;
	}
	ck_assert_int_eq(ok, 30);
	ck_assert_int_eq(ex, 10);
	ck_assert_int_eq(other, 0);
	free(sad);
}
END_TEST

START_TEST(test_reactivation_with_another_kak_yields_a_new_key_and_keeps_old_binding_to_old_kak)
{
	struct act a;
	struct appr p;
	struct cred neu;
	Rssp__Engine__V1__ActivationResult *res = NULL;
	const unsigned char *der;
	uint8_t *sad = NULL;
	size_t sadlen;

	/* credential-2 (P-256, bound to kak_ec) moves to a new phone with kak_ec2 */
	act_init(&a, creds[2].id, creds[2].owner, KEY_P256, kak_ec2, KAK_ECDSA);
	ck_assert_int_eq(activate(&a, &res, NULL), 0);
	neu = creds[2];
	snprintf(neu.label, sizeof(neu.label), "%s", res->key_label);
	memcpy(neu.binding, res->binding.data, 32);
	neu.kak = kak_ec2;
	der = res->certificate.data;
	neu.cert = d2i_X509(NULL, &der, (long)res->certificate.len);
	ck_assert_ptr_nonnull(neu.cert);
	ck_assert_str_ne(neu.label, creds[2].label);
	ck_assert_int_ne(X509_cmp(neu.cert, creds[2].cert), 0);
	ck_assert_int_ne(memcmp(neu.binding, creds[2].binding, 32), 0);
	free_act_result(res);

	/* the old binding verifies with the old KAK only */
	appr_init(&p, &creds[2], H256, 1, 1);
	ck_assert_int_eq(approve(&p, NULL, NULL, NULL), 0);
	appr_init(&p, &creds[2], H256, 1, 1);
	p.kak = kak_ec2;
	ck_assert_int_eq(approve(&p, NULL, NULL, NULL), RSSP_E_DENIED);
	/* the old key's label with the new binding, or the new key with the old KAK: refused */
	appr_init(&p, &neu, H256, 1, 1);
	snprintf(p.key_label, sizeof(p.key_label), "%s", creds[2].label);
	ck_assert_int_eq(approve(&p, NULL, NULL, NULL), RSSP_E_DENIED);
	appr_init(&p, &neu, H256, 1, 1);
	p.kak = kak_ec;
	ck_assert_int_eq(approve(&p, NULL, NULL, NULL), RSSP_E_DENIED);
	/* the new key signs under the new KAK, verified by the new certificate */
	{
		Rssp__Engine__V1__SignHashResponse *resp = NULL;

		sad = mint(&neu, &p, H256, 1, 1, &sadlen);
		ck_assert_int_eq(sign_hashes(neu.id, sad, sadlen, H256, S_ECDSA,
		    (const uint8_t (*)[64])p.hashes, NULL, 1, &resp, NULL), 0);
		ck_assert(verify_with_cert(neu.cert, S_ECDSA, H256, p.hashes[0],
		    resp->signatures[0].data, resp->signatures[0].len));
		ck_assert(!verify_with_cert(creds[2].cert, S_ECDSA, H256, p.hashes[0],
		    resp->signatures[0].data, resp->signatures[0].len));
		ck_assert(chain_verifies(neu.cert));
		rssp__engine__v1__sign_hash_response__free_unpacked(resp, NULL);
	}
	free(sad);
	X509_free(neu.cert);
}
END_TEST

/* Finds the token's slot through the module's own function list, independently of
 * the engine. */
static CK_FUNCTION_LIST *
module_slot(CK_SLOT_ID *slotp)
{
	void *dl = dlopen(module, RTLD_NOW | RTLD_NOLOAD);
	CK_C_GetFunctionList gfl;
	CK_FUNCTION_LIST *fl = NULL;
	CK_SLOT_ID slots[16];
	CK_ULONG n = 16, i;
	CK_TOKEN_INFO ti;
	char want[32];

	ck_assert_ptr_nonnull(dl);
	gfl = (CK_C_GetFunctionList)dlsym(dl, "C_GetFunctionList");
	ck_assert_ptr_nonnull(gfl);
	ck_assert_int_eq(gfl(&fl), CKR_OK);
	dlclose(dl);
	ck_assert_int_eq(fl->C_GetSlotList(CK_TRUE, slots, &n), CKR_OK);
	memset(want, ' ', sizeof(want));
	memcpy(want, TOKEN, strlen(TOKEN));
	for (i = 0; i < n; i++) {
		if (fl->C_GetTokenInfo(slots[i], &ti) == CKR_OK &&
		    memcmp(ti.label, want, sizeof(want)) == 0) {
			*slotp = slots[i];
			return fl;
		}
	}
	ck_abort_msg("token slot not found");
	return NULL;
}

START_TEST(test_signing_recovers_after_all_sessions_are_closed_and_logged_out)
{
	CK_SLOT_ID slot;
	CK_FUNCTION_LIST *fl = module_slot(&slot);
	struct appr p;
	size_t sadlen, sadlen2;
	uint8_t *sad = mint(&creds[0], &p, H256, 1, 4, &sadlen), *sad2;
	const uint8_t (*h)[64] = (const uint8_t (*)[64])p.hashes;
	struct appr p2;
	Rssp__Engine__V1__SignHashResponse *resp = NULL;
	int round;

	ck_assert_int_eq(sign_hashes(creds[0].id, sad, sadlen, H256, S_PKCS1, h, NULL, 1, NULL, NULL), 0);
	for (round = 0; round < 2; round++) {
		/* every session of the engine is gone and the token is logged out */
		ck_assert_int_eq(fl->C_CloseAllSessions(slot), CKR_OK);
		ck_assert_int_eq(sign_hashes(creds[0].id, sad, sadlen, H256, S_PKCS1, h, NULL, 1,
		    &resp, NULL), 0);
		ck_assert(verify_with_cert(creds[0].cert, S_PKCS1, H256, p.hashes[0],
		    resp->signatures[0].data, resp->signatures[0].len));
		rssp__engine__v1__sign_hash_response__free_unpacked(resp, NULL);
	}
	/* the HMAC key works again too: a new approval and a never-cached SAD */
	ck_assert_int_eq(fl->C_CloseAllSessions(slot), CKR_OK);
	sad2 = mint(&creds[3], &p2, H512, 1, 1, &sadlen2);
	ck_assert_int_eq(sign_hashes(creds[3].id, sad2, sadlen2, H512, S_ECDSA,
	    (const uint8_t (*)[64])p2.hashes, NULL, 1, NULL, NULL), 0);
	free(sad);
	free(sad2);
}
END_TEST

/* Valid requests with random bytes changed, cut or appended: every answer is a code,
 * never a crash (ASan and UBSan watch this in the sanitizer build). */
START_TEST(test_mutated_requests_are_refused_without_crashing)
{
	struct appr p;
	struct sam_audit au;
	uint8_t *sig, *req, *m, *out, *sad;
	size_t siglen, reqlen, sadlen, outlen, n, k, i;
	Rssp__Engine__V1__SignHashRequest sr = RSSP__ENGINE__V1__SIGN_HASH_REQUEST__INIT;
	ProtobufCBinaryData hv[2];
	uint8_t sreq[1024];
	size_t sreqlen;
	char first_id[33] = "";
	int r, ok = 0;

	srand(20261128);
	appr_init(&p, &creds[2], H256, 2, 2);
	appr_sign(&p, &sig, &siglen);
	appr_pack(&p, sig, siglen, &req, &reqlen);
	m = malloc(reqlen + 16);
	for (i = 0; i < 1500; i++) {
		memcpy(m, req, reqlen);
		n = reqlen;
		for (k = 0; k < 1 + (size_t)rand() % 4; k++)
			m[(size_t)rand() % n] ^= (uint8_t)(1 + rand() % 255);
		if (i % 5 == 0)
			n = (size_t)rand() % reqlen;
		else if (i % 7 == 0)
			n += (size_t)rand() % 16;
		out = NULL;
		memset(&au, 0, sizeof(au));
		r = sam_authorize(S, m, n, &out, &outlen, &au);
		ck_assert(r == 0 || (r < 0 && au.reason != NULL));
		if (r == 0) {
			if (ok == 0)
				memcpy(first_id, au.sad_id, sizeof(first_id));
			else /* the same approval again: the same SAD */
				ck_assert_str_eq(au.sad_id, first_id);
		}
		ok += r == 0;
		free(out);
	}
	free(m);
	free(req);
	free(sig);
	/* (a change in request_id alone keeps the approval valid: at most one SAD is
	 * minted, the others that pass are answered with it) */

	sad = mint(&creds[2], &p, H256, 2, 1000, &sadlen);
	sr.credential_id = creds[2].id;
	sr.sad.data = sad;
	sr.sad.len = sadlen;
	sr.hash_algo = (Rssp__Engine__V1__HashAlgo)H256;
	sr.sign_algo = (Rssp__Engine__V1__SignAlgo)S_ECDSA;
	hv[0].data = p.hashes[0];
	hv[0].len = 32;
	hv[1].data = p.hashes[1];
	hv[1].len = 32;
	sr.hashes = hv;
	sr.n_hashes = 2;
	sreqlen = rssp__engine__v1__sign_hash_request__pack(&sr, sreq);
	m = malloc(sreqlen + 16);
	for (i = 0; i < 1500; i++) {
		memcpy(m, sreq, sreqlen);
		n = sreqlen;
		for (k = 0; k < 1 + (size_t)rand() % 4; k++)
			m[(size_t)rand() % n] ^= (uint8_t)(1 + rand() % 255);
		if (i % 5 == 0)
			n = (size_t)rand() % sreqlen;
		out = NULL;
		r = sam_sign_hash(S, m, n, &out, &outlen, &au);
		ck_assert(r == 0 || (r < 0 && au.reason != NULL));
		free(out);
	}
	free(m);
	free(sad);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("sam");
	TCase *tc = tcase_create("token");
	SRunner *sr;
	int failed;

	tcase_add_unchecked_fixture(tc, setup_token, teardown_token);
	tcase_add_test(tc, test_init_refuses_an_initialised_token_without_force);
	tcase_add_test(tc, test_open_and_init_refuse_a_pin_file_readable_by_others);
	tcase_add_test(tc, test_open_refuses_an_unknown_token);
	tcase_add_test(tc, test_activation_issues_a_chained_certificate_for_every_key_type);
	tcase_add_test(tc, test_signhash_signs_with_every_fitting_algorithm_and_openssl_verifies);
	tcase_add_test(tc, test_signhash_pss_takes_any_salt_up_to_the_keys_maximum);
	tcase_add_test(tc, test_a_thousand_hashes_fit_the_message_limits_and_each_can_be_signed);
	tcase_add_test(tc, test_approval_refuses_a_forged_binding);
	tcase_add_test(tc, test_approval_refuses_another_kak_with_a_valid_signature);
	tcase_add_test(tc, test_approval_refuses_a_binding_of_another_credential_or_key);
	tcase_add_test(tc, test_approval_refuses_each_tampered_field);
	tcase_add_test(tc, test_activation_refuses_each_tampered_field);
	tcase_add_test(tc, test_activation_refuses_bad_shapes_and_expiry);
	tcase_add_test(tc, test_activation_refuses_a_replayed_activation);
	tcase_add_test(tc, test_activation_of_a_long_multibyte_credential_id_gets_a_valid_label);
	tcase_add_test(tc, test_requests_refuse_ids_that_are_not_utf8);
	tcase_add_test(tc, test_gateway_cannot_activate_its_own_kak_under_a_victims_user_id);
	tcase_add_test(tc, test_a_voucher_is_refused_for_another_user_device_or_time);
	tcase_add_test(tc, test_a_subject_sent_by_the_gateway_is_refused);
	tcase_add_test(tc, test_the_certificate_subject_is_the_vouched_subject_and_the_audit_names_the_ra_key);
	tcase_add_test(tc, test_open_refuses_an_unreadable_or_bad_ra_key_set);
	tcase_add_test(tc, test_approval_refuses_an_expired_approval);
	tcase_add_test(tc, test_a_replayed_approval_gets_the_same_sad_then_is_refused);
	tcase_add_test(tc, test_undo_gives_back_a_count_and_forgets_an_unreleased_sad);
	tcase_add_test(tc, test_approval_refuses_bad_shapes);
	tcase_add_test(tc, test_requests_refuse_malformed_protobuf_bytes);
	tcase_add_test(tc, test_signhash_refuses_a_sad_of_another_credential);
	tcase_add_test(tc, test_signhash_refuses_forged_truncated_and_garbage_sads);
	tcase_add_test(tc, test_signhash_refuses_an_expired_sad);
	tcase_add_test(tc, test_signhash_refuses_a_hash_not_in_the_sad);
	tcase_add_test(tc, test_signhash_refuses_bad_algorithms_and_digest_lengths);
	tcase_add_test(tc, test_signhash_refuses_a_sad_used_beyond_its_count_in_one_call);
	tcase_add_test(tc, test_signhash_refuses_a_sad_used_beyond_its_count_over_several_calls);
	tcase_add_test(tc, test_signhash_counts_exactly_under_concurrent_callers);
	tcase_add_test(tc, test_reactivation_with_another_kak_yields_a_new_key_and_keeps_old_binding_to_old_kak);
	tcase_add_test(tc, test_signing_recovers_after_all_sessions_are_closed_and_logged_out);
	tcase_add_test(tc, test_mutated_requests_are_refused_without_crashing);
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
