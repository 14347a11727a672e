/* csc_v1.c - CSC API v1.0.4.0 under /csc/v1/ (what pyHanko and older SDKs speak):
 * info, credentials/list, credentials/info, the synchronous credentials/authorize and
 * signatures/signHash with the v1 names (hash, hashAlgo). auth/login and auth/revoke
 * are auth.c's handlers under their CSC names.
 *
 * credentials/authorize is synchronous in v1: it creates the approval request, then
 * waits on the long pool (never on an HTTP thread) for the signer's confirmation on
 * the app, at most RSSP_CSC_V1_AUTHORIZE_WAIT seconds (default 120, at most 600), and
 * answers the SAD. A request still pending then is cancelled (the app no longer shows
 * it) and answered 403 access_denied; a refusal on the app is 403 access_denied too. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csc.h"
#include "rssp_log.h"
#include "signing.h"

#ifndef RSSP_VERSION
#define RSSP_VERSION "0.0.0"
#endif

static const char *const v1_methods[] = {
	"auth/login", "auth/revoke", "credentials/list", "credentials/info",
	"credentials/authorize", "signatures/signHash",
};

int
csc_v1_info(struct gw_request *req, struct gw_reply *rep)
{
	json_t *o, *methods;
	size_t i;

	if ((methods = json_array()) == NULL)
		return RSSP_E_NOMEM;
	for (i = 0; i < sizeof(v1_methods) / sizeof(v1_methods[0]); i++)
		json_array_append_new(methods, json_string(v1_methods[i]));
	o = csc_info_json(req, "1.0.4.0", json_pack("{s:[ss],s:o}",
	    "authType", "basic", "digest",
	    "methods", methods));
	return gw_reply_json(rep, 200, o);
}

int
csc_v1_cred_list(struct gw_request *req, struct gw_reply *rep)
{
	json_t *b, *in;
	int r, st;

	b = json_object();
	if (b != NULL) {
		csc_copy(b, req->body, "userID", NULL);
		csc_copy(b, req->body, "maxResults", NULL);
		csc_copy(b, req->body, "pageToken", NULL);
	}
	if ((r = csc_call(req, rep, cred_list, b)) != 0 || rep->status != 200)
		return r ? r : RSSP_E_INVAL;
	in = csc_take_reply(rep, &st);
	b = json_pack("{s:O}", "credentialIDs", json_object_get(in, "credentialIDs"));
	if (b != NULL)
		csc_copy(b, in, "nextPageToken", NULL);
	json_decref(in);
	return gw_reply_json(rep, 200, b);
}

int
csc_v1_cred_info(struct gw_request *req, struct gw_reply *rep)
{
	json_t *o = NULL;
	int r;

	if ((r = csc_need(req, rep, "credentialID", JSON_STRING)) != 0 ||
	    (r = csc_cred_info(req, rep, json_string_value(json_object_get(req->body, "credentialID")),
	    csc_cred_info_v1, &o)) != 0)
		return r;
	return gw_reply_json(rep, 200, o);
}

/* The v1 hash array: 1..1000 base64 digests, all of one length (32, 48 or 64 bytes).
 * Returns the HashAlgo, or sets 400 naming 'hash'. */
static int
v1_hashes(struct gw_request *req, struct gw_reply *rep, const char *field)
{
	json_t *a = json_object_get(req->body, field), *v;
	size_t i, len = 0;
	uint8_t *d;
	int r;

	if ((r = csc_need(req, rep, field, JSON_ARRAY)) != 0)
		return r;
	json_array_foreach(a, i, v) {
		size_t l = 0;
		if (!json_is_string(v) || rssp_unb64(json_string_value(v), &d, &l) != 0)
			return gw_error(rep, 400, "invalid_request", "Invalid parameter %s", field);
		free(d);
		if (i > 0 && l != len)
			return gw_error(rep, 400, "invalid_request",
			    "Invalid parameter %s: the digests differ in length", field);
		len = l;
	}
	if (csc_hash_algo_of_len(len) == 0)
		return gw_error(rep, 400, "invalid_request",
		    "Invalid digest value length in %s (%zu bytes; 32, 48 or 64 expected)", field, len);
	return csc_hash_algo_of_len(len);
}

