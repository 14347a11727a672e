/* context.c - the framework's accessors on a request's context (gw.h, gw_internal.h):
 * its headers, its HTTP connection, the database pool it borrows from, the thread it
 * runs on, whether the gateway is stopping, and the clock. Only this file and server.c (which
 * fills it) read struct gw_req_priv. */
#include <time.h>

#include <microhttpd.h>

#include "gw.h"
#include "gw_internal.h"

__thread int gw_thread_is_long;
static volatile int gw_stopping_flag;

bool
gw_stopping(void)
{
	return __atomic_load_n(&gw_stopping_flag, __ATOMIC_RELAXED) != 0;
}

void
gw_stopping_set(void)
{
	__atomic_store_n(&gw_stopping_flag, 1, __ATOMIC_RELAXED);
}

const char *
gw_header(const struct gw_request *req, const char *name)
{
	const struct gw_req_priv *pv = req->priv_;

	if (pv == NULL || pv->conn == NULL)
		return NULL;
	return MHD_lookup_connection_value(pv->conn, MHD_HEADER_KIND, name);
}

struct MHD_Connection *
gw_request_connection(const struct gw_request *req)
{
	const struct gw_req_priv *pv = req->priv_;

	return pv != NULL ? pv->conn : NULL;
}

struct gw_db_pool *
gw_request_pool(const struct gw_request *req)
{
	const struct gw_req_priv *pv = req->priv_;

	return pv != NULL ? pv->pool : NULL;
}

long long
gw_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec;
}
