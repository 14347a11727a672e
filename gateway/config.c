/* config.c - the configuration table: one pass over RSSP_* variables. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "gw_internal.h"
#include "rssp_log.h"

enum opt_type { T_STR, T_UINT, T_ULL };

struct opt {
	const char *name;
	enum opt_type type;
	size_t off;
	const char *def;
	unsigned long long min, max;
	int secret;
};

#define OFF(f) offsetof(struct gw_config, f)
static const struct opt opts[] = {
	{"RSSP_DB_URL", T_STR, OFF(db_url), NULL, 0, 0, 1},
	{"RSSP_TLS_CERT", T_STR, OFF(tls_cert), NULL, 0, 0, 0},
	{"RSSP_TLS_KEY", T_STR, OFF(tls_key), NULL, 0, 0, 0},
	{"RSSP_ENGINE_SOCKET", T_STR, OFF(engine_socket), "/run/rssp/engine.sock", 0, 0, 0},
	{"RSSP_ENGINE_TIMEOUT_MS", T_UINT, OFF(engine_timeout_ms), "5000", 1, 600000, 0},
	{"RSSP_ENGINE_PROBE_MS", T_UINT, OFF(engine_probe_ms), "500", 50, 60000, 0},
	{"RSSP_ENGINE_KEYGEN_TIMEOUT_MS", T_UINT, OFF(engine_keygen_timeout_ms), "60000", 1, 600000, 0},
	{"RSSP_TOKEN_TTL", T_UINT, OFF(token_ttl), "3600", 1, 86400 * 7, 0},
	{"RSSP_REFRESH_TTL", T_UINT, OFF(refresh_ttl), "86400", 1, 86400 * 365, 0},
	{"RSSP_DELIVERY", T_STR, OFF(delivery), "outbox", 0, 0, 0},
	{"RSSP_SMTP_URL", T_STR, OFF(smtp_url), NULL, 0, 0, 1},
	{"RSSP_SMTP_FROM", T_STR, OFF(smtp_from), NULL, 0, 0, 0},
	{"RSSP_SMS_WEBHOOK", T_STR, OFF(sms_webhook), NULL, 0, 0, 1},
	{"RSSP_ARGON2_OPSLIMIT", T_ULL, OFF(argon2_opslimit), "2", 1, 64, 0},
	{"RSSP_ARGON2_MEMLIMIT_KIB", T_ULL, OFF(argon2_memlimit_kib), "19456", 8, 4194304, 0},
	{"RSSP_ARGON2_CONCURRENCY", T_UINT, OFF(argon2_concurrency), "0", 0, 1024, 0},
	{"RSSP_DB_POOL", T_UINT, OFF(db_pool), "16", 1, 1000, 0},
	{"RSSP_DB_PREPARE", T_UINT, OFF(db_prepare), "1", 0, 1, 0},
	{"RSSP_HTTP_THREADS", T_UINT, OFF(http_threads), "4", 1, 256, 0},
	{"RSSP_LONG_THREADS", T_UINT, OFF(long_threads), "64", 1, 4096, 0},
	{"RSSP_SERVICE_NAME", T_STR, OFF(service_name), "rssp", 0, 0, 0},
	{"RSSP_RA_KEYS", T_STR, OFF(ra_keys), "", 0, 0, 0},
	{"RSSP_SCHEMA_DIR", T_STR, OFF(schema_dir), NULL, 0, 0, 0},
	{"RSSP_LOGIN_RATE", T_UINT, OFF(login_rate), "30", 1, 1000000, 0},
	{"RSSP_LOGIN_BURST", T_UINT, OFF(login_burst), "10", 1, 1000000, 0},
	{"RSSP_LOCKOUT_THRESHOLD", T_UINT, OFF(lockout_threshold), "5", 1, 1000, 0},
	{"RSSP_LOCKOUT_SECONDS", T_UINT, OFF(lockout_seconds), "900", 1, 86400 * 365, 0},
	{"RSSP_TOKEN_CACHE_TTL", T_UINT, OFF(token_cache_ttl), "2", 0, 60, 0},
	{"RSSP_DIGEST_NONCE_TTL", T_UINT, OFF(digest_nonce_ttl), "300", 1, 86400, 0},
	{"RSSP_TRUST_FORWARDED", T_UINT, OFF(trust_forwarded), "0", 0, 1, 0},
	/* hostile load (README "Limits") */
	{"RSSP_LOGIN_KEYS", T_UINT, OFF(login_keys), "100000", 16, 10000000, 0},
	{"RSSP_LOGIN_QUEUE", T_UINT, OFF(login_queue), "16", 1, 4096, 0},
	{"RSSP_WAITS_PER_CLIENT", T_UINT, OFF(waits_per_client), "8", 1, 4096, 0},
	{"RSSP_WAITS_TOTAL", T_UINT, OFF(waits_total), "0", 0, 4096, 0},
	{"RSSP_CONN_PER_ADDRESS", T_UINT, OFF(conn_per_address), "64", 0, 100000, 0},
	{"RSSP_REQUEST_DEADLINE", T_UINT, OFF(request_deadline), "30", 1, 3600, 0},
	{"RSSP_CSC_REGION", T_STR, OFF(csc_region), "FR", 0, 0, 0},
	{"RSSP_CSC_V1_AUTHORIZE_WAIT", T_UINT, OFF(csc_v1_wait), "120", 1, 600, 0},
	{"RSSP_OAUTH_ADDR_RATE", T_UINT, OFF(oauth_addr_rate), "10", 1, 1000000, 0},
	{"RSSP_OAUTH_ADDR_BURST", T_UINT, OFF(oauth_addr_burst), "10", 1, 1000000, 0},
	{"RSSP_OAUTH_CREDENTIAL_RATE", T_UINT, OFF(oauth_cred_rate), "3", 1, 1000000, 0},
	{"RSSP_OAUTH_CREDENTIAL_BURST", T_UINT, OFF(oauth_cred_burst), "3", 1, 1000000, 0},
	{"RSSP_OAUTH_PENDING_PER_CREDENTIAL", T_UINT, OFF(oauth_pending), "3", 1, 1000, 0},
};

