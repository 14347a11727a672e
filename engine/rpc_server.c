/* rpc_server.c - gRPC C core 1.51 server of the engine (rpc_server.h).
 *
 * Threads: the caller of rpc_server_run accepts connections; one thread drives the
 * completion queue (never blocks on the HSM); `workers` threads run handlers and start
 * the reply batches. Every call holds one count in `live` from the moment its request
 * is posted until its last batch completes; the queue is shut down only at zero. */
#include "rpc_server.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_posix.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "grpc_unary.h"
#include "rssp_log.h"

/* Channel-level cap: larger messages are refused by gRPC itself, unaudited. Between a
 * method's max_msg and this, the engine refuses and audits. */
#define RPC_CHANNEL_MAX_MSG (1024 * 1024)
#define RPC_MAX_FDS 65536

enum tag_kind { TAG_REGISTERED, TAG_GENERIC, TAG_DONE, TAG_SHUTDOWN };

struct call {
	enum tag_kind kind;
	struct rpc_server *s;
	const struct rpc_method *m;      /* NULL for a generic (unknown method) call */
	void *reg;                       /* grpc_server_register_method handle */
	grpc_call *call;
	gpr_timespec deadline;
	grpc_metadata_array md;
	grpc_call_details details;       /* generic calls */
	grpc_byte_buffer *payload;
	grpc_byte_buffer *resp;
	grpc_slice status_details;
	grpc_metadata reply_md;
	int cancelled;
	int in_flight;                   /* counted in s->active */
	char request_id[RSSP_MAX_ID_LEN + 1];
	long long peer_uid;
	struct call *next;               /* work queue */
};

struct rpc_server {
	struct rpc_server_opts o;
	char socket_path[108];
	int listen_fd;
	grpc_server *server;
	grpc_completion_queue *cq;
	grpc_server_credentials *creds;
	void **reg;                      /* per method */
	atomic_int live;                 /* posted requests and calls not yet freed */
	atomic_int active;               /* calls taken before the stop, not yet answered */
	atomic_int stopping;             /* stop asked: new calls are refused */
	atomic_int shut;                 /* grpc_server_shutdown_and_notify called */
	int shutdown_tag;                /* its address is the tag */
	/* peer uid of each accepted fd (gRPC names a call's peer "fd:N") */
	pthread_mutex_t fd_lock;
	long long *fd_uid;
	/* worker pool */
	pthread_mutex_t q_lock;
	pthread_cond_t q_cond;
	struct call *q_head, *q_tail;
	int q_stop;
	pthread_t *workers;
	unsigned n_workers;
	/* the slow pool (key generation): its own queue and threads, same lock */
	pthread_cond_t sq_cond;
	struct call *sq_head, *sq_tail;
	unsigned sq_len;
	pthread_t *slow_workers;
	unsigned n_slow_workers;
	pthread_t cq_thread;
	int grpc_inited;
	atomic_ullong probes;            /* probe_method calls not yet in the audit log */
};

static const char REPLY_MD_KEY[] = "rssp-engine";
static const char REPLY_MD_VAL[] = "v1";

int
rpc_status_of(int err)
{
	switch (err) {
	case 0:
		return GRPC_STATUS_OK;
	case RSSP_E_INVAL:
	case RSSP_E_UNSUPPORTED:
		return GRPC_STATUS_INVALID_ARGUMENT;
	case RSSP_E_DENIED:
	case RSSP_E_REPLAY:
		return GRPC_STATUS_PERMISSION_DENIED;
	case RSSP_E_EXPIRED:
		return GRPC_STATUS_FAILED_PRECONDITION;
	case RSSP_E_EXHAUSTED:
	case RSSP_E_TOOBIG:
		return GRPC_STATUS_RESOURCE_EXHAUSTED;
	case RSSP_E_HSM:
	case RSSP_E_UNAVAILABLE:
		return GRPC_STATUS_UNAVAILABLE;
	default:
		return GRPC_STATUS_INTERNAL;
	}
}

/* ---- helpers ---- */

/* Printable ASCII only, bounded: request ids and method names are peer strings. */
static void
sanitise(char *dst, size_t dstsz, const char *src, size_t len)
{
	size_t i;

	if (len > dstsz - 1)
		len = dstsz - 1;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)src[i];
		dst[i] = (c > 0x20 && c < 0x7f && c != '"' && c != '\\') ? (char)c : '?';
	}
	dst[len] = '\0';
}

