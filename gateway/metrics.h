/* metrics.h - the gateway's counters and histograms, rendered as Prometheus text at
 * GET /metrics (metrics.c). Thread-safe. */
#ifndef RSSP_GW_METRICS_H
#define RSSP_GW_METRICS_H

#include "rssp_err.h"

/* Records one engine call: method "authorize" | "signhash", its gRPC status code (or
 * -1 when the engine was unreachable) and its duration. */
void gw_metrics_engine_call(const char *method, int grpc_status, double seconds);
/* Counts n signatures made with algo (a short static name, e.g. "rsa-pss-sha256"). At
 * most 32 distinct names are kept; more are counted as "other". */
void gw_metrics_signatures(const char *algo, unsigned n);

/* For the framework (server.c, auth.c, runtime.c): */
int gw_metrics_init(void) RSSP_WUR;
/* Records one HTTP request: route label (a known path or "other"), status, seconds. */
void gw_metrics_request(const char *route, int status, double seconds);
/* Counts one login: method "basic"|"password"|"refresh"|"digest"|"none", result a
 * static word ("ok", "incorrect", "locked", ...). */
void gw_metrics_login(const char *method, const char *result);
/* Appends the Prometheus text to a malloc'd string; db pool figures given. */
char *gw_metrics_render(unsigned db_in_use, unsigned db_size);

#endif
