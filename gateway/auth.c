/* auth.c - auth/login (Basic, password grant, refresh grant, HTTP Digest), auth/revoke,
 * the bearer middleware with its token cache, lockout and login rate limits. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#include <microhttpd.h>
#include <openssl/crypto.h>
#include <sodium.h>

#include "accounts.h"
#include "auth.h"
#include "db.h"
#include "gw.h"
#include "gw_internal.h"
#include "loadcap.h"
#include "login_name.h"
#include "metrics.h"
#include "ratelimit.h"
#include "rssp_log.h"
#include "secrets.h"

#define MAX_LOGIN_LEN GW_LOGIN_MAX
#define MAX_PASS_LEN 1024

static double
mono_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* ---- token cache ----------------------------------------------------------------------
 * Verified access tokens, by SHA-256, for RSSP_TOKEN_CACHE_TTL seconds: the fast path of
 * every authenticated request. Revocation on this replica removes entries at once;
 * other replicas see it when their entry ages out. Direct-mapped: a collision evicts. */

#define CACHE_SLOTS 4096

struct cache_entry {
	uint8_t hash[32];
	int used;
	double cached_at;          /* monotonic */
	long long expires_at;      /* the token's own expiry, epoch seconds */
	struct gw_principal p;
};

static struct cache_entry *cache;
static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned cache_ttl;

static unsigned
slot_of(const uint8_t hash[32])
{
	return ((unsigned)hash[0] | (unsigned)hash[1] << 8 | (unsigned)hash[2] << 16) % CACHE_SLOTS;
}

static int
cache_get(const uint8_t hash[32], struct gw_principal *p)
{
	struct cache_entry *e;
	int hit = 0;

	if (cache == NULL || cache_ttl == 0)
		return 0;
	pthread_mutex_lock(&cache_mu);
	e = &cache[slot_of(hash)];
	if (e->used && CRYPTO_memcmp(e->hash, hash, 32) == 0) {
		if (mono_now() - e->cached_at < (double)cache_ttl && gw_now() < e->expires_at) {
			*p = e->p;
			hit = 1;
		} else {
			e->used = 0;
		}
	}
	pthread_mutex_unlock(&cache_mu);
	return hit;
}

static void
cache_put(const uint8_t hash[32], const struct gw_principal *p, long long expires_at)
{
	struct cache_entry *e;

	if (cache == NULL || cache_ttl == 0)
		return;
	pthread_mutex_lock(&cache_mu);
	e = &cache[slot_of(hash)];
	memcpy(e->hash, hash, 32);
	e->p = *p;
	e->expires_at = expires_at;
	e->cached_at = mono_now();
	e->used = 1;
	pthread_mutex_unlock(&cache_mu);
}

static void
cache_forget_hash(const uint8_t hash[32])
{
	struct cache_entry *e;

	if (cache == NULL)
		return;
	pthread_mutex_lock(&cache_mu);
	e = &cache[slot_of(hash)];
	if (e->used && CRYPTO_memcmp(e->hash, hash, 32) == 0)
		e->used = 0;
	pthread_mutex_unlock(&cache_mu);
}

/* Drops every entry whose account (field 0) or family (field 1) is id. */
static void
cache_forget_where(int family, const char *id)
{
	unsigned i;

	if (cache == NULL)
		return;
	pthread_mutex_lock(&cache_mu);
	for (i = 0; i < CACHE_SLOTS; i++)
		if (cache[i].used && strcmp(family ? cache[i].p.token_family : cache[i].p.account_id, id) == 0)
			cache[i].used = 0;
	pthread_mutex_unlock(&cache_mu);
}

void
gw_token_cache_forget_account(const char *account_id)
{
	cache_forget_where(0, account_id);
}

