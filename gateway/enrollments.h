/* enrollments.h - enrolment vouchers in the gateway (issue 9): the RA's REST functions
 * (enrollments/list, enrollments/vouch) and what credential activation needs.
 *
 * The gateway keeps each device's enrolment (schema/005_enrollments.sql) and hands the
 * voucher to the engine, which alone decides (proto/PROTOCOL.md, "Enrolment voucher").
 * With RSSP_RA_KEYS set, the gateway also checks a vouch's signature for an early 400;
 * without, it stores what it is given and the engine's check is the only one. */
#ifndef RSSP_GW_ENROLLMENTS_H
#define RSSP_GW_ENROLLMENTS_H

#include <stddef.h>
#include <stdint.h>

#include "gw.h"
#include "rssp_err.h"
#include "voucher.h"

/* A device's voucher as the RA signed it. */
struct enr_voucher {
	uint8_t *tbs; size_t tbs_len;          /* the canonical bytes */
	uint8_t *sig; size_t sig_len;          /* the RA's signature */
	uint8_t key_id[32];
	struct rssp_voucher v;                 /* tbs, decoded */
};
void enr_voucher_release(struct enr_voucher *v);

/* The voucher of the device whose devices.id is device_id, for an activation that may
 * complete up to margin seconds from now. Sets 409 enrollment_pending (naming field
 * 'deviceUUID') when the device is not VOUCHED or its
 * voucher ends before then (returning what gw_error does); RSSP_E_DB etc. without a
 * reply. On success *out is filled
 * (release with enr_voucher_release). */
int enr_device_voucher(struct gw_request *req, struct gw_reply *rep, const char *device_id,
    long long margin, struct enr_voucher *out) RSSP_WUR;

int enr_list(struct gw_request *req, struct gw_reply *rep);
int enr_vouch(struct gw_request *req, struct gw_reply *rep);

#endif
