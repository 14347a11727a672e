/* engine_client.c - gRPC C core client of the engine (engine_client.h). */
#include "engine_client.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <grpc/grpc.h>
#include <grpc/support/time.h>
#include <openssl/crypto.h>

#include <rssp/engine/v1/engine.pb-c.h>

#include "grpc_unary.h"
#include "rssp_log.h"

struct engine_client {
	grpc_channel *ch;
	void *reg[2];            /* registered calls: Authorize, SignHash */
	unsigned timeout_ms;
	atomic_uint cancel_gen;  /* engine_client_cancel_all() bumps it */
};

static const char *const method_paths[2] = {
	"/rssp.engine.v1.Engine/Authorize",
	"/rssp.engine.v1.Engine/SignHash",
};

int
engine_client_new(const char *socket_path, unsigned timeout_ms, struct engine_client **cp)
{
	struct engine_client *c = NULL;
	grpc_arg a[4];
	grpc_channel_args args;
	int r = RSSP_E_INVAL;

	if (socket_path == NULL || socket_path[0] == '\0' || strlen(socket_path) > 107)
		goto out;
	r = RSSP_E_NOMEM;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		goto out;
	c->timeout_ms = timeout_ms ? timeout_ms : 5000;
	grpc_init();
	/* reconnect quickly after an engine restart (gRPC's default backoff grows to 120 s) */
	a[0].type = GRPC_ARG_INTEGER;
	a[0].key = (char *)GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS;
	a[0].value.integer = 100;
	/* gRPC also takes this as the connect timeout (time to the peer's SETTINGS frame):
	 * at 100 ms a restarted engine under load was never reached */
	a[1].type = GRPC_ARG_INTEGER;
	a[1].key = (char *)GRPC_ARG_MIN_RECONNECT_BACKOFF_MS;
	a[1].value.integer = 1000;
	a[2].type = GRPC_ARG_INTEGER;
	a[2].key = (char *)GRPC_ARG_MAX_RECONNECT_BACKOFF_MS;
	a[2].value.integer = 1000;
	a[3].type = GRPC_ARG_INTEGER;
	a[3].key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
	a[3].value.integer = 8 * 1024 * 1024;
	args.num_args = 4;
	args.args = a;
	if ((c->ch = grpc_unary_channel_new(socket_path, &args)) == NULL) {
		grpc_shutdown();
		r = RSSP_E_INTERNAL;
		goto out;
	}
	c->reg[0] = grpc_channel_register_call(c->ch, method_paths[0], NULL, NULL);
	c->reg[1] = grpc_channel_register_call(c->ch, method_paths[1], NULL, NULL);
	*cp = c;
	c = NULL;
	r = 0;
out:
	free(c);
	return r;
}

void
engine_client_free(struct engine_client *c)
{
	if (c == NULL)
		return;
	grpc_channel_destroy(c->ch);
	grpc_shutdown();
	free(c);
}

/* gRPC's own status text when no connection could be made, so the call was never
 * sent ("failed to connect to all addresses; last error: ..." in 1.51). Anything else
 * without the engine's metadata (a connection reset mid-call, ...) may have reached it. */
static int
not_sent(const char *details)
{
	static const char pfx[] = "failed to connect to all addresses";

	return details != NULL && strncmp(details, pfx, sizeof(pfx) - 1) == 0;
}

/* One call (grpc_unary.h), its outcome mapped: RSSP_E_TIMEOUT / RSSP_E_UNAVAILABLE when
 * the transport, not the engine, answered; else 0 with *statusp, *msgp (NULL or the
 * status text, malloc'd) and, on OK, the response *respp / *resplenp (malloc'd). */
