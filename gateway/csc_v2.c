/* csc_v2.c - CSC API v2.0.0.2 under /csc/v2/: info, credentials/list, credentials/info,
 * the asynchronous credentials/authorize (202 {handle}) + authorizeCheck, and
 * signatures/signHash (with a SAD, or with an OAuth credential token in its place).
 * auth/login and auth/revoke are auth.c's handlers under their CSC names. Methods of
 * the specification this service does not implement answer 501 and are not listed in
 * info's methods. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "csc.h"
#include "oauth.h"
#include "rssp_log.h"
#include "signing.h"

#ifndef RSSP_VERSION
#define RSSP_VERSION "0.0.0"
#endif

/* What info lists: exactly the implemented methods of this table. */
static const char *const v2_methods[] = {
	"auth/login", "auth/revoke", "credentials/list", "credentials/info",
	"credentials/authorize", "credentials/authorizeCheck", "signatures/signHash",
	"oauth2/authorize", "oauth2/token", "oauth2/revoke",
};

int
csc_v2_info(struct gw_request *req, struct gw_reply *rep)
{
	json_t *o, *methods;
	char base[256], oauth[300];
	size_t i;

	if ((methods = json_array()) == NULL)
		return RSSP_E_NOMEM;
	for (i = 0; i < sizeof(v2_methods) / sizeof(v2_methods[0]); i++)
		json_array_append_new(methods, json_string(v2_methods[i]));
	snprintf(oauth, sizeof(oauth), "%s/csc/v2", csc_base_url(req, base, sizeof(base)));
	/* signature_formats and conformance_levels are empty: this service signs hashes
	 * (signHash) and makes no signed document or AdES form itself (no signDoc). */
	o = csc_info_json(req, "2.0.0.2", json_pack("{s:[ssss],s:s,s:s,s:b,s:o,s:b,"
	    "s:{s:[sssssssss]},s:{s:[],s:[]},s:[]}",
	    "authType", "basic", "digest", "oauth2client", "oauth2code",
	    "oauth2", oauth,
	    "oauth2Issuer", oauth,
	    "asynchronousOperationMode", 0,
	    "methods", methods,
	    "validationInfo", 0,
	    "signAlgorithms", "algos", "1.2.840.113549.1.1.1", "1.2.840.113549.1.1.11",
	    "1.2.840.113549.1.1.12", "1.2.840.113549.1.1.13", "1.2.840.113549.1.1.10",
	    "1.2.840.10045.2.1", "1.2.840.10045.4.3.2", "1.2.840.10045.4.3.3", "1.2.840.10045.4.3.4",
	    "signature_formats", "formats", "envelope_properties",
	    "conformance_levels"));
	if (o != NULL)
		json_object_set_new(o, "version", json_string(RSSP_VERSION));
	return gw_reply_json(rep, 200, o);
}

/* One credentials/info answer in the v2 shape (for info and list's credentialInfos). */
static int
info_v2(struct gw_request *req, struct gw_reply *rep, const char *cred_id, json_t **outp)
{
	return csc_cred_info(req, rep, cred_id, csc_cred_info_v2, outp);
}

int
csc_v2_cred_info(struct gw_request *req, struct gw_reply *rep)
{
	json_t *o = NULL;
	int r;

	if ((r = csc_need(req, rep, "credentialID", JSON_STRING)) != 0)
		return r;
	if ((r = info_v2(req, rep, json_string_value(json_object_get(req->body, "credentialID")), &o)) != 0)
		return r;
	return gw_reply_json(rep, 200, o);
}

int
csc_v2_cred_list(struct gw_request *req, struct gw_reply *rep)
{
	json_t *b, *in = NULL, *ids, *infos = NULL, *o = NULL, *ci;
	bool want_info = false, only_valid = false;
	size_t i;
	int r, st;

	if ((r = gw_get_bool(req, rep, "credentialInfo", false, false, &want_info)) != 0 ||
	    (r = gw_get_bool(req, rep, "onlyValid", false, false, &only_valid)) != 0)
		return r;
	b = json_object();
	if (b != NULL) {
		csc_copy(b, req->body, "userID", NULL);
		csc_copy(b, req->body, "maxResults", NULL);
		csc_copy(b, req->body, "pageToken", NULL);
		if (only_valid)
			json_object_set_new(b, "status", json_string("ACTIVE"));
	}
	if ((r = csc_call(req, rep, cred_list, b)) != 0 || rep->status != 200)
		return r ? r : RSSP_E_INVAL;
	in = csc_take_reply(rep, &st);
	ids = json_object_get(in, "credentialIDs");
	if ((o = json_pack("{s:O}", "credentialIDs", ids)) == NULL) {
		r = RSSP_E_NOMEM;
		goto out;
	}
	csc_copy(o, in, "nextPageToken", NULL);
	if (only_valid)
		json_object_set_new(o, "onlyValid", json_true());
	if (want_info) {
		if ((infos = json_array()) == NULL) {
			r = RSSP_E_NOMEM;
			goto out;
		}
		for (i = 0; i < json_array_size(ids); i++) {
			const char *id = json_string_value(json_array_get(ids, i));
			if ((r = info_v2(req, rep, id, &ci)) != 0)
				goto out;
			json_object_set_new(ci, "credentialID", json_string(id));
			json_array_append_new(infos, ci);
		}
		json_object_set_new(o, "credentialInfos", infos);
		infos = NULL;
	}
	r = gw_reply_json(rep, 200, o);
	o = NULL;
out:
	json_decref(in);
	json_decref(o);
	json_decref(infos);
	return r;
}

