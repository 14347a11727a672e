/* csc.h - the Cloud Signature Consortium API faces of the gateway: CSC API v1.0.4.0
 * under /csc/v1/ (csc_v1.c), v2.0.0.2 under /csc/v2/ (csc_v2.c), and OAuth 2.0 as
 * CSC v2 defines it (oauth.c).
 *
 * The CSC handlers translate: they read the CSC request, check the CSC-specific fields
 * themselves (so that an error names the field the client sent), build the body of the
 * rssp function that means the same (gateway/openapi.json) and run that function's handler
 * (credentials.c, auth_requests.c, signatures.c) with csc_call(); then they reshape its answer.
 * No signing, authorization or tenant logic lives here. */
#ifndef RSSP_GW_CSC_H
#define RSSP_GW_CSC_H

#include <jansson.h>

#include "gw.h"

/* The CSC handlers (routes.c lists them). v1 (csc_v1.c): */
int csc_v1_info(struct gw_request *req, struct gw_reply *rep);
int csc_v1_cred_list(struct gw_request *req, struct gw_reply *rep);
int csc_v1_cred_info(struct gw_request *req, struct gw_reply *rep);
int csc_v1_authorize(struct gw_request *req, struct gw_reply *rep);   /* GW_LONG: it waits */
int csc_v1_sign_hash(struct gw_request *req, struct gw_reply *rep);
/* v2 (csc_v2.c): */
int csc_v2_info(struct gw_request *req, struct gw_reply *rep);
int csc_v2_cred_list(struct gw_request *req, struct gw_reply *rep);
int csc_v2_cred_info(struct gw_request *req, struct gw_reply *rep);
int csc_v2_authorize(struct gw_request *req, struct gw_reply *rep);
int csc_v2_authorize_check(struct gw_request *req, struct gw_reply *rep);
/* GW_PUBLIC: with a session bearer and a SAD, or an OAuth credential token alone */
int csc_v2_sign_hash(struct gw_request *req, struct gw_reply *rep);

/* Runs the rssp handler fn with body as the request body (the reference is stolen;
 * its strings are wiped before it is freed), then puts the caller's body back. The
 * reply is fn's. Returns fn's value; RSSP_E_NOMEM when body is NULL. */
int csc_call(struct gw_request *req, struct gw_reply *rep, gw_handler_fn fn, json_t *body) RSSP_WUR;

/* Takes the JSON body out of rep (the caller owns it; NULL when none) and clears the
 * reply, so that the handler can set a reshaped one. *statusp: the status it had. */
json_t *csc_take_reply(struct gw_reply *rep, int *statusp);

/* "2026-12-03T05:59:05Z" (RFC 3339 UTC, as the rssp functions answer) to the CSC
 * GeneralizedTime "20261203055905Z". Returns 0, or RSSP_E_INVAL for another shape. */
int csc_gentime(const char *rfc3339, char out[16]) RSSP_WUR;

/* HashAlgo (algo.h RSSP_HASH_*) of a digest length 32/48/64, else 0. */
int csc_hash_algo_of_len(size_t len);

/* Copies member name of src into dst (if present), under the name as. */
void csc_copy(json_t *dst, const json_t *src, const char *name, const char *as);

/* A 501 for a CSC method the service does not implement (CSC API, "501 Not Implemented"). */
int csc_not_implemented(struct gw_request *req, struct gw_reply *rep);

/* The key and signature algorithm OIDs a credential of key_algo ("rsa2048", ...) can
 * use, as the key.algo array of credentials/info: the key's own OID (rsaEncryption,
 * id-ecPublicKey) then every signature OID signHash accepts for it. NULL on ENOMEM. */
json_t *csc_key_algos(const char *key_algo);

/* Reshapes the answer of the rssp credentials/info (internal) into the CSC
 * credentials/info body of version 1 or 2 (csc_v1.c and csc_v2.c explain the fields).
 * Returns a new object or NULL (ENOMEM, or a date that does not parse: logged). */
json_t *csc_cred_info_v1(const json_t *in);
json_t *csc_cred_info_v2(const json_t *in);

/* Calls the rssp credentials/info for cred_id (with the request's certificates,
 * certInfo and authInfo) and reshapes its answer with shape (csc_cred_info_v1 or _v2)
 * into *outp. Returns 0, or RSSP_E* with the reply set (a 404 mapped by csc_map_error
 * naming credentialID). */
int csc_cred_info(struct gw_request *req, struct gw_reply *rep, const char *cred_id,
    json_t *(*shape)(const json_t *), json_t **outp) RSSP_WUR;

/* After an rssp handler answered: a 404 (unknown object) becomes the CSC 400
 * invalid_request "Invalid parameter <field>", a 410 (expired) a 400 invalid_request
 * with its text, as the CSC error tables have them. Returns RSSP_E_INVAL when it
 * rewrote the reply, else RSSP_E_INVAL too (the reply is left as it is): callers
 * return it only on a failed status. */
int csc_map_error(struct gw_reply *rep, const char *field);

/* Checks that req->body has name with the JSON type (a non-empty string or array);
 * else sets the CSC 400 invalid_request "Missing (or invalid type) <type> parameter
 * <name>" and returns RSSP_E_INVAL. */
int csc_need(struct gw_request *req, struct gw_reply *rep, const char *name, json_type type) RSSP_WUR;

/* "https://host[:port]" of this request (the Host header, checked; X-Forwarded-Proto
 * behind a trusted proxy), into buf. Returns buf. */
const char *csc_base_url(struct gw_request *req, char *buf, size_t n);

/* The answer to info: what both versions say alike (specs, name, logo, region, lang,
 * description, in this order), then the fields of rest, the version's own, in their
 * order. Takes rest (also on failure); returns NULL when out of memory or rest is NULL. */
json_t *csc_info_json(struct gw_request *req, const char *specs, json_t *rest);

#endif
