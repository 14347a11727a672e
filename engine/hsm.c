#include "hsm.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libp11.h>
#include <p11-kit/pkcs11.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

#include "algo.h"
#include "kvmap.h"
#include "rssp_log.h"

#define PIN_MAX 256
#define HANDLE_CACHE_MAX 100000

struct hsm_session {
	CK_SESSION_HANDLE handle;
	struct hsm_session *next_free;
};

struct hsm {
	CK_FUNCTION_LIST *fl;
	CK_SLOT_ID slot;
	char *pin_file;

	pthread_mutex_t pool_lock;
	pthread_cond_t pool_cond;
	struct hsm_session *sessions;
	unsigned nsessions;
	struct hsm_session *free_list;

	pthread_mutex_t login_lock; /* serialises recovery logins */

	pthread_mutex_t cache_lock;
	struct kvmap *handles;      /* class byte || label -> CK_OBJECT_HANDLE */
};

/* The process-wide PKCS#11 context (libp11 loads and C_Initializes the module). */
static pthread_mutex_t p11_lock = PTHREAD_MUTEX_INITIALIZER;
static PKCS11_CTX *p11_ctx;
static void *p11_dl;
static CK_FUNCTION_LIST *p11_fl;
static char *p11_module;
static unsigned p11_refs;

static int
p11_acquire(const char *module_path, CK_FUNCTION_LIST **flp)
{
	int r = RSSP_E_HSM;
	CK_C_GetFunctionList getfl;
	CK_FUNCTION_LIST *fl = NULL;

	pthread_mutex_lock(&p11_lock);
	if (p11_refs > 0) {
		if (strcmp(p11_module, module_path) != 0) {
			log_error("another pkcs#11 module is loaded: %.200s", p11_module);
			r = RSSP_E_CONFLICT;
			goto out;
		}
		p11_refs++;
		*flp = p11_fl;
		r = 0;
		goto out;
	}
	if ((p11_ctx = PKCS11_CTX_new()) == NULL) {
		r = RSSP_E_NOMEM;
		goto out;
	}
	if (PKCS11_CTX_load(p11_ctx, module_path) != 0) {
		log_error("cannot load pkcs#11 module %.200s", module_path);
		goto fail;
	}
	/* The module libp11 just loaded: same handle, same state. */
	if ((p11_dl = dlopen(module_path, RTLD_NOW | RTLD_NOLOAD)) == NULL ||
	    (getfl = (CK_C_GetFunctionList)dlsym(p11_dl, "C_GetFunctionList")) == NULL ||
	    getfl(&fl) != CKR_OK || fl == NULL) {
		log_error("cannot get the function list of %.200s", module_path);
		goto fail;
	}
	if ((p11_module = strdup(module_path)) == NULL) {
		r = RSSP_E_NOMEM;
		goto fail;
	}
	p11_fl = fl;
	p11_refs = 1;
	*flp = fl;
	r = 0;
	goto out;
fail:
	if (p11_dl != NULL)
		dlclose(p11_dl);
	p11_dl = NULL;
	PKCS11_CTX_unload(p11_ctx);
	PKCS11_CTX_free(p11_ctx);
	p11_ctx = NULL;
out:
	pthread_mutex_unlock(&p11_lock);
	return r;
}

static void
p11_release(void)
{
	pthread_mutex_lock(&p11_lock);
	if (p11_refs > 0 && --p11_refs == 0) {
		p11_fl = NULL;
		dlclose(p11_dl);
		p11_dl = NULL;
		PKCS11_CTX_unload(p11_ctx); /* C_Finalize: nobody uses the module any more */
		PKCS11_CTX_free(p11_ctx);
		p11_ctx = NULL;
		free(p11_module);
		p11_module = NULL;
	}
	pthread_mutex_unlock(&p11_lock);
}

static int
p11_find_slot(const char *token_label, CK_SLOT_ID *slotp)
{
	PKCS11_SLOT *slots = NULL;
	unsigned int n = 0, i;
	int r = RSSP_E_NOTFOUND, found = 0;
	CK_SLOT_ID slot = 0;

	pthread_mutex_lock(&p11_lock);
	if (PKCS11_enumerate_slots(p11_ctx, &slots, &n) != 0) {
		r = RSSP_E_HSM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (slots[i].token == NULL || !slots[i].token->initialized ||
		    slots[i].token->label == NULL ||
		    strcmp(slots[i].token->label, token_label) != 0)
			continue;
		if (found) {
			log_error("two tokens are labelled %.100s", token_label);
			r = RSSP_E_CONFLICT;
			goto out;
		}
		slot = PKCS11_get_slotid_from_slot(&slots[i]);
		found = 1;
	}
	if (found) {
		*slotp = slot;
		r = 0;
	}
out:
	if (slots != NULL)
		PKCS11_release_all_slots(p11_ctx, slots, n);
	pthread_mutex_unlock(&p11_lock);
	return r;
}

