/* sam_activate.c - the activation handler (sam_handlers.h): checks the enrolment
 * voucher (a trusted RA key's signature, its window, the same user, device and KAK) and
 * the KAK's signature over the activation authData, generates the credential's key pair under a new label,
 * issues its certificate, stores it next to the key, and returns the binding that ties
 * credential, owner, key and KAK together. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include <rssp/engine/v1/engine.pb-c.h>

#include "binding.h"
#include "buf.h"
#include "hsm.h"
#include "kak.h"
#include "ra_keys.h"
#include "rssp_log.h"
#include "sam_handlers.h"
#include "x509.h"

#define VOUCHER_CLOCK_SLACK 300 /* an RA's clock may run this far ahead of the engine's */

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
	rssp_hex(rnd, id, 4);
	snprintf(label, RSSP_MAX_ID_LEN + 1, "%.*s#%s", (int)n, credential_id, rnd);
	return 0;
}

int
sam_activate(struct sam *s, const struct sam_authorize_req *req,
    uint8_t **outp, size_t *outlenp, struct sam_audit *a)
{
	const struct sam_activation *act = &req->activation;
	const struct sam_kak *kak = &req->kak;
	const struct sam_voucher *vo = &act->voucher;
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

	/* The RA's word is what makes this person the key's owner: checked before anything
	 * else about identity, and the certificate subject is taken from it alone. */
	switch (ra_keys_verify(s->ra, vo->v.ra_key_id, vo->tbs, vo->tbs_len, vo->sig,
	    vo->sig_len)) {
	case 0:
		break;
	case RSSP_E_NOTFOUND:
		return sam_refuse(a, RSSP_E_DENIED, "voucher key unknown");
	case RSSP_E_NOMEM:
		return sam_refuse(a, RSSP_E_NOMEM, "activation failed");
	default:
		return sam_refuse(a, RSSP_E_DENIED, "voucher signature invalid");
	}
	now = sam_now(s);
	if (!rssp_voucher_window_ok(&vo->v))
		return sam_refuse(a, RSSP_E_INVAL, "voucher validity too long");
	if (vo->v.not_after <= now)
		return sam_refuse(a, RSSP_E_EXPIRED, "voucher expired");
	if (vo->v.issued_at > now + VOUCHER_CLOCK_SLACK)
		return sam_refuse(a, RSSP_E_EXPIRED, "voucher not yet valid");
	if (strcmp(vo->v.user_id, act->owner_id) != 0)
		return sam_refuse(a, RSSP_E_DENIED, "voucher for another user");
	if (strcmp(vo->v.device_uuid, act->device_uuid) != 0)
		return sam_refuse(a, RSSP_E_DENIED, "voucher for another device");
	if (x509_signer_name(vo->v.common_name, vo->v.user_id, &subject) != 0)
		return sam_refuse(a, RSSP_E_INVAL, "voucher subject invalid");
	if ((r = kak_parse(s->kaks, kak->spki, kak->spki_len, kak->algo,
	    &kpk, kak_sha)) != 0) {
		r = sam_refuse(a, r, r == RSSP_E_UNSUPPORTED ? "unknown kak algorithm" : "kak invalid");
		goto out;
	}
	rssp_hex(a->kak_sha256, kak_sha, sizeof(kak_sha));
	if (CRYPTO_memcmp(vo->v.kak_sha256, kak_sha, sizeof(kak_sha)) != 0) {
		r = sam_refuse(a, RSSP_E_DENIED, "voucher for another kak");
		goto out;
	}

	memset(&f, 0, sizeof(f));
	f.credential_id = act->credential_id;
	f.owner_id = act->owner_id;
	f.device_uuid = act->device_uuid;
	f.kak_spki = kak->spki;
	f.kak_spki_len = kak->spki_len;
	f.kak_algo = kak->algo;
	f.key_algo = act->key_algo;
	f.subject_cn = vo->v.common_name;
	f.validity_days = act->validity_days;
	f.nonce = act->nonce;
	f.nonce_len = act->nonce_len;
	f.expires_at = act->expires_at;
	if (act->expires_at <= now) {
		r = sam_refuse(a, RSSP_E_EXPIRED, "activation expired");
		goto out;
	}
	if (act->expires_at - now > MAX_ACTIVATION_HORIZON) {
		r = sam_refuse(a, RSSP_E_INVAL, "activation expiry too far");
		goto out;
	}
	if ((r = rssp_authdata_activation(&f, &ad, &adlen)) != 0) {
		r = sam_refuse(a, r == RSSP_E_NOMEM ? r : RSSP_E_INVAL, "activation fields invalid");
		goto out;
	}
	if (kak_verify(kpk, kak->algo, ad, adlen, req->sig, req->sig_len) != 0) {
		r = sam_refuse(a, RSSP_E_DENIED, "kak signature invalid");
		goto out;
	}
	if ((r = sam_replay_record(s, "rssp-activation-v1", act->credential_id,
	    act->nonce, act->nonce_len, act->expires_at, now, rkey)) != 0) {
		r = r == RSSP_E_REPLAY ? sam_refuse(a, r, "activation replayed") : r;
		goto out;
	}
	replay_recorded = 1;
	memcpy(a->undo_key, rkey, sizeof(a->undo_key));

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
	sam_audit_str(a->key_label, label);
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
	log_info("credential %.100s activated with key %s, vouched by ra key %s",
	    act->credential_id, label, a->ra_key_id);
	r = 0;
	goto out;
fail:
	a->reason = r == RSSP_E_HSM ? "hsm failure" : "activation failed";
	if (key_made && hsm_destroy_label(s->hsm, ss, label) != 0)
		log_error("cannot remove key %s after a failed activation", label);
out:
	if (replay_recorded)
		sam_replay_forget(s, rkey);
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

