/* admin.c - the admin/... functions: RP clients, the account list, disable/enable/unlock, and
 * the outbox. The routes are listed in the route table (routes.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <sodium.h>

#include "accounts.h"
#include "auth.h"
#include "db.h"
#include "gw.h"
#include "oauth.h"
#include "rssp_log.h"
#include "secrets.h"

#define TS(col) "COALESCE(to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), '')"
#define CLIENT_NAME_MAX 200
#define LIST_DEFAULT 50
#define LIST_MAX 100

static const char *
realm(const struct gw_request *req)
{
	return req->cfg != NULL && req->cfg->service_name != NULL ? req->cfg->service_name : "rssp";
}

/* ---- RP clients ---- */

/* A client's secret key and its two stored forms: argon2id and the Digest HA1 (hex).
 * Wiped with client_secret_wipe on every exit of the function that holds one. */
struct client_secret {
	char key[GW_TOKEN_LEN + 1];
	char pwhash[GW_PWHASH_MAX];
	char ha1hex[65];
};

/* Fills *cs with a fresh secret key for client_id and its stored forms. */
static int
client_secret_new(const char *client_id, const char *realm_, struct client_secret *cs)
{
	uint8_t ha1[32];
	int r;

	gw_random_token(cs->key);
	if ((r = gw_password_hash(cs->key, cs->pwhash)) != 0)
		return r;
	gw_digest_ha1(client_id, realm_, cs->key, ha1);
	sodium_bin2hex(cs->ha1hex, sizeof(cs->ha1hex), ha1, sizeof(ha1));
	OPENSSL_cleanse(ha1, sizeof(ha1));
	return 0;
}

static void
client_secret_wipe(struct client_secret *cs)
{
	OPENSSL_cleanse(cs, sizeof(*cs));
}

int
admin_clients_create(struct gw_request *req, struct gw_reply *rep)
{
	const char *name;
	char client_id[GW_UUID_LEN + 4], uuid[GW_UUID_LEN + 1];
	struct client_secret cs = {0};
	PGresult *res = NULL;
	int r;

	if ((r = gw_get_str(req, rep, "name", CLIENT_NAME_MAX * 4, true, &name)) != 0)
		goto out;
	/* the same rule as other display names */
	size_t chars = 0;
	for (const char *p = name; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			r = gw_error(rep, 400, "invalid_request", "field 'name' must not contain control characters");
			goto out;
		}
		chars += ((unsigned char)*p & 0xc0) != 0x80;
	}
	if (chars > CLIENT_NAME_MAX) {
		r = gw_error(rep, 400, "invalid_request", "field 'name' must be at most %d characters",
		    CLIENT_NAME_MAX);
		goto out;
	}
	gw_random_uuid(uuid);
	snprintf(client_id, sizeof(client_id), "rp-%s", uuid);
	if ((r = client_secret_new(client_id, realm(req), &cs)) != 0)
		goto out;
	if ((r = gw_tx_begin(req)) != 0 ||
	    (r = gw_db_query(req->db, &res,
	    "INSERT INTO accounts (role, status, full_name, passphrase_hash, registered_by, confirmed_at) "
	    "VALUES ('rp', 'ACTIVE', $1, $2, $3::uuid, now()) RETURNING id",
	    3, name, cs.pwhash, req->principal.account_id)) != 0 ||
	    (r = gw_db_query(req->db, NULL,
	    "INSERT INTO rp_clients (client_id, account_id, name, digest_ha1) "
	    "VALUES ($1, $2::uuid, $3, decode($4, 'hex'))",
	    4, client_id, gw_val(res, 0, "id"), name, cs.ha1hex)) != 0 ||
	    (r = oauth_redirects_store(req, rep, client_id, false)) != 0 /* oauth.c */ ||
	    (r = gw_tx_commit(req)) != 0)
		goto out;
	log_info("rp client %s created (account %s)", client_id, gw_val(res, 0, "id"));
	/* The only time the secret key leaves the gateway. */
	r = gw_reply_json(rep, 201, json_pack("{s:s, s:s, s:s, s:s}", "clientID", client_id,
	    "secretKey", cs.key, "userID", gw_val(res, 0, "id"), "name", name));
out:
	client_secret_wipe(&cs);
	PQclear(res);
	return r;
}

