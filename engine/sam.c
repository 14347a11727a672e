#include "sam.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include <p11-kit/pkcs11.h>
#include <rssp/engine/v1/engine.pb-c.h>

#include "binding.h"
#include "hsm.h"
#include "kak.h"
#include "kvmap.h"
#include "rssp_log.h"
#include "sad.h"
#include "x509.h"

#define PURGE_INTERVAL 30
#define MAX_APPROVAL_HORIZON 86400      /* an approval may not be valid longer than a day */
#define MAX_ACTIVATION_HORIZON (7 * 86400) /* nor an activation longer than a week */
#define MAX_SIG_LEN 1024
#define PUB_CACHE_MAX 20000 /* parsed credential keys; refilled from the token on a miss */

enum { SIGN_PKCS1 = 1, SIGN_PSS = 2, SIGN_ECDSA = 3 };

struct sad_entry {
	uint8_t *wire;        /* the verified SAD bytes, compared on later use */
	size_t wirelen;
	struct sad *sad;
	uint32_t used;
};

struct pub_entry {
	EVP_PKEY *pkey;
};

/* Verification contexts set up for one key and one algorithm, kept for reuse: a context
 * serves one call at a time (taken out of the list while in use). */
#define VCTX_PER_KEY 4
#define VCTX_CACHE_MAX 4096
struct vctx_entry {
	EVP_PKEY *pkey;            /* the key the contexts were made for (each holds a ref) */
	EVP_PKEY_CTX *ctx[VCTX_PER_KEY];
	unsigned n;
};

struct sam {
	struct hsm *hsm;
	unsigned sad_ttl;
	int64_t skew;
	X509 *ca;
	uint8_t *ca_der;
	size_t ca_derlen;
	struct kak_cache *kaks;

	pthread_mutex_t lock;      /* sads, replay, pubs, next_purge */
	struct kvmap *sads;        /* SAD id -> struct sad_entry */
	struct kvmap *replay;      /* SHA-256(approval id, nonce) -> int64_t expiry */
	struct kvmap *pubs;        /* key label -> struct pub_entry */
	struct kvmap *vctxs;       /* key label, sign algo, hash algo -> struct vctx_entry */
	EVP_MD *sha256;            /* fetched once: no implicit fetch per digest */
	int64_t next_purge;
};

static int64_t
sam_now(const struct sam *s)
{
	return (int64_t)time(NULL) + s->skew;
}

void
sam_set_clock_skew(struct sam *s, int64_t seconds)
{
	s->skew = seconds;
}

static void
hex(char *out, const uint8_t *in, size_t n)
{
	static const char d[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = d[in[i] >> 4];
		out[2 * i + 1] = d[in[i] & 15];
	}
	out[2 * n] = '\0';
}

static void
audit_str(char *dst, const char *src)
{
	snprintf(dst, RSSP_MAX_ID_LEN + 1, "%s", src != NULL ? src : "");
}

/* Well-formed UTF-8 (no overlongs, no surrogates, at most U+10FFFF): ids end up in
 * PKCS#11 labels and certificate names. */
static int
utf8_ok(const char *str)
{
	const unsigned char *p = (const unsigned char *)str;
	unsigned c, n, i;

	while (*p != '\0') {
		if (*p < 0x80) {
			p++;
			continue;
		}
		if ((*p & 0xe0) == 0xc0 && *p >= 0xc2)
			n = 1, c = *p & 0x1f;
		else if ((*p & 0xf0) == 0xe0)
			n = 2, c = *p & 0x0f;
		else if ((*p & 0xf8) == 0xf0 && *p <= 0xf4)
			n = 3, c = *p & 0x07;
		else
			return 0;
		for (i = 1; i <= n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return 0;
			c = (c << 6) | (p[i] & 0x3f);
		}
		if ((n == 2 && (c < 0x800 || (c >= 0xd800 && c <= 0xdfff))) ||
		    (n == 3 && (c < 0x10000 || c > 0x10ffff)))
			return 0;
		p += n + 1;
	}
	return 1;
}

static int
id_ok(const char *s)
{
	size_t n = s != NULL ? strlen(s) : 0;

	return n >= 1 && n <= RSSP_MAX_ID_LEN && utf8_ok(s);
}

static int
text_ok(const char *s)
{
	return s != NULL && strlen(s) <= RSSP_MAX_TEXT_LEN && utf8_ok(s);
}

static const char *
key_name(int key_algo)
{
	switch (key_algo) {
	case 1: return "rsa-2048";
	case 2: return "rsa-3072";
	case 3: return "ec-p256";
	case 4: return "ec-p384";
	default: return NULL;
	}
}

static const char *
sign_name(int sign_algo, int hash_algo)
{
	static const char *names[3][3] = {
		{ "rsa-pkcs1-sha256", "rsa-pkcs1-sha384", "rsa-pkcs1-sha512" },
		{ "rsa-pss-sha256", "rsa-pss-sha384", "rsa-pss-sha512" },
		{ "ecdsa-sha256", "ecdsa-sha384", "ecdsa-sha512" },
	};

	if (sign_algo < 1 || sign_algo > 3 || hash_algo < 1 || hash_algo > 3)
		return NULL;
	return names[sign_algo - 1][hash_algo - 1];
}

static const char *
kak_name(int kak_algo)
{
	switch (kak_algo) {
	case 1: return "rsa-pss-sha256";
	case 2: return "rsa-pss-sha512";
	case 3: return "ecdsa-sha256";
	default: return NULL;
	}
}

static const EVP_MD *
hash_md(int hash_algo)
{
	switch (hash_algo) {
	case 1: return EVP_sha256();
	case 2: return EVP_sha384();
	default: return EVP_sha512();
	}
}

/* SHA-256 over the concatenation of n byte strings (audit summaries, replay keys). */
static void
hashes_sum(const struct sam *s, const ProtobufCBinaryData *v, size_t n, uint8_t out[32])
{
	EVP_MD_CTX *c;
	size_t i;

	memset(out, 0, 32);
	if ((c = EVP_MD_CTX_new()) == NULL)
		return;
	if (EVP_DigestInit_ex(c, s->sha256 != NULL ? s->sha256 : EVP_sha256(), NULL) == 1) {
		for (i = 0; i < n; i++)
			EVP_DigestUpdate(c, v[i].data, v[i].len);
		EVP_DigestFinal_ex(c, out, NULL);
	}
	EVP_MD_CTX_free(c);
}

static void
sad_entry_free(void *v)
{
	struct sad_entry *e = v;

	if (e == NULL)
		return;
	free(e->wire);
	sad_free(e->sad);
	free(e);
}

static void
pub_entry_free(void *v)
{
	struct pub_entry *e = v;

	if (e == NULL)
		return;
	EVP_PKEY_free(e->pkey);
	free(e);
}

static void
vctx_entry_free(void *v)
{
	struct vctx_entry *e = v;
	unsigned i;

	if (e == NULL)
		return;
	for (i = 0; i < e->n; i++)
		EVP_PKEY_CTX_free(e->ctx[i]);
	EVP_PKEY_free(e->pkey);
	free(e);
}

static int
purge_any(void *arg, const void *key, size_t keylen, void *val)
{
	return 1;
}

static int
sad_expired(void *arg, const void *key, size_t keylen, void *val)
{
	return ((struct sad_entry *)val)->sad->expires_at < *(int64_t *)arg;
}

static int
replay_expired(void *arg, const void *key, size_t keylen, void *val)
{
	return *(int64_t *)val < *(int64_t *)arg;
}