int
hsm_pin_read(const char *path, char **pinp)
{
	int fd = -1, r = RSSP_E_IO;
	struct stat st;
	char *buf = NULL;
	ssize_t n;
	size_t len = 0;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) == -1) {
		log_error("cannot open pin file %.200s: %s", path, strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		log_error("pin file %.200s is not a regular file", path);
		r = RSSP_E_INVAL;
		goto out;
	}
	if ((st.st_mode & 077) != 0) {
		log_error("pin file %.200s is accessible by group or others (mode %o)",
		    path, (unsigned)(st.st_mode & 0777));
		r = RSSP_E_DENIED;
		goto out;
	}
	if ((buf = OPENSSL_secure_zalloc(PIN_MAX + 1)) == NULL &&
	    (buf = OPENSSL_zalloc(PIN_MAX + 1)) == NULL) {
		r = RSSP_E_NOMEM;
		goto out;
	}
	while (len < PIN_MAX && (n = read(fd, buf + len, PIN_MAX - len)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_error("cannot read pin file %.200s", path);
			goto out;
		}
		len += (size_t)n;
	}
	buf[len] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	if (buf[0] == '\0') {
		log_error("pin file %.200s holds no pin", path);
		r = RSSP_E_INVAL;
		goto out;
	}
	*pinp = buf;
	buf = NULL;
	r = 0;
out:
	hsm_pin_free(buf);
	if (fd != -1)
		close(fd);
	return r;
}

void
hsm_pin_free(char *pin)
{
	if (pin == NULL)
		return;
	OPENSSL_cleanse(pin, PIN_MAX + 1);
	if (CRYPTO_secure_allocated(pin))
		OPENSSL_secure_free(pin);
	else
		OPENSSL_free(pin);
}

/* Logs the token in through session sh unless it is logged in already. */
static int
hsm_login(struct hsm *h, CK_SESSION_HANDLE sh)
{
	char *pin = NULL;
	CK_SESSION_INFO info;
	CK_RV rv;
	int r;

	pthread_mutex_lock(&h->login_lock);
	if (h->fl->C_GetSessionInfo(sh, &info) == CKR_OK &&
	    (info.state == CKS_RW_USER_FUNCTIONS || info.state == CKS_RO_USER_FUNCTIONS)) {
		r = 0;
		goto out;
	}
	if ((r = hsm_pin_read(h->pin_file, &pin)) != 0)
		goto out;
	rv = h->fl->C_Login(sh, CKU_USER, (CK_UTF8CHAR *)pin, strlen(pin));
	hsm_pin_free(pin);
	if (rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN) {
		r = 0;
	} else if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LOCKED) {
		log_error("token refused the pin (ckr 0x%lx)", (unsigned long)rv);
		r = RSSP_E_DENIED;
	} else {
		log_error("C_Login failed (ckr 0x%lx)", (unsigned long)rv);
		r = RSSP_E_HSM;
	}
out:
	pthread_mutex_unlock(&h->login_lock);
	return r;
}

static int
hsm_open_session(struct hsm *h, CK_SESSION_HANDLE *shp)
{
	CK_RV rv;

	rv = h->fl->C_OpenSession(h->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, shp);
	if (rv != CKR_OK) {
		log_error("C_OpenSession failed (ckr 0x%lx)", (unsigned long)rv);
		return RSSP_E_HSM;
	}
	return 0;
}

