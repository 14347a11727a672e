/* config.h - the engine's configuration: one table of options, filled in one pass from
 * an optional NAME=value file, then the environment (which wins). The engine's
 * configuration names only the PKCS#11 module, token, PIN file, socket and local
 * knobs; nothing a peer sends can point it elsewhere. */
#ifndef RSSP_ENGINE_CONFIG_H
#define RSSP_ENGINE_CONFIG_H

#include <stdio.h>
#include <sys/types.h>

#include "rssp_err.h"

#define ENGINE_MAX_UIDS 32

struct engine_config {
	char *pkcs11_module;     /* RSSP_PKCS11_MODULE */
	char *token_label;       /* RSSP_TOKEN_LABEL */
	char *pin_file;          /* RSSP_PIN_FILE (required) */
	char *socket_path;       /* RSSP_ENGINE_SOCKET */
	char *allowed_uids;      /* RSSP_ENGINE_ALLOWED_UIDS, as given ("" = own uid) */
	char *audit_file;        /* RSSP_AUDIT_FILE ("-" = stdout) */
	char *log_level;         /* RSSP_LOG_LEVEL */
	char *ra_keys;           /* RSSP_RA_KEYS: RA public keys (ra_keys.h), "" = none */
	unsigned workers;        /* RSSP_ENGINE_WORKERS, 1..64 */
	unsigned keygen_workers; /* RSSP_ENGINE_KEYGEN_WORKERS, 1..64 (default 1): key generation
	                            (activations) runs on these, never on the workers above */
	unsigned keygen_queue;   /* RSSP_ENGINE_KEYGEN_QUEUE (default 16): activations waiting for them
	                            at most; more are refused RESOURCE_EXHAUSTED */
	unsigned sad_ttl;        /* RSSP_SAD_TTL, seconds, 1..3600 */
	unsigned audit_rotate_bytes;   /* RSSP_AUDIT_ROTATE_BYTES, 0 = never by size */
	unsigned audit_ckpt_lines;     /* RSSP_AUDIT_CHECKPOINT_LINES, 1..1000000 */
	unsigned audit_ckpt_seconds;   /* RSSP_AUDIT_CHECKPOINT_SECONDS, 1..86400 */
	unsigned audit_probe_seconds;  /* RSSP_AUDIT_PROBE_SECONDS, 1..86400 (default 3600): one
	                                  engine.probes line at most this often */
	/* derived */
	uid_t uids[ENGINE_MAX_UIDS];
	size_t n_uids;
	int log_threshold;       /* RSSP_LOG_* */
};

/* Loads the configuration: defaults, then file (NULL for none; NAME=value lines, '#'
 * comments, unknown names refused), then the environment. Parses numbers and the uid
 * list. Returns 0, RSSP_E_IO (file unreadable), RSSP_E_INVAL (a bad value; the line or
 * variable is logged, never its value when secret), RSSP_E_NOMEM. On success *cp is
 * owned by the caller, free with engine_config_free(). */
int engine_config_load(const char *file, struct engine_config **cp) RSSP_WUR;
void engine_config_free(struct engine_config *c);

/* Checks what serving needs: the module file exists, the PIN file exists and is not
 * group/other accessible, the socket's directory exists or can be created. Writes
 * each problem to err.
 * Returns 0 or RSSP_E_INVAL. */
int engine_config_validate(const struct engine_config *c, FILE *err) RSSP_WUR;

/* Prints NAME=value for every option (secret values masked). */
void engine_config_print(const struct engine_config *c, FILE *out);

#endif
