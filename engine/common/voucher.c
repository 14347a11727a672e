#include "voucher.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"

#define MAX_WINDOW ((int64_t)RSSP_VOUCHER_MAX_DAYS * 86400)

static int
str_ok(const char *s, size_t max, int nocntl)
{
	size_t n = strnlen(s, max + 1);

	return n >= 1 && n <= max && rssp_utf8_ok((const uint8_t *)s, n, nocntl);
}

static int
window_ok(int64_t issued_at, int64_t not_after)
{
	return issued_at >= 0 && not_after > issued_at && not_after - issued_at <= MAX_WINDOW;
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
	struct rssp_buf b = RSSP_BUF_INIT;

	if (!str_ok(v->user_id, RSSP_VOUCHER_MAX_ID, 0) ||
	    !str_ok(v->common_name, RSSP_VOUCHER_MAX_CN, 1) ||
	    !str_ok(v->device_uuid, RSSP_VOUCHER_MAX_ID, 0) ||
	    !window_ok(v->issued_at, v->not_after))
		return RSSP_E_INVAL;
	rssp_buf_put(&b, RSSP_VOUCHER_MAGIC, RSSP_VOUCHER_MAGIC_LEN);
	rssp_buf_put_tlv(&b, VOUCHER_USER_ID, v->user_id, strlen(v->user_id));
	rssp_buf_put_tlv(&b, VOUCHER_COMMON_NAME, v->common_name, strlen(v->common_name));
	rssp_buf_put_tlv(&b, VOUCHER_KAK_SHA256, v->kak_sha256, 32);
	rssp_buf_put_tlv(&b, VOUCHER_DEVICE_UUID, v->device_uuid, strlen(v->device_uuid));
	rssp_buf_put_tlv_hdr(&b, VOUCHER_ISSUED_AT, 8);
	rssp_buf_put_be(&b, (uint64_t)v->issued_at, 8);
	rssp_buf_put_tlv_hdr(&b, VOUCHER_NOT_AFTER, 8);
	rssp_buf_put_be(&b, (uint64_t)v->not_after, 8);
	rssp_buf_put_tlv(&b, VOUCHER_RA_KEY_ID, v->ra_key_id, 32);
	return rssp_buf_take(&b, outp, outlenp);
}

static int
get_str(char *dst, const uint8_t *val, size_t n, size_t max, int nocntl)
{
	if (n < 1 || n > max || !rssp_utf8_ok(val, n, nocntl))
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

		if (rssp_tlv_next(buf, len, &off, &tag, &val, &flen) != 0 || tag != want)
			return RSSP_E_INVAL;
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
