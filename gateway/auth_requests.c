/* auth_requests.c - authorization requests (areq_*): credentials/authorize (+ authorizeCheck) for the
 * RP, requests/list, info, confirm and cancel for the signer's app, and the long-poll
 * that waits for a confirmation without holding a pooled database connection. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "db.h"
#include "engine_health.h"
#include "gw.h"
#include "metrics.h"
#include "rssp_log.h"
#include "secrets.h"
#include "sic.h"
#include "signing.h"
#include "tenant.h"

#define REQ_NONCE_LEN 32
#define NOTIFY_CHANNEL "rssp_requests"

/* ---- the long-poll ------------------------------------------------------------------
 * One dispatcher thread per process holds a dedicated connection that LISTENs on
 * rssp_requests; confirm and cancel NOTIFY in their transaction. Every notification
 * bumps a generation counter and wakes the waiters, which re-read their request with a
 * connection taken from the pool only for that read. While the dispatcher has no
 * connection, waiters re-read every second. The thread starts with the first long-poll
 * and areq_waiter_stop() (gw_runtime_shutdown) ends it. */

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned long long gen;
	int started, listening;
	char *db_url;
	pthread_t thread;
	int stop[2];       /* a byte on stop[1] ends the thread */
} waiter = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, NULL,
    (pthread_t)0, { -1, -1 } };

/* Waits up to ms for the stop pipe (or the connection's fd >= 0 to be readable).
 * Returns 1 when the thread must stop. */
static int
waiter_pause(int fd, int ms)
{
	struct pollfd pfd[2] = { { .fd = waiter.stop[0], .events = POLLIN },
	    { .fd = fd, .events = POLLIN } };

	if (poll(pfd, fd >= 0 ? 2 : 1, ms) < 0 && errno != EINTR)
		sleep(1);
	return (pfd[0].revents & POLLIN) != 0;
}

static void
waiter_set_listening(int on)
{
	pthread_mutex_lock(&waiter.mu);
	waiter.listening = on;
	waiter.gen++;
	pthread_cond_broadcast(&waiter.cv);
	pthread_mutex_unlock(&waiter.mu);
}

static void *
waiter_main(void *arg)
{
	PGconn *c = NULL;
	PGnotify *n;
	PGresult *res;

	for (;;) {
		if (c == NULL || PQstatus(c) != CONNECTION_OK) {
			if (c != NULL) {
				waiter_set_listening(0);
				PQfinish(c);
			}
			c = PQconnectdb(waiter.db_url);
			if (PQstatus(c) != CONNECTION_OK) {
				if (waiter_pause(-1, 1000))
					break;
				continue;
			}
			res = PQexec(c, "LISTEN " NOTIFY_CHANNEL);
			if (PQresultStatus(res) != PGRES_COMMAND_OK) {
				PQclear(res);
				PQfinish(c);
				c = NULL;
				if (waiter_pause(-1, 1000))
					break;
				continue;
			}
			PQclear(res);
			waiter_set_listening(1);
		}
		if (waiter_pause(PQsocket(c), 5000))
			break;
		if (PQconsumeInput(c) != 1) {
			PQfinish(c);
			c = NULL;
			waiter_set_listening(0);
			continue;
		}
		int any = 0;
		while ((n = PQnotifies(c)) != NULL) {
			any = 1;
			PQfreemem(n);
		}
		if (any) {
			pthread_mutex_lock(&waiter.mu);
			waiter.gen++;
			pthread_cond_broadcast(&waiter.cv);
			pthread_mutex_unlock(&waiter.mu);
		}
	}
	PQfinish(c);
	return NULL;
}

static void
waiter_start(const char *db_url)
{
	pthread_mutex_lock(&waiter.mu);
	if (!waiter.started && waiter.stop[0] < 0 && pipe(waiter.stop) != 0)
		waiter.stop[0] = waiter.stop[1] = -1;
	if (!waiter.started && waiter.stop[0] >= 0 && waiter.db_url == NULL)
		waiter.db_url = strdup(db_url);
	if (!waiter.started && waiter.stop[0] >= 0 && waiter.db_url != NULL) {
		if (pthread_create(&waiter.thread, NULL, waiter_main, NULL) == 0)
			waiter.started = 1;
		else
			log_error("cannot start the request notification thread");
	}
	pthread_mutex_unlock(&waiter.mu);
}