/* The one place that revokes tokens in the database. */
int
gw_tokens_revoke(PGconn *db, enum gw_token_scope scope, const char *id,
    const char *except_family)
{
	int r;

	switch (scope) {
	case GW_TOKENS_ACCOUNT:
		gw_token_cache_forget_account(id);
		r = gw_db_query(db, NULL, "UPDATE tokens SET revoked_at = now() "
		    "WHERE account_id = $1 AND revoked_at IS NULL", 1, id);
		gw_token_cache_forget_account(id); /* a request may have cached one meanwhile */
		return r;
	case GW_TOKENS_ACCOUNT_BUT_FAMILY:
		r = gw_db_query(db, NULL, "UPDATE tokens SET revoked_at = now() "
		    "WHERE account_id = $1::uuid AND revoked_at IS NULL AND family_id <> $2::uuid",
		    2, id, except_family);
		gw_token_cache_forget_account(id);
		return r;
	case GW_TOKENS_FAMILY:
		r = gw_db_query(db, NULL, "UPDATE tokens SET revoked_at = now()"
		    " WHERE family_id = $1 AND revoked_at IS NULL", 1, id);
		cache_forget_where(1, id);
		return r;
	case GW_TOKENS_ONE:
		return gw_db_query(db, NULL, "UPDATE tokens SET revoked_at = now()"
		    " WHERE token_hash = decode($1, 'hex') AND revoked_at IS NULL", 1, id);
	}
	return RSSP_E_INVAL;
}

/* ---- login rate limit: exact token buckets per client address and per login ----------
 * (ratelimit.h), keyed on the normal form of the login (login_name.h). */

static struct gw_ratelimit *limiter;

static int
rate_limited(struct gw_request *req, struct gw_reply *rep, const char *norm_login)
{
	char key[GW_RATELIMIT_KEY_MAX], ak[80];
	unsigned w1 = 0, w2 = 0;
	int r1, r2 = 0;
	char ra[16];
	double now = mono_now();

	gw_login_addr_key(req->client_addr, ak, sizeof(ak));
	snprintf(key, sizeof(key), "addr\n%s", ak);
	r1 = gw_ratelimit_take(limiter, key, now, &w1);
	if (norm_login != NULL) {
		snprintf(key, sizeof(key), "login\n%s", norm_login);
		r2 = gw_ratelimit_take(limiter, key, now, &w2);
	}
	if (r1 == 0 && r2 == 0)
		return 0;
	snprintf(ra, sizeof(ra), "%u", w1 > w2 ? w1 : w2);
	if (gw_reply_header(rep, "Retry-After", ra) < 0)
		return RSSP_E_NOMEM;
	if (r1 == RSSP_E_TOOBIG || r2 == RSSP_E_TOOBIG)
		log_warn("login rate-limit table full (RSSP_LOGIN_KEYS): new keys refused");
	else
		log_info("login rate limit reached for %.100s", r1 ? req->client_addr : "an account");
	return gw_error(rep, 429, "too_many_requests", "too many login attempts, retry later");
}

int
gw_auth_init(const struct gw_config *cfg)
{
	int r;

	cache_ttl = cfg->token_cache_ttl;
	if ((cache = calloc(CACHE_SLOTS, sizeof(*cache))) == NULL)
		return RSSP_E_NOMEM;
	if ((r = gw_ratelimit_new((double)cfg->login_rate / 60.0, (double)cfg->login_burst,
	    cfg->login_keys, &limiter)) < 0)
		return r;
	gw_loadcap_init(cfg);
	return 0;
}

void
gw_auth_shutdown(void)
{
	free(cache);
	cache = NULL;
	gw_ratelimit_free(limiter);
	limiter = NULL;
}

/* ---- tokens ----------------------------------------------------------------------- */

