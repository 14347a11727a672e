/* fixture.h - what the engine suites (tests/engine, tests/engine_rpc) share: a private
 * temporary directory under $RSSP_TEST_WORK (tests/run) or /tmp, a private SoftHSM2
 * configuration with one fresh token, PIN files, the PKCS#11 module to load, and the
 * real rssp-engine binary started, awaited and stopped.
 * Every function dies (exit 1, message on stderr) when the environment cannot be set
 * up: a fixture that half works only hides the test's own failure. */
#ifndef RSSP_TEST_FIXTURE_H
#define RSSP_TEST_FIXTURE_H

#include <stddef.h>
#include <sys/types.h>

/* Creates "<$RSSP_TEST_WORK or /tmp>/<prefix>XXXXXX" (mode 0700) into out. */
void ef_tempdir(char *out, size_t outlen, const char *prefix);

/* Removes dir and everything below it; a failure is reported, not fatal. */
void ef_rmtree(const char *dir);

/* Writes <dir>/softhsm2.conf with <dir>/tokens as the token directory, points
 * SOFTHSM2_CONF at it, and initialises a token labelled label with the user PIN pin
 * (and SO PIN "so-<pin>") in the first free slot. */
void ef_softhsm_token(const char *dir, const char *label, const char *pin);

/* Writes pin and a newline to path with the given mode. */
void ef_write_pin(const char *path, const char *pin, mode_t mode);

/* $RSSP_TEST_PKCS11_MODULE, or Debian's SoftHSM2 module. */
const char *ef_pkcs11_module(void);

/* Runs a shell command; dies when it fails. */
void ef_run(const char *cmd);

/* The whole of the file at path, NUL-terminated (free()); dies when it cannot be read. */
char *ef_slurp(const char *path);

/* What rssp-engine reads, for a suite that runs the binary: a token labelled label with
 * the user PIN pin under dir (ef_softhsm_token), <dir>/pin (0600) with that PIN, and the
 * environment the engine and its subcommands read: RSSP_PIN_FILE, RSSP_TOKEN_LABEL,
 * RSSP_PKCS11_MODULE, RSSP_LOG_LEVEL=warn. */
void ef_engine_token(const char *dir, const char *label, const char *pin);

/* The rssp-engine binary: built (the path CMake gave the suite), or, when that is not
 * there (the suite runs from another tree), $RSSP_TEST_BUILD/engine/rssp-engine. */
const char *ef_engine_bin(const char *built);

/* `bin serve` in a child process, with RSSP_ENGINE_SOCKET=sock and RSSP_AUDIT_FILE=audit
 * and, when not NULL, extra ("NAME=value") in its environment; its stdout appended to
 * out when out is not NULL. wait_ready: returns once the engine answers on sock (dies
 * when it does not within 20 s); 0: at once (for an engine expected to refuse to start).
 * Returns its pid. */
pid_t ef_engine_start(const char *bin, const char *sock, const char *audit, const char *out,
    const char *extra, int wait_ready);

/* SIGTERM, then waits for it: its exit status, or 128 + the signal that ended it. */
int ef_engine_stop(pid_t pid);

/* SIGKILL (a crash), then waits for it. */
void ef_engine_kill(pid_t pid);

#endif
