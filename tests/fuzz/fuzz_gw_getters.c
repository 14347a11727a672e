/* The gateway's JSON field getters (getters.c) and the signing modules' decoders
 * (signing.h: base64, bytea, uuid) on untrusted request bodies. The first input byte
 * picks the shape: a whole JSON body as the client sends it, or the rest of the input as
 * the string value of one field. Every getter must either succeed with an out-value
 * within its bounds or set a 400 reply naming the field. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "gw.h"
#include "gw_internal.h"
#include "signing.h"
#include "fuzz.h"

static void
check_reply(const struct gw_reply *rep, int r)
{
	/* a failing getter has set 400 (or failed to allocate); a success sets nothing */
	if (r == 0 && rep->status != 0)
		__builtin_trap();
	if (r != 0 && r != RSSP_E_NOMEM && rep->status != 400)
		__builtin_trap();
}

static void
run_getters(json_t *body)
{
	struct gw_request req;
	struct gw_reply rep;
	const char *s = NULL, **items = NULL;
	long long i = 0;
	bool b = false;
	uint8_t *buf = NULL;
	size_t len = 0, n = 0, k;
	int r;

	memset(&req, 0, sizeof(req));
	req.body = body;
	req.request_id = "fuzz";

#define ONE(call) do { memset(&rep, 0, sizeof(rep)); r = (call); check_reply(&rep, r); \
	gw_reply_release(&rep); } while (0)
	ONE(gw_get_str(&req, &rep, "f", 64, true, &s));
	if (r == 0 && (s == NULL || strlen(s) == 0 || strlen(s) > 64))
		__builtin_trap();
	ONE(gw_get_str(&req, &rep, "f", 4096, false, &s));
	ONE(gw_get_int(&req, &rep, "f", -5, 1000, false, 7, &i));
	if (r == 0 && (i < -5 || i > 1000))
		__builtin_trap();
	ONE(gw_get_bool(&req, &rep, "f", true, false, &b));
	ONE(gw_get_b64(&req, &rep, "f", 32, true, &buf, &len));
	if (r == 0 && (buf == NULL || len == 0 || len > 32))
		__builtin_trap();
	free(buf);
	buf = NULL;
	ONE(gw_get_b64(&req, &rep, "f", 4096, false, &buf, &len));
	if (r == 0 && buf != NULL && (len == 0 || len > 4096))
		__builtin_trap();
	free(buf);
	buf = NULL;
	ONE(gw_get_str_array(&req, &rep, "f", 8, 16, true, &items, &n));
	if (r == 0) {
		if (n == 0 || n > 8)
			__builtin_trap();
		for (k = 0; k < n; k++)
			if (strlen(items[k]) == 0 || strlen(items[k]) > 16)
				__builtin_trap();
	}
	free(items);
	items = NULL;
	ONE(sg_get_uuid(&req, &rep, "f", false, &s));
	if (r == 0 && s != NULL && !gw_is_uuid(s))
		__builtin_trap();
	ONE(sg_get_device_uuid(&req, &rep, &s));
#undef ONE
}

/* The decoders of signing.h and buf.h, and the algo.h lookups, on a NUL-terminated string: what decodes re-encodes to
 * the same bytes. */
static void
run_decoders(const char *s)
{
	uint8_t *out = NULL;
	size_t len = 0;
	char *enc;

	if (rssp_unb64(s, &out, &len) == 0) {
		uint8_t *again = NULL;
		size_t alen = 0;

		/* not every accepted text is canonical, but its bytes survive a round trip */
		if (len > strlen(s) / 4 * 3)
			__builtin_trap();
		if ((enc = rssp_b64(out, len)) != NULL && len > 0) {
			if (rssp_unb64(enc, &again, &alen) != 0 || alen != len || memcmp(again, out, len) != 0)
				__builtin_trap();
			free(again);
		}
		free(enc);
		free(out);
		out = NULL;
	}
	if (sg_unbytea(s, &out, &len) == 0) {
		if ((enc = sg_bytea(out, len)) != NULL && strcasecmp(enc, s) != 0)
			__builtin_trap();
		free(enc);
		free(out);
	}
	(void)gw_is_uuid(s);
	(void)rssp_hash_alg_by_oid(s);
	(void)rssp_key_alg_by_name(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *body = NULL, *v;
	char *s;

	if (size < 1 || size > 64 * 1024)
		return 0;
	switch (data[0] % 3) {
	case 0: /* a whole body, parsed as the server parses it */
		body = json_loadb((const char *)data + 1, size - 1, JSON_REJECT_DUPLICATES, NULL);
		if (!json_is_object(body)) {
			json_decref(body);
			return 0;
		}
		break;
	case 1: /* one string field */
		if ((v = json_stringn((const char *)data + 1, size - 1)) == NULL)
			return 0;
		body = json_pack("{s:o}", "f", v);
		break;
	default: /* an array of strings, split at NUL bytes */
		body = json_pack("{s:[]}", "f");
		if (body == NULL)
			return 0;
		{
			size_t i = 1, st = 1;
			for (; i <= size; i++)
				if (i == size || data[i] == '\0') {
					if ((v = json_stringn((const char *)data + st, i - st)) != NULL)
						json_array_append_new(json_object_get(body, "f"), v);
					st = i + 1;
				}
		}
		break;
	}
	if (body == NULL)
		return 0;
	run_getters(body);
	json_decref(body);
	if ((s = malloc(size)) != NULL) {
		memcpy(s, data + 1, size - 1);
		s[size - 1] = '\0';
		run_decoders(s);
		free(s);
	}
	return 0;
}
