/* main.c - rssp-engine: wires configuration, audit log, sam and the gRPC server. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit.h"
#include "config.h"
#include "rpc_server.h"
#include "rssp_log.h"
#include "sam.h"

static int
h_authorize(void *arg, const uint8_t *in, size_t inlen, uint8_t **outp, size_t *outlenp,
    struct sam_audit *a)
{
	return sam_authorize(arg, in, inlen, outp, outlenp, a);
}

static int
h_sign_hash(void *arg, const uint8_t *in, size_t inlen, uint8_t **outp, size_t *outlenp,
    struct sam_audit *a)
{
	return sam_sign_hash(arg, in, inlen, outp, outlenp, a);
}

/* The closed table of the engine's protocol: anything else is UNIMPLEMENTED. */
static const struct rpc_method engine_methods[] = {
	/* activations generate a key: on the key-generation workers (RSSP_ENGINE_KEYGEN_WORKERS) */
	{ "/rssp.engine.v1.Engine/Authorize", SAM_MAX_AUTHORIZE_MSG, h_authorize,
	  AUDIT_AUTHORIZE_APPROVAL, sam_authorize_generates_key },
	{ "/rssp.engine.v1.Engine/SignHash", SAM_MAX_SIGNHASH_MSG, h_sign_hash,
	  AUDIT_SIGNHASH, NULL },
};

static void
usage(void)
{
	fprintf(stderr,
	    "usage: rssp-engine serve [--config FILE] [--check]\n"
	    "       rssp-engine init [--config FILE] [--ca-subject S] [--ca-days N] [--force]\n"
	    "       rssp-engine audit-verify FILE\n");
}

/* No core dumps, no ptrace by other processes of the uid, private files. */
static void
harden(void)
{
	struct rlimit rl = { 0, 0 };

	umask(077);
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		log_warn("cannot make the process non-dumpable: %s", strerror(errno));
	if (setrlimit(RLIMIT_CORE, &rl) != 0)
		log_warn("cannot disable core dumps: %s", strerror(errno));
}

static void
sam_cfg(const struct engine_config *c, struct sam_config *sc)
{
	memset(sc, 0, sizeof(*sc));
	sc->module_path = c->pkcs11_module;
	sc->token_label = c->token_label;
	sc->pin_file = c->pin_file;
	sc->sessions = c->workers + c->keygen_workers; /* every worker holds one at a time */
	sc->sad_ttl = c->sad_ttl;
}

static int
cmd_serve(const char *file, int check)
{
	struct engine_config *cfg = NULL;
	struct audit *audit = NULL;
	struct rpc_server *srv = NULL;
	struct rpc_server_opts o;
	struct audit_record rec;
	struct sam_config sc;
	struct sam *sam = NULL;
	sigset_t set;
	int sfd = -1, r, rc = 1;

	if (engine_config_load(file, &cfg) != 0)
		goto out;
	rssp_log_init("engine", cfg->log_threshold);
	if (check) {
		engine_config_print(cfg, stdout);
		rc = engine_config_validate(cfg, stderr) == 0 ? 0 : 1;
		printf("%s\n", rc == 0 ? "configuration ok" : "configuration invalid");
		goto out;
	}
	if (engine_config_validate(cfg, stderr) != 0)
		goto out;
	/* Signals are read from a signalfd by the accepting thread; block them before any
	 * thread exists so that none of gRPC's threads takes them. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0 ||
	    (sfd = signalfd(-1, &set, SFD_CLOEXEC)) < 0) {
		log_error("cannot set up signals: %s", strerror(errno));
		goto out;
	}
	signal(SIGPIPE, SIG_IGN);
	if ((r = audit_open(cfg->audit_file, &audit)) != 0) {
		log_error("cannot open the audit log: %s", rssp_strerror(r));
		goto out;
	}
	memset(&o, 0, sizeof(o));
	o.socket_path = cfg->socket_path;
	o.uids = cfg->uids;
	o.n_uids = cfg->n_uids;
	o.workers = cfg->workers;
	o.slow_workers = cfg->keygen_workers;
	o.slow_queue = cfg->keygen_queue;
	o.audit = audit;
	o.methods = engine_methods;
	o.n_methods = sizeof(engine_methods) / sizeof(engine_methods[0]);
	/* bind first: a second instance must not touch the HSM or the live socket */
	if ((r = rpc_server_new(&o, &srv)) != 0) {
		log_error("cannot serve on %s: %s", cfg->socket_path, rssp_strerror(r));
		goto out;
	}
	memset(&rec, 0, sizeof(rec));
	rec.event = AUDIT_ENGINE_START;
	rec.peer_uid = -1;
	sam_cfg(cfg, &sc);
	if ((r = sam_open(&sc, &sam)) != 0) {
		log_error("cannot open the token %s: %s", cfg->token_label, rssp_strerror(r));
		rec.result = "error";
		rec.reason = rssp_strerror(r);
		if (audit_write(audit, &rec) != 0)
			log_error("cannot write the audit log");
		goto out;
	}
	rpc_server_set_handler_arg(srv, sam);
	rec.result = "ok";
	if (audit_write(audit, &rec) != 0) {
		log_error("cannot write the audit log");
		goto out;
	}
	r = rpc_server_run(srv, sfd);
	rec.event = AUDIT_ENGINE_STOP;
	rec.result = r == 0 ? "ok" : "error";
	rec.reason = r == 0 ? NULL : rssp_strerror(r);
	if (audit_write(audit, &rec) != 0)
		log_error("cannot write the audit log");
	rc = r == 0 ? 0 : 1;
out:
	rpc_server_free(srv);
	sam_free(sam);
	audit_free(audit);
	engine_config_free(cfg);
	if (sfd >= 0)
		close(sfd);
	return rc;
}