static void
call_request_id(struct call *c)
{
	size_t i;

	c->request_id[0] = '\0';
	for (i = 0; i < c->md.count; i++) {
		const grpc_slice *k = &c->md.metadata[i].key;
		const grpc_slice *v = &c->md.metadata[i].value;
		if (GRPC_SLICE_LENGTH(*k) == 12 &&
		    memcmp(GRPC_SLICE_START_PTR(*k), "x-request-id", 12) == 0) {
			sanitise(c->request_id, sizeof(c->request_id),
			    (const char *)GRPC_SLICE_START_PTR(*v), GRPC_SLICE_LENGTH(*v));
			return;
		}
	}
}

static void
call_peer_uid(struct call *c)
{
	char *peer = grpc_call_get_peer(c->call);
	char *end;
	long fd;

	c->peer_uid = -1;
	if (peer != NULL && strncmp(peer, "fd:", 3) == 0) {
		fd = strtol(peer + 3, &end, 10);
		if (*end == '\0' && fd >= 0 && fd < RPC_MAX_FDS) {
			pthread_mutex_lock(&c->s->fd_lock);
			c->peer_uid = c->s->fd_uid[fd];
			pthread_mutex_unlock(&c->s->fd_lock);
		}
	}
	gpr_free(peer);
}

static void
audit_or_log(struct rpc_server *s, const struct audit_record *r)
{
	if (audit_write(s->o.audit, r) != 0)
		log_error("cannot write audit record for %s", r->event);
}

static void
call_free(struct call *c)
{
	if (c == NULL)
		return;
	grpc_metadata_array_destroy(&c->md);
	if (c->m == NULL)
		grpc_call_details_destroy(&c->details);
	if (c->payload != NULL)
		grpc_byte_buffer_destroy(c->payload);
	if (c->resp != NULL)
		grpc_byte_buffer_destroy(c->resp);
	grpc_slice_unref(c->status_details);
	if (c->call != NULL)
		grpc_call_unref(c->call);
	free(c);
}

/* Posts one request for method index mi (mi < 0: the generic request). Called before the
 * server starts and from the queue thread. */
static int
post_request(struct rpc_server *s, long mi)
{
	struct call *c;
	grpc_call_error e;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return RSSP_E_NOMEM;
	c->s = s;
	c->status_details = grpc_empty_slice();
	grpc_metadata_array_init(&c->md);
	atomic_fetch_add(&s->live, 1);
	if (mi >= 0) {
		c->kind = TAG_REGISTERED;
		c->m = &s->o.methods[mi];
		c->reg = s->reg[mi];
		e = grpc_server_request_registered_call(s->server, c->reg, &c->call, &c->deadline,
		    &c->md, &c->payload, s->cq, s->cq, c);
	} else {
		c->kind = TAG_GENERIC;
		grpc_call_details_init(&c->details);
		e = grpc_server_request_call(s->server, &c->call, &c->details, &c->md, s->cq, s->cq, c);
	}
	if (e != GRPC_CALL_OK) {
		log_error("cannot post a request: %d", (int)e);
		atomic_fetch_sub(&s->live, 1);
		call_free(c);
		return RSSP_E_INTERNAL;
	}
	return 0;
}

/* Starts the final batch of a call: initial metadata, the response message when there
 * is one, the status, and the close. Its completion (TAG_DONE) frees the call. */
static void
reply(struct call *c, grpc_status_code code, const char *msg)
{
	grpc_op ops[4];
	grpc_op *op = ops;
	grpc_call_error e;

	memset(ops, 0, sizeof(ops));
	c->kind = TAG_DONE;
	c->reply_md.key = grpc_slice_from_static_string(REPLY_MD_KEY);
	c->reply_md.value = grpc_slice_from_static_string(REPLY_MD_VAL);
	op->op = GRPC_OP_SEND_INITIAL_METADATA;
	op->data.send_initial_metadata.count = 1;
	op->data.send_initial_metadata.metadata = &c->reply_md;
	op++;
	if (code == GRPC_STATUS_OK && c->resp != NULL) {
		op->op = GRPC_OP_SEND_MESSAGE;
		op->data.send_message.send_message = c->resp;
		op++;
	}
	grpc_slice_unref(c->status_details);
	c->status_details = grpc_slice_from_copied_string(msg != NULL ? msg : "");
	op->op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	op->data.send_status_from_server.status = code;
	op->data.send_status_from_server.status_details = &c->status_details;
	op->data.send_status_from_server.trailing_metadata_count = 0;
	op++;
	op->op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	op->data.recv_close_on_server.cancelled = &c->cancelled;
	op++;
	e = grpc_call_start_batch(c->call, ops, (size_t)(op - ops), c, NULL);
	if (e != GRPC_CALL_OK) {
		log_error("cannot start the reply batch: %d", (int)e);
		if (c->in_flight)
			atomic_fetch_sub(&c->s->active, 1);
		atomic_fetch_sub(&c->s->live, 1);
		call_free(c);
	}
}