void
areq_waiter_stop(void)
{
	int started;

	pthread_mutex_lock(&waiter.mu);
	started = waiter.started;
	waiter.started = 0;
	pthread_mutex_unlock(&waiter.mu);
	if (started) {
		if (write(waiter.stop[1], "x", 1) != 1) {
			log_error("cannot stop the request notification thread");
			return; /* it still reads the pipe and the url */
		}
		pthread_join(waiter.thread, NULL);
	}
	if (waiter.stop[0] >= 0) {
		close(waiter.stop[0]);
		close(waiter.stop[1]);
		waiter.stop[0] = waiter.stop[1] = -1;
	}
	free(waiter.db_url);
	waiter.db_url = NULL;
}

static unsigned long long
waiter_gen(void)
{
	unsigned long long g;

	pthread_mutex_lock(&waiter.mu);
	g = waiter.gen;
	pthread_mutex_unlock(&waiter.mu);
	return g;
}

/* Waits until a notification arrives after generation seen, or until deadline (a
 * CLOCK_REALTIME time in seconds), or the gateway stops; at most one second while not
 * listening. It wakes at least once a second to notice gw_stopping(): SIGTERM sets a
 * flag and signals no condition variable, and a waiter must not keep the process up
 * for the rest of its wait. */
static void
waiter_wait(unsigned long long seen, long long deadline)
{
	struct timespec ts;

	pthread_mutex_lock(&waiter.mu);
	while (waiter.gen == seen && !gw_stopping()) {
		clock_gettime(CLOCK_REALTIME, &ts);
		if (ts.tv_sec >= deadline)
			break;
		ts.tv_sec += 1;
		if (ts.tv_sec > deadline)
			ts.tv_sec = deadline;
		if (pthread_cond_timedwait(&waiter.cv, &waiter.mu, &ts) == ETIMEDOUT &&
		    !waiter.listening)
			break;
	}
	pthread_mutex_unlock(&waiter.mu);
}

int
areq_notify(struct gw_request *req, const char *request_id)
{
	return gw_db_query(req->db, NULL, "SELECT pg_notify('" NOTIFY_CHANNEL "', $1)", 1, request_id);
}

/* ---- the check the RP polls ------------------------------------------------------- */

#define STATUS_SQL \
	"CASE WHEN r.status = 'PENDING' AND r.expires_at <= extract(epoch FROM now())::bigint" \
	" THEN 'EXPIRED' ELSE r.status END AS status"

/* Reads a request of the caller (requester) and sets the reply as authorizeCheck and a
 * waiting authorize answer. *finalp: 1 when the status will not change any more. */
static int
check_reply(struct gw_request *req, struct gw_reply *rep, const char *request_id,
    int created, int *finalp)
{
	PGresult *res = NULL;
	uint8_t *sad = NULL;
	size_t sadlen = 0;
	char *sad_b64 = NULL;
	const char *st;
	long long now = gw_now(), left;
	int r;

	if ((r = tenant_load(req, rep, TENANT_REQUESTER,
	    "SELECT " STATUS_SQL ", r.requester_id::text AS tenant_requester, r.expires_at, r.sad,"
	    " r.sad_expires_at, r.owner_id::text AS tenant_account"
	    " FROM auth_requests r WHERE r.id = $1", 1, &request_id,
	    "no such request in 'requestID'", "the request in 'requestID' is not yours", &res)) != 0)
		goto out;
	st = gw_val(res, 0, "status");
	*finalp = strcmp(st, "PENDING") != 0;
	if (strcmp(st, "EXPIRED") == 0) {
		r = gw_error(rep, 410, "expired", "the request in 'requestID' has expired");
		goto out;
	}
	if (strcmp(st, "CONFIRMED") == 0) {
		left = atoll(gw_val(res, 0, "sad_expires_at")) - now;
		if (left <= 0) {
			r = gw_error(rep, 410, "expired", "the SAD of the request in 'requestID' has expired");
			goto out;
		}
		if ((r = sg_unbytea(gw_val(res, 0, "sad"), &sad, &sadlen)) != 0)
			goto out;
		if ((sad_b64 = rssp_b64(sad, sadlen)) == NULL) {
			r = RSSP_E_NOMEM;
			goto out;
		}
		r = gw_reply_json(rep, 200, json_pack("{s:s,s:s,s:s,s:I}", "requestID", request_id,
		    "status", st, "SAD", sad_b64, "expiresIn", (json_int_t)left));
		goto out;
	}
	left = atoll(gw_val(res, 0, "expires_at")) - now;
	r = gw_reply_json(rep, strcmp(st, "PENDING") == 0 && created ? 202 : 200,
	    json_pack("{s:s,s:s,s:I}", "requestID", request_id, "status", st, "expiresIn",
	    (json_int_t)(left > 0 ? left : 0)));
out:
	if (sad != NULL)
		OPENSSL_clear_free(sad, sadlen);
	if (sad_b64 != NULL)
		OPENSSL_clear_free(sad_b64, strlen(sad_b64));
	PQclear(res);
	return r;
}

