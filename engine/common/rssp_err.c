#include "rssp_err.h"

const char *
rssp_strerror(int err)
{
	switch (err) {
	case RSSP_OK: return "success";
	case RSSP_E_INVAL: return "invalid argument";
	case RSSP_E_NOMEM: return "out of memory";
	case RSSP_E_CRYPTO: return "cryptographic operation failed";
	case RSSP_E_HSM: return "hsm operation failed";
	case RSSP_E_DENIED: return "verification failed";
	case RSSP_E_EXPIRED: return "expired";
	case RSSP_E_EXHAUSTED: return "signature count exhausted";
	case RSSP_E_NOTFOUND: return "not found";
	case RSSP_E_UNAVAILABLE: return "unavailable";
	case RSSP_E_TOOBIG: return "too big";
	case RSSP_E_UNSUPPORTED: return "unsupported";
	case RSSP_E_IO: return "i/o error";
	case RSSP_E_DB: return "database error";
	case RSSP_E_CONFLICT: return "conflict";
	case RSSP_E_INTERNAL: return "internal error";
	case RSSP_E_TIMEOUT: return "timed out";
	case RSSP_E_REPLAY: return "replayed";
	}
	return "unknown error";
}
