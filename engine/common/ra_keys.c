#include "ra_keys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "buf.h"
#include "dir_list.h"
#include "kak_verify.h"

struct ra_key {
	EVP_PKEY *pkey;
	int algo;               /* KAK_ECDSA_P256 or KAK_PSS_SHA256 (kak_verify.h) */
	uint8_t id[32];
	char kind[16];
};

struct ra_keys {
	struct ra_key k[RA_KEYS_MAX];
	size_t n;
};

void
ra_key_id_hex(const uint8_t id[32], char out[65])
{
	rssp_hex(out, id, 32);
}

/* Takes pkey (owned) into the set if it is an accepted kind. */
static int
add_key(struct ra_keys *set, EVP_PKEY *pkey)
{
	struct ra_key *k;
	uint8_t *der = NULL;
	int derlen, bits, r = RSSP_E_INVAL;
	size_t i;
	char group[32];

	if (set->n >= RA_KEYS_MAX)
		goto out;
	k = &set->k[set->n];
	memset(k, 0, sizeof(*k));
	bits = EVP_PKEY_get_bits(pkey);
	if (EVP_PKEY_is_a(pkey, "EC")) {
		if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group,
		    sizeof(group), NULL) != 1 || strcmp(group, "prime256v1") != 0)
			goto out;
		k->algo = KAK_ECDSA_P256;
		snprintf(k->kind, sizeof(k->kind), "ec-p256");
	} else if (EVP_PKEY_is_a(pkey, "RSA") || EVP_PKEY_is_a(pkey, "RSA-PSS")) {
		if (bits < 2048 || bits > 8192)
			goto out;
		k->algo = KAK_PSS_SHA256;
		snprintf(k->kind, sizeof(k->kind), "rsa-%d", bits);
	} else {
		goto out;
	}
	if ((derlen = i2d_PUBKEY(pkey, &der)) <= 0) {
		r = RSSP_E_NOMEM;
		goto out;
	}
	SHA256(der, (size_t)derlen, k->id);
	for (i = 0; i < set->n; i++)
		if (memcmp(set->k[i].id, k->id, 32) == 0)
			goto out;
	k->pkey = pkey; /* owned by the set */
	pkey = NULL;
	set->n++;
	r = 0;
out:
	OPENSSL_free(der);
	EVP_PKEY_free(pkey);
	return r;
}

/* Every PEM block of the file must be a "PUBLIC KEY" whose DER is exactly one SPKI. */
static int
load_file(struct ra_keys *set, const char *path)
{
	FILE *f;
	EVP_PKEY *pkey;
	char *name = NULL, *hdr = NULL;
	unsigned char *data = NULL;
	const unsigned char *p;
	long len;
	size_t before = set->n;
	int r = 0;

	if ((f = fopen(path, "r")) == NULL)
		return RSSP_E_IO;
	for (;;) {
		if (PEM_read(f, &name, &hdr, &data, &len) != 1) {
			/* the end of the file, or a damaged block */
			if (ERR_GET_REASON(ERR_peek_last_error()) != PEM_R_NO_START_LINE ||
			    set->n == before)
				r = RSSP_E_INVAL;
			break;
		}
		p = data;
		if (strcmp(name, "PUBLIC KEY") != 0 || hdr[0] != '\0' ||
		    (pkey = d2i_PUBKEY(NULL, &p, len)) == NULL)
			r = RSSP_E_INVAL;
		else if (p != data + len) {
			EVP_PKEY_free(pkey);
			r = RSSP_E_INVAL;
		} else
			r = add_key(set, pkey);
		OPENSSL_free(name);
		OPENSSL_free(hdr);
		OPENSSL_free(data);
		name = hdr = NULL;
		data = NULL;
		if (r != 0)
			break;
	}
	ERR_clear_error();
	fclose(f);
	return r;
}

static int
load_dir(struct ra_keys *set, const char *path)
{
	char **names = NULL, full[4096];
	size_t n = 0, i;
	struct stat st;
	int r;

	if ((r = dir_list(path, ".pem", RA_KEYS_MAX, &names, &n)) != 0)
		return r;
	for (i = 0; i < n && r == 0; i++) {
		if ((size_t)snprintf(full, sizeof(full), "%s/%s", path, names[i]) >= sizeof(full))
			r = RSSP_E_INVAL;
		else if (stat(full, &st) != 0)
			r = RSSP_E_IO;
		else if (S_ISREG(st.st_mode))
			r = load_file(set, full);
	}
	dir_list_free(names, n);
	return r;
}

int
ra_keys_load(const char *path, struct ra_keys **setp)
{
	struct ra_keys *set;
	struct stat st;
	int r;

	if (path == NULL || path[0] == '\0')
		return RSSP_E_INVAL;
	if (stat(path, &st) != 0)
		return RSSP_E_IO;
	if ((set = calloc(1, sizeof(*set))) == NULL)
		return RSSP_E_NOMEM;
	r = S_ISDIR(st.st_mode) ? load_dir(set, path) : load_file(set, path);
	if (r == 0 && set->n == 0)
		r = RSSP_E_INVAL;
	if (r != 0) {
		ra_keys_free(set);
		return r;
	}
	*setp = set;
	return 0;
}

void
ra_keys_free(struct ra_keys *set)
{
	size_t i;

	if (set == NULL)
		return;
	for (i = 0; i < set->n; i++)
		EVP_PKEY_free(set->k[i].pkey);
	free(set);
}

size_t
ra_keys_count(const struct ra_keys *set)
{
	return set != NULL ? set->n : 0;
}

const uint8_t *
ra_keys_id(const struct ra_keys *set, size_t i)
{
	return set->k[i].id;
}

const char *
ra_keys_kind(const struct ra_keys *set, size_t i)
{
	return set->k[i].kind;
}

int
ra_keys_verify(const struct ra_keys *set, const uint8_t key_id[32], const uint8_t *msg,
    size_t msglen, const uint8_t *sig, size_t siglen)
{
	size_t i;

	if (set == NULL)
		return RSSP_E_NOTFOUND;
	for (i = 0; i < set->n; i++)
		if (memcmp(set->k[i].id, key_id, 32) == 0)
			return kak_verify(set->k[i].pkey, set->k[i].algo, msg, msglen, sig, siglen);
	return RSSP_E_NOTFOUND;
}
