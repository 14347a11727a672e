/* grpc_unary.c - one unary gRPC call on a pluck queue (grpc_unary.h). */
#include "grpc_unary.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>

grpc_channel *
grpc_unary_channel_new(const char *socket_path, const grpc_channel_args *args)
{
	grpc_channel_credentials *creds;
	grpc_channel *ch;
	char *target;
	size_t n = strlen(socket_path) + 6;

	if ((target = malloc(n)) == NULL)
		return NULL;
	snprintf(target, n, "unix:%s", socket_path);
	creds = grpc_insecure_credentials_create();
	ch = grpc_channel_create(target, creds, args);
	grpc_channel_credentials_release(creds);
	free(target);
	return ch;
}

static gpr_timespec
deadline_in(unsigned ms)
{
	return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
	    gpr_time_from_millis((int64_t)ms, GPR_TIMESPAN));
}

static int
has_key(const grpc_metadata_array *md, const char *key)
{
	size_t i;

	for (i = 0; i < md->count; i++)
		if (grpc_slice_str_cmp(md->metadata[i].key, key) == 0)
			return 1;
	return 0;
}

/* A malloc'd copy of the slice's bytes with a NUL after them. */
static void *
slice_dup(grpc_slice s, size_t *lenp)
{
	size_t n = GRPC_SLICE_LENGTH(s);
	char *p;

	if ((p = malloc(n + 1)) == NULL)
		return NULL;
	memcpy(p, GRPC_SLICE_START_PTR(s), n);
	p[n] = '\0';
	*lenp = n;
	return p;
}

int
grpc_unary(grpc_channel *ch, void *reg, const char *path, unsigned deadline_ms,
    const char *request_id, const uint8_t *req, size_t reqlen, atomic_uint *cancel_gen,
    const char *mark, struct grpc_unary_result *res)
{
	grpc_completion_queue *cq = NULL;
	grpc_call *call = NULL;
	grpc_metadata md;
	grpc_metadata_array init_md, trail_md;
	grpc_byte_buffer *send = NULL, *recv = NULL;
	grpc_byte_buffer_reader rd;
	grpc_slice details = grpc_empty_slice(), s, rid = grpc_empty_slice(), in, mslice;
	grpc_status_code status = GRPC_STATUS_UNKNOWN;
	grpc_op ops[6], *op = ops;
	grpc_event ev;
	struct grpc_unary_result u;
	gpr_timespec deadline = deadline_in(deadline_ms);
	char ridbuf[129];
	size_t i, n;
	unsigned gen = cancel_gen != NULL ? atomic_load(cancel_gen) : 0;
	int r = RSSP_E_NOMEM;

	memset(&u, 0, sizeof(u));
	memset(res, 0, sizeof(*res));
	grpc_metadata_array_init(&init_md);
	grpc_metadata_array_init(&trail_md);
	memset(ops, 0, sizeof(ops));
	if ((cq = grpc_completion_queue_create_for_pluck(NULL)) == NULL)
		goto out;
	if (reg != NULL) {
		call = grpc_channel_create_registered_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
		    reg, deadline, NULL);
	} else {
		mslice = grpc_slice_from_copied_string(path);
		call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, mslice,
		    NULL, deadline, NULL);
		grpc_slice_unref(mslice);
	}
	if (call == NULL) {
		r = RSSP_E_INTERNAL;
		goto out;
	}
	s = grpc_slice_from_copied_buffer((const char *)req, reqlen);
	send = grpc_raw_byte_buffer_create(&s, 1);
	grpc_slice_unref(s);

	op->op = GRPC_OP_SEND_INITIAL_METADATA;
	if (request_id != NULL && request_id[0] != '\0') {
		/* metadata values must be printable ASCII; the engine sanitises again */
		n = strlen(request_id);
		if (n > 128)
			n = 128;
		for (i = 0; i < n; i++) {
			unsigned char c = (unsigned char)request_id[i];
			ridbuf[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
		}
		ridbuf[n] = '\0';
		rid = grpc_slice_from_copied_string(ridbuf);
		md.key = grpc_slice_from_static_string("x-request-id");
		md.value = rid;
		op->data.send_initial_metadata.count = 1;
		op->data.send_initial_metadata.metadata = &md;
	}
	op++;
	op->op = GRPC_OP_SEND_MESSAGE;
	op->data.send_message.send_message = send;
	op++;
	op->op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	op++;
	op->op = GRPC_OP_RECV_INITIAL_METADATA;
	op->data.recv_initial_metadata.recv_initial_metadata = &init_md;
	op++;
	op->op = GRPC_OP_RECV_MESSAGE;
	op->data.recv_message.recv_message = &recv;
	op++;
	op->op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	op->data.recv_status_on_client.trailing_metadata = &trail_md;
	op->data.recv_status_on_client.status = &status;
	op->data.recv_status_on_client.status_details = &details;
	op++;
	if (grpc_call_start_batch(call, ops, (size_t)(op - ops), call, NULL) != GRPC_CALL_OK) {
		r = RSSP_E_INTERNAL;
		goto out;
	}
	/* wait in slices so that a change of *cancel_gen can cut the call short */
	for (;;) {
		ev = grpc_completion_queue_pluck(cq, call, deadline_in(100), NULL);
		if (ev.type != GRPC_QUEUE_TIMEOUT)
			break;
		if (!u.cancelled && cancel_gen != NULL && atomic_load(cancel_gen) != gen) {
			grpc_call_cancel_with_status(call, GRPC_STATUS_CANCELLED,
			    "the engine stopped answering", NULL);
			u.cancelled = 1;
		}
	}
	if (ev.type != GRPC_OP_COMPLETE) {
		r = RSSP_E_INTERNAL;
		goto out;
	}
	u.status = (int)status;
	u.marked = mark != NULL && has_key(&init_md, mark);
	r = RSSP_E_NOMEM;
	if (GRPC_SLICE_LENGTH(details) > 0 && (u.details = slice_dup(details, &n)) == NULL)
		goto out;
	if (recv != NULL) {
		if (!grpc_byte_buffer_reader_init(&rd, recv)) {
			r = RSSP_E_INTERNAL;
			goto out;
		}
		in = grpc_byte_buffer_reader_readall(&rd);
		grpc_byte_buffer_reader_destroy(&rd);
		u.resp = slice_dup(in, &u.resplen);
		grpc_slice_unref(in);
		if (u.resp == NULL)
			goto out;
	}
	*res = u; /* the caller's from here */
	memset(&u, 0, sizeof(u));
	r = 0;
out:
	grpc_unary_result_release(&u);
	if (send != NULL)
		grpc_byte_buffer_destroy(send);
	if (recv != NULL)
		grpc_byte_buffer_destroy(recv);
	grpc_slice_unref(details);
	grpc_slice_unref(rid);
	grpc_metadata_array_destroy(&init_md);
	grpc_metadata_array_destroy(&trail_md);
	if (call != NULL)
		grpc_call_unref(call);
	if (cq != NULL) {
		grpc_completion_queue_shutdown(cq);
		while (grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME),
		    NULL).type != GRPC_QUEUE_SHUTDOWN)
			;
		grpc_completion_queue_destroy(cq);
	}
	return r;
}

void
grpc_unary_result_release(struct grpc_unary_result *res)
{
	free(res->details);
	free(res->resp);
	memset(res, 0, sizeof(*res));
}
