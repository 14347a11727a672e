/* runtime.c - the one owner of the gateway's process-wide state (gw_internal.h): the
 * argon2 limits and the dummy hash (secrets.c), the token cache and the login rate
 * limiter (auth.c), the metrics (metrics.c), prepared statements (db.c), and the thread
 * that wakes long-polls (auth_requests.c). main.c calls gw_runtime_init() once before
 * anything else and gw_runtime_shutdown() after the server stopped. */
#include <sodium.h>

#include "db.h"
#include "gw.h"
#include "gw_internal.h"
#include "metrics.h"
#include "oauth.h"
#include "signing.h"

int
gw_runtime_init(const struct gw_config *cfg)
{
	int r;

	gw_db_prepare_enabled = cfg->db_prepare != 0;
	if (sodium_init() < 0)
		return RSSP_E_INTERNAL;
	if ((r = gw_secrets_init(cfg)) < 0 || (r = gw_auth_init(cfg)) < 0 ||
	    (r = oauth_limits_init(cfg)) < 0 || (r = gw_metrics_init()) < 0)
		return r;
	return 0;
}

void
gw_runtime_shutdown(void)
{
	areq_waiter_stop();
	gw_auth_shutdown();
	oauth_limits_shutdown();
}
