/* signatures.c - signatures/signHash: decodes the signing algorithm and its parameters,
 * spends the SAD's count exactly once, has the engine sign, refunds a certain refusal. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "gw.h"
#include "rssp_log.h"
#include "signing.h"

#include "algo.h"
#include "buf.h"
#include "engine_client.h"
#include "engine_health.h"
#include "db.h"
#include "metrics.h"

/* ---- signatures/signHash ------------------------------------------------------------ */

/* HashAlgo of an X509_ALGOR naming a digest, or 0. */
static int
algor_hash(const X509_ALGOR *a)
{
	const ASN1_OBJECT *obj = NULL;
	char oid[64];

	if (a == NULL)
		return 0; /* the default, SHA-1: refused */
	X509_ALGOR_get0(&obj, NULL, NULL, a);
	if (obj == NULL || OBJ_obj2txt(oid, sizeof(oid), obj, 1) <= 0)
		return 0;
	return sg_hash_algo_from_oid(oid);
}

/* The hash of an MGF1 AlgorithmIdentifier (its parameter), or 0. d2i_RSA_PSS_PARAMS
 * leaves maskHash empty, so it is read from maskGenAlgorithm here. */
static int
mgf1_hash(const X509_ALGOR *mgf)
{
	const void *pval = NULL;
	const unsigned char *p;
	X509_ALGOR *md = NULL;
	int ptype = 0, h = 0;

	X509_ALGOR_get0(NULL, &ptype, &pval, mgf);
	if (ptype != V_ASN1_SEQUENCE || pval == NULL)
		return 0;
	p = ASN1_STRING_get0_data(pval);
	if ((md = d2i_X509_ALGOR(NULL, &p, ASN1_STRING_length(pval))) != NULL)
		h = algor_hash(md);
	X509_ALGOR_free(md);
	return h;
}

/* Reads RSASSA-PSS-params (DER): the hash, MGF1 with the same hash, a salt length of
 * 0..SG_PSS_SALT_MAX (the engine checks it against the key), trailer 1. Returns the
 * HashAlgo and sets *saltp, or returns 0 when the parameters are not those. */
#define SG_PSS_SALT_MAX 1024
static int
pss_params_hash(const uint8_t *der, size_t len, long *saltp)
{
	const unsigned char *p = der;
	RSA_PSS_PARAMS *pss = NULL;
	const ASN1_OBJECT *mgf = NULL;
	int h = 0, mh;
	long salt;

	if ((pss = d2i_RSA_PSS_PARAMS(NULL, &p, (long)len)) == NULL || p != der + len)
		goto out;
	if ((h = algor_hash(pss->hashAlgorithm)) == 0)
		goto out;
	if (pss->maskGenAlgorithm == NULL)
		goto fail;
	X509_ALGOR_get0(&mgf, NULL, NULL, pss->maskGenAlgorithm);
	if (mgf == NULL || OBJ_obj2nid(mgf) != NID_mgf1)
		goto fail;
	if ((mh = mgf1_hash(pss->maskGenAlgorithm)) != h)
		goto fail;
	salt = pss->saltLength ? ASN1_INTEGER_get(pss->saltLength) : 20;
	if (salt < 0 || salt > SG_PSS_SALT_MAX)
		goto fail;
	if (pss->trailerField != NULL && ASN1_INTEGER_get(pss->trailerField) != 1)
		goto fail;
	*saltp = salt;
	goto out;
fail:
	h = 0;
out:
	RSA_PSS_PARAMS_free(pss);
	ERR_clear_error();
	return h;
}

/* Why no row was spent: a second look, for a precise refusal. */
static int
spend_refusal(struct gw_request *req, struct gw_reply *rep, const char *sad_hash,
    const char *credential_id, size_t n)
{
	PGresult *res = NULL;
	int r;

	if ((r = gw_db_query(req->db, &res,
	    "SELECT r.requester_id = $2::uuid AS mine, r.credential_id = $3::uuid AS same_cred,"
	    " c.status AS cred_status, r.sad_expires_at <= extract(epoch FROM now())::bigint"
	    " AS expired, r.remaining"
	    " FROM auth_requests r JOIN credentials c ON c.id = r.credential_id"
	    " WHERE r.sad_hash = $1", 3, sad_hash, req->principal.account_id,
	    credential_id)) != 0)
		goto out;
	if (PQntuples(res) != 1)
		r = gw_error(rep, 400, "invalid_request", "field 'SAD' is not a valid SAD");
	else if (strcmp(gw_val(res, 0, "mine"), "t") != 0)
		r = gw_error(rep, 403, "access_denied", "field 'SAD' was not issued to you");
	else if (strcmp(gw_val(res, 0, "same_cred"), "t") != 0)
		r = gw_error(rep, 400, "invalid_request", "field 'SAD' is not for field 'credentialID'");
	else if (strcmp(gw_val(res, 0, "cred_status"), "ACTIVE") != 0)
		r = gw_error(rep, 409, "conflict", "credential is %s",
		    gw_val(res, 0, "cred_status"));
	else if (strcmp(gw_val(res, 0, "expired"), "t") == 0)
		r = gw_error(rep, 410, "expired", "field 'SAD' has expired");
	else
		r = gw_error(rep, 403, "access_denied",
		    "field 'SAD' allows %s more signature(s), %zu asked", gw_val(res, 0, "remaining"), n);
out:
	PQclear(res);
	return r;
}

