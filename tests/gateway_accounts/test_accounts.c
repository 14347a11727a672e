/* test_accounts.c - the account and admin functions of a real rssp-gateway over HTTP on
 * loopback, with a real PostgreSQL database (gwtest). One gateway serves the suite. */
#include <check.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "gwtest.h"

static struct gwt *g;

static void
setup(void)
{
	/* Logins from one address would otherwise hit the rate limit across cases. */
	static const char *const env[] = { "RSSP_LOGIN_RATE=1000000", "RSSP_LOGIN_BURST=1000000", NULL };
	struct gwt_opts o = { .env = env };

	g = gwt_start(&o);
}

static void
teardown(void)
{
	gwt_stop(g);
	g = NULL;
}

/* ---- helpers ---- */

static char *
email_new(const char *prefix)
{
	char *u = gwt_unique(prefix), *e = NULL;

	ck_assert(asprintf(&e, "%s@example.org", u) > 0);
	free(u);
	return e;
}

static json_t *
person(const char *email, const char *name)
{
	json_t *o = json_pack("{s:s, s:s, s:s}", "email", email, "mobile", "+41791234567",
	    "fullName", name != NULL ? name : "Ada Lovelace");

	ck_assert_ptr_nonnull(o);
	return o;
}

/* Registers a signer with `token` (rp or admin); returns its userID (malloc'd). */
static char *
register_user(const char *token, const char *email, const char *name)
{
	return gwt_register(g, token, email, "+41791234567", name != NULL ? name : "Ada Lovelace");
}

/* Confirms email's account with the token from the outbox. */
static void
confirm_user(const char *email, const char *pass)
{
	gwt_confirm(g, email, pass);
}

/* A confirmed signer registered by the admin, logged in. */
static char *
signer_new(char **emailp, char **idp)
{
	char *email = email_new("signer"), *id = register_user(gwt_admin_token(g), email, NULL);
	char *tok;

	confirm_user(email, "correct horse battery");
	tok = gwt_login(g, email, "correct horse battery", NULL);
	if (emailp != NULL)
		*emailp = email;
	else
		free(email);
	if (idp != NULL)
		*idp = id;
	else
		free(id);
	return tok;
}

/* A new rp client, logged in with its secret key; returns the access token. */
static char *
rp_new(char **client_idp, char **secretp, char **account_idp)
{
	char *id, *secret, *tok;

	gwt_rp_create(g, "Example Bank", &id, &secret, account_idp);
	ck_assert_uint_eq(strlen(secret), 43);
	tok = gwt_login(g, id, secret, NULL);
	if (client_idp != NULL)
		*client_idp = id;
	else
		free(id);
	if (secretp != NULL)
		*secretp = secret;
	else
		free(secret);
	return tok;
}

static long long
outbox_count(const char *recipient)
{
	char *n = gwt_sql(g, "SELECT count(*) FROM outbox WHERE lower(recipient) = lower($1)",
	    recipient, NULL);
	long long v = atoll(n);

	free(n);
	return v;
}

static void
expect_field_error(struct gwt_resp *r, const char *field)
{
	const char *d;

	gwt_expect(r, 400, "invalid_request");
	d = gwt_str(r, "error_description");
	ck_assert_msg(d != NULL && strstr(d, field) != NULL,
	    "description '%s' does not name field %s", d ? d : "(none)", field);
}

static struct gwt_resp *
post_status(const char *token, const char *member, const char *value)
{
	json_t *b = json_pack("{s:s}", member, value);
	struct gwt_resp *r = gwt_post_json(g, "/rssp/users/status", token, b);

	json_decref(b);
	return r;
}

/* ---- users/register ---- */

START_TEST(test_register_creates_a_pending_user_and_queues_a_confirmation_email)
{
	char *email = email_new("reg"), *id = register_user(gwt_admin_token(g), email, "Grace Hopper");
	json_t *b = json_pack("{s:s, s:s}", "recipient", email, "kind", "confirmation");
	struct gwt_resp *r = gwt_post_json(g, "/rssp/admin/outbox/list", gwt_admin_token(g), b);
	json_t *msgs, *m;
	const char *tok;
	char *hash;

	gwt_expect(r, 200, NULL);
	msgs = json_object_get(r->json, "messages");
	ck_assert_int_eq(json_array_size(msgs), 1);
	m = json_array_get(msgs, 0);
	ck_assert_str_eq(json_string_value(json_object_get(m, "channel")), "email");
	ck_assert_str_eq(json_string_value(json_object_get(m, "recipient")), email);
	ck_assert_str_eq(json_string_value(json_object_get(m, "kind")), "confirmation");
	ck_assert(json_is_null(json_object_get(m, "sentAt")));
	ck_assert_ptr_nonnull(json_string_value(json_object_get(m, "createdAt")));
	tok = json_string_value(json_object_get(json_object_get(m, "data"), "token"));
	ck_assert_ptr_nonnull(tok);
	ck_assert_uint_eq(strlen(tok), 43);
	ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(m, "body")), tok));
	ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(m, "body")), "Grace Hopper"));
	/* stored only as SHA-256, valid 24 hours */
	hash = gwt_sql(g, "SELECT count(*) FROM email_confirmations WHERE account_id = $1::uuid "
	    "AND token_hash = sha256(convert_to($2, 'UTF8')) "
	    "AND expires_at BETWEEN now() + interval '23 hours 59 minutes' AND now() + interval '24 hours 1 minute'",
	    id, tok, NULL);
	ck_assert_str_eq(hash, "1");
	free(hash);
	hash = gwt_sql(g, "SELECT count(*) FROM email_confirmations WHERE position(convert_to($1, 'UTF8') in token_hash) > 0",
	    tok, NULL);
	ck_assert_str_eq(hash, "0");
	free(hash);
	gwt_resp_free(r);
	json_decref(b);
	/* the account as stored */
	hash = gwt_sql(g, "SELECT role || ' ' || status || ' ' || mobile FROM accounts WHERE id = $1::uuid", id, NULL);
	ck_assert_str_eq(hash, "signer PENDING_CONFIRMATION +41791234567");
	free(hash);
	free(id);
	free(email);
}
END_TEST

