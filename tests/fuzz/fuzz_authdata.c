/* authData framing: the SIC and any verifier walk bytes they did not build. */
#include <stdint.h>
#include <stddef.h>

#include "authdata.h"
#include "fuzz.h"

static int
field(void *arg, int tag, const uint8_t *v, size_t n)
{
	size_t *sum = arg;

	*sum += (size_t)tag + n + (n ? v[0] : 0);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t sum = 0;
	int purpose, r;

	r = rssp_authdata_walk(data, size, &purpose, field, &sum);
	/* A walk that succeeds saw well-framed fields; one that fails says only INVAL. */
	if (r != 0 && r != RSSP_E_INVAL)
		__builtin_trap();
	return 0;
}
