/* framing.c - strict request framing and paths (framing.h). */
#include <string.h>
#include <strings.h>

#include "framing.h"

const char *
gw_framing_check_target(const char *raw)
{
	const char *p;

	if (raw == NULL)
		return NULL;
	for (p = raw; *p != '\0'; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			return "the request target must be printable ASCII";
	p = strchr(raw, '?');
	if (memchr(raw, '%', p != NULL ? (size_t)(p - raw) : strlen(raw)) != NULL)
		return "the request path must not hold percent-escapes";
	if (p != NULL && strstr(p, "%00") != NULL)
		return "the request target must not hold NUL bytes";
	return NULL;
}

struct hstate {
	unsigned n_cl, n_te;
	int bad_name, bad_cl, bad_te;
};

static int
is_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	    (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static enum MHD_Result
on_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct hstate *h = cls;
	const char *p;

	(void)kind;
	if (key == NULL || *key == '\0') {
		h->bad_name = 1;
		return MHD_YES;
	}
	for (p = key; *p != '\0'; p++)
		if (!is_tchar((unsigned char)*p)) {
			h->bad_name = 1;
			return MHD_YES;
		}
	if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
		h->n_cl++;
		if (value == NULL || *value == '\0' || strspn(value, "0123456789") != strlen(value))
			h->bad_cl = 1;
	} else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
		h->n_te++;
		if (value == NULL || strcasecmp(value, "chunked") != 0)
			h->bad_te = 1;
	}
	return MHD_YES;
}

const char *
gw_framing_check_headers(struct MHD_Connection *conn)
{
	struct hstate h;

	memset(&h, 0, sizeof(h));
	(void)MHD_get_connection_values(conn, MHD_HEADER_KIND, on_header, &h);
	if (h.bad_name)
		return "a header name is not a token (no spaces before the colon)";
	if (h.n_cl > 1)
		return "more than one Content-Length header";
	if (h.bad_cl)
		return "Content-Length must be a decimal number";
	if (h.n_cl > 0 && h.n_te > 0)
		return "Content-Length and Transfer-Encoding together";
	if (h.n_te > 1 || h.bad_te)
		return "Transfer-Encoding must be \"chunked\" alone";
	return NULL;
}