static int
token_shape_ok(const char *t)
{
	size_t i;

	for (i = 0; t[i]; i++) {
		char c = t[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_'))
			return 0;
	}
	return i == GW_TOKEN_LEN;
}

static void
token_hash(const char *tok, uint8_t out[32], char hex[65])
{
	crypto_hash_sha256(out, (const unsigned char *)tok, strlen(tok));
	sodium_bin2hex(hex, 65, out, 32);
}

int
gw_auth_bearer(struct gw_request *req, struct gw_reply *rep)
{
	const char *h = gw_header(req, MHD_HTTP_HEADER_AUTHORIZATION);
	const char *tok;
	uint8_t hash[32];
	char hex[65];
	struct gw_principal p;
	PGresult *res = NULL;
	int r;

	if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0) {
		gw_error(rep, 401, "invalid_token", "a bearer token is required");
		return RSSP_E_DENIED;
	}
	tok = h + 7;
	while (*tok == ' ')
		tok++;
	if (!token_shape_ok(tok)) {
		gw_error(rep, 401, "invalid_token", "the bearer token is invalid, expired or revoked");
		return RSSP_E_DENIED;
	}
	token_hash(tok, hash, hex);
	if (cache_get(hash, &req->principal)) {
		req->authenticated = true;
		return 0;
	}
	if ((r = gw_db_reacquire(req)) < 0)
		return r;
	r = gw_db_query(req->db, &res,
	    "SELECT a.id, a.role, coalesce(a.company_id::text, '') AS company_id,"
	    " coalesce(a.registered_by::text, '') AS registered_by,"
	    " t.family_id, extract(epoch FROM t.expires_at)::bigint AS expires_epoch"
	    " FROM tokens t JOIN accounts a ON a.id = t.account_id"
	    " WHERE t.token_hash = decode($1, 'hex') AND t.kind = 'access' AND t.revoked_at IS NULL"
	    " AND t.expires_at > now() AND a.status IN ('ACTIVE', 'LOCKED')", 1, hex);
	if (r < 0)
		return r;
	if (PQntuples(res) != 1) {
		PQclear(res);
		gw_error(rep, 401, "invalid_token", "the bearer token is invalid, expired or revoked");
		return RSSP_E_DENIED;
	}
	memset(&p, 0, sizeof(p));
	snprintf(p.account_id, sizeof(p.account_id), "%s", gw_val(res, 0, "id"));
	p.role = gw_role_parse(gw_val(res, 0, "role"));
	snprintf(p.company_id, sizeof(p.company_id), "%s", gw_val(res, 0, "company_id"));
	snprintf(p.registered_by, sizeof(p.registered_by), "%s", gw_val(res, 0, "registered_by"));
	snprintf(p.token_family, sizeof(p.token_family), "%s", gw_val(res, 0, "family_id"));
	cache_put(hash, &p, strtoll(gw_val(res, 0, "expires_epoch"), NULL, 10));
	PQclear(res);
	req->principal = p;
	req->authenticated = true;
	return 0;
}

static unsigned long issued;

/* Issues an access + refresh pair in family (a new one when NULL) and sets the reply. */
static int
issue_tokens(struct gw_request *req, struct gw_reply *rep, const char *account_id, const char *family)
{
	char access[GW_TOKEN_LEN + 1], refresh[GW_TOKEN_LEN + 1], fam[GW_UUID_LEN + 1];
	char ah[65], rh[65], attl[16], rttl[16];
	uint8_t bin[32];
	json_t *o;
	int r;

	gw_random_token(access);
	gw_random_token(refresh);
	if (family == NULL) {
		gw_random_uuid(fam);
		family = fam;
	}
	token_hash(access, bin, ah);
	token_hash(refresh, bin, rh);
	snprintf(attl, sizeof(attl), "%u", req->cfg->token_ttl);
	snprintf(rttl, sizeof(rttl), "%u", req->cfg->refresh_ttl);
	r = gw_db_query(req->db, NULL,
	    "INSERT INTO tokens (token_hash, kind, family_id, account_id, expires_at) VALUES"
	    " (decode($1, 'hex'), 'access', $3, $4, now() + make_interval(secs => $5::int)),"
	    " (decode($2, 'hex'), 'refresh', $3, $4, now() + make_interval(secs => $6::int))",
	    6, ah, rh, family, account_id, attl, rttl);
	if (r < 0)
		goto out;
	/* housekeeping: now and then, drop tokens that ended more than a day ago */
	if (__atomic_add_fetch(&issued, 1, __ATOMIC_RELAXED) % 512 == 0 &&
	    PQtransactionStatus(req->db) == PQTRANS_IDLE &&
	    gw_db_exec(req->db, NULL, "DELETE FROM tokens WHERE ctid = ANY (ARRAY(SELECT ctid FROM tokens"
	    " WHERE expires_at < now() - interval '1 day' LIMIT 5000))", 0, NULL) < 0)
		log_warn("cannot delete old tokens");
	o = json_pack("{s:s, s:s, s:I, s:s, s:I}", "access_token", access, "token_type", "bearer",
	    "expires_in", (json_int_t)req->cfg->token_ttl, "refresh_token", refresh,
	    "refresh_expires_in", (json_int_t)req->cfg->refresh_ttl);
	r = gw_reply_json(rep, 200, o);
out:
	sodium_memzero(access, sizeof(access));
	sodium_memzero(refresh, sizeof(refresh));
	return r;
}

