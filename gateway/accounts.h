/* accounts.h - what users.c and admin.c share: the admin handlers (listed in
 * gw_routes_accounts, users.c), field checks and the tenant rule. */
#ifndef RSSP_GW_ACCOUNTS_H
#define RSSP_GW_ACCOUNTS_H

#include <stdbool.h>

#include "gw.h"

/* 1 when s is an account id in uuid text form (36 chars, hex and dashes). */
int acct_is_uuid(const char *s);

/* Reads the optional-or-required field `field` as a user id (uuid text form): absent ->
 * *vp = NULL (when !required); not a uuid -> 400 naming the field. */
int acct_get_user_id(struct gw_request *req, struct gw_reply *rep, const char *field,
    bool required, const char **vp) RSSP_WUR;

/* The account `id` as the caller may see it. Sets 404 not_found when it does not exist
 * and the same 404 when it belongs to another tenant, whose users are not revealed (an rp sees the accounts it
 * registered, a company_admin those of its company, a signer only itself, an admin
 * all). On success *resp (free with PQclear) holds one row: id, email, role, status
 * (LOCKED past locked_until reads ACTIVE), company_id, registered_by, created_at,
 * confirmed_at (RFC 3339, "" when NULL), full_name, mobile. lock: append FOR UPDATE. */
int acct_load_visible(struct gw_request *req, struct gw_reply *rep, const char *id,
    const char *email, bool lock, PGresult **resp) RSSP_WUR;

/* Decodes an admin/users/list pageToken (admin.c; untrusted: a client sends it back):
 * base64url without padding, at most 100 characters, of "<1..20 digits>.<uuid>".
 * Returns 0 and fills micros (the digits, NUL-terminated) and id (the uuid), or
 * RSSP_E_INVAL leaving both untouched on any other input. */
int acct_page_token_parse(const char *tok, char micros[24], char id[GW_UUID_LEN + 1]) RSSP_WUR;

/* Admin handlers (admin.c). */
int admin_clients_create(struct gw_request *req, struct gw_reply *rep);
int admin_clients_rotate(struct gw_request *req, struct gw_reply *rep);
int admin_users_list(struct gw_request *req, struct gw_reply *rep);
int admin_users_disable(struct gw_request *req, struct gw_reply *rep);
int admin_users_enable(struct gw_request *req, struct gw_reply *rep);
int admin_users_unlock(struct gw_request *req, struct gw_reply *rep);
int admin_outbox_list(struct gw_request *req, struct gw_reply *rep);

#endif
