/* buf.h - the byte helpers both processes share: lowercase hex, strict base64 (RFC 4648
 * standard alphabet, padded), and a growable byte buffer with a sticky error.
 * Pure functions, thread-safe (a struct rssp_buf belongs to one thread at a time). */
#ifndef RSSP_BUF_H
#define RSSP_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "rssp_err.h"

/* n bytes as 2n lowercase hex digits and a NUL into out (at least 2n + 1 bytes). */
void rssp_hex(char *out, const uint8_t *in, size_t n);

/* Exactly 2 * outlen hex digits (either case) of hex/hexlen into out. Returns 0 or
 * RSSP_E_INVAL (a wrong length or a non-hex character; out is then undefined). */
int rssp_unhex(uint8_t *out, size_t outlen, const char *hex, size_t hexlen) RSSP_WUR;

/* Padded base64 of len bytes, NUL-terminated, malloc'd (free with free()); NULL when
 * out of memory or len is over 256 MiB. */
char *rssp_b64(const uint8_t *data, size_t len);

/* Decodes padded base64 strictly: a length that is a multiple of 4, 1..16 MiB, only the
 * standard alphabet, '=' only as the last one or two characters. Returns 0,
 * RSSP_E_INVAL, RSSP_E_NOMEM; on success *outp (malloc'd, free with free(), never NULL)
 * and *lenp. */
int rssp_unb64(const char *s, uint8_t **outp, size_t *lenp) RSSP_WUR;

/* Well-formed UTF-8 of len bytes (no overlongs, surrogates or code points above
 * U+10FFFF) and no NUL; with no_controls also no C0 control character or DEL.
 * Returns 1 or 0. The one check of ids, labels, names and texts. */
int rssp_utf8_ok(const uint8_t *p, size_t len, int no_controls);

/* TLV framing of authData and vouchers: tag (1 byte) || length (4 bytes, big endian)
 * || value. Reads the field at *offp of buf/len: returns 0 with *tagp, *valp, *vlenp
 * set and *offp past the field, or RSSP_E_INVAL when the header or the value does not
 * fit in len. */
int rssp_tlv_next(const uint8_t *buf, size_t len, size_t *offp, int *tagp,
    const uint8_t **valp, size_t *vlenp) RSSP_WUR;

/* A growable buffer. Zero-initialise it (or RSSP_BUF_INIT); appends after a failure do
 * nothing, so a builder checks err once at the end. */
struct rssp_buf {
	uint8_t *p;
	size_t len, cap;
	int err;    /* 0, or RSSP_E_NOMEM / RSSP_E_TOOBIG once an append failed */
};
#define RSSP_BUF_INIT { NULL, 0, 0, 0 }

void rssp_buf_put(struct rssp_buf *b, const void *data, size_t n);
void rssp_buf_putc(struct rssp_buf *b, uint8_t c);
/* Big-endian n-byte integer (n = 1..8). */
void rssp_buf_put_be(struct rssp_buf *b, uint64_t v, size_t n);
/* A TLV header (tag, 4-byte length) / a whole TLV field. */
void rssp_buf_put_tlv_hdr(struct rssp_buf *b, int tag, size_t n);
void rssp_buf_put_tlv(struct rssp_buf *b, int tag, const void *v, size_t n);
/* Hands the bytes over: returns b->err, or 0 with *outp / *lenp set (*outp may be
 * NULL for an empty buffer); the buffer is empty afterwards either way. */
int rssp_buf_take(struct rssp_buf *b, uint8_t **outp, size_t *lenp) RSSP_WUR;
/* Frees the bytes, wiping them first (a builder may hold secrets); accepts an empty one. */
void rssp_buf_free(struct rssp_buf *b);

#endif