static int
do_call(struct engine_client *c, void *reg, const char *path, unsigned deadline_ms,
    const char *request_id, const uint8_t *req, size_t reqlen, uint8_t **respp, size_t *resplenp,
    int *statusp, char **msgp)
{
	struct grpc_unary_result u;
	int r;

	if (deadline_ms == 0)
		deadline_ms = c->timeout_ms;
	/* the engine marks every answer of its own with the metadata key rssp-engine */
	if ((r = grpc_unary(c->ch, reg, path, deadline_ms, request_id, req, reqlen, &c->cancel_gen,
	    "rssp-engine", &u)) != 0)
		return r;
	if (u.status == GRPC_STATUS_DEADLINE_EXCEEDED || (u.cancelled && !u.marked)) {
		r = RSSP_E_TIMEOUT;
		goto out;
	}
	if (u.status == GRPC_STATUS_UNAVAILABLE && !u.marked) {
		/* Not the engine's answer: the transport's. The request reached the engine (which
		 * may have acted: a connection cut mid-call) unless gRPC never had a connection
		 * to send it on. Other statuses without the engine's metadata (a message over
		 * the channel's cap, ...) are gRPC's own refusals and returned as answers. */
		r = not_sent(u.details) ? RSSP_E_UNAVAILABLE : RSSP_E_TIMEOUT;
		log_debug("engine call failed (%d): %s", u.status, u.details != NULL ? u.details : "");
		goto out;
	}
	if (u.status == GRPC_STATUS_OK && u.resp == NULL)
		u.status = GRPC_STATUS_INTERNAL; /* OK without a message breaks the protocol */
	*statusp = u.status;
	*msgp = u.details; /* the caller's from here */
	u.details = NULL;
	*respp = NULL;
	*resplenp = 0;
	if (u.status == GRPC_STATUS_OK) {
		*respp = u.resp; /* the caller's from here */
		*resplenp = u.resplen;
		u.resp = NULL;
	}
	r = 0;
out:
	grpc_unary_result_release(&u);
	return r;
}

int
engine_call(struct engine_client *c, int method, const char *request_id,
    const uint8_t *req, size_t reqlen, uint8_t **respp, size_t *resplenp,
    int *statusp, char **msgp)
{
	if (method != ENGINE_METHOD_AUTHORIZE && method != ENGINE_METHOD_SIGNHASH)
		return RSSP_E_INVAL;
	return do_call(c, c->reg[method - 1], method_paths[method - 1], 0, request_id, req,
	    reqlen, respp, resplenp, statusp, msgp);
}

int
engine_call_path(struct engine_client *c, const char *method_path, const char *request_id,
    const uint8_t *req, size_t reqlen, uint8_t **respp, size_t *resplenp,
    int *statusp, char **msgp)
{
	if (method_path == NULL || method_path[0] != '/')
		return RSSP_E_INVAL;
	return do_call(c, NULL, method_path, 0, request_id, req, reqlen, respp, resplenp,
	    statusp, msgp);
}

void
engine_client_cancel_all(struct engine_client *c)
{
	if (c != NULL)
		atomic_fetch_add(&c->cancel_gen, 1);
}

void
engine_client_reconnect(struct engine_client *c)
{
	if (c != NULL)
		grpc_channel_reset_connect_backoff(c->ch);
}

int
engine_client_ready(struct engine_client *c, unsigned timeout_ms)
{
	grpc_completion_queue *cq;
	grpc_connectivity_state st;
	gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
	    gpr_time_from_millis((int64_t)timeout_ms, GPR_TIMESPAN));
	grpc_event ev;
	int tag, r = RSSP_E_UNAVAILABLE;

	if ((cq = grpc_completion_queue_create_for_pluck(NULL)) == NULL)
		return RSSP_E_NOMEM;
	for (;;) {
		st = grpc_channel_check_connectivity_state(c->ch, 1);
		if (st == GRPC_CHANNEL_READY) {
			r = 0;
			break;
		}
		if (st == GRPC_CHANNEL_SHUTDOWN)
			break;
		grpc_channel_watch_connectivity_state(c->ch, st, deadline, cq, &tag);
		ev = grpc_completion_queue_pluck(cq, &tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
		if (ev.type != GRPC_OP_COMPLETE || !ev.success)
			break; /* deadline passed without a change */
	}
	grpc_completion_queue_shutdown(cq);
	grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	grpc_completion_queue_destroy(cq);
	return r;
}

/* ---- typed calls ------------------------------------------------------------------- */

static double
now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
result_init(struct engine_result *res)
{
	memset(res, 0, sizeof(*res));
	res->status = ENGINE_INTERNAL;
	res->grpc_status = -1;
}

/* Maps what do_call returned (rc, and when rc is 0 the gRPC status and message) to
 * res. The only place that reads a gRPC status number. */
