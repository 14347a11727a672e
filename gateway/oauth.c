/* oauth.c - OAuth 2.0 as CSC API v2 defines it (oauth.h). */
#include <stdlib.h>
#include <string.h>

#include "csc.h"
#include "oauth.h"
#include "rssp_log.h"

int
oauth_credential_sad(struct gw_request *req, struct gw_reply *rep, const char *cred_id,
    char **sadp, char tok_hash[65])
{
	(void)cred_id;
	(void)sadp;
	(void)tok_hash;
	if (req->authenticated)
		return gw_error(rep, 400, "invalid_request", "Missing (or invalid type) string parameter SAD");
	return gw_error(rep, 401, "invalid_token", "a bearer token or an OAuth credential token is required");
}

void
oauth_credential_done(struct gw_request *req, const char *tok_hash, bool ok)
{
	(void)req;
	(void)tok_hash;
	(void)ok;
}

const struct gw_route gw_routes_oauth[] = {
	{ 0 },
};