/* Answers with the request's state, long-polling up to wait seconds while it is
 * PENDING. The pooled connection is given back while waiting. */
static int
check_and_wait(struct gw_request *req, struct gw_reply *rep, const char *request_id,
    long long wait, int created)
{
	long long deadline = gw_now() + wait;
	unsigned long long seen;
	int r, final = 0;

	if (wait > 0)
		waiter_start(req->cfg->db_url);
	for (;;) {
		seen = waiter_gen();
		/* once stopping, answer with the state as it is now */
		if ((r = check_reply(req, rep, request_id, created, &final)) != 0 || final ||
		    gw_now() >= deadline || gw_stopping())
			return r;
		gw_db_release(req);
		waiter_wait(seen, deadline);
		if ((r = gw_db_reacquire(req)) != 0)
			return r;
	}
}

/* ---- credentials/authorize, authorizeCheck ---------------------------------------- */

static int
cmp_hash(const void *a, const void *b, void *len)
{
	return memcmp(*(const uint8_t *const *)a, *(const uint8_t *const *)b, *(size_t *)len);
}

int
areq_authorize(struct gw_request *req, struct gw_reply *rep)
{
	const struct gw_principal *p = &req->principal;
	const char *cred_id = NULL, *hoid = NULL, *desc = NULL, *client_data = NULL;
	const char **hashes_b64 = NULL;
	long long num = 0, validity = 300, wait = 0;
	uint8_t **hashes = NULL, *concat = NULL, nonce[REQ_NONCE_LEN], *spki = NULL, *ad = NULL;
	const uint8_t **sorted = NULL;
	size_t n = 0, i, hlen, distinct, spkilen = 0, adlen = 0;
	char request_id[GW_UUID_LEN + 1], *p_hashes = NULL, *p_nonce = NULL, *p_ad = NULL,
	    num_s[24], exp_s[24], ha_s[8];
	PGresult *res = NULL;
	struct rssp_approval_fields f;
	int r, hash_algo;
	bool csc = strncmp(req->path, "/csc/", 5) == 0; /* CSC clients need not describe it */
	long long exp;

	if ((r = sg_get_uuid(req, rep, "credentialID", true, &cred_id)) != 0 ||
	    (r = gw_get_int(req, rep, "numSignatures", 1, RSSP_MAX_HASHES, true, 0, &num)) != 0 ||
	    (r = gw_get_str_array(req, rep, "hashes", RSSP_MAX_HASHES, 128, true, &hashes_b64, &n)) != 0 ||
	    (r = gw_get_str(req, rep, "hashAlgorithmOID", 64, true, &hoid)) != 0 ||
	    (r = gw_get_str(req, rep, "description", 500, !csc, &desc)) != 0 ||
	    (r = gw_get_str(req, rep, "clientData", 2048, false, &client_data)) != 0 ||
	    (r = gw_get_int(req, rep, "validityPeriod", 1, 600, false, 300, &validity)) != 0 ||
	    (r = gw_get_int(req, rep, "wait", 0, 60, false, 0, &wait)) != 0)
		goto out;
	if (desc == NULL || desc[0] == '\0')
		desc = "Signature request"; /* a CSC v2 client need not describe it */
	if ((hash_algo = sg_hash_algo_from_oid(hoid)) == 0) {
		r = gw_error(rep, 400, "invalid_request",
		    "field 'hashAlgorithmOID' must be the OID of SHA-256, SHA-384 or SHA-512");
		goto out;
	}
	hlen = rssp_hash_algo_len(hash_algo);
	if ((r = sg_decode_hashes(rep, hashes_b64, n, hlen, &hashes)) != 0)
		goto out;
	if ((sorted = calloc(n, sizeof(*sorted))) == NULL ||
	    (concat = malloc(n * hlen)) == NULL) {
		r = RSSP_E_NOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		memcpy(concat + i * hlen, hashes[i], hlen);
		sorted[i] = hashes[i];
	}
	qsort_r(sorted, n, sizeof(*sorted), cmp_hash, &hlen);
	for (i = 1, distinct = 1; i < n; i++)
		if (memcmp(sorted[i - 1], sorted[i], hlen) != 0)
			distinct++;
	if ((size_t)num < distinct) {
		r = gw_error(rep, 400, "invalid_request",
		    "field 'numSignatures' must be at least the number of distinct hashes (%zu)", distinct);
		goto out;
	}
	{
		const char *params[] = { cred_id, p->account_id };
		if ((r = tenant_load(req, rep, TENANT_ACT,
		    "SELECT c.owner_id, c.status, NULL, d.id AS device_id, d.device_uuid, d.kak_spki,"
		    " coalesce((SELECT name FROM rp_clients WHERE account_id = $2::uuid),"
		    "   (SELECT full_name FROM accounts WHERE id = $2::uuid)) AS rp_name,"
		    " " TENANT_OWNER_COLS("a")
		    " FROM credentials c JOIN accounts a ON a.id = c.owner_id"
		    " LEFT JOIN devices d ON d.id = c.device_id AND d.status = 'ACTIVE'"
		    " WHERE c.id = $1", 2, params, "no such credential in 'credentialID'",
		    "the credential in 'credentialID' is not yours", &res)) != 0)
			goto out;
	}
	if (strcmp(gw_val(res, 0, "status"), "ACTIVE") != 0 || gw_isnull(res, 0, "device_id")) {
		r = gw_error(rep, 409, "conflict", "the credential in 'credentialID' is %s",
		    strcmp(gw_val(res, 0, "status"), "ACTIVE") ? gw_val(res, 0, "status") : "without an active device");
		goto out;
	}
	if ((r = sg_unbytea(gw_val(res, 0, "kak_spki"), &spki, &spkilen)) != 0)
		goto out;
	gw_random_uuid(request_id);
	gw_random_bytes(nonce, sizeof(nonce));
	exp = gw_now() + validity;
	memset(&f, 0, sizeof(f));
	f.approval_id = request_id;
	f.credential_id = cred_id;
	f.owner_id = gw_val(res, 0, "owner_id");
	f.device_uuid = gw_val(res, 0, "device_uuid");
	f.kak_spki = spki;
	f.kak_spki_len = spkilen;
	f.hash_algo = hash_algo;
	f.hashes = (const uint8_t *const *)hashes;
	f.n_hashes = n;
	f.hash_len = hlen;
	f.num_signatures = (uint32_t)num;
	f.rp_name = gw_val(res, 0, "rp_name");
	f.description = desc;
	f.nonce = nonce;
	f.nonce_len = sizeof(nonce);
	f.expires_at = exp;
	if ((r = rssp_authdata_approval(&f, &ad, &adlen)) != 0) {
		r = gw_error(rep, 400, "invalid_request", "field 'description' cannot be signed");
		goto out;
	}
	if ((p_hashes = sg_bytea(concat, n * hlen)) == NULL ||
	    (p_nonce = sg_bytea(nonce, sizeof(nonce))) == NULL ||
	    (p_ad = sg_bytea(ad, adlen)) == NULL) {
		r = RSSP_E_NOMEM;
		goto out;
	}
	snprintf(num_s, sizeof(num_s), "%lld", num);
	snprintf(exp_s, sizeof(exp_s), "%lld", exp);
	snprintf(ha_s, sizeof(ha_s), "%d", hash_algo);
	{
		const char *params[] = { request_id, cred_id, f.owner_id, gw_val(res, 0, "device_id"),
		    p->account_id, f.rp_name, desc, client_data, ha_s, p_hashes, num_s, p_nonce,
		    exp_s, p_ad };
		if ((r = gw_db_exec(req->db, NULL,
		    "INSERT INTO auth_requests (id, credential_id, owner_id, device_id, requester_id,"
		    " rp_name, description, client_data, hash_algo, hashes, num_signatures, remaining,"
		    " nonce, expires_at, auth_data, status) VALUES ($1, $2, $3, $4, $5, $6, $7, $8,"
		    " $9::int, $10, $11::int, $11::int, $12, $13::bigint, $14, 'PENDING')", 14, params)) != 0)
			goto out;
	}
	PQclear(res);
	res = NULL;
	r = check_and_wait(req, rep, request_id, wait, 1);
out:
	if (hashes != NULL)
		for (i = 0; i < n; i++)
			free(hashes[i]);
	free(hashes);
	free(sorted);
	free(concat);
	free(hashes_b64);
	free(spki);
	free(ad);
	free(p_hashes);
	free(p_nonce);
	free(p_ad);
	PQclear(res);
	return r;
}

