/* sam_approve.c - the approval handler (sam_handlers.h): checks the credential's
 * binding and the KAK's signature over the approval authData, then mints a SAD for the
 * approved hashes, sealed with the token's MAC key, and caches it for its first use. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <rssp/engine/v1/engine.pb-c.h>

#include "binding.h"
#include "buf.h"
#include "hsm.h"
#include "kak.h"
#include "sam_handlers.h"

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

int
sam_approve(struct sam *s, const struct sam_authorize_req *req,
    uint8_t **outp, size_t *outlenp, struct sam_audit *a)
{
	const struct sam_approval *ap = &req->approval;
	const struct sam_kak *kak = &req->kak;
	struct rssp_approval_fields f;
	Rssp__Engine__V1__AuthorizeResponse resp = RSSP__ENGINE__V1__AUTHORIZE_RESPONSE__INIT;
	Rssp__Engine__V1__ApprovalResult res = RSSP__ENGINE__V1__APPROVAL_RESULT__INIT;
	struct hsm_session *ss = NULL;
	const uint8_t **hv = NULL;
	EVP_PKEY *kpk = NULL;
	struct sad *sad = NULL;
	struct sad_entry *ent = NULL;
	uint8_t kak_sha[32], rkey[32], *ad = NULL, *body = NULL, *out = NULL;
	size_t hlen, i, adlen = 0, bodylen = 0, maclen, outlen;
	int64_t now;
	int r, replay_recorded = 0, replayed = 0;

	hlen = ap->hash_len;
	if ((r = kak_parse(s->kaks, kak->spki, kak->spki_len, kak->algo,
	    &kpk, kak_sha)) != 0)
		return sam_refuse(a, r, r == RSSP_E_UNSUPPORTED ? "unknown kak algorithm" : "kak invalid");
	rssp_hex(a->kak_sha256, kak_sha, sizeof(kak_sha));

	/* The SAD's copy of the hashes, sorted: also counts the distinct ones. */
	if ((sad = calloc(1, sizeof(*sad))) == NULL || (sad->hashes = malloc(ap->n_hashes * hlen)) == NULL ||
	    (hv = calloc(ap->n_hashes, sizeof(*hv))) == NULL) {
		r = RSSP_E_NOMEM;
		goto out;
	}
	for (i = 0; i < ap->n_hashes; i++) {
		memcpy(sad->hashes + i * hlen, ap->hashes + i * hlen, hlen);
		hv[i] = ap->hashes + i * hlen;
	}
	sad->n_hashes = ap->n_hashes;
	sad->hash_len = hlen;
	sad->hash_algo = ap->hash_algo;
	sad->num_signatures = ap->num_signatures;
	snprintf(sad->credential_id, sizeof(sad->credential_id), "%s", ap->credential_id);
	snprintf(sad->key_label, sizeof(sad->key_label), "%s", ap->key_label);

	now = sam_now(s);
	if (ap->expires_at <= now) {
		r = sam_refuse(a, RSSP_E_EXPIRED, "approval expired");
		goto out;
	}
	if (ap->expires_at - now > MAX_APPROVAL_HORIZON) {
		r = sam_refuse(a, RSSP_E_INVAL, "approval expiry too far");
		goto out;
	}
	ss = hsm_session_get(s->hsm);
	if ((r = binding_verify(s->hsm, ss, SAM_MAC_LABEL, ap->credential_id, ap->owner_id,
	    ap->key_label, kak_sha, ap->binding, sizeof(ap->binding))) != 0) {
		r = sam_refuse(a, r == RSSP_E_DENIED ? r : RSSP_E_HSM,
		    r == RSSP_E_DENIED ? "binding invalid" : "hsm failure");
		goto out;
	}
	memset(&f, 0, sizeof(f));
	f.approval_id = ap->approval_id;
	f.credential_id = ap->credential_id;
	f.owner_id = ap->owner_id;
	f.device_uuid = ap->device_uuid;
	f.kak_spki = kak->spki;
	f.kak_spki_len = kak->spki_len;
	f.hash_algo = ap->hash_algo;
	f.hashes = hv;
	f.n_hashes = ap->n_hashes;
	f.hash_len = hlen;
	f.num_signatures = ap->num_signatures;
	f.rp_name = ap->rp_name;
	f.description = ap->description;
	f.nonce = ap->nonce;
	f.nonce_len = ap->nonce_len;
	f.expires_at = ap->expires_at;
	if ((r = rssp_authdata_approval(&f, &ad, &adlen)) != 0) {
		r = sam_refuse(a, r == RSSP_E_NOMEM ? r : RSSP_E_INVAL, "approval fields invalid");
		goto out;
	}
	if (kak_verify(kpk, kak->algo, ad, adlen, req->sig, req->sig_len) != 0) {
		r = sam_refuse(a, RSSP_E_DENIED, "kak signature invalid");
		goto out;
	}
	if (RAND_bytes(sad->id, SAD_ID_LEN) != 1) {
		r = RSSP_E_CRYPTO;
		goto out;
	}
	sad->expires_at = now + (int64_t)s->sad_ttl;
	if (sad->expires_at > ap->expires_at)
		sad->expires_at = ap->expires_at;
	/* sad_encode_body sorts the hashes: count them first (the check needs them sorted) */
	if ((r = sad_encode_body(sad, &body, &bodylen)) != 0)
		goto out;
	if (count_distinct(sad->hashes, sad->n_hashes, hlen) > ap->num_signatures) {
		r = sam_refuse(a, RSSP_E_INVAL, "num signatures below distinct hashes");
		goto out;
	}
	free(body);
	body = NULL;
	/* Remember the approval until it expires. The same approval (same authData, same
	 * key label) presented again while its SAD is valid gets that SAD again: same id,
	 * same expiry, hence the same bytes and the same count; later it is a replay.
	 * PROTOCOL.md 3.2. */
	{
		uint8_t kbuf[sizeof("rssp-approval-v2")];
		struct replay_entry *re, *ne;
		EVP_MD_CTX *mc;
		unsigned mdlen = 0;

		memcpy(kbuf, "rssp-approval-v2", sizeof(kbuf));
		if ((mc = EVP_MD_CTX_new()) == NULL ||
		    EVP_DigestInit_ex(mc, s->sha256 != NULL ? s->sha256 : EVP_sha256(), NULL) != 1 ||
		    EVP_DigestUpdate(mc, kbuf, sizeof(kbuf)) != 1 ||
		    EVP_DigestUpdate(mc, ad, adlen) != 1 ||
		    EVP_DigestUpdate(mc, ap->key_label, strlen(ap->key_label) + 1) != 1 ||
		    EVP_DigestFinal_ex(mc, rkey, &mdlen) != 1 || mdlen != sizeof(rkey)) {
			EVP_MD_CTX_free(mc);
			r = RSSP_E_CRYPTO;
			goto out;
		}
		EVP_MD_CTX_free(mc);
		rssp_hex(a->approval_key, rkey, sizeof(rkey));
		if ((ne = calloc(1, sizeof(*ne))) == NULL) {
			r = RSSP_E_NOMEM;
			goto out;
		}
		ne->expires = ap->expires_at;
		ne->sad_expires_at = sad->expires_at;
		memcpy(ne->sad_id, sad->id, SAD_ID_LEN);
		pthread_mutex_lock(&s->lock);
		sam_purge_locked(s, now);
		if ((re = kvmap_get(s->replay, rkey, sizeof(rkey))) != NULL) {
			if (re->sad_expires_at > now) {
				memcpy(sad->id, re->sad_id, SAD_ID_LEN);
				sad->expires_at = re->sad_expires_at;
				replayed = 1;
			} else
				r = RSSP_E_REPLAY;
		} else if ((r = kvmap_put(s->replay, rkey, sizeof(rkey), ne)) == 0) {
			ne = NULL;
			replay_recorded = 1;
		}
		pthread_mutex_unlock(&s->lock);
		free(ne);
		if (r != 0) {
			r = r == RSSP_E_REPLAY ? sam_refuse(a, r, "approval replayed") : r;
			goto out;
		}
	}
	rssp_hex(a->sad_id, sad->id, SAD_ID_LEN);
	a->sad_expires_at = sad->expires_at;
	if ((r = sad_encode_body(sad, &body, &bodylen)) != 0)
		goto out;

	maclen = SAD_MAC_LEN;
	if ((r = hsm_sign(s->hsm, ss, SAM_MAC_LABEL, HSM_SECRET_KEY, HSM_MECH_HMAC_SHA256, 0,
	    body, bodylen, body + bodylen, &maclen)) != 0 || maclen != SAD_MAC_LEN) {
		r = sam_refuse(a, RSSP_E_HSM, "hsm failure");
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
		ent->used = sam_restored_used(s, sad->id);
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
	if (replayed)
		a->reason = "approval replayed: same sad";
	r = 0;
out:
	if (replay_recorded)
		sam_replay_forget(s, rkey); /* nothing was minted: it may be presented again */
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