static void
result_set(struct engine_result *res, int rc, int status, const char *msg)
{
	res->refusal = ENGINE_REFUSAL_NONE;
	res->answered = rc == 0;
	res->grpc_status = rc == 0 ? status : -1;
	if (rc == 0 && msg != NULL)
		snprintf(res->message, sizeof(res->message), "%s", msg);
	if (rc == RSSP_E_TIMEOUT) {
		res->status = ENGINE_TIMEOUT;
		return;
	}
	if (rc == RSSP_E_UNAVAILABLE) {
		res->status = ENGINE_UNAVAILABLE;
		return;
	}
	if (rc != 0) {
		res->status = ENGINE_INTERNAL;
		return;
	}
	switch ((grpc_status_code)status) {
	case GRPC_STATUS_OK:
		res->status = ENGINE_OK;
		return;
	case GRPC_STATUS_UNAVAILABLE:
		res->status = ENGINE_UNAVAILABLE;
		return;
	case GRPC_STATUS_DEADLINE_EXCEEDED:
		res->status = ENGINE_TIMEOUT;
		return;
	case GRPC_STATUS_INTERNAL:
	case GRPC_STATUS_UNKNOWN:
		res->status = ENGINE_INTERNAL;
		return;
	case GRPC_STATUS_INVALID_ARGUMENT:
		res->refusal = ENGINE_REFUSAL_INVALID;
		break;
	case GRPC_STATUS_PERMISSION_DENIED:
		res->refusal = ENGINE_REFUSAL_DENIED;
		break;
	case GRPC_STATUS_FAILED_PRECONDITION:
		res->refusal = ENGINE_REFUSAL_EXPIRED;
		break;
	case GRPC_STATUS_RESOURCE_EXHAUSTED:
		res->refusal = ENGINE_REFUSAL_EXHAUSTED;
		break;
	default:
		res->refusal = ENGINE_REFUSAL_PROTOCOL;
		break;
	}
	res->status = ENGINE_REFUSED;
}

int
engine_may_have_acted(const struct engine_result *res)
{
	return res->status == ENGINE_OK || res->status == ENGINE_TIMEOUT ||
	    res->status == ENGINE_INTERNAL;
}

/* Calls a method with a packed request; on ENGINE_OK *respp / *resplenp hold the
 * response bytes (malloc'd). The packed request is wiped (it may hold a SAD). */
static enum engine_status
typed_call(struct engine_client *c, int method, unsigned deadline_ms, const char *request_id,
    uint8_t *buf, size_t len, uint8_t **respp, size_t *resplenp, struct engine_result *res)
{
	uint8_t *resp = NULL;
	size_t resplen = 0;
	char *msg = NULL;
	int rc, status = -1;
	double t0 = now_seconds();

	rc = do_call(c, c->reg[method - 1], method_paths[method - 1], deadline_ms, request_id,
	    buf, len, &resp, &resplen, &status, &msg);
	res->seconds = now_seconds() - t0;
	OPENSSL_cleanse(buf, len);
	result_set(res, rc, status, msg);
	free(msg);
	if (res->status == ENGINE_OK) {
		*respp = resp;
		*resplenp = resplen;
		resp = NULL;
	}
	free(resp);
	return res->status;
}

static enum engine_status
broken(struct engine_result *res, const char *what)
{
	log_error("the engine's %s breaks the protocol", what);
	res->status = ENGINE_INTERNAL;
	res->refusal = ENGINE_REFUSAL_NONE;
	return res->status;
}

static uint8_t *
bytes_dup(const ProtobufCBinaryData *b, size_t *lenp)
{
	uint8_t *p = malloc(b->len ? b->len : 1);

	if (p != NULL) {
		if (b->len)
			memcpy(p, b->data, b->len);
		*lenp = b->len;
	}
	return p;
}

/* Packs and sends an AuthorizeRequest; on ENGINE_OK *ansp is the unpacked response. */
static enum engine_status
authorize(struct engine_client *c, unsigned deadline_ms, const char *request_id,
    const Rssp__Engine__V1__AuthorizeRequest *ar, Rssp__Engine__V1__AuthorizeResponse **ansp,
    struct engine_result *res)
{
	uint8_t *buf, *resp = NULL;
	size_t len = rssp__engine__v1__authorize_request__get_packed_size(ar), resplen = 0;

