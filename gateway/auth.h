/* auth.h - the auth/... functions (auth.c), listed in the route table (routes.c), and
 * the tokens they issue: revocation and this replica's token cache. */
#ifndef RSSP_GW_AUTH_H
#define RSSP_GW_AUTH_H

#include <libpq-fe.h>

#include "gw.h"

/* auth/login: Basic (rp clients), the password and refresh_token grants (form body),
 * HTTP Digest; issues an access token and, for users, a refresh token. */
int auth_login(struct gw_request *req, struct gw_reply *rep);
/* auth/revoke: revokes the caller's own token (or any, for an admin). */
int auth_revoke(struct gw_request *req, struct gw_reply *rep);

/* ---- tokens --------------------------------------------------------------------------- */

/* Which tokens gw_tokens_revoke ends. */
enum gw_token_scope {
	GW_TOKENS_ACCOUNT,             /* every access and refresh token of account id (disable) */
	GW_TOKENS_ACCOUNT_BUT_FAMILY,  /* the same but the login session except_family
	                                  (changePassphrase: this session goes on) */
	GW_TOKENS_FAMILY,              /* every token of login session (family) id */
	GW_TOKENS_ONE,                 /* one token: id is the hex SHA-256 of the token; the
	                                  caller drops it from the cache */
};
/* The one place that revokes tokens: in the database (on db) and, but for GW_TOKENS_ONE,
 * in this replica's token cache. Other replicas notice within RSSP_TOKEN_CACHE_TTL
 * seconds. Returns 0 or RSSP_E*. If the caller runs this inside its own transaction
 * and then rolls back, the cache invalidation still stands (harmless: it only forces a
 * lookup). */
int gw_tokens_revoke(PGconn *db, enum gw_token_scope scope, const char *id,
    const char *except_family) RSSP_WUR;
/* Drops an account's cached tokens on this replica (after disabling it, for example). */
void gw_token_cache_forget_account(const char *account_id);

#endif
