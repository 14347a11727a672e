/* loadcap.h - admission limits that keep one tenant (or anonymous callers) from taking
 * the capacity others need: logins in progress, and long-poll waits per client and in
 * total. Counters only; the callers answer 429/503 when a limit is reached.
 * Thread-safe. */
#ifndef RSSP_GW_LOADCAP_H
#define RSSP_GW_LOADCAP_H

#include <stdbool.h>

#include "config.h"
#include "rssp_err.h"

/* Sets the limits from cfg: RSSP_LOGIN_QUEUE, RSSP_WAITS_PER_CLIENT, RSSP_WAITS_TOTAL
 * (0 = half of RSSP_LONG_THREADS). Call once before serving. */
void gw_loadcap_init(const struct gw_config *cfg);

/* A login enters: 0, or RSSP_E_EXHAUSTED when RSSP_LOGIN_QUEUE logins are already in
 * progress (waiting for argon2id or computing it). Each success needs one
 * gw_login_leave(). */
int gw_login_admit(void) RSSP_WUR;
void gw_login_leave(void);

/* A long-poll of client (an account id) starts waiting: 0; RSSP_E_EXHAUSTED when the
 * client has RSSP_WAITS_PER_CLIENT waits already; RSSP_E_UNAVAILABLE when
 * RSSP_WAITS_TOTAL waits run. Each success needs one gw_wait_leave(client). */
int gw_wait_admit(const char *client) RSSP_WUR;
void gw_wait_leave(const char *client);

/* The limits in force (for error texts and tests). */
unsigned gw_loadcap_waits_per_client(void);

#endif