static int
refund(struct gw_request *req, const char *request_id, size_t n)
{
	char nb[24];
	int r;

	snprintf(nb, sizeof(nb), "%zu", n);
	if ((r = gw_db_query(req->db, NULL,
	    "UPDATE auth_requests SET remaining = remaining + $2::int WHERE id = $1", 2,
	    request_id, nb)) != 0)
		log_error("cannot refund %zu signature(s) to request %s", n, request_id);
	return r;
}

int
sg_sign_hash(struct gw_request *req, struct gw_reply *rep)
{
	const char *cred_id = NULL, *sad_b64 = NULL, *hoid = NULL, *soid = NULL;
	const char **hashes_b64 = NULL;
	uint8_t *sad = NULL, *params = NULL, **hashes = NULL;
	size_t sadlen = 0, paramslen = 0, n = 0, i, hlen;
	char *sad_bytea = NULL, nb[24], request_id[GW_UUID_LEN + 1];
	uint8_t digest[SHA256_DIGEST_LENGTH];
	struct engine_signatures sigs = { 0 };
	struct engine_result er;
	enum engine_status est;
	PGresult *res = NULL;
	const struct rssp_sign_alg *sa;
	const struct rssp_key_alg *ka;
	int r, sign_algo = 0, hash_algo = 0, h, spent = 0;
	long salt = -1;
	json_t *arr = NULL;

	if ((r = sg_get_uuid(req, rep, "credentialID", true, &cred_id)) != 0 ||
	    (r = gw_get_str(req, rep, "SAD", 128 * 1024, true, &sad_b64)) != 0 ||
	    (r = gw_get_str_array(req, rep, "hashes", RSSP_MAX_HASHES, 128, true,
	    &hashes_b64, &n)) != 0 ||
	    (r = gw_get_str(req, rep, "hashAlgorithmOID", 64, false, &hoid)) != 0 ||
	    (r = gw_get_str(req, rep, "signAlgo", 64, true, &soid)) != 0 ||
	    (r = gw_get_b64(req, rep, "signAlgoParams", 256, false, &params, &paramslen)) != 0)
		goto out;
	if (rssp_unb64(sad_b64, &sad, &sadlen) != 0) {
		r = gw_error(rep, 400, "invalid_request", "field 'SAD' must be base64");
		goto out;
	}
	if ((sa = rssp_sign_alg_by_oid(soid)) != NULL) {
		sign_algo = sa->sign_algo;
		hash_algo = sa->hash_algo; /* 0: from hashAlgorithmOID or signAlgoParams */
	} else if (strcmp(soid, "1.2.840.113549.1.1.1") == 0) {
		/* rsaEncryption (CSC v2): PKCS#1 v1.5 with the hash of hashAlgorithmOID */
		sign_algo = RSSP_SIGN_RSA_PKCS1;
		hash_algo = 0;
	}
	if (sign_algo == 0) {
		r = gw_error(rep, 400, "invalid_request", "field 'signAlgo' is not a supported algorithm");
		goto out;
	}
	if (params != NULL && sign_algo != RSSP_SIGN_RSA_PSS) {
		r = gw_error(rep, 400, "invalid_request", "field 'signAlgoParams' is only for RSASSA-PSS");
		goto out;
	}
	if (params != NULL) {
		if ((h = pss_params_hash(params, paramslen, &salt)) == 0) {
			r = gw_error(rep, 400, "invalid_request", "field 'signAlgoParams' must be "
			    "RSASSA-PSS-params with a SHA-2 hash, MGF1 of the same hash and a salt length");
			goto out;
		}
		hash_algo = h;
		if (salt == (long)rssp_hash_algo_len(h))
			salt = -1; /* the default */
	}
	if (hoid != NULL) {
		if ((h = sg_hash_algo_from_oid(hoid)) == 0) {
			r = gw_error(rep, 400, "invalid_request", "field 'hashAlgorithmOID' is not a supported hash");
			goto out;
		}
		if (hash_algo != 0 && h != hash_algo) {
			r = gw_error(rep, 400, "invalid_request",
			    "field 'hashAlgorithmOID' does not match field 'signAlgo'");
			goto out;
		}
		hash_algo = h;
	}
	if (hash_algo == 0) {
		r = gw_error(rep, 400, "invalid_request", "missing field 'hashAlgorithmOID'");
		goto out;
	}
	hlen = rssp_hash_algo_len(hash_algo);
	if ((r = sg_decode_hashes(rep, hashes_b64, n, hlen, &hashes)) != 0)
		goto out;

	/* Spend n signatures, exactly once: one atomic statement that also checks the
	 * owner of the SAD, the credential and its state. */
	SHA256(sad, sadlen, digest);
	if ((sad_bytea = sg_bytea(digest, sizeof(digest))) == NULL) {
		r = RSSP_E_NOMEM;
		goto out;
	}
	snprintf(nb, sizeof(nb), "%zu", n);
	if ((r = gw_db_query(req->db, &res,
	    "UPDATE auth_requests r SET remaining = r.remaining - $3::int"
	    " FROM credentials c"
	    " WHERE r.sad_hash = $1 AND r.requester_id = $2::uuid AND r.status = 'CONFIRMED'"
	    " AND r.remaining >= $3::int AND r.sad_expires_at > extract(epoch FROM now())::bigint"
	    " AND c.id = r.credential_id AND c.id = $4::uuid AND c.status = 'ACTIVE'"
	    " RETURNING r.id, c.key_algo, r.hash_algo",
	    4, sad_bytea, req->principal.account_id, nb, cred_id)) != 0)
		goto out;
	if (PQntuples(res) != 1) {
		r = spend_refusal(req, rep, sad_bytea, cred_id, n);
		goto out;
	}
	spent = 1;
	snprintf(request_id, sizeof(request_id), "%s", gw_val(res, 0, "id"));
	ka = rssp_key_alg_by_name(gw_val(res, 0, "key_algo"));
	if (atoi(gw_val(res, 0, "hash_algo")) != hash_algo) {
		r = gw_error(rep, 400, "invalid_request",
		    "field 'hashAlgorithmOID' is not the algorithm that was approved");
		goto out;
	}
	if (ka == NULL || rssp_sign_alg_key_type(sign_algo) != ka->type) {
		r = gw_error(rep, 400, "invalid_request", "field 'signAlgo' does not fit the credential's key");
		goto out;
	}
	if (salt >= 0) {
		/* RFC 8017 9.1.1: salt <= emLen - hLen - 2, emLen = ceil((modBits - 1) / 8) */
		long emlen = ka->algo == RSSP_KEY_RSA3072 ? 384 : 256;
		if (salt > emlen - (long)hlen - 2) {
			r = gw_error(rep, 400, "invalid_request", "field 'signAlgoParams' has a salt "
			    "length over the key's maximum (%ld)", emlen - (long)hlen - 2);
			goto out;
		}
	}
	est = engine_sign_hash_pss(req->engine, req->cfg->engine_timeout_ms, req->request_id,
	    cred_id, sad, sadlen, hash_algo, sign_algo, salt, (const uint8_t *const *)hashes, n,
	    hlen, &sigs, &er);
	gw_metrics_engine_call("signhash", er.grpc_status, er.seconds);
	engine_health_note(&er);
	if (engine_may_have_acted(&er))
		spent = 0; /* the engine may have signed: the count stays spent */
	if (est != ENGINE_OK) {
		r = sg_engine_error(rep, &er, "signature");
		goto out;
	}
	if ((arr = json_array()) == NULL) {
		r = RSSP_E_NOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		char *s = rssp_b64(sigs.sig[i], sigs.len[i]);
		if (s == NULL || json_array_append_new(arr, json_string(s)) != 0) {
			free(s);
			r = RSSP_E_NOMEM;
			goto out;
		}
		free(s);
	}
	gw_metrics_signatures(rssp_sign_alg_name(sign_algo, hash_algo) != NULL ?
	    rssp_sign_alg_name(sign_algo, hash_algo) : "other", (unsigned)n);
	r = gw_reply_json(rep, 200, json_pack("{s:o}", "signatures", arr));
	arr = NULL;
out:
	if (spent)
		(void)refund(req, request_id, n); /* the engine certainly refused */
	json_decref(arr);
	if (hashes != NULL)
		for (i = 0; i < n; i++)
			free(hashes[i]);
	free(hashes);
	engine_signatures_release(&sigs);
	free(hashes_b64);
	free(params);
	free(sad_bytea);
	if (sad != NULL)
		OPENSSL_clear_free(sad, sadlen);
	PQclear(res);
	return r;
}
