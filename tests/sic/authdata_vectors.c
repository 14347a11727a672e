/* authdata_vectors - prints authData built by the C builder (engine/common/authdata.c)
 * for fixed fields, one "name hex" line each, so the Python encoder and decoder of
 * rssp-sic can be held to the very bytes the gateway and the engine build. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authdata.h"

static void
print_hex(const char *name, const uint8_t *p, size_t n)
{
	size_t i;

	printf("%s ", name);
	for (i = 0; i < n; i++)
		printf("%02x", p[i]);
	printf("\n");
}

int
main(void)
{
	/* A fake SPKI: the builder only hashes it. Same bytes in test_authdata.py. */
	static const uint8_t kak[] = { 0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48 };
	uint8_t nonce[32], h[3][64];
	const uint8_t *hp[3] = { h[0], h[1], h[2] };
	uint8_t *out = NULL;
	size_t outlen, i;
	int r, status = 1;

	for (i = 0; i < sizeof(nonce); i++)
		nonce[i] = (uint8_t)(0xa0 + i);
	for (i = 0; i < sizeof(h); i++)
		h[i / 64][i % 64] = (uint8_t)(i * 7 + 3);

	struct rssp_activation_fields act = {
		.credential_id = "cred-0001", .owner_id = "8f2d5c1e-user", .device_uuid =
		    "5b0e9c1a-2f3d-4e5f-8a9b-0c1d2e3f4a5b", .kak_spki = kak, .kak_spki_len = sizeof(kak),
		.kak_algo = 1, .key_algo = 3, .subject_cn = "J\xc3\xa9r\xc3\xb4me Signer",
		.validity_days = 365, .nonce = nonce, .nonce_len = 16, .expires_at = 1790000000,
	};
	struct rssp_approval_fields app = {
		.approval_id = "req-0001", .credential_id = "cred-0001", .owner_id = "8f2d5c1e-user",
		.device_uuid = "5b0e9c1a-2f3d-4e5f-8a9b-0c1d2e3f4a5b", .kak_spki = kak,
		.kak_spki_len = sizeof(kak), .hash_algo = 1, .hashes = hp, .n_hashes = 3,
		.hash_len = 32, .num_signatures = 3, .rp_name = "Example Bank",
		.description = "Loan contract \xe2\x84\x96 42", .nonce = nonce, .nonce_len = 32,
		.expires_at = 1790000300,
	};

	if ((r = rssp_authdata_activation(&act, &out, &outlen)) != 0)
		goto out;
	print_hex("activation", out, outlen);
	free(out);
	out = NULL;
	if ((r = rssp_authdata_approval(&app, &out, &outlen)) != 0)
		goto out;
	print_hex("approval-sha256", out, outlen);
	free(out);
	out = NULL;
	/* The same approval over SHA-512 digests (the 64-byte rows). */
	app.hash_algo = 3;
	app.hash_len = 64;
	app.n_hashes = 2;
	app.num_signatures = 5;
	app.expires_at = -1; /* two's complement: the decoder must read it back */
	if ((r = rssp_authdata_approval(&app, &out, &outlen)) != 0)
		goto out;
	print_hex("approval-sha512", out, outlen);
	status = 0;
out:
	if (status != 0)
		fprintf(stderr, "authdata_vectors: %s\n", rssp_strerror(r));
	free(out);
	return status;
}
