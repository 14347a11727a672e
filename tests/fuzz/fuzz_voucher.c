/* Enrolment vouchers: the engine and the gateway parse bytes a peer sent. A voucher that
 * parses (and has a valid window) rebuilds to exactly the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "voucher.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rssp_voucher v;
	uint8_t *again = NULL;
	size_t len;
	int r;

	r = rssp_voucher_parse(data, size, &v);
	if (r != 0 && r != RSSP_E_INVAL)
		__builtin_trap();
	if (r == 0 && rssp_voucher_window_ok(&v)) {
		if (rssp_voucher_build(&v, &again, &len) != 0 || len != size ||
		    memcmp(again, data, size) != 0)
			__builtin_trap();
		free(again);
	}
	return 0;
}
