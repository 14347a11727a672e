/* rssp_err.h - the one error idiom of rssp: negative codes, one strerror. */
#ifndef RSSP_ERR_H
#define RSSP_ERR_H

#define RSSP_WUR __attribute__((warn_unused_result))

enum {
	RSSP_OK = 0,
	RSSP_E_INVAL = -1,       /* malformed or out-of-range input */
	RSSP_E_NOMEM = -2,
	RSSP_E_CRYPTO = -3,      /* an OpenSSL operation failed */
	RSSP_E_HSM = -4,         /* the PKCS#11 module failed */
	RSSP_E_DENIED = -5,      /* a signature, binding or SAD did not verify */
	RSSP_E_EXPIRED = -6,     /* approval, SAD or token past its validity */
	RSSP_E_EXHAUSTED = -7,   /* a SAD used beyond its count */
	RSSP_E_NOTFOUND = -8,
	RSSP_E_UNAVAILABLE = -9, /* a peer (engine, database, HSM) is not reachable */
	RSSP_E_TOOBIG = -10,
	RSSP_E_UNSUPPORTED = -11,/* unknown algorithm or method */
	RSSP_E_IO = -12,
	RSSP_E_DB = -13,
	RSSP_E_CONFLICT = -14,   /* wrong state for the operation */
	RSSP_E_INTERNAL = -15,
	RSSP_E_TIMEOUT = -16,
	RSSP_E_REPLAY = -17,     /* an approval presented twice */
};

/* Returns a static, lowercase description of an RSSP_E* code; never NULL. */
const char *rssp_strerror(int err);

#endif
