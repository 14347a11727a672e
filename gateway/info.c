/* info.c - function 0: what this service is and which functions it serves. */
#include <string.h>

#include "gw.h"
#include "routes.h"

#ifndef RSSP_VERSION
#define RSSP_VERSION "0.0.0"
#endif

int
gw_info_handler(struct gw_request *req, struct gw_reply *rep)
{
	const struct gw_route *rt;
	json_t *o, *methods;
	const char *prefix = strncmp(req->path, "/csc/v2/", 8) == 0 ? "/csc/v2/" : "/rssp/";
	size_t pl = strlen(prefix);

	if ((methods = json_array()) == NULL)
		return RSSP_E_NOMEM;
	for (rt = req->routes; rt != NULL && rt->path != NULL; rt++)
		if (strncmp(rt->path, prefix, pl) == 0)
			json_array_append_new(methods, json_string(rt->path + pl));
	o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:[ss], s:[sssssss], s:[sss], s:s}",
	    "name", req->cfg->service_name,
	    "version", RSSP_VERSION,
	    "specs", "2.0.0.0",
	    "description", "HSM-backed remote signing service (CSC API, ETSI EN 419 241 SCAL2)",
	    "lang", "en-US",
	    "methods", methods,
	    "authTypes", "basic", "digest",
	    "signAlgorithms", "1.2.840.113549.1.1.11", "1.2.840.113549.1.1.12",
	    "1.2.840.113549.1.1.13", "1.2.840.113549.1.1.10", "1.2.840.10045.4.3.2",
	    "1.2.840.10045.4.3.3", "1.2.840.10045.4.3.4",
	    "hashAlgorithms", "2.16.840.1.101.3.4.2.1", "2.16.840.1.101.3.4.2.2", "2.16.840.1.101.3.4.2.3",
	    "authMode", "implicit");
	return gw_reply_json(rep, 200, o);
}
