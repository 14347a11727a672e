/* gw.h - the gateway framework as a handler sees it: routes, roles, the per-request
 * context, replies and error replies, the JSON field getters. The other areas have
 * their own headers: db.h (queries, transactions), secrets.h (passphrases, random
 * ids), auth.h (tokens), metrics.h, tenant.h (who may see what), routes.h.
 *
 * Every function of the gateway is one line of the route table (routes.c). The
 * framework (server.c) parses the request, authenticates the bearer token, checks the
 * role mask, borrows a database connection for the request, calls the handler, and
 * sends the reply. Handlers run on the HTTP server's threads;
 * everything here is thread-safe unless said otherwise.
 *
 * Handler contract:
 *   int handler(struct gw_request *req, struct gw_reply *rep);
 * - On success set the reply with gw_reply_json() (or gw_reply_empty() for 204) and
 *   return 0.
 * - For a client error call gw_error() (it returns RSSP_E_INVAL) and return its value,
 *   or return the negative value of a getter that failed: a getter that fails has
 *   already set the error reply. Whenever rep holds a status, that reply is sent,
 *   whatever the return value.
 * - Return a negative RSSP_E* code without setting a reply for an internal failure:
 *   RSSP_E_UNAVAILABLE -> 503 database_unavailable when the request's database
 *   connection is broken (or none could be had), else 503 engine_unavailable
 *   (Retry-After: 1); anything else ->
 *   500 internal_error. The details go to the log, never to the client.
 * - A transaction still open when the handler returns is rolled back.
 */
#ifndef RSSP_GW_H
#define RSSP_GW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "config.h"
#include "rssp_err.h"

struct engine_client; /* engine/client/engine_client.h */

/* Roles, as bits so that a route lists the roles it allows. */
#define GW_ROLE_ADMIN         0x1u
#define GW_ROLE_RP            0x2u
#define GW_ROLE_COMPANY_ADMIN 0x4u
#define GW_ROLE_SIGNER        0x8u
#define GW_ROLES_ALL          0xfu

/* Returns "admin", "rp", "company_admin", "signer" for one GW_ROLE_* bit, else "". */
const char *gw_role_name(unsigned role);
/* Returns the GW_ROLE_* bit of a role name as stored in accounts.role, else 0. */
unsigned gw_role_parse(const char *name);

#define GW_UUID_LEN 36 /* text form of a uuid, without the NUL */
/* 1 when s is a uuid in the text form PostgreSQL writes (8-4-4-4-12 lowercase hex
 * digits), else 0. */
int gw_is_uuid(const char *s);

/* The authenticated caller (filled by the framework from the bearer token). */
struct gw_principal {
	char account_id[GW_UUID_LEN + 1];
	unsigned role;                       /* one GW_ROLE_* bit */
	char company_id[GW_UUID_LEN + 1];    /* "" when the account has no company */
	char registered_by[GW_UUID_LEN + 1]; /* the rp (or admin) account that registered it; "" when none */
	char token_family[GW_UUID_LEN + 1];  /* the login session the access token belongs to */
};

/* Route flags. */
#define GW_PUBLIC       0x1u /* no bearer token needed (info, auth/login, users/confirm) */
#define GW_NEEDS_ENGINE 0x2u /* 503 engine_unavailable when no engine client exists */
#define GW_NO_DB        0x4u /* the handler needs no database connection */
#define GW_RAW_BODY     0x8u /* the body need not be JSON (auth/login: form or empty) */
#define GW_LONG         0x10u /* the handler may block for long (a long-poll): it runs on a
                                 separate pool of RSSP_LONG_THREADS threads with its connection
                                 suspended, never on an HTTP thread. A request whose body has
                                 an integer "wait" > 0 is treated so on any route. */
#define GW_GET          0x20u /* the route also answers GET (a browser page): the query parameters
                                 become req->body, an object of strings; req->method says which */
#define GW_WAITS        0x40u /* with GW_LONG: the handler waits for someone else (the signer),
                                 like a request with "wait": it counts against the long-poll
                                 caps (RSSP_WAITS_PER_CLIENT, RSSP_WAITS_TOTAL) */

struct gw_request;
struct gw_reply;

typedef int (*gw_handler_fn)(struct gw_request *req, struct gw_reply *rep);

/* One POST function. A table ends with an entry whose path is NULL ({0}). */
struct gw_route {
	const char *path;      /* full path, e.g. "/rssp/users/register" */
	unsigned flags;        /* GW_PUBLIC, GW_NEEDS_ENGINE, ... */
	unsigned roles;        /* mask of GW_ROLE_* allowed; ignored for GW_PUBLIC routes */
	gw_handler_fn handler;
};