int
hsm_open(const char *module_path, const char *token_label, const char *pin_file,
    unsigned nsessions, struct hsm **hp)
{
	struct hsm *h = NULL;
	CK_FUNCTION_LIST *fl = NULL;
	unsigned i;
	int r, acquired = 0;
	char *pin = NULL;

	/* Refuse a readable PIN file before anything is loaded. */
	if ((r = hsm_pin_read(pin_file, &pin)) != 0)
		goto out;
	hsm_pin_free(pin);
	if ((r = p11_acquire(module_path, &fl)) != 0)
		goto out;
	acquired = 1;
	r = RSSP_E_NOMEM;
	if ((h = calloc(1, sizeof(*h))) == NULL)
		goto out;
	h->fl = fl;
	pthread_mutex_init(&h->pool_lock, NULL);
	pthread_cond_init(&h->pool_cond, NULL);
	pthread_mutex_init(&h->login_lock, NULL);
	pthread_mutex_init(&h->cache_lock, NULL);
	if (nsessions == 0)
		nsessions = 1;
	if ((h->pin_file = strdup(pin_file)) == NULL ||
	    (h->handles = kvmap_new()) == NULL ||
	    (h->sessions = calloc(nsessions, sizeof(*h->sessions))) == NULL)
		goto out;
	if ((r = p11_find_slot(token_label, &h->slot)) != 0) {
		if (r == RSSP_E_NOTFOUND)
			log_error("no initialised token labelled %.100s", token_label);
		goto out;
	}
	for (i = 0; i < nsessions; i++) {
		if ((r = hsm_open_session(h, &h->sessions[i].handle)) != 0)
			goto out;
		h->nsessions = i + 1;
		h->sessions[i].next_free = h->free_list;
		h->free_list = &h->sessions[i];
	}
	if ((r = hsm_login(h, h->sessions[0].handle)) != 0)
		goto out;
	*hp = h;
	h = NULL;
	acquired = 0;
	r = 0;
out:
	if (h != NULL) {
		hsm_free(h);
		acquired = 0; /* hsm_free released it */
	}
	if (acquired)
		p11_release();
	return r;
}

void
hsm_free(struct hsm *h)
{
	unsigned i;
	int last;

	if (h == NULL)
		return;
	if (h->fl != NULL) {
		pthread_mutex_lock(&p11_lock);
		last = p11_refs == 1;
		pthread_mutex_unlock(&p11_lock);
		if (last && h->nsessions > 0)
			(void)h->fl->C_Logout(h->sessions[0].handle);
		for (i = 0; i < h->nsessions; i++)
			(void)h->fl->C_CloseSession(h->sessions[i].handle);
		p11_release();
	}
	kvmap_free(h->handles, NULL);
	free(h->sessions);
	free(h->pin_file);
	pthread_mutex_destroy(&h->pool_lock);
	pthread_cond_destroy(&h->pool_cond);
	pthread_mutex_destroy(&h->login_lock);
	pthread_mutex_destroy(&h->cache_lock);
	free(h);
}

struct hsm_session *
hsm_session_get(struct hsm *h)
{
	struct hsm_session *s;

	pthread_mutex_lock(&h->pool_lock);
	while (h->free_list == NULL)
		pthread_cond_wait(&h->pool_cond, &h->pool_lock);
	s = h->free_list;
	h->free_list = s->next_free;
	pthread_mutex_unlock(&h->pool_lock);
	return s;
}

void
hsm_session_put(struct hsm *h, struct hsm_session *s)
{
	if (s == NULL)
		return;
	pthread_mutex_lock(&h->pool_lock);
	s->next_free = h->free_list;
	h->free_list = s;
	pthread_cond_signal(&h->pool_cond);
	pthread_mutex_unlock(&h->pool_lock);
}

static int
rv_session_lost(CK_RV rv)
{
	return rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED ||
	    rv == CKR_USER_NOT_LOGGED_IN || rv == CKR_SESSION_READ_ONLY;
}

static int
rv_handle_lost(CK_RV rv)
{
	return rv == CKR_OBJECT_HANDLE_INVALID || rv == CKR_KEY_HANDLE_INVALID;
}

static int
purge_all(void *arg, const void *key, size_t keylen, void *val)
{
	return 1;
}

/* Replaces a pooled session that the token no longer knows and logs in again. */
static int
hsm_recover(struct hsm *h, struct hsm_session *s)
{
	CK_SESSION_HANDLE nh;
	int r;

	log_warn("pkcs#11 session lost, reopening");
	/* After a lost login a token may hand out new object handles: forget them all. */
	pthread_mutex_lock(&h->cache_lock);
	kvmap_purge(h->handles, purge_all, NULL, NULL);
	pthread_mutex_unlock(&h->cache_lock);
	(void)h->fl->C_CloseSession(s->handle);
	if ((r = hsm_open_session(h, &nh)) != 0)
		return r;
	s->handle = nh;
	return hsm_login(h, nh);
}