int
areq_authorize_check(struct gw_request *req, struct gw_reply *rep)
{
	const char *id = NULL;
	long long wait = 0;
	int r;

	if ((r = sg_get_uuid(req, rep, "requestID", true, &id)) != 0 ||
	    (r = gw_get_int(req, rep, "wait", 0, 60, false, 0, &wait)) != 0)
		return r;
	return check_and_wait(req, rep, id, wait, 0);
}

/* ---- the signer's app: list, info, confirm, cancel -------------------------------- */

#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
#define REQ_COLS \
	"r.id, r.credential_id, r.rp_name, r.description, r.num_signatures," \
	" " TS("r.created_at") " AS created_iso, " TS("to_timestamp(r.expires_at)") " AS expires_iso," \
	" " STATUS_SQL
/* All columns, these and the ones own_request's callers add, are read by name (gw_val). */

static json_t *
req_json(PGresult *res, int i)
{
	return json_pack("{s:s,s:s,s:s,s:s,s:i,s:s,s:s,s:s}", "requestID", gw_val(res, i, "id"),
	    "credentialID", gw_val(res, i, "credential_id"), "rpName", gw_val(res, i, "rp_name"),
	    "description", gw_val(res, i, "description"), "numSignatures",
	    atoi(gw_val(res, i, "num_signatures")), "createdAt", gw_val(res, i, "created_iso"),
	    "expiresAt", gw_val(res, i, "expires_iso"), "status", gw_val(res, i, "status"));
}

