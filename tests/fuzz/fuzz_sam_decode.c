/* The engine's decode-and-check step (engine/sam_decode.h), driven directly: whatever
 * the peer sends is decoded as an AuthorizeRequest and as a SignHashRequest. A request
 * that is accepted must satisfy every promise of the internal structs (lengths in
 * range, strings terminated and non-empty where required, known algorithms); a refused
 * one must carry a reason. */
#include <stdint.h>
#include <stddef.h>
#include <string.h>

#include "algo.h"
#include "sam_decode.h"
#include "fuzz.h"

static void
check_id(const char *s, size_t size, int may_be_empty)
{
	size_t n = strnlen(s, size);

	if (n == size || (!may_be_empty && n == 0))
		__builtin_trap();
}

static volatile uint8_t sink;

static void
check_authorize(const struct sam_authorize_req *r)
{
	const struct sam_activation *act = &r->activation;
	const struct sam_approval *ap = &r->approval;

	check_id(r->request_id, sizeof(r->request_id), 1);
	if (r->sig_len < 1 || r->sig_len > KAK_MAX_SIG || r->kak.spki_len > KAK_MAX_SPKI + 1)
		__builtin_trap();
	if (r->purpose == SAM_PURPOSE_ACTIVATION) {
		check_id(act->credential_id, sizeof(act->credential_id), 0);
		check_id(act->owner_id, sizeof(act->owner_id), 0);
		check_id(act->device_uuid, sizeof(act->device_uuid), 0);
		check_id(act->voucher.v.user_id, sizeof(act->voucher.v.user_id), 0);
		check_id(act->voucher.v.common_name, sizeof(act->voucher.v.common_name), 0);
		check_id(act->voucher.v.device_uuid, sizeof(act->voucher.v.device_uuid), 0);
		if (act->voucher.tbs_len < RSSP_VOUCHER_MAGIC_LEN ||
		    act->voucher.tbs_len > RSSP_VOUCHER_MAX_LEN || act->voucher.sig_len < 1 ||
		    act->voucher.sig_len > KAK_MAX_SIG)
			__builtin_trap();
		if (rssp_key_alg(act->key_algo) == NULL || act->validity_days < 1 ||
		    act->nonce_len < RSSP_MIN_NONCE_LEN || act->nonce_len > RSSP_MAX_NONCE_LEN)
			__builtin_trap();
	} else if (r->purpose == SAM_PURPOSE_APPROVAL) {
		check_id(ap->approval_id, sizeof(ap->approval_id), 0);
		check_id(ap->credential_id, sizeof(ap->credential_id), 0);
		check_id(ap->key_label, sizeof(ap->key_label), 0);
		check_id(ap->rp_name, sizeof(ap->rp_name), 1);
		check_id(ap->description, sizeof(ap->description), 1);
		if (rssp_hash_alg(ap->hash_algo) == NULL ||
		    ap->hash_len != rssp_hash_alg(ap->hash_algo)->len ||
		    ap->n_hashes < 1 || ap->n_hashes > RSSP_MAX_HASHES || ap->hashes == NULL ||
		    ap->num_signatures < 1 || ap->nonce_len < RSSP_MIN_NONCE_LEN ||
		    ap->nonce_len > RSSP_MAX_NONCE_LEN)
			__builtin_trap();
		/* every digest byte is readable (ASan checks the last one) */
		sink = ap->hashes[ap->n_hashes * ap->hash_len - 1];
	} else {
		__builtin_trap();
	}
}

static void
check_sign(const struct sam_sign_req *r)
{
	check_id(r->credential_id, sizeof(r->credential_id), 0);
	if (rssp_hash_alg(r->hash_algo) == NULL ||
	    rssp_sign_alg_name(r->sign_algo, r->hash_algo) == NULL ||
	    r->hash_len != rssp_hash_alg(r->hash_algo)->len || r->n_hashes < 1 ||
	    r->n_hashes > RSSP_MAX_HASHES || (r->sad_len > 0) != (r->sad != NULL))
		__builtin_trap();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sam_authorize_req *ar = NULL;
	struct sam_sign_req *sr = NULL;
	struct sam_audit a;

	memset(&a, 0, sizeof(a));
	if (sam_decode_authorize(data, size, &ar, &a) == 0)
		check_authorize(ar);
	else if (ar != NULL)
		__builtin_trap();
	sam_authorize_req_free(ar);

	memset(&a, 0, sizeof(a));
	if (sam_decode_sign_hash(data, size, &sr, &a) == 0)
		check_sign(sr);
	else if (sr != NULL)
		__builtin_trap();
	sam_sign_req_free(sr);
	return 0;
}
