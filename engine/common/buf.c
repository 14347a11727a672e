/* buf.c - hex, base64 and the growable buffer (buf.h). */
#include "buf.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

static const char hexdigits[] = "0123456789abcdef";

void
rssp_hex(char *out, const uint8_t *in, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = hexdigits[in[i] >> 4];
		out[2 * i + 1] = hexdigits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

static int
nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
rssp_unhex(uint8_t *out, size_t outlen, const char *hex, size_t hexlen)
{
	size_t i;
	int hi, lo;

	if (hex == NULL || hexlen != 2 * outlen)
		return RSSP_E_INVAL;
	for (i = 0; i < outlen; i++) {
		if ((hi = nibble(hex[2 * i])) < 0 || (lo = nibble(hex[2 * i + 1])) < 0)
			return RSSP_E_INVAL;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

char *
rssp_b64(const uint8_t *data, size_t len)
{
	char *out;

	if (len > (size_t)1 << 28 || (out = malloc(4 * ((len + 2) / 3) + 1)) == NULL)
		return NULL;
	EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	return out;
}

static int
b64_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	    c == '+' || c == '/';
}

int
rssp_unb64(const char *s, uint8_t **outp, size_t *lenp)
{
	size_t n, i, pad = 0;
	uint8_t *out = NULL;
	int r = RSSP_E_INVAL, dl;

	if (s == NULL)
		return RSSP_E_INVAL;
	n = strlen(s);
	if (n == 0 || n % 4 != 0 || n > (size_t)1 << 24)
		goto out;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '=') {
			if (i < n - 2)
				goto out;
			pad++;
		} else if (pad || !b64_char(c))
			goto out;
	}
	if ((out = malloc(n / 4 * 3 + 1)) == NULL) {
		r = RSSP_E_NOMEM;
		goto out;
	}
	if ((dl = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n)) < 0 ||
	    (size_t)dl < pad)
		goto out;
	*lenp = (size_t)dl - pad;
	*outp = out;
	out = NULL;
	r = 0;
out:
	free(out);
	return r;
}

int
rssp_utf8_ok(const uint8_t *p, size_t len, int no_controls)
{
	size_t i = 0, k, n;
	unsigned c;

	while (i < len) {
		if (p[i] < 0x80) {
			if (p[i] == 0 || (no_controls && (p[i] < 0x20 || p[i] == 0x7f)))
				return 0;
			i++;
			continue;
		}
		if ((p[i] & 0xe0) == 0xc0 && p[i] >= 0xc2)
			n = 1, c = p[i] & 0x1f;
		else if ((p[i] & 0xf0) == 0xe0)
			n = 2, c = p[i] & 0x0f;
		else if ((p[i] & 0xf8) == 0xf0 && p[i] <= 0xf4)
			n = 3, c = p[i] & 0x07;
		else
			return 0;
		if (len - i <= n)
			return 0;
		for (k = 1; k <= n; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return 0;
			c = (c << 6) | (p[i + k] & 0x3f);
		}
		if ((n == 2 && (c < 0x800 || (c >= 0xd800 && c <= 0xdfff))) ||
		    (n == 3 && (c < 0x10000 || c > 0x10ffff)))
			return 0;
		i += n + 1;
	}
	return 1;
}

int
rssp_tlv_next(const uint8_t *buf, size_t len, size_t *offp, int *tagp,
    const uint8_t **valp, size_t *vlenp)
{
	size_t off = *offp, flen;

	if (off > len || len - off < 5)
		return RSSP_E_INVAL;
	flen = ((size_t)buf[off + 1] << 24) | ((size_t)buf[off + 2] << 16) |
	    ((size_t)buf[off + 3] << 8) | buf[off + 4];
	if (flen > len - off - 5)
		return RSSP_E_INVAL;
	*tagp = buf[off];
	*valp = buf + off + 5;
	*vlenp = flen;
	*offp = off + 5 + flen;
	return 0;
}

static int
buf_grow(struct rssp_buf *b, size_t n)
{
	size_t ncap;
	uint8_t *np;

	if (b->err)
		return b->err;
	if (n <= b->cap - b->len)
		return 0;
	if (n > SIZE_MAX / 2 - b->len) {
		b->err = RSSP_E_TOOBIG;
		return b->err;
	}
	for (ncap = b->cap ? b->cap : 256; ncap < b->len + n; ncap *= 2)
		;
	if ((np = malloc(ncap)) == NULL) {
		b->err = RSSP_E_NOMEM;
		return b->err;
	}
	/* copy, wipe, free (not realloc): the old block is wiped before it goes back */
	if (b->len > 0)
		memcpy(np, b->p, b->len);
	if (b->p != NULL)
		OPENSSL_cleanse(b->p, b->cap);
	free(b->p);
	b->p = np;
	b->cap = ncap;
	return 0;
}

void
rssp_buf_put(struct rssp_buf *b, const void *data, size_t n)
{
	if (n == 0 || buf_grow(b, n) != 0)
		return;
	memcpy(b->p + b->len, data, n);
	b->len += n;
}

void
rssp_buf_putc(struct rssp_buf *b, uint8_t c)
{
	rssp_buf_put(b, &c, 1);
}

void
rssp_buf_put_be(struct rssp_buf *b, uint64_t v, size_t n)
{
	uint8_t d[8];
	size_t i;

	if (n < 1 || n > 8) {
		if (!b->err)
			b->err = RSSP_E_INVAL;
		return;
	}
	for (i = 0; i < n; i++)
		d[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
	rssp_buf_put(b, d, n);
}

void
rssp_buf_put_tlv_hdr(struct rssp_buf *b, int tag, size_t n)
{
	if (n > UINT32_MAX) {
		if (!b->err)
			b->err = RSSP_E_TOOBIG;
		return;
	}
	rssp_buf_putc(b, (uint8_t)tag);
	rssp_buf_put_be(b, n, 4);
}

void
rssp_buf_put_tlv(struct rssp_buf *b, int tag, const void *v, size_t n)
{
	rssp_buf_put_tlv_hdr(b, tag, n);
	rssp_buf_put(b, v, n);
}

int
rssp_buf_take(struct rssp_buf *b, uint8_t **outp, size_t *lenp)
{
	int r = b->err;

	if (r != 0) {
		rssp_buf_free(b);
		return r;
	}
	*outp = b->p;
	*lenp = b->len;
	b->p = NULL;
	b->len = b->cap = 0;
	return 0;
}

void
rssp_buf_free(struct rssp_buf *b)
{
	if (b->p != NULL)
		OPENSSL_cleanse(b->p, b->cap);
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
	b->err = 0;
}