static const char *const levels[] = {"error", "warn", "info", "debug"};

void
gw_config_free(struct gw_config *cfg)
{
	size_t i;

	if (cfg == NULL)
		return;
	for (i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
		if (opts[i].type == T_STR)
			free(*(char **)((char *)cfg + opts[i].off));
	free(cfg->listen_host);
	free(cfg);
}

static int
parse_listen(struct gw_config *cfg, const char *v)
{
	const char *colon = strrchr(v, ':');
	char *end;
	unsigned long port;
	size_t hl;

	if (colon == NULL || colon == v)
		return RSSP_E_INVAL;
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno || *end != '\0' || end == colon + 1 || port > 65535)
		return RSSP_E_INVAL;
	hl = (size_t)(colon - v);
	if (v[0] == '[' && hl >= 2 && v[hl - 1] == ']') { /* [::1]:8080 */
		v++;
		hl -= 2;
	}
	if ((cfg->listen_host = strndup(v, hl)) == NULL)
		return RSSP_E_NOMEM;
	cfg->listen_port = (unsigned)port;
	return 0;
}

int
gw_config_load(struct gw_config **cfgp)
{
	struct gw_config *cfg;
	const char *v;
	size_t i;
	int r = RSSP_E_INVAL;

	if ((cfg = calloc(1, sizeof(*cfg))) == NULL)
		return RSSP_E_NOMEM;
	for (i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
		const struct opt *o = &opts[i];
		void *dst = (char *)cfg + o->off;
		unsigned long long x;
		char *end;

		v = getenv(o->name);
		if (v != NULL && *v == '\0')
			v = NULL;
		if (v == NULL)
			v = o->def;
		if (o->type == T_STR) {
			if (v != NULL && (*(char **)dst = strdup(v)) == NULL) {
				r = RSSP_E_NOMEM;
				goto out;
			}
			continue;
		}
		errno = 0;
		x = strtoull(v, &end, 10);
		if (errno || *end != '\0' || end == v || v[0] == '-' || x < o->min || x > o->max) {
			fprintf(stderr, "rssp-gateway: %s must be an integer from %llu to %llu\n",
			    o->name, o->min, o->max);
			goto out;
		}
		if (o->type == T_UINT)
			*(unsigned *)dst = (unsigned)x;
		else
			*(unsigned long long *)dst = x;
	}
	if (cfg->db_url == NULL) {
		fprintf(stderr, "rssp-gateway: RSSP_DB_URL is required\n");
		goto out;
	}
	v = getenv("RSSP_ENGINE_SOCKET");
	cfg->engine_socket_set = v != NULL && *v != '\0';
	v = getenv("RSSP_LISTEN");
	if (parse_listen(cfg, v != NULL && *v ? v : "127.0.0.1:8080") < 0) {
		fprintf(stderr, "rssp-gateway: RSSP_LISTEN must be host:port\n");
		goto out;
	}
	if ((cfg->tls_cert == NULL) != (cfg->tls_key == NULL)) {
		fprintf(stderr, "rssp-gateway: RSSP_TLS_CERT and RSSP_TLS_KEY must be set together\n");
		goto out;
	}
	if (strcmp(cfg->delivery, "outbox") != 0 && strcmp(cfg->delivery, "deliver") != 0) {
		fprintf(stderr, "rssp-gateway: RSSP_DELIVERY must be outbox or deliver\n");
		goto out;
	}
	cfg->log_level = RSSP_LOG_INFO;
	v = getenv("RSSP_LOG_LEVEL");
	if (v != NULL && *v != '\0') {
		for (i = 0; i < 4; i++)
			if (strcmp(v, levels[i]) == 0)
				break;
		if (i == 4) {
			fprintf(stderr, "rssp-gateway: RSSP_LOG_LEVEL must be error, warn, info or debug\n");
			goto out;
		}
		cfg->log_level = (int)i;
	}
	if (cfg->schema_dir == NULL) {
		const char *d = access(RSSP_SOURCE_SCHEMA_DIR, R_OK) == 0 ?
		    RSSP_SOURCE_SCHEMA_DIR : "/usr/share/rssp/schema";
		if ((cfg->schema_dir = strdup(d)) == NULL) {
			r = RSSP_E_NOMEM;
			goto out;
		}
	}
	*cfgp = cfg;
	cfg = NULL;
	r = 0;
out:
	gw_config_free(cfg);
	return r;
}

void
gw_config_print(const struct gw_config *cfg, FILE *f)
{
	size_t i;

	fprintf(f, "RSSP_LISTEN=%s:%u\n", cfg->listen_host, cfg->listen_port);
	for (i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
		const struct opt *o = &opts[i];
		const void *src = (const char *)cfg + o->off;

		if (o->type == T_STR) {
			const char *s = *(char *const *)src;
			fprintf(f, "%s=%s\n", o->name, s == NULL ? "" : o->secret ? "********" : s);
		} else if (o->type == T_UINT) {
			fprintf(f, "%s=%u\n", o->name, *(const unsigned *)src);
		} else {
			fprintf(f, "%s=%llu\n", o->name, *(const unsigned long long *)src);
		}
	}
	fprintf(f, "RSSP_LOG_LEVEL=%s\n", levels[cfg->log_level]);
	fprintf(f, "# transport: %s\n", cfg->tls_cert ? "https (TLS 1.2, 1.3)" : "http (plain)");
}