static CK_OBJECT_CLASS
class_of(int cls)
{
	switch (cls) {
	case HSM_PRIVATE_KEY: return CKO_PRIVATE_KEY;
	case HSM_SECRET_KEY: return CKO_SECRET_KEY;
	case HSM_PUBLIC_KEY: return CKO_PUBLIC_KEY;
	default: return CKO_CERTIFICATE;
	}
}

/* Finds objects by label (and class unless cls is 0); up to max handles. */
static CK_RV
find_objects(struct hsm *h, CK_SESSION_HANDLE sh, const char *label, int cls,
    CK_OBJECT_HANDLE *objs, CK_ULONG max, CK_ULONG *np)
{
	CK_OBJECT_CLASS oc = class_of(cls);
	CK_ATTRIBUTE tmpl[] = {
		{ CKA_LABEL, (void *)label, strlen(label) },
		{ CKA_CLASS, &oc, sizeof(oc) },
	};
	CK_RV rv, rv2;

	rv = h->fl->C_FindObjectsInit(sh, tmpl, cls != 0 ? 2 : 1);
	if (rv != CKR_OK)
		return rv;
	rv = h->fl->C_FindObjects(sh, objs, max, np);
	rv2 = h->fl->C_FindObjectsFinal(sh);
	return rv != CKR_OK ? rv : rv2;
}

static void
cache_key(char *buf, size_t bufsz, const char *label, int cls, size_t *lenp)
{
	size_t n = strlen(label);

	if (n > bufsz - 1)
		n = bufsz - 1;
	buf[0] = (char)cls;
	memcpy(buf + 1, label, n);
	*lenp = n + 1;
}

static void
cache_forget(struct hsm *h, const char *label, int cls)
{
	char key[300];
	size_t klen;

	cache_key(key, sizeof(key), label, cls, &klen);
	pthread_mutex_lock(&h->cache_lock);
	(void)kvmap_del(h->handles, key, klen);
	pthread_mutex_unlock(&h->cache_lock);
}

/* The handle of the unique object label/cls, from the cache or the token. CKR_OK with
 * *objp == 0 when there is none. */
static CK_RV
lookup(struct hsm *h, CK_SESSION_HANDLE sh, const char *label, int cls, CK_OBJECT_HANDLE *objp)
{
	char key[300];
	size_t klen;
	void *v;
	CK_OBJECT_HANDLE objs[2];
	CK_ULONG n = 0;
	CK_RV rv;

	if (strlen(label) > 255) {
		*objp = 0;
		return CKR_OK;
	}
	cache_key(key, sizeof(key), label, cls, &klen);
	pthread_mutex_lock(&h->cache_lock);
	v = kvmap_get(h->handles, key, klen);
	pthread_mutex_unlock(&h->cache_lock);
	if (v != NULL) {
		*objp = (CK_OBJECT_HANDLE)(uintptr_t)v;
		return CKR_OK;
	}
	if ((rv = find_objects(h, sh, label, cls, objs, 2, &n)) != CKR_OK)
		return rv;
	if (n != 1) {
		if (n > 1)
			log_error("two objects are labelled %.150s", label);
		*objp = 0;
		return CKR_OK;
	}
	pthread_mutex_lock(&h->cache_lock);
	if (kvmap_count(h->handles) >= HANDLE_CACHE_MAX)
		kvmap_purge(h->handles, purge_all, NULL, NULL);
	if (kvmap_put(h->handles, key, klen, (void *)(uintptr_t)objs[0]) == RSSP_E_CONFLICT) {
		(void)kvmap_del(h->handles, key, klen);
		if (kvmap_put(h->handles, key, klen, (void *)(uintptr_t)objs[0]) != 0)
			log_debug("handle cache full");
	}
	pthread_mutex_unlock(&h->cache_lock);
	*objp = objs[0];
	return CKR_OK;
}

/* One operation on an object found by label, retried once after recovery. */
typedef CK_RV (*obj_op)(struct hsm *h, CK_SESSION_HANDLE sh, CK_OBJECT_HANDLE obj, void *arg);

static int
with_object(struct hsm *h, struct hsm_session *s, const char *label, int cls, obj_op op, void *arg)
{
	CK_OBJECT_HANDLE obj;
	CK_RV rv = CKR_OK;
	int attempt, r;

	for (attempt = 0; attempt < 2; attempt++) {
		rv = lookup(h, s->handle, label, cls, &obj);
		if (rv == CKR_OK) {
			if (obj == 0)
				return RSSP_E_NOTFOUND;
			rv = op(h, s->handle, obj, arg);
		}
		if (rv == CKR_OK)
			return 0;
		if (attempt > 0)
			break;
		if (rv_session_lost(rv)) {
			cache_forget(h, label, cls);
			if ((r = hsm_recover(h, s)) != 0)
				return r;
		} else if (rv_handle_lost(rv)) {
			cache_forget(h, label, cls);
		} else {
			break;
		}
	}
	log_error("pkcs#11 operation on %.150s failed (ckr 0x%lx)", label, (unsigned long)rv);
	return RSSP_E_HSM;
}

