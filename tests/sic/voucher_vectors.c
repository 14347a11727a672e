/* Voucher bytes from the C builder (engine/client/voucher.c) and the C verifier of RA
 * signatures (ra_keys.c), for rssp-ra's tests (test_ra.py):
 *   voucher_vectors                      prints "voucher <hex>" for fixed fields
 *   voucher_vectors verify PEM HEX SIG   exits 0 when SIG (hex) verifies over HEX under
 *                                        the one key in PEM, 1 otherwise */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ra_keys.h"
#include "voucher.h"

static size_t
unhex(const char *s, uint8_t **outp)
{
	size_t n = strlen(s) / 2, i;
	uint8_t *b = malloc(n ? n : 1);
	unsigned v;

	for (i = 0; i < n; i++) {
		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			exit(2);
		b[i] = (uint8_t)v;
	}
	*outp = b;
	return n;
}

int
main(int argc, char **argv)
{
	struct rssp_voucher v;
	uint8_t *b = NULL, *sig = NULL;
	size_t len, siglen, i;
	struct ra_keys *set = NULL;
	int r;

	if (argc == 5 && strcmp(argv[1], "verify") == 0) {
		if (ra_keys_load(argv[2], &set) != 0 || ra_keys_count(set) != 1)
			return 2;
		len = unhex(argv[3], &b);
		siglen = unhex(argv[4], &sig);
		r = ra_keys_verify(set, ra_keys_id(set, 0), b, len, sig, siglen);
		ra_keys_free(set);
		free(b);
		free(sig);
		return r == 0 ? 0 : 1;
	}
	memset(&v, 0, sizeof(v));
	snprintf(v.user_id, sizeof(v.user_id), "8f2d5c1e-user");
	snprintf(v.common_name, sizeof(v.common_name), "J\xc3\xa9r\xc3\xb4me Signer");
	for (i = 0; i < 32; i++) {
		v.kak_sha256[i] = (uint8_t)i;
		v.ra_key_id[i] = (uint8_t)(0xff - i);
	}
	snprintf(v.device_uuid, sizeof(v.device_uuid), "5b0e9c1a-2f3d-4e5f-8a9b-0c1d2e3f4a5b");
	v.issued_at = 1790000000;
	v.not_after = 1790000000 + 30 * 86400;
	if (rssp_voucher_build(&v, &b, &len) != 0)
		return 1;
	printf("voucher ");
	for (i = 0; i < len; i++)
		printf("%02x", b[i]);
	printf("\n");
	free(b);
	return 0;
}
