/* signatures/signHash's signAlgoParams (RSASSA-PSS-params, DER) parser. It is static in
 * signatures.c, so it is reached through the public handler sg_sign_hash with a body that
 * is refused right after the parameters are read (an unsupported hashAlgorithmOID):
 * the handler touches neither the database nor the engine on this path. The input is
 * the DER, sent base64-encoded as the client would. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "gw.h"
#include "gw_internal.h"
#include "signing.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gw_request req;
	struct gw_reply rep;
	char *b64;
	int r;

	if (size < 1 || size > 256 || (b64 = rssp_b64(data, size)) == NULL)
		return 0;
	memset(&req, 0, sizeof(req));
	memset(&rep, 0, sizeof(rep));
	req.request_id = "fuzz";
	req.body = json_pack("{s:s, s:s, s:[s], s:s, s:s, s:s}",
	    "credentialID", "00000000-0000-4000-8000-000000000000", "SAD", "AAAA",
	    "hashes", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
	    "hashAlgorithmOID", "1.2.3.4", "signAlgo", "1.2.840.113549.1.1.10",
	    "signAlgoParams", b64);
	if (req.body == NULL) {
		free(b64);
		return 0;
	}
	r = sg_sign_hash(&req, &rep);
	/* refused with 400 naming signAlgoParams or hashAlgorithmOID; nothing else */
	if (r == 0 || rep.status != 400)
		__builtin_trap();
	gw_reply_release(&rep);
	json_decref(req.body);
	free(b64);
	return 0;
}
