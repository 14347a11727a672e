/* main.c - rssp-gateway: serve, migrate, bootstrap-admin. Wires the modules together. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "config.h"
#include "db.h"
#include "engine_client.h"
#include "gw.h"
#include "gw_internal.h"
#include "outbox.h"
#include "rssp_log.h"
#include "engine_client.h"
#include "engine_health.h"
#include "secrets.h"

static void
usage(void)
{
	fprintf(stderr,
	    "usage: rssp-gateway serve [--check]\n"
	    "       rssp-gateway migrate\n"
	    "       rssp-gateway bootstrap-admin --email EMAIL [--password-file FILE]\n"
	    "configuration: RSSP_* environment variables (see --check)\n");
}

/* Connects and applies the migrations, retrying for a while: the database may still be
 * starting (a pod and its database come up together). */
static int
connect_and_migrate(const struct gw_config *cfg, PGconn **cp)
{
	PGconn *c = NULL;
	int r = RSSP_E_UNAVAILABLE, i, applied = 0;

	for (i = 0; i < 30; i++) {
		if ((r = gw_db_connect(cfg->db_url, &c)) == 0)
			break;
		sleep(1);
	}
	if (r < 0)
		return r;
	if ((r = gw_db_migrate(c, cfg->schema_dir, &applied)) < 0) {
		PQfinish(c);
		return r;
	}
	if (applied > 0)
		log_info("applied %d migration(s) from %s", applied, cfg->schema_dir);
	*cp = c;
	return 0;
}

static int
cmd_serve(struct gw_config *cfg, int check)
{
	struct gw_db_pool *pool = NULL;
	struct gw_server *srv = NULL;
	struct engine_client *engine = NULL;
	struct outbox_delivery *delivery = NULL;
	PGconn *c = NULL;
	sigset_t set;
	int sig, r;

	if (check) {
		gw_config_print(cfg, stdout);
		return 0;
	}
	/* SIGTERM/SIGINT are taken by sigwait below; every thread inherits the mask */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	if ((r = connect_and_migrate(cfg, &c)) < 0)
		goto out;
	PQfinish(c);
	if ((r = gw_db_pool_new(cfg->db_url, cfg->db_pool, &pool)) < 0)
		goto out;
	/* each call passes its own deadline (RSSP_ENGINE_TIMEOUT_MS or, for activations,
	 * RSSP_ENGINE_KEYGEN_TIMEOUT_MS) */
	if ((r = engine_client_new(cfg->engine_socket, cfg->engine_timeout_ms, &engine)) < 0) {
		log_error("cannot create the engine client: %s", rssp_strerror(r));
		goto out;
	}
	if ((r = engine_health_start(cfg->engine_socket, cfg->engine_probe_ms,
	    cfg->engine_probe_ms * 3 / 2, engine, NULL)) < 0) {
		log_error("cannot start the engine probe: %s", rssp_strerror(r));
		goto out;
	}
	if (strcmp(cfg->delivery, "deliver") == 0) {
		struct outbox_delivery_conf oc = { .db_url = cfg->db_url, .smtp_url = cfg->smtp_url,
		    .smtp_from = cfg->smtp_from, .sms_webhook = cfg->sms_webhook };
		if ((r = outbox_delivery_start(&oc, &delivery)) < 0) /* before any other thread uses libcurl */
			goto out;
	}
	if ((r = gw_server_start(cfg, pool, engine, &srv)) < 0)
		goto out;
	if (sigwait(&set, &sig) == 0)
		log_info("signal %d: stopping", sig);
	gw_server_stop(srv); /* waits for requests in flight */
	srv = NULL;
	r = 0;
out:
	gw_server_stop(srv);
	outbox_delivery_free(delivery);
	engine_health_stop(); /* before the client whose calls it cuts short */
	engine_client_free(engine);
	gw_db_pool_free(pool);
	return r;
}

static int
cmd_migrate(const struct gw_config *cfg)
{
	PGconn *c = NULL;
	int r;

	if ((r = connect_and_migrate(cfg, &c)) < 0)
		return r;
	PQfinish(c);
	return 0;
}