int
areq_list(struct gw_request *req, struct gw_reply *rep)
{
	const char *device = NULL, *status = NULL;
	PGresult *res = NULL;
	json_t *arr = NULL, *o;
	int r, i;

	if ((r = sg_get_device_uuid(req, rep, &device)) != 0 ||
	    (r = gw_get_str(req, rep, "status", 16, false, &status)) != 0)
		goto out;
	if (status != NULL && strcmp(status, "PENDING") != 0 && strcmp(status, "CONFIRMED") != 0 &&
	    strcmp(status, "CANCELLED") != 0 && strcmp(status, "EXPIRED") != 0) {
		r = gw_error(rep, 400, "invalid_request",
		    "field 'status' must be PENDING, CONFIRMED, CANCELLED or EXPIRED");
		goto out;
	}
	if ((r = gw_db_query(req->db, &res,
	    "SELECT 1 FROM devices WHERE user_id = $1 AND device_uuid = $2 AND status = 'ACTIVE'",
	    2, req->principal.account_id, device)) != 0)
		goto out;
	if (PQntuples(res) != 1) {
		r = gw_error(rep, 403, "access_denied", "field 'deviceUUID' is not your active device");
		goto out;
	}
	PQclear(res);
	res = NULL;
	if ((r = gw_db_query(req->db, &res,
	    "SELECT * FROM (SELECT " REQ_COLS " FROM auth_requests r WHERE r.owner_id = $1"
	    " ORDER BY r.created_at DESC LIMIT 1000) x WHERE $2::text IS NULL OR x.status = $2",
	    2, req->principal.account_id, status)) != 0)
		goto out;
	if ((arr = json_array()) == NULL) {
		r = RSSP_E_NOMEM;
		goto out;
	}
	for (i = 0; i < PQntuples(res); i++)
		if ((o = req_json(res, i)) == NULL || json_array_append_new(arr, o) != 0) {
			r = RSSP_E_NOMEM;
			goto out;
		}
	r = gw_reply_json(rep, 200, json_pack("{s:o}", "requests", arr));
	arr = NULL;
out:
	json_decref(arr);
	PQclear(res);
	return r;
}