int
admin_clients_rotate(struct gw_request *req, struct gw_reply *rep)
{
	const char *client_id;
	struct client_secret cs = {0};
	PGresult *res = NULL;
	int r;

	if ((r = gw_get_str(req, rep, "clientID", 64, true, &client_id)) != 0)
		goto out;
	if ((r = gw_tx_begin(req)) != 0 ||
	    (r = gw_db_query(req->db, &res,
	    "SELECT account_id FROM rp_clients WHERE client_id = $1 FOR UPDATE", 1, client_id)) != 0)
		goto out;
	if (PQntuples(res) != 1) {
		r = gw_error(rep, 404, "not_found", "no such client");
		goto out;
	}
	const char *account = gw_val(res, 0, "account_id");
	if ((r = client_secret_new(client_id, realm(req), &cs)) != 0 ||
	    (r = gw_db_query(req->db, NULL,
	    "UPDATE rp_clients SET digest_ha1 = decode($2, 'hex'), rotated_at = now() WHERE client_id = $1",
	    2, client_id, cs.ha1hex)) != 0 ||
	    (r = gw_db_query(req->db, NULL,
	    "UPDATE accounts SET passphrase_hash = $2, failed_logins = 0, updated_at = now() "
	    "WHERE id = $1::uuid", 2, account, cs.pwhash)) != 0 ||
	    /* sessions opened with the old key end with it */
	    (r = gw_tokens_revoke(req->db, GW_TOKENS_ACCOUNT, account, NULL)) != 0 ||
	    (r = gw_tx_commit(req)) != 0)
		goto out;
	gw_token_cache_forget_account(account);
	log_info("rp client %.64s key rotated", client_id);
	r = gw_reply_json(rep, 200, json_pack("{s:s, s:s}", "clientID", client_id,
	    "secretKey", cs.key));
out:
	client_secret_wipe(&cs);
	PQclear(res);
	return r;
}

/* ---- accounts ---- */

/* pageToken: base64url("<created_at in epoch microseconds>.<uuid>"), the keyset of the
 * last row of the previous page. Opaque to clients; checked, never trusted further.
 * Non-static for its fuzzer (accounts.h). */
