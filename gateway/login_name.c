/* login_name.c - login normalisation and limiter keys (login_name.h). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "login_name.h"

int
gw_login_normalise(const char *login, char out[GW_LOGIN_MAX + 1])
{
	size_t i;

	out[0] = '\0';
	if (login == NULL)
		return RSSP_E_INVAL;
	for (i = 0; login[i] != '\0'; i++) {
		unsigned char c = (unsigned char)login[i];

		if (i >= GW_LOGIN_MAX || c < 0x20 || c > 0x7e) {
			out[0] = '\0';
			return RSSP_E_INVAL;
		}
		out[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
	}
	out[i] = '\0';
	return i == 0 ? RSSP_E_INVAL : 0;
}

void
gw_login_addr_key(const char *addr, char *out, size_t outlen)
{
	unsigned char a6[16];

	/* an IPv4 client of a dual-stack socket (::ffff:a.b.c.d) keeps its whole address */
	if (strchr(addr, ':') != NULL && inet_pton(AF_INET6, addr, a6) == 1 &&
	    !IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)(const void *)a6)) {
		char txt[INET6_ADDRSTRLEN];

		memset(a6 + 8, 0, 8);
		if (inet_ntop(AF_INET6, a6, txt, sizeof(txt)) != NULL) {
			snprintf(out, outlen, "%s/64", txt);
			return;
		}
	}
	snprintf(out, outlen, "%.63s", addr);
}
