/* fixture.h - what the engine suites (tests/engine, tests/engine_rpc) share: a private
 * temporary directory under $RSSP_TEST_WORK (tests/run) or /tmp, a private SoftHSM2
 * configuration with one fresh token, PIN files, and the PKCS#11 module to load.
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

#endif