/* Drops SADs and replay records past their expiry. Called with s->lock held. */
static void
purge_locked(struct sam *s, int64_t now)
{
	if (now < s->next_purge)
		return;
	s->next_purge = now + PURGE_INTERVAL;
	kvmap_purge(s->sads, sad_expired, &now, sad_entry_free);
	kvmap_purge(s->replay, replay_expired, &now, free);
}

/* Records (domain, id, nonce) until expires_at; RSSP_E_REPLAY when it is recorded
 * already. *keyp gets the record's key for replay_forget. */
static int
replay_record(struct sam *s, const char *domain, const char *id,
    const ProtobufCBinaryData *nonce, int64_t expires_at, int64_t now, uint8_t keyp[32])
{
	ProtobufCBinaryData parts[3] = {
		{ strlen(domain) + 1, (uint8_t *)domain },
		{ strlen(id) + 1, (uint8_t *)id },
		*nonce,
	};
	int64_t *exp;
	int r;

	hashes_sum(s, parts, 3, keyp);
	if ((exp = malloc(sizeof(*exp))) == NULL)
		return RSSP_E_NOMEM;
	*exp = expires_at;
	pthread_mutex_lock(&s->lock);
	purge_locked(s, now);
	r = kvmap_put(s->replay, keyp, 32, exp);
	pthread_mutex_unlock(&s->lock);
	if (r != 0) {
		free(exp);
		return r == RSSP_E_CONFLICT ? RSSP_E_REPLAY : r;
	}
	return 0;
}

static void
replay_forget(struct sam *s, const uint8_t key[32])
{
	pthread_mutex_lock(&s->lock);
	free(kvmap_del(s->replay, key, 32));
	pthread_mutex_unlock(&s->lock);
}

static int
check_cfg(const struct sam_config *cfg)
{
	if (cfg == NULL || cfg->module_path == NULL || cfg->token_label == NULL ||
	    cfg->pin_file == NULL) {
		log_error("incomplete engine configuration");
		return RSSP_E_INVAL;
	}
	return 0;
}

int
sam_init_token(const struct sam_config *cfg, const struct sam_init_opts *opts)
{
	struct hsm *h = NULL;
	struct hsm_session *ss = NULL;
	X509_NAME *subject = NULL;
	X509 *ca = NULL;
	EVP_PKEY *pub = NULL;
	uint8_t id[8], *der = NULL;
	int derlen, r, e1, e2, e3, made = 0;
	unsigned days;

	if ((r = check_cfg(cfg)) != 0)
		return r;
	days = opts != NULL && opts->ca_validity_days != 0 ? opts->ca_validity_days : 3650;
	if ((r = x509_parse_subject(opts != NULL && opts->ca_subject != NULL ?
	    opts->ca_subject : X509_DEFAULT_CA_SUBJECT, &subject)) != 0) {
		log_error("ca subject is not K=V,K=V");
		goto out;
	}
	if (days > 36500) {
		r = RSSP_E_INVAL;
		goto out;
	}
	if ((r = hsm_open(cfg->module_path, cfg->token_label, cfg->pin_file, 1, &h)) != 0)
		goto out;
	ss = hsm_session_get(h);
	e1 = hsm_exists(h, ss, SAM_MAC_LABEL, 0);
	e2 = hsm_exists(h, ss, SAM_CA_LABEL, 0);
	if (e1 < 0 || e2 < 0) {
		r = RSSP_E_HSM;
		goto out;
	}
	if (e1 || e2) {
		if (opts == NULL || !opts->force) {
			log_error("token %.100s is already initialised", cfg->token_label);
			r = RSSP_E_CONFLICT;
			goto out;
		}
		log_warn("replacing the mac key and the ca of token %.100s", cfg->token_label);
		if ((r = hsm_destroy_label(h, ss, SAM_MAC_LABEL)) != 0 ||
		    (r = hsm_destroy_label(h, ss, SAM_CA_LABEL)) != 0)
			goto out;
	}
	if (RAND_bytes(id, sizeof(id)) != 1) {
		r = RSSP_E_CRYPTO;
		goto out;
	}
	made = 1;
	if ((r = hsm_generate_mac_key(h, ss, SAM_MAC_LABEL)) != 0 ||
	    (r = hsm_generate_key_pair(h, ss, 4, SAM_CA_LABEL, id, sizeof(id), &pub)) != 0 ||
	    (r = x509_make_ca(h, ss, SAM_CA_LABEL, pub, subject, days, &ca)) != 0)
		goto out;
	if ((derlen = i2d_X509(ca, &der)) <= 0) {
		r = RSSP_E_CRYPTO;
		goto out;
	}
	if ((r = hsm_store_certificate(h, ss, SAM_CA_LABEL, id, sizeof(id), der, (size_t)derlen)) != 0)
		goto out;
	e3 = hsm_exists(h, ss, SAM_CA_LABEL, HSM_CERTIFICATE);
	if (e3 != 1) {
		r = RSSP_E_HSM;
		goto out;
	}
	log_info("token %.100s initialised: mac key %s, ca %s (ec p-384)", cfg->token_label,
	    SAM_MAC_LABEL, SAM_CA_LABEL);
	made = 0;
	r = 0;
out:
	/* Half an initialisation is removed: a later init needs no force. */
	if (made && (hsm_destroy_label(h, ss, SAM_MAC_LABEL) != 0 ||
	    hsm_destroy_label(h, ss, SAM_CA_LABEL) != 0))
		log_error("cannot remove a half-made initialisation");
	OPENSSL_free(der);
	X509_free(ca);
	EVP_PKEY_free(pub);
	X509_NAME_free(subject);
	hsm_session_put(h, ss);
	hsm_free(h);
	return r;
}

int
sam_open(const struct sam_config *cfg, struct sam **samp)
{
	struct sam *s = NULL;
	struct hsm_session *ss = NULL;
	const unsigned char *p;
	int r;

	if ((r = check_cfg(cfg)) != 0)
		return r;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return RSSP_E_NOMEM;
	pthread_mutex_init(&s->lock, NULL);
	s->sad_ttl = cfg->sad_ttl != 0 ? cfg->sad_ttl : 300;
	r = RSSP_E_NOMEM;
	if ((s->kaks = kak_cache_new()) == NULL || (s->sads = kvmap_new()) == NULL ||
	    (s->replay = kvmap_new()) == NULL || (s->pubs = kvmap_new()) == NULL ||
	    (s->vctxs = kvmap_new()) == NULL)
		goto out;
	s->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL); /* NULL: hashes_sum falls back */
	if ((r = hsm_open(cfg->module_path, cfg->token_label, cfg->pin_file,
	    cfg->sessions != 0 ? cfg->sessions : 1, &s->hsm)) != 0)
		goto out;
	ss = hsm_session_get(s->hsm);
	if (hsm_exists(s->hsm, ss, SAM_MAC_LABEL, HSM_SECRET_KEY) != 1 ||
	    hsm_exists(s->hsm, ss, SAM_CA_LABEL, HSM_PRIVATE_KEY) != 1) {
		log_error("token %.100s is not initialised (run rssp-engine init)", cfg->token_label);
		r = RSSP_E_NOTFOUND;
		goto out;
	}
	if ((r = hsm_read_certificate(s->hsm, ss, SAM_CA_LABEL, &s->ca_der, &s->ca_derlen)) != 0) {
		log_error("cannot read the ca certificate");
		goto out;
	}
	p = s->ca_der;
	if ((s->ca = d2i_X509(NULL, &p, (long)s->ca_derlen)) == NULL) {
		log_error("the ca certificate in the token does not parse");
		r = RSSP_E_CRYPTO;
		goto out;
	}
	hsm_session_put(s->hsm, ss);
	ss = NULL;
	*samp = s;
	s = NULL;
	r = 0;