/* ---- login ----------------------------------------------------------------------------
 * Lockout holds however many attempts run at once: before a passphrase (or a Digest
 * response) is evaluated, the attempt takes one of the account's RSSP_LOCKOUT_THRESHOLD
 * places with one atomic UPDATE (failed_logins + 1, only while below the threshold), so
 * at most `threshold` evaluations can fail before the account locks; an attempt that
 * finds no place left gets 423 without any evaluation, the right passphrase too. The
 * attempt that takes the last place also sets locked_until, so a gateway that dies in
 * the middle leaves a lock that ends by itself. A success gives its place back (and
 * those of the failures before it: the count is of consecutive failures). A DISABLED
 * account is answered exactly as a wrong passphrase (401) and counts the same way. No
 * database connection is held while argon2id waits or runs. */

/* An attempt that finds every place held by evaluations in progress waits for one:
 * up to LOGIN_PLACE_TRIES times LOGIN_PLACE_WAIT_US (2 s in all). */
#define LOGIN_PLACE_TRIES 40
#define LOGIN_PLACE_WAIT_US 50000

struct acct {
	char id[GW_UUID_LEN + 1];
	char status[32];
	char *hash;            /* argon2id or NULL */
	int locked;            /* LOCKED and still within locked_until (or with no end) */
	long long lock_left;   /* seconds */
	int found;
	int place;             /* failed_logins after this attempt took its place; 0 = none */
};

static void
acct_release(struct acct *a)
{
	if (a->hash != NULL) {
		sodium_memzero(a->hash, strlen(a->hash));
		free(a->hash);
	}
	memset(a, 0, sizeof(*a));
}

static int
acct_load(struct gw_request *req, const char *login, struct acct *a)
{
	PGresult *res = NULL;
	int r;

	memset(a, 0, sizeof(*a));
	/* read again, at most once, after a lock whose time is up has ended */
	for (int tries = 0;; tries++) {
		r = gw_db_query(req->db, &res,
		    "SELECT id, status, passphrase_hash,"
		    " coalesce(ceil(extract(epoch FROM locked_until - now()))::bigint, 0) AS lock_left, "
		    ACCT_LOCK_OVER_SQL " AS lock_over FROM account_by_login($1)", 1, login);
		if (r < 0)
			return r;
		if (tries > 0 || PQntuples(res) != 1 || strcmp(gw_val(res, 0, "lock_over"), "t") != 0)
			break;
		r = acct_status_change(req->db, req->cfg, ACCT_LOCK_EXPIRED, gw_val(res, 0, "id"), NULL);
		PQclear(res);
		res = NULL;
		if (r < 0)
			return r;
	}
	if (PQntuples(res) == 1) {
		a->found = 1;
		snprintf(a->id, sizeof(a->id), "%s", gw_val(res, 0, "id"));
		snprintf(a->status, sizeof(a->status), "%s", gw_val(res, 0, "status"));
		if (!gw_isnull(res, 0, "passphrase_hash") &&
		    (a->hash = strdup(gw_val(res, 0, "passphrase_hash"))) == NULL) {
			PQclear(res);
			return RSSP_E_NOMEM;
		}
		a->locked = strcmp(a->status, "LOCKED") == 0;
		a->lock_left = strtoll(gw_val(res, 0, "lock_left"), NULL, 10);
	}
	PQclear(res);
	return 0;
}

/* Takes a place for one evaluation (see above). Returns 0 with a->place set, or
 * RSSP_E_DENIED when none is left (a->lock_left updated). Accounts that cannot log in
 * at all (PENDING_CONFIRMATION) take no place. */
