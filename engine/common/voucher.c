#include "voucher.h"

#include <stdlib.h>
#include <string.h>

#define MAX_WINDOW ((int64_t)RSSP_VOUCHER_MAX_DAYS * 86400)

/* Well-formed UTF-8 (no overlongs, surrogates or code points above U+10FFFF), no NUL;
 * with nocntl also no C0 control character or DEL (a name is shown to people). */
static int
utf8_ok(const uint8_t *p, size_t len, int nocntl)
{
	size_t i = 0, k, n;
	unsigned c;

	while (i < len) {
		if (p[i] < 0x80) {
			if (p[i] == 0 || (nocntl && (p[i] < 0x20 || p[i] == 0x7f)))
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

static int
str_ok(const char *s, size_t max, int nocntl)
{
	size_t n = strnlen(s, max + 1);

	return n >= 1 && n <= max && utf8_ok((const uint8_t *)s, n, nocntl);
}

static int
window_ok(int64_t issued_at, int64_t not_after)
{
	return issued_at >= 0 && not_after > issued_at && not_after - issued_at <= MAX_WINDOW;
}

static uint8_t *
put_field(uint8_t *p, int tag, const void *v, size_t n)
{
	p[0] = (uint8_t)tag;
	p[1] = (uint8_t)(n >> 24);
	p[2] = (uint8_t)(n >> 16);
	p[3] = (uint8_t)(n >> 8);
	p[4] = (uint8_t)n;
	memcpy(p + 5, v, n);
	return p + 5 + n;
}

static void
be64(uint8_t out[8], int64_t v)
{
	uint64_t u = (uint64_t)v;
	int i;

	for (i = 7; i >= 0; i--, u >>= 8)
		out[i] = (uint8_t)u;
}

static int64_t
from_be64(const uint8_t *p)
{
	uint64_t u = 0;
	int i;

	for (i = 0; i < 8; i++)
		u = (u << 8) | p[i];
	return (int64_t)u;
}

int
rssp_voucher_window_ok(const struct rssp_voucher *v)
{
	return window_ok(v->issued_at, v->not_after);
}

int
rssp_voucher_build(const struct rssp_voucher *v, uint8_t **outp, size_t *outlenp)
{
	size_t uid, cn, dev, len;
	uint8_t *buf, *p, ia[8], na[8];

	if (!str_ok(v->user_id, RSSP_VOUCHER_MAX_ID, 0) ||
	    !str_ok(v->common_name, RSSP_VOUCHER_MAX_CN, 1) ||
	    !str_ok(v->device_uuid, RSSP_VOUCHER_MAX_ID, 0) ||
	    !window_ok(v->issued_at, v->not_after))
		return RSSP_E_INVAL;
	uid = strlen(v->user_id);
	cn = strlen(v->common_name);
	dev = strlen(v->device_uuid);
	len = RSSP_VOUCHER_MAGIC_LEN + 7 * 5 + uid + cn + 32 + dev + 8 + 8 + 32;
	if ((buf = malloc(len)) == NULL)
		return RSSP_E_NOMEM;
	memcpy(buf, RSSP_VOUCHER_MAGIC, RSSP_VOUCHER_MAGIC_LEN);
	be64(ia, v->issued_at);
	be64(na, v->not_after);
	p = buf + RSSP_VOUCHER_MAGIC_LEN;
	p = put_field(p, VOUCHER_USER_ID, v->user_id, uid);
	p = put_field(p, VOUCHER_COMMON_NAME, v->common_name, cn);
	p = put_field(p, VOUCHER_KAK_SHA256, v->kak_sha256, 32);
	p = put_field(p, VOUCHER_DEVICE_UUID, v->device_uuid, dev);
	p = put_field(p, VOUCHER_ISSUED_AT, ia, 8);
	p = put_field(p, VOUCHER_NOT_AFTER, na, 8);
	(void)put_field(p, VOUCHER_RA_KEY_ID, v->ra_key_id, 32);
	*outp = buf;
	*outlenp = len;
	return RSSP_OK;
}

static int
get_str(char *dst, const uint8_t *val, size_t n, size_t max, int nocntl)
{
	if (n < 1 || n > max || !utf8_ok(val, n, nocntl))
		return RSSP_E_INVAL;
	memcpy(dst, val, n);
	dst[n] = '\0';
	return 0;
}

int
rssp_voucher_parse(const uint8_t *buf, size_t len, struct rssp_voucher *vp)
{
	struct rssp_voucher v;
	size_t off, flen;
	int tag, want = VOUCHER_USER_ID, r = 0;

	if (buf == NULL || len < RSSP_VOUCHER_MAGIC_LEN || len > RSSP_VOUCHER_MAX_LEN ||
	    memcmp(buf, RSSP_VOUCHER_MAGIC, RSSP_VOUCHER_MAGIC_LEN) != 0)
		return RSSP_E_INVAL;
	memset(&v, 0, sizeof(v));
	for (off = RSSP_VOUCHER_MAGIC_LEN; off < len && r == 0; want++) {
		const uint8_t *val;

		if (len - off < 5)
			return RSSP_E_INVAL;
		tag = buf[off];
		flen = ((size_t)buf[off + 1] << 24) | ((size_t)buf[off + 2] << 16) |
		    ((size_t)buf[off + 3] << 8) | buf[off + 4];
		off += 5;
		if (tag != want || flen > len - off)
			return RSSP_E_INVAL;
		val = buf + off;
		off += flen;
		switch (tag) {
		case VOUCHER_USER_ID:
			r = get_str(v.user_id, val, flen, RSSP_VOUCHER_MAX_ID, 0);
			break;
		case VOUCHER_COMMON_NAME:
			r = get_str(v.common_name, val, flen, RSSP_VOUCHER_MAX_CN, 1);
			break;
		case VOUCHER_KAK_SHA256:
			if (flen != 32)
				return RSSP_E_INVAL;
			memcpy(v.kak_sha256, val, 32);
			break;
		case VOUCHER_DEVICE_UUID:
			r = get_str(v.device_uuid, val, flen, RSSP_VOUCHER_MAX_ID, 0);
			break;
		case VOUCHER_ISSUED_AT:
		case VOUCHER_NOT_AFTER:
			if (flen != 8)
				return RSSP_E_INVAL;
			if (tag == VOUCHER_ISSUED_AT)
				v.issued_at = from_be64(val);
			else
				v.not_after = from_be64(val);
			break;
		case VOUCHER_RA_KEY_ID:
			if (flen != 32)
				return RSSP_E_INVAL;
			memcpy(v.ra_key_id, val, 32);
			break;
		default:
			return RSSP_E_INVAL;
		}
	}
	if (r != 0 || off != len || want != VOUCHER_RA_KEY_ID + 1 || v.issued_at < 0)
		return RSSP_E_INVAL;
	*vp = v;
	return RSSP_OK;
}
