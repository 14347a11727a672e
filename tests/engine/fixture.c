/* fixture.c - the engine suites' shared set-up (fixture.h). */
#include "fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void
die(const char *what)
{
	fprintf(stderr, "fixture: %s failed\n", what);
	exit(1);
}

void
ef_run(const char *cmd)
{
	int rc = system(cmd);

	if (rc != 0) {
		fprintf(stderr, "fixture: command failed (%d): %s\n", rc, cmd);
		exit(1);
	}
}

void
ef_tempdir(char *out, size_t outlen, const char *prefix)
{
	const char *base = getenv("RSSP_TEST_WORK");
	int n;

	n = snprintf(out, outlen, "%s/%sXXXXXX", base != NULL && base[0] != '\0' ? base : "/tmp",
	    prefix);
	if (n < 0 || (size_t)n >= outlen)
		die("temporary directory name");
	if (mkdtemp(out) == NULL)
		die("mkdtemp");
}

void
ef_rmtree(const char *dir)
{
	char cmd[1200];

	if (dir == NULL || dir[0] == '\0' || strchr(dir, '\'') != NULL)
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "fixture: cannot remove %s\n", dir);
}

void
ef_softhsm_token(const char *dir, const char *label, const char *pin)
{
	char conf[1100], tokens[1100], cmd[1400];
	FILE *f;

	snprintf(conf, sizeof(conf), "%s/softhsm2.conf", dir);
	snprintf(tokens, sizeof(tokens), "%s/tokens", dir);
	if (mkdir(tokens, 0700) != 0 || (f = fopen(conf, "w")) == NULL)
		die("softhsm directory");
	fprintf(f, "directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n"
	    "slots.removable = false\n", tokens);
	if (fclose(f) != 0)
		die("softhsm configuration");
	setenv("SOFTHSM2_CONF", conf, 1);
	snprintf(cmd, sizeof(cmd), "softhsm2-util --init-token --free --label %s --pin %s "
	    "--so-pin so-%s >/dev/null", label, pin, pin);
	ef_run(cmd);
}

void
ef_write_pin(const char *path, const char *pin, mode_t mode)
{
	FILE *f;

	if ((f = fopen(path, "w")) == NULL)
		die("pin file");
	fprintf(f, "%s\n", pin);
	if (fclose(f) != 0 || chmod(path, mode) != 0)
		die("pin file");
}

const char *
ef_pkcs11_module(void)
{
	const char *m = getenv("RSSP_TEST_PKCS11_MODULE");

	return m != NULL && m[0] != '\0' ? m : "/usr/lib/softhsm/libsofthsm2.so";
}
