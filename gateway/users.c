/* users.c - the users functions (owned by the accounts engineer). */
#include "gw.h"

const struct gw_route gw_routes_accounts[] = {{0}};