	if ((buf = malloc(len ? len : 1)) == NULL)
		return res->status;
	rssp__engine__v1__authorize_request__pack(ar, buf);
	if (typed_call(c, ENGINE_METHOD_AUTHORIZE, deadline_ms, request_id, buf, len, &resp,
	    &resplen, res) == ENGINE_OK &&
	    (*ansp = rssp__engine__v1__authorize_response__unpack(NULL, resplen, resp)) == NULL)
		(void)broken(res, "authorize response");
	free(buf);
	free(resp);
	return res->status;
}

void
engine_activation_release(struct engine_activation *a)
{
	free(a->key_label);
	free(a->binding);
	free(a->cert);
	free(a->pub);
	free(a->chain);
	memset(a, 0, sizeof(*a));
}

enum engine_status
engine_activate(struct engine_client *c, unsigned deadline_ms, const char *request_id,
    const struct rssp_activation_fields *f, const uint8_t *sig, size_t siglen,
    const struct engine_voucher *vo, struct engine_activation *out, struct engine_result *res)
{
	Rssp__Engine__V1__AuthorizeRequest ar = RSSP__ENGINE__V1__AUTHORIZE_REQUEST__INIT;
	Rssp__Engine__V1__Kak kak = RSSP__ENGINE__V1__KAK__INIT;
	Rssp__Engine__V1__Activation act = RSSP__ENGINE__V1__ACTIVATION__INIT;
	Rssp__Engine__V1__Voucher v = RSSP__ENGINE__V1__VOUCHER__INIT;
	Rssp__Engine__V1__AuthorizeResponse *ans = NULL;
	const Rssp__Engine__V1__ActivationResult *a;
	struct engine_activation t;
	size_t i, total = 0;

	result_init(res);
	memset(&t, 0, sizeof(t));
	if (c == NULL) {
		res->status = ENGINE_UNAVAILABLE;
		goto out;
	}
	ar.request_id = (char *)(request_id ? request_id : "");
	kak.public_key.data = (uint8_t *)f->kak_spki;
	kak.public_key.len = f->kak_spki_len;
	kak.algo = f->kak_algo;
	ar.kak = &kak;
	ar.signature.data = (uint8_t *)sig;
	ar.signature.len = siglen;
	act.credential_id = (char *)f->credential_id;
	act.owner_id = (char *)f->owner_id;
	act.device_uuid = (char *)f->device_uuid;
	act.key_algo = f->key_algo;
	if (vo != NULL) {
		v.to_be_signed.data = (uint8_t *)vo->tbs;
		v.to_be_signed.len = vo->tbs_len;
		v.signature.data = (uint8_t *)vo->sig;
		v.signature.len = vo->sig_len;
		v.ra_key_id.data = (uint8_t *)vo->ra_key_id;
		v.ra_key_id.len = vo->ra_key_id != NULL ? 32 : 0;
		act.voucher = &v;
	}
	act.validity_days = f->validity_days;
	act.nonce.data = (uint8_t *)f->nonce;
	act.nonce.len = f->nonce_len;
	act.expires_at = f->expires_at;
	ar.purpose_case = RSSP__ENGINE__V1__AUTHORIZE_REQUEST__PURPOSE_ACTIVATION;
	ar.activation = &act;
	if (authorize(c, deadline_ms, request_id, &ar, &ans, res) != ENGINE_OK)
		goto out;
	if (ans->result_case != RSSP__ENGINE__V1__AUTHORIZE_RESPONSE__RESULT_ACTIVATION ||
	    (a = ans->activation) == NULL || a->key_label == NULL ||
	    a->binding.len == 0 || a->certificate.len == 0) {
		(void)broken(res, "activation result");
		goto out;
	}
	for (i = 0; i < a->n_chain; i++)
		total += a->chain[i].len;
	if ((t.key_label = strdup(a->key_label)) == NULL ||
	    (t.binding = bytes_dup(&a->binding, &t.binding_len)) == NULL ||
	    (t.cert = bytes_dup(&a->certificate, &t.cert_len)) == NULL ||
	    (t.pub = bytes_dup(&a->public_key, &t.pub_len)) == NULL ||
	    (t.chain = malloc(total ? total : 1)) == NULL) {
		res->status = ENGINE_INTERNAL;
		goto out;
	}
	for (i = 0; i < a->n_chain; i++) {
		if (a->chain[i].len)
			memcpy(t.chain + t.chain_len, a->chain[i].data, a->chain[i].len);
		t.chain_len += a->chain[i].len;
	}
	*out = t; /* owned by the caller */
	memset(&t, 0, sizeof(t));
out:
	engine_activation_release(&t);
	if (ans != NULL)
		rssp__engine__v1__authorize_response__free_unpacked(ans, NULL);
	return res->status;
}