struct sign_arg {
	int mech;
	size_t hash_len;
	size_t salt_len; /* PSS */
	const uint8_t *in;
	size_t inlen;
	uint8_t *out;
	size_t outlen;
};

static CK_RV
op_sign(struct hsm *h, CK_SESSION_HANDLE sh, CK_OBJECT_HANDLE obj, void *arg)
{
	struct sign_arg *a = arg;
	CK_RSA_PKCS_PSS_PARAMS pss;
	CK_MECHANISM m = { 0, NULL, 0 };
	CK_ULONG outlen = a->outlen;
	CK_RV rv;

	switch (a->mech) {
	case HSM_MECH_RSA_PKCS:
		m.mechanism = CKM_RSA_PKCS;
		break;
	case HSM_MECH_RSA_PSS:
		m.mechanism = CKM_RSA_PKCS_PSS;
		switch (a->hash_len) {
		case 32: pss.hashAlg = CKM_SHA256; pss.mgf = CKG_MGF1_SHA256; break;
		case 48: pss.hashAlg = CKM_SHA384; pss.mgf = CKG_MGF1_SHA384; break;
		default: pss.hashAlg = CKM_SHA512; pss.mgf = CKG_MGF1_SHA512; break;
		}
		pss.sLen = a->salt_len;
		m.pParameter = &pss;
		m.ulParameterLen = sizeof(pss);
		break;
	case HSM_MECH_ECDSA:
		m.mechanism = CKM_ECDSA;
		break;
	default:
		m.mechanism = CKM_SHA256_HMAC;
		break;
	}
	if ((rv = h->fl->C_SignInit(sh, &m, obj)) != CKR_OK)
		return rv;
	rv = h->fl->C_Sign(sh, (CK_BYTE *)a->in, a->inlen, a->out, &outlen);
	if (rv == CKR_OK)
		a->outlen = outlen;
	return rv;
}

int
hsm_sign(struct hsm *h, struct hsm_session *s, const char *label, int cls, int mech,
    size_t hash_len, const uint8_t *in, size_t inlen, uint8_t *out, size_t *outlenp)
{
	return hsm_sign_salt(h, s, label, cls, mech, hash_len, hash_len, in, inlen, out, outlenp);
}

int
hsm_sign_salt(struct hsm *h, struct hsm_session *s, const char *label, int cls, int mech,
    size_t hash_len, size_t salt_len, const uint8_t *in, size_t inlen, uint8_t *out,
    size_t *outlenp)
{
	struct sign_arg a = { mech, hash_len, salt_len, in, inlen, out, *outlenp };
	int r;

	if (mech == HSM_MECH_RSA_PSS && hash_len != 32 && hash_len != 48 && hash_len != 64)
		return RSSP_E_UNSUPPORTED;
	if ((r = with_object(h, s, label, cls, op_sign, &a)) != 0)
		return r;
	*outlenp = a.outlen;
	return 0;
}

int
hsm_exists(struct hsm *h, struct hsm_session *s, const char *label, int cls)
{
	CK_OBJECT_HANDLE objs[1];
	CK_ULONG n = 0;
	CK_RV rv;

	rv = find_objects(h, s->handle, label, cls, objs, 1, &n);
	if (rv_session_lost(rv) && hsm_recover(h, s) == 0)
		rv = find_objects(h, s->handle, label, cls, objs, 1, &n);
	if (rv != CKR_OK)
		return RSSP_E_HSM;
	return n > 0;
}

int
hsm_destroy_label(struct hsm *h, struct hsm_session *s, const char *label)
{
	CK_OBJECT_HANDLE objs[16];
	CK_ULONG n = 0, i;
	CK_RV rv;
	int cls;

	do {
		if ((rv = find_objects(h, s->handle, label, 0, objs, 16, &n)) != CKR_OK)
			return RSSP_E_HSM;
		for (i = 0; i < n; i++) {
			if ((rv = h->fl->C_DestroyObject(s->handle, objs[i])) != CKR_OK) {
				log_error("C_DestroyObject failed (ckr 0x%lx)", (unsigned long)rv);
				return RSSP_E_HSM;
			}
		}
	} while (n > 0);
	for (cls = HSM_PRIVATE_KEY; cls <= HSM_PUBLIC_KEY; cls++)
		cache_forget(h, label, cls);
	return 0;
}