/* 0 when the request loaded by own_request is PENDING; else 410 (expired) or 409. */
static int
still_pending(struct gw_reply *rep, const PGresult *res)
{
	const char *st = gw_val(res, 0, "status");

	if (strcmp(st, "EXPIRED") == 0)
		return gw_error(rep, 410, "expired", "the request in 'requestID' has expired");
	if (strcmp(st, "PENDING") != 0)
		return gw_error(rep, 409, "conflict", "the request in 'requestID' is %s", st);
	return 0;
}

/* Loads a request the caller may use in mode (the tenant rule, tenant.h): REQ_COLS,
 * its owner and requester, then extra. Sets 404/403. */
static int
own_request(struct gw_request *req, struct gw_reply *rep, const char *id, const char *extra,
    enum tenant_mode mode, int forupdate, PGresult **resp)
{
	char sql[1400];

	snprintf(sql, sizeof(sql), "SELECT " REQ_COLS ", r.owner_id::text AS tenant_account,"
	    " r.requester_id::text AS tenant_requester%s%s FROM auth_requests r"
	    " JOIN devices d ON d.id = r.device_id"
	    " JOIN credentials c ON c.id = r.credential_id WHERE r.id = $1%s",
	    extra ? ", " : "", extra ? extra : "", forupdate ? " FOR UPDATE OF r" : "");
	return tenant_load(req, rep, mode, sql, 1, &id, "no such request in 'requestID'",
	    "the request in 'requestID' is not yours", resp);
}

int
areq_info(struct gw_request *req, struct gw_reply *rep)
{
	const char *id = NULL;
	PGresult *res = NULL;
	uint8_t *hashes = NULL, *ad = NULL;
	size_t hlen_all = 0, adlen = 0, hlen, i;
	json_t *o = NULL, *arr = NULL;
	char *s = NULL;
	int r, ha, kak_algo;

	if ((r = sg_get_uuid(req, rep, "requestID", true, &id)) != 0 ||
	    (r = own_request(req, rep, id, "r.hashes, r.hash_algo, r.auth_data, d.kak_algo",
	    TENANT_OWN, 0, &res)) != 0)
		goto out;
	ha = atoi(gw_val(res, 0, "hash_algo"));
	kak_algo = atoi(gw_val(res, 0, "kak_algo"));
	hlen = rssp_hash_algo_len(ha);
	if ((r = sg_unbytea(gw_val(res, 0, "hashes"), &hashes, &hlen_all)) != 0 ||
	    (r = sg_unbytea(gw_val(res, 0, "auth_data"), &ad, &adlen)) != 0)
		goto out;
	if ((o = req_json(res, 0)) == NULL || (arr = json_array()) == NULL || hlen == 0) {
		r = RSSP_E_NOMEM;
		goto out;
	}
	for (i = 0; i + hlen <= hlen_all; i += hlen) {
		if ((s = rssp_b64(hashes + i, hlen)) == NULL ||
		    json_array_append_new(arr, json_string(s)) != 0) {
			r = RSSP_E_NOMEM;
			goto out;
		}
		free(s);
		s = NULL;
	}
	json_object_set_new(o, "hashes", arr);
	arr = NULL;
	json_object_set_new(o, "hashAlgorithmOID", json_string(sg_hash_algo_oid(ha)));
	if ((s = rssp_b64(ad, adlen)) == NULL) {
		r = RSSP_E_NOMEM;
		goto out;
	}
	json_object_set_new(o, "authData", json_string(s));
	json_object_set_new(o, "signAlgo", json_string(sic_kak_sign_algo(kak_algo)));
	json_object_set_new(o, "shaAlgo", json_string(sic_kak_sha_algo(kak_algo)));
	r = gw_reply_json(rep, 200, o);
	o = NULL;
out:
	free(s);
	free(hashes);
	free(ad);
	json_decref(o);
	json_decref(arr);
	PQclear(res);
	return r;
}