/* The per-request context. Everything is borrowed and valid until the handler returns. */
struct gw_request {
	const char *request_id;          /* the X-Request-ID of this request */
	const char *client_addr;         /* the peer's address as text */
	const char *method;
	const char *path;
	json_t *body;                    /* the parsed JSON object; an empty object for an empty body;
	                                    for a form body (GW_RAW_BODY routes) an object of strings */
	const char *raw_body;            /* the body bytes, NUL-terminated */
	size_t raw_body_len;
	bool authenticated;              /* false on GW_PUBLIC routes without a valid bearer token */
	struct gw_principal principal;   /* valid when authenticated */
	PGconn *db;                      /* borrowed from the pool for this request; NULL with GW_NO_DB */
	struct engine_client *engine;    /* shared by all threads; NULL when the gateway has none */
	const struct gw_config *cfg;
	const struct gw_route *routes;   /* the route table being served (info lists it) */
	void *priv_;                     /* the framework's own state; do not touch */
};

#define GW_MAX_REPLY_HEADERS 4

struct gw_reply {
	int status;                      /* 0 until a reply is set */
	json_t *body;                    /* owned by the reply; NULL for no body */
	char *headers[GW_MAX_REPLY_HEADERS][2]; /* extra headers, owned (name, value) */
	unsigned n_headers;
	unsigned flags_;                 /* the framework's own (Digest challenge); do not touch */
	char *text_, *ctype_;            /* a non-JSON reply (gw_reply_text); do not touch */
};

/* Sets the reply: status and body. Steals the reference to body (may be NULL for no
 * body). Returns 0, or RSSP_E_NOMEM when body is NULL for a status that needs one (a
 * failed json_pack): the reply is then unset and the framework answers 500. */
int gw_reply_json(struct gw_reply *rep, int status, json_t *body);
/* Sets an empty reply (204 No Content usually). Returns 0. */
int gw_reply_empty(struct gw_reply *rep, int status);
/* Sets a reply that is not JSON (an HTML page, a stylesheet): status, Content-Type and
 * text are copied. Returns 0 or RSSP_E_NOMEM (the reply is then unset). */
int gw_reply_text(struct gw_reply *rep, int status, const char *ctype, const char *text) RSSP_WUR;
/* Adds a response header (copied). Returns 0, RSSP_E_TOOBIG past GW_MAX_REPLY_HEADERS,
 * RSSP_E_NOMEM. */
int gw_reply_header(struct gw_reply *rep, const char *name, const char *value) RSSP_WUR;

/* Sets an error reply {"error": code, "error_description": printf(fmt, ...)} with the
 * given HTTP status, replacing any reply set before. code is one of the error codes of gateway/openapi.json.
 * The description must name the offending field and never hold a secret or internals;
 * bound attacker-supplied strings with %.100s. For 401 invalid_token it adds
 * WWW-Authenticate: Bearer; for 429 and 503, Retry-After: 1 unless one is set.
 * Returns RSSP_E_INVAL so that `return gw_error(...)` propagates as a failure. */
int gw_error(struct gw_reply *rep, int http_status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A request header (case-insensitive name), or NULL. Borrowed for the request. */
const char *gw_header(const struct gw_request *req, const char *name);

/* ---- JSON field getters ------------------------------------------------------------
 * Each reads one member of req->body. On a missing required member, a wrong type or
 * a value out of range it sets 400 invalid_request naming the field ("missing field
 * 'email'", "field 'email' must be a string of at most 254 characters") and returns
 * RSSP_E_INVAL. An absent optional member is a success that sets the default. Out-
 * parameters are set only on success. */

/* A string of 1..maxlen bytes (valid UTF-8, no NUL). Required: absent or "" is an
 * error. Optional: absent or null -> *vp = NULL; "" is accepted. *vp is borrowed from
 * req->body. */
int gw_get_str(struct gw_request *req, struct gw_reply *rep, const char *field,
    size_t maxlen, bool required, const char **vp) RSSP_WUR;
/* An integer in [min, max]. Optional and absent -> *vp = def. */
int gw_get_int(struct gw_request *req, struct gw_reply *rep, const char *field,
    long long min, long long max, bool required, long long def, long long *vp) RSSP_WUR;
/* A boolean. Optional and absent -> *vp = def. */
int gw_get_bool(struct gw_request *req, struct gw_reply *rep, const char *field,
    bool required, bool def, bool *vp) RSSP_WUR;
/* A standard base64 (padded) string decoding to 1..maxlen bytes. On success *bufp is
 * malloc'd (free with free()) and *lenp its length; optional and absent -> NULL, 0. */
int gw_get_b64(struct gw_request *req, struct gw_reply *rep, const char *field,
    size_t maxlen, bool required, uint8_t **bufp, size_t *lenp) RSSP_WUR;
/* An array of 1..max_items strings, each of 1..max_len bytes. On success *itemsp is a
 * malloc'd array (free the array with free(); the strings are borrowed from req->body)
 * and *np its length; optional and absent -> NULL, 0. */
int gw_get_str_array(struct gw_request *req, struct gw_reply *rep, const char *field,
    size_t max_items, size_t max_len, bool required, const char ***itemsp, size_t *np) RSSP_WUR;

/* True once the gateway is stopping (SIGTERM): a handler that waits (long-poll) should
 * answer with what it has within a second or so. */
bool gw_stopping(void);

/* Current time in seconds since the epoch (CLOCK_REALTIME). */
long long gw_now(void);

#endif
