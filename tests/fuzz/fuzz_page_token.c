/* The pageToken decoders: admin/users/list (acct_page_token_parse, base64url of
 * "<micros>.<uuid>") and credentials/list (a uuid, gw_is_uuid). A client sends the token
 * back, so every byte is untrusted. What decodes must be within the documented shape. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "accounts.h"
#include "signing.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *tok, micros[24] = "unset", id[GW_UUID_LEN + 1] = "unset";
	size_t n;

	if (size > 4096 || (tok = malloc(size + 1)) == NULL)
		return 0;
	memcpy(tok, data, size);
	tok[size] = '\0';
	if (acct_page_token_parse(tok, micros, id) == 0) {
		n = strlen(micros);
		if (n == 0 || n > 20 || strspn(micros, "0123456789") != n || !gw_is_uuid(id) ||
		    strlen(id) != GW_UUID_LEN)
			__builtin_trap();
	} else if (strcmp(micros, "unset") != 0 || strcmp(id, "unset") != 0) {
		__builtin_trap(); /* out-parameters are set only on success */
	}
	if (gw_is_uuid(tok) && strlen(tok) != GW_UUID_LEN)
		__builtin_trap();
	free(tok);
	return 0;
}