START_TEST(test_register_refuses_missing_mistyped_and_malformed_fields_naming_them)
{
	static const struct {
		const char *body, *field;
	} cases[] = {
		{ "{\"mobile\": \"+41791234567\", \"fullName\": \"A\"}", "email" },
		{ "{\"email\": 5, \"mobile\": \"+41791234567\", \"fullName\": \"A\"}", "email" },
		{ "{\"email\": \"\", \"mobile\": \"+41791234567\", \"fullName\": \"A\"}", "email" },
		{ "{\"email\": \"no-at-sign\", \"mobile\": \"+41791234567\", \"fullName\": \"A\"}", "email" },
		{ "{\"email\": \"a@nodot\", \"mobile\": \"+41791234567\", \"fullName\": \"A\"}", "email" },
		{ "{\"email\": \"a..b@example.org\", \"mobile\": \"+41791234567\", \"fullName\": \"A\"}", "email" },
		{ "{\"email\": \"a b@example.org\", \"mobile\": \"+41791234567\", \"fullName\": \"A\"}", "email" },
		{ "{\"email\": \"a@-example.org\", \"mobile\": \"+41791234567\", \"fullName\": \"A\"}", "email" },
		{ "{\"email\": \"a\\r\\nBcc: x@y.org@example.org\", \"mobile\": \"+41791234567\", \"fullName\": \"A\"}", "email" },
		{ "{\"email\": \"a@example.org\", \"fullName\": \"A\"}", "mobile" },
		{ "{\"email\": \"a@example.org\", \"mobile\": 41791234567, \"fullName\": \"A\"}", "mobile" },
		{ "{\"email\": \"a@example.org\", \"mobile\": \"41791234567\", \"fullName\": \"A\"}", "mobile" },
		{ "{\"email\": \"a@example.org\", \"mobile\": \"+1234567\", \"fullName\": \"A\"}", "mobile" },
		{ "{\"email\": \"a@example.org\", \"mobile\": \"+1234567890123456\", \"fullName\": \"A\"}", "mobile" },
		{ "{\"email\": \"a@example.org\", \"mobile\": \"+0791234567\", \"fullName\": \"A\"}", "mobile" },
		{ "{\"email\": \"a@example.org\", \"mobile\": \"+41 79 123 45 67\", \"fullName\": \"A\"}", "mobile" },
		{ "{\"email\": \"a@example.org\", \"mobile\": \"+41791234567\"}", "fullName" },
		{ "{\"email\": \"a@example.org\", \"mobile\": \"+41791234567\", \"fullName\": \"\"}", "fullName" },
		{ "{\"email\": \"a@example.org\", \"mobile\": \"+41791234567\", \"fullName\": [\"A\"]}", "fullName" },
		{ "{\"email\": \"a@example.org\", \"mobile\": \"+41791234567\", \"fullName\": \"A\\nB\"}", "fullName" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct gwt_resp *r = gwt_post(g, "/rssp/users/register", gwt_admin_token(g), cases[i].body);
		expect_field_error(r, cases[i].field);
		gwt_resp_free(r);
	}
	/* 64 characters (not bytes; the certificate's commonName) are allowed, 65 are not */
	char name[65 * 2 + 1] = "";
	for (int i = 0; i < 64; i++)
		strcat(name, "\xc3\xa9");
	char *email = email_new("len");
	json_t *b = person(email, name);
	struct gwt_resp *r = gwt_post_json(g, "/rssp/users/register", gwt_admin_token(g), b);
	gwt_expect(r, 201, NULL);
	gwt_resp_free(r);
	json_decref(b);
	free(email);
	strcat(name, "x");
	email = email_new("len");
	b = person(email, name);
	r = gwt_post_json(g, "/rssp/users/register", gwt_admin_token(g), b);
	expect_field_error(r, "fullName");
	ck_assert_int_eq(outbox_count(email), 0);
	gwt_resp_free(r);
	json_decref(b);
	free(email);
}
END_TEST

START_TEST(test_register_refuses_a_duplicate_email_and_leaves_no_outbox_row)
{
	char *email = email_new("dup"), *id = register_user(gwt_admin_token(g), email, NULL);
	char *upper = strdup(email);
	json_t *b;
	struct gwt_resp *r;

	for (char *p = upper; *p != '\0'; p++)
		*p = (char)toupper((unsigned char)*p);
	ck_assert_int_eq(outbox_count(email), 1);
	b = person(upper, NULL);
	r = gwt_post_json(g, "/rssp/users/register", gwt_admin_token(g), b);
	gwt_expect(r, 409, "conflict");
	gwt_resp_free(r);
	json_decref(b);
	/* the failed transaction wrote nothing: still one message, one confirmation */
	ck_assert_int_eq(outbox_count(email), 1);
	char *n = gwt_sql(g, "SELECT count(*) FROM email_confirmations c JOIN accounts a ON a.id = c.account_id "
	    "WHERE lower(a.email) = lower($1)", email, NULL);
	ck_assert_str_eq(n, "1");
	free(n);
	free(upper);
	free(id);
	free(email);
}
END_TEST

START_TEST(test_register_is_refused_to_signers)
{
	char *tok = signer_new(NULL, NULL), *email = email_new("x");
	json_t *b = person(email, NULL);
	struct gwt_resp *r = gwt_post_json(g, "/rssp/users/register", tok, b);

	gwt_expect(r, 403, "access_denied");
	gwt_resp_free(r);
	r = gwt_post_json(g, "/rssp/users/register", NULL, b);
	gwt_expect(r, 401, "invalid_token");
	gwt_resp_free(r);
	json_decref(b);
	free(email);
	free(tok);
}
END_TEST

/* ---- users/confirm ---- */

START_TEST(test_confirm_activates_the_account_and_the_token_works_once)
{
	char *email = email_new("conf"), *id = register_user(gwt_admin_token(g), email, NULL);
	char *tok = gwt_outbox_secret(g, email, "confirmation"), *login;
	json_t *b = json_pack("{s:s, s:s}", "token", tok, "passphrase", "a passphrase of mine");
	struct gwt_resp *r = gwt_post_json(g, "/rssp/users/confirm", NULL, b);

	gwt_expect(r, 200, NULL);
	ck_assert_str_eq(gwt_str(r, "userID"), id);
	ck_assert_str_eq(gwt_str(r, "status"), "ACTIVE");
	gwt_resp_free(r);
	login = gwt_login(g, email, "a passphrase of mine", NULL);
	/* a second use of the token is refused and changes nothing */
	json_object_set_new(b, "passphrase", json_string("another passphrase"));
	r = gwt_post_json(g, "/rssp/users/confirm", NULL, b);
	gwt_expect(r, 400, "invalid_grant");
	ck_assert_ptr_nonnull(strstr(gwt_str(r, "error_description"), "token"));
	gwt_resp_free(r);
	free(gwt_login(g, email, "a passphrase of mine", NULL));
	/* status shows the confirmation */
	r = post_status(login, "userID", id);
	gwt_expect(r, 200, NULL);
	ck_assert_str_eq(gwt_str(r, "status"), "ACTIVE");
	ck_assert(json_is_string(json_object_get(r->json, "confirmedAt")));
	gwt_resp_free(r);
	json_decref(b);
	free(login);
	free(tok);
	free(id);
	free(email);
}
END_TEST

START_TEST(test_confirm_refuses_unknown_and_expired_tokens)
{
	char *email = email_new("exp"), *id = register_user(gwt_admin_token(g), email, NULL);
	char *tok = gwt_outbox_secret(g, email, "confirmation");
	struct gwt_resp *r;
	json_t *b;

	gwt_post_expect(g, "/rssp/users/confirm", NULL,
	    "{\"token\": \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\", \"passphrase\": \"long enough passphrase\"}",
	    400, "invalid_grant", NULL);
	free(gwt_sql(g, "UPDATE email_confirmations SET expires_at = now() - interval '1 second' "
	    "WHERE account_id = $1::uuid", id, NULL));
	b = json_pack("{s:s, s:s}", "token", tok, "passphrase", "long enough passphrase");
	r = gwt_post_json(g, "/rssp/users/confirm", NULL, b);
	gwt_expect(r, 410, "expired");
	gwt_resp_free(r);
	char *st = gwt_sql(g, "SELECT status FROM accounts WHERE id = $1::uuid", id, NULL);
	ck_assert_str_eq(st, "PENDING_CONFIRMATION");
	free(st);
	/* missing and mistyped fields */
	gwt_post_expect(g, "/rssp/users/confirm", NULL, "{\"passphrase\": \"long enough passphrase\"}",
	    400, "invalid_request", "token");
	gwt_post_expect(g, "/rssp/users/confirm", NULL, "{\"token\": 12, \"passphrase\": \"long enough passphrase\"}",
	    400, "invalid_request", "token");
	gwt_post_expect(g, "/rssp/users/confirm", NULL, "{\"token\": \"x\"}",
	    400, "invalid_request", "passphrase");
	json_decref(b);
	free(tok);
	free(id);
	free(email);
}
END_TEST

START_TEST(test_confirm_refuses_a_passphrase_too_short_or_too_long)
{
	char *email = email_new("len"), *id = register_user(gwt_admin_token(g), email, NULL);
	char *tok = gwt_outbox_secret(g, email, "confirmation");
	char longpass[258];
	json_t *b;
	struct gwt_resp *r;

	memset(longpass, 'p', 257);
	longpass[257] = '\0';
	/* nine characters (eighteen bytes): too short */
	const char *bad[] = { "123456789", "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", longpass };
	for (size_t i = 0; i < 3; i++) {
		b = json_pack("{s:s, s:s}", "token", tok, "passphrase", bad[i]);
		r = gwt_post_json(g, "/rssp/users/confirm", NULL, b);
		expect_field_error(r, "passphrase");
		gwt_resp_free(r);
		json_decref(b);
	}
	/* the token was not spent by those; 256 characters are accepted */
	longpass[256] = '\0';
	b = json_pack("{s:s, s:s}", "token", tok, "passphrase", longpass);
	r = gwt_post_json(g, "/rssp/users/confirm", NULL, b);
	gwt_expect(r, 200, NULL);
	gwt_resp_free(r);
	json_decref(b);
	free(gwt_login(g, email, longpass, NULL));
	free(tok);
	free(id);
	free(email);
}
END_TEST

/* ---- users/changePassphrase ---- */

START_TEST(test_change_passphrase_revokes_the_other_tokens_and_keeps_this_one)
{
	char *email, *id, *t1 = signer_new(&email, &id);
	char *t2 = gwt_login(g, email, "correct horse battery", NULL);
	struct gwt_resp *r;

	gwt_post_expect(g, "/rssp/users/changePassphrase", t1,
	    "{\"oldPassphrase\": \"correct horse battery\", \"newPassphrase\": \"staple battery horse\"}",
	    204, NULL, NULL);
	r = post_status(t1, "userID", id);
	gwt_expect(r, 200, NULL);
	gwt_resp_free(r);
	r = post_status(t2, "userID", id);
	gwt_expect(r, 401, "invalid_token");
	gwt_resp_free(r);
	/* the old passphrase no longer logs in, the new one does */
	json_t *b = json_pack("{s:s, s:s, s:s}", "grant_type", "password", "username", email,
	    "password", "correct horse battery");
	r = gwt_post_json(g, "/rssp/auth/login", NULL, b);
	gwt_expect(r, 401, "incorrect_credentials");
	gwt_resp_free(r);
	json_decref(b);
	free(gwt_login(g, email, "staple battery horse", NULL));
	free(t1);
	free(t2);
	free(id);
	free(email);
}
END_TEST

START_TEST(test_change_passphrase_refuses_a_wrong_old_passphrase_and_bad_fields)
{
	char *email, *id, *t = signer_new(&email, &id);

	gwt_post_expect(g, "/rssp/users/changePassphrase", t,
	    "{\"oldPassphrase\": \"not my passphrase\", \"newPassphrase\": \"staple battery horse\"}",
	    401, "incorrect_credentials", NULL);
	gwt_post_expect(g, "/rssp/users/changePassphrase", t,
	    "{\"oldPassphrase\": \"correct horse battery\", \"newPassphrase\": \"short\"}",
	    400, "invalid_request", "newPassphrase");
	gwt_post_expect(g, "/rssp/users/changePassphrase", t, "{\"newPassphrase\": \"staple battery horse\"}",
	    400, "invalid_request", "oldPassphrase");
	gwt_post_expect(g, "/rssp/users/changePassphrase", NULL,
	    "{\"oldPassphrase\": \"correct horse battery\", \"newPassphrase\": \"staple battery horse\"}",
	    401, "invalid_token", NULL);
	/* the passphrase is unchanged */
	free(gwt_login(g, email, "correct horse battery", NULL));
	free(t);
	free(id);
	free(email);
}
END_TEST

/* ---- users/status ---- */

START_TEST(test_status_follows_the_tenant_rules)
{
	char *a_acct, *rp_a = rp_new(NULL, NULL, &a_acct), *rp_b = rp_new(NULL, NULL, NULL);
	char *email = email_new("ten"), *id = register_user(rp_a, email, NULL);
	char *other_email, *other_id, *signer = signer_new(&other_email, &other_id);
	struct gwt_resp *r;

	/* the rp that registered it, by id and by email */
	r = post_status(rp_a, "userID", id);
	gwt_expect(r, 200, NULL);
	ck_assert_str_eq(gwt_str(r, "userID"), id);
	ck_assert_str_eq(gwt_str(r, "status"), "PENDING_CONFIRMATION");
	ck_assert_str_eq(gwt_str(r, "sicStatus"), "NONE");
	ck_assert_int_eq(gwt_int(r, "credentials"), 0);
	ck_assert_ptr_nonnull(gwt_str(r, "createdAt"));
	ck_assert(json_is_null(json_object_get(r->json, "confirmedAt")));
	gwt_resp_free(r);
	char *reg = gwt_sql(g, "SELECT registered_by FROM accounts WHERE id = $1::uuid", id, NULL);
	ck_assert_str_eq(reg, a_acct);
	free(reg);
	r = post_status(rp_a, "email", email);
	gwt_expect(r, 200, NULL);
	ck_assert_str_eq(gwt_str(r, "userID"), id);
	gwt_resp_free(r);
	/* another rp: 404 as for an unknown user, also by email */
	r = post_status(rp_b, "userID", id);
	gwt_expect(r, 404, "not_found");
	gwt_resp_free(r);
	r = post_status(rp_b, "email", email);
	gwt_expect(r, 404, "not_found");
	gwt_resp_free(r);
	/* the admin sees all; a signer only itself */
	r = post_status(gwt_admin_token(g), "userID", id);
	gwt_expect(r, 200, NULL);
	gwt_resp_free(r);
	r = post_status(signer, "userID", id);
	gwt_expect(r, 404, "not_found");
	gwt_resp_free(r);
	r = post_status(signer, "userID", other_id);
	gwt_expect(r, 200, NULL);
	ck_assert_str_eq(gwt_str(r, "status"), "ACTIVE");
	gwt_resp_free(r);
	/* unknown user; malformed and missing fields */
	r = post_status(rp_a, "userID", "6f1c7a2e-0000-4000-8000-000000000000");
	gwt_expect(r, 404, "not_found");
	gwt_resp_free(r);
	r = post_status(rp_a, "email", "nobody-here@example.org");
	gwt_expect(r, 404, "not_found");
	gwt_resp_free(r);
	r = post_status(rp_a, "userID", "42");
	expect_field_error(r, "userID");
	gwt_resp_free(r);
	r = post_status(rp_a, "email", "not an email");
	expect_field_error(r, "email");
	gwt_resp_free(r);
	gwt_post_expect(g, "/rssp/users/status", rp_a, "{}", 400, "invalid_request", "userID");
	gwt_post_expect(g, "/rssp/users/status", rp_a, "{\"userID\": true}",
	    400, "invalid_request", "userID");
	free(a_acct);
	free(rp_a);
	free(rp_b);
	free(email);
	free(id);
	free(signer);
	free(other_email);
	free(other_id);
}
END_TEST

START_TEST(test_status_reports_the_sic_status_and_the_credential_count)
{
	char *email, *id, *t = signer_new(&email, &id);
	struct gwt_resp *r;

	r = post_status(t, "userID", id);
	ck_assert_str_eq(gwt_str(r, "sicStatus"), "NONE");
	ck_assert_int_eq(gwt_int(r, "credentials"), 0);
	gwt_resp_free(r);
	/* the tables of 003_signing.sql, written as the signing functions write them */
	free(gwt_sql(g, "INSERT INTO sic_activation_codes (user_id, channel, code_hash, expires_at) "
	    "VALUES ($1::uuid, 'sms', sha256('12345678'), now() + interval '10 minutes') RETURNING 1", id, NULL));
	r = post_status(t, "userID", id);
	ck_assert_str_eq(gwt_str(r, "sicStatus"), "PENDING");
	gwt_resp_free(r);
	free(gwt_sql(g, "INSERT INTO devices (user_id, device_uuid, name, platform, kak_spki, kak_algo, "
	    "sign_algo, sha_algo, status) VALUES ($1::uuid, 'dev-1', 'phone', 'android', '\\x00', 1, "
	    "'ECDSA', 'sha256', 'ACTIVE') RETURNING 1", id, NULL));
	free(gwt_sql(g, "INSERT INTO credentials (owner_id, key_algo, validity_days, status) "
	    "VALUES ($1::uuid, 'ecp256', 365, 'NEW'), ($1::uuid, 'ecp256', 365, 'ACTIVE'), "
	    "($1::uuid, 'rsa2048', 365, 'REVOKED') RETURNING 1", id, NULL));
	r = post_status(gwt_admin_token(g), "userID", id);
	gwt_expect(r, 200, NULL);
	ck_assert_str_eq(gwt_str(r, "sicStatus"), "ACTIVE");
	ck_assert_int_eq(gwt_int(r, "credentials"), 2);
	gwt_resp_free(r);
	free(gwt_sql(g, "UPDATE devices SET status = 'REVOKED', revoked_at = now() WHERE user_id = $1::uuid "
	    "RETURNING 1", id, NULL));
	free(gwt_sql(g, "UPDATE sic_activation_codes SET used_at = now() WHERE user_id = $1::uuid "
	    "RETURNING 1", id, NULL));
	r = post_status(t, "email", email);
	ck_assert_str_eq(gwt_str(r, "sicStatus"), "REVOKED");
	gwt_resp_free(r);
	free(t);
	free(id);
	free(email);
}
END_TEST

/* ---- users/registerCompanyUser ---- */

static struct gwt_resp *
register_company_user(const char *token, const char *email, const char *company, const char *role)
{
	json_t *b = person(email, NULL);
	struct gwt_resp *r;

	json_object_set_new(b, "companyName", json_string(company));
	json_object_set_new(b, "role", json_string(role));
	r = gwt_post_json(g, "/rssp/users/registerCompanyUser", token, b);
	json_decref(b);
	return r;
}

START_TEST(test_register_company_user_creates_the_company_and_keeps_company_admins_in_it)
{
	char *cx = gwt_unique("Company X"), *cy = gwt_unique("Company Y");
	char *ax = email_new("cadm"), *sy = email_new("sy"), *sx = email_new("sx"), *s2 = email_new("s2");
	char *xid, *admin_tok, *sx_id, *sy_id;
	struct gwt_resp *r;

	/* the admin creates company X with its company admin, and company Y with a signer */
	r = register_company_user(gwt_admin_token(g), ax, cx, "admin");
	gwt_expect(r, 201, NULL);
	ck_assert_str_eq(gwt_str(r, "role"), "admin");
	xid = strdup(gwt_str(r, "companyID"));
	gwt_resp_free(r);
	r = register_company_user(gwt_admin_token(g), sy, cy, "signer");
	gwt_expect(r, 201, NULL);
	ck_assert_str_ne(gwt_str(r, "companyID"), xid);
	sy_id = strdup(gwt_str(r, "userID"));
	gwt_resp_free(r);
	char *role = gwt_sql(g, "SELECT a.role || ' ' || c.name FROM accounts a JOIN companies c ON c.id = a.company_id "
	    "WHERE lower(a.email) = lower($1)", ax, NULL);
	char *want = NULL;
	ck_assert(asprintf(&want, "company_admin %s", cx) > 0);
	ck_assert_str_eq(role, want);
	free(role);
	free(want);
	confirm_user(ax, "company admin passphrase");
	admin_tok = gwt_login(g, ax, "company admin passphrase", NULL);

	/* into its own company (name matched case-insensitively) */
	char *lower = strdup(cx);
	for (char *p = lower; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	r = register_company_user(admin_tok, sx, lower, "signer");
	gwt_expect(r, 201, NULL);
	ck_assert_str_eq(gwt_str(r, "companyID"), xid);
	ck_assert_str_eq(gwt_str(r, "role"), "signer");
	sx_id = strdup(gwt_str(r, "userID"));
	gwt_resp_free(r);
	ck_assert_int_eq(outbox_count(sx), 1);
	/* not into company Y, nor into a new company */
	r = register_company_user(admin_tok, s2, cy, "signer");
	gwt_expect(r, 403, "access_denied");
	gwt_resp_free(r);
	r = register_company_user(admin_tok, s2, "A Company That Does Not Exist", "signer");
	gwt_expect(r, 403, "access_denied");
	gwt_resp_free(r);
	ck_assert_int_eq(outbox_count(s2), 0);
	/* it sees its company's users, not others */
	r = post_status(admin_tok, "userID", sx_id);
	gwt_expect(r, 200, NULL);
	gwt_resp_free(r);
	r = post_status(admin_tok, "userID", sy_id);
	gwt_expect(r, 404, "not_found");
	gwt_resp_free(r);
	/* plain users/register is not for company admins */
	json_t *b = person(s2, NULL);
	r = gwt_post_json(g, "/rssp/users/register", admin_tok, b);
	gwt_expect(r, 403, "access_denied");
	gwt_resp_free(r);
	json_decref(b);
	/* bad role, missing company */
	r = register_company_user(gwt_admin_token(g), s2, cx, "owner");
	expect_field_error(r, "role");
	gwt_resp_free(r);
	b = person(s2, NULL);
	json_object_set_new(b, "role", json_string("signer"));
	r = gwt_post_json(g, "/rssp/users/registerCompanyUser", gwt_admin_token(g), b);
	expect_field_error(r, "companyName");
	gwt_resp_free(r);
	json_decref(b);
	/* an rp may not */
	char *rp = rp_new(NULL, NULL, NULL);
	r = register_company_user(rp, s2, cx, "signer");
	gwt_expect(r, 403, "access_denied");
	gwt_resp_free(r);
	free(rp);
	free(lower);
	free(admin_tok);
	free(xid);
	free(sx_id);
	free(sy_id);
	free(cx);
	free(cy);
	free(ax);
	free(sy);
	free(sx);
	free(s2);
}
END_TEST

/* ---- admin ---- */

START_TEST(test_signers_and_rps_cannot_call_admin_routes)
{
	static const char *const paths[] = { "/rssp/admin/clients/create", "/rssp/admin/clients/rotate",
	    "/rssp/admin/users/list", "/rssp/admin/users/disable", "/rssp/admin/users/enable",
	    "/rssp/admin/users/unlock", "/rssp/admin/outbox/list" };
	char *signer = signer_new(NULL, NULL), *rp = rp_new(NULL, NULL, NULL);

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		struct gwt_resp *r = gwt_post(g, paths[i], signer, "{}");
		gwt_expect(r, 403, "access_denied");
		gwt_resp_free(r);
		gwt_post_expect(g, paths[i], rp, "{}", 403, "access_denied", NULL);
		gwt_post_expect(g, paths[i], NULL, "{}", 401, "invalid_token", NULL);
	}
	free(signer);
	free(rp);
}
END_TEST

START_TEST(test_disable_stops_the_tokens_and_logins_and_enable_restores_them)
{
	char *email, *id, *t = signer_new(&email, &id);
	json_t *b = json_pack("{s:s}", "userID", id);
	struct gwt_resp *r;

	r = gwt_post_json(g, "/rssp/admin/users/disable", gwt_admin_token(g), b);
	gwt_expect(r, 200, NULL);
	ck_assert_str_eq(gwt_str(r, "userID"), id);
	ck_assert_str_eq(gwt_str(r, "status"), "DISABLED");
	gwt_resp_free(r);
	r = post_status(t, "userID", id);
	gwt_expect(r, 401, "invalid_token");
	gwt_resp_free(r);
	json_t *lb = json_pack("{s:s, s:s, s:s}", "grant_type", "password", "username", email,
	    "password", "correct horse battery");
	r = gwt_post_json(g, "/rssp/auth/login", NULL, lb);
	ck_assert_msg(r->status == 401 || r->status == 403, "login of a disabled account answered %ld", r->status);
	ck_assert_ptr_null(gwt_str(r, "access_token"));
	gwt_resp_free(r);
	r = gwt_post_json(g, "/rssp/admin/users/enable", gwt_admin_token(g), b);
	gwt_expect(r, 200, NULL);
	ck_assert_str_eq(gwt_str(r, "status"), "ACTIVE");
	gwt_resp_free(r);
	free(gwt_login(g, email, "correct horse battery", NULL));
	/* an admin does not disable itself; unknown and malformed ids */
	json_t *self = json_pack("{s:s}", "userID", gwt_admin_id(g));
	r = gwt_post_json(g, "/rssp/admin/users/disable", gwt_admin_token(g), self);
	gwt_expect(r, 409, "conflict");
	gwt_resp_free(r);
	json_decref(self);
	gwt_post_expect(g, "/rssp/admin/users/disable", gwt_admin_token(g),
	    "{\"userID\": \"6f1c7a2e-0000-4000-8000-000000000000\"}", 404, "not_found", NULL);
	gwt_post_expect(g, "/rssp/admin/users/disable", gwt_admin_token(g), "{}",
	    400, "invalid_request", "userID");
	gwt_post_expect(g, "/rssp/admin/users/enable", gwt_admin_token(g), "{\"userID\": \"x'; --\"}",
	    400, "invalid_request", "userID");
	json_decref(lb);
	json_decref(b);
	free(t);
	free(id);
	free(email);
}
END_TEST

START_TEST(test_a_disabled_pending_account_cannot_confirm_and_enable_returns_it_to_pending)
{
	char *email = email_new("dp"), *id = register_user(gwt_admin_token(g), email, NULL);
	char *tok = gwt_outbox_secret(g, email, "confirmation");
	json_t *b = json_pack("{s:s}", "userID", id);
	json_t *cb = json_pack("{s:s, s:s}", "token", tok, "passphrase", "long enough passphrase");
	struct gwt_resp *r;

	r = gwt_post_json(g, "/rssp/admin/users/disable", gwt_admin_token(g), b);
	gwt_expect(r, 200, NULL);
	gwt_resp_free(r);
	r = gwt_post_json(g, "/rssp/users/confirm", NULL, cb);
	gwt_expect(r, 409, "conflict");
	gwt_resp_free(r);
	r = gwt_post_json(g, "/rssp/admin/users/enable", gwt_admin_token(g), b);
	gwt_expect(r, 200, NULL);
	ck_assert_str_eq(gwt_str(r, "status"), "PENDING_CONFIRMATION");
	gwt_resp_free(r);
	/* the token was not spent by the refusal */
	r = gwt_post_json(g, "/rssp/users/confirm", NULL, cb);
	gwt_expect(r, 200, NULL);
	gwt_resp_free(r);
	/* enabling an active account changes nothing */
	r = gwt_post_json(g, "/rssp/admin/users/enable", gwt_admin_token(g), b);
	gwt_expect(r, 200, NULL);
	ck_assert_str_eq(gwt_str(r, "status"), "ACTIVE");
	gwt_resp_free(r);
	json_decref(cb);
	json_decref(b);
	free(tok);
	free(id);
	free(email);
}
END_TEST

START_TEST(test_register_ignores_unknown_fields_and_no_field_sets_the_role_or_status)
{
	char *email = email_new("unk");
	json_t *b = person(email, NULL);
	struct gwt_resp *r;

	json_object_set_new(b, "role", json_string("admin"));
	json_object_set_new(b, "status", json_string("ACTIVE"));
	json_object_set_new(b, "companyID", json_string("6f1c7a2e-0000-4000-8000-000000000000"));
	json_object_set_new(b, "passphrase_hash", json_string("x"));
	r = gwt_post_json(g, "/rssp/users/register", gwt_admin_token(g), b);
	gwt_expect(r, 201, NULL);
	char *v = gwt_sql(g, "SELECT role || ' ' || status || ' ' || (company_id IS NULL) || ' ' || "
	    "(passphrase_hash IS NULL) FROM accounts WHERE id = $1::uuid", gwt_str(r, "userID"), NULL);
	ck_assert_str_eq(v, "signer PENDING_CONFIRMATION true true");
	free(v);
	gwt_resp_free(r);
	json_decref(b);
	free(email);
}
END_TEST

START_TEST(test_unlock_lets_a_locked_out_user_log_in_again)
{
	char *email, *id, *t = signer_new(&email, &id);
	json_t *bad = json_pack("{s:s, s:s, s:s}", "grant_type", "password", "username", email,
	    "password", "wrong passphrase!");
	struct gwt_resp *r;
	long last = 0;

	for (int i = 0; i < 6; i++) {
		r = gwt_post_json(g, "/rssp/auth/login", NULL, bad);
		last = r->status;
		gwt_resp_free(r);
	}
	ck_assert_int_eq(last, 423);
	json_t *good = json_pack("{s:s, s:s, s:s}", "grant_type", "password", "username", email,
	    "password", "correct horse battery");
	r = gwt_post_json(g, "/rssp/auth/login", NULL, good);
	gwt_expect(r, 423, "account_locked");
	gwt_resp_free(r);
	r = post_status(gwt_admin_token(g), "userID", id);
	ck_assert_str_eq(gwt_str(r, "status"), "LOCKED");
	gwt_resp_free(r);
	json_t *b = json_pack("{s:s}", "userID", id);
	r = gwt_post_json(g, "/rssp/admin/users/unlock", gwt_admin_token(g), b);
	gwt_expect(r, 200, NULL);
	ck_assert_str_eq(gwt_str(r, "status"), "ACTIVE");
	gwt_resp_free(r);
	free(gwt_login(g, email, "correct horse battery", NULL));
	json_decref(b);
	json_decref(good);
	json_decref(bad);
	free(t);
	free(id);
	free(email);
}
END_TEST

/* Five wrong oldPassphrase values through the signer's own token: each is evaluated and
 * counted (401), the fifth reaches the lockout threshold. */
static void
five_wrong_old_passphrases(const char *t)
{
	for (int i = 0; i < 5; i++) {
		gwt_post_expect(g, "/rssp/users/changePassphrase", t,
		    "{\"oldPassphrase\": \"guess guess guess\", \"newPassphrase\": \"staple battery horse\"}",
		    401, "incorrect_credentials", NULL);
	}
}

START_TEST(test_change_passphrase_failures_count_towards_the_lockout)
{
	char *email, *id, *t = signer_new(&email, &id);

	five_wrong_old_passphrases(t);
	gwt_post_expect(g, "/rssp/users/changePassphrase", t,
	    "{\"oldPassphrase\": \"correct horse battery\", \"newPassphrase\": \"staple battery horse\"}",
	    423, "account_locked", NULL);
	free(t);
	free(id);
	free(email);
}
END_TEST

START_TEST(test_change_passphrase_after_the_lock_has_expired)
{
	char *email, *id, *t = signer_new(&email, &id);

	five_wrong_old_passphrases(t);
	/* the lock's time runs out (set in the past, as the clock would) */
	char *st = gwt_sql(g, "UPDATE accounts SET locked_until = now() - interval '1 second' "
	    "WHERE id = $1::uuid AND status = 'LOCKED' RETURNING status", id, NULL);
	ck_assert_msg(st != NULL, "the wrong passphrases did not lock the account");
	free(st);
	gwt_post_expect(g, "/rssp/users/changePassphrase", t,
	    "{\"oldPassphrase\": \"correct horse battery\", \"newPassphrase\": \"staple battery horse\"}",
	    204, NULL, NULL);
	st = gwt_sql(g, "SELECT status || ' ' || failed_logins FROM accounts WHERE id = $1::uuid",
	    id, NULL);
	ck_assert_str_eq(st, "ACTIVE 0");
	free(st);
	free(gwt_login(g, email, "staple battery horse", NULL));
	free(t);
	free(id);
	free(email);
}
END_TEST

START_TEST(test_admin_creates_and_rotates_rp_client_keys)
{
	char *cid, *secret, *acct, *tok = rp_new(&cid, &secret, &acct);
	json_t *b = json_pack("{s:s}", "clientID", cid);
	struct gwt_resp *r;

	/* stored as argon2id and HA1, never in clear */
	char *n = gwt_sql(g, "SELECT count(*) FROM accounts a JOIN rp_clients c ON c.account_id = a.id "
	    "WHERE c.client_id = $1 AND a.role = 'rp' AND a.passphrase_hash LIKE '$argon2id$%' "
	    "AND c.digest_ha1 = sha256(convert_to($1 || ':rssp:' || $2, 'UTF8'))", cid, secret, NULL);
	ck_assert_str_eq(n, "1");
	free(n);
	r = gwt_post_json(g, "/rssp/admin/clients/rotate", gwt_admin_token(g), b);
	gwt_expect(r, 200, NULL);
	ck_assert_str_eq(gwt_str(r, "clientID"), cid);
	ck_assert_str_ne(gwt_str(r, "secretKey"), secret);
	char *secret2 = strdup(gwt_str(r, "secretKey"));
	gwt_resp_free(r);
	/* the old key and its sessions are gone */
	gwt_post_expect(g, "/rssp/users/status", tok, "{\"userID\": \"6f1c7a2e-0000-4000-8000-000000000000\"}",
	    401, "invalid_token", NULL);
	json_t *lb = json_pack("{s:s, s:s, s:s}", "grant_type", "password", "username", cid,
	    "password", secret);
	r = gwt_post_json(g, "/rssp/auth/login", NULL, lb);
	gwt_expect(r, 401, "incorrect_credentials");
	gwt_resp_free(r);
	free(gwt_login(g, cid, secret2, NULL));
	/* errors */
	gwt_post_expect(g, "/rssp/admin/clients/rotate", gwt_admin_token(g), "{\"clientID\": \"rp-unknown\"}",
	    404, "not_found", NULL);
	gwt_post_expect(g, "/rssp/admin/clients/rotate", gwt_admin_token(g), "{}",
	    400, "invalid_request", "clientID");
	gwt_post_expect(g, "/rssp/admin/clients/create", gwt_admin_token(g), "{\"name\": 3}",
	    400, "invalid_request", "name");
	gwt_post_expect(g, "/rssp/admin/clients/create", gwt_admin_token(g), "{}",
	    400, "invalid_request", "name");
	json_decref(lb);
	json_decref(b);
	free(secret2);
	free(tok);
	free(cid);
	free(secret);
	free(acct);
}
END_TEST

START_TEST(test_admin_users_list_pages_through_every_account_once)
{
	for (int i = 0; i < 7; i++) {
		char *e = email_new("page");
		free(register_user(gwt_admin_token(g), e, NULL));
		free(e);
	}
	char *total = gwt_sql(g, "SELECT count(*) FROM accounts", NULL);
	char *signers = gwt_sql(g, "SELECT count(*) FROM accounts WHERE role = 'signer' AND status = 'PENDING_CONFIRMATION'", NULL);
	json_t *seen = json_object();
	char *page = NULL;
	int pages = 0;

	do {
		json_t *b = json_pack("{s:i}", "maxResults", 3);
		if (page != NULL)
			json_object_set_new(b, "pageToken", json_string(page));
		struct gwt_resp *r = gwt_post_json(g, "/rssp/admin/users/list", gwt_admin_token(g), b);
		gwt_expect(r, 200, NULL);
		json_t *users = json_object_get(r->json, "users"), *u;
		size_t i;
		ck_assert_uint_le(json_array_size(users), 3);
		json_array_foreach(users, i, u) {
			const char *uid = json_string_value(json_object_get(u, "userID"));
			ck_assert_ptr_null(json_object_get(seen, uid));
			json_object_set_new(seen, uid, json_true());
			ck_assert_ptr_nonnull(json_string_value(json_object_get(u, "role")));
			ck_assert_ptr_nonnull(json_string_value(json_object_get(u, "status")));
			ck_assert_ptr_nonnull(json_object_get(u, "companyID"));
		}
		free(page);
		page = gwt_str(r, "nextPageToken") ? strdup(gwt_str(r, "nextPageToken")) : NULL;
		gwt_resp_free(r);
		json_decref(b);
		pages++;
	} while (page != NULL && pages < 1000);
	ck_assert_int_eq((long long)json_object_size(seen), atoll(total));
	ck_assert_int_ge(pages, 3);
	/* filters */
	struct gwt_resp *r = gwt_post(g, "/rssp/admin/users/list", gwt_admin_token(g),
	    "{\"role\": \"signer\", \"status\": \"PENDING_CONFIRMATION\", \"maxResults\": 100}");
	gwt_expect(r, 200, NULL);
	ck_assert_int_eq((long long)json_array_size(json_object_get(r->json, "users")), atoll(signers));
	gwt_resp_free(r);
	/* bad fields */
	static const struct {
		const char *body, *field;
	} bad[] = {
		{ "{\"maxResults\": 0}", "maxResults" }, { "{\"maxResults\": 101}", "maxResults" },
		{ "{\"maxResults\": \"3\"}", "maxResults" }, { "{\"pageToken\": \"not-a-token\"}", "pageToken" },
		{ "{\"pageToken\": \"MTIzLnh5eg\"}", "pageToken" }, { "{\"role\": \"root\"}", "role" },
		{ "{\"status\": \"GONE\"}", "status" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		r = gwt_post(g, "/rssp/admin/users/list", gwt_admin_token(g), bad[i].body);
		expect_field_error(r, bad[i].field);
		gwt_resp_free(r);
	}
	json_decref(seen);
	free(total);
	free(signers);
}
END_TEST

START_TEST(test_outbox_list_filters_by_recipient_and_kind_newest_first)
{
	char *e1 = email_new("ob"), *e2 = email_new("ob");
	free(register_user(gwt_admin_token(g), e1, NULL));
	free(register_user(gwt_admin_token(g), e2, NULL));
	struct gwt_resp *r = gwt_post(g, "/rssp/admin/outbox/list", gwt_admin_token(g), "{\"maxResults\": 2}");
	gwt_expect(r, 200, NULL);
	json_t *msgs = json_object_get(r->json, "messages");
	ck_assert_int_eq(json_array_size(msgs), 2);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(msgs, 0), "recipient")), e2);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(msgs, 1), "recipient")), e1);
	ck_assert_int_gt(json_integer_value(json_object_get(json_array_get(msgs, 0), "id")),
	    json_integer_value(json_object_get(json_array_get(msgs, 1), "id")));
	gwt_resp_free(r);
	json_t *b = json_pack("{s:s}", "recipient", e1);
	r = gwt_post_json(g, "/rssp/admin/outbox/list", gwt_admin_token(g), b);
	gwt_expect(r, 200, NULL);
	ck_assert_int_eq(json_array_size(json_object_get(r->json, "messages")), 1);
	gwt_resp_free(r);
	json_object_set_new(b, "kind", json_string("sic_activation_code"));
	r = gwt_post_json(g, "/rssp/admin/outbox/list", gwt_admin_token(g), b);
	gwt_expect(r, 200, NULL);
	ck_assert_int_eq(json_array_size(json_object_get(r->json, "messages")), 0);
	gwt_resp_free(r);
	gwt_post_expect(g, "/rssp/admin/outbox/list", gwt_admin_token(g), "{\"maxResults\": 1000}",
	    400, "invalid_request", "maxResults");
	gwt_post_expect(g, "/rssp/admin/outbox/list", gwt_admin_token(g), "{\"kind\": 1}",
	    400, "invalid_request", "kind");
	json_decref(b);
	free(e1);
	free(e2);
}
END_TEST