enum engine_status
engine_approve(struct engine_client *c, unsigned deadline_ms, const char *request_id,
    const struct rssp_approval_fields *f, int kak_algo, const char *key_label,
    const uint8_t *binding, size_t binding_len, const uint8_t *sig, size_t siglen,
    uint8_t **sadp, size_t *sadlenp, int64_t *sad_expp, struct engine_result *res)
{
	Rssp__Engine__V1__AuthorizeRequest ar = RSSP__ENGINE__V1__AUTHORIZE_REQUEST__INIT;
	Rssp__Engine__V1__Kak kak = RSSP__ENGINE__V1__KAK__INIT;
	Rssp__Engine__V1__Approval ap = RSSP__ENGINE__V1__APPROVAL__INIT;
	Rssp__Engine__V1__AuthorizeResponse *ans = NULL;
	ProtobufCBinaryData *hashes = NULL;
	uint8_t *sad;
	size_t i, sadlen = 0;

	result_init(res);
	if (c == NULL) {
		res->status = ENGINE_UNAVAILABLE;
		goto out;
	}
	if (f->n_hashes > RSSP_MAX_HASHES ||
	    (hashes = calloc(f->n_hashes ? f->n_hashes : 1, sizeof(*hashes))) == NULL)
		goto out;
	for (i = 0; i < f->n_hashes; i++) {
		hashes[i].data = (uint8_t *)f->hashes[i];
		hashes[i].len = f->hash_len;
	}
	ar.request_id = (char *)(request_id ? request_id : "");
	kak.public_key.data = (uint8_t *)f->kak_spki;
	kak.public_key.len = f->kak_spki_len;
	kak.algo = kak_algo;
	ar.kak = &kak;
	ar.signature.data = (uint8_t *)sig;
	ar.signature.len = siglen;
	ap.approval_id = (char *)f->approval_id;
	ap.credential_id = (char *)f->credential_id;
	ap.owner_id = (char *)f->owner_id;
	ap.device_uuid = (char *)f->device_uuid;
	ap.key_label = (char *)key_label;
	ap.binding.data = (uint8_t *)binding;
	ap.binding.len = binding_len;
	ap.hash_algo = f->hash_algo;
	ap.n_hashes = f->n_hashes;
	ap.hashes = hashes;
	ap.num_signatures = f->num_signatures;
	ap.rp_name = (char *)f->rp_name;
	ap.description = (char *)f->description;
	ap.nonce.data = (uint8_t *)f->nonce;
	ap.nonce.len = f->nonce_len;
	ap.expires_at = f->expires_at;
	ar.purpose_case = RSSP__ENGINE__V1__AUTHORIZE_REQUEST__PURPOSE_APPROVAL;
	ar.approval = &ap;
	if (authorize(c, deadline_ms, request_id, &ar, &ans, res) != ENGINE_OK)
		goto out;
	if (ans->result_case != RSSP__ENGINE__V1__AUTHORIZE_RESPONSE__RESULT_APPROVAL ||
	    ans->approval == NULL || ans->approval->sad.len == 0) {
		(void)broken(res, "approval result");
		goto out;
	}
	if ((sad = bytes_dup(&ans->approval->sad, &sadlen)) == NULL) {
		res->status = ENGINE_INTERNAL;
		goto out;
	}
	*sadp = sad; /* owned by the caller */
	*sadlenp = sadlen;
	*sad_expp = ans->approval->sad_expires_at;
out:
	free(hashes);
	if (ans != NULL) {
		if (ans->result_case == RSSP__ENGINE__V1__AUTHORIZE_RESPONSE__RESULT_APPROVAL &&
		    ans->approval != NULL && ans->approval->sad.data != NULL)
			OPENSSL_cleanse(ans->approval->sad.data, ans->approval->sad.len);
		rssp__engine__v1__authorize_response__free_unpacked(ans, NULL);
	}
	return res->status;
}