out:
	if (s != NULL && ss != NULL)
		hsm_session_put(s->hsm, ss);
	sam_free(s);
	return r;
}

void
sam_free(struct sam *s)
{
	if (s == NULL)
		return;
	kvmap_free(s->sads, sad_entry_free);
	kvmap_free(s->replay, free);
	kvmap_free(s->pubs, pub_entry_free);
	kvmap_free(s->vctxs, vctx_entry_free);
	EVP_MD_free(s->sha256);
	kak_cache_free(s->kaks);
	X509_free(s->ca);
	free(s->ca_der);
	hsm_free(s->hsm);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static int
refuse(struct sam_audit *a, int code, const char *reason)
{
	a->reason = reason;
	return code;
}

/* ---- activation ---- */

/* "<credential id cut to 119 bytes on a UTF-8 boundary>#<8 random hex>" */
static int
make_key_label(const char *credential_id, char label[RSSP_MAX_ID_LEN + 1], uint8_t id[4])
{
	size_t n = strlen(credential_id);
	char rnd[9];

	if (n > RSSP_MAX_ID_LEN - 9) {
		n = RSSP_MAX_ID_LEN - 9;
		while (n > 0 && ((unsigned char)credential_id[n] & 0xc0) == 0x80)
			n--;
	}
	if (RAND_bytes(id, 4) != 1)
		return RSSP_E_CRYPTO;
	hex(rnd, id, 4);
	snprintf(label, RSSP_MAX_ID_LEN + 1, "%.*s#%s", (int)n, credential_id, rnd);
	return 0;
}

static int
authorize_activation(struct sam *s, const Rssp__Engine__V1__AuthorizeRequest *req,
    uint8_t **outp, size_t *outlenp, struct sam_audit *a)
{
	const Rssp__Engine__V1__Activation *act = req->activation;
	const Rssp__Engine__V1__Kak *kak = req->kak;
	struct rssp_activation_fields f;
	Rssp__Engine__V1__AuthorizeResponse resp = RSSP__ENGINE__V1__AUTHORIZE_RESPONSE__INIT;
	Rssp__Engine__V1__ActivationResult res = RSSP__ENGINE__V1__ACTIVATION_RESULT__INIT;
	ProtobufCBinaryData chain[1];
	struct hsm_session *ss = NULL;
	X509_NAME *subject = NULL;
	X509 *cert = NULL;
	EVP_PKEY *kpk = NULL, *pub = NULL;
	uint8_t kak_sha[32], *ad = NULL, *certder = NULL, *spki = NULL, *out = NULL;
	uint8_t binding[BINDING_LEN], keyid[4];
	char label[RSSP_MAX_ID_LEN + 1];
	size_t adlen = 0, outlen;
	int r, certlen, spkilen, key_made = 0, attempt, replay_recorded = 0;
	uint8_t rkey[32];
	int64_t now;

	a->event = "authorize.activation";
	audit_str(a->credential_id, act->credential_id);
	a->algo = req->kak != NULL ? kak_name(req->kak->algo) : NULL;
	if (!id_ok(act->credential_id) || !id_ok(act->owner_id) || !id_ok(act->device_uuid))
		return refuse(a, RSSP_E_INVAL, "id length out of range");
	if (!text_ok(act->subject_cn))
		return refuse(a, RSSP_E_INVAL, "subject cn invalid");
	if (key_name(act->key_algo) == NULL)
		return refuse(a, RSSP_E_UNSUPPORTED, "unknown key algorithm");
	if (act->validity_days < 1 || act->validity_days > X509_MAX_DAYS)
		return refuse(a, RSSP_E_INVAL, "validity out of range");
	if (act->nonce.len < RSSP_MIN_NONCE_LEN || act->nonce.len > RSSP_MAX_NONCE_LEN)
		return refuse(a, RSSP_E_INVAL, "nonce length out of range");
	if (kak == NULL || kak->base.n_unknown_fields != 0)
		return refuse(a, RSSP_E_INVAL, "kak missing");
	if (req->signature.len == 0 || req->signature.len > MAX_SIG_LEN)
		return refuse(a, RSSP_E_INVAL, "signature length out of range");
	if (x509_cn_name(act->subject_cn, &subject) != 0)
		return refuse(a, RSSP_E_INVAL, "subject cn invalid");
	if ((r = kak_parse(s->kaks, kak->public_key.data, kak->public_key.len, kak->algo,
	    &kpk, kak_sha)) != 0) {
		r = refuse(a, r, r == RSSP_E_UNSUPPORTED ? "unknown kak algorithm" : "kak invalid");
		goto out;
	}
	hex(a->kak_sha256, kak_sha, sizeof(kak_sha));

	memset(&f, 0, sizeof(f));
	f.credential_id = act->credential_id;
	f.owner_id = act->owner_id;
	f.device_uuid = act->device_uuid;
	f.kak_spki = kak->public_key.data;
	f.kak_spki_len = kak->public_key.len;
	f.kak_algo = kak->algo;
	f.key_algo = act->key_algo;
	f.subject_cn = act->subject_cn;
	f.validity_days = act->validity_days;
	f.nonce = act->nonce.data;
	f.nonce_len = act->nonce.len;
	f.expires_at = act->expires_at;
	now = sam_now(s);
	if (act->expires_at <= now) {
		r = refuse(a, RSSP_E_EXPIRED, "activation expired");
		goto out;
	}
	if (act->expires_at - now > MAX_ACTIVATION_HORIZON) {
		r = refuse(a, RSSP_E_INVAL, "activation expiry too far");
		goto out;
	}
	if ((r = rssp_authdata_activation(&f, &ad, &adlen)) != 0) {
		r = refuse(a, r == RSSP_E_NOMEM ? r : RSSP_E_INVAL, "activation fields invalid");
		goto out;
	}
	if (kak_verify(kpk, kak->algo, ad, adlen, req->signature.data, req->signature.len) != 0) {
		r = refuse(a, RSSP_E_DENIED, "kak signature invalid");
		goto out;
	}
	if ((r = replay_record(s, "rssp-activation-v1", act->credential_id, &act->nonce,
	    act->expires_at, now, rkey)) != 0) {
		r = r == RSSP_E_REPLAY ? refuse(a, r, "activation replayed") : r;
		goto out;
	}
	replay_recorded = 1;

	ss = hsm_session_get(s->hsm);
	/* A new label every time: an existing key is never bound to another KAK. */
	for (attempt = 0; ; attempt++) {
		if ((r = make_key_label(act->credential_id, label, keyid)) != 0)
			goto fail;
		if ((r = hsm_exists(s->hsm, ss, label, 0)) == 0)
			break;
		if (r < 0 || attempt >= 3) {
			r = RSSP_E_HSM;
			goto fail;
		}
	}
	audit_str(a->key_label, label);
	if ((r = hsm_generate_key_pair(s->hsm, ss, act->key_algo, label, keyid, sizeof(keyid), &pub)) != 0)
		goto fail;
	key_made = 1;
	if ((r = x509_issue(s->hsm, ss, SAM_CA_LABEL, s->ca, pub, subject, act->validity_days, &cert)) != 0)
		goto fail;
	if ((certlen = i2d_X509(cert, &certder)) <= 0 || (spkilen = i2d_PUBKEY(pub, &spki)) <= 0) {
		r = RSSP_E_CRYPTO;
		goto fail;
	}
	/* The certificate lives next to its key: signing reads the public key from it. */
	if ((r = hsm_store_certificate(s->hsm, ss, label, keyid, sizeof(keyid), certder,
	    (size_t)certlen)) != 0)
		goto fail;
	if ((r = binding_compute(s->hsm, ss, SAM_MAC_LABEL, act->credential_id, act->owner_id,
	    label, kak_sha, binding)) != 0)
		goto fail;

	res.key_label = label;
	res.binding.data = binding;
	res.binding.len = sizeof(binding);
	res.certificate.data = certder;
	res.certificate.len = (size_t)certlen;
	chain[0].data = s->ca_der;
	chain[0].len = s->ca_derlen;
	res.chain = chain;
	res.n_chain = 1;
	res.public_key.data = spki;
	res.public_key.len = (size_t)spkilen;
	resp.result_case = RSSP__ENGINE__V1__AUTHORIZE_RESPONSE__RESULT_ACTIVATION;
	resp.activation = &res;
	outlen = rssp__engine__v1__authorize_response__get_packed_size(&resp);
	if ((out = malloc(outlen)) == NULL) {
		r = RSSP_E_NOMEM;
		goto fail;
	}
	rssp__engine__v1__authorize_response__pack(&resp, out);
	*outp = out;
	*outlenp = outlen;
	out = NULL;
	key_made = 0;
	replay_recorded = 0;
	log_info("credential %.100s activated with key %s", act->credential_id, label);
	r = 0;
	goto out;
fail:
	a->reason = r == RSSP_E_HSM ? "hsm failure" : "activation failed";
	if (key_made && hsm_destroy_label(s->hsm, ss, label) != 0)
		log_error("cannot remove key %s after a failed activation", label);
out:
	if (replay_recorded)
		replay_forget(s, rkey);
	hsm_session_put(s->hsm, ss);
	OPENSSL_cleanse(binding, sizeof(binding));
	free(out);
	free(ad);
	OPENSSL_free(certder);
	OPENSSL_free(spki);
	X509_free(cert);
	X509_NAME_free(subject);
	EVP_PKEY_free(kpk);
	EVP_PKEY_free(pub);
	return r;
}

/* ---- approval ---- */

static int
cmp_digest_fixed(const uint8_t *a, const uint8_t *b, size_t n)
{
	return memcmp(a, b, n);
}

/* Number of distinct digests in a sorted array. */
static size_t
count_distinct(const uint8_t *h, size_t n, size_t len)
{
	size_t i, d = n > 0;

	for (i = 1; i < n; i++)
		d += cmp_digest_fixed(h + (i - 1) * len, h + i * len, len) != 0;
	return d;
}

static int
authorize_approval(struct sam *s, const Rssp__Engine__V1__AuthorizeRequest *req,
    uint8_t **outp, size_t *outlenp, struct sam_audit *a)
{
	const Rssp__Engine__V1__Approval *ap = req->approval;
	const Rssp__Engine__V1__Kak *kak = req->kak;
	struct rssp_approval_fields f;
	Rssp__Engine__V1__AuthorizeResponse resp = RSSP__ENGINE__V1__AUTHORIZE_RESPONSE__INIT;
	Rssp__Engine__V1__ApprovalResult res = RSSP__ENGINE__V1__APPROVAL_RESULT__INIT;
	struct hsm_session *ss = NULL;
	const uint8_t **hv = NULL;
	EVP_PKEY *kpk = NULL;
	struct sad *sad = NULL;
	struct sad_entry *ent = NULL;
	uint8_t kak_sha[32], rkey[32], hsum[32], *ad = NULL, *body = NULL, *out = NULL;
	size_t hlen, i, adlen = 0, bodylen = 0, maclen, outlen;
	int64_t now;
	int r, replay_recorded = 0;

	a->event = "authorize.approval";
	audit_str(a->credential_id, ap->credential_id);
	audit_str(a->approval_id, ap->approval_id);
	audit_str(a->key_label, ap->key_label);
	a->algo = req->kak != NULL ? kak_name(req->kak->algo) : NULL;
	if (!id_ok(ap->approval_id) || !id_ok(ap->credential_id) || !id_ok(ap->owner_id) ||
	    !id_ok(ap->device_uuid) || !id_ok(ap->key_label))
		return refuse(a, RSSP_E_INVAL, "id length out of range");
	if ((hlen = rssp_hash_algo_len(ap->hash_algo)) == 0)
		return refuse(a, RSSP_E_UNSUPPORTED, "unknown hash algorithm");
	if (ap->n_hashes < 1 || ap->n_hashes > RSSP_MAX_HASHES)
		return refuse(a, RSSP_E_INVAL, "hash count out of range");
	a->n_hashes = (unsigned)ap->n_hashes;
	for (i = 0; i < ap->n_hashes; i++) {
		if (ap->hashes[i].len != hlen)
			return refuse(a, RSSP_E_INVAL, "digest length mismatch");
	}
	hashes_sum(s, ap->hashes, ap->n_hashes, hsum);
	hex(a->hashes_sha256, hsum, sizeof(hsum));
	if (ap->num_signatures < 1 || ap->num_signatures > RSSP_MAX_HASHES)
		return refuse(a, RSSP_E_INVAL, "num signatures out of range");
	if (!text_ok(ap->rp_name) || !text_ok(ap->description))
		return refuse(a, RSSP_E_INVAL, "text too long or not utf-8");
	if (ap->nonce.len < RSSP_MIN_NONCE_LEN || ap->nonce.len > RSSP_MAX_NONCE_LEN)
		return refuse(a, RSSP_E_INVAL, "nonce length out of range");
	if (ap->binding.len != BINDING_LEN)
		return refuse(a, RSSP_E_DENIED, "binding invalid");
	if (kak == NULL || kak->base.n_unknown_fields != 0)
		return refuse(a, RSSP_E_INVAL, "kak missing");
	if (req->signature.len == 0 || req->signature.len > MAX_SIG_LEN)
		return refuse(a, RSSP_E_INVAL, "signature length out of range");
	if ((r = kak_parse(s->kaks, kak->public_key.data, kak->public_key.len, kak->algo,
	    &kpk, kak_sha)) != 0)
		return refuse(a, r, r == RSSP_E_UNSUPPORTED ? "unknown kak algorithm" : "kak invalid");
	hex(a->kak_sha256, kak_sha, sizeof(kak_sha));

	/* The SAD's copy of the hashes, sorted: also counts the distinct ones. */
	if ((sad = calloc(1, sizeof(*sad))) == NULL || (sad->hashes = malloc(ap->n_hashes * hlen)) == NULL ||
	    (hv = calloc(ap->n_hashes, sizeof(*hv))) == NULL) {
		r = RSSP_E_NOMEM;
		goto out;
	}
	for (i = 0; i < ap->n_hashes; i++) {
		memcpy(sad->hashes + i * hlen, ap->hashes[i].data, hlen);
		hv[i] = ap->hashes[i].data;
	}
	sad->n_hashes = ap->n_hashes;
	sad->hash_len = hlen;
	sad->hash_algo = ap->hash_algo;
	sad->num_signatures = ap->num_signatures;
	snprintf(sad->credential_id, sizeof(sad->credential_id), "%s", ap->credential_id);
	snprintf(sad->key_label, sizeof(sad->key_label), "%s", ap->key_label);

	now = sam_now(s);
	if (ap->expires_at <= now) {
		r = refuse(a, RSSP_E_EXPIRED, "approval expired");
		goto out;
	}
	if (ap->expires_at - now > MAX_APPROVAL_HORIZON) {
		r = refuse(a, RSSP_E_INVAL, "approval expiry too far");
		goto out;
	}
	ss = hsm_session_get(s->hsm);
	if ((r = binding_verify(s->hsm, ss, SAM_MAC_LABEL, ap->credential_id, ap->owner_id,
	    ap->key_label, kak_sha, ap->binding.data, ap->binding.len)) != 0) {
		r = refuse(a, r == RSSP_E_DENIED ? r : RSSP_E_HSM,
		    r == RSSP_E_DENIED ? "binding invalid" : "hsm failure");
		goto out;
	}
	memset(&f, 0, sizeof(f));
	f.approval_id = ap->approval_id;
	f.credential_id = ap->credential_id;
	f.owner_id = ap->owner_id;
	f.device_uuid = ap->device_uuid;
	f.kak_spki = kak->public_key.data;
	f.kak_spki_len = kak->public_key.len;
	f.hash_algo = ap->hash_algo;
	f.hashes = hv;
	f.n_hashes = ap->n_hashes;
	f.hash_len = hlen;
	f.num_signatures = ap->num_signatures;
	f.rp_name = ap->rp_name;
	f.description = ap->description;
	f.nonce = ap->nonce.data;
	f.nonce_len = ap->nonce.len;
	f.expires_at = ap->expires_at;
	if ((r = rssp_authdata_approval(&f, &ad, &adlen)) != 0) {
		r = refuse(a, r == RSSP_E_NOMEM ? r : RSSP_E_INVAL, "approval fields invalid");
		goto out;
	}
	if (kak_verify(kpk, kak->algo, ad, adlen, req->signature.data, req->signature.len) != 0) {
		r = refuse(a, RSSP_E_DENIED, "kak signature invalid");
		goto out;
	}
	if (RAND_bytes(sad->id, SAD_ID_LEN) != 1) {
		r = RSSP_E_CRYPTO;
		goto out;
	}
	sad->expires_at = now + (int64_t)s->sad_ttl;
	if (sad->expires_at > ap->expires_at)
		sad->expires_at = ap->expires_at;
	if ((r = sad_encode_body(sad, &body, &bodylen)) != 0)
		goto out;
	if (count_distinct(sad->hashes, sad->n_hashes, hlen) > ap->num_signatures) {
		r = refuse(a, RSSP_E_INVAL, "num signatures below distinct hashes");
		goto out;
	}
	hex(a->sad_id, sad->id, SAD_ID_LEN);

	/* Remember the approval until it expires: a second presentation is a replay. */
	if ((r = replay_record(s, "rssp-approval-v1", ap->approval_id, &ap->nonce,
	    ap->expires_at, now, rkey)) != 0) {
		r = r == RSSP_E_REPLAY ? refuse(a, r, "approval replayed") : r;
		goto out;
	}
	replay_recorded = 1;

	maclen = SAD_MAC_LEN;
	if ((r = hsm_sign(s->hsm, ss, SAM_MAC_LABEL, HSM_SECRET_KEY, HSM_MECH_HMAC_SHA256, 0,
	    body, bodylen, body + bodylen, &maclen)) != 0 || maclen != SAD_MAC_LEN) {
		r = refuse(a, RSSP_E_HSM, "hsm failure");
		goto out;
	}
	res.sad.data = body;
	res.sad.len = bodylen + SAD_MAC_LEN;
	res.sad_expires_at = sad->expires_at;
	resp.result_case = RSSP__ENGINE__V1__AUTHORIZE_RESPONSE__RESULT_APPROVAL;
	resp.approval = &res;
	outlen = rssp__engine__v1__authorize_response__get_packed_size(&resp);
	if ((out = malloc(outlen)) == NULL) {
		r = RSSP_E_NOMEM;
		goto out;
	}
	rssp__engine__v1__authorize_response__pack(&resp, out);

	/* The engine minted it: its first use needs no HSM HMAC. */
	if ((ent = calloc(1, sizeof(*ent))) != NULL) {
		ent->wire = body;
		ent->wirelen = bodylen + SAD_MAC_LEN;
		ent->sad = sad;
		pthread_mutex_lock(&s->lock);
		if (kvmap_put(s->sads, sad->id, SAD_ID_LEN, ent) == 0) {
			body = NULL; /* owned by the cache */
			sad = NULL;
			ent = NULL;
		}
		pthread_mutex_unlock(&s->lock);
		if (ent != NULL) {
			ent->wire = NULL;
			ent->sad = NULL;
		}
	}
	*outp = out;
	*outlenp = outlen;
	out = NULL;
	replay_recorded = 0;
	r = 0;
out:
	if (replay_recorded)
		replay_forget(s, rkey); /* nothing was minted: it may be presented again */
	hsm_session_put(s->hsm, ss);
	free(ent);
	free(out);
	free(body);
	free(ad);
	free(hv);
	sad_free(sad);
	EVP_PKEY_free(kpk);
	return r;
}

int
sam_authorize(struct sam *s, const uint8_t *in, size_t inlen,
    uint8_t **outp, size_t *outlenp, struct sam_audit *a)
{
	Rssp__Engine__V1__AuthorizeRequest *req = NULL;
	int r;

	memset(a, 0, sizeof(*a));
	a->event = "authorize.approval"; /* until the purpose is known */
	if (inlen > SAM_MAX_AUTHORIZE_MSG)
		return refuse(a, RSSP_E_EXHAUSTED, "message too large");
	if ((req = rssp__engine__v1__authorize_request__unpack(NULL, inlen, in)) == NULL)
		return refuse(a, RSSP_E_INVAL, "malformed request");
	if (req->base.n_unknown_fields != 0 ||
	    (req->purpose_case == RSSP__ENGINE__V1__AUTHORIZE_REQUEST__PURPOSE_ACTIVATION &&
	    req->activation->base.n_unknown_fields != 0) ||
	    (req->purpose_case == RSSP__ENGINE__V1__AUTHORIZE_REQUEST__PURPOSE_APPROVAL &&
	    req->approval->base.n_unknown_fields != 0)) {
		r = refuse(a, RSSP_E_INVAL, "unknown field");
		goto out;
	}
	if (strlen(req->request_id) > RSSP_MAX_ID_LEN) {
		r = refuse(a, RSSP_E_INVAL, "request id too long");
		goto out;
	}
	switch (req->purpose_case) {
	case RSSP__ENGINE__V1__AUTHORIZE_REQUEST__PURPOSE_ACTIVATION:
		r = authorize_activation(s, req, outp, outlenp, a);
		break;
	case RSSP__ENGINE__V1__AUTHORIZE_REQUEST__PURPOSE_APPROVAL:
		r = authorize_approval(s, req, outp, outlenp, a);
		break;
	default:
		r = refuse(a, RSSP_E_INVAL, "purpose missing");
		break;
	}
out:
	if (r != 0 && a->reason == NULL)
		a->reason = rssp_strerror(r);
	rssp__engine__v1__authorize_request__free_unpacked(req, NULL);
	return r;
}

int
sam_authorize_generates_key(const uint8_t *in, size_t inlen)
{
	Rssp__Engine__V1__AuthorizeRequest *req;
	int r;

	if (inlen > SAM_MAX_AUTHORIZE_MSG ||
	    (req = rssp__engine__v1__authorize_request__unpack(NULL, inlen, in)) == NULL)
		return 0;
	r = req->purpose_case == RSSP__ENGINE__V1__AUTHORIZE_REQUEST__PURPOSE_ACTIVATION;
	rssp__engine__v1__authorize_request__free_unpacked(req, NULL);
	return r;
}

/* ---- signing ---- */

static const uint8_t di_sha256[] = { 0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
	0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20 };
static const uint8_t di_sha384[] = { 0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
	0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30 };
static const uint8_t di_sha512[] = { 0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
	0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40 };

/* DigestInfo for PKCS#1 v1.5: prefix || digest into buf (>= 19 + 64 bytes). */
static size_t
digest_info(int hash_algo, const uint8_t *dg, size_t len, uint8_t *buf)
{
	const uint8_t *pre = hash_algo == 1 ? di_sha256 : hash_algo == 2 ? di_sha384 : di_sha512;

	memcpy(buf, pre, sizeof(di_sha256));
	memcpy(buf + sizeof(di_sha256), dg, len);
	return sizeof(di_sha256) + len;
}

/* The credential's public key (from its certificate in the token), cached by label. */
static int
credential_key(struct sam *s, struct hsm_session *ss, const char *label, EVP_PKEY **pkeyp)
{
	struct pub_entry *e;
	EVP_PKEY *pkey = NULL;
	uint8_t *der = NULL;
	size_t derlen = 0;
	const unsigned char *p;
	X509 *x = NULL;
	int r;

	pthread_mutex_lock(&s->lock);
	if ((e = kvmap_get(s->pubs, label, strlen(label))) != NULL) {
		pkey = e->pkey;
		EVP_PKEY_up_ref(pkey);
	}
	pthread_mutex_unlock(&s->lock);
	if (pkey != NULL) {
		*pkeyp = pkey;
		return 0;
	}
	if ((r = hsm_read_certificate(s->hsm, ss, label, &der, &derlen)) != 0)
		goto out;
	p = der;
	if ((x = d2i_X509(NULL, &p, (long)derlen)) == NULL ||
	    (pkey = X509_get_pubkey(x)) == NULL) {
		r = RSSP_E_CRYPTO;
		goto out;
	}
	if ((e = calloc(1, sizeof(*e))) != NULL) {
		e->pkey = pkey;
		EVP_PKEY_up_ref(pkey);
		pthread_mutex_lock(&s->lock);
		if (kvmap_count(s->pubs) >= PUB_CACHE_MAX)
			kvmap_purge(s->pubs, purge_any, NULL, pub_entry_free);
		if (kvmap_put(s->pubs, label, strlen(label), e) == 0)
			e = NULL;
		pthread_mutex_unlock(&s->lock);
		pub_entry_free(e);
	}
	*pkeyp = pkey;
	pkey = NULL;
	r = 0;
out:
	EVP_PKEY_free(pkey);
	X509_free(x);
	free(der);
	return r;
}

/* Prepares a verification context for sign_algo/hash_algo with the credential key. */
static EVP_PKEY_CTX *
verify_ctx(EVP_PKEY *pkey, int sign_algo, int hash_algo)
{
	EVP_PKEY_CTX *ctx;
	const EVP_MD *md = hash_md(hash_algo);

	if ((ctx = EVP_PKEY_CTX_new(pkey, NULL)) == NULL)
		return NULL;
	if (EVP_PKEY_verify_init(ctx) != 1 || EVP_PKEY_CTX_set_signature_md(ctx, md) != 1)
		goto fail;
	if (sign_algo == SIGN_PKCS1 && EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) != 1)
		goto fail;
	if (sign_algo == SIGN_PSS &&
	    (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) != 1 ||
	    EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md) != 1 ||
	    EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, RSA_PSS_SALTLEN_DIGEST) != 1))
		goto fail;
	return ctx;