/* ---- injection ---- */

START_TEST(test_sql_metacharacters_are_stored_and_returned_verbatim)
{
	static const char *const names[] = {
		"'; DROP TABLE accounts; --",
		"Robert\"); DELETE FROM outbox; --",
		"back\\slash \\' \\\\ quote'' \"dq\"",
		"\xe5\xb1\xb1\xe7\x94\xb0 \xe5\xa4\xaa\xe9\x83\x8e \xf0\x9f\x94\x90 \xc3\x85sa",
		"%s %n $1 :name ?",
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char *u = gwt_unique("o'brien"), *email = NULL, *company = NULL;
		ck_assert(asprintf(&email, "%s+x'--@example.org", u) > 0);
		ck_assert(asprintf(&company, "%s %s", names[i], u) > 0);
		struct gwt_resp *r = register_company_user(gwt_admin_token(g), email, company, "signer");
		gwt_expect(r, 201, NULL);
		char *id = strdup(gwt_str(r, "userID"));
		gwt_resp_free(r);
		/* fullName */
		char *e2 = email_new("meta");
		char *id2 = register_user(gwt_admin_token(g), e2, names[i]);
		char *v = gwt_sql(g, "SELECT full_name FROM accounts WHERE id = $1::uuid", id2, NULL);
		ck_assert_str_eq(v, names[i]);
		free(v);
		v = gwt_sql(g, "SELECT c.name FROM accounts a JOIN companies c ON c.id = a.company_id WHERE a.id = $1::uuid",
		    id, NULL);
		ck_assert_str_eq(v, company);
		free(v);
		/* returned verbatim: by status (email lookup), the list and the outbox */
		r = post_status(gwt_admin_token(g), "email", email);
		gwt_expect(r, 200, NULL);
		ck_assert_str_eq(gwt_str(r, "userID"), id);
		gwt_resp_free(r);
		json_t *b = json_pack("{s:s}", "recipient", e2);
		r = gwt_post_json(g, "/rssp/admin/outbox/list", gwt_admin_token(g), b);
		gwt_expect(r, 200, NULL);
		ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(
		    json_array_get(json_object_get(r->json, "messages"), 0), "body")), names[i]));
		gwt_resp_free(r);
		json_decref(b);
		b = json_pack("{s:s}", "recipient", email);
		r = gwt_post_json(g, "/rssp/admin/outbox/list", gwt_admin_token(g), b);
		gwt_expect(r, 200, NULL);
		ck_assert_str_eq(json_string_value(json_object_get(
		    json_array_get(json_object_get(r->json, "messages"), 0), "recipient")), email);
		gwt_resp_free(r);
		json_decref(b);
		/* an rp client name */
		b = json_pack("{s:s}", "name", names[i]);
		r = gwt_post_json(g, "/rssp/admin/clients/create", gwt_admin_token(g), b);
		gwt_expect(r, 201, NULL);
		ck_assert_str_eq(gwt_str(r, "name"), names[i]);
		v = gwt_sql(g, "SELECT name FROM rp_clients WHERE client_id = $1", gwt_str(r, "clientID"), NULL);
		ck_assert_str_eq(v, names[i]);
		free(v);
		gwt_resp_free(r);
		json_decref(b);
		free(id);
		free(id2);
		free(e2);
		free(email);
		free(company);
		free(u);
	}
	/* the list returns names verbatim too */
	struct gwt_resp *r = gwt_post(g, "/rssp/admin/users/list", gwt_admin_token(g),
	    "{\"role\": \"signer\", \"maxResults\": 100}");
	gwt_expect(r, 200, NULL);
	ck_assert_ptr_nonnull(strstr(r->body, "DROP TABLE accounts"));
	gwt_resp_free(r);
	char *n = gwt_sql(g, "SELECT count(*) FROM accounts", NULL);
	ck_assert_int_gt(atoll(n), 5);
	free(n);
}
END_TEST