/* Reads one attribute of any length; *valp is malloc'd. */
static CK_RV
get_attr(struct hsm *h, CK_SESSION_HANDLE sh, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_TYPE type,
    uint8_t **valp, size_t *lenp)
{
	CK_ATTRIBUTE a = { type, NULL, 0 };
	CK_RV rv;
	uint8_t *v;

	if ((rv = h->fl->C_GetAttributeValue(sh, obj, &a, 1)) != CKR_OK)
		return rv;
	if (a.ulValueLen == CK_UNAVAILABLE_INFORMATION || a.ulValueLen > 1024 * 1024)
		return CKR_ATTRIBUTE_TYPE_INVALID;
	if ((v = malloc(a.ulValueLen ? a.ulValueLen : 1)) == NULL)
		return CKR_HOST_MEMORY;
	a.pValue = v;
	if ((rv = h->fl->C_GetAttributeValue(sh, obj, &a, 1)) != CKR_OK) {
		free(v);
		return rv;
	}
	*valp = v;
	*lenp = a.ulValueLen;
	return CKR_OK;
}

static EVP_PKEY *
pkey_from_rsa(const uint8_t *n, size_t nlen, const uint8_t *e, size_t elen)
{
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pkey = NULL;
	BIGNUM *bn = NULL, *be = NULL;

	if ((bn = BN_bin2bn(n, (int)nlen, NULL)) == NULL ||
	    (be = BN_bin2bn(e, (int)elen, NULL)) == NULL ||
	    (bld = OSSL_PARAM_BLD_new()) == NULL ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) ||
	    (params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
	    (ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
		pkey = NULL;
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(bn);
	BN_free(be);
	return pkey;
}

static EVP_PKEY *
pkey_from_ec(const char *group, const uint8_t *ecpoint, size_t len)
{
	ASN1_OCTET_STRING *os = NULL;
	const unsigned char *p = ecpoint;
	const uint8_t *pt = ecpoint;
	size_t ptlen = len;
	OSSL_PARAM params[3];
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pkey = NULL;

	/* CKA_EC_POINT is DER OCTET STRING of the point (PKCS#11 2.40); accept a raw point. */
	if ((os = d2i_ASN1_OCTET_STRING(NULL, &p, (long)len)) != NULL && p == ecpoint + len) {
		pt = ASN1_STRING_get0_data(os);
		ptlen = (size_t)ASN1_STRING_length(os);
	}
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)group, 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)pt, ptlen);
	params[2] = OSSL_PARAM_construct_end();
	if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
		pkey = NULL;
	EVP_PKEY_CTX_free(ctx);
	ASN1_OCTET_STRING_free(os);
	return pkey;
}