fail:
	EVP_PKEY_CTX_free(ctx);
	return NULL;
}

static size_t
vctx_key(char *buf, const char *label, int sign_algo, int hash_algo)
{
	size_t n = strlen(label);

	memcpy(buf, label, n);
	buf[n] = '\0';
	buf[n + 1] = (char)sign_algo;
	buf[n + 2] = (char)hash_algo;
	return n + 3;
}

/* A verification context for pkey (the key of label) and the algorithm: a cached one
 * when there is one for this very key, else a new one. Give it back with vctx_put. */
static EVP_PKEY_CTX *
vctx_get(struct sam *s, const char *label, EVP_PKEY *pkey, int sign_algo, int hash_algo)
{
	char key[RSSP_MAX_ID_LEN + 3];
	size_t klen = vctx_key(key, label, sign_algo, hash_algo);
	struct vctx_entry *e;
	EVP_PKEY_CTX *ctx = NULL;

	pthread_mutex_lock(&s->lock);
	if ((e = kvmap_get(s->vctxs, key, klen)) != NULL && e->pkey == pkey && e->n > 0)
		ctx = e->ctx[--e->n];
	pthread_mutex_unlock(&s->lock);
	return ctx != NULL ? ctx : verify_ctx(pkey, sign_algo, hash_algo);
}

