/* config.c - the engine's option table (config.h). */
#include "config.h"
#include "ra_keys.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rssp_log.h"

enum opt_type { OPT_STR, OPT_UINT };

struct opt {
	const char *name;        /* the variable, in the file and the environment */
	enum opt_type type;
	size_t off;
	const char *def;         /* NULL: required */
	unsigned min, max;       /* OPT_UINT */
	int secret;              /* masked by --check */
};

#define S(f) offsetof(struct engine_config, f)
static const struct opt opts[] = {
	{ "RSSP_PKCS11_MODULE", OPT_STR, S(pkcs11_module), "/usr/lib/softhsm/libsofthsm2.so", 0, 0, 0 },
	{ "RSSP_TOKEN_LABEL", OPT_STR, S(token_label), "rssp", 0, 0, 0 },
	{ "RSSP_PIN_FILE", OPT_STR, S(pin_file), NULL, 0, 0, 0 },
	{ "RSSP_ENGINE_SOCKET", OPT_STR, S(socket_path), "/run/rssp/engine.sock", 0, 0, 0 },
	{ "RSSP_ENGINE_ALLOWED_UIDS", OPT_STR, S(allowed_uids), "", 0, 0, 0 },
	{ "RSSP_ENGINE_WORKERS", OPT_UINT, S(workers), "4", 1, 64, 0 },
	{ "RSSP_ENGINE_KEYGEN_WORKERS", OPT_UINT, S(keygen_workers), "1", 1, 64, 0 },
	{ "RSSP_ENGINE_KEYGEN_QUEUE", OPT_UINT, S(keygen_queue), "16", 1, 4096, 0 },
	{ "RSSP_SAD_TTL", OPT_UINT, S(sad_ttl), "300", 1, 3600, 0 },
	{ "RSSP_RA_KEYS", OPT_STR, S(ra_keys), "", 0, 0, 0 },
	{ "RSSP_AUDIT_FILE", OPT_STR, S(audit_file), "-", 0, 0, 0 },
	{ "RSSP_AUDIT_ROTATE_BYTES", OPT_UINT, S(audit_rotate_bytes), "0", 0, 2147483647U, 0 },
	{ "RSSP_AUDIT_CHECKPOINT_LINES", OPT_UINT, S(audit_ckpt_lines), "1000", 1, 1000000, 0 },
	{ "RSSP_AUDIT_CHECKPOINT_SECONDS", OPT_UINT, S(audit_ckpt_seconds), "60", 1, 86400, 0 },
	{ "RSSP_AUDIT_PROBE_SECONDS", OPT_UINT, S(audit_probe_seconds), "3600", 1, 86400, 0 },
	{ "RSSP_LOG_LEVEL", OPT_STR, S(log_level), "info", 0, 0, 0 },
};
#undef S
#define NOPTS (sizeof(opts) / sizeof(opts[0]))

static int
set_opt(struct engine_config *c, const struct opt *o, const char *val, const char *where)
{
	char *end, *dup;
	unsigned long v;

	if (o->type == OPT_UINT) {
		errno = 0;
		v = strtoul(val, &end, 10);
		if (errno != 0 || end == val || *end != '\0' || val[0] == '-' ||
		    v < o->min || v > o->max) {
			log_error("%s: %s must be a number in %u..%u", where, o->name, o->min, o->max);
			return RSSP_E_INVAL;
		}
		*(unsigned *)((char *)c + o->off) = (unsigned)v;
		return 0;
	}
	if (strlen(val) > PATH_MAX) {
		log_error("%s: %s is too long", where, o->name);
		return RSSP_E_INVAL;
	}
	if ((dup = strdup(val)) == NULL)
		return RSSP_E_NOMEM;
	free(*(char **)((char *)c + o->off));
	*(char **)((char *)c + o->off) = dup;
	return 0;
}

static const struct opt *
find_opt(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < NOPTS; i++)
		if (strlen(opts[i].name) == len && strncmp(opts[i].name, name, len) == 0)
			return &opts[i];
	return NULL;
}