static int
take_place(struct gw_request *req, struct acct *a)
{
	char place[32];
	PGresult *res = NULL;
	int r, tries, busy;

	for (tries = 0;; tries++) {
		if ((r = acct_status_change(req->db, req->cfg, ACCT_LOGIN_ATTEMPT, a->id, place)) < 0)
			return r;
		if (place[0] != '\0') {
			a->place = atoi(place);
			return 0;
		}
		r = gw_db_query(req->db, &res, "SELECT coalesce(ceil(extract(epoch FROM locked_until - now()))::bigint, 0)"
		    " AS lock_left, status = 'ACTIVE' AS busy FROM accounts WHERE id = $1", 1, a->id);
		if (r < 0)
			return r;
		busy = 0;
		if (PQntuples(res) == 1) {
			a->lock_left = strtoll(gw_val(res, 0, "lock_left"), NULL, 10);
			busy = strcmp(gw_val(res, 0, "busy"), "t") == 0;
		}
		PQclear(res);
		/* Still ACTIVE with every place taken: the places are held by evaluations in
		 * progress, not by failures (failures at the threshold lock the account). Those
		 * end within one argon2id; wait for a place (bounded, without a database
		 * connection) instead of refusing a right passphrase that merely arrived at the
		 * same moment as others. */
		if (!busy || tries >= LOGIN_PLACE_TRIES)
			return RSSP_E_DENIED;
		gw_db_release(req);
		usleep(LOGIN_PLACE_WAIT_US);
		if ((r = gw_db_reacquire(req)) != 0)
			return r;
	}
}

/* The evaluation failed: its place stays counted; at the threshold the account locks. */
static int
record_failure(struct gw_request *req, const struct acct *a)
{
	if (!a->found || a->place == 0)
		return 0;
	return acct_status_change(req->db, req->cfg, ACCT_LOGIN_FAILED, a->id, NULL);
}

static int
locked_reply(struct gw_reply *rep, const struct acct *a)
{
	char ra[24];

	if (a->lock_left > 0) {
		snprintf(ra, sizeof(ra), "%lld", a->lock_left);
		if (gw_reply_header(rep, "Retry-After", ra) < 0)
			return RSSP_E_NOMEM;
	}
	return gw_error(rep, 423, "account_locked", "the account is locked after repeated failed logins");
}

static int
incorrect(struct gw_reply *rep)
{
	return gw_error(rep, 401, "incorrect_credentials", "incorrect username or passphrase");
}

/* After the credentials were checked: account state decides. */
static int
login_success(struct gw_request *req, struct gw_reply *rep, struct acct *a)
{
	char place[16];
	PGresult *res = NULL;
	int r, n;

	if (strcmp(a->status, "ACTIVE") != 0) {
		/* DISABLED (or anything but ACTIVE): the same answer as a wrong passphrase */
		if ((r = record_failure(req, a)) < 0)
			return r;
		return incorrect(rep);
	}
	/* give the places back, unless a failure running at the same time locked it */
	snprintf(place, sizeof(place), "%d", a->place);
	r = gw_db_query(req->db, &res, "UPDATE accounts SET failed_logins = greatest(failed_logins - $2::int, 0),"
	    " locked_until = NULL, updated_at = now()"
	    " WHERE id = $1 AND status = 'ACTIVE' RETURNING id", 2, a->id, place);
	if (r < 0)
		return r;
	n = PQntuples(res);
	PQclear(res);
	if (n != 1)
		return gw_error(rep, 423, "account_locked", "the account is locked after repeated failed logins");
	log_info("login of account %s", a->id);
	return issue_tokens(req, rep, a->id, NULL);
}

/* The name check and the limits every login passes before its account is looked up:
 * the normal form (login_name.h), the rate limits, and a place among the logins in
 * progress (RSSP_LOGIN_QUEUE; *admittedp = 1, give it back with gw_login_leave()). Then
 * a database connection. Returns 0, or the value of the reply set. */
static int
login_gate(struct gw_request *req, struct gw_reply *rep, const char *user, const char *field,
    int *admittedp)
{
	char norm[GW_LOGIN_MAX + 1];
	int r;

	*admittedp = 0;
	if (gw_login_normalise(user, norm) < 0) {
		if ((r = rate_limited(req, rep, NULL)) < 0)
			return r;
		return gw_error(rep, 400, "invalid_request", "field '%s' must be an email address or a client id:"
		    " 1 to %d printable ASCII characters", field, GW_LOGIN_MAX);
	}
	if ((r = rate_limited(req, rep, norm)) < 0)
		return r;
	if (gw_login_admit() < 0) {
		log_warn("too many logins in progress (RSSP_LOGIN_QUEUE)");
		return gw_error(rep, 503, "temporarily_unavailable", "too many logins in progress, retry later");
	}
	*admittedp = 1;
	return gw_db_reacquire(req);
}

/* The start both login kinds share: the admission gate (*admittedp set when admitted),
 * the account into *a, 423 for a locked one, then a place (take_place) when the account
 * exists (and, with need_hash, has a passphrase hash). Returns 0 to go on, or < 0 with
 * the reply set. */