/* Keeps ctx (made by vctx_get for pkey) for the next call, or frees it. */
static void
vctx_put(struct sam *s, const char *label, EVP_PKEY *pkey, int sign_algo, int hash_algo,
    EVP_PKEY_CTX *ctx)
{
	char key[RSSP_MAX_ID_LEN + 3];
	size_t klen = vctx_key(key, label, sign_algo, hash_algo);
	struct vctx_entry *e, *ne = NULL, *old = NULL;

	if (ctx == NULL)
		return;
	pthread_mutex_lock(&s->lock);
	e = kvmap_get(s->vctxs, key, klen);
	if (e != NULL && e->pkey != pkey) {
		/* the key was read again from the token since: start over with this one */
		old = kvmap_del(s->vctxs, key, klen);
		e = NULL;
	}
	if (e == NULL) {
		if (kvmap_count(s->vctxs) >= VCTX_CACHE_MAX)
			kvmap_purge(s->vctxs, purge_any, NULL, vctx_entry_free);
		if ((ne = calloc(1, sizeof(*ne))) != NULL) {
			ne->pkey = pkey;
			EVP_PKEY_up_ref(pkey);
			if (kvmap_put(s->vctxs, key, klen, ne) == 0) {
				e = ne;
				ne = NULL;
			}
		}
	}
	if (e != NULL && e->n < VCTX_PER_KEY) {
		e->ctx[e->n++] = ctx;
		ctx = NULL;
	}
	pthread_mutex_unlock(&s->lock);
	vctx_entry_free(old);
	vctx_entry_free(ne);
	EVP_PKEY_CTX_free(ctx);
}

