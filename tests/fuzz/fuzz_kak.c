/* The KAK SubjectPublicKeyInfo parser (sic_kak_parse): activate/sendDevice hands it the
 * DER the app sends. The first byte picks the scheme asked for; the rest is the DER. A
 * key that parses is one of the allowed kinds, and it can be used to verify. */
#include <stdint.h>
#include <stdlib.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#include "sic.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const schemes[][2] = {
		{ "RSASSA-PSS", "sha256" }, { "RSASSA-PSS", "sha512" }, { "ECDSA", "sha256" },
		{ "ECDSA", "sha512" }, { "RSA", "sha256" }, { "", "" },
	};
	EVP_PKEY *pk = NULL;
	int kak_algo = 0;
	const uint8_t msg[] = "authData";
	uint8_t sig[512] = { 0 };

	if (size < 1 || size > 16 * 1024)
		return 0;
	const char *const *sch = schemes[data[0] % (sizeof(schemes) / sizeof(schemes[0]))];
	if (sic_kak_parse(data + 1, size - 1, sch[0], sch[1], &kak_algo, &pk) == 0) {
		if (pk == NULL || sic_kak_sign_algo(kak_algo) == NULL)
			__builtin_trap();
		/* a garbage signature is refused, never crashes */
		if (kak_verify(pk, kak_algo, msg, sizeof(msg), sig, sizeof(sig)) == 0)
			__builtin_trap();
		EVP_PKEY_free(pk);
	}
	ERR_clear_error();
	return 0;
}
