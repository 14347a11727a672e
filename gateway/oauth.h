/* oauth.h - OAuth 2.0 as CSC API v2 defines it (oauth.c): oauth2/token (client
 * credentials for RP clients; authorization code with PKCE S256 for credential
 * authorization), oauth2/authorize (the signer's waiting page), oauth2/revoke; and the
 * credential-scope access token that signatures/signHash accepts in place of a SAD. */
#ifndef RSSP_GW_OAUTH_H
#define RSSP_GW_OAUTH_H

#include <stdbool.h>

#include "gw.h"

/* signatures/signHash without a SAD: the request's "Authorization: Bearer" must be a
 * credential token issued for credential cred_id and not used yet. On success it is
 * claimed (no second call can use it), the caller becomes the RP client it was issued
 * to (req->principal, req->authenticated), *sadp is the base64 SAD of the approved
 * request (malloc'd; wipe and free) and tok_hash its hex SHA-256 for
 * oauth_credential_done(). Else sets 401 invalid_token (unknown, used or expired
 * token), 400 invalid_request (no SAD and a session bearer; another credential) and
 * returns RSSP_E_INVAL; RSSP_E_DB etc. without a reply. */
int oauth_credential_sad(struct gw_request *req, struct gw_reply *rep, const char *cred_id,
    char **sadp, char tok_hash[65]) RSSP_WUR;
/* After the signHash call with a claimed token: ok = it signed (the token stays used),
 * else the claim is given back. */
void oauth_credential_done(struct gw_request *req, const char *tok_hash, bool ok);

struct gw_config;
/* The per-address and per-credential limits of oauth2/authorize (RSSP_OAUTH_*; the
 * runtime calls these once). init returns 0 or RSSP_E_NOMEM / RSSP_E_INVAL. */
int oauth_limits_init(const struct gw_config *cfg) RSSP_WUR;
void oauth_limits_shutdown(void);

/* The OAuth handlers (routes.c lists them): oauth2/authorize (GET; GW_GET), its
 * stylesheet, oauth2/token and oauth2/revoke (argon2id: GW_LONG), and
 * admin/clients/update (the redirect URIs). */
int oauth_authorize(struct gw_request *req, struct gw_reply *rep);
int oauth_css(struct gw_request *req, struct gw_reply *rep);
int oauth_token(struct gw_request *req, struct gw_reply *rep);
int oauth_revoke(struct gw_request *req, struct gw_reply *rep);
int oauth_clients_update(struct gw_request *req, struct gw_reply *rep);

/* Stores the optional "redirectURIs" member of req->body (1..10 absolute URIs: https,
 * or http to a loopback host; no fragment) for client_id, inside the caller's
 * transaction; replace: the member is required and replaces the set. Sets 400 naming
 * the field and returns RSSP_E_INVAL for a bad one. */
int oauth_redirects_store(struct gw_request *req, struct gw_reply *rep, const char *client_id,
    bool replace) RSSP_WUR;

#endif
