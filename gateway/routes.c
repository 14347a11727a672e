/* routes.c - every module's route table, searched in this order. */
#include "csc.h"
#include "gw.h"
#include "routes.h"

const struct gw_route *const gw_route_tables[] = {
	gw_routes_auth,
	gw_routes_accounts,
	gw_routes_signing,
	gw_routes_csc_v1,
	gw_routes_csc_v2,
	gw_routes_oauth,
	NULL,
};
