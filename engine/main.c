/* main.c - rssp-engine: wires configuration, audit log, sam and the gRPC server. */
#include <errno.h>
#include <libgen.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "audit.h"
#include "buf.h"
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

static void
h_undo(void *arg, const struct sam_audit *a)
{
	sam_undo(arg, a);
}

/* Activations generate a key: on the key-generation workers (RSSP_ENGINE_KEYGEN_WORKERS). */
static int
is_keygen(const struct rpc_method *m, const uint8_t *in, size_t inlen)
{
	return m->handler == h_authorize && sam_authorize_generates_key(in, inlen);
}

/* The closed table of the engine's protocol: anything else is UNIMPLEMENTED. */
static const struct rpc_method engine_methods[] = {
	{ "/rssp.engine.v1.Engine/Authorize", SAM_MAX_AUTHORIZE_MSG, h_authorize,
	  AUDIT_AUTHORIZE_APPROVAL },
	{ "/rssp.engine.v1.Engine/SignHash", SAM_MAX_SIGNHASH_MSG, h_sign_hash,
	  AUDIT_SIGNHASH },
};

static void
usage(void)
{
	fprintf(stderr,
	    "usage: rssp-engine serve [--config FILE] [--check]\n"
	    "       rssp-engine init [--config FILE] [--ca-subject S] [--ca-days N] [--force]\n"
	    "       rssp-engine audit-verify [--key PEM] [--anchor FILE] [--partial] FILE...\n"
	    "       rssp-engine probe [--socket PATH] [--config FILE] [--timeout-ms N]\n"
	    "       rssp-engine audit-key [--config FILE]\n");
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
	sc->ra_keys = c->ra_keys[0] != '\0' ? c->ra_keys : NULL;
}

/* Every subcommand that reads the configuration starts here: loads it (the error is
 * printed), starts the log lines at its threshold and fills *sc for sam_open() or
 * sam_init_token(). Returns 0 or -1; on success *cfgp is the caller's (engine_config_free). */
static int
load_config(const char *file, struct engine_config **cfgp, struct sam_config *sc)
{
	if (engine_config_load(file, cfgp) != 0)
		return -1;
	rssp_log_init("engine", (*cfgp)->log_threshold);
	sam_cfg(*cfgp, sc);
	return 0;
}

/* Writes the audit key's public key (audit-key.pem) and certificate (audit-key.crt)
 * next to the audit log, or both to standard output when the log is "-". Returns
 * 0 or -1; *key_sha256 gets the hex SHA-256 of the SubjectPublicKeyInfo. */
static int
export_audit_key(struct sam *sam, const char *audit_file, char key_sha256[65])
{
	const uint8_t *der, *p;
	size_t derlen;
	X509 *cert = NULL;
	EVP_PKEY *pub;
	unsigned char *spki = NULL, md[SHA256_DIGEST_LENGTH];
	char *dcopy = NULL, *dir, path[4200];
	FILE *f = NULL;
	int n, rc = -1, tostdout = audit_file != NULL && strcmp(audit_file, "-") == 0, k;

	if (sam_audit_certificate(sam, &der, &derlen) != 0)
		goto out;
	p = der;
	if ((cert = d2i_X509(NULL, &p, (long)derlen)) == NULL ||
	    (pub = X509_get0_pubkey(cert)) == NULL || (n = i2d_PUBKEY(pub, &spki)) <= 0)
		goto out;
	SHA256(spki, (size_t)n, md);
	rssp_hex(key_sha256, md, sizeof(md));
	if (audit_file == NULL) {
		rc = 0; /* the fingerprint only */
		goto out;
	}
	if ((dcopy = strdup(audit_file)) == NULL)
		goto out;
	dir = dirname(dcopy);
	for (k = 0; k < 2; k++) {
		if (tostdout)
			f = stdout;
		else {
			snprintf(path, sizeof(path), "%s/%s", dir,
			    k == 0 ? "audit-key.pem" : "audit-key.crt");
			/* public material: readable by whoever verifies the log */
			if ((f = fopen(path, "we")) == NULL) {
				log_warn("cannot write %s: %s", path, strerror(errno));
				goto out;
			}
			fchmod(fileno(f), 0644);
		}
		if ((k == 0 ? PEM_write_PUBKEY(f, pub) : PEM_write_X509(f, cert)) != 1 ||
		    fflush(f) != 0) {
			if (f != stdout)
				fclose(f);
			f = NULL;
			goto out;
		}
		if (f != stdout && fclose(f) != 0)
			goto out;
		f = NULL;
	}
	rc = 0;
out:
	OPENSSL_free(spki);
	X509_free(cert);
	free(dcopy);
	return rc;
}

struct restore_ctx {
	struct sam *sam;
	size_t lines;
	int err;
};

