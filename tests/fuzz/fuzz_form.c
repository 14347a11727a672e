/* The application/x-www-form-urlencoded body parser (auth/login takes a form body).
 * form_parse is static in gateway/server.c, which this target does not edit: it
 * compiles server.c into itself to reach it (the fuzzer then provides server.c's
 * symbols instead of rssp_gateway_lib's server.o). What parses is an object of strings
 * with non-empty, distinct keys. */
#include "../../gateway/server.c"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *o, *v;
	const char *k;
	char *body;

	/* the server hands form_parse the body NUL-terminated (gw_request.raw_body) */
	if (size > 64 * 1024 || (body = malloc(size + 1)) == NULL)
		return 0;
	memcpy(body, data, size);
	body[size] = '\0';
	if ((o = form_parse(body, size)) != NULL) {
		json_object_foreach(o, k, v) {
			if (*k == '\0' || !json_is_string(v))
				__builtin_trap();
		}
		json_decref(o);
	}
	free(body);
	return 0;
}