static int
load_file(struct engine_config *c, const char *file)
{
	FILE *f = NULL;
	char *line = NULL, *p, *eq, *e, where[PATH_MAX + 32];
	size_t cap = 0, lineno = 0;
	ssize_t len;
	const struct opt *o;
	int r = RSSP_E_IO;

	if ((f = fopen(file, "re")) == NULL) {
		log_error("cannot open config file %s: %s", file, strerror(errno));
		goto out;
	}
	while ((len = getline(&line, &cap, f)) >= 0) {
		lineno++;
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r' ||
		    line[len - 1] == ' ' || line[len - 1] == '\t'))
			line[--len] = '\0';
		for (p = line; *p == ' ' || *p == '\t'; p++)
			;
		if (*p == '\0' || *p == '#')
			continue;
		snprintf(where, sizeof(where), "%.4000s:%zu", file, lineno);
		r = RSSP_E_INVAL;
		if ((eq = strchr(p, '=')) == NULL) {
			log_error("%s: expected NAME=value", where);
			goto out;
		}
		for (e = eq; e > p && (e[-1] == ' ' || e[-1] == '\t'); e--)
			;
		if ((o = find_opt(p, (size_t)(e - p))) == NULL) {
			log_error("%s: unknown option %.*s", where, (int)((e - p) > 100 ? 100 : (e - p)), p);
			goto out;
		}
		for (eq++; *eq == ' ' || *eq == '\t'; eq++)
			;
		if ((r = set_opt(c, o, eq, where)) != 0)
			goto out;
	}
	if (ferror(f))
		goto out;
	r = 0;
out:
	free(line);
	if (f != NULL)
		fclose(f);
	return r;
}

static int
parse_uids(struct engine_config *c)
{
	const char *p = c->allowed_uids;
	char *end;
	unsigned long v;

	c->n_uids = 0;
	if (p == NULL || *p == '\0') {
		c->uids[c->n_uids++] = geteuid();
		return 0;
	}
	for (;;) {
		while (*p == ' ')
			p++;
		errno = 0;
		v = strtoul(p, &end, 10);
		if (errno != 0 || end == p || *p == '-' || v >= (unsigned long)UINT32_MAX ||
		    c->n_uids == ENGINE_MAX_UIDS) {
			log_error("RSSP_ENGINE_ALLOWED_UIDS must be up to %d comma-separated uids",
			    ENGINE_MAX_UIDS);
			return RSSP_E_INVAL;
		}
		c->uids[c->n_uids++] = (uid_t)v;
		while (*end == ' ')
			end++;
		if (*end == '\0')
			return 0;
		if (*end != ',') {
			log_error("RSSP_ENGINE_ALLOWED_UIDS must be up to %d comma-separated uids",
			    ENGINE_MAX_UIDS);
			return RSSP_E_INVAL;
		}
		p = end + 1;
	}
}

static int
parse_level(struct engine_config *c)
{
	static const char *names[] = { "error", "warn", "info", "debug" };
	int i;

	for (i = 0; i < 4; i++)
		if (strcmp(c->log_level, names[i]) == 0) {
			c->log_threshold = i;
			return 0;
		}
	log_error("RSSP_LOG_LEVEL must be error, warn, info or debug");
	return RSSP_E_INVAL;
}

int
engine_config_load(const char *file, struct engine_config **cp)
{
	struct engine_config *c;
	const char *v;
	size_t i;
	int r = RSSP_E_NOMEM;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		goto out;
	for (i = 0; i < NOPTS; i++)
		if (opts[i].def != NULL && (r = set_opt(c, &opts[i], opts[i].def, "default")) != 0)
			goto out;
	if (file != NULL && (r = load_file(c, file)) != 0)
		goto out;
	for (i = 0; i < NOPTS; i++)
		if ((v = getenv(opts[i].name)) != NULL &&
		    (r = set_opt(c, &opts[i], v, "environment")) != 0)
			goto out;
	r = RSSP_E_INVAL;
	for (i = 0; i < NOPTS; i++)
		if (opts[i].type == OPT_STR && *(char **)((char *)c + opts[i].off) == NULL) {
			log_error("%s is required", opts[i].name);
			goto out;
		}
	if (c->socket_path[0] != '/' || strlen(c->socket_path) >= 108) {
		log_error("RSSP_ENGINE_SOCKET must be an absolute path under 108 bytes");
		goto out;
	}
	if ((r = parse_uids(c)) != 0 || (r = parse_level(c)) != 0)
		goto out;
	*cp = c;
	c = NULL;
	r = 0;
out:
	engine_config_free(c);
	return r;
}

