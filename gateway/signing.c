/* signing.c - signatures/signHash (owned by the signing engineer). */
#include "gw.h"

const struct gw_route gw_routes_signing[] = {{0}};