int
areq_confirm(struct gw_request *req, struct gw_reply *rep)
{
	const char *id = NULL, *device = NULL;
	uint8_t *sig = NULL, *hashes = NULL, *spki = NULL, *nonce = NULL, *binding = NULL, *sad = NULL;
	const uint8_t **hp = NULL;
	size_t siglen = 0, hlen_all = 0, spkilen = 0, noncelen = 0, bindlen = 0, sadlen = 0, hlen, i, n;
	PGresult *res = NULL;
	struct rssp_approval_fields f;
	char *p_sad = NULL, *p_sadhash = NULL, exp_s[24];
	uint8_t digest[SHA256_DIGEST_LENGTH];
	struct engine_result er;
	enum engine_status est;
	int64_t sad_exp = 0;
	int r, ha, kak_algo;

	if ((r = sg_get_uuid(req, rep, "requestID", true, &id)) != 0 ||
	    (r = sg_get_device_uuid(req, rep, &device)) != 0 ||
	    (r = gw_get_b64(req, rep, "authorizeSignature", 2048, true, &sig, &siglen)) != 0)
		goto out;
	/* No transaction across the engine call: read, call, then one conditional UPDATE.
	 * A confirm retried after a lost answer (engine, database or gateway failed after the
	 * engine minted) presents the same approval again and the engine answers it with the
	 * SAD it minted already (PROTOCOL.md, "Replayed approval"); two confirms racing both
	 * get that SAD, and the second finds the request CONFIRMED. */
	if ((r = own_request(req, rep, id,
	    "d.device_uuid, d.status AS device_status, d.kak_spki, d.kak_algo, r.owner_id,"
	    " r.hash_algo, r.hashes, r.nonce, r.expires_at, c.key_label, c.binding,"
	    " c.status AS credential_status", TENANT_OWN, 0, &res)) != 0)
		goto out;
	if (strcmp(gw_val(res, 0, "device_uuid"), device) != 0 ||
	    strcmp(gw_val(res, 0, "device_status"), "ACTIVE") != 0) {
		r = gw_error(rep, 403, "access_denied",
		    "field 'deviceUUID' is not the active device the request was made for");
		goto out;
	}
	if ((r = still_pending(rep, res)) != 0)
		goto out;
	if (strcmp(gw_val(res, 0, "credential_status"), "ACTIVE") != 0 || gw_isnull(res, 0, "key_label")) {
		r = gw_error(rep, 409, "conflict", "the credential of the request is not ACTIVE");
		goto out;
	}
	ha = atoi(gw_val(res, 0, "hash_algo"));
	hlen = rssp_hash_algo_len(ha);
	kak_algo = atoi(gw_val(res, 0, "kak_algo"));
	if ((r = sg_unbytea(gw_val(res, 0, "kak_spki"), &spki, &spkilen)) != 0 ||
	    (r = sg_unbytea(gw_val(res, 0, "hashes"), &hashes, &hlen_all)) != 0 ||
	    (r = sg_unbytea(gw_val(res, 0, "nonce"), &nonce, &noncelen)) != 0 ||
	    (r = sg_unbytea(gw_val(res, 0, "binding"), &binding, &bindlen)) != 0)
		goto out;
	if (hlen == 0 || hlen_all % hlen != 0 || (n = hlen_all / hlen) == 0) {
		r = RSSP_E_INTERNAL;
		goto out;
	}
	if ((hp = calloc(n, sizeof(*hp))) == NULL) {
		r = RSSP_E_NOMEM;
		goto out;
	}
	for (i = 0; i < n; i++)
		hp[i] = hashes + i * hlen;
	/* Exactly the stored fields: the engine rebuilds the authData the app signed. */
	memset(&f, 0, sizeof(f));
	f.approval_id = gw_val(res, 0, "id");
	f.credential_id = gw_val(res, 0, "credential_id");
	f.owner_id = gw_val(res, 0, "owner_id");
	f.device_uuid = gw_val(res, 0, "device_uuid");
	f.kak_spki = spki;
	f.kak_spki_len = spkilen;
	f.hash_algo = ha;
	f.hashes = hp;
	f.n_hashes = n;
	f.hash_len = hlen;
	f.num_signatures = (uint32_t)atoi(gw_val(res, 0, "num_signatures"));
	f.rp_name = gw_val(res, 0, "rp_name");
	f.description = gw_val(res, 0, "description");
	f.nonce = nonce;
	f.nonce_len = noncelen;
	f.expires_at = atoll(gw_val(res, 0, "expires_at"));
	est = engine_approve(req->engine, req->cfg->engine_timeout_ms, req->request_id, &f,
	    kak_algo, gw_val(res, 0, "key_label"), binding, bindlen, sig, siglen, &sad,
	    &sadlen, &sad_exp, &er);
	gw_metrics_engine_call("authorize", er.grpc_status, er.seconds);
	engine_health_note(&er);
	if (est != ENGINE_OK) {
		r = sg_engine_error(rep, &er, "approval");
		goto out;
	}
	SHA256(sad, sadlen, digest);
	if ((p_sad = sg_bytea(sad, sadlen)) == NULL ||
	    (p_sadhash = sg_bytea(digest, sizeof(digest))) == NULL) {
		r = RSSP_E_NOMEM;
		goto out;
	}
	snprintf(exp_s, sizeof(exp_s), "%lld", (long long)sad_exp);
	PQclear(res);
	res = NULL;
	if ((r = gw_tx_begin(req)) != 0 ||
	    (r = gw_db_query(req->db, &res,
	    "UPDATE auth_requests SET status = 'CONFIRMED', sad = $2, sad_hash = $3,"
	    " sad_expires_at = $4::bigint, confirmed_at = now() WHERE id = $1 AND status = 'PENDING'"
	    " RETURNING id", 4, id, p_sad, p_sadhash, exp_s)) != 0)
		goto out;
	if (PQntuples(res) != 1) {
		/* cancelled meanwhile, or confirmed by a racing call with the same SAD */
		gw_tx_rollback(req);
		PQclear(res);
		res = NULL;
		if ((r = gw_db_query(req->db, &res, "SELECT status, sad_hash = $2 AS same_sad FROM auth_requests"
		    " WHERE id = $1", 2, id, p_sadhash)) != 0)
			goto out;
		if (PQntuples(res) != 1 || strcmp(gw_val(res, 0, "status"), "CONFIRMED") != 0 ||
		    strcmp(gw_val(res, 0, "same_sad"), "t") != 0) {
			r = gw_error(rep, 409, "conflict", "the request in 'requestID' is %s",
			    PQntuples(res) == 1 ? gw_val(res, 0, "status") : "gone");
			goto out;
		}
	} else if ((r = areq_notify(req, id)) != 0 || (r = gw_tx_commit(req)) != 0) {
		goto out;
	}
	log_info("request %s confirmed", id);
	r = gw_reply_json(rep, 200, json_pack("{s:s,s:s}", "requestID", id, "status", "CONFIRMED"));
out:
	if (sad != NULL)
		OPENSSL_clear_free(sad, sadlen);
	if (p_sad != NULL)
		OPENSSL_clear_free(p_sad, strlen(p_sad));
	free(p_sadhash);
	free(sig);
	free(hashes);
	free(hp);
	free(spki);
	free(nonce);
	free(binding);
	PQclear(res);
	return r;
}

int
areq_cancel(struct gw_request *req, struct gw_reply *rep)
{
	const char *id = NULL;
	PGresult *res = NULL;
	int r;

	if ((r = sg_get_uuid(req, rep, "requestID", true, &id)) != 0)
		goto out;
	if ((r = gw_tx_begin(req)) != 0 ||
	    (r = own_request(req, rep, id, NULL, TENANT_PARTY, 1, &res)) != 0)
		goto out;
	if ((r = still_pending(rep, res)) != 0)
		goto out;
	if ((r = gw_db_query(req->db, NULL,
	    "UPDATE auth_requests SET status = 'CANCELLED', cancelled_at = now() WHERE id = $1",
	    1, id)) != 0 || (r = areq_notify(req, id)) != 0 || (r = gw_tx_commit(req)) != 0)
		goto out;
	r = gw_reply_json(rep, 200, json_pack("{s:s,s:s}", "requestID", id, "status", "CANCELLED"));
out:
	PQclear(res);
	return r;
}
