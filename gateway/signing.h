/* signing.h - shared by the signing modules of the gateway (sic.c, credentials.c,
 * auth_requests.c, signing.c): encodings, tenant checks, the engine's refusals, and their
 * handlers (listed in the route table, routes.c). */
#ifndef RSSP_GW_SIGNING_H
#define RSSP_GW_SIGNING_H

#include <stddef.h>
#include <stdint.h>

#include "algo.h"
#include "authdata.h"
#include "buf.h"
#include "engine_client.h"
#include "gw.h"
#include "rssp_err.h"

/* ---- encodings ---- */

/* Base64 and hex: rssp_b64, rssp_unb64, rssp_hex of buf.h; algorithms: algo.h. */

/* Lookups in algo.h's table, as the handlers need them: the HashAlgo of a
 * hashAlgorithmOID (0 when unknown) and back ("" when unknown), the KeyAlgo of a REST
 * keyAlgo name ("rsa2048", ...; 0 when unknown). */
int sg_hash_algo_from_oid(const char *oid);
const char *sg_hash_algo_oid(int hash_algo);
int sg_key_algo_parse(const char *name);
/* PostgreSQL bytea text form "\x<hex>" of data; malloc'd, NULL on allocation failure. */
char *sg_bytea(const uint8_t *data, size_t len);
/* Decodes a bytea text value "\x<hex>". Returns 0 and *outp (malloc'd, may hold 0
 * bytes) / *lenp, or RSSP_E_INVAL. */
int sg_unbytea(const char *s, uint8_t **outp, size_t *lenp) RSSP_WUR;
/* Reads a required (or optional) uuid field; sets 400 naming the field when it is not
 * a uuid. */
int sg_get_uuid(struct gw_request *req, struct gw_reply *rep, const char *field,
    bool required, const char **vp) RSSP_WUR;
/* A device uuid / name as the app sends it: 1..128 printable ASCII characters. */
int sg_get_device_uuid(struct gw_request *req, struct gw_reply *rep, const char **vp) RSSP_WUR;

/* Decodes the request's field 'hashes' (n base64 strings) into n digests of hlen bytes
 * each. Returns 0 and *hashesp (a malloc'd array of n malloc'd digests; the caller frees
 * both), 400 naming hashes[i] (RSSP_E_INVAL), or RSSP_E_NOMEM. */
int sg_decode_hashes(struct gw_reply *rep, const char *const *b64, size_t n, size_t hlen,
    uint8_t ***hashesp) RSSP_WUR;

/* A random decimal string of ndigits digits (uniform), NUL-terminated into out. */
void sg_random_digits(char *out, size_t ndigits);

/* ---- tenants ---- */

/* The account a caller wants to act on, with what the handlers need. */
struct sg_account {
	char id[GW_UUID_LEN + 1];
	char status[32];
	char role[32];
	char email[256];
	char mobile[32];
	char full_name[RSSP_MAX_TEXT_LEN + 1];
};

/* Loads account user_id (NULL = the caller itself) and checks that the caller may act
 * on it: admin any, rp the accounts it registered, company_admin its company, anyone
 * itself. Sets 404 not_found / 403 access_denied and returns RSSP_E_INVAL when not;
 * returns RSSP_E_DB etc. without a reply on a database failure. */
int sg_account_for(struct gw_request *req, struct gw_reply *rep, const char *user_id,
    const char *field, struct sg_account *a) RSSP_WUR;

/* ---- the engine ---- */

/* Sets the reply for an engine call that did not succeed (er->status != ENGINE_OK):
 * refusals 400 / 403 / 410, an unreachable or unavailable engine 503
 * engine_unavailable; anything else is logged and RSSP_E_INTERNAL (500). what names
 * the operation in the text ("approval", "activation"). Returns the value to return
 * from the handler. */
int sg_engine_error(struct gw_reply *rep, const struct engine_result *er, const char *what);

/* ---- handlers (routes.c) ---- */
int sic_activation_code(struct gw_request *req, struct gw_reply *rep);
int sic_activate_initialize(struct gw_request *req, struct gw_reply *rep);
int sic_activate_send_device(struct gw_request *req, struct gw_reply *rep);
int sic_status(struct gw_request *req, struct gw_reply *rep);
int sic_admin_devices_revoke(struct gw_request *req, struct gw_reply *rep);

int cred_create(struct gw_request *req, struct gw_reply *rep);
int cred_list(struct gw_request *req, struct gw_reply *rep);
int cred_info(struct gw_request *req, struct gw_reply *rep);
int cred_activate_request(struct gw_request *req, struct gw_reply *rep);
int cred_activate_response(struct gw_request *req, struct gw_reply *rep);
int cred_activate_cancel(struct gw_request *req, struct gw_reply *rep);
int cred_revoke(struct gw_request *req, struct gw_reply *rep);

int areq_authorize(struct gw_request *req, struct gw_reply *rep);
int areq_authorize_check(struct gw_request *req, struct gw_reply *rep);
int areq_list(struct gw_request *req, struct gw_reply *rep);
int areq_info(struct gw_request *req, struct gw_reply *rep);
int areq_confirm(struct gw_request *req, struct gw_reply *rep);
int areq_cancel(struct gw_request *req, struct gw_reply *rep);

int sg_sign_hash(struct gw_request *req, struct gw_reply *rep);

/* Ends the thread that wakes the long-polls (started by the first one), after the
 * server stopped; gw_runtime_shutdown calls it. */
void areq_waiter_stop(void);

/* Wakes the long-polls waiting on a request: call inside the transaction that changes
 * its status (pg_notify, delivered on commit). Returns 0 or RSSP_E*. */
int areq_notify(struct gw_request *req, const char *request_id) RSSP_WUR;

#endif
