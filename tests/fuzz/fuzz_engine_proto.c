/* The engine's wire messages: whatever the peer sends is unpacked by protobuf-c first. */
#include <stdint.h>
#include <stddef.h>

#include "rssp/engine/v1/engine.pb-c.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Rssp__Engine__V1__AuthorizeRequest *a;
	Rssp__Engine__V1__SignHashRequest *s;

	if ((a = rssp__engine__v1__authorize_request__unpack(NULL, size, data)) != NULL)
		rssp__engine__v1__authorize_request__free_unpacked(a, NULL);
	if ((s = rssp__engine__v1__sign_hash_request__unpack(NULL, size, data)) != NULL)
		rssp__engine__v1__sign_hash_request__free_unpacked(s, NULL);
	return 0;
}