static void
restore_line(void *arg, const struct audit_entry *e)
{
	struct restore_ctx *c = arg;
	struct sam_restore_line l;
	int r;

	l.time = e->time;
	l.event = e->event;
	l.result = e->result;
	l.sad_id = e->sad_id;
	l.approval_key = e->approval_key;
	l.sad_expires_at = e->sad_expires_at;
	l.signatures = e->signatures;
	if ((r = sam_restore_add(c->sam, &l)) != 0)
		c->err = r;
	c->lines++;
}

/* Counts and approvals of the SADs still valid, read back from the audit log. */
static int
restore(struct sam *sam, const char *path)
{
	struct restore_ctx c = { sam, 0, 0 };
	int r;

	if ((r = audit_scan(path, sam_restore_since(sam), restore_line, &c)) != 0)
		return r;
	if (c.err == 0)
		log_info("restored SAD counts and approvals from %zu audit lines", c.lines);
	return c.err;
}

/* Signals and the audit log's clock, while the server runs on the main thread:
 * SIGTERM/SIGINT stop it (through stop_pipe), SIGHUP rotates the audit log, about
 * once a second a checkpoint is written when one is due, and every probe_seconds the
 * liveness probes answered meanwhile are recorded (one engine.probes line). */
struct keeper {
	int sfd;
	int stop_pipe[2];
	struct audit *audit;
	struct rpc_server *srv;
	unsigned probe_seconds;
	atomic_int done;
};

static void *
keeper_main(void *arg)
{
	struct keeper *k = arg;
	struct signalfd_siginfo si;
	struct pollfd pf;
	struct timespec now, last_probes;

	clock_gettime(CLOCK_MONOTONIC, &last_probes);
	while (!atomic_load(&k->done)) {
		pf.fd = k->sfd;
		pf.events = POLLIN;
		if (poll(&pf, 1, 1000) > 0 && read(k->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
			if (si.ssi_signo == SIGHUP) {
				log_info("SIGHUP: rotating the audit log");
				if (audit_rotate(k->audit) != 0)
					log_error("audit log rotation failed: still writing the old file");
				continue;
			}
			if (write(k->stop_pipe[1], "x", 1) != 1)
				log_error("cannot signal the stop");
			break;
		}
		if (audit_tick(k->audit) != 0)
			log_error("cannot write a due audit checkpoint");
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - last_probes.tv_sec >= (time_t)k->probe_seconds) {
			last_probes = now;
			if (rpc_server_audit_probes(k->srv) < 0)
				log_error("cannot record the liveness probes in the audit log");
		}
	}
	return NULL;
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
	struct keeper k = { .sfd = -1, .stop_pipe = { -1, -1 } };
	pthread_t keeper;
	char key_sha256[65];
	sigset_t set;
	int sfd = -1, r, rc = 1;

	if (load_config(file, &cfg, &sc) != 0)
		goto out;
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
	sigaddset(&set, SIGHUP);
	if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0 ||
	    (sfd = signalfd(-1, &set, SFD_CLOEXEC)) < 0 || pipe2(k.stop_pipe, O_CLOEXEC) != 0) {
		log_error("cannot set up signals: %s", strerror(errno));
		goto out;
	}
	signal(SIGPIPE, SIG_IGN);
	/* a file size limit (ulimit -f, LimitFSIZE=) reached by the audit log must make a
	 * write fail (EFBIG: the call is refused, audit log unavailable), not kill the engine */
	signal(SIGXFSZ, SIG_IGN);
	if ((r = audit_open(cfg->audit_file, &audit)) != 0) {
		log_error("cannot open the audit log: %s", r == RSSP_E_CONFLICT ?
		    "in use by another engine" : rssp_strerror(r));
		goto out;
	}
	audit_set_rotate_bytes(audit, cfg->audit_rotate_bytes);
	memset(&o, 0, sizeof(o));
	o.socket_path = cfg->socket_path;
	o.uids = cfg->uids;
	o.n_uids = cfg->n_uids;
	o.workers = cfg->workers;
	o.slow = is_keygen;
	o.slow_workers = cfg->keygen_workers;
	o.slow_queue = cfg->keygen_queue;
	o.audit = audit;
	o.methods = engine_methods;
	o.n_methods = sizeof(engine_methods) / sizeof(engine_methods[0]);
	o.undo = h_undo;
	o.probe_method = RPC_PROBE_METHOD;
	/* bind first: a second instance must not touch the HSM or the live socket */
	if ((r = rpc_server_new(&o, &srv)) != 0) {
		log_error("cannot serve on %s: %s", cfg->socket_path, rssp_strerror(r));
		goto out;
	}
	memset(&rec, 0, sizeof(rec));
	rec.event = AUDIT_ENGINE_START;
	rec.peer_uid = -1;
	if ((r = sam_open(&sc, &sam)) != 0) {
		log_error("cannot open the token %s: %s", cfg->token_label, rssp_strerror(r));
		rec.result = "error";
		rec.reason = rssp_strerror(r);
		if (audit_write(audit, &rec) != 0)
			log_error("cannot write the audit log");
		goto out;
	}
	/* with the log on standard output, the PEMs would break the audit stream: the key
	 * is then printed by `init` and `audit-key` only */
	if (export_audit_key(sam, strcmp(cfg->audit_file, "-") == 0 ? NULL : cfg->audit_file,
	    key_sha256) != 0) {
		/* the fingerprint is needed; the files are a convenience (audit-key prints them) */
		if (export_audit_key(sam, NULL, key_sha256) != 0) {
			log_error("cannot read the audit key");
			goto out;
		}
		log_warn("cannot write audit-key.pem/.crt next to the audit log "
		    "(rssp-engine audit-key prints them)");
	}
	log_info("audit checkpoints sealed by the key with SPKI SHA-256 %s", key_sha256);
	audit_set_sealer(audit, sam_audit_seal, sam, key_sha256, cfg->audit_ckpt_lines,
	    cfg->audit_ckpt_seconds, STDOUT_FILENO);
	/* counts and approvals of the SADs still valid come back from the log */
	if (strcmp(cfg->audit_file, "-") != 0 && (r = restore(sam, cfg->audit_file)) != 0) {
		log_error("cannot read the audit log back: %s", rssp_strerror(r));
		goto out;
	}
	rpc_server_set_handler_arg(srv, sam);
	rec.result = "ok";
	if (audit_write(audit, &rec) != 0) {
		log_error("cannot write the audit log");
		goto out;
	}
	k.sfd = sfd;
	k.audit = audit;
	k.srv = srv;
	k.probe_seconds = cfg->audit_probe_seconds;
	atomic_store(&k.done, 0);
	if (pthread_create(&keeper, NULL, keeper_main, &k) != 0) {
		log_error("cannot start the signal thread");
		goto out;
	}
	r = rpc_server_run(srv, k.stop_pipe[0]);
	atomic_store(&k.done, 1);
	pthread_join(keeper, NULL);
	if (rpc_server_audit_probes(srv) < 0)
		log_error("cannot record the liveness probes in the audit log");
	rec.event = AUDIT_ENGINE_STOP;
	rec.result = r == 0 ? "ok" : "error";
	rec.reason = r == 0 ? NULL : rssp_strerror(r);
	if (audit_write(audit, &rec) != 0)
		log_error("cannot write the audit log");
	else if (audit_checkpoint(audit) != 0)
		log_error("cannot seal the audit log at shutdown");
	rc = r == 0 ? 0 : 1;