/* ECDSA r || s (two halves) to a DER ECDSA-Sig-Value; *derp malloc'd by OpenSSL. */
static int
rs_to_der(const uint8_t *rs, size_t len, uint8_t **derp, size_t *derlenp)
{
	ECDSA_SIG *es = NULL;
	BIGNUM *br = NULL, *bs = NULL;
	unsigned char *der = NULL;
	int n, r = RSSP_E_CRYPTO;

	if (len == 0 || len % 2 != 0)
		return RSSP_E_HSM;
	if ((es = ECDSA_SIG_new()) == NULL ||
	    (br = BN_bin2bn(rs, (int)(len / 2), NULL)) == NULL ||
	    (bs = BN_bin2bn(rs + len / 2, (int)(len / 2), NULL)) == NULL ||
	    !ECDSA_SIG_set0(es, br, bs))
		goto out;
	br = bs = NULL;
	if ((n = i2d_ECDSA_SIG(es, &der)) <= 0)
		goto out;
	*derp = der;
	*derlenp = (size_t)n;
	r = 0;
out:
	BN_free(br);
	BN_free(bs);
	ECDSA_SIG_free(es);
	return r;
}

/* Finds the verified SAD for wire bytes, checking its seal in the HSM the first time.
 * On success *idp holds the SAD id. */