int
hsm_generate_key_pair(struct hsm *h, struct hsm_session *s, int key_algo,
    const char *label, const uint8_t *id, size_t idlen, EVP_PKEY **pubp)
{
	CK_BBOOL t = CK_TRUE, f = CK_FALSE;
	CK_ULONG bits = 0;
	CK_BYTE e65537[] = { 0x01, 0x00, 0x01 };
	CK_MECHANISM m = { CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0 };
	CK_ATTRIBUTE pub[4], priv[9];
	CK_ULONG npub = 0, npriv = 0;
	CK_OBJECT_HANDLE hpub = 0, hpriv = 0;
	CK_RV rv = CKR_OK;
	uint8_t *a1 = NULL, *a2 = NULL;
	size_t l1 = 0, l2 = 0;
	EVP_PKEY *pkey = NULL;
	const struct rssp_key_alg *ka = rssp_key_alg(key_algo);
	const char *group = NULL;
	int r = RSSP_E_HSM, attempt, is_ec = 0;

	if (ka == NULL)
		return RSSP_E_UNSUPPORTED;
	is_ec = ka->type == RSSP_KEYTYPE_EC;
	bits = ka->bits;
	group = ka->group;
	pub[npub++] = (CK_ATTRIBUTE){ CKA_TOKEN, &f, sizeof(f) };
	pub[npub++] = (CK_ATTRIBUTE){ CKA_VERIFY, &t, sizeof(t) };
	if (is_ec) {
		m.mechanism = CKM_EC_KEY_PAIR_GEN;
		pub[npub++] = (CK_ATTRIBUTE){ CKA_EC_PARAMS, (void *)ka->curve_der, ka->curve_der_len };
	} else {
		pub[npub++] = (CK_ATTRIBUTE){ CKA_MODULUS_BITS, &bits, sizeof(bits) };
		pub[npub++] = (CK_ATTRIBUTE){ CKA_PUBLIC_EXPONENT, e65537, sizeof(e65537) };
	}
	priv[npriv++] = (CK_ATTRIBUTE){ CKA_TOKEN, &t, sizeof(t) };
	priv[npriv++] = (CK_ATTRIBUTE){ CKA_PRIVATE, &t, sizeof(t) };
	priv[npriv++] = (CK_ATTRIBUTE){ CKA_SENSITIVE, &t, sizeof(t) };
	priv[npriv++] = (CK_ATTRIBUTE){ CKA_EXTRACTABLE, &f, sizeof(f) };
	priv[npriv++] = (CK_ATTRIBUTE){ CKA_SIGN, &t, sizeof(t) };
	priv[npriv++] = (CK_ATTRIBUTE){ CKA_DECRYPT, &f, sizeof(f) };
	priv[npriv++] = (CK_ATTRIBUTE){ CKA_LABEL, (void *)label, strlen(label) };
	priv[npriv++] = (CK_ATTRIBUTE){ CKA_ID, (void *)id, idlen };
	if (is_ec)
		priv[npriv - 3].type = CKA_DERIVE; /* EC keys cannot decrypt; refuse derive instead */

	for (attempt = 0; attempt < 2; attempt++) {
		rv = h->fl->C_GenerateKeyPair(s->handle, &m, pub, npub, priv, npriv, &hpub, &hpriv);
		if (rv == CKR_OK || attempt > 0 || !rv_session_lost(rv))
			break;
		if ((r = hsm_recover(h, s)) != 0)
			return r;
		r = RSSP_E_HSM;
	}
	if (rv != CKR_OK) {
		log_error("C_GenerateKeyPair failed (ckr 0x%lx)", (unsigned long)rv);
		goto out;
	}
	if (is_ec) {
		if ((rv = get_attr(h, s->handle, hpub, CKA_EC_POINT, &a1, &l1)) != CKR_OK)
			goto attr_fail;
		pkey = pkey_from_ec(group, a1, l1);
	} else {
		if ((rv = get_attr(h, s->handle, hpub, CKA_MODULUS, &a1, &l1)) != CKR_OK ||
		    (rv = get_attr(h, s->handle, hpub, CKA_PUBLIC_EXPONENT, &a2, &l2)) != CKR_OK)
			goto attr_fail;
		pkey = pkey_from_rsa(a1, l1, a2, l2);
	}
	if (pkey == NULL) {
		log_error("cannot read the generated public key");
		r = RSSP_E_CRYPTO;
		(void)h->fl->C_DestroyObject(s->handle, hpriv);
		goto out;
	}
	*pubp = pkey;
	pkey = NULL;
	r = 0;
	goto out;
attr_fail:
	log_error("cannot read the public key (ckr 0x%lx)", (unsigned long)rv);
	(void)h->fl->C_DestroyObject(s->handle, hpriv);
out:
	if (hpub != 0)
		(void)h->fl->C_DestroyObject(s->handle, hpub);
	free(a1);
	free(a2);
	EVP_PKEY_free(pkey);
	return r;
}

int
hsm_generate_mac_key(struct hsm *h, struct hsm_session *s, const char *label)
{
	CK_BBOOL t = CK_TRUE, f = CK_FALSE;
	CK_OBJECT_CLASS oc = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
	CK_ULONG len = 32;
	CK_MECHANISM m = { CKM_GENERIC_SECRET_KEY_GEN, NULL, 0 };
	CK_ATTRIBUTE tmpl[] = {
		{ CKA_CLASS, &oc, sizeof(oc) },
		{ CKA_KEY_TYPE, &kt, sizeof(kt) },
		{ CKA_VALUE_LEN, &len, sizeof(len) },
		{ CKA_TOKEN, &t, sizeof(t) },
		{ CKA_PRIVATE, &t, sizeof(t) },
		{ CKA_SENSITIVE, &t, sizeof(t) },
		{ CKA_EXTRACTABLE, &f, sizeof(f) },
		{ CKA_SIGN, &t, sizeof(t) },
		{ CKA_VERIFY, &t, sizeof(t) },
		{ CKA_ENCRYPT, &f, sizeof(f) },
		{ CKA_DECRYPT, &f, sizeof(f) },
		{ CKA_WRAP, &f, sizeof(f) },
		{ CKA_DERIVE, &f, sizeof(f) },
		{ CKA_LABEL, (void *)label, strlen(label) },
	};
	CK_OBJECT_HANDLE obj;
	CK_RV rv;

	rv = h->fl->C_GenerateKey(s->handle, &m, tmpl, sizeof(tmpl) / sizeof(tmpl[0]), &obj);
	if (rv_session_lost(rv) && hsm_recover(h, s) == 0)
		rv = h->fl->C_GenerateKey(s->handle, &m, tmpl, sizeof(tmpl) / sizeof(tmpl[0]), &obj);
	if (rv != CKR_OK) {
		log_error("C_GenerateKey failed (ckr 0x%lx)", (unsigned long)rv);
		return RSSP_E_HSM;
	}
	return 0;
}