void
engine_config_free(struct engine_config *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < NOPTS; i++)
		if (opts[i].type == OPT_STR)
			free(*(char **)((char *)c + opts[i].off));
	free(c);
}

int
engine_config_validate(const struct engine_config *c, FILE *err)
{
	struct stat st;
	char dir[PATH_MAX], *slash;
	struct ra_keys *ra = NULL;
	int bad = 0, r;

	if (stat(c->pkcs11_module, &st) != 0 || !S_ISREG(st.st_mode)) {
		fprintf(err, "RSSP_PKCS11_MODULE: %s is not a file\n", c->pkcs11_module);
		bad = 1;
	}
	if (stat(c->pin_file, &st) != 0 || !S_ISREG(st.st_mode)) {
		fprintf(err, "RSSP_PIN_FILE: %s is not a readable file\n", c->pin_file);
		bad = 1;
	} else if ((st.st_mode & 077) != 0) {
		fprintf(err, "RSSP_PIN_FILE: %s is accessible by group or others (mode %04o)\n",
		    c->pin_file, (unsigned)(st.st_mode & 07777));
		bad = 1;
	} else if (access(c->pin_file, R_OK) != 0) {
		fprintf(err, "RSSP_PIN_FILE: %s is not readable\n", c->pin_file);
		bad = 1;
	}
	snprintf(dir, sizeof(dir), "%s", c->socket_path);
	if ((slash = strrchr(dir, '/')) != NULL)
		*slash = '\0';
	if (dir[0] == '\0')
		snprintf(dir, sizeof(dir), "/");
	if (stat(dir, &st) == 0) {
		if (!S_ISDIR(st.st_mode)) {
			fprintf(err, "RSSP_ENGINE_SOCKET: %s is not a directory\n", dir);
			bad = 1;
		} else if ((st.st_mode & 07) != 0) {
			/* Not fatal: peers are checked by uid; but say so. */
			fprintf(err, "warning: RSSP_ENGINE_SOCKET: directory %s is accessible by "
			    "others (mode %04o); prefer a 0750 directory\n", dir,
			    (unsigned)(st.st_mode & 07777));
		}
	} else {
		if ((slash = strrchr(dir, '/')) != NULL)
			*slash = '\0';
		if (dir[0] == '\0')
			snprintf(dir, sizeof(dir), "/");
		if (access(dir, W_OK | X_OK) != 0) {
			fprintf(err, "RSSP_ENGINE_SOCKET: cannot create its directory in %s\n", dir);
			bad = 1;
		}
	}
	if (c->ra_keys[0] == '\0') {
		fprintf(err, "warning: RSSP_RA_KEYS is not set: no registration authority is "
		    "trusted, every credential activation is refused\n");
	} else if ((r = ra_keys_load(c->ra_keys, &ra)) != 0) {
		fprintf(err, "RSSP_RA_KEYS: cannot load %s: %s\n", c->ra_keys, rssp_strerror(r));
		bad = 1;
	}
	ra_keys_free(ra);
	return bad ? RSSP_E_INVAL : 0;
}

void
engine_config_print(const struct engine_config *c, FILE *out)
{
	struct ra_keys *ra = NULL;
	char hex[65];
	size_t i;

	for (i = 0; i < NOPTS; i++) {
		const struct opt *o = &opts[i];
		if (o->secret)
			fprintf(out, "%s=********\n", o->name);
		else if (o->type == OPT_UINT)
			fprintf(out, "%s=%u\n", o->name, *(const unsigned *)((const char *)c + o->off));
		else
			fprintf(out, "%s=%s\n", o->name, *(char *const *)((const char *)c + o->off));
	}
	fprintf(out, "# allowed peer uids:");
	for (i = 0; i < c->n_uids; i++)
		fprintf(out, "%s%u", i ? "," : " ", (unsigned)c->uids[i]);
	fprintf(out, "\n");
	if (c->ra_keys[0] != '\0' && ra_keys_load(c->ra_keys, &ra) == 0) {
		for (i = 0; i < ra_keys_count(ra); i++) {
			ra_key_id_hex(ra_keys_id(ra, i), hex);
			fprintf(out, "# ra key %s %s\n", hex, ra_keys_kind(ra, i));
		}
	}
	fprintf(out, "# ra keys trusted: %zu\n", ra_keys_count(ra));
	ra_keys_free(ra);
}
