/* account_status.c - every change of accounts.status outside registration and
 * confirmation, each written once (accounts.h): a failed passphrase that may lock the
 * account, a lock whose time is up, and the admin's disable, enable and unlock. */
#include <stdio.h>

#include "accounts.h"
#include "db.h"

int
acct_status_change(PGconn *db, const struct gw_config *cfg, enum acct_transition t,
    const char *key, char status[32])
{
	PGresult *res = NULL;
	char thr[16] = "", secs[16] = "";
	int r = RSSP_E_INVAL;

	/* the lockout policy, as parameters of the transitions that count failures (the
	 * others do not read cfg) */
	if (cfg != NULL) {
		snprintf(thr, sizeof(thr), "%u", cfg->lockout_threshold);
		snprintf(secs, sizeof(secs), "%u", cfg->lockout_seconds);
	}
	switch (t) {
	case ACCT_FAILED_PASSPHRASE:
		/* a stolen bearer token must not become a passphrase oracle either: the login
		 * and users/changePassphrase count towards the same lockout */
		r = gw_db_query(db, NULL,
		    "UPDATE accounts SET failed_logins = failed_logins + 1,"
		    " status = CASE WHEN status = 'ACTIVE' AND failed_logins + 1 >= $2::int THEN 'LOCKED' ELSE status END,"
		    " locked_until = CASE WHEN status = 'ACTIVE' AND failed_logins + 1 >= $2::int"
		    "   THEN now() + make_interval(secs => $3::int) ELSE locked_until END,"
		    " updated_at = now()"
		    " WHERE id = $1::uuid", 3, key, thr, secs);
		break;
	case ACCT_LOCK_EXPIRED:
		/* a lock whose time is up ends here, with its failure count (also the lock of a
		 * DISABLED account, and the one a login attempt set when it took the last place) */
		r = gw_db_query(db, NULL,
		    "UPDATE accounts SET status = CASE WHEN status = 'LOCKED' THEN 'ACTIVE' ELSE status END,"
		    " failed_logins = 0, locked_until = NULL, updated_at = now()"
		    " WHERE id = $1::uuid AND " ACCT_LOCK_OVER_SQL, 1, key);
		break;
	case ACCT_LOGIN_ATTEMPT:
		/* one place for one evaluation, taken before it runs (auth.c): never more than
		 * the threshold, however many attempts run at once */
		r = gw_db_query(db, &res,
		    "UPDATE accounts SET failed_logins = failed_logins + 1,"
		    " locked_until = CASE WHEN failed_logins + 1 >= $2::int"
		    "   THEN now() + make_interval(secs => $3::int) ELSE locked_until END,"
		    " updated_at = now()"
		    " WHERE id = $1::uuid AND status IN ('ACTIVE', 'DISABLED') AND failed_logins < $2::int"
		    " RETURNING failed_logins::text AS status_after", 3, key, thr, secs);
		break;
	case ACCT_LOGIN_FAILED:
		/* the place stays counted; at the threshold ACTIVE -> LOCKED */
		r = gw_db_query(db, NULL,
		    "UPDATE accounts SET"
		    " status = CASE WHEN status = 'ACTIVE' AND failed_logins >= $2::int THEN 'LOCKED' ELSE status END,"
		    " locked_until = CASE WHEN failed_logins >= $2::int"
		    "   THEN coalesce(locked_until, now() + make_interval(secs => $3::int)) ELSE locked_until END,"
		    " updated_at = now()"
		    " WHERE id = $1::uuid", 3, key, thr, secs);
		break;
	case ACCT_DISABLE:
		r = gw_db_query(db, &res,
		    "UPDATE accounts SET status = 'DISABLED', updated_at = now() WHERE id = $1::uuid"
		    " RETURNING status AS status_after", 1, key);
		break;
	case ACCT_ENABLE:
		/* DISABLED goes back to where it came from: ACTIVE once confirmed, else pending.
		 * Any other state is left as it is (enabling is idempotent). */
		r = gw_db_query(db, &res,
		    "UPDATE accounts SET status = CASE WHEN status <> 'DISABLED' THEN status "
		    "  WHEN confirmed_at IS NULL THEN 'PENDING_CONFIRMATION' ELSE 'ACTIVE' END, "
		    " failed_logins = CASE WHEN status = 'DISABLED' THEN 0 ELSE failed_logins END, "
		    " locked_until = CASE WHEN status = 'DISABLED' THEN NULL ELSE locked_until END, "
		    " updated_at = now() WHERE id = $1::uuid "
		    "RETURNING CASE WHEN status = 'LOCKED' AND locked_until <= now() THEN 'ACTIVE' ELSE status END"
		    " AS status_after",
		    1, key);
		break;
	case ACCT_UNLOCK:
		r = gw_db_query(db, &res,
		    "UPDATE accounts SET status = CASE WHEN status = 'LOCKED' THEN 'ACTIVE' ELSE status END, "
		    " failed_logins = 0, locked_until = NULL, updated_at = now() WHERE id = $1::uuid "
		    "RETURNING status AS status_after", 1, key);
		break;
	}
	if (r == 0 && status != NULL)
		snprintf(status, 32, "%s", res != NULL && PQntuples(res) == 1 ?
		    gw_val(res, 0, "status_after") : "");
	PQclear(res);
	return r;
}
