/* voucher.h - the enrolment voucher a registration authority (RA) signs.
 *
 * A voucher says: "the person with this user id and this name holds the device with
 * this id and this key-authorisation key (KAK)". The RA signs the raw bytes with its own
 * key (ECDSA P-256 SHA-256 DER, or RSASSA-PSS SHA-256 salt 32); the engine issues a key
 * and a certificate only for a (user, KAK) pair a trusted RA vouched for, and takes the
 * certificate subject from the voucher alone. Built by the gateway (it hands the bytes to
 * the RA), parsed by the engine and the gateway; one module so both agree.
 *
 * Encoding (proto/PROTOCOL.md, "Enrolment voucher"):
 *   "rssp-voucher-v1" (15 ASCII bytes)
 *   || fields, each: tag (1 byte) || length (4 bytes, big endian) || value
 * Every field present once, in ascending tag order, nothing trailing:
 *   1 user_id       UTF-8, 1..128 bytes (also the certificate's serialNumber)
 *   2 common_name   UTF-8, 1..256 bytes, no control characters (the certificate's CN)
 *   3 kak_sha256    32 bytes, SHA-256 of the KAK's SubjectPublicKeyInfo DER
 *   4 device_uuid   UTF-8, 1..128 bytes
 *   5 issued_at     8 bytes, big-endian two's complement, unix seconds
 *   6 not_after     8 bytes, same; issued_at < not_after <= issued_at + 30 days
 *   7 ra_key_id     32 bytes, SHA-256 of the RA key's SubjectPublicKeyInfo DER
 */
#ifndef RSSP_VOUCHER_H
#define RSSP_VOUCHER_H

#include <stddef.h>
#include <stdint.h>

#include "rssp_err.h"

#define RSSP_VOUCHER_MAGIC "rssp-voucher-v1"
#define RSSP_VOUCHER_MAGIC_LEN 15
#define RSSP_VOUCHER_MAX_ID 128
#define RSSP_VOUCHER_MAX_CN 256
#define RSSP_VOUCHER_MAX_DAYS 30
#define RSSP_VOUCHER_MAX_LEN 1024   /* larger than any well-formed voucher */

enum {
	VOUCHER_USER_ID = 1, VOUCHER_COMMON_NAME, VOUCHER_KAK_SHA256, VOUCHER_DEVICE_UUID,
	VOUCHER_ISSUED_AT, VOUCHER_NOT_AFTER, VOUCHER_RA_KEY_ID,
};

struct rssp_voucher {
	char user_id[RSSP_VOUCHER_MAX_ID + 1];
	char common_name[RSSP_VOUCHER_MAX_CN + 1];
	uint8_t kak_sha256[32];
	char device_uuid[RSSP_VOUCHER_MAX_ID + 1];
	int64_t issued_at;
	int64_t not_after;
	uint8_t ra_key_id[32];
};

/* Builds the canonical bytes of v. Returns 0, RSSP_E_INVAL (a field empty, too long,
 * not UTF-8, or the validity is not 0 < not_after - issued_at <= 30 days), RSSP_E_NOMEM;
 * on success *outp is owned by the caller, free with free(). */
int rssp_voucher_build(const struct rssp_voucher *v, uint8_t **outp, size_t *outlenp) RSSP_WUR;

/* Parses buf exactly (magic, every field once in order, lengths, UTF-8, issued_at >= 0,
 * nothing trailing) into *v. The validity window is not checked here: callers check it
 * with rssp_voucher_window_ok() and refuse with a reason of their own. Returns 0 or
 * RSSP_E_INVAL; *v is written only on success. Untrusted input: fuzzed
 * (tests/fuzz/fuzz_voucher.c). */
int rssp_voucher_parse(const uint8_t *buf, size_t len, struct rssp_voucher *v) RSSP_WUR;

/* 1 when 0 <= issued_at < not_after <= issued_at + 30 days, else 0. */
int rssp_voucher_window_ok(const struct rssp_voucher *v);

#endif