/* Reads the passphrase: the first line of path, or of standard input when NULL. */
static int
read_passphrase(const char *path, char *buf, size_t n)
{
	FILE *f = path ? fopen(path, "r") : stdin;
	size_t len;
	int r = RSSP_E_IO;

	if (f == NULL) {
		fprintf(stderr, "rssp-gateway: cannot open %s\n", path);
		return RSSP_E_IO;
	}
	if (fgets(buf, (int)n, f) == NULL)
		goto out;
	len = strcspn(buf, "\r\n");
	buf[len] = '\0';
	r = 0;
out:
	if (path)
		fclose(f);
	return r;
}

static int
cmd_bootstrap_admin(const struct gw_config *cfg, const char *email, const char *pwfile)
{
	char pass[1100], hash[GW_PWHASH_MAX];
	PGconn *c = NULL;
	PGresult *res = NULL;
	size_t len;
	int r;

	if (email == NULL || strlen(email) < 3 || strlen(email) > 254 || strchr(email, '@') == NULL) {
		fprintf(stderr, "rssp-gateway: bootstrap-admin needs --email EMAIL\n");
		return RSSP_E_INVAL;
	}
	if ((r = read_passphrase(pwfile, pass, sizeof(pass))) < 0) {
		fprintf(stderr, "rssp-gateway: cannot read the passphrase\n");
		goto out;
	}
	len = strlen(pass);
	if (len < 10 || len > 256) {
		fprintf(stderr, "rssp-gateway: the passphrase must be 10 to 256 characters\n");
		r = RSSP_E_INVAL;
		goto out;
	}
	if ((r = gw_password_hash(pass, hash)) < 0)
		goto out;
	if ((r = connect_and_migrate(cfg, &c)) < 0)
		goto out;
	r = gw_db_query(c, &res, "INSERT INTO accounts (email, full_name, role, status, passphrase_hash,"
	    " confirmed_at) VALUES ($1, 'administrator', 'admin', 'ACTIVE', $2, now()) RETURNING id",
	    2, email, hash);
	if (r == RSSP_E_CONFLICT) {
		fprintf(stderr, "rssp-gateway: an account with this email exists already\n");
		goto out;
	}
	if (r < 0)
		goto out;
	printf("%s\n", gw_val(res, 0, "id"));
	fflush(stdout);
out:
	sodium_memzero(pass, sizeof(pass));
	sodium_memzero(hash, sizeof(hash));
	PQclear(res);
	PQfinish(c);
	return r;
}

int
main(int argc, char **argv)
{
	struct gw_config *cfg = NULL;
	const char *email = NULL, *pwfile = NULL;
	int check = 0, i, r;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2) {
		usage();
		return 2;
	}
	for (i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--check") == 0 && strcmp(argv[1], "serve") == 0)
			check = 1;
		else if (strcmp(argv[i], "--email") == 0 && i + 1 < argc)
			email = argv[++i];
		else if (strcmp(argv[i], "--password-file") == 0 && i + 1 < argc)
			pwfile = argv[++i];
		else {
			usage();
			return 2;
		}
	}
	if ((r = gw_config_load(&cfg)) < 0)
		return 1;
	rssp_log_init("gateway", cfg->log_level);
	if (gw_runtime_init(cfg) < 0) {
		log_error("cannot initialise");
		gw_config_free(cfg);
		return 1;
	}
	if (strcmp(argv[1], "serve") == 0)
		r = cmd_serve(cfg, check);
	else if (strcmp(argv[1], "migrate") == 0)
		r = cmd_migrate(cfg);
	else if (strcmp(argv[1], "bootstrap-admin") == 0)
		r = cmd_bootstrap_admin(cfg, email, pwfile);
	else {
		usage();
		r = RSSP_E_INVAL;
	}
	gw_runtime_shutdown();
	gw_config_free(cfg);
	return r < 0 ? 1 : 0;
}