static int
login_begin(struct gw_request *req, struct gw_reply *rep, const char *user, int need_hash,
    struct acct *a, int *admittedp)
{
	int r;

	if ((r = login_gate(req, rep, user, "username", admittedp)) < 0 ||
	    (r = acct_load(req, user, a)) < 0)
		return r;
	if (a->found && a->locked)
		return locked_reply(rep, a);
	if (a->found && (!need_hash || a->hash != NULL) && (r = take_place(req, a)) < 0)
		return r == RSSP_E_DENIED ? locked_reply(rep, a) : r;
	return 0;
}

/* The end both login kinds share, on every exit after login_begin: gives the place
 * among the logins in progress back (when admitted) and wipes the account. */
static void
login_end(struct acct *a, int admitted)
{
	if (admitted)
		gw_login_leave();
	acct_release(a);
}

static int
login_password(struct gw_request *req, struct gw_reply *rep, const char *user, const char *pass)
{
	struct acct a;
	int r, admitted = 0, ok;

	memset(&a, 0, sizeof(a));
	if (strlen(pass) > MAX_PASS_LEN)
		return gw_error(rep, 400, "invalid_request", "field 'password' must be at most %d characters", MAX_PASS_LEN);
	if ((r = login_begin(req, rep, user, 1, &a, &admitted)) < 0)
		goto out;
	gw_db_release(req); /* argon2id may wait: hold no connection meanwhile */
	if (!a.found || a.hash == NULL || a.place == 0) {
		gw_password_dummy_verify(pass); /* the same cost as a wrong passphrase */
		r = incorrect(rep);
		goto out;
	}
	ok = gw_password_verify(a.hash, pass) == 0;
	if ((r = gw_db_reacquire(req)) < 0)
		goto out; /* the place stays counted as a failure */
	if (!ok) {
		if ((r = record_failure(req, &a)) < 0)
			goto out;
		log_info("failed login for account %s", a.id);
		r = incorrect(rep);
		goto out;
	}
	r = login_success(req, rep, &a);
out:
	login_end(&a, admitted);
	return r;
}

static int
digest_challenge(struct gw_reply *rep, int stale, const char *desc)
{
	int r = gw_error(rep, 401, "incorrect_credentials", "%s", desc);

	rep->flags_ |= stale ? GW_REPLY_DIGEST_STALE : GW_REPLY_DIGEST_CHALLENGE;
	return r;
}

static int
login_digest(struct gw_request *req, struct gw_reply *rep)
{
	struct MHD_Connection *conn = gw_request_connection(req);
	char *user;
	uint8_t ha1[32];
	struct acct a;
	PGresult *res = NULL;
	int r, ok, admitted = 0;

	memset(&a, 0, sizeof(a));
	user = MHD_digest_auth_get_username(conn);
	if (user == NULL)
		return digest_challenge(rep, 0, "malformed Digest credentials");
	if ((r = login_begin(req, rep, user, 0, &a, &admitted)) < 0)
		goto out;
	/* an unknown client gets a random HA1: the check fails the same way */
	randombytes_buf(ha1, sizeof(ha1));
	if (a.found && a.place != 0) {
		r = gw_db_query(req->db, &res, "SELECT encode(digest_ha1, 'hex') AS ha1 FROM rp_clients"
		    " WHERE account_id = $1", 1, a.id);
		if (r < 0)
			goto out;
		if (PQntuples(res) == 1)
			sodium_hex2bin(ha1, sizeof(ha1), gw_val(res, 0, "ha1"), 64, NULL, NULL, NULL);
		PQclear(res);
	}
	ok = MHD_digest_auth_check_digest2(conn, req->cfg->service_name, user, ha1, sizeof(ha1),
	    req->cfg->digest_nonce_ttl, MHD_DIGEST_ALG_SHA256);
	sodium_memzero(ha1, sizeof(ha1));
	if (ok == MHD_INVALID_NONCE) {
		/* no evaluation happened: give the place back */
		if (a.place != 0 && (r = gw_db_query(req->db, NULL, "UPDATE accounts SET"
		    " failed_logins = greatest(failed_logins - 1, 0) WHERE id = $1", 1, a.id)) < 0)
			goto out;
		r = digest_challenge(rep, 1, "stale or invalid nonce");
		goto out;
	}
	/* a wrong secret and an account that may not log in are answered alike */
	if (ok != MHD_YES || strcmp(a.status, "ACTIVE") != 0) {
		if ((r = record_failure(req, &a)) < 0)
			goto out;
		r = digest_challenge(rep, 0, "incorrect username or secret");
		goto out;
	}
	r = login_success(req, rep, &a);
out:
	login_end(&a, admitted);
	MHD_free(user);
	return r;
}

