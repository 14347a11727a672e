/* accounts.h - what users.c and admin.c share: their handlers (listed in the route
 * table, routes.c), field checks and the tenant rule. */
#ifndef RSSP_GW_ACCOUNTS_H
#define RSSP_GW_ACCOUNTS_H

#include <stdbool.h>

#include "gw.h"

/* Reads the optional-or-required field `field` as a user id (uuid text form): absent ->
 * *vp = NULL (when !required); not a uuid -> 400 naming the field. */
int acct_get_user_id(struct gw_request *req, struct gw_reply *rep, const char *field,
    bool required, const char **vp) RSSP_WUR;

/* The account `id` as the caller may see it. Sets 404 not_found when it does not exist
 * and the same 404 when it belongs to another tenant, whose users are not revealed (an rp sees the accounts it
 * registered, a company_admin those of its company, a signer only itself, an admin
 * all). On success *resp (free with PQclear) holds one row, read by name (gw_val):
 * tenant_account (the id), email_or_empty, role, status_shown (LOCKED past locked_until
 * reads ACTIVE), tenant_company, tenant_registered_by, created_iso, confirmed_iso
 * (RFC 3339, "" when NULL), full_name, mobile_or_empty. lock: append FOR UPDATE. */
int acct_load_visible(struct gw_request *req, struct gw_reply *rep, const char *id,
    const char *email, bool lock, PGresult **resp) RSSP_WUR;

/* A boolean SQL expression over an accounts row: a lock time is set and has run out, so
 * ACCT_LOCK_EXPIRED applies. */
#define ACCT_LOCK_OVER_SQL \
	"(status <> 'PENDING_CONFIRMATION' AND locked_until IS NOT NULL AND locked_until <= now())"

/* The changes of accounts.status, each written once (account_status.c). */
enum acct_transition {
	ACCT_FAILED_PASSPHRASE, /* key: account id. failed_logins + 1; ACTIVE -> LOCKED for
	                           RSSP_LOCKOUT_SECONDS at RSSP_LOCKOUT_THRESHOLD failures */
	ACCT_LOCK_EXPIRED,      /* key: account id. Past locked_until (the login and
	                           users/changePassphrase call it when they see ACCT_LOCK_OVER_SQL
	                           true): LOCKED -> ACTIVE, count 0, locked_until NULL (other
	                           states: the count to 0, the status stays) */
	ACCT_LOGIN_ATTEMPT,     /* key: account id. An ACTIVE or DISABLED account below the
	                           threshold: failed_logins + 1 before the evaluation (a place;
	                           the last one also sets locked_until); status receives the
	                           count as text, "" when no place is left */
	ACCT_LOGIN_FAILED,      /* key: account id. After a place's evaluation failed: ACTIVE ->
	                           LOCKED once failed_logins reaches the threshold */
	ACCT_DISABLE,           /* key: account id. -> DISABLED (the caller revokes its tokens) */
	ACCT_ENABLE,            /* key: account id. DISABLED -> ACTIVE, or PENDING_CONFIRMATION
	                           when never confirmed; any other state stays */
	ACCT_UNLOCK,            /* key: account id. LOCKED -> ACTIVE; the failure count to 0 */
};
/* Applies transition t to the account named by key, on db (inside the caller's
 * transaction, if any). When status is not NULL it receives the status afterwards
 * (disable, enable, unlock; the count for ACCT_LOGIN_ATTEMPT; "" when no row changed or
 * for the other transitions).
 * Returns 0 or RSSP_E*. */
int acct_status_change(PGconn *db, const struct gw_config *cfg, enum acct_transition t,
    const char *key, char status[32]) RSSP_WUR;

/* Decodes an admin/users/list pageToken (admin.c; untrusted: a client sends it back):
 * base64url without padding, at most 100 characters, of "<1..20 digits>.<uuid>".
 * Returns 0 and fills micros (the digits, NUL-terminated) and id (the uuid), or
 * RSSP_E_INVAL leaving both untouched on any other input. */
int acct_page_token_parse(const char *tok, char micros[24], char id[GW_UUID_LEN + 1]) RSSP_WUR;

/* The users/... handlers (users.c). */
int users_register(struct gw_request *req, struct gw_reply *rep);
int users_register_company_user(struct gw_request *req, struct gw_reply *rep);
int users_confirm(struct gw_request *req, struct gw_reply *rep);
int users_change_passphrase(struct gw_request *req, struct gw_reply *rep);
int users_status(struct gw_request *req, struct gw_reply *rep);

/* Admin handlers (admin.c). */
int admin_clients_create(struct gw_request *req, struct gw_reply *rep);
int admin_clients_rotate(struct gw_request *req, struct gw_reply *rep);
int admin_users_list(struct gw_request *req, struct gw_reply *rep);
int admin_users_disable(struct gw_request *req, struct gw_reply *rep);
int admin_users_enable(struct gw_request *req, struct gw_reply *rep);
int admin_users_unlock(struct gw_request *req, struct gw_reply *rep);
int admin_outbox_list(struct gw_request *req, struct gw_reply *rep);

#endif