/* ---- argon2id runs on the long pool ---- */

/* Starts `sh -c cmd` in the background; returns its pid. */
static pid_t
spawn_sh(const char *cmd)
{
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	return pid;
}

static int
exited_ok(pid_t pid)
{
	int st;

	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

START_TEST(test_passphrase_routes_hash_on_the_long_pool_not_on_the_http_thread)
{
	/* One HTTP thread and one argon2id at a time: a route that hashed on the HTTP
	 * thread would hold every other request behind it. */
	static const char *const env[] = { "RSSP_HTTP_THREADS=1", "RSSP_ARGON2_CONCURRENCY=1",
	    "RSSP_LOGIN_RATE=1000000", "RSSP_LOGIN_BURST=1000000", NULL };
	struct gwt_opts o = { .env = env };
	struct gwt *outer = g;
	char hash[crypto_pwhash_STRBYTES], cmd[2048], *email, *id, *tok, *emails[6], *ctok;
	pid_t slow, conf[6];
	struct gwt_resp *r;
	int i;

	g = gwt_start(&o);
	tok = signer_new(&email, &id);
	/* its stored hash is very expensive to verify (argon2id t=60, 19 MiB) */
	ck_assert_int_ge(sodium_init(), 0);
	ck_assert_int_eq(crypto_pwhash_str_alg(hash, "slow passphrase", 15, 60, 19456 * 1024,
	    crypto_pwhash_ALG_ARGON2ID13), 0);
	free(gwt_sql(g, "UPDATE accounts SET passphrase_hash = $1 WHERE id = $2::uuid "
	    "RETURNING id", hash, id, NULL));
	for (i = 0; i < 6; i++) {
		emails[i] = email_new("longpool");
		free(register_user(gwt_admin_token(g), emails[i], NULL));
	}
	snprintf(cmd, sizeof(cmd), "curl -s -o /dev/null -w '%%{http_code}' %s/rssp/users/changePassphrase "
	    "-H 'Authorization: Bearer %s' -H 'Content-Type: application/json' "
	    "-d '{\"oldPassphrase\":\"slow passphrase\",\"newPassphrase\":\"a new passphrase\"}' "
	    "| grep -q 204", gwt_url(g), tok);
	slow = spawn_sh(cmd);
	usleep(100 * 1000);
	/* six confirmations queue for the one argon2id slot behind the slow verify */
	for (i = 0; i < 6; i++) {
		ctok = gwt_outbox_secret(g, emails[i], "confirmation");
		ck_assert_ptr_nonnull(ctok);
		snprintf(cmd, sizeof(cmd), "curl -s -o /dev/null -w '%%{http_code}' %s/rssp/users/confirm "
		    "-H 'Content-Type: application/json' "
		    "-d '{\"token\":\"%s\",\"passphrase\":\"confirmed passphrase\"}' | grep -q 200",
		    gwt_url(g), ctok);
		conf[i] = spawn_sh(cmd);
		free(ctok);
	}
	/* the one HTTP thread keeps answering authenticated requests meanwhile */
	for (i = 0; i < 5; i++) {
		r = post_status(gwt_admin_token(g), "userID", id);
		gwt_expect(r, 200, NULL);
		gwt_resp_free(r);
	}
	ck_assert_msg(waitpid(slow, NULL, WNOHANG) == 0,
	    "the slow changePassphrase ended before the other requests");
	ck_assert_msg(exited_ok(slow), "the slow changePassphrase failed");
	for (i = 0; i < 6; i++) {
		ck_assert_msg(exited_ok(conf[i]), "confirmation %d failed", i);
		free(gwt_login(g, emails[i], "confirmed passphrase", NULL));
		free(emails[i]);
	}
	free(gwt_login(g, email, "a new passphrase", NULL));
	gwt_stop(g);
	g = outer;
	free(tok);
	free(id);
	free(email);
}
END_TEST

/* Two changes of one passphrase at once, each with the right old passphrase and a
 * different new one: the hash is computed without a row lock, and the write applies only
 * if the stored hash is still the one verified, so exactly one wins; the other gets 409
 * and changes nothing (the winner's passphrase logs in, the loser's does not). */
START_TEST(test_two_concurrent_passphrase_changes_cannot_both_win)
{
	char hash[crypto_pwhash_STRBYTES], cmd[2048], out[2][128], code[2][8], *email, *id, *tok;
	static const char *const news[2] = { "first new passphrase", "second new passphrase" };
	pid_t pid[2];
	int i, n204 = 0, n409 = 0, winner = -1;

	tok = signer_new(&email, &id);
	/* an expensive stored hash, so that both requests read it before either writes */
	ck_assert_int_ge(sodium_init(), 0);
	ck_assert_int_eq(crypto_pwhash_str_alg(hash, "race passphrase", 15, 12, 19456 * 1024,
	    crypto_pwhash_ALG_ARGON2ID13), 0);
	free(gwt_sql(g, "UPDATE accounts SET passphrase_hash = $1 WHERE id = $2::uuid "
	    "RETURNING id", hash, id, NULL));
	for (i = 0; i < 2; i++) {
		snprintf(out[i], sizeof(out[i]), "/tmp/rssp-race-%d-%d", (int)getpid(), i);
		snprintf(cmd, sizeof(cmd), "curl -s -o /dev/null -w '%%{http_code}' "
		    "%s/rssp/users/changePassphrase -H 'Authorization: Bearer %s' "
		    "-H 'Content-Type: application/json' "
		    "-d '{\"oldPassphrase\":\"race passphrase\",\"newPassphrase\":\"%s\"}' > %s",
		    gwt_url(g), tok, news[i], out[i]);
		pid[i] = spawn_sh(cmd);
	}
	for (i = 0; i < 2; i++) {
		FILE *f;
		ck_assert_msg(exited_ok(pid[i]), "curl %d failed", i);
		ck_assert_ptr_nonnull(f = fopen(out[i], "r"));
		ck_assert_ptr_nonnull(fgets(code[i], sizeof(code[i]), f));
		fclose(f);
		unlink(out[i]);
		if (strcmp(code[i], "204") == 0) {
			n204++;
			winner = i;
		} else if (strcmp(code[i], "409") == 0) {
			n409++;
		}
	}
	ck_assert_msg(n204 == 1 && n409 == 1, "expected one 204 and one 409, got %s and %s",
	    code[0], code[1]);
	free(gwt_login(g, email, news[winner], NULL));
	json_t *b = json_pack("{s:s, s:s, s:s}", "grant_type", "password", "username", email,
	    "password", news[1 - winner]);
	struct gwt_resp *r = gwt_post_json(g, "/rssp/auth/login", NULL, b);
	gwt_expect(r, 401, "incorrect_credentials");
	gwt_resp_free(r);
	json_decref(b);
	free(tok);
	free(id);
	free(email);
}
END_TEST

/* Wrong old passphrases sent at once: no row lock serialises them any more, so each
 * evaluation takes a place first (as a login does): at most the threshold (5) are
 * evaluated, the others get 423, and then the right one gets 423 too. */
START_TEST(test_concurrent_wrong_old_passphrases_are_bounded_by_the_lockout)
{
	char cmd[2048], out[10][128], code[10][8], *email, *id, *tok;
	pid_t pid[10];
	int i, n401 = 0, n423 = 0;

	tok = signer_new(&email, &id);
	for (i = 0; i < 10; i++) {
		snprintf(out[i], sizeof(out[i]), "/tmp/rssp-wrong-%d-%d", (int)getpid(), i);
		snprintf(cmd, sizeof(cmd), "curl -s -o /dev/null -w '%%{http_code}' "
		    "%s/rssp/users/changePassphrase -H 'Authorization: Bearer %s' "
		    "-H 'Content-Type: application/json' "
		    "-d '{\"oldPassphrase\":\"guess %d guess\",\"newPassphrase\":\"staple battery horse\"}' > %s",
		    gwt_url(g), tok, i, out[i]);
		pid[i] = spawn_sh(cmd);
	}
	for (i = 0; i < 10; i++) {
		FILE *f;
		ck_assert_msg(exited_ok(pid[i]), "curl %d failed", i);
		ck_assert_ptr_nonnull(f = fopen(out[i], "r"));
		ck_assert_ptr_nonnull(fgets(code[i], sizeof(code[i]), f));
		fclose(f);
		unlink(out[i]);
		n401 += strcmp(code[i], "401") == 0;
		n423 += strcmp(code[i], "423") == 0;
	}
	ck_assert_msg(n401 <= 5 && n401 + n423 == 10, "%d evaluated (401), %d locked (423)", n401, n423);
	gwt_post_expect(g, "/rssp/users/changePassphrase", tok,
	    "{\"oldPassphrase\": \"correct horse battery\", \"newPassphrase\": \"staple battery horse\"}",
	    423, "account_locked", NULL);
	free(tok);
	free(id);
	free(email);
}
END_TEST

static Suite *
accounts_suite(void)
{
	Suite *s = suite_create("gateway_accounts");
	TCase *tc = tcase_create("accounts");

	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_register_creates_a_pending_user_and_queues_a_confirmation_email);
	tcase_add_test(tc, test_register_refuses_missing_mistyped_and_malformed_fields_naming_them);
	tcase_add_test(tc, test_register_refuses_a_duplicate_email_and_leaves_no_outbox_row);
	tcase_add_test(tc, test_register_is_refused_to_signers);
	tcase_add_test(tc, test_confirm_activates_the_account_and_the_token_works_once);
	tcase_add_test(tc, test_confirm_refuses_unknown_and_expired_tokens);
	tcase_add_test(tc, test_confirm_refuses_a_passphrase_too_short_or_too_long);
	tcase_add_test(tc, test_change_passphrase_revokes_the_other_tokens_and_keeps_this_one);
	tcase_add_test(tc, test_change_passphrase_refuses_a_wrong_old_passphrase_and_bad_fields);
	tcase_add_test(tc, test_change_passphrase_failures_count_towards_the_lockout);
	tcase_add_test(tc, test_change_passphrase_after_the_lock_has_expired);
	tcase_add_test(tc, test_two_concurrent_passphrase_changes_cannot_both_win);
	tcase_add_test(tc, test_concurrent_wrong_old_passphrases_are_bounded_by_the_lockout);
	tcase_add_test(tc, test_status_follows_the_tenant_rules);
	tcase_add_test(tc, test_status_reports_the_sic_status_and_the_credential_count);
	tcase_add_test(tc, test_register_company_user_creates_the_company_and_keeps_company_admins_in_it);
	tcase_add_test(tc, test_signers_and_rps_cannot_call_admin_routes);
	tcase_add_test(tc, test_disable_stops_the_tokens_and_logins_and_enable_restores_them);
	tcase_add_test(tc, test_unlock_lets_a_locked_out_user_log_in_again);
	tcase_add_test(tc, test_a_disabled_pending_account_cannot_confirm_and_enable_returns_it_to_pending);
	tcase_add_test(tc, test_register_ignores_unknown_fields_and_no_field_sets_the_role_or_status);
	tcase_add_test(tc, test_admin_creates_and_rotates_rp_client_keys);
	tcase_add_test(tc, test_admin_users_list_pages_through_every_account_once);
	tcase_add_test(tc, test_outbox_list_filters_by_recipient_and_kind_newest_first);
	tcase_add_test(tc, test_sql_metacharacters_are_stored_and_returned_verbatim);
	suite_add_tcase(s, tc);
	/* its own gateway (one HTTP thread) */
	tc = tcase_create("long_pool");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_passphrase_routes_hash_on_the_long_pool_not_on_the_http_thread);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(accounts_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
