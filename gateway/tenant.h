/* tenant.h - the gateway's one tenant rule: who may see or act on what belongs to an
 * account (the account itself, its credentials, their requests), and the one loader
 * that applies it to a row ("load, 404 if absent, 403 if foreign").
 *
 * The relations of a caller to an account A:
 *   self      the caller is A;
 *   admin     the caller is an admin;
 *   registrar the caller is the rp that registered A;
 *   company   the caller is a company_admin of A's company (both non-empty);
 * and, for an authorization request, requester: the caller asked for it.
 * What each mode allows:
 *   TENANT_SEE       self, admin, registrar, company (an account, a credential, lists)
 *   TENANT_MANAGE    self, admin                     (revoke a credential)
 *   TENANT_ACT       self, registrar                 (ask for a signature: authorize)
 *   TENANT_OWN       self                            (activate; a request's info, confirm)
 *   TENANT_PARTY     self, requester                 (cancel a request)
 *   TENANT_REQUESTER requester                       (authorizeCheck)
 */
#ifndef RSSP_GW_TENANT_H
#define RSSP_GW_TENANT_H

#include <stdbool.h>

#include <libpq-fe.h>

#include "db.h"
#include "gw.h"

enum tenant_mode {
	TENANT_SEE, TENANT_MANAGE, TENANT_ACT, TENANT_OWN, TENANT_PARTY, TENANT_REQUESTER,
};

/* The account a row belongs to, as the rule needs it. "" for an absent company,
 * registrar or requester. */
struct tenant_owner {
	const char *account_id;
	const char *company_id;
	const char *registered_by;
	const char *requester_id;    /* authorization requests only */
};

/* True when the caller p may do mode on what belongs to owner. */
bool tenant_allows(const struct gw_principal *p, enum tenant_mode mode,
    const struct tenant_owner *owner);

/* The same rule for TENANT_SEE as an SQL predicate (for lists) over the owner's id
 * (an expression equal to acct.id) and its accounts row aliased acct, with the caller's
 * id, role name (gw_role_name) and company id (NULL when none) as parameters: write
 *   TENANT_SEE_SQL("c.owner_id", "a", "$1", "$2", "$3")
 * and pass p->account_id, gw_role_name(p->role), p->company_id or NULL. */
#define TENANT_SEE_SQL(owner, acct, id, role, company) \
	"(" owner " = " id "::uuid OR " role " = 'admin'" \
	" OR (" role " = 'rp' AND " acct ".registered_by = " id "::uuid)" \
	" OR (" role " = 'company_admin' AND " acct ".company_id = " company "::uuid))"

/* The loader. Runs sql with n params; the query returns at most one row, with the
 * owner's columns named tenant_account, tenant_company, tenant_registered_by and, for
 * requests, tenant_requester (text, "" when NULL; a column left out reads ""). No row: 404 not_found with the text not_found. A row the caller may
 * not use in mode: 403 access_denied with the text foreign, or, when foreign is NULL,
 * the same 404 as no row (another tenant's accounts are not revealed). Both return RSSP_E_INVAL
 * with the reply set; a database failure returns RSSP_E_DB etc. without a reply. On
 * success *resp holds the row (free with PQclear). */
int tenant_load(struct gw_request *req, struct gw_reply *rep, enum tenant_mode mode,
    const char *sql, int n, const char *const *params, const char *not_found,
    const char *foreign, PGresult **resp) RSSP_WUR;

/* The SQL select-list that names the owner columns tenant_load reads, over an accounts
 * row aliased acct. */
#define TENANT_OWNER_COLS(acct) \
	acct ".id::text AS tenant_account, coalesce(" acct ".company_id::text, '') AS tenant_company," \
	" coalesce(" acct ".registered_by::text, '') AS tenant_registered_by"

#endif
