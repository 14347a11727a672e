/* auth.h - the auth/... functions (auth.c), listed in the route table (routes.c). */
#ifndef RSSP_GW_AUTH_H
#define RSSP_GW_AUTH_H

#include "gw.h"

/* auth/login: Basic (rp clients), the password and refresh_token grants (form body),
 * HTTP Digest; issues an access token and, for users, a refresh token. */
int auth_login(struct gw_request *req, struct gw_reply *rep);
/* auth/revoke: revokes the caller's own token (or any, for an admin). */
int auth_revoke(struct gw_request *req, struct gw_reply *rep);

#endif