static int
sad_lookup(struct sam *s, struct hsm_session *ss, const uint8_t *wire, size_t len,
    uint8_t idp[SAD_ID_LEN], struct sam_audit *a)
{
	struct sad *sad = NULL;
	struct sad_entry *e, *ne = NULL;
	uint8_t mac[SAD_MAC_LEN];
	size_t bodylen = 0, maclen = sizeof(mac);
	int r, hit = 0;

	if (sad_peek_id(wire, len, idp) != 0)
		return refuse(a, RSSP_E_DENIED, "sad malformed");
	/* Seen and verified before: the very same bytes need neither parse nor HSM. */
	pthread_mutex_lock(&s->lock);
	if ((e = kvmap_get(s->sads, idp, SAD_ID_LEN)) != NULL)
		hit = e->wirelen == len && CRYPTO_memcmp(e->wire, wire, len) == 0;
	pthread_mutex_unlock(&s->lock);
	if (hit) {
		hex(a->sad_id, idp, SAD_ID_LEN);
		return 0;
	}
	if (sad_parse(wire, len, &sad, &bodylen) != 0)
		return refuse(a, RSSP_E_DENIED, "sad malformed");
	hex(a->sad_id, sad->id, SAD_ID_LEN);
	if ((r = hsm_sign(s->hsm, ss, SAM_MAC_LABEL, HSM_SECRET_KEY, HSM_MECH_HMAC_SHA256, 0,
	    wire, bodylen, mac, &maclen)) != 0) {
		r = refuse(a, RSSP_E_HSM, "hsm failure");
		goto out;
	}
	if (maclen != SAD_MAC_LEN || CRYPTO_memcmp(mac, wire + bodylen, SAD_MAC_LEN) != 0) {
		r = refuse(a, RSSP_E_DENIED, "sad seal invalid");
		goto out;
	}
	if ((ne = calloc(1, sizeof(*ne))) == NULL || (ne->wire = malloc(len)) == NULL) {
		r = RSSP_E_NOMEM;
		goto out;
	}
	memcpy(ne->wire, wire, len);
	ne->wirelen = len;
	ne->sad = sad;
	pthread_mutex_lock(&s->lock);
	/* Present already: a concurrent first use inserted the same SAD (same id, same
	 * MAC key: same bytes), keep that entry and its count. */
	if (kvmap_put(s->sads, sad->id, SAD_ID_LEN, ne) == 0) {
		sad = NULL;
		ne = NULL;
	}
	pthread_mutex_unlock(&s->lock);
	if (ne != NULL)
		ne->sad = NULL;
	r = 0;
out:
	sad_entry_free(ne);
	sad_free(sad);
	return r;
}

int
sam_sign_hash(struct sam *s, const uint8_t *in, size_t inlen,
    uint8_t **outp, size_t *outlenp, struct sam_audit *a)
{
	Rssp__Engine__V1__SignHashRequest *req = NULL;
	Rssp__Engine__V1__SignHashResponse resp = RSSP__ENGINE__V1__SIGN_HASH_RESPONSE__INIT;
	ProtobufCBinaryData *sigs = NULL;
	struct hsm_session *ss = NULL;
	struct sad_entry *e;
	EVP_PKEY *pkey = NULL;
	EVP_PKEY_CTX *vctx = NULL;
	uint8_t sad_id[SAD_ID_LEN], buf[MAX_SIG_LEN], di[128], hsum[32], *out = NULL;
	char label[RSSP_MAX_ID_LEN + 1];
	size_t hlen, i, n = 0, buflen, outlen;
	int r, keytype, reserved = 0, mech;
	int64_t now;

	memset(a, 0, sizeof(*a));
	a->event = "signhash";
	if (inlen > SAM_MAX_SIGNHASH_MSG)
		return refuse(a, RSSP_E_EXHAUSTED, "message too large");
	if ((req = rssp__engine__v1__sign_hash_request__unpack(NULL, inlen, in)) == NULL)
		return refuse(a, RSSP_E_INVAL, "malformed request");
	audit_str(a->credential_id, req->credential_id);
	if (req->base.n_unknown_fields != 0) {
		r = refuse(a, RSSP_E_INVAL, "unknown field");
		goto out;
	}
	if (strlen(req->request_id) > RSSP_MAX_ID_LEN || !id_ok(req->credential_id)) {
		r = refuse(a, RSSP_E_INVAL, "id length out of range");
		goto out;
	}
	if ((hlen = rssp_hash_algo_len(req->hash_algo)) == 0) {
		r = refuse(a, RSSP_E_UNSUPPORTED, "unknown hash algorithm");
		goto out;
	}
	if ((a->algo = sign_name(req->sign_algo, req->hash_algo)) == NULL) {
		r = refuse(a, RSSP_E_UNSUPPORTED, "unknown sign algorithm");
		goto out;
	}
	if (req->n_hashes < 1 || req->n_hashes > RSSP_MAX_HASHES) {
		r = refuse(a, RSSP_E_INVAL, "hash count out of range");
		goto out;
	}
	n = req->n_hashes;
	a->n_hashes = (unsigned)n;
	for (i = 0; i < n; i++) {
		if (req->hashes[i].len != hlen) {
			r = refuse(a, RSSP_E_INVAL, "digest length mismatch");
			goto out;
		}
	}
	hashes_sum(s, req->hashes, n, hsum);
	hex(a->hashes_sha256, hsum, sizeof(hsum));

	ss = hsm_session_get(s->hsm);
	if ((r = sad_lookup(s, ss, req->sad.data, req->sad.len, sad_id, a)) != 0)
		goto out;

	now = sam_now(s);
	pthread_mutex_lock(&s->lock);
	e = kvmap_get(s->sads, sad_id, SAD_ID_LEN);
	if (e == NULL) {
		r = refuse(a, RSSP_E_EXPIRED, "sad expired"); /* purged since sad_lookup */
	} else if (strcmp(e->sad->credential_id, req->credential_id) != 0) {
		r = refuse(a, RSSP_E_DENIED, "sad of another credential");
	} else if (e->sad->hash_algo != (int)req->hash_algo) {
		r = refuse(a, RSSP_E_DENIED, "hash algorithm differs from sad");
	} else if (now >= e->sad->expires_at) {
		r = refuse(a, RSSP_E_EXPIRED, "sad expired");
	} else {
		r = 0;
		for (i = 0; i < n; i++) {
			if (!sad_has_hash(e->sad, req->hashes[i].data)) {
				r = refuse(a, RSSP_E_DENIED, "hash not in sad");
				break;
			}
		}
		memcpy(label, e->sad->key_label, sizeof(label));
	}
	pthread_mutex_unlock(&s->lock);
	if (r != 0)
		goto out;
	audit_str(a->key_label, label);

	if ((r = credential_key(s, ss, label, &pkey)) != 0) {
		r = refuse(a, r == RSSP_E_NOTFOUND ? RSSP_E_NOTFOUND : RSSP_E_HSM, "credential key missing");
		goto out;
	}
	keytype = EVP_PKEY_get_base_id(pkey);
	if ((keytype == EVP_PKEY_RSA && (int)req->sign_algo == SIGN_ECDSA) ||
	    (keytype == EVP_PKEY_EC && (int)req->sign_algo != SIGN_ECDSA) ||
	    (keytype != EVP_PKEY_RSA && keytype != EVP_PKEY_EC)) {
		r = refuse(a, RSSP_E_UNSUPPORTED, "sign algorithm does not fit key");
		goto out;
	}
	if ((vctx = vctx_get(s, label, pkey, req->sign_algo, req->hash_algo)) == NULL) {
		r = refuse(a, RSSP_E_CRYPTO, "verifier setup failed");
		goto out;
	}

	/* Spend the count before signing; the whole call or nothing. */
	pthread_mutex_lock(&s->lock);
	purge_locked(s, now);
	e = kvmap_get(s->sads, sad_id, SAD_ID_LEN);
	if (e == NULL) {
		r = refuse(a, RSSP_E_EXPIRED, "sad expired");
	} else if ((uint64_t)e->used + n > e->sad->num_signatures) {
		r = refuse(a, RSSP_E_EXHAUSTED, "sad exhausted");
	} else {
		e->used += (uint32_t)n;
		reserved = 1;
	}
	pthread_mutex_unlock(&s->lock);
	if (r != 0)
		goto out;

	if ((sigs = calloc(n, sizeof(*sigs))) == NULL) {
		r = RSSP_E_NOMEM;
		goto out;
	}
	mech = (int)req->sign_algo == SIGN_PKCS1 ? HSM_MECH_RSA_PKCS :
	    (int)req->sign_algo == SIGN_PSS ? HSM_MECH_RSA_PSS : HSM_MECH_ECDSA;
	for (i = 0; i < n; i++) {
		const uint8_t *dg = req->hashes[i].data, *tbs = dg;
		size_t tbslen = hlen;

		if (mech == HSM_MECH_RSA_PKCS) {
			tbslen = digest_info(req->hash_algo, dg, hlen, di);
			tbs = di;
		}
		buflen = sizeof(buf);
		if ((r = hsm_sign(s->hsm, ss, label, HSM_PRIVATE_KEY, mech, hlen, tbs, tbslen,
		    buf, &buflen)) != 0) {
			r = refuse(a, r == RSSP_E_NOTFOUND ? r : RSSP_E_HSM, "hsm failure");
			goto out;
		}
		if (mech == HSM_MECH_ECDSA) {
			if ((r = rs_to_der(buf, buflen, &sigs[i].data, &sigs[i].len)) != 0) {
				r = refuse(a, r, "hsm failure");
				goto out;
			}
		} else {
			if ((sigs[i].data = OPENSSL_malloc(buflen)) == NULL) {
				r = RSSP_E_NOMEM;
				goto out;
			}
			memcpy(sigs[i].data, buf, buflen);
			sigs[i].len = buflen;
		}
		/* Verify before release: a faulty signature never leaves the engine. */
		if (EVP_PKEY_verify(vctx, sigs[i].data, sigs[i].len, dg, hlen) != 1) {
			ERR_clear_error();
			log_error("signature by %s does not verify", label);
			r = refuse(a, RSSP_E_HSM, "signature verification failed");
			goto out;
		}
	}
	resp.signatures = sigs;
	resp.n_signatures = n;
	outlen = rssp__engine__v1__sign_hash_response__get_packed_size(&resp);
	if ((out = malloc(outlen)) == NULL) {
		r = RSSP_E_NOMEM;
		goto out;
	}
	rssp__engine__v1__sign_hash_response__pack(&resp, out);
	*outp = out;
	*outlenp = outlen;
	out = NULL;
	a->signatures = (unsigned)n;
	reserved = 0;
	r = 0;
out:
	if (reserved) {
		/* Nothing was released: give the count back. */
		pthread_mutex_lock(&s->lock);
		if ((e = kvmap_get(s->sads, sad_id, SAD_ID_LEN)) != NULL && e->used >= n)
			e->used -= (uint32_t)n;
		pthread_mutex_unlock(&s->lock);
	}
	if (r != 0 && a->reason == NULL)
		a->reason = rssp_strerror(r);
	if (sigs != NULL) {
		for (i = 0; i < n; i++)
			OPENSSL_free(sigs[i].data);
		free(sigs);
	}
	hsm_session_put(s->hsm, ss);
	free(out);
	if (r == 0) /* a context that served a clean call serves the next one */
		vctx_put(s, label, pkey, req->sign_algo, req->hash_algo, vctx);
	else
		EVP_PKEY_CTX_free(vctx);
	EVP_PKEY_free(pkey);
	rssp__engine__v1__sign_hash_request__free_unpacked(req, NULL);
	return r;
}

