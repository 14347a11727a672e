#include "binding.h"

#include <string.h>

#include <openssl/crypto.h>

#include "authdata.h"

#define BINDING_DOMAIN "rssp-binding-v1"

static size_t
put_str(uint8_t *p, const char *s)
{
	size_t n = strlen(s);

	p[0] = (uint8_t)(n >> 24);
	p[1] = (uint8_t)(n >> 16);
	p[2] = (uint8_t)(n >> 8);
	p[3] = (uint8_t)n;
	memcpy(p + 4, s, n);
	return n + 4;
}

int
binding_compute(struct hsm *h, struct hsm_session *s, const char *mac_label,
    const char *credential_id, const char *owner_id, const char *key_label,
    const uint8_t kak_sha256[32], uint8_t out[BINDING_LEN])
{
	uint8_t buf[sizeof(BINDING_DOMAIN) + 3 * (4 + RSSP_MAX_ID_LEN) + 32];
	uint8_t mac[64];
	size_t n = 0, maclen = sizeof(mac);
	int r;

	if (strlen(credential_id) > RSSP_MAX_ID_LEN || strlen(owner_id) > RSSP_MAX_ID_LEN ||
	    strlen(key_label) > RSSP_MAX_ID_LEN)
		return RSSP_E_INVAL;
	memcpy(buf, BINDING_DOMAIN, sizeof(BINDING_DOMAIN) - 1);
	n = sizeof(BINDING_DOMAIN) - 1;
	n += put_str(buf + n, credential_id);
	n += put_str(buf + n, owner_id);
	n += put_str(buf + n, key_label);
	memcpy(buf + n, kak_sha256, 32);
	n += 32;
	if ((r = hsm_sign(h, s, mac_label, HSM_SECRET_KEY, HSM_MECH_HMAC_SHA256, 0,
	    buf, n, mac, &maclen)) != 0)
		return r;
	if (maclen != BINDING_LEN)
		return RSSP_E_HSM;
	memcpy(out, mac, BINDING_LEN);
	OPENSSL_cleanse(mac, sizeof(mac));
	return 0;
}

int
binding_verify(struct hsm *h, struct hsm_session *s, const char *mac_label,
    const char *credential_id, const char *owner_id, const char *key_label,
    const uint8_t kak_sha256[32], const uint8_t *binding, size_t len)
{
	uint8_t want[BINDING_LEN];
	int r;

	if ((r = binding_compute(h, s, mac_label, credential_id, owner_id, key_label,
	    kak_sha256, want)) != 0)
		return r;
	r = len == BINDING_LEN && CRYPTO_memcmp(want, binding, BINDING_LEN) == 0 ? 0 : RSSP_E_DENIED;
	OPENSSL_cleanse(want, sizeof(want));
	return r;
}
