/* conn_guard.h - a whole-request deadline for the HTTP server's connections.
 *
 * libmicrohttpd's connection timeout is an idle timeout: a client that sends one byte
 * every 20 s keeps a half-sent request open for ever. The guard notes when each
 * connection starts waiting for a request (when it opens, and when its previous request
 * is answered) and, once a second, cuts (shutdown(2)) every connection that has not
 * delivered a whole request within the deadline. A request being handled (a long-poll,
 * a login waiting for argon2id) is not cut: the clock stops while it is busy. */
#ifndef RSSP_GW_CONN_GUARD_H
#define RSSP_GW_CONN_GUARD_H

#include <microhttpd.h>

#include "rssp_err.h"

struct gw_conn_guard;

/* Starts the guard's thread. Returns 0 or RSSP_E_NOMEM; on success *gp is owned by the
 * caller, free with gw_conn_guard_stop() after the daemon stopped. */
int gw_conn_guard_start(unsigned deadline_seconds, struct gw_conn_guard **gp) RSSP_WUR;
void gw_conn_guard_stop(struct gw_conn_guard *g);

/* The MHD_OPTION_NOTIFY_CONNECTION callback; its cls is the guard. */
void gw_conn_guard_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
    enum MHD_ConnectionNotificationCode toe);

/* The request of conn is complete and handled now (busy = 1), or answered (busy = 0:
 * the clock starts again for the next request). */
void gw_conn_guard_busy(struct gw_conn_guard *g, struct MHD_Connection *conn, int busy);

/* Connections cut so far (for tests and metrics). */
unsigned long gw_conn_guard_cut(struct gw_conn_guard *g);

#endif
