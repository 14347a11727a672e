/* users.c - the users/... functions: register, registerCompanyUser, confirm, changePassphrase,
 * status. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "accounts.h"
#include "auth.h"
#include "db.h"
#include "gw.h"
#include "outbox.h"
#include "rssp_log.h"
#include "secrets.h"
#include "tenant.h"

#define CONFIRM_TTL "24 hours"
#define EMAIL_MAX 254
#define NAME_MAX_CHARS 200
#define FULL_NAME_MAX_CHARS 64
#define PASS_MIN_CHARS 10
#define PASS_MAX_CHARS 256

/* RFC 3339 UTC text of a timestamptz column, "" for NULL. */
#define TS(col) "COALESCE(to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), '')"

/* ---- field checks ---- */

int
acct_get_user_id(struct gw_request *req, struct gw_reply *rep, const char *field,
    bool required, const char **vp)
{
	const char *v;
	int r;

	if ((r = gw_get_str(req, rep, field, 64, required, &v)) != 0)
		return r;
	if (v != NULL && !gw_is_uuid(v))
		return gw_error(rep, 400, "invalid_request", "field '%s' must be a user id (a lowercase uuid)", field);
	*vp = v;
	return 0;
}

/* Code points of a valid UTF-8 string. */
static size_t
utf8_chars(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

static int
has_control(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

/* RFC 5321/5322 dot-atom addresses (ASCII): local part of atext and dots, a domain of
 * at least two LDH labels. Quoted local parts and address literals are refused. */
static int
valid_email(const char *s)
{
	static const char atext[] = "!#$%&'*+-/=?^_`{|}~";
	const char *at = strrchr(s, '@'), *p;
	size_t llen, label = 0, labels = 1;

	if (at == NULL || strlen(s) > EMAIL_MAX)
		return 0;
	llen = (size_t)(at - s);
	if (llen == 0 || llen > 64 || s[0] == '.' || at[-1] == '.')
		return 0;
	for (p = s; p < at; p++) {
		if (*p == '.' && p[1] == '.')
			return 0;
		if (!isalnum((unsigned char)*p) && *p != '.' && strchr(atext, *p) == NULL)
			return 0;
	}
	for (p = at + 1; *p != '\0'; p++) {
		if (*p == '.') {
			if (label == 0 || p[-1] == '-')
				return 0;
			label = 0;
			labels++;
		} else if (isalnum((unsigned char)*p) || (*p == '-' && label > 0)) {
			if (++label > 63)
				return 0;
		} else {
			return 0;
		}
	}
	return label > 0 && p[-1] != '-' && labels >= 2;
}

/* E.164: '+' and 8..15 digits, the first not 0. */
static int
valid_mobile(const char *s)
{
	size_t n = 0;

	if (*s++ != '+' || *s == '0')
		return 0;
	for (; *s != '\0'; s++, n++)
		if (!isdigit((unsigned char)*s))
			return 0;
	return n >= 8 && n <= 15;
}

static int
get_email(struct gw_request *req, struct gw_reply *rep, const char *field, bool required,
    const char **vp)
{
	const char *v;
	int r;

	if ((r = gw_get_str(req, rep, field, EMAIL_MAX, required, &v)) != 0)
		return r;
	if (v != NULL && !valid_email(v))
		return gw_error(rep, 400, "invalid_request", "field '%s' must be an email address", field);
	*vp = v;
	return 0;
}

/* A display name: 1..max characters, no control characters. */
static int
get_name(struct gw_request *req, struct gw_reply *rep, const char *field, int max, const char **vp)
{
	const char *v;
	int r;

	if ((r = gw_get_str(req, rep, field, (size_t)max * 4, true, &v)) != 0)
		return r;
	if (utf8_chars(v) > (size_t)max)
		return gw_error(rep, 400, "invalid_request",
		    "field '%s' must be at most %d characters", field, max);
	if (has_control(v))
		return gw_error(rep, 400, "invalid_request",
		    "field '%s' must not contain control characters", field);
	*vp = v;
	return 0;
}

static int
get_passphrase(struct gw_request *req, struct gw_reply *rep, const char *field, const char **vp)
{
	const char *v;
	size_t n;
	int r;

	if ((r = gw_get_str(req, rep, field, PASS_MAX_CHARS * 4, true, &v)) != 0)
		return r;
	n = utf8_chars(v);
	if (n < PASS_MIN_CHARS || n > PASS_MAX_CHARS)
		return gw_error(rep, 400, "invalid_request",
		    "field '%s' must be %d to %d characters", field, PASS_MIN_CHARS, PASS_MAX_CHARS);
	*vp = v;
	return 0;
}

/* The fields every registration has. */
static int
get_person(struct gw_request *req, struct gw_reply *rep, const char **emailp,
    const char **mobilep, const char **namep)
{
	int r;

	if ((r = get_email(req, rep, "email", true, emailp)) != 0 ||
	    (r = gw_get_str(req, rep, "mobile", 16, true, mobilep)) != 0)
		return r;
	if (!valid_mobile(*mobilep))
		return gw_error(rep, 400, "invalid_request",
		    "field 'mobile' must be an E.164 number (+ and 8 to 15 digits)");
	/* it becomes the certificate's commonName, at most 64 characters (RFC 5280
	 * ub-common-name): refused here rather than at every credential activation */
	return get_name(req, rep, "fullName", FULL_NAME_MAX_CHARS, namep);
}

/* ---- visibility: the tenant rule (tenant.h) ---- */

#define ACCT_COLS \
	"SELECT id AS tenant_account, COALESCE(email, '') AS email_or_empty, role, " \
	" CASE WHEN status = 'LOCKED' AND locked_until <= now() THEN 'ACTIVE' ELSE status END " \
	"  AS status_shown, " \
	" COALESCE(company_id::text, '') AS tenant_company, " \
	" COALESCE(registered_by::text, '') AS tenant_registered_by, " \
	TS("created_at") " AS created_iso, " TS("confirmed_at") " AS confirmed_iso, " \
	" full_name, COALESCE(mobile, '') AS mobile_or_empty"
#define ACCT_WHERE_ID " WHERE id = $1::uuid"
#define ACCT_WHERE_EMAIL " WHERE email IS NOT NULL AND lower(email) = lower($1)"
#define ACCT_BY_ID " FROM accounts" ACCT_WHERE_ID
#define ACCT_BY_EMAIL " FROM accounts" ACCT_WHERE_EMAIL
/* users/status: the SIC status and the credential count in the same round trip, through
 * the set-returning SQL function of 002/004 that the planner inlines */
#define ACCT_STATUS_COLS ACCT_COLS ", s.sic_status, s.credential_count " \
	" FROM accounts CROSS JOIN LATERAL rssp_account_status(accounts.id) s"

/* acct_load_visible with the queries given (by id, by email): the first ten columns
 * as acct_load_visible documents, then whatever the queries add. */
static int
acct_load_visible_sql(struct gw_request *req, struct gw_reply *rep, const char *id,
    const char *email, const char *sql_id, const char *sql_email, PGresult **resp)
{
	/* One of id and email; the caller validated the one given. */
	const char *param = id != NULL ? id : email;

	return tenant_load(req, rep, TENANT_SEE, id != NULL ? sql_id : sql_email, 1, &param,
	    "no such user", NULL /* another tenant's user: the same 404 */, resp);
}

int
acct_load_visible(struct gw_request *req, struct gw_reply *rep, const char *id,
    const char *email, bool lock, PGresult **resp)
{
	if (lock)
		return acct_load_visible_sql(req, rep, id, email, ACCT_COLS ACCT_BY_ID " FOR UPDATE",
		    ACCT_COLS ACCT_BY_EMAIL " FOR UPDATE", resp);
	return acct_load_visible_sql(req, rep, id, email, ACCT_COLS ACCT_BY_ID,
	    ACCT_COLS ACCT_BY_EMAIL, resp);
}

/* ---- registration ---- */

/* Writes a one-time confirmation token (stored as SHA-256, valid 24 h) and its email to
 * the outbox, inside the caller's transaction. */
static int
send_confirmation(struct gw_request *req, const char *account_id, const char *email,
    const char *full_name)
{
	char token[GW_TOKEN_LEN + 1], hash[65], *subject = NULL, *body = NULL;
	const char *service = req->cfg != NULL && req->cfg->service_name != NULL ?
	    req->cfg->service_name : "rssp";
	json_t *data = NULL;
	int r;

	gw_random_token(token);
	gw_sha256_hex(token, strlen(token), hash);
	if ((r = gw_db_query(req->db, NULL,
	    "INSERT INTO email_confirmations (token_hash, account_id, expires_at) "
	    "VALUES (decode($1, 'hex'), $2::uuid, now() + interval '" CONFIRM_TTL "')",
	    2, hash, account_id)) != 0)
		goto out;
	r = RSSP_E_NOMEM;
	if (asprintf(&subject, "Confirm your %s account", service) < 0) {
		subject = NULL;
		goto out;
	}
	if (asprintf(&body,
	    "Hello %s,\n\n"
	    "an account was created for you at %s. To activate it, choose a passphrase\n"
	    "(10 to 256 characters) and confirm it with this one-time token, valid for 24 hours:\n\n"
	    "%s\n\n"
	    "(POST /rssp/users/confirm with {\"token\": \"<token>\", \"passphrase\": \"<passphrase>\"})\n\n"
	    "If you did not expect this message, ignore it.\n", full_name, service, token) < 0) {
		body = NULL;
		goto out;
	}
	if ((data = json_pack("{s:s}", "token", token)) == NULL)
		goto out;
	r = outbox_enqueue(req->db, "email", email, "confirmation", subject, body, data);
out:
	OPENSSL_cleanse(token, sizeof(token));
	if (body != NULL)
		OPENSSL_clear_free(body, strlen(body));
	free(subject);
	if (data != NULL) {
		json_object_clear(data);
		json_decref(data);
	}
	return r;
}

/* Inserts the account and its confirmation; sets *idp (GW_UUID_LEN+1) on success. A
 * duplicate email answers 409. */
static int
create_person(struct gw_request *req, struct gw_reply *rep, const char *email,
    const char *mobile, const char *name, const char *role, const char *company_id,
    char *idp)
{
	PGresult *res = NULL;
	int r;

	r = gw_db_query(req->db, &res,
	    "INSERT INTO accounts (email, mobile, full_name, role, status, company_id, registered_by) "
	    "VALUES ($1, $2, $3, $4, 'PENDING_CONFIRMATION', $5::uuid, $6::uuid) RETURNING id",
	    6, email, mobile, name, role, company_id, req->principal.account_id);
	if (r == RSSP_E_CONFLICT) {
		r = gw_error(rep, 409, "conflict", "an account with this email exists already");
		goto out;
	}
	if (r != 0)
		goto out;
	if ((r = send_confirmation(req, gw_val(res, 0, "id"), email, name)) != 0)
		goto out;
	snprintf(idp, GW_UUID_LEN + 1, "%s", gw_val(res, 0, "id"));
out:
	PQclear(res);
	return r;
}

int
users_register(struct gw_request *req, struct gw_reply *rep)
{
	const char *email, *mobile, *name;
	char id[GW_UUID_LEN + 1];
	int r;

	if ((r = get_person(req, rep, &email, &mobile, &name)) != 0)
		return r;
	if ((r = gw_tx_begin(req)) != 0 ||
	    (r = create_person(req, rep, email, mobile, name, "signer", NULL, id)) != 0 ||
	    (r = gw_tx_commit(req)) != 0)
		return r;
	log_info("account %s registered", id);
	return gw_reply_json(rep, 201, json_pack("{s:s, s:s}", "userID", id,
	    "status", "PENDING_CONFIRMATION"));
}

int
users_register_company_user(struct gw_request *req, struct gw_reply *rep)
{
	const char *email, *mobile, *name, *company, *role;
	char id[GW_UUID_LEN + 1], company_id[GW_UUID_LEN + 1];
	PGresult *res = NULL;
	int r;

	if ((r = get_person(req, rep, &email, &mobile, &name)) != 0 ||
	    (r = get_name(req, rep, "companyName", NAME_MAX_CHARS, &company)) != 0 ||
	    (r = gw_get_str(req, rep, "role", 16, true, &role)) != 0)
		goto out;
	if (strcmp(role, "admin") != 0 && strcmp(role, "signer") != 0) {
		r = gw_error(rep, 400, "invalid_request", "field 'role' must be \"admin\" or \"signer\"");
		goto out;
	}
	if ((r = gw_tx_begin(req)) != 0)
		goto out;
	if (req->principal.role == GW_ROLE_COMPANY_ADMIN) {
		/* A company admin registers only into its own company, named as it is. */
		if (req->principal.company_id[0] == '\0') {
			r = gw_error(rep, 403, "access_denied", "the caller belongs to no company");
			goto out;
		}
		if ((r = gw_db_query(req->db, &res,
		    "SELECT id FROM companies WHERE id = $1::uuid AND lower(name) = lower($2)",
		    2, req->principal.company_id, company)) != 0)
			goto out;
		if (PQntuples(res) != 1) {
			r = gw_error(rep, 403, "access_denied",
			    "field 'companyName' is not the caller's company");
			goto out;
		}
	} else {
		/* An admin names the company; it is created on first use. */
		if ((r = gw_db_query(req->db, NULL,
		    "INSERT INTO companies (name, created_by) VALUES ($1, $2::uuid) "
		    "ON CONFLICT ((lower(name))) DO NOTHING", 2, company,
		    req->principal.account_id)) != 0 ||
		    (r = gw_db_query(req->db, &res,
		    "SELECT id FROM companies WHERE lower(name) = lower($1)", 1, company)) != 0)
			goto out;
		if (PQntuples(res) != 1) {
			r = RSSP_E_DB;
			goto out;
		}
	}
	snprintf(company_id, sizeof(company_id), "%s", gw_val(res, 0, "id"));
	if ((r = create_person(req, rep, email, mobile, name,
	    strcmp(role, "admin") == 0 ? "company_admin" : "signer", company_id, id)) != 0 ||
	    (r = gw_tx_commit(req)) != 0)
		goto out;
	log_info("account %s registered in company %s", id, company_id);
	r = gw_reply_json(rep, 201, json_pack("{s:s, s:s, s:s, s:s}", "userID", id,
	    "companyID", company_id, "role", role, "status", "PENDING_CONFIRMATION"));
out:
	PQclear(res);
	return r;
}

/* ---- confirmation and passphrase ---- */

int
users_confirm(struct gw_request *req, struct gw_reply *rep)
{
	const char *token, *pass;
	char hash[65], pwhash[GW_PWHASH_MAX] = "";
	PGresult *res = NULL;
	int r;

	if ((r = gw_get_str(req, rep, "token", 128, true, &token)) != 0 ||
	    (r = get_passphrase(req, rep, "passphrase", &pass)) != 0)
		goto out;
	gw_sha256_hex(token, strlen(token), hash);
	if ((r = gw_tx_begin(req)) != 0)
		goto out;
	if ((r = gw_db_query(req->db, &res,
	    "SELECT c.account_id, c.used_at IS NOT NULL AS used, c.expires_at <= now() AS expired, "
	    " a.status "
	    "FROM email_confirmations c JOIN accounts a ON a.id = c.account_id "
	    "WHERE c.token_hash = decode($1, 'hex') FOR UPDATE", 1, hash)) != 0)
		goto out;
	/* Unknown and spent tokens get one answer. */
	if (PQntuples(res) != 1 || strcmp(gw_val(res, 0, "used"), "t") == 0) {
		r = gw_error(rep, 400, "invalid_grant",
		    "field 'token' is not a valid confirmation token (unknown or already used)");
		goto out;
	}
	if (strcmp(gw_val(res, 0, "expired"), "t") == 0) {
		r = gw_error(rep, 410, "expired", "field 'token': the confirmation token has expired");
		goto out;
	}
	if (strcmp(gw_val(res, 0, "status"), "PENDING_CONFIRMATION") != 0) {
		r = gw_error(rep, 409, "conflict", "the account is not waiting for confirmation");
		goto out;
	}
	/* Hashed only after the token proved valid: argon2id is not free. */
	if ((r = gw_password_hash(pass, pwhash)) != 0)
		goto out;
	const char *id = gw_val(res, 0, "account_id");
	if ((r = gw_db_query(req->db, NULL,
	    "UPDATE email_confirmations SET used_at = now() WHERE account_id = $1::uuid AND used_at IS NULL",
	    1, id)) != 0 ||
	    (r = gw_db_query(req->db, NULL,
	    "UPDATE accounts SET passphrase_hash = $2, status = 'ACTIVE', confirmed_at = now(), "
	    " failed_logins = 0, locked_until = NULL, updated_at = now() WHERE id = $1::uuid",
	    2, id, pwhash)) != 0 ||
	    (r = gw_tx_commit(req)) != 0)
		goto out;
	log_info("account %s confirmed", id);
	r = gw_reply_json(rep, 200, json_pack("{s:s, s:s}", "userID", id, "status", "ACTIVE"));
out:
	OPENSSL_cleanse(pwhash, sizeof(pwhash));
	PQclear(res);
	return r;
}

int
users_change_passphrase(struct gw_request *req, struct gw_reply *rep)
{
	const struct gw_principal *p = &req->principal;
	const char *old, *new;
	char pwhash[GW_PWHASH_MAX] = "", place[32];
	char *stored = NULL;
	PGresult *res = NULL;
	int r, ok;

	if (p->role == GW_ROLE_RP) {
		/* Its passphrase is its secret key, also stored as a Digest HA1. */
		r = gw_error(rep, 403, "access_denied",
		    "an rp account changes its secret key with admin/clients/rotate");
		goto out;
	}
	if ((r = gw_get_str(req, rep, "oldPassphrase", PASS_MAX_CHARS * 4, true, &old)) != 0 ||
	    (r = get_passphrase(req, rep, "newPassphrase", &new)) != 0)
		goto out;
	/* As the login does (auth.c): read, take a place among the evaluations the lockout
	 * allows, give the connection back while argon2id runs, then write only if the
	 * stored hash is still the one verified. No row lock is held while hashing. */
	if ((r = gw_db_query(req->db, &res,
	    "SELECT passphrase_hash, status = 'LOCKED' AND locked_until > now() AS locked, "
	    ACCT_LOCK_OVER_SQL " AS lock_over FROM accounts WHERE id = $1::uuid", 1,
	    p->account_id)) != 0)
		goto out;
	if (PQntuples(res) != 1) {
		r = gw_error(rep, 401, "invalid_token", "the account no longer exists");
		goto out;
	}
	if (strcmp(gw_val(res, 0, "locked"), "t") == 0) {
		r = gw_error(rep, 423, "account_locked", "the account is locked");
		goto out;
	}
	/* a lock whose time is up ends here as it does at a login (the same transition), so
	 * the change needs no login first */
	if (strcmp(gw_val(res, 0, "lock_over"), "t") == 0 &&
	    (r = acct_status_change(req->db, req->cfg, ACCT_LOCK_EXPIRED, p->account_id, NULL)) != 0)
		goto out;
	if (!gw_isnull(res, 0, "passphrase_hash") &&
	    (stored = strdup(gw_val(res, 0, "passphrase_hash"))) == NULL) {
		r = RSSP_E_NOMEM;
		goto out;
	}
	PQclear(res);
	res = NULL;
	/* a stolen bearer token must not become a passphrase oracle: each evaluation takes
	 * a place counted towards the login lockout, however many run at once */
	if ((r = acct_status_change(req->db, req->cfg, ACCT_LOGIN_ATTEMPT, p->account_id, place)) != 0)
		goto out;
	if (place[0] == '\0') {
		r = gw_error(rep, 423, "account_locked", "the account is locked");
		goto out;
	}
	gw_db_release(req); /* argon2id may wait: hold no connection meanwhile */
	ok = gw_password_verify(stored, old) == 0;
	if (ok && (r = gw_password_hash(new, pwhash)) != 0) {
		/* nothing was decided: the place stays counted, as a login's does */
		goto out;
	}
	if ((r = gw_db_reacquire(req)) != 0)
		goto out;
	if (!ok) {
		if ((r = acct_status_change(req->db, req->cfg, ACCT_LOGIN_FAILED, p->account_id, NULL)) != 0)
			goto out;
		r = gw_error(rep, 401, "incorrect_credentials", "field 'oldPassphrase' is not correct");
		goto out;
	}
	if ((r = gw_tx_begin(req)) != 0 ||
	    (r = gw_db_query(req->db, &res,
	    "UPDATE accounts SET passphrase_hash = $2, failed_logins = 0, locked_until = NULL,"
	    " updated_at = now() WHERE id = $1::uuid AND status = 'ACTIVE' AND passphrase_hash = $3"
	    " RETURNING id", 3, p->account_id, pwhash, stored)) != 0)
		goto out;
	if (PQntuples(res) != 1) {
		/* another change won the race, or a failure running at the same time locked
		 * the account: this one applies nothing; its place is given back */
		gw_tx_rollback(req);
		PQclear(res);
		res = NULL;
		if ((r = gw_db_query(req->db, &res, "UPDATE accounts SET"
		    " failed_logins = greatest(failed_logins - 1, 0) WHERE id = $1::uuid"
		    " RETURNING passphrase_hash IS NOT DISTINCT FROM $2 AS unchanged, status", 2,
		    p->account_id, stored)) != 0)
			goto out;
		if (PQntuples(res) == 1 && strcmp(gw_val(res, 0, "unchanged"), "t") != 0)
			r = gw_error(rep, 409, "conflict", "the passphrase was changed by another request meanwhile");
		else if (PQntuples(res) == 1 && strcmp(gw_val(res, 0, "status"), "LOCKED") == 0)
			r = gw_error(rep, 423, "account_locked", "the account is locked");
		else
			r = gw_error(rep, 401, "invalid_token", "the account is not active");
		goto out;
	}
	/* every other session of the account ends; this one goes on */
	if ((r = gw_tokens_revoke(req->db, GW_TOKENS_ACCOUNT_BUT_FAMILY, p->account_id,
	    p->token_family)) != 0 ||
	    (r = gw_tx_commit(req)) != 0)
		goto out;
	gw_token_cache_forget_account(p->account_id);
	log_info("account %s changed its passphrase", p->account_id);
	r = gw_reply_empty(rep, 204);
out:
	OPENSSL_cleanse(pwhash, sizeof(pwhash));
	if (stored != NULL)
		OPENSSL_clear_free(stored, strlen(stored));
	PQclear(res);
	return r;
}

int
users_status(struct gw_request *req, struct gw_reply *rep)
{
	const char *id, *email;
	PGresult *res = NULL;
	int r;

	if ((r = acct_get_user_id(req, rep, "userID", false, &id)) != 0 ||
	    (r = get_email(req, rep, "email", false, &email)) != 0)
		goto out;
	if (id == NULL && email == NULL) {
		r = gw_error(rep, 400, "invalid_request", "missing field 'userID' (or 'email')");
		goto out;
	}
	/* one round trip: the account, its SIC status and its credential count */
	if ((r = acct_load_visible_sql(req, rep, id, email, ACCT_STATUS_COLS ACCT_WHERE_ID,
	    ACCT_STATUS_COLS ACCT_WHERE_EMAIL, &res)) != 0)
		goto out;
	json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:s}",
	    "userID", gw_val(res, 0, "tenant_account"), "status", gw_val(res, 0, "status_shown"),
	    "sicStatus", gw_val(res, 0, "sic_status"),
	    "credentials", (json_int_t)strtoll(gw_val(res, 0, "credential_count"), NULL, 10),
	    "createdAt", gw_val(res, 0, "created_iso"));
	if (o != NULL) {
		const char *c = gw_val(res, 0, "confirmed_iso");
		json_object_set_new(o, "confirmedAt", *c != '\0' ? json_string(c) : json_null());
	}
	r = gw_reply_json(rep, 200, o);
out:
	PQclear(res);
	return r;
}