int
hsm_store_certificate(struct hsm *h, struct hsm_session *s, const char *label,
    const uint8_t *id, size_t idlen, const uint8_t *der, size_t derlen)
{
	const unsigned char *p = der;
	X509 *x = NULL;
	unsigned char *subj = NULL, *iss = NULL, *ser = NULL;
	int subjlen, isslen, serlen, r = RSSP_E_INVAL;
	CK_OBJECT_CLASS oc = CKO_CERTIFICATE;
	CK_CERTIFICATE_TYPE ct = CKC_X_509;
	CK_BBOOL t = CK_TRUE, f = CK_FALSE;
	CK_OBJECT_HANDLE obj;
	CK_RV rv;

	if ((x = d2i_X509(NULL, &p, (long)derlen)) == NULL || p != der + derlen)
		goto out;
	subjlen = i2d_X509_NAME(X509_get_subject_name(x), &subj);
	isslen = i2d_X509_NAME(X509_get_issuer_name(x), &iss);
	serlen = i2d_ASN1_INTEGER(X509_get_serialNumber(x), &ser);
	if (subjlen <= 0 || isslen <= 0 || serlen <= 0)
		goto out;
	{
		CK_ATTRIBUTE tmpl[] = {
			{ CKA_CLASS, &oc, sizeof(oc) },
			{ CKA_CERTIFICATE_TYPE, &ct, sizeof(ct) },
			{ CKA_TOKEN, &t, sizeof(t) },
			{ CKA_PRIVATE, &f, sizeof(f) },
			{ CKA_MODIFIABLE, &f, sizeof(f) },
			{ CKA_LABEL, (void *)label, strlen(label) },
			{ CKA_ID, (void *)id, idlen },
			{ CKA_SUBJECT, subj, (CK_ULONG)subjlen },
			{ CKA_ISSUER, iss, (CK_ULONG)isslen },
			{ CKA_SERIAL_NUMBER, ser, (CK_ULONG)serlen },
			{ CKA_VALUE, (void *)der, derlen },
		};
		CK_ULONG n = sizeof(tmpl) / sizeof(tmpl[0]);

		rv = h->fl->C_CreateObject(s->handle, tmpl, n, &obj);
		if (rv_session_lost(rv) && hsm_recover(h, s) == 0)
			rv = h->fl->C_CreateObject(s->handle, tmpl, n, &obj);
	}
	if (rv != CKR_OK) {
		log_error("C_CreateObject (certificate) failed (ckr 0x%lx)", (unsigned long)rv);
		r = RSSP_E_HSM;
		goto out;
	}
	r = 0;
out:
	OPENSSL_free(subj);
	OPENSSL_free(iss);
	OPENSSL_free(ser);
	X509_free(x);
	return r;
}

struct read_arg {
	uint8_t *val;
	size_t len;
};

static CK_RV
op_read_value(struct hsm *h, CK_SESSION_HANDLE sh, CK_OBJECT_HANDLE obj, void *arg)
{
	struct read_arg *a = arg;

	return get_attr(h, sh, obj, CKA_VALUE, &a->val, &a->len);
}

int
hsm_read_certificate(struct hsm *h, struct hsm_session *s, const char *label,
    uint8_t **derp, size_t *derlenp)
{
	struct read_arg a = { NULL, 0 };
	int r;

	if ((r = with_object(h, s, label, HSM_CERTIFICATE, op_read_value, &a)) != 0)
		return r;
	*derp = a.val;
	*derlenp = a.len;
	return 0;
}