int
csc_v1_authorize(struct gw_request *req, struct gw_reply *rep)
{
	json_t *b, *in = NULL;
	const char *status, *id;
	char request_id[GW_UUID_LEN + 1];
	long long waited = 0, left = req->cfg->csc_v1_wait, validity;
	int r, ha = 0, st;

	if ((r = csc_need(req, rep, "credentialID", JSON_STRING)) != 0 ||
	    (r = csc_need(req, rep, "numSignatures", JSON_INTEGER)) != 0 ||
	    (ha = v1_hashes(req, rep, "hash")) < 0)
		return ha < 0 ? ha : r;
	/* the request must outlive the wait */
	validity = left + 60 > 600 ? 600 : left + 60 < 300 ? 300 : left + 60;
	b = json_pack("{s:O,s:O,s:O,s:s,s:I,s:I}", "credentialID",
	    json_object_get(req->body, "credentialID"), "numSignatures",
	    json_object_get(req->body, "numSignatures"), "hashes", json_object_get(req->body, "hash"),
	    "hashAlgorithmOID", sg_hash_algo_oid(ha), "validityPeriod", (json_int_t)validity,
	    "wait", (json_int_t)(left > 60 ? 60 : left));
	if (b != NULL) {
		csc_copy(b, req->body, "description", NULL);
		csc_copy(b, req->body, "clientData", NULL);
	}
	waited = left > 60 ? 60 : left;
	if ((r = csc_call(req, rep, areq_authorize, b)) != 0 || rep->status >= 300) {
		if (rep->status != 0)
			(void)csc_map_error(rep, "credentialID");
		return r ? r : RSSP_E_INVAL;
	}
	for (;;) {
		json_decref(in);
		in = csc_take_reply(rep, &st);
		status = json_string_value(json_object_get(in, "status"));
		id = json_string_value(json_object_get(in, "requestID"));
		if (status == NULL || id == NULL) {
			r = RSSP_E_INTERNAL;
			goto out;
		}
		snprintf(request_id, sizeof(request_id), "%s", id);
		if (strcmp(status, "CONFIRMED") == 0) {
			r = gw_reply_json(rep, 200, json_pack("{s:O,s:O}", "SAD", json_object_get(in, "SAD"),
			    "expiresIn", json_object_get(in, "expiresIn")));
			goto out;
		}
		if (strcmp(status, "PENDING") != 0) {
			r = gw_error(rep, 403, "access_denied", "the signer refused the authorization");
			goto out;
		}
		if (waited >= left || gw_stopping())
			break;
		left -= waited;
		waited = left > 60 ? 60 : left;
		if ((r = csc_call(req, rep, areq_authorize_check, json_pack("{s:s,s:I}", "requestID",
		    request_id, "wait", (json_int_t)waited))) != 0 || rep->status != 200) {
			if (rep->status != 0)
				(void)csc_map_error(rep, "credentialID");
			r = r ? r : RSSP_E_INVAL;
			goto out;
		}
	}
	/* no answer in time: the app must not show it any longer */
	if ((r = csc_call(req, rep, areq_cancel, json_pack("{s:s}", "requestID", request_id))) != 0 &&
	    rep->status == 0)
		goto out;
	r = gw_error(rep, 403, "access_denied", "the signer did not confirm within %u s",
	    req->cfg->csc_v1_wait);
out:
	json_decref(in);
	return r;
}

/* hashAlgo of signHash: required unless signAlgo implies it or the digests' length
 * leaves no doubt (v1.0.4.0 lets the service derive it). */
int
csc_v1_sign_hash(struct gw_request *req, struct gw_reply *rep)
{
	const char *halgo = NULL;
	json_t *b;
	int r, ha = 0;

	if ((r = csc_need(req, rep, "credentialID", JSON_STRING)) != 0 ||
	    (r = csc_need(req, rep, "SAD", JSON_STRING)) != 0 ||
	    (ha = v1_hashes(req, rep, "hash")) < 0 ||
	    (r = csc_need(req, rep, "signAlgo", JSON_STRING)) != 0 ||
	    (r = gw_get_str(req, rep, "hashAlgo", 64, false, &halgo)) != 0)
		return ha < 0 ? ha : r;
	if (halgo != NULL && sg_hash_algo_from_oid(halgo) != ha)
		return gw_error(rep, 400, "invalid_request", sg_hash_algo_from_oid(halgo) == 0 ?
		    "Invalid parameter hashAlgo" : "Invalid parameter hashAlgo: it does not match "
		    "the length of the digests in hash");
	if (halgo == NULL) {
		/* a signAlgo that names its hash must fit the digests (else the rssp function
		 * would name a field this client did not send) */
		static const struct { const char *oid; int hash; } implied[] = {
			{ "1.2.840.113549.1.1.11", RSSP_HASH_SHA256 }, { "1.2.840.113549.1.1.12", RSSP_HASH_SHA384 },
			{ "1.2.840.113549.1.1.13", RSSP_HASH_SHA512 }, { "1.2.840.10045.4.3.2", RSSP_HASH_SHA256 },
			{ "1.2.840.10045.4.3.3", RSSP_HASH_SHA384 }, { "1.2.840.10045.4.3.4", RSSP_HASH_SHA512 },
		};
		const char *so = json_string_value(json_object_get(req->body, "signAlgo"));
		size_t i;
		for (i = 0; i < sizeof(implied) / sizeof(implied[0]); i++)
			if (strcmp(so, implied[i].oid) == 0 && implied[i].hash != ha)
				return gw_error(rep, 400, "invalid_request", "Invalid parameter hash: "
				    "the digests' length does not fit signAlgo");
	}
	b = json_pack("{s:O,s:O,s:O,s:O,s:s}", "credentialID", json_object_get(req->body, "credentialID"),
	    "SAD", json_object_get(req->body, "SAD"), "hashes", json_object_get(req->body, "hash"),
	    "signAlgo", json_object_get(req->body, "signAlgo"), "hashAlgorithmOID", sg_hash_algo_oid(ha));
	if (b != NULL)
		csc_copy(b, req->body, "signAlgoParams", NULL);
	r = csc_call(req, rep, sg_sign_hash, b);
	if (rep->status != 200 && rep->status != 0)
		(void)csc_map_error(rep, "credentialID");
	return r;
}
