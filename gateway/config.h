/* config.h - the gateway's configuration table: RSSP_* environment variables with
 * defaults, filled in one pass. */
#ifndef RSSP_GW_CONFIG_H
#define RSSP_GW_CONFIG_H

#include <stdio.h>

#include "rssp_err.h"

struct gw_config {
	char *db_url;             /* RSSP_DB_URL (required; a secret: may hold a password) */
	char *listen_host;        /* from RSSP_LISTEN host:port, default 127.0.0.1:8080 */
	unsigned listen_port;
	char *tls_cert;           /* RSSP_TLS_CERT, PEM file; NULL for plain HTTP */
	char *tls_key;            /* RSSP_TLS_KEY, PEM file (secret) */
	char *engine_socket;      /* RSSP_ENGINE_SOCKET, default /run/rssp/engine.sock */
	int engine_socket_set;    /* 1 when RSSP_ENGINE_SOCKET was given explicitly */
	unsigned engine_timeout_ms; /* RSSP_ENGINE_TIMEOUT_MS, default 5000 */
	unsigned engine_probe_ms; /* RSSP_ENGINE_PROBE_MS: the engine is probed when it has not answered
	                             for this long (idle or down), deadline 1.5x; default 500 */
	unsigned engine_keygen_timeout_ms; /* RSSP_ENGINE_KEYGEN_TIMEOUT_MS: deadline of the engine calls that
	                                      generate a key (credential activation), default 60000 */
	unsigned token_ttl;       /* RSSP_TOKEN_TTL seconds, default 3600 */
	unsigned refresh_ttl;     /* RSSP_REFRESH_TTL seconds, default 86400 */
	char *delivery;           /* RSSP_DELIVERY "outbox" (default) | "deliver" */
	char *smtp_url;           /* RSSP_SMTP_URL (secret: may hold credentials) */
	char *smtp_from;          /* RSSP_SMTP_FROM */
	char *sms_webhook;        /* RSSP_SMS_WEBHOOK (secret: may hold a key) */
	unsigned long long argon2_opslimit;   /* RSSP_ARGON2_OPSLIMIT, default 2 */
	unsigned long long argon2_memlimit_kib; /* RSSP_ARGON2_MEMLIMIT_KIB, default 19456 */
	unsigned argon2_concurrency; /* RSSP_ARGON2_CONCURRENCY: argon2id computations at once; 0 (default) = half the CPUs, at least 1 */
	unsigned db_pool;         /* RSSP_DB_POOL, default 16 */
	unsigned db_prepare;      /* RSSP_DB_PREPARE: 1 (default) prepares each parameterised query once per connection */
	unsigned http_threads;    /* RSSP_HTTP_THREADS, default 4 */
	unsigned long_threads;    /* RSSP_LONG_THREADS: threads for waiting requests (long-polls), default 64 */
	char *service_name;       /* RSSP_SERVICE_NAME, default "rssp" (also the Digest realm) */
	int log_level;            /* RSSP_LOG_LEVEL error|warn|info|debug, default info */
	char *schema_dir;         /* RSSP_SCHEMA_DIR, default: the source tree, else /usr/share/rssp/schema */
	unsigned login_rate;      /* RSSP_LOGIN_RATE: login attempts per minute per address and per account (default 30) */
	unsigned login_burst;     /* RSSP_LOGIN_BURST: bucket size (default 10) */
	unsigned lockout_threshold; /* RSSP_LOCKOUT_THRESHOLD, default 5 */
	unsigned lockout_seconds; /* RSSP_LOCKOUT_SECONDS, default 900 */
	unsigned token_cache_ttl; /* RSSP_TOKEN_CACHE_TTL seconds a verified token is cached, default 2; 0 disables */
	unsigned trust_forwarded; /* RSSP_TRUST_FORWARDED=1: the client address is the last X-Forwarded-For entry (behind an ingress) */
	char *ra_keys;            /* RSSP_RA_KEYS: RA public keys for an early check of vouches ("" = none; the engine decides) */
	unsigned digest_nonce_ttl; /* RSSP_DIGEST_NONCE_TTL seconds, default 300 */
	/* hostile load (README "Limits"; loadcap.h, ratelimit.h, framing.h) */
	unsigned login_keys;      /* RSSP_LOGIN_KEYS: rate-limit buckets kept at most (default 100000) */
	unsigned login_queue;     /* RSSP_LOGIN_QUEUE: logins in progress at once; more get 503 (default 16) */
	unsigned waits_per_client; /* RSSP_WAITS_PER_CLIENT: long-polls waiting at once per account; more get 429 (default 8) */
	unsigned waits_total;     /* RSSP_WAITS_TOTAL: long-polls waiting at once in all; 0 (default) = RSSP_LONG_THREADS / 2 */
	unsigned conn_per_address; /* RSSP_CONN_PER_ADDRESS: open connections per client address; 0 = no cap (default 64) */
	unsigned request_deadline; /* RSSP_REQUEST_DEADLINE: seconds a connection may take to send a whole request (default 30) */
	char *csc_region;         /* RSSP_CSC_REGION: ISO 3166-1 alpha-2 country of the service for CSC info, default "FR" */
	unsigned csc_v1_wait;     /* RSSP_CSC_V1_AUTHORIZE_WAIT: seconds a CSC v1 credentials/authorize waits for the
	                             signer's confirmation (on the long pool), default 120, at most 600 */
	/* oauth2/authorize is unauthenticated and prompts the signer's phone (oauth.c) */
	unsigned oauth_addr_rate;  /* RSSP_OAUTH_ADDR_RATE: approval requests a minute per client address (default 10) */
	unsigned oauth_addr_burst; /* RSSP_OAUTH_ADDR_BURST: bucket size (default 10) */
	unsigned oauth_cred_rate;  /* RSSP_OAUTH_CREDENTIAL_RATE: approval requests a minute per credential (default 3) */
	unsigned oauth_cred_burst; /* RSSP_OAUTH_CREDENTIAL_BURST: bucket size (default 3) */
	unsigned oauth_pending;    /* RSSP_OAUTH_PENDING_PER_CREDENTIAL: OAuth approval requests pending at once per
	                              credential (default 3) */
};

/* Fills *cfgp from the environment. Returns 0, or RSSP_E_INVAL after printing to
 * stderr which variable is wrong. On success *cfgp is owned by the caller, free with
 * gw_config_free(). */
int gw_config_load(struct gw_config **cfgp) RSSP_WUR;
void gw_config_free(struct gw_config *cfg);
/* Prints the configuration as NAME=value lines, secrets masked. */
void gw_config_print(const struct gw_config *cfg, FILE *f);

#endif