out:
	rpc_server_free(srv);
	sam_free(sam);
	audit_free(audit);
	engine_config_free(cfg);
	if (sfd >= 0)
		close(sfd);
	if (k.stop_pipe[0] >= 0) {
		close(k.stop_pipe[0]);
		close(k.stop_pipe[1]);
	}
	return rc;
}

static int
cmd_init(const char *file, const char *subject, unsigned days, int force)
{
	struct engine_config *cfg = NULL;
	struct sam_config sc;
	struct sam_init_opts io;
	struct sam *sam = NULL;
	char key[65];
	int r, rc = 1;

	if (load_config(file, &cfg, &sc) != 0)
		goto out;
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
	/* the audit key's public half and certificate go next to the audit log */
	rc = 0; /* the token is initialised; the key files are a convenience */
	if ((r = sam_open(&sc, &sam)) != 0 || export_audit_key(sam, cfg->audit_file, key) != 0)
		fprintf(stderr, "warning: cannot write the audit key next to the audit log "
		    "(rssp-engine audit-key prints it)\n");
	else if (strcmp(cfg->audit_file, "-") != 0)
		printf("audit key written next to %s (audit-key.pem, audit-key.crt)\n",
		    cfg->audit_file);
out:
	sam_free(sam);
	engine_config_free(cfg);
	return rc;
}