/* ---- workers ---- */

static void
work(struct call *c)
{
	struct rpc_server *s = c->s;
	struct sam_audit a;
	struct audit_record rec;
	grpc_byte_buffer_reader rd;
	grpc_slice in = grpc_empty_slice(), out;
	uint8_t *resp = NULL;
	size_t resplen = 0;
	grpc_status_code code;
	const char *msg;
	int r;

	memset(&a, 0, sizeof(a));
	rssp_log_set_request_id(c->request_id);
	if (!grpc_byte_buffer_reader_init(&rd, c->payload)) {
		a.reason = "cannot read the request";
		r = RSSP_E_INVAL;
	} else {
		in = grpc_byte_buffer_reader_readall(&rd);
		grpc_byte_buffer_reader_destroy(&rd);
		r = c->m->handler(s->o.handler_arg, GRPC_SLICE_START_PTR(in), GRPC_SLICE_LENGTH(in),
		    &resp, &resplen, &a);
	}
	grpc_slice_unref(in);
	grpc_byte_buffer_destroy(c->payload);
	c->payload = NULL;
	code = (grpc_status_code)rpc_status_of(r);
	msg = r == 0 ? "" : (a.reason != NULL ? a.reason : rssp_strerror(r));
	memset(&rec, 0, sizeof(rec));
	rec.event = a.event != NULL ? a.event : c->m->event;
	rec.request_id = c->request_id;
	rec.peer_uid = c->peer_uid;
	rec.method = c->m->path;
	rec.sam = &a;
	rec.result = r == 0 ? "ok" :
	    (code == GRPC_STATUS_UNAVAILABLE || code == GRPC_STATUS_INTERNAL) ? "error" : "refused";
	rec.reason = r == 0 ? a.reason : msg; /* on success: a note, e.g. a replayed approval */
	/* No record, no release: a signature whose decision is not in the log is not sent. */
	if (audit_write(s->o.audit, &rec) != 0) {
		log_error("audit log unavailable, refusing the call");
		if (r == 0 && s->o.undo != NULL)
			s->o.undo(s->o.handler_arg, &a); /* nothing released: nothing spent */
		code = GRPC_STATUS_UNAVAILABLE;
		msg = "audit log unavailable";
	}
	if (code == GRPC_STATUS_OK) {
		out = grpc_slice_from_copied_buffer((const char *)resp, resplen);
		c->resp = grpc_raw_byte_buffer_create(&out, 1);
		grpc_slice_unref(out);
	}
	if (resp != NULL) {
		/* responses may carry a SAD: wipe before free */
		memset(resp, 0, resplen);
		__asm__ __volatile__("" : : "r"(resp) : "memory");
		free(resp);
	}
	if (r != 0)
		log_info("%s refused: %s", c->m->path, msg);
	reply(c, code, msg);
	rssp_log_set_request_id(NULL);
}

static void *
worker_main(void *arg)
{
	struct rpc_server *s = arg;
	struct call *c;

	for (;;) {
		pthread_mutex_lock(&s->q_lock);
		while (s->q_head == NULL && !s->q_stop)
			pthread_cond_wait(&s->q_cond, &s->q_lock);
		if (s->q_head == NULL) {
			pthread_mutex_unlock(&s->q_lock);
			return NULL;
		}
		c = s->q_head;
		s->q_head = c->next;
		if (s->q_head == NULL)
			s->q_tail = NULL;
		pthread_mutex_unlock(&s->q_lock);
		c->next = NULL;
		work(c);
	}
}

