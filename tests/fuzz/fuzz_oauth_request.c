/* The credential authorization an oauth2/authorize URL asks for (oauth.c): the
 * authorization_details JSON, or scope=credential with comma-separated base64url hashes,
 * and the redirect URI rule. credential_request and redirect_uri_ok are static in
 * gateway/oauth.c: this target compiles oauth.c into itself, as fuzz_form does with
 * server.c. What parses is an rssp credentials/authorize body with a credentialID, a
 * hashAlgorithmOID and 1.. hashes, all strings. */
#include "../../gateway/oauth.c"
#include "fuzz.h"

static void
check(json_t *q)
{
	struct gw_request req;
	json_t *body = NULL, *v;
	const char *code;
	char text[300];
	size_t i;

	memset(&req, 0, sizeof(req));
	req.body = q;
	if (credential_request(&req, &body, &code, text, sizeof(text)) == 0) {
		if (!json_is_string(json_object_get(body, "credentialID")) ||
		    !json_is_string(json_object_get(body, "hashAlgorithmOID")) ||
		    json_array_size(json_object_get(body, "hashes")) == 0)
			__builtin_trap();
		json_array_foreach(json_object_get(body, "hashes"), i, v)
			if (!json_is_string(v))
				__builtin_trap();
		json_decref(body);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s;
	json_t *q, *v;

	if (size > 16 * 1024 || (s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (strlen(s) == size && (v = json_string(s)) != NULL) {
		/* as authorization_details */
		q = json_pack("{s:O}", "authorization_details", v);
		check(q);
		json_decref(q);
		/* as the hashes of scope=credential */
		q = json_pack("{s:s,s:s,s:s,s:O}", "scope", "credential", "credentialID", "c",
		    "hashAlgorithmOID", "2.16.840.1.101.3.4.2.1", "hashes", v);
		check(q);
		json_decref(q);
		(void)redirect_uri_ok(s);
		json_decref(v);
	}
	free(s);
	return 0;
}