static int
cmd_audit_verify(int argc, char **argv)
{
	struct audit_verify_opts o;
	struct audit_verify_result res;
	int i, r;

	memset(&o, 0, sizeof(o));
	for (i = 2; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
		if (strcmp(argv[i], "--key") == 0 && i + 1 < argc)
			o.key_pem = argv[++i];
		else if (strcmp(argv[i], "--anchor") == 0 && i + 1 < argc)
			o.anchor = argv[++i];
		else if (strcmp(argv[i], "--partial") == 0)
			o.partial = 1;
		else {
			usage();
			return 2;
		}
	}
	if (i >= argc) {
		usage();
		return 2;
	}
	r = audit_verify_files((const char *const *)argv + i, (size_t)(argc - i), &o, stdout, &res);
	if (r == 0) {
		if (res.unchecked && res.checkpoints > 0) {
			printf("ok %zu lines (chain only), %zu checkpoints NOT checked (no audit "
			    "key: --key), last seq %llu\n", res.lines, res.checkpoints, res.last_seq);
			fprintf(stderr, "head %s\n", res.head);
			return 0;
		}
		printf("ok %zu lines, %zu checkpoints, last seq %llu, last sealed seq %llu",
		    res.lines, res.checkpoints, res.last_seq, res.sealed_seq);
		if (res.last_seq > res.sealed_seq)
			printf(" (%llu lines after it not sealed yet)", res.last_seq - res.sealed_seq);
		printf("\n");
		fprintf(stderr, "head %s\n", res.head);
		return 0;
	}
	return r == RSSP_E_DENIED ? 1 : 2;
}

/* Prints the audit key's public key and certificate (PEM) on standard output. */
static int
cmd_audit_key(const char *file)
{
	struct engine_config *cfg = NULL;
	struct sam_config sc;
	struct sam *sam = NULL;
	char key[65];
	int r, rc = 1;

	if (load_config(file, &cfg, &sc) != 0)
		goto out;
	if ((r = sam_open(&sc, &sam)) != 0) {
		fprintf(stderr, "cannot open the token %s: %s\n", cfg->token_label, rssp_strerror(r));
		goto out;
	}
	if (export_audit_key(sam, "-", key) != 0)
		goto out;
	fprintf(stderr, "audit key SPKI SHA-256 %s\n", key);
	rc = 0;
out:
	sam_free(sam);
	engine_config_free(cfg);
	return rc;
}

/* The socket comes from --socket, else RSSP_ENGINE_SOCKET, else the configuration file,
 * else the default: a probe needs no PIN file. */
static int
cmd_probe(const char *file, const char *socket_path, unsigned timeout_ms)
{
	struct engine_config *cfg = NULL;
	int st = -1, r;

	if (socket_path == NULL)
		socket_path = getenv("RSSP_ENGINE_SOCKET");
	if (socket_path == NULL && file != NULL) {
		if (engine_config_load(file, &cfg) != 0)
			return 2;
		socket_path = cfg->socket_path;
	}
	if (socket_path == NULL)
		socket_path = "/run/rssp/engine.sock";
	r = rpc_probe(socket_path, timeout_ms, &st);
	if (r == 0)
		printf("engine answers on %s\n", socket_path);
	else
		fprintf(stderr, "engine on %s does not answer within %u ms (grpc status %d)\n",
		    socket_path, timeout_ms, st);
	engine_config_free(cfg);
	return r == 0 ? 0 : 1;
}

/* A decimal option value in lo..hi; says which option is wrong. Returns 0 or -1. */
static int
opt_ulong(const char *arg, const char *name, unsigned long lo, unsigned long hi,
    unsigned long *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(arg, &end, 10);
	if (errno != 0 || end == arg || *end != '\0' || v < lo || v > hi) {
		fprintf(stderr, "%s must be %lu..%lu\n", name, lo, hi);
		return -1;
	}
	*out = v;
	return 0;
}

int
main(int argc, char **argv)
{
	const char *file = NULL, *subject = NULL, *probe_socket = NULL;
	unsigned long days = 0, timeout_ms = 1000;
	int check = 0, force = 0, i;

	rssp_log_init("engine", RSSP_LOG_INFO);
	harden();
	if (argc < 2) {
		usage();
		return 2;
	}
	if (strcmp(argv[1], "audit-verify") == 0)
		return cmd_audit_verify(argc, argv);
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
			if (opt_ulong(argv[++i], "--ca-days", 1, 36500, &days) != 0)
				return 2;
		} else if (strcmp(argv[i], "--force") == 0 && strcmp(argv[1], "init") == 0)
			force = 1;
		else if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc &&
		    strcmp(argv[1], "probe") == 0)
			probe_socket = argv[++i];
		else if (strcmp(argv[i], "--timeout-ms") == 0 && i + 1 < argc &&
		    strcmp(argv[1], "probe") == 0) {
			if (opt_ulong(argv[++i], "--timeout-ms", 1, 60000, &timeout_ms) != 0)
				return 2;
		}
		else {
			usage();
			return 2;
		}
	}
	if (strcmp(argv[1], "serve") == 0)
		return cmd_serve(file, check);
	if (strcmp(argv[1], "init") == 0)
		return cmd_init(file, subject, (unsigned)days, force);
	if (strcmp(argv[1], "probe") == 0)
		return cmd_probe(file, probe_socket, (unsigned)timeout_ms);
	if (strcmp(argv[1], "audit-key") == 0)
		return cmd_audit_key(file);
	usage();
	return 2;
}