static void *
slow_worker_main(void *arg)
{
	struct rpc_server *s = arg;
	struct call *c;
	id_t tid = (id_t)syscall(SYS_gettid);
	int prio = getpriority(PRIO_PROCESS, tid);

	/* key generation takes whole seconds of CPU (SoftHSM computes it on these cores):
	 * it yields to SignHash (10 more than the process's nice value; needs no privilege) */
	(void)setpriority(PRIO_PROCESS, tid, prio + 10 > 19 ? 19 : prio + 10);
	for (;;) {
		pthread_mutex_lock(&s->q_lock);
		while (s->sq_head == NULL && !s->q_stop)
			pthread_cond_wait(&s->sq_cond, &s->q_lock);
		if (s->sq_head == NULL) {
			pthread_mutex_unlock(&s->q_lock);
			return NULL;
		}
		c = s->sq_head;
		s->sq_head = c->next;
		if (s->sq_head == NULL)
			s->sq_tail = NULL;
		s->sq_len--;
		pthread_mutex_unlock(&s->q_lock);
		c->next = NULL;
		work(c);
	}
}

/* Queues c for the slow pool. Returns 0, or RSSP_E_EXHAUSTED when slow_queue wait. */
static int
enqueue_slow(struct rpc_server *s, struct call *c)
{
	int r = 0;

	pthread_mutex_lock(&s->q_lock);
	if (s->sq_len >= s->o.slow_queue) {
		r = RSSP_E_EXHAUSTED;
	} else {
		if (s->sq_tail != NULL)
			s->sq_tail->next = c;
		else
			s->sq_head = c;
		s->sq_tail = c;
		s->sq_len++;
		pthread_cond_signal(&s->sq_cond);
	}
	pthread_mutex_unlock(&s->q_lock);
	return r;
}

/* Whether opts.slow calls c slow; reads the payload, keeps it. */
static int
is_slow(struct call *c)
{
	grpc_byte_buffer_reader rd;
	grpc_slice in;
	int slow;

	if (c->s->o.slow == NULL || !grpc_byte_buffer_reader_init(&rd, c->payload))
		return 0;
	in = grpc_byte_buffer_reader_readall(&rd);
	grpc_byte_buffer_reader_destroy(&rd);
	slow = c->s->o.slow(c->m, GRPC_SLICE_START_PTR(in), GRPC_SLICE_LENGTH(in));
	grpc_slice_unref(in);
	return slow;
}

static void
enqueue(struct rpc_server *s, struct call *c)
{
	pthread_mutex_lock(&s->q_lock);
	if (s->q_tail != NULL)
		s->q_tail->next = c;
	else
		s->q_head = c;
	s->q_tail = c;
	pthread_cond_signal(&s->q_cond);
	pthread_mutex_unlock(&s->q_lock);
}

/* ---- completion queue thread ---- */

/* Refuses c before any handler runs: one audit record (event, "refused", reason) under
 * the method name method, then the status code with reason as its message. */
static void
refuse(struct call *c, const char *method, const char *event, grpc_status_code code,
    const char *reason)
{
	struct audit_record rec;

	memset(&rec, 0, sizeof(rec));
	rec.event = event;
	rec.request_id = c->request_id;
	rec.peer_uid = c->peer_uid;
	rec.method = method;
	rec.result = "refused";
	rec.reason = reason;
	audit_or_log(c->s, &rec);
	reply(c, code, reason);
}

static void
on_registered(struct call *c)
{
	struct rpc_server *s = c->s;

	call_request_id(c);
	call_peer_uid(c);
	if (!c->in_flight) {
		/* came after the stop: the engine does nothing, the client may retry elsewhere */
		refuse(c, c->m->path, c->m->event, GRPC_STATUS_UNAVAILABLE, "engine stopping");
		return;
	}
	if (c->payload == NULL) {
		refuse(c, c->m->path, c->m->event, GRPC_STATUS_INVALID_ARGUMENT,
		    "no request message");
		return;
	}
	if (grpc_byte_buffer_length(c->payload) > c->m->max_msg) {
		/* refused before anything is unpacked */
		refuse(c, c->m->path, AUDIT_RPC_TOO_LARGE, GRPC_STATUS_RESOURCE_EXHAUSTED,
		    "message too large");
		return;
	}
	if (is_slow(c)) {
		if (enqueue_slow(s, c) != 0)
			refuse(c, c->m->path, c->m->event, GRPC_STATUS_RESOURCE_EXHAUSTED,
			    "too many key generations waiting");
		return;
	}
	enqueue(s, c);
}

