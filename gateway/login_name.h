/* login_name.h - the one rule for login names, and the keys the login limiters use.
 *
 * A login is an email address (signers, admins: registration accepts only ASCII
 * dot-atom addresses) or an rp client id ([A-Za-z0-9._-]). Both are printable ASCII, so
 * the rule is: a login must be 1..GW_LOGIN_MAX bytes of 0x20..0x7e (the bootstrap admin
 * may have been given any printable address), and its normal form
 * is that string with A-Z folded to a-z. Anything else (non-ASCII such as U+0130 or the
 * Kelvin sign U+212A, which PostgreSQL's lower() would fold onto an ASCII account,
 * invalid UTF-8, control bytes) is refused before any lookup: it cannot name an
 * account, and so it can never reach one under a spelling that escapes the limits.
 * Every login limiter (rate limit per account) is keyed on the normal form. */
#ifndef RSSP_GW_LOGIN_NAME_H
#define RSSP_GW_LOGIN_NAME_H

#include <stddef.h>

#include "rssp_err.h"

#define GW_LOGIN_MAX 254

/* Writes the normal form of login into out (NUL-terminated). Returns 0, or
 * RSSP_E_INVAL when login is empty, longer than GW_LOGIN_MAX or not printable ASCII
 * (out is then ""). */
int gw_login_normalise(const char *login, char out[GW_LOGIN_MAX + 1]) RSSP_WUR;

/* The rate-limit key of a client address: an IPv4 address as is, an IPv6 address cut
 * to its /64 (one host usually holds a whole /64), anything else as is (bounded).
 * out must hold at least 64 bytes. */
void gw_login_addr_key(const char *addr, char *out, size_t outlen);

#endif