void
engine_signatures_release(struct engine_signatures *s)
{
	size_t i;

	if (s->sig != NULL)
		for (i = 0; i < s->n; i++)
			free(s->sig[i]);
	free(s->sig);
	free(s->len);
	memset(s, 0, sizeof(*s));
}

enum engine_status
engine_sign_hash(struct engine_client *c, unsigned deadline_ms, const char *request_id,
    const char *credential_id, const uint8_t *sad, size_t sadlen, int hash_algo,
    int sign_algo, const uint8_t *const *hashes, size_t n, size_t hash_len,
    struct engine_signatures *out, struct engine_result *res)
{
	return engine_sign_hash_pss(c, deadline_ms, request_id, credential_id, sad, sadlen,
	    hash_algo, sign_algo, -1, hashes, n, hash_len, out, res);
}

enum engine_status
engine_sign_hash_pss(struct engine_client *c, unsigned deadline_ms, const char *request_id,
    const char *credential_id, const uint8_t *sad, size_t sadlen, int hash_algo,
    int sign_algo, long pss_salt, const uint8_t *const *hashes, size_t n, size_t hash_len,
    struct engine_signatures *out, struct engine_result *res)
{
	Rssp__Engine__V1__SignHashRequest sr = RSSP__ENGINE__V1__SIGN_HASH_REQUEST__INIT;
	Rssp__Engine__V1__PssParams pss = RSSP__ENGINE__V1__PSS_PARAMS__INIT;
	Rssp__Engine__V1__SignHashResponse *ans = NULL;
	ProtobufCBinaryData *hb = NULL;
	struct engine_signatures t;
	uint8_t *buf = NULL, *resp = NULL;
	size_t len, resplen = 0, i;

	result_init(res);
	memset(&t, 0, sizeof(t));
	if (c == NULL) {
		res->status = ENGINE_UNAVAILABLE;
		goto out;
	}
	if (n > RSSP_MAX_HASHES || (hb = calloc(n ? n : 1, sizeof(*hb))) == NULL)
		goto out;
	for (i = 0; i < n; i++) {
		hb[i].data = (uint8_t *)hashes[i];
		hb[i].len = hash_len;
	}
	sr.request_id = (char *)(request_id ? request_id : "");
	sr.credential_id = (char *)credential_id;
	sr.sad.data = (uint8_t *)sad;
	sr.sad.len = sadlen;
	sr.hash_algo = hash_algo;
	sr.sign_algo = sign_algo;
	if (pss_salt >= 0) { /* a salt other than the hash length */
		pss.salt_length = (uint32_t)pss_salt;
		sr.pss = &pss;
	}
	sr.n_hashes = n;
	sr.hashes = hb;
	len = rssp__engine__v1__sign_hash_request__get_packed_size(&sr);
	if ((buf = malloc(len ? len : 1)) == NULL)
		goto out;
	rssp__engine__v1__sign_hash_request__pack(&sr, buf);
	if (typed_call(c, ENGINE_METHOD_SIGNHASH, deadline_ms, request_id, buf, len, &resp,
	    &resplen, res) != ENGINE_OK)
		goto out;
	if ((ans = rssp__engine__v1__sign_hash_response__unpack(NULL, resplen, resp)) == NULL ||
	    ans->n_signatures != n) {
		(void)broken(res, "signhash response (it does not match the request)");
		goto out;
	}
	if ((t.sig = calloc(n ? n : 1, sizeof(*t.sig))) == NULL ||
	    (t.len = calloc(n ? n : 1, sizeof(*t.len))) == NULL) {
		res->status = ENGINE_INTERNAL;
		goto out;
	}
	t.n = n;
	for (i = 0; i < n; i++)
		if ((t.sig[i] = bytes_dup(&ans->signatures[i], &t.len[i])) == NULL) {
			res->status = ENGINE_INTERNAL;
			goto out;
		}
	*out = t; /* owned by the caller */
	memset(&t, 0, sizeof(t));
out:
	engine_signatures_release(&t);
	free(hb);
	free(buf);
	free(resp);
	if (ans != NULL)
		rssp__engine__v1__sign_hash_response__free_unpacked(ans, NULL);
	return res->status;
}