static void
on_generic(struct call *c)
{
	struct rpc_server *s = c->s;
	char method[129];

	if (s->o.probe_method != NULL &&
	    grpc_slice_str_cmp(c->details.method, s->o.probe_method) == 0) {
		/* a liveness probe (every 500 ms from each gateway): counted, not audited one
		 * by one (rpc_server_audit_probes) */
		atomic_fetch_add(&s->probes, 1);
		reply(c, GRPC_STATUS_UNIMPLEMENTED, "unknown method");
		return;
	}
	call_request_id(c);
	call_peer_uid(c);
	sanitise(method, sizeof(method), (const char *)GRPC_SLICE_START_PTR(c->details.method),
	    GRPC_SLICE_LENGTH(c->details.method));
	refuse(c, method, AUDIT_RPC_UNIMPLEMENTED, GRPC_STATUS_UNIMPLEMENTED, "unknown method");
}

/* gRPC's shutdown, once. It sends every connection a GOAWAY and a PING, and closes
 * the connection after the PING's ack once no call is left on it. So it starts only when
 * every call in flight has been answered: a connection closed right after its last
 * answer could lose that answer at the client (a write of the client's fails with
 * EPIPE before it has read it), while the client acks the PING only after reading all
 * that came before it. Called by the queue thread, or where none runs (rpc_server_run
 * failing before it serves, rpc_server_free). */
static void
begin_shutdown(struct rpc_server *s)
{
	if (atomic_exchange(&s->shut, 1) == 0)
		grpc_server_shutdown_and_notify(s->server, s->cq, &s->shutdown_tag);
}

/* The queue thread. A stop (s->stopping) goes: new calls refused (UNAVAILABLE, audited,
 * requests still posted so that none waits unanswered), the calls in flight answered,
 * then begin_shutdown(); after drain_seconds the calls left are cancelled. */
static void *
cq_main(void *arg)
{
	struct rpc_server *s = arg;
	int shutdown_seen = 0, queue_shut = 0, cancelled = 0;
	struct timespec start = { 0, 0 }, now;
	grpc_event ev;
	struct call *c;
	long mi;

	for (;;) {
		/* wakes at least every 100 ms: a stop is acted on that soon */
		ev = grpc_completion_queue_next(s->cq,
		    gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(100, GPR_TIMESPAN)),
		    NULL);
		if (ev.type == GRPC_QUEUE_SHUTDOWN)
			break;
		if (ev.type == GRPC_OP_COMPLETE) {
			if (ev.tag == &s->shutdown_tag) {
				shutdown_seen = 1;
			} else {
				c = ev.tag;
				switch (c->kind) {
				case TAG_REGISTERED:
				case TAG_GENERIC:
					if (!ev.success) {
						atomic_fetch_sub(&s->live, 1);
						call_free(c);
						break;
					}
					/* taken before the stop: the drain waits for its answer
					 * (one after it is refused at once, not counted, so that
					 * a stream of new calls cannot hold the drain open) */
					if (!atomic_load(&s->stopping)) {
						c->in_flight = 1;
						atomic_fetch_add(&s->active, 1);
					}
					mi = c->kind == TAG_GENERIC ? -1 : (long)(c->m - s->o.methods);
					if (!atomic_load(&s->shut) && post_request(s, mi) != 0)
						log_error("cannot post a new request");
					if (c->kind == TAG_GENERIC)
						on_generic(c);
					else
						on_registered(c);
					break;
				case TAG_DONE:
					if (c->in_flight)
						atomic_fetch_sub(&s->active, 1);
					atomic_fetch_sub(&s->live, 1);
					call_free(c);
					break;
				default:
					break;
				}
			}
		}
		if (atomic_load(&s->stopping)) {
			clock_gettime(CLOCK_MONOTONIC, &now);
			if (start.tv_sec == 0)
				start = now;
			if (atomic_load(&s->active) == 0)
				begin_shutdown(s);
			if (!cancelled && now.tv_sec - start.tv_sec >= (time_t)s->o.drain_seconds) {
				log_warn("drain timeout: cancelling %d calls", atomic_load(&s->active));
				begin_shutdown(s); /* gRPC cancels only after a shutdown */
				grpc_server_cancel_all_calls(s->server);
				cancelled = 1;
			}
		}
		if (shutdown_seen && atomic_load(&s->live) == 0 && !queue_shut) {
			grpc_completion_queue_shutdown(s->cq);
			queue_shut = 1;
		}
	}
	return NULL;
}

