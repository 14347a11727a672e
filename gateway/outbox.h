/* outbox.h - the notification outbox: messages written in the same transaction as the
 * change that causes them, and their delivery (SMTP relay for email, JSON webhook for SMS).
 * In `outbox` mode (RSSP_DELIVERY=outbox, the default) messages stay in the table and
 * /rssp/admin/outbox/list shows them; in `deliver` mode a background thread sends them,
 * marks sent_at and blanks the secrets (every string of `data`, also where it appears in
 * the subject and body). Several gateway replicas may deliver from one database.
 * rssp-gateway serve (main.c) starts the thread when RSSP_DELIVERY=deliver. */
#ifndef RSSP_OUTBOX_H
#define RSSP_OUTBOX_H

#include <libpq-fe.h>
#include <jansson.h>

#include "rssp_err.h"

/* Enqueues one message on db, inside the caller's open transaction (the message exists
 * only if that transaction commits). channel: "email" or "sms"; recipient: an email
 * address or an E.164 mobile number (no CR/LF); kind: a short machine-readable name
 * ("confirmation", "sic_activation_code", ...); subject may be NULL for sms; data: an
 * object of the secrets the message carries (e.g. {"token": ...} or {"code": ...}; its
 * string values are what is blanked once the message is sent) or NULL. Borrows every
 * argument. Returns 0, RSSP_E_INVAL or RSSP_E_DB. */
int outbox_enqueue(PGconn *db, const char *channel, const char *recipient, const char *kind,
    const char *subject, const char *body, json_t *data) RSSP_WUR;

struct outbox_delivery_conf {
	const char *db_url;      /* libpq URL; the thread holds its own connection */
	const char *smtp_url;    /* e.g. smtp://relay:25 or smtps://user:pass@relay:465; NULL: email not sent */
	const char *smtp_from;   /* From: header, "Name <addr>" or "addr"; NULL: "rssp@localhost" */
	const char *sms_webhook; /* http(s) URL receiving {"id","to","kind","body"} as JSON; NULL: sms not sent */
};

/* Sends up to max due messages of db (unsent, next_attempt_at passed), each row locked
 * with FOR UPDATE SKIP LOCKED so that replicas never send one message twice at once. A
 * failure counts an attempt and schedules the next with exponential backoff (1 s, 2 s,
 * 4 s ... capped at 1 h; after 16 attempts the message is left unsent for an operator).
 * Sets *sentp (may be NULL) to the number delivered. Returns 0 or RSSP_E_DB. */
int outbox_deliver_due(PGconn *db, const struct outbox_delivery_conf *conf, int max,
    int *sentp) RSSP_WUR;

struct outbox_delivery;

/* Starts the delivery thread (LISTEN rssp_outbox on its own connection, then a round on
 * every notification and at least every second). conf strings are copied. Call from the
 * main thread before other threads use libcurl (it runs curl_global_init). On success
 * *dp is owned by the caller, stop and free it with outbox_delivery_free(). */
int outbox_delivery_start(const struct outbox_delivery_conf *conf,
    struct outbox_delivery **dp) RSSP_WUR;

/* Stops the thread, waits for it and frees d. Accepts NULL. */
void outbox_delivery_free(struct outbox_delivery *d);

#endif
