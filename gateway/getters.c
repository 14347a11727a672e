/* getters.c - the JSON field getters of gw.h, and the role and uuid parsers. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "gw.h"

static json_t *
member(struct gw_request *req, const char *field)
{
	json_t *v;

	if (req->body == NULL || !json_is_object(req->body))
		return NULL;
	v = json_object_get(req->body, field);
	if (v != NULL && json_is_null(v))
		return NULL;
	return v;
}

int
gw_get_str(struct gw_request *req, struct gw_reply *rep, const char *field,
    size_t maxlen, bool required, const char **vp)
{
	json_t *v = member(req, field);
	const char *s;
	size_t len;

	if (v == NULL) {
		if (required)
			return gw_error(rep, 400, "invalid_request", "missing field '%s'", field);
		*vp = NULL;
		return 0;
	}
	if (!json_is_string(v))
		return gw_error(rep, 400, "invalid_request", "field '%s' must be a string", field);
	s = json_string_value(v);
	len = json_string_length(v);
	if (strlen(s) != len)
		return gw_error(rep, 400, "invalid_request", "field '%s' must not contain NUL", field);
	if (required && len == 0)
		return gw_error(rep, 400, "invalid_request", "field '%s' must not be empty", field);
	if (len > maxlen)
		return gw_error(rep, 400, "invalid_request",
		    "field '%s' must be at most %zu characters", field, maxlen);
	*vp = s;
	return 0;
}

int
gw_get_int(struct gw_request *req, struct gw_reply *rep, const char *field,
    long long min, long long max, bool required, long long def, long long *vp)
{
	json_t *v = member(req, field);
	long long x;

	if (v == NULL) {
		if (required)
			return gw_error(rep, 400, "invalid_request", "missing field '%s'", field);
		*vp = def;
		return 0;
	}
	if (!json_is_integer(v))
		return gw_error(rep, 400, "invalid_request", "field '%s' must be an integer", field);
	x = json_integer_value(v);
	if (x < min || x > max)
		return gw_error(rep, 400, "invalid_request",
		    "field '%s' must be between %lld and %lld", field, min, max);
	*vp = x;
	return 0;
}

int
gw_get_bool(struct gw_request *req, struct gw_reply *rep, const char *field,
    bool required, bool def, bool *vp)
{
	json_t *v = member(req, field);

	if (v == NULL) {
		if (required)
			return gw_error(rep, 400, "invalid_request", "missing field '%s'", field);
		*vp = def;
		return 0;
	}
	if (!json_is_boolean(v))
		return gw_error(rep, 400, "invalid_request", "field '%s' must be a boolean", field);
	*vp = json_is_true(v);
	return 0;
}

int
gw_get_b64(struct gw_request *req, struct gw_reply *rep, const char *field,
    size_t maxlen, bool required, uint8_t **bufp, size_t *lenp)
{
	json_t *v = member(req, field);
	const char *s;
	size_t len, n = 0;
	uint8_t *buf = NULL;
	int r;

	if (v == NULL) {
		if (required)
			return gw_error(rep, 400, "invalid_request", "missing field '%s'", field);
		*bufp = NULL;
		*lenp = 0;
		return 0;
	}
	if (!json_is_string(v))
		return gw_error(rep, 400, "invalid_request", "field '%s' must be a base64 string", field);
	s = json_string_value(v);
	len = json_string_length(v);
	if (len > (maxlen + 2) / 3 * 4 || len > 0x7fffffff)
		return gw_error(rep, 400, "invalid_request",
		    "field '%s' must decode to at most %zu bytes", field, maxlen);
	/* a NUL inside the string is not base64 either */
	if (strlen(s) != len || (r = rssp_unb64(s, &buf, &n)) == RSSP_E_INVAL || (r == 0 && n == 0)) {
		free(buf);
		return gw_error(rep, 400, "invalid_request", "field '%s' must be valid base64", field);
	}
	if (r != 0)
		return r;
	if (n > maxlen) {
		free(buf);
		return gw_error(rep, 400, "invalid_request",
		    "field '%s' must decode to at most %zu bytes", field, maxlen);
	}
	*bufp = buf;
	*lenp = n;
	return 0;
}

int
gw_get_str_array(struct gw_request *req, struct gw_reply *rep, const char *field,
    size_t max_items, size_t max_len, bool required, const char ***itemsp, size_t *np)
{
	json_t *v = member(req, field), *e;
	const char **items;
	size_t n, i;

	if (v == NULL) {
		if (required)
			return gw_error(rep, 400, "invalid_request", "missing field '%s'", field);
		*itemsp = NULL;
		*np = 0;
		return 0;
	}
	if (!json_is_array(v))
		return gw_error(rep, 400, "invalid_request", "field '%s' must be an array of strings", field);
	n = json_array_size(v);
	if (n == 0 || n > max_items)
		return gw_error(rep, 400, "invalid_request",
		    "field '%s' must hold 1 to %zu items", field, max_items);
	items = calloc(n, sizeof(*items));
	if (items == NULL)
		return RSSP_E_NOMEM;
	json_array_foreach(v, i, e) {
		if (!json_is_string(e) || json_string_length(e) == 0 ||
		    json_string_length(e) > max_len ||
		    strlen(json_string_value(e)) != json_string_length(e)) {
			free(items);
			return gw_error(rep, 400, "invalid_request",
			    "field '%s' must hold strings of 1 to %zu characters", field, max_len);
		}
		items[i] = json_string_value(e);
	}
	*itemsp = items;
	*np = n;
	return 0;
}

const char *
gw_role_name(unsigned role)
{
	switch (role) {
	case GW_ROLE_ADMIN: return "admin";
	case GW_ROLE_RP: return "rp";
	case GW_ROLE_COMPANY_ADMIN: return "company_admin";
	case GW_ROLE_SIGNER: return "signer";
	default: return "";
	}
}

unsigned
gw_role_parse(const char *name)
{
	if (name == NULL)
		return 0;
	if (strcmp(name, "admin") == 0) return GW_ROLE_ADMIN;
	if (strcmp(name, "rp") == 0) return GW_ROLE_RP;
	if (strcmp(name, "company_admin") == 0) return GW_ROLE_COMPANY_ADMIN;
	if (strcmp(name, "signer") == 0) return GW_ROLE_SIGNER;
	return 0;
}

int
gw_is_uuid(const char *s)
{
	size_t i;

	if (s == NULL || strlen(s) != GW_UUID_LEN)
		return 0;
	for (i = 0; i < GW_UUID_LEN; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return 0;
		} else if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
			return 0;
		}
	}
	return 1;
}
