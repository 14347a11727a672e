/* sam_handlers.h - the sam modules' private header: the state of struct sam and the
 * three handlers that act on requests sam_decode.h has already decoded and checked.
 *
 *   sam.c          lifecycle (init token, open, free), the clock, the replay record,
 *                  the SAD cache's expiry, and sam_authorize / sam_sign_hash, which
 *                  decode (sam_decode.h) and dispatch here;
 *   sam_activate.c activation: KAK, authData, key pair, certificate, binding;
 *   sam_approve.c  approval: binding, authData, SAD minting;
 *   sam_sign.c     SignHash: SAD lookup and count, signing, verification before release.
 *
 * Each handler gets a decoded request (no wire object), fills a (struct sam_audit) on
 * and returns 0 with a packed response in *outp (free with free()) or an RSSP_E* code
 * with a->reason set (sam.h lists how the transport maps codes). Not for use outside
 * the sam modules. */
#ifndef RSSP_SAM_HANDLERS_H
#define RSSP_SAM_HANDLERS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "kak.h"
#include "kvmap.h"
#include "sad.h"
#include "sam.h"
#include "sam_decode.h"

#define MAX_APPROVAL_HORIZON 86400      /* an approval may not be valid longer than a day */
#define MAX_ACTIVATION_HORIZON (7 * 86400) /* nor an activation longer than a week */
#define MAX_SIG_LEN 1024                /* a credential signature (RSA-8192 at most) */

/* A verified SAD, cached by its id. */
struct sad_entry {
	uint8_t *wire;        /* the verified SAD bytes, compared on later use */
	size_t wirelen;
	struct sad *sad;
	uint32_t used;
};

struct sam {
	struct hsm *hsm;
	unsigned sad_ttl;
	int64_t skew;
	X509 *ca;
	uint8_t *ca_der;
	size_t ca_derlen;
	uint8_t *audit_cert;       /* DER certificate of the audit key (SAM_AUDIT_LABEL) */
	size_t audit_certlen;
	struct kak_cache *kaks;
	struct ra_keys *ra;        /* trusted RA keys (RSSP_RA_KEYS); NULL: none */

	pthread_mutex_t lock;      /* sads, replay, pubs, vctxs, next_purge */
	struct kvmap *sads;        /* SAD id -> struct sad_entry */
	struct kvmap *replay;      /* replay key -> struct replay_entry */
	struct kvmap *restored;    /* SAD id -> uint32_t used, read back from the audit log */
	struct kvmap *pubs;        /* key label -> struct pub_entry (sam_sign.c) */
	struct kvmap *vctxs;       /* key label, sign algo, hash algo -> struct vctx_entry (sam_sign.c) */
	EVP_MD *sha256;            /* fetched once: no implicit fetch per digest */
	int64_t next_purge;
};

/* What the engine remembers of an activation or approval it accepted. For an approval:
 * the SAD it minted (id and expiry), answered again to a replay of the same approval
 * (sam_approve.c); rebuilt from the audit log at start (sam_restart.c). */
struct replay_entry {
	int64_t expires;           /* first: the purge reads it as an int64_t */
	int64_t sad_expires_at;    /* 0: no SAD (activations) */
	uint8_t sad_id[SAD_ID_LEN];
};

/* The count a SAD had spent before the engine restarted (0 when none). Called with
 * s->lock held, when a SAD enters the cache. (sam_restart.c) */
uint32_t sam_restored_used(struct sam *s, const uint8_t id[SAD_ID_LEN]);

/* Makes the audit key pair (EC P-256, SAM_AUDIT_LABEL) and its certificate issued by ca,
 * in the token. Returns 0 or RSSP_E*; removes a half-made key. (sam_restart.c) */
int sam_make_audit_key(struct hsm *h, struct hsm_session *ss, X509 *ca) RSSP_WUR;

/* ECDSA r || s (two halves) to a DER ECDSA-Sig-Value; *derp malloc'd by OpenSSL
 * (OPENSSL_free). (sam_sign.c) */
int sam_rs_to_der(const uint8_t *rs, size_t len, uint8_t **derp, size_t *derlenp) RSSP_WUR;

/* The engine's clock: now plus the test skew. */
int64_t sam_now(const struct sam *s);

/* Drops SADs and replay records past their expiry (at most every 30 s). Called with
 * s->lock held. */
void sam_purge_locked(struct sam *s, int64_t now);

/* Records (domain, id, nonce) until expires_at; RSSP_E_REPLAY when it is recorded
 * already, RSSP_E_NOMEM. key gets the record's key for sam_replay_forget. */
int sam_replay_record(struct sam *s, const char *domain, const char *id,
    const uint8_t *nonce, size_t nonce_len, int64_t expires_at, int64_t now,
    uint8_t key[32]) RSSP_WUR;
/* Forgets a record (the request it guarded did not complete). */
void sam_replay_forget(struct sam *s, const uint8_t key[32]);

/* Cache entry destructors (kvmap free callbacks). */
void sam_sad_entry_free(void *v);
void sam_pub_entry_free(void *v);   /* sam_sign.c */
void sam_vctx_entry_free(void *v);  /* sam_sign.c */
/* A kvmap purge predicate that drops everything. */
int sam_purge_any(void *arg, const void *key, size_t keylen, void *val);

/* The handlers. req->purpose is SAM_PURPOSE_ACTIVATION / SAM_PURPOSE_APPROVAL. */
int sam_activate(struct sam *s, const struct sam_authorize_req *req,
    uint8_t **outp, size_t *outlenp, struct sam_audit *a) RSSP_WUR;
int sam_approve(struct sam *s, const struct sam_authorize_req *req,
    uint8_t **outp, size_t *outlenp, struct sam_audit *a) RSSP_WUR;
int sam_sign(struct sam *s, const struct sam_sign_req *req,
    uint8_t **outp, size_t *outlenp, struct sam_audit *a) RSSP_WUR;

#endif