/* credentials/authorize: the approval request goes to the signer's app; the client
 * gets a handle to poll with authorizeCheck (the asynchronous form of the spec). */
int
csc_v2_authorize(struct gw_request *req, struct gw_reply *rep)
{
	json_t *b, *in;
	int r, st;

	if ((r = csc_need(req, rep, "credentialID", JSON_STRING)) != 0 ||
	    (r = csc_need(req, rep, "numSignatures", JSON_INTEGER)) != 0 ||
	    (r = csc_need(req, rep, "hashes", JSON_ARRAY)) != 0 ||
	    (r = csc_need(req, rep, "hashAlgorithmOID", JSON_STRING)) != 0)
		return r;
	b = json_object();
	if (b != NULL) {
		static const char *const f[] = { "credentialID", "numSignatures", "hashes",
		    "hashAlgorithmOID", "description", "clientData" };
		size_t i;
		for (i = 0; i < sizeof(f) / sizeof(f[0]); i++)
			csc_copy(b, req->body, f[i], NULL);
	}
	if ((r = csc_call(req, rep, areq_authorize, b)) != 0 || rep->status >= 300) {
		if (rep->status != 0)
			(void)csc_map_error(rep, "credentialID");
		return r ? r : RSSP_E_INVAL;
	}
	in = csc_take_reply(rep, &st);
	r = gw_reply_json(rep, 202, json_pack("{s:O}", "handle", json_object_get(in, "requestID")));
	json_decref(in);
	return r;
}

int
csc_v2_authorize_check(struct gw_request *req, struct gw_reply *rep)
{
	json_t *in;
	const char *handle, *status;
	int r, st;

	if ((r = csc_need(req, rep, "handle", JSON_STRING)) != 0)
		return r;
	handle = json_string_value(json_object_get(req->body, "handle"));
	if (!gw_is_uuid(handle))
		return gw_error(rep, 400, "invalid_request", "Invalid parameter handle");
	if ((r = csc_call(req, rep, areq_authorize_check, json_pack("{s:s}", "requestID", handle))) != 0 ||
	    rep->status != 200) {
		if (rep->status != 0)
			(void)csc_map_error(rep, "handle");
		return r ? r : RSSP_E_INVAL;
	}
	in = csc_take_reply(rep, &st);
	status = json_string_value(json_object_get(in, "status"));
	if (status != NULL && strcmp(status, "CONFIRMED") == 0)
		r = gw_reply_json(rep, 200, json_pack("{s:O,s:O}", "SAD", json_object_get(in, "SAD"),
		    "expiresIn", json_object_get(in, "expiresIn")));
	else if (status != NULL && strcmp(status, "PENDING") == 0)
		r = gw_reply_json(rep, 202, json_object());
	else
		r = gw_error(rep, 403, "access_denied", "the signer refused the authorization in 'handle'");
	json_decref(in);
	return r;
}

/* signatures/signHash: the rssp function with the same field names; operationMode "A"
 * (asynchronous) is refused; without a SAD the bearer must be an OAuth credential
 * token, which stands for the SAD of the request the signer approved. */
int
csc_v2_sign_hash(struct gw_request *req, struct gw_reply *rep)
{
	static const char *const f[] = { "credentialID", "SAD", "hashes", "hashAlgorithmOID",
	    "signAlgo", "signAlgoParams" };
	const char *mode = NULL;
	char *sad = NULL;
	char tok_hash[65] = "";
	json_t *b;
	size_t i;
	int r;

	if ((r = gw_get_str(req, rep, "operationMode", 1, false, &mode)) != 0)
		return r;
	if (mode != NULL && strcmp(mode, "S") != 0)
		return gw_error(rep, 400, "invalid_request", strcmp(mode, "A") == 0 ?
		    "operationMode \"A\" (asynchronous) is not supported by this service; use \"S\"" :
		    "Invalid parameter operationMode");
	if ((r = csc_need(req, rep, "credentialID", JSON_STRING)) != 0 ||
	    (r = csc_need(req, rep, "hashes", JSON_ARRAY)) != 0 ||
	    (r = csc_need(req, rep, "signAlgo", JSON_STRING)) != 0)
		return r;
	if (json_object_get(req->body, "SAD") == NULL || !req->authenticated) {
		/* an OAuth credential token in place of the SAD (and of the bearer) */
		if ((r = oauth_credential_sad(req, rep, json_string_value(json_object_get(req->body,
		    "credentialID")), &sad, tok_hash)) != 0)
			return r;
	} else if ((r = csc_need(req, rep, "SAD", JSON_STRING)) != 0) {
		return r;
	}
	if ((b = json_object()) != NULL) {
		for (i = 0; i < sizeof(f) / sizeof(f[0]); i++)
			csc_copy(b, req->body, f[i], NULL);
		if (sad != NULL)
			json_object_set_new(b, "SAD", json_string(sad));
	}
	if (sad != NULL) {
		OPENSSL_cleanse(sad, strlen(sad));
		free(sad);
	}
	r = csc_call(req, rep, sg_sign_hash, b);
	if (tok_hash[0])
		/* a refusal (4xx) gives the token back; a signature, or a failure after
		 * which the engine may have signed, keeps it used */
		oauth_credential_done(req, tok_hash, rep->status < 400 || rep->status >= 500);
	if (rep->status != 200 && rep->status != 0)
		(void)csc_map_error(rep, "credentialID");
	return r;
}
