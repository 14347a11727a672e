/* gwtest.h - starts a real rssp-gateway process on a fresh database and talks JSON to
 * it over real HTTP on loopback (libcurl). For the gateway's integration suites.
 *
 * Needs RSSP_TEST_DB_URL (a libpq URL where we may CREATE DATABASE) and RSSP_TEST_BUILD
 * (the build directory holding gateway/rssp-gateway) or, failing that, the build dir
 * compiled in. Functions that fail abort the test with a Check failure (ck_abort_msg),
 * so callers need not check a return value unless one is documented.
 *
 * Typical use:
 *   struct gwt *g = gwt_start(NULL);            // fresh db, migrations, admin, started
 *   const char *admin = gwt_admin_token(g);     // bearer token of the bootstrap admin
 *   struct gwt_resp *r = gwt_post(g, "/rssp/info", admin, "{}");
 *   ck_assert_int_eq(r->status, 200);
 *   ck_assert_str_eq(json_string_value(json_object_get(r->json, "name")), "rssp");
 *   gwt_resp_free(r);
 *   gwt_stop(g);
 */
#ifndef RSSP_GWTEST_H
#define RSSP_GWTEST_H

#include <stddef.h>

#include <jansson.h>

struct gwt;

struct gwt_opts {
	/* Extra environment for the gateway process, "NAME=value" strings, NULL-terminated;
	 * e.g. {"RSSP_ENGINE_SOCKET=/tmp/x/engine.sock", "RSSP_TOKEN_TTL=1", NULL}. */
	const char *const *env;
	/* Use this database (already migrated or not) instead of creating a fresh one:
	 * the database name of another gwt (gwt_db_name), for two gateways on one db. */
	const char *db_name;
	/* Do not create the bootstrap admin (it exists already, e.g. with db_name). */
	int no_admin;
	/* Serve HTTPS with this certificate and key (PEM files). */
	const char *tls_cert;
	const char *tls_key;
};

struct gwt_resp {
	long status;        /* HTTP status */
	json_t *json;       /* the parsed body, or NULL when it was empty or not JSON */
	char *body;         /* the raw body, NUL-terminated (never NULL) */
	size_t body_len;
	char *headers;      /* the raw response headers, NUL-terminated */
};

/* Creates a fresh database (unless opts->db_name), picks a free loopback port, starts
 * rssp-gateway serve (argon2 at fast test limits: RSSP_ARGON2_OPSLIMIT=1,
 * RSSP_ARGON2_MEMLIMIT_KIB=8192, unless opts->env sets them), waits until /healthz
 * answers, bootstraps the admin "admin@rssp.test" and logs it in. opts may be NULL. */
struct gwt *gwt_start(const struct gwt_opts *opts);
/* Stops the process (SIGTERM, then waits; SIGKILL after 10 s and a test failure) and
 * frees g. The database is left for inspection (the harness drops the cluster). */
void gwt_stop(struct gwt *g);
/* Stops with SIGTERM and returns the exit status of the process (waitpid status). */
int gwt_stop_status(struct gwt *g);

/* "http://127.0.0.1:PORT" or "https://..." (no trailing slash). */
const char *gwt_url(const struct gwt *g);
/* The database name and a libpq URL to it (for direct SQL in a test). */
const char *gwt_db_name(const struct gwt *g);
const char *gwt_db_url(const struct gwt *g);
/* The bootstrap admin: email, passphrase, userID, current access token. */
const char *gwt_admin_email(const struct gwt *g);
const char *gwt_admin_password(const struct gwt *g);
const char *gwt_admin_id(const struct gwt *g);
const char *gwt_admin_token(const struct gwt *g);
/* The path of the gateway's stdout (access log) and stderr (diagnostics) files. */
const char *gwt_stdout_path(const struct gwt *g);
const char *gwt_stderr_path(const struct gwt *g);

/* POST path with a JSON body (NULL = "{}"), Content-Type application/json, with
 * "Authorization: Bearer <token>" when token is not NULL. Never NULL. */
struct gwt_resp *gwt_post(struct gwt *g, const char *path, const char *token, const char *json_body);
/* The same with a jansson object (not stolen). */
struct gwt_resp *gwt_post_json(struct gwt *g, const char *path, const char *token, json_t *body);
/* Any request: method, path, raw body (may be NULL), body length, and a NULL-terminated
 * list of extra request headers ("Name: value"). No Content-Type unless given. */
struct gwt_resp *gwt_request(struct gwt *g, const char *method, const char *path,
    const char *body, size_t body_len, const char *const *headers);
/* GET path (operational endpoints). */
struct gwt_resp *gwt_get(struct gwt *g, const char *path);
void gwt_resp_free(struct gwt_resp *r);

/* A response header's value (case-insensitive name), malloc'd, or NULL. */
char *gwt_resp_header(const struct gwt_resp *r, const char *name);
/* Shorthands on r->json: a string member or NULL, an integer member or -1. */
const char *gwt_str(const struct gwt_resp *r, const char *member);
long long gwt_int(const struct gwt_resp *r, const char *member);
/* Asserts status and, when code is not NULL, the "error" member; a Check failure
 * shows the body otherwise. */
void gwt_expect(const struct gwt_resp *r, long status, const char *code);
/* gwt_post, then gwt_expect(status, code) on the answer and, when says is not NULL, that
 * its "error_description" contains says (the field or problem it names); frees it. */
void gwt_post_expect(struct gwt *g, const char *path, const char *token, const char *json_body,
    long status, const char *code, const char *says);

/* Logs in with the password grant; returns the access token (malloc'd) and, when
 * refreshp is not NULL, the refresh token (malloc'd). Fails the test unless 200. */
char *gwt_login(struct gwt *g, const char *username, const char *password, char **refreshp);

/* Runs SQL on the test database (parameters as text, NULL-terminated list), returns
 * the first column of the first row (malloc'd) or NULL when there is no row. */
char *gwt_sql(struct gwt *g, const char *sql, ...);

/* The admin outbox: the latest message's data.token or data.code for a recipient and
 * kind (via POST /rssp/admin/outbox/list as admin), malloc'd, or NULL. */
char *gwt_outbox_secret(struct gwt *g, const char *recipient, const char *kind);

/* A unique name for this process ("<prefix>_<pid>_<counter>"), malloc'd. */
char *gwt_unique(const char *prefix);

/* ---- fixtures the gateway suites share ---- */

/* Creates an rp client named name as admin (admin/clients/create, 201); *client_idp,
 * *secretp, *account_idp (malloc'd) when not NULL. It is not logged in (gwt_login). */
void gwt_rp_create(struct gwt *g, const char *name, char **client_idp, char **secretp,
    char **account_idp);
/* Registers a person with token (users/register, 201, PENDING_CONFIRMATION); returns
 * its userID (malloc'd). */
char *gwt_register(struct gwt *g, const char *token, const char *email, const char *mobile,
    const char *full_name);
/* Confirms email's account with the token of the outbox and passphrase (users/confirm,
 * 200, ACTIVE). */
void gwt_confirm(struct gwt *g, const char *email, const char *passphrase);

#endif