/* ---- socket ---- */

static int
make_socket_dir(const char *path)
{
	char dir[108], *slash;
	struct stat st;

	snprintf(dir, sizeof(dir), "%s", path);
	if ((slash = strrchr(dir, '/')) == NULL || slash == dir)
		return 0;
	*slash = '\0';
	if (stat(dir, &st) == 0)
		return S_ISDIR(st.st_mode) ? 0 : RSSP_E_IO;
	if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
		log_error("cannot create socket directory %s: %s", dir, strerror(errno));
		return RSSP_E_IO;
	}
	if (chmod(dir, 0750) != 0)
		return RSSP_E_IO;
	return 0;
}

/* 1 if a process accepts connections on path. */
static int
socket_is_live(const struct sockaddr_un *sa)
{
	int fd, live;

	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return 1;
	live = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0 || errno == EAGAIN;
	close(fd);
	return live;
}

static int
bind_socket(struct rpc_server *s)
{
	struct sockaddr_un sa;
	struct stat st;
	int fd = -1, r = RSSP_E_IO;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(s->o.socket_path) >= sizeof(sa.sun_path)) {
		r = RSSP_E_INVAL;
		goto out;
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", s->o.socket_path);
	if ((r = make_socket_dir(sa.sun_path)) != 0)
		goto out;
	r = RSSP_E_IO;
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0)
		goto out;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		if (errno != EADDRINUSE) {
			log_error("cannot bind %s: %s", sa.sun_path, strerror(errno));
			goto out;
		}
		if (lstat(sa.sun_path, &st) != 0 || !S_ISSOCK(st.st_mode)) {
			log_error("%s exists and is not a socket", sa.sun_path);
			goto out;
		}
		if (socket_is_live(&sa)) {
			log_error("%s is served by a live process; refusing to start", sa.sun_path);
			r = RSSP_E_CONFLICT;
			goto out;
		}
		log_info("removing stale socket %s", sa.sun_path);
		if (unlink(sa.sun_path) != 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
			log_error("cannot bind %s: %s", sa.sun_path, strerror(errno));
			goto out;
		}
	}
	if (chmod(sa.sun_path, 0660) != 0 || listen(fd, 128) != 0) {
		log_error("cannot listen on %s: %s", sa.sun_path, strerror(errno));
		unlink(sa.sun_path);
		goto out;
	}
	snprintf(s->socket_path, sizeof(s->socket_path), "%s", sa.sun_path);
	s->listen_fd = fd;
	fd = -1;
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	return r;
}

static int
uid_allowed(const struct rpc_server *s, uid_t uid)
{
	size_t i;

	for (i = 0; i < s->o.n_uids; i++)
		if (s->o.uids[i] == uid)
			return 1;
	return 0;
}

static void
accept_one(struct rpc_server *s)
{
	struct ucred cr;
	socklen_t crlen = sizeof(cr);
	struct audit_record rec;
	int fd;

	fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
			log_warn("accept: %s", strerror(errno));
		return;
	}
	memset(&rec, 0, sizeof(rec));
	rec.peer_uid = -1;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) != 0 || fd >= RPC_MAX_FDS ||
	    !uid_allowed(s, cr.uid)) {
		if (crlen == sizeof(cr))
			rec.peer_uid = (long long)cr.uid;
		rec.event = AUDIT_PEER_REFUSED;
		rec.result = "refused";
		rec.reason = "peer uid not allowed";
		audit_or_log(s, &rec);
		log_warn("refused a connection from uid %lld", rec.peer_uid);
		close(fd);
		return;
	}
	pthread_mutex_lock(&s->fd_lock);
	s->fd_uid[fd] = (long long)cr.uid;
	pthread_mutex_unlock(&s->fd_lock);
	grpc_server_add_channel_from_fd(s->server, fd, s->creds); /* gRPC owns fd from here */
}

/* ---- lifecycle ---- */

