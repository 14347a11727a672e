/* sam.c - the signature activation module's lifecycle and entry points (sam.h): token
 * initialisation, open/free, the clock, the replay record and SAD expiry; requests are
 * decoded by sam_decode.c and handled by sam_activate.c, sam_approve.c, sam_sign.c
 * (sam_handlers.h). */
#include "sam.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "algo.h"
#include "hsm.h"
#include "kak.h"
#include "kvmap.h"
#include "rssp_log.h"
#include "sad.h"
#include "sam_decode.h"
#include "ra_keys.h"
#include "sam_handlers.h"
#include "x509.h"

#define PURGE_INTERVAL 30

int64_t
sam_now(const struct sam *s)
{
	return (int64_t)time(NULL) + s->skew;
}

void
sam_set_clock_skew(struct sam *s, int64_t seconds)
{
	s->skew = seconds;
}

struct part {
	const void *data;
	size_t len;
};

/* SHA-256 over the concatenation of n byte strings (replay keys). */
static void
parts_sum(const struct sam *s, const struct part *v, size_t n, uint8_t out[32])
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

void
sam_sad_entry_free(void *v)
{
	struct sad_entry *e = v;

	if (e == NULL)
		return;
	free(e->wire);
	sad_free(e->sad);
	free(e);
}

int
sam_purge_any(void *arg, const void *key, size_t keylen, void *val)
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

void
sam_purge_locked(struct sam *s, int64_t now)
{
	if (now < s->next_purge)
		return;
	s->next_purge = now + PURGE_INTERVAL;
	kvmap_purge(s->sads, sad_expired, &now, sam_sad_entry_free);
	kvmap_purge(s->replay, replay_expired, &now, free);
}

int
sam_replay_record(struct sam *s, const char *domain, const char *id,
    const uint8_t *nonce, size_t nonce_len, int64_t expires_at, int64_t now, uint8_t keyp[32])
{
	const struct part parts[3] = {
		{ domain, strlen(domain) + 1 },
		{ id, strlen(id) + 1 },
		{ nonce, nonce_len },
	};
	int64_t *exp;
	int r;

	parts_sum(s, parts, 3, keyp);
	if ((exp = calloc(1, sizeof(struct replay_entry))) == NULL)
		return RSSP_E_NOMEM;
	*exp = expires_at;
	pthread_mutex_lock(&s->lock);
	sam_purge_locked(s, now);
	r = kvmap_put(s->replay, keyp, 32, exp);
	pthread_mutex_unlock(&s->lock);
	if (r != 0) {
		free(exp);
		return r == RSSP_E_CONFLICT ? RSSP_E_REPLAY : r;
	}
	return 0;
}

void
sam_replay_forget(struct sam *s, const uint8_t key[32])
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
	e3 = hsm_exists(h, ss, SAM_AUDIT_LABEL, 0);
	if (e3 < 0)
		e1 = e3;
	else if (e3 > 0 && e2 == 0)
		e2 = e3;
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
		    (r = hsm_destroy_label(h, ss, SAM_CA_LABEL)) != 0 ||
		    (r = hsm_destroy_label(h, ss, SAM_AUDIT_LABEL)) != 0)
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
	if ((r = sam_make_audit_key(h, ss, ca)) != 0)
		goto out;
	log_info("token %.100s initialised: mac key %s, ca %s (ec p-384)", cfg->token_label,
	    SAM_MAC_LABEL, SAM_CA_LABEL);
	made = 0;
	r = 0;
out:
	/* Half an initialisation is removed: a later init needs no force. */
	if (made && (hsm_destroy_label(h, ss, SAM_MAC_LABEL) != 0 ||
	    hsm_destroy_label(h, ss, SAM_CA_LABEL) != 0 ||
	    hsm_destroy_label(h, ss, SAM_AUDIT_LABEL) != 0))
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
	    (s->restored = kvmap_new()) == NULL ||
	    (s->vctxs = kvmap_new()) == NULL)
		goto out;
	s->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL); /* NULL: parts_sum falls back */
	if (cfg->ra_keys != NULL && (r = ra_keys_load(cfg->ra_keys, &s->ra)) != 0) {
		log_error("cannot load the ra keys from %.200s: %s", cfg->ra_keys, rssp_strerror(r));
		goto out;
	}
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
	if (hsm_exists(s->hsm, ss, SAM_AUDIT_LABEL, HSM_PRIVATE_KEY) != 1 ||
	    hsm_exists(s->hsm, ss, SAM_AUDIT_LABEL, HSM_CERTIFICATE) != 1) {
		log_warn("token %.100s has no audit key (initialised by an older engine): "
		    "generating it", cfg->token_label);
		if ((r = hsm_destroy_label(s->hsm, ss, SAM_AUDIT_LABEL)) != 0 ||
		    (r = sam_make_audit_key(s->hsm, ss, s->ca)) != 0) {
			log_error("cannot make the audit key");
			goto out;
		}
	}
	if ((r = hsm_read_certificate(s->hsm, ss, SAM_AUDIT_LABEL, &s->audit_cert,
	    &s->audit_certlen)) != 0) {
		log_error("cannot read the audit key's certificate");
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
	kvmap_free(s->sads, sam_sad_entry_free);
	kvmap_free(s->replay, free);
	kvmap_free(s->restored, free);
	kvmap_free(s->pubs, sam_pub_entry_free);
	kvmap_free(s->vctxs, sam_vctx_entry_free);
	EVP_MD_free(s->sha256);
	kak_cache_free(s->kaks);
	ra_keys_free(s->ra);
	X509_free(s->ca);
	free(s->ca_der);
	free(s->audit_cert);
	hsm_free(s->hsm);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* ---- entry points: decode, then act on the decoded request ---- */

int
sam_authorize(struct sam *s, const uint8_t *in, size_t inlen,
    uint8_t **outp, size_t *outlenp, struct sam_audit *a)
{
	struct sam_authorize_req *req = NULL;
	int r;

	memset(a, 0, sizeof(*a));
	if ((r = sam_decode_authorize(in, inlen, &req, a)) != 0)
		goto out;
	if (req->purpose == SAM_PURPOSE_ACTIVATION)
		r = sam_activate(s, req, outp, outlenp, a);
	else
		r = sam_approve(s, req, outp, outlenp, a);
out:
	if (r != 0 && a->reason == NULL)
		a->reason = rssp_strerror(r);
	sam_authorize_req_free(req);
	return r;
}

int
sam_authorize_generates_key(const uint8_t *in, size_t inlen)
{
	struct sam_authorize_req *req = NULL;
	struct sam_audit a;
	int r;

	memset(&a, 0, sizeof(a));
	if (sam_decode_authorize(in, inlen, &req, &a) != 0)
		return 0; /* refused by sam_authorize on the ordinary workers */
	r = req->purpose == SAM_PURPOSE_ACTIVATION;
	sam_authorize_req_free(req);
	return r;
}

int
sam_sign_hash(struct sam *s, const uint8_t *in, size_t inlen,
    uint8_t **outp, size_t *outlenp, struct sam_audit *a)
{
	struct sam_sign_req *req = NULL;
	int r;

	memset(a, 0, sizeof(*a));
	if ((r = sam_decode_sign_hash(in, inlen, &req, a)) == 0)
		r = sam_sign(s, req, outp, outlenp, a);
	if (r != 0 && a->reason == NULL)
		a->reason = rssp_strerror(r);
	sam_sign_req_free(req);
	return r;
}