int
acct_page_token_parse(const char *tok, char micros[24], char id[GW_UUID_LEN + 1])
{
	unsigned char raw[80];
	size_t len;
	const char *dot;

	if (strlen(tok) > 100 || sodium_base642bin(raw, sizeof(raw) - 1, tok, strlen(tok), NULL,
	    &len, NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
		return RSSP_E_INVAL;
	raw[len] = '\0';
	if (strlen((char *)raw) != len || (dot = strchr((char *)raw, '.')) == NULL)
		return RSSP_E_INVAL;
	size_t mlen = (size_t)(dot - (char *)raw);
	if (mlen == 0 || mlen > 20 || strspn((char *)raw, "0123456789") != mlen ||
	    !gw_is_uuid(dot + 1))
		return RSSP_E_INVAL;
	memcpy(micros, raw, mlen);
	micros[mlen] = '\0';
	snprintf(id, GW_UUID_LEN + 1, "%s", dot + 1);
	return 0;
}

static char *
page_token_make(const char *micros, const char *id)
{
	char raw[80], *out;
	size_t olen;

	snprintf(raw, sizeof(raw), "%s.%s", micros, id);
	olen = sodium_base64_ENCODED_LEN(strlen(raw), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	if ((out = malloc(olen)) == NULL)
		return NULL;
	sodium_bin2base64(out, olen, (const unsigned char *)raw, strlen(raw),
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	return out;
}

static int
one_of(const char *v, const char *const *set)
{
	for (; *set != NULL; set++)
		if (strcmp(v, *set) == 0)
			return 1;
	return 0;
}

int
admin_users_list(struct gw_request *req, struct gw_reply *rep)
{
	static const char *const roles[] = { "admin", "rp", "company_admin", "signer", NULL };
	static const char *const statuses[] = { "PENDING_CONFIRMATION", "ACTIVE", "LOCKED",
	    "DISABLED", NULL };
	const char *role, *status, *page;
	char micros[24] = "", after[GW_UUID_LEN + 1] = "", lim[24], *next = NULL;
	long long max;
	PGresult *res = NULL;
	json_t *o = NULL, *users;
	int r, n;

	if ((r = gw_get_str(req, rep, "role", 32, false, &role)) != 0 ||
	    (r = gw_get_str(req, rep, "status", 32, false, &status)) != 0 ||
	    (r = gw_get_int(req, rep, "maxResults", 1, LIST_MAX, false, LIST_DEFAULT, &max)) != 0 ||
	    (r = gw_get_str(req, rep, "pageToken", 128, false, &page)) != 0)
		goto out;
	if (role != NULL && !one_of(role, roles)) {
		r = gw_error(rep, 400, "invalid_request",
		    "field 'role' must be one of admin, rp, company_admin, signer");
		goto out;
	}
	if (status != NULL && !one_of(status, statuses)) {
		r = gw_error(rep, 400, "invalid_request",
		    "field 'status' must be one of PENDING_CONFIRMATION, ACTIVE, LOCKED, DISABLED");
		goto out;
	}
	if (page != NULL && acct_page_token_parse(page, micros, after) != 0) {
		r = gw_error(rep, 400, "invalid_request", "field 'pageToken' is not valid");
		goto out;
	}
	snprintf(lim, sizeof(lim), "%lld", max + 1);
	/* Keyset pagination on (created_at, id); one row more tells whether a page follows.
	 * The status filter reads a lock that has run out as ACTIVE, as users/status does. */
	if ((r = gw_db_query(req->db, &res,
	    "SELECT id, COALESCE(email, '') AS email, role, s.status, "
	    " COALESCE(company_id::text, '') AS company_id, "
	    " (extract(epoch FROM created_at) * 1000000)::bigint AS created_micros, full_name, "
	    TS("created_at") " AS created_iso "
	    "FROM accounts, LATERAL (SELECT CASE WHEN status = 'LOCKED' AND locked_until <= now() "
	    "  THEN 'ACTIVE' ELSE status END AS status) s "
	    "WHERE ($1::text IS NULL OR role = $1) AND ($2::text IS NULL OR s.status = $2) "
	    " AND ($3::bigint IS NULL OR (created_at, id) > "
	    "   (timestamptz 'epoch' + $3::bigint * interval '1 microsecond', $4::uuid)) "
	    "ORDER BY created_at, id LIMIT $5::int",
	    5, role, status, page != NULL ? micros : NULL, page != NULL ? after : NULL, lim)) != 0)
		goto out;
	r = RSSP_E_NOMEM;
	if ((o = json_object()) == NULL || (users = json_array()) == NULL ||
	    json_object_set_new(o, "users", users) != 0)
		goto out;
	n = PQntuples(res);
	for (int i = 0; i < n && i < max; i++) {
		const char *email = gw_val(res, i, "email"), *company = gw_val(res, i, "company_id");
		json_t *u = json_pack("{s:s, s:o, s:s, s:s, s:o, s:s, s:s}",
		    "userID", gw_val(res, i, "id"),
		    "email", *email != '\0' ? json_string(email) : json_null(),
		    "role", gw_val(res, i, "role"), "status", gw_val(res, i, "status"),
		    "companyID", *company != '\0' ? json_string(company) : json_null(),
		    "fullName", gw_val(res, i, "full_name"), "createdAt", gw_val(res, i, "created_iso"));
		if (u == NULL || json_array_append_new(users, u) != 0)
			goto out;
	}
	if (n > max) {
		if ((next = page_token_make(gw_val(res, (int)max - 1, "created_micros"),
		    gw_val(res, (int)max - 1, "id"))) == NULL ||
		    json_object_set_new(o, "nextPageToken", json_string(next)) != 0)
			goto out;
	}
	r = gw_reply_json(rep, 200, o);
	o = NULL;
out:
	free(next);
	json_decref(o);
	PQclear(res);
	return r;
}

static int
reply_user_status(struct gw_reply *rep, const char *id, const char *status)
{
	return gw_reply_json(rep, 200, json_pack("{s:s, s:s}", "userID", id, "status", status));
}

int
admin_users_disable(struct gw_request *req, struct gw_reply *rep)
{
	const char *id;
	PGresult *res = NULL;
	int r;

	if ((r = acct_get_user_id(req, rep, "userID", true, &id)) != 0)
		goto out;
	if (strcasecmp(id, req->principal.account_id) == 0) {
		/* the last admin must not lock everyone out */
		r = gw_error(rep, 409, "conflict", "an admin cannot disable its own account");
		goto out;
	}
	if ((r = gw_tx_begin(req)) != 0 ||
	    (r = acct_load_visible(req, rep, id, NULL, true, &res)) != 0 ||
	    (r = acct_status_change(req->db, req->cfg, ACCT_DISABLE, id, NULL)) != 0 ||
	    (r = gw_tokens_revoke(req->db, GW_TOKENS_ACCOUNT, id, NULL)) != 0 ||
	    (r = gw_tx_commit(req)) != 0)
		goto out;
	gw_token_cache_forget_account(id);
	log_info("account %s disabled", id);
	r = reply_user_status(rep, gw_val(res, 0, "tenant_account"), "DISABLED");
out:
	PQclear(res);
	return r;
}

/* enable and unlock: the account as the caller may see it, locked, through transition t;
 * replies its status afterwards. */
static int
admin_users_transition(struct gw_request *req, struct gw_reply *rep, enum acct_transition t,
    const char *done)
{
	const char *id;
	char status[32];
	PGresult *res = NULL;
	int r;

	if ((r = acct_get_user_id(req, rep, "userID", true, &id)) != 0)
		goto out;
	if ((r = gw_tx_begin(req)) != 0 ||
	    (r = acct_load_visible(req, rep, id, NULL, true, &res)) != 0 ||
	    (r = acct_status_change(req->db, req->cfg, t, id, status)) != 0 ||
	    (r = gw_tx_commit(req)) != 0)
		goto out;
	log_info("account %s %s", id, done);
	r = reply_user_status(rep, gw_val(res, 0, "tenant_account"), status);
out:
	PQclear(res);
	return r;
}

int
admin_users_enable(struct gw_request *req, struct gw_reply *rep)
{
	return admin_users_transition(req, rep, ACCT_ENABLE, "enabled");
}

int
admin_users_unlock(struct gw_request *req, struct gw_reply *rep)
{
	return admin_users_transition(req, rep, ACCT_UNLOCK, "unlocked");
}

/* ---- outbox ---- */

int
admin_outbox_list(struct gw_request *req, struct gw_reply *rep)
{
	const char *recipient, *kind;
	long long max;
	char lim[24];
	PGresult *res = NULL;
	json_t *o = NULL, *msgs;
	int r;
	/* In deliver mode the secrets go to their recipients only: unsent ones are shown
	 * blanked, as sent ones are stored. In outbox mode an operator delivers by hand. */
	int blank = req->cfg != NULL && req->cfg->delivery != NULL &&
	    strcmp(req->cfg->delivery, "deliver") == 0;

	if ((r = gw_get_str(req, rep, "recipient", 254, false, &recipient)) != 0 ||
	    (r = gw_get_str(req, rep, "kind", 64, false, &kind)) != 0 ||
	    (r = gw_get_int(req, rep, "maxResults", 1, LIST_MAX, false, 20, &max)) != 0)
		goto out;
	snprintf(lim, sizeof(lim), "%lld", max);
	if ((r = gw_db_query(req->db, &res,
	    "SELECT id, channel, recipient, kind, subject, "
	    " CASE WHEN $4 THEN outbox_redact(body, data) ELSE body END AS body_shown, "
	    " CASE WHEN $4 THEN outbox_blank(data) ELSE data END::text AS data_shown, "
	    " " TS("created_at") " AS created_iso, " TS("sent_at") " AS sent_iso, attempts "
	    "FROM outbox WHERE ($1::text IS NULL OR lower(recipient) = lower($1)) "
	    " AND ($2::text IS NULL OR kind = $2) ORDER BY id DESC LIMIT $3::int",
	    4, recipient, kind, lim, blank ? "true" : "false")) != 0)
		goto out;
	r = RSSP_E_NOMEM;
	if ((o = json_object()) == NULL || (msgs = json_array()) == NULL ||
	    json_object_set_new(o, "messages", msgs) != 0)
		goto out;
	for (int i = 0; i < PQntuples(res); i++) {
		const char *sent = gw_val(res, i, "sent_iso");
		json_t *data = json_loads(gw_val(res, i, "data_shown"), JSON_DECODE_ANY, NULL);
		json_t *m = json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:o, s:I}",
		    "id", (json_int_t)strtoll(gw_val(res, i, "id"), NULL, 10),
		    "channel", gw_val(res, i, "channel"), "recipient", gw_val(res, i, "recipient"),
		    "kind", gw_val(res, i, "kind"), "subject", gw_val(res, i, "subject"),
		    "body", gw_val(res, i, "body_shown"), "data", data != NULL ? data : json_object(),
		    "createdAt", gw_val(res, i, "created_iso"),
		    "sentAt", *sent != '\0' ? json_string(sent) : json_null(),
		    "attempts", (json_int_t)strtoll(gw_val(res, i, "attempts"), NULL, 10));
		if (m == NULL || json_array_append_new(msgs, m) != 0)
			goto out;
	}
	r = gw_reply_json(rep, 200, o);
	o = NULL;
out:
	json_decref(o);
	PQclear(res);
	return r;
}