static int
login_refresh(struct gw_request *req, struct gw_reply *rep, const char *tok)
{
	uint8_t bin[32];
	char hex[65], account[GW_UUID_LEN + 1], family[GW_UUID_LEN + 1];
	PGresult *res = NULL;
	int r, spent, dead;

	if (!token_shape_ok(tok))
		return gw_error(rep, 400, "invalid_grant", "the refresh token is invalid, spent or revoked");
	token_hash(tok, bin, hex);
	if ((r = gw_db_reacquire(req)) < 0 || (r = gw_tx_begin(req)) < 0)
		return r;
	r = gw_db_query(req->db, &res,
	    "SELECT t.account_id, t.family_id, t.used_at IS NOT NULL AS spent,"
	    " (t.revoked_at IS NOT NULL OR t.expires_at <= now() OR a.status NOT IN ('ACTIVE', 'LOCKED'))"
	    "  AS dead"
	    " FROM tokens t JOIN accounts a ON a.id = t.account_id"
	    " WHERE t.token_hash = decode($1, 'hex') AND t.kind = 'refresh' FOR UPDATE OF t", 1, hex);
	if (r < 0)
		goto out;
	if (PQntuples(res) != 1) {
		r = gw_error(rep, 400, "invalid_grant", "the refresh token is invalid, spent or revoked");
		goto out;
	}
	snprintf(account, sizeof(account), "%s", gw_val(res, 0, "account_id"));
	snprintf(family, sizeof(family), "%s", gw_val(res, 0, "family_id"));
	spent = gw_val(res, 0, "spent")[0] == 't';
	dead = gw_val(res, 0, "dead")[0] == 't';
	PQclear(res);
	res = NULL;
	if (spent) {
		/* reuse of a spent refresh token: someone copied it; end the whole session */
		if ((r = gw_tokens_revoke(req->db, GW_TOKENS_FAMILY, family, NULL)) < 0)
			goto out;
		if ((r = gw_tx_commit(req)) < 0)
			goto out;
		cache_forget_where(1, family); /* a request may have cached one before the commit */
		log_warn("reuse of a spent refresh token: session of account %s revoked", account);
		r = gw_error(rep, 400, "invalid_grant", "the refresh token is invalid, spent or revoked");
		goto out;
	}
	if (dead) {
		r = gw_error(rep, 400, "invalid_grant", "the refresh token is invalid, spent or revoked");
		goto out;
	}
	if ((r = gw_db_query(req->db, NULL, "UPDATE tokens SET used_at = now() WHERE token_hash = decode($1, 'hex')",
	    1, hex)) < 0)
		goto out;
	if ((r = issue_tokens(req, rep, account, family)) < 0)
		goto out;
	if ((r = gw_tx_commit(req)) < 0) {
		gw_reply_release(rep);
		goto out;
	}
out:
	PQclear(res);
	gw_tx_rollback(req);
	return r;
}