int
rpc_server_new(const struct rpc_server_opts *o, struct rpc_server **sp)
{
	struct rpc_server *s = NULL;
	grpc_arg arg;
	grpc_channel_args args;
	size_t i;
	int r = RSSP_E_NOMEM;

	if (o->n_methods == 0 || o->workers == 0 || o->workers > 64 || o->slow_workers > 64 ||
	    o->audit == NULL) {
		r = RSSP_E_INVAL;
		goto out;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL)
		goto out;
	s->o = *o;
	if (s->o.drain_seconds == 0)
		s->o.drain_seconds = 30;
	if (s->o.slow_workers == 0)
		s->o.slow_workers = 1;
	if (s->o.slow_queue == 0)
		s->o.slow_queue = 16;

	s->listen_fd = -1;
	pthread_mutex_init(&s->fd_lock, NULL);
	pthread_mutex_init(&s->q_lock, NULL);
	pthread_cond_init(&s->q_cond, NULL);
	pthread_cond_init(&s->sq_cond, NULL);
	if ((s->fd_uid = malloc(RPC_MAX_FDS * sizeof(*s->fd_uid))) == NULL ||
	    (s->reg = calloc(o->n_methods, sizeof(*s->reg))) == NULL)
		goto out;
	for (i = 0; i < RPC_MAX_FDS; i++)
		s->fd_uid[i] = -1;
	if ((r = bind_socket(s)) != 0)
		goto out;
	grpc_init();
	s->grpc_inited = 1;
	arg.type = GRPC_ARG_INTEGER;
	arg.key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
	arg.value.integer = RPC_CHANNEL_MAX_MSG;
	args.num_args = 1;
	args.args = &arg;
	r = RSSP_E_INTERNAL;
	if ((s->cq = grpc_completion_queue_create_for_next(NULL)) == NULL ||
	    (s->server = grpc_server_create(&args, NULL)) == NULL ||
	    (s->creds = grpc_insecure_server_credentials_create()) == NULL)
		goto out;
	grpc_server_register_completion_queue(s->server, s->cq, NULL);
	for (i = 0; i < o->n_methods; i++) {
		s->reg[i] = grpc_server_register_method(s->server, o->methods[i].path, NULL,
		    GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
		if (s->reg[i] == NULL)
			goto out;
	}
	*sp = s;
	s = NULL;
	r = 0;
out:
	rpc_server_free(s);
	return r;
}

void
rpc_server_set_handler_arg(struct rpc_server *s, void *arg)
{
	s->o.handler_arg = arg;
}

int
rpc_server_run(struct rpc_server *s, int stop_fd)
{
	struct pollfd pf[2];
	size_t i;
	unsigned w;
	int r = RSSP_E_INTERNAL;

	grpc_server_start(s->server);
	/* one request per worker and method stays posted: concurrent calls are matched at
	 * once instead of waiting for the queue thread to re-post */
	for (i = 0; i < s->o.n_methods; i++)
		for (w = 0; w < s->o.workers; w++)
			if (post_request(s, (long)i) != 0)
				goto stop;
	if (post_request(s, -1) != 0)
		goto stop;
	if ((s->workers = calloc(s->o.workers, sizeof(*s->workers))) == NULL)
		goto stop;
	for (w = 0; w < s->o.workers; w++) {
		if (pthread_create(&s->workers[w], NULL, worker_main, s) != 0)
			goto stop;
		s->n_workers++;
	}
	if ((s->slow_workers = calloc(s->o.slow_workers, sizeof(*s->slow_workers))) == NULL)
		goto stop;
	for (w = 0; w < s->o.slow_workers; w++) {
		if (pthread_create(&s->slow_workers[w], NULL, slow_worker_main, s) != 0)
			goto stop;
		s->n_slow_workers++;
	}
	if (pthread_create(&s->cq_thread, NULL, cq_main, s) != 0) {
		/* without the queue thread nothing can drain: stop hard */
		log_error("cannot start the completion queue thread");
		abort();
	}
	log_info("serving on %s with %u workers and %u for key generation", s->socket_path,
	    s->o.workers, s->o.slow_workers);
	r = 0;
	for (;;) {
		pf[0].fd = s->listen_fd;
		pf[0].events = POLLIN;
		pf[1].fd = stop_fd;
		pf[1].events = POLLIN;
		if (poll(pf, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_error("poll: %s", strerror(errno));
			r = RSSP_E_IO;
			break;
		}
		if (pf[1].revents != 0)
			break;
		if (pf[0].revents & POLLIN)
			accept_one(s);
	}
	log_info("stopping: draining %d calls", atomic_load(&s->active));
	unlink(s->socket_path);
	close(s->listen_fd);
	s->listen_fd = -1;
	atomic_store(&s->stopping, 1); /* the queue thread drains, then shuts gRPC down */
	pthread_join(s->cq_thread, NULL);
	log_info("drained");
	return r;
stop:
	/* failed before serving: nothing is in flight but the posted requests */
	atomic_store(&s->stopping, 1);
	begin_shutdown(s);
	if (pthread_create(&s->cq_thread, NULL, cq_main, s) != 0)
		abort();
	pthread_join(s->cq_thread, NULL);
	return r;
}

void
rpc_server_free(struct rpc_server *s)
{
	unsigned w;

	if (s == NULL)
		return;
	pthread_mutex_lock(&s->q_lock);
	s->q_stop = 1;
	pthread_cond_broadcast(&s->q_cond);
	pthread_cond_broadcast(&s->sq_cond);
	pthread_mutex_unlock(&s->q_lock);
	for (w = 0; w < s->n_workers; w++)
		pthread_join(s->workers[w], NULL);
	free(s->workers);
	for (w = 0; w < s->n_slow_workers; w++)
		pthread_join(s->slow_workers[w], NULL);
	free(s->slow_workers);
	if (s->server != NULL && !atomic_load(&s->shut)) {
		/* never served: a shutdown must still complete before destroy */
		grpc_event ev;
		begin_shutdown(s);
		do
			ev = grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
		while (!(ev.type == GRPC_OP_COMPLETE && ev.tag == &s->shutdown_tag));
		grpc_server_destroy(s->server);
		grpc_completion_queue_shutdown(s->cq);
		do
			ev = grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
		while (ev.type != GRPC_QUEUE_SHUTDOWN);
	} else if (s->server != NULL) {
		grpc_server_destroy(s->server);
	} else if (s->cq != NULL) {
		grpc_completion_queue_shutdown(s->cq);
		(void)grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	}
	if (s->cq != NULL)
		grpc_completion_queue_destroy(s->cq);
	if (s->creds != NULL)
		grpc_server_credentials_release(s->creds);
	if (s->listen_fd >= 0) {
		close(s->listen_fd);
		unlink(s->socket_path);
	}
	if (s->grpc_inited)
		grpc_shutdown();
	free(s->fd_uid);
	free(s->reg);
	pthread_mutex_destroy(&s->fd_lock);
	pthread_mutex_destroy(&s->q_lock);
	pthread_cond_destroy(&s->q_cond);
	pthread_cond_destroy(&s->sq_cond);
	free(s);
}

long long
rpc_server_audit_probes(struct rpc_server *s)
{
	struct audit_record rec;
	char reason[64];
	unsigned long long n;
	int r;

	if ((n = atomic_exchange(&s->probes, 0)) == 0)
		return 0;
	snprintf(reason, sizeof(reason), "%llu liveness probes", n);
	memset(&rec, 0, sizeof(rec));
	rec.event = AUDIT_ENGINE_PROBES;
	rec.peer_uid = -1;
	rec.method = s->o.probe_method;
	rec.result = "ok";
	rec.reason = reason;
	if ((r = audit_write(s->o.audit, &rec)) != 0) {
		atomic_fetch_add(&s->probes, n); /* counted in the next line */
		return r;
	}
	return (long long)n;
}

/* ---- liveness probe (a client of this very server) ---- */

int
rpc_probe(const char *socket_path, unsigned timeout_ms, int *statusp)
{
	struct grpc_unary_result u;
	grpc_channel *ch;
	int r = RSSP_E_UNAVAILABLE;

	grpc_init();
	if ((ch = grpc_unary_channel_new(socket_path, NULL)) == NULL) {
		r = RSSP_E_NOMEM;
		goto out;
	}
	if (grpc_unary(ch, NULL, RPC_PROBE_METHOD, timeout_ms, NULL, (const uint8_t *)"", 0,
	    NULL, NULL, &u) == 0) {
		*statusp = u.status;
		r = u.status == GRPC_STATUS_UNIMPLEMENTED ? 0 : RSSP_E_UNAVAILABLE;
		grpc_unary_result_release(&u);
	}
	grpc_channel_destroy(ch);
out:
	grpc_shutdown();
	return r;
}
