/* framing.h - strict HTTP framing and paths, checked before any handler runs.
 *
 * libmicrohttpd 0.9.75 is lenient: it takes one of two Content-Length headers, frames by
 * Content-Length when Transfer-Encoding is also present, keeps a header whose name
 * ends in a space, and unescapes the path before routing (so "/metrics%00" is served as
 * "/metrics"). Behind a proxy that frames or decodes differently, each of these is
 * request smuggling. The gateway's paths never need escapes, so requests like these are
 * answered 400 with Connection: close before they reach a handler. */
#ifndef RSSP_GW_FRAMING_H
#define RSSP_GW_FRAMING_H

#include <microhttpd.h>

/* Checks the raw request target (as the client sent it, before unescaping): printable
 * ASCII, and a path without any '%' escape. Returns NULL when acceptable, else a
 * static description for the 400 answer. raw may be NULL (unknown: acceptable). */
const char *gw_framing_check_target(const char *raw);

/* Checks the request's headers (the access handler's first call): every name a token
 * (RFC 9110: no space, no separator), at most one Content-Length (digits only), not
 * both Content-Length and Transfer-Encoding, and Transfer-Encoding, when present,
 * exactly "chunked". Returns NULL when acceptable, else a static description. */
const char *gw_framing_check_headers(struct MHD_Connection *conn);

#endif