static int
login_dispatch(struct gw_request *req, struct gw_reply *rep, const char **methodp)
{
	const char *auth = gw_header(req, MHD_HTTP_HEADER_AUTHORIZATION);
	struct MHD_Connection *conn = gw_request_connection(req);
	const char *grant, *user, *pass, *tok;
	int r;

	if (auth != NULL && strncasecmp(auth, "Basic ", 6) == 0) {
		char *pw = NULL, *u = MHD_basic_auth_get_username_password(conn, &pw);
		if (u == NULL || pw == NULL) {
			MHD_free(u);
			MHD_free(pw);
			return gw_error(rep, 400, "invalid_request", "malformed Basic credentials");
		}
		*methodp = "basic";
		r = login_password(req, rep, u, pw);
		sodium_memzero(pw, strlen(pw));
		MHD_free(u);
		MHD_free(pw);
		return r;
	}
	if (auth != NULL && strncasecmp(auth, "Digest ", 7) == 0) {
		*methodp = "digest";
		return login_digest(req, rep);
	}
	if ((r = gw_get_str(req, rep, "grant_type", 32, false, &grant)) < 0)
		return r;
	/* CSC auth/login refreshes with a bare refresh_token member (no grant_type) */
	if (grant == NULL && strncmp(req->path, "/csc/", 5) == 0 &&
	    json_object_get(req->body, "refresh_token") != NULL)
		grant = "refresh_token";
	if (grant == NULL) {
		/* no credentials at all: offer Digest (rp accounts) and Basic */
		char basic[200];

		snprintf(basic, sizeof(basic), "Basic realm=\"%.100s\", charset=\"UTF-8\"", req->cfg->service_name);
		if (gw_reply_header(rep, "WWW-Authenticate", basic) < 0)
			return RSSP_E_NOMEM;
		return digest_challenge(rep, 0, "credentials are required");
	}
	if (strcmp(grant, "password") == 0) {
		if ((r = gw_get_str(req, rep, "username", MAX_LOGIN_LEN, true, &user)) < 0 ||
		    (r = gw_get_str(req, rep, "password", MAX_PASS_LEN, true, &pass)) < 0)
			return r;
		*methodp = "password";
		return login_password(req, rep, user, pass);
	}
	if (strcmp(grant, "refresh_token") == 0) {
		if ((r = gw_get_str(req, rep, "refresh_token", 256, true, &tok)) < 0)
			return r;
		*methodp = "refresh";
		return login_refresh(req, rep, tok);
	}
	return gw_error(rep, 400, "invalid_request",
	    "field 'grant_type' must be \"password\" or \"refresh_token\"");
}

int
auth_login(struct gw_request *req, struct gw_reply *rep)
{
	const char *method = "none", *result;
	json_t *e;
	int r = login_dispatch(req, rep, &method);

	switch (rep->status) {
	case 200: result = "ok"; break;
	case 401: result = "incorrect"; break;
	case 403: result = "disabled"; break;
	case 423: result = "locked"; break;
	case 429: result = "rate_limited"; break;
	case 400:
		e = rep->body ? json_object_get(rep->body, "error") : NULL;
		result = json_is_string(e) && strcmp(json_string_value(e), "invalid_grant") == 0 ?
		    "invalid_grant" : "invalid_request";
		break;
	default: result = "error"; break;
	}
	gw_metrics_login(method, result);
	return r;
}

/* ---- revoke ------------------------------------------------------------------------- */

int
auth_revoke(struct gw_request *req, struct gw_reply *rep)
{
	const char *tok;
	uint8_t bin[32];
	char hex[65];
	PGresult *res = NULL;
	int r;

	if ((r = gw_get_str(req, rep, "token", 256, false, &tok)) < 0)
		return r;
	if (tok == NULL) {
		/* no token named: end the caller's own session */
		r = gw_tokens_revoke(req->db, GW_TOKENS_FAMILY, req->principal.token_family, NULL);
		if (r < 0)
			return r;
		return gw_reply_empty(rep, 204);
	}
	if (!token_shape_ok(tok)) /* RFC 7009: an unknown token is not an error */
		return gw_reply_empty(rep, 204);
	token_hash(tok, bin, hex);
	/* an access token ends alone; a refresh token ends its session. Only the owner or an
	 * admin may revoke; anyone else is answered the same but nothing happens. */
	r = gw_db_query(req->db, &res, "SELECT account_id, family_id, kind FROM tokens"
	    " WHERE token_hash = decode($1, 'hex')", 1, hex);
	if (r < 0)
		return r;
	if (PQntuples(res) == 1 && (strcmp(gw_val(res, 0, "account_id"), req->principal.account_id) == 0 ||
	    req->principal.role == GW_ROLE_ADMIN)) {
		char family[GW_UUID_LEN + 1];

		snprintf(family, sizeof(family), "%s", gw_val(res, 0, "family_id"));
		if (strcmp(gw_val(res, 0, "kind"), "refresh") == 0)
			r = gw_tokens_revoke(req->db, GW_TOKENS_FAMILY, family, NULL);
		else
			r = gw_tokens_revoke(req->db, GW_TOKENS_ONE, hex, NULL);
		cache_forget_hash(bin);
	}
	PQclear(res);
	if (r < 0)
		return r;
	return gw_reply_empty(rep, 204);
}
