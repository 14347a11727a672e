/* sad.h - the signature activation data the engine mints and later checks. Not
 * encrypted (nothing in it is secret) but a bearer token: never log it.
 *
 * Wire form: body || HMAC-SHA256(body) under the token's MAC key, where body is
 *   "rssp-sad-v1" (11 bytes) || id (16) || expires_at (8, BE) || hash_algo (1)
 *   || num_signatures (4, BE) || len8 credential_id || len8 key_label
 *   || n_hashes (2, BE) || the digests, sorted ascending, hash_len bytes each.
 * The domain prefix keeps a SAD MAC distinct from a binding MAC. */
#ifndef RSSP_SAD_H
#define RSSP_SAD_H

#include <stddef.h>
#include <stdint.h>

#include "authdata.h"
#include "rssp_err.h"

#define SAD_ID_LEN 16
#define SAD_MAC_LEN 32

struct sad {
	uint8_t id[SAD_ID_LEN];
	int64_t expires_at;
	int hash_algo;
	size_t hash_len;
	uint32_t num_signatures;
	char credential_id[RSSP_MAX_ID_LEN + 1];
	char key_label[RSSP_MAX_ID_LEN + 1];
	size_t n_hashes;
	uint8_t *hashes; /* n_hashes * hash_len, sorted */
};

/* Encodes s without its MAC; sorts s->hashes in place first. Returns 0, RSSP_E_INVAL,
 * RSSP_E_NOMEM; on success *bodyp (free with free()) has room for SAD_MAC_LEN more
 * bytes after *bodylenp. */
int sad_encode_body(struct sad *s, uint8_t **bodyp, size_t *bodylenp) RSSP_WUR;

/* Parses a wire SAD (body || MAC) exactly. Returns 0 or RSSP_E_INVAL; on success
 * *sp is owned by the caller (sad_free) and *bodylenp the length of the body, which
 * the MAC at buf + *bodylenp covers. Checks no MAC. */
int sad_parse(const uint8_t *buf, size_t len, struct sad **sp, size_t *bodylenp) RSSP_WUR;

/* Copies the id of a wire SAD without parsing the rest (for a cache lookup before a
 * full parse). Returns 0 or RSSP_E_INVAL when buf cannot be a SAD. */
int sad_peek_id(const uint8_t *buf, size_t len, uint8_t id[SAD_ID_LEN]) RSSP_WUR;

/* 1 when digest (s->hash_len bytes) is one of the SAD's hashes. */
int sad_has_hash(const struct sad *s, const uint8_t *digest);

void sad_free(struct sad *s);

#endif
