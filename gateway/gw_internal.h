/* gw_internal.h - the framework's own functions, shared between its .c files only.
 * Handlers of other modules use gw.h. */
#ifndef RSSP_GW_INTERNAL_H
#define RSSP_GW_INTERNAL_H

#include <microhttpd.h>

#include "db.h"
#include "gw.h"

/* What gw_request.priv_ points to: filled by server.c, read through the accessors of
 * context.c only. */
struct gw_req_priv {
	struct gw_db_pool *pool;
	struct MHD_Connection *conn;
	const struct gw_route *route;
};

/* gw_reply.flags_: the server answers 401 with a Digest challenge (stale=true). */
#define GW_REPLY_DIGEST_CHALLENGE 0x1u
#define GW_REPLY_DIGEST_STALE     0x2u

/* secrets.c: sets the argon2 limits from cfg and builds the dummy hash. 0 or RSSP_E*. */
int gw_secrets_init(const struct gw_config *cfg) RSSP_WUR;
/* reply.c: frees the body and headers of a reply and zeroes it. */
void gw_reply_release(struct gw_reply *rep);

/* auth.c: the bearer middleware. Authenticates "Authorization: Bearer" of req (sets
 * req->principal, req->authenticated). Returns 0, or sets 401 invalid_token on rep and
 * returns RSSP_E_DENIED; RSSP_E_DB/UNAVAILABLE on a database failure (no reply set). */
int gw_auth_bearer(struct gw_request *req, struct gw_reply *rep) RSSP_WUR;
/* auth.c: Digest login needs the MHD connection; called by the login handler. */
int gw_auth_init(const struct gw_config *cfg) RSSP_WUR;
void gw_auth_shutdown(void);

/* runtime.c: the one owner of the process-wide state (token cache, rate limiter, argon2
 * limits, metrics, the long-poll thread). init once before serving (0 or RSSP_E*);
 * shutdown after the server stopped. */
int gw_runtime_init(const struct gw_config *cfg) RSSP_WUR;
void gw_runtime_shutdown(void);

/* context.c: 1 on the threads of the long pool (set by server.c). */
extern __thread int gw_thread_is_long;
/* context.c: the MHD connection of a request (auth/login reads Basic and Digest
 * credentials through it), and the pool its database connection comes from (db.c);
 * NULL outside a request. */
struct MHD_Connection *gw_request_connection(const struct gw_request *req);
struct gw_db_pool *gw_request_pool(const struct gw_request *req);
/* context.c: from now on gw_stopping() is true (server.c, on SIGTERM). */
void gw_stopping_set(void);

/* server.c */
struct gw_server;
int gw_server_start(const struct gw_config *cfg, struct gw_db_pool *pool,
    struct engine_client *engine, struct gw_server **sp) RSSP_WUR;
void gw_server_stop(struct gw_server *s);

/* openapi: the document compiled in (openapi_data.c, generated). */
extern const char gw_openapi_json[];
extern const unsigned long gw_openapi_json_len;

#endif
