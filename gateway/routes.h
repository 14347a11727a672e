/* routes.h - the list of route tables (routes.c) the server searches. */
#ifndef RSSP_GW_ROUTES_H
#define RSSP_GW_ROUTES_H

#include "gw.h"

/* NULL-terminated list of route tables; each table ends with a {0} entry. */
extern const struct gw_route *const gw_route_tables[];

#endif
