/* routes.h - the gateway's route table (routes.c): every function it serves. */
#ifndef RSSP_GW_ROUTES_H
#define RSSP_GW_ROUTES_H

#include "gw.h"

/* Every POST function, one flat array ending with an entry whose path is NULL ({0}).
 * The server searches it top to bottom; the first entry whose path matches serves. */
extern const struct gw_route gw_routes[];

/* info (function 0): this service and the functions of the table it serves (info.c). */
int gw_info_handler(struct gw_request *req, struct gw_reply *rep);

#endif
