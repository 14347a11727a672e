/* fixture.c - the engine suites' shared set-up (fixture.h). */
#include "fixture.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine_client.h"

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

char *
ef_slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL, *nb;
	size_t len = 0, cap = 0, n;

	if (f == NULL) {
		fprintf(stderr, "fixture: cannot open %s\n", path);
		exit(1);
	}
	do {
		if (cap - len < 4096) {
			cap = cap != 0 ? 2 * cap : 65536;
			if ((nb = realloc(buf, cap + 1)) == NULL)
				die("slurp");
			buf = nb;
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
	} while (n > 0);
	if (ferror(f))
		die("slurp");
	fclose(f);
	buf[len] = '\0';
	return buf;
}

void
ef_engine_token(const char *dir, const char *label, const char *pin)
{
	char pinpath[1100];

	ef_softhsm_token(dir, label, pin);
	snprintf(pinpath, sizeof(pinpath), "%s/pin", dir);
	ef_write_pin(pinpath, pin, 0600);
	setenv("RSSP_PIN_FILE", pinpath, 1);
	setenv("RSSP_TOKEN_LABEL", label, 1);
	setenv("RSSP_LOG_LEVEL", "warn", 1);
	setenv("RSSP_PKCS11_MODULE", ef_pkcs11_module(), 1);
}

const char *
ef_engine_bin(const char *built)
{
	static char buf[1100];
	const char *b = getenv("RSSP_TEST_BUILD");

	if (b == NULL || access(built, X_OK) == 0)
		return built;
	snprintf(buf, sizeof(buf), "%s/engine/rssp-engine", b);
	return buf;
}

pid_t
ef_engine_start(const char *bin, const char *sock, const char *audit, const char *out,
    const char *extra, int wait_ready)
{
	struct engine_client *c;
	pid_t pid = fork();
	int fd;

	if (pid < 0)
		die("fork");
	if (pid == 0) {
		if (out != NULL && (fd = open(out, O_WRONLY | O_CREAT | O_APPEND, 0600)) >= 0)
			dup2(fd, 1);
		setenv("RSSP_ENGINE_SOCKET", sock, 1);
		setenv("RSSP_AUDIT_FILE", audit, 1);
		if (extra != NULL)
			putenv((char *)extra);
		execl(bin, "rssp-engine", "serve", (char *)NULL);
		_exit(127);
	}
	if (wait_ready) {
		if (engine_client_new(sock, 5000, &c) != 0)
			die("engine client");
		if (engine_client_ready(c, 20000) != 0) {
			fprintf(stderr, "fixture: %s did not answer on %s within 20 s\n", bin, sock);
			exit(1);
		}
		engine_client_free(c);
	}
	return pid;
}

int
ef_engine_stop(pid_t pid)
{
	int st;

	kill(pid, SIGTERM);
	if (waitpid(pid, &st, 0) != pid)
		die("waitpid");
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

void
ef_engine_kill(pid_t pid)
{
	int st;

	kill(pid, SIGKILL);
	if (waitpid(pid, &st, 0) != pid)
		die("waitpid");
}