int
sam_bench_raw_sign(struct sam *s, const char *key_label, int hash_algo, int sign_algo,
    unsigned count)
{
	CK_FUNCTION_LIST *fl = hsm_function_list(s->hsm);
	struct hsm_session *ss;
	CK_SESSION_HANDLE sh = 0;
	CK_OBJECT_HANDLE key = 0;
	CK_RSA_PKCS_PSS_PARAMS pss;
	CK_MECHANISM m = { CKM_ECDSA, NULL, 0 };
	uint8_t dg[64], di[128], sig[MAX_SIG_LEN];
	const uint8_t *tbs = dg;
	CK_ULONG siglen;
	size_t hlen, tbslen, warm;
	unsigned i;
	int r = 0, repaired = 0;

	if ((hlen = rssp_hash_algo_len(hash_algo)) == 0 || sign_name(sign_algo, hash_algo) == NULL)
		return RSSP_E_UNSUPPORTED;
	memset(dg, 0x5a, sizeof(dg));
	tbslen = hlen;
	if (sign_algo == SIGN_PKCS1) {
		m.mechanism = CKM_RSA_PKCS;
		tbslen = digest_info(hash_algo, dg, hlen, di);
		tbs = di;
	} else if (sign_algo == SIGN_PSS) {
		m.mechanism = CKM_RSA_PKCS_PSS;
		pss.hashAlg = hash_algo == 1 ? CKM_SHA256 : hash_algo == 2 ? CKM_SHA384 : CKM_SHA512;
		pss.mgf = hash_algo == 1 ? CKG_MGF1_SHA256 : hash_algo == 2 ? CKG_MGF1_SHA384 : CKG_MGF1_SHA512;
		pss.sLen = hlen;
		m.pParameter = &pss;
		m.ulParameterLen = sizeof(pss);
	}
	ss = hsm_session_get(s->hsm);
	for (i = 0; i < count; i++) {
		siglen = sizeof(sig);
		if (i == 0 || repaired) {
			sh = hsm_session_handle(ss);
			key = hsm_key_handle(s->hsm, ss, key_label, HSM_PRIVATE_KEY);
		}
		if (key != 0 && fl->C_SignInit(sh, &m, key) == CKR_OK &&
		    fl->C_Sign(sh, (CK_BYTE *)tbs, tbslen, sig, &siglen) == CKR_OK) {
			repaired = 0;
			continue;
		}
		if (repaired++) {
			r = key == 0 ? RSSP_E_NOTFOUND : RSSP_E_HSM;
			goto out;
		}
		/* A lost session or a stale handle: one signature through the engine's
		 * path repairs both, then the raw loop goes on (this one counts). */
		warm = sizeof(sig);
		if ((r = hsm_sign(s->hsm, ss, key_label, HSM_PRIVATE_KEY,
		    sign_algo == SIGN_PKCS1 ? HSM_MECH_RSA_PKCS : sign_algo == SIGN_PSS ?
		    HSM_MECH_RSA_PSS : HSM_MECH_ECDSA, hlen, tbs, tbslen, sig, &warm)) != 0)
			goto out;
	}
out:
	hsm_session_put(s->hsm, ss);
	return r;
}
