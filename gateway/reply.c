/* reply.c - replies and error replies (gw.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw.h"
#include "gw_internal.h"

static void
reply_clear(struct gw_reply *rep)
{
	unsigned i;

	json_decref(rep->body);
	rep->body = NULL;
	free(rep->text_);
	free(rep->ctype_);
	rep->text_ = rep->ctype_ = NULL;
	for (i = 0; i < rep->n_headers; i++) {
		free(rep->headers[i][0]);
		free(rep->headers[i][1]);
		rep->headers[i][0] = rep->headers[i][1] = NULL;
	}
	rep->n_headers = 0;
	rep->status = 0;
}

int
gw_reply_json(struct gw_reply *rep, int status, json_t *body)
{
	json_decref(rep->body);
	rep->body = body; /* owned by the reply now */
	free(rep->text_);
	rep->text_ = NULL;
	rep->status = status;
	if (body == NULL && status != 204) {
		rep->status = 0; /* the framework answers 500 */
		return RSSP_E_NOMEM;
	}
	return 0;
}

int
gw_reply_text(struct gw_reply *rep, int status, const char *ctype, const char *text)
{
	json_decref(rep->body);
	rep->body = NULL;
	free(rep->text_);
	free(rep->ctype_);
	rep->text_ = strdup(text);
	rep->ctype_ = strdup(ctype);
	rep->status = status;
	if (rep->text_ == NULL || rep->ctype_ == NULL) {
		free(rep->text_);
		free(rep->ctype_);
		rep->text_ = rep->ctype_ = NULL;
		rep->status = 0;
		return RSSP_E_NOMEM;
	}
	return 0;
}

int
gw_reply_empty(struct gw_reply *rep, int status)
{
	json_decref(rep->body);
	rep->body = NULL;
	rep->status = status;
	return 0;
}

int
gw_reply_header(struct gw_reply *rep, const char *name, const char *value)
{
	char *n, *v;

	if (rep->n_headers >= GW_MAX_REPLY_HEADERS)
		return RSSP_E_TOOBIG;
	n = strdup(name);
	v = strdup(value);
	if (n == NULL || v == NULL) {
		free(n);
		free(v);
		return RSSP_E_NOMEM;
	}
	rep->headers[rep->n_headers][0] = n;
	rep->headers[rep->n_headers][1] = v;
	rep->n_headers++;
	return 0;
}

static int
reply_has_header(const struct gw_reply *rep, const char *name)
{
	unsigned i;

	for (i = 0; i < rep->n_headers; i++)
		if (strcasecmp(rep->headers[i][0], name) == 0)
			return 1;
	return 0;
}

int
gw_error(struct gw_reply *rep, int http_status, const char *code, const char *fmt, ...)
{
	char desc[512];
	va_list ap;
	json_t *o;

	va_start(ap, fmt);
	vsnprintf(desc, sizeof(desc), fmt, ap);
	va_end(ap);

	/* keep headers set on purpose (Retry-After), drop any earlier body */
	json_decref(rep->body);
	rep->body = NULL;
	free(rep->text_);
	rep->text_ = NULL;
	o = json_pack("{s:s, s:s}", "error", code, "error_description", desc);
	if (o == NULL) /* a description that is not valid UTF-8: never echo it */
		o = json_pack("{s:s, s:s}", "error", code, "error_description", "invalid request");
	rep->body = o;
	rep->status = http_status;
	if (http_status == 401 && strcmp(code, "invalid_token") == 0 &&
	    !reply_has_header(rep, "WWW-Authenticate"))
		if (gw_reply_header(rep, "WWW-Authenticate", "Bearer error=\"invalid_token\"") < 0)
			rep->status = 500;
	if ((http_status == 429 || http_status == 503) && !reply_has_header(rep, "Retry-After"))
		if (gw_reply_header(rep, "Retry-After", "1") < 0)
			rep->status = 500;
	return RSSP_E_INVAL;
}

/* Used by the server to reset a reply between uses. */
void gw_reply_release(struct gw_reply *rep);
void
gw_reply_release(struct gw_reply *rep)
{
	reply_clear(rep);
}
