/* sam_restart.c - what lets the engine's decisions outlive a call that failed late and
 * a restart (sam.h, sam_handlers.h): the audit key that seals the audit log's
 * checkpoints, sam_undo (a call whose audit record could not be written spends
 * nothing), and the SAD counts and approvals read back from the audit log at start. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include <rssp/engine/v1/engine.pb-c.h>

#include "buf.h"
#include "hsm.h"
#include "rssp_log.h"
#include "sam_handlers.h"
#include "x509.h"

#define RESTORE_SLACK 60 /* seconds before the oldest possibly valid SAD */

int
sam_make_audit_key(struct hsm *h, struct hsm_session *ss, X509 *ca)
{
	EVP_PKEY *pub = NULL;
	X509_NAME *name = NULL;
	X509 *cert = NULL;
	uint8_t id[8], *der = NULL;
	int derlen, r;

	if (RAND_bytes(id, sizeof(id)) != 1)
		return RSSP_E_CRYPTO;
	if ((r = hsm_generate_key_pair(h, ss, RSSP__ENGINE__V1__KEY_ALGO__KEY_EC_P256,
	    SAM_AUDIT_LABEL, id, sizeof(id), &pub)) != 0 ||
	    (r = x509_cn_name("rssp audit log", &name)) != 0 ||
	    (r = x509_issue(h, ss, SAM_CA_LABEL, ca, pub, name, X509_MAX_DAYS, &cert)) != 0)
		goto out;
	if ((derlen = i2d_X509(cert, &der)) <= 0) {
		r = RSSP_E_CRYPTO;
		goto out;
	}
	r = hsm_store_certificate(h, ss, SAM_AUDIT_LABEL, id, sizeof(id), der, (size_t)derlen);
out:
	if (r != 0 && hsm_destroy_label(h, ss, SAM_AUDIT_LABEL) != 0)
		log_error("cannot remove a half-made audit key");
	OPENSSL_free(der);
	X509_free(cert);
	X509_NAME_free(name);
	EVP_PKEY_free(pub);
	return r;
}

int
sam_audit_seal(void *arg, const uint8_t *msg, size_t len, uint8_t *sig, size_t *siglenp)
{
	struct sam *s = arg;
	struct hsm_session *ss;
	uint8_t md[32], rs[132], *der = NULL;
	size_t rslen = sizeof(rs), derlen = 0;
	int r;

	SHA256(msg, len, md);
	ss = hsm_session_get(s->hsm);
	r = hsm_sign(s->hsm, ss, SAM_AUDIT_LABEL, HSM_PRIVATE_KEY, HSM_MECH_ECDSA, 32, md,
	    sizeof(md), rs, &rslen);
	hsm_session_put(s->hsm, ss);
	if (r != 0)
		return r;
	if ((r = sam_rs_to_der(rs, rslen, &der, &derlen)) != 0)
		return r;
	if (derlen > *siglenp)
		r = RSSP_E_INTERNAL;
	else {
		memcpy(sig, der, derlen);
		*siglenp = derlen;
	}
	OPENSSL_free(der);
	return r;
}

int
sam_audit_certificate(struct sam *s, const uint8_t **derp, size_t *derlenp)
{
	if (s->audit_cert == NULL)
		return RSSP_E_NOTFOUND;
	*derp = s->audit_cert;
	*derlenp = s->audit_certlen;
	return 0;
}

uint32_t
sam_restored_used(struct sam *s, const uint8_t id[SAD_ID_LEN])
{
	uint32_t *u = kvmap_get(s->restored, id, SAD_ID_LEN);

	return u != NULL ? *u : 0;
}

static int
unhex_str(const char *h, uint8_t *out, size_t n)
{
	return rssp_unhex(out, n, h, strlen(h));
}

void
sam_undo(struct sam *s, const struct sam_audit *a)
{
	uint8_t id[SAD_ID_LEN], key[32];
	struct sad_entry *e;

	if (a->event == NULL)
		return;
	if (strcmp(a->event, "authorize.activation") == 0) {
		/* the key was made but nobody got it: the activation may be presented again */
		pthread_mutex_lock(&s->lock);
		free(kvmap_del(s->replay, a->undo_key, sizeof(a->undo_key)));
		pthread_mutex_unlock(&s->lock);
		return;
	}
	if (unhex_str(a->sad_id, id, sizeof(id)) != 0)
		return;
	pthread_mutex_lock(&s->lock);
	if (strcmp(a->event, "signhash") == 0 && a->signatures > 0) {
		if ((e = kvmap_get(s->sads, id, SAD_ID_LEN)) != NULL && e->used >= a->signatures)
			e->used -= a->signatures;
	} else if (strcmp(a->event, "authorize.approval") == 0 && a->reason == NULL &&
	    unhex_str(a->approval_key, key, sizeof(key)) == 0) {
		/* a SAD nobody received: forget it and the approval (presentable again); a
		 * replay answer (reason set) repeats a SAD released before: nothing to undo */
		free(kvmap_del(s->replay, key, sizeof(key)));
		sam_sad_entry_free(kvmap_del(s->sads, id, SAD_ID_LEN));
	}
	pthread_mutex_unlock(&s->lock);
}

int
sam_restore_add(struct sam *s, const struct sam_restore_line *l)
{
	uint8_t id[SAD_ID_LEN], key[32];
	struct replay_entry *re = NULL;
	uint32_t *u = NULL;
	int r = 0;

	if (strcmp(l->result, "ok") != 0 || unhex_str(l->sad_id, id, sizeof(id)) != 0)
		return 0;
	pthread_mutex_lock(&s->lock);
	if (strcmp(l->event, "signhash") == 0 && l->signatures > 0) {
		if ((u = kvmap_get(s->restored, id, SAD_ID_LEN)) == NULL) {
			if ((u = calloc(1, sizeof(*u))) == NULL ||
			    kvmap_put(s->restored, id, SAD_ID_LEN, u) != 0) {
				free(u);
				r = RSSP_E_NOMEM;
				goto out;
			}
		}
		*u += (uint32_t)(l->signatures > UINT32_MAX ? UINT32_MAX : l->signatures);
	} else if (strcmp(l->event, "authorize.approval") == 0 &&
	    l->sad_expires_at > sam_now(s) && unhex_str(l->approval_key, key, sizeof(key)) == 0 &&
	    kvmap_get(s->replay, key, sizeof(key)) == NULL) {
		if ((re = calloc(1, sizeof(*re))) == NULL) {
			r = RSSP_E_NOMEM;
			goto out;
		}
		/* the approval's own expiry is not in the line: its longest possible one */
		re->expires = l->time + MAX_APPROVAL_HORIZON;
		re->sad_expires_at = l->sad_expires_at;
		memcpy(re->sad_id, id, SAD_ID_LEN);
		if (kvmap_put(s->replay, key, sizeof(key), re) != 0) {
			free(re);
			r = RSSP_E_NOMEM;
		}
	}
out:
	pthread_mutex_unlock(&s->lock);
	return r;
}

long long
sam_restore_since(const struct sam *s)
{
	return (long long)(sam_now(s) - (int64_t)s->sad_ttl - RESTORE_SLACK);
}