static int
cmd_init(const char *file, const char *subject, unsigned days, int force)
{
	struct engine_config *cfg = NULL;
	struct sam_config sc;
	struct sam_init_opts io;
	int r, rc = 1;

	if (engine_config_load(file, &cfg) != 0)
		goto out;
	rssp_log_init("engine", cfg->log_threshold);
	sam_cfg(cfg, &sc);
	memset(&io, 0, sizeof(io));
	io.ca_subject = subject;
	io.ca_validity_days = days;
	io.force = force;
	if ((r = sam_init_token(&sc, &io)) != 0) {
		fprintf(stderr, "cannot initialise token %s: %s\n", cfg->token_label,
		    r == RSSP_E_CONFLICT ? "already initialised (use --force to replace)" :
		    rssp_strerror(r));
		goto out;
	}
	printf("token %s initialised\n", cfg->token_label);
	rc = 0;
out:
	engine_config_free(cfg);
	return rc;
}

static int
cmd_audit_verify(const char *path)
{
	size_t n = 0;
	char head[65];
	int r;

	r = audit_verify(path, stdout, &n, head);
	if (r == 0) {
		printf("ok %zu lines\n", n);
		fprintf(stderr, "head %s\n", head);
		return 0;
	}
	return r == RSSP_E_DENIED ? 1 : 2;
}

int
main(int argc, char **argv)
{
	const char *file = NULL, *subject = NULL;
	unsigned long days = 0;
	int check = 0, force = 0, i;
	char *end;

	rssp_log_init("engine", RSSP_LOG_INFO);
	harden();
	if (argc < 2) {
		usage();
		return 2;
	}
	if (strcmp(argv[1], "audit-verify") == 0) {
		if (argc != 3) {
			usage();
			return 2;
		}
		return cmd_audit_verify(argv[2]);
	}
	for (i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
			file = argv[++i];
		else if (strcmp(argv[i], "--check") == 0 && strcmp(argv[1], "serve") == 0)
			check = 1;
		else if (strcmp(argv[i], "--ca-subject") == 0 && i + 1 < argc &&
		    strcmp(argv[1], "init") == 0)
			subject = argv[++i];
		else if (strcmp(argv[i], "--ca-days") == 0 && i + 1 < argc &&
		    strcmp(argv[1], "init") == 0) {
			errno = 0;
			days = strtoul(argv[++i], &end, 10);
			if (errno != 0 || *end != '\0' || days < 1 || days > 36500) {
				fprintf(stderr, "--ca-days must be 1..36500\n");
				return 2;
			}
		} else if (strcmp(argv[i], "--force") == 0 && strcmp(argv[1], "init") == 0)
			force = 1;
		else {
			usage();
			return 2;
		}
	}
	if (strcmp(argv[1], "serve") == 0)
		return cmd_serve(file, check);
	if (strcmp(argv[1], "init") == 0)
		return cmd_init(file, subject, (unsigned)days, force);
	usage();
	return 2;
}
