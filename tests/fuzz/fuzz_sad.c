/* SAD parsing: the engine parses a SAD the peer sends before its MAC is checked. */
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "sad.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sad *s = NULL;
	uint8_t id[SAD_ID_LEN], *body = NULL;
	size_t bodylen = 0, enclen = 0;

	if (sad_peek_id(data, size, id) != 0)
		return 0;
	if (sad_parse(data, size, &s, &bodylen) != 0)
		return 0;
	/* What parses lies within the input and re-encodes to a body of the same size. */
	if (bodylen + SAD_MAC_LEN != size || memcmp(id, s->id, SAD_ID_LEN) != 0)
		__builtin_trap();
	(void)sad_has_hash(s, s->hashes);
	if (sad_encode_body(s, &body, &enclen) == 0 && enclen > bodylen)
		__builtin_trap();
	free(body);
	sad_free(s);
	return 0;
}
