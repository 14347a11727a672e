/* tenant.c - the one tenant rule and its loader (tenant.h). */
#include <string.h>

#include "db.h"
#include "tenant.h"

bool
tenant_allows(const struct gw_principal *p, enum tenant_mode mode,
    const struct tenant_owner *o)
{
	bool self = strcmp(o->account_id, p->account_id) == 0;
	bool admin = p->role == GW_ROLE_ADMIN;
	bool registrar = p->role == GW_ROLE_RP && o->registered_by[0] != '\0' &&
	    strcmp(o->registered_by, p->account_id) == 0;
	bool company = p->role == GW_ROLE_COMPANY_ADMIN && o->company_id[0] != '\0' &&
	    p->company_id[0] != '\0' && strcmp(o->company_id, p->company_id) == 0;
	bool requester = o->requester_id[0] != '\0' && strcmp(o->requester_id, p->account_id) == 0;

	switch (mode) {
	case TENANT_SEE:
		return self || admin || registrar || company;
	case TENANT_MANAGE:
		return self || admin;
	case TENANT_ACT:
		return self || registrar;
	case TENANT_OWN:
		return self;
	case TENANT_PARTY:
		return self || requester;
	case TENANT_REQUESTER:
		return requester;
	}
	return false;
}

int
tenant_load(struct gw_request *req, struct gw_reply *rep, enum tenant_mode mode,
    const char *sql, int n, const char *const *params, const char *not_found,
    const char *foreign, PGresult **resp)
{
	PGresult *res = NULL;
	struct tenant_owner o;
	int r;

	if ((r = gw_db_exec(req->db, &res, sql, n, params)) != 0)
		goto out;
	if (PQntuples(res) != 1) {
		r = gw_error(rep, 404, "not_found", "%s", not_found);
		goto out;
	}
	o.account_id = gw_val(res, 0, "tenant_account");
	o.company_id = gw_val(res, 0, "tenant_company");
	o.registered_by = gw_val(res, 0, "tenant_registered_by");
	o.requester_id = gw_val(res, 0, "tenant_requester");
	if (!tenant_allows(&req->principal, mode, &o)) {
		/* foreign NULL: answered exactly as an absent row (existence not revealed) */
		r = foreign == NULL ? gw_error(rep, 404, "not_found", "%s", not_found) :
		    gw_error(rep, 403, "access_denied", "%s", foreign);
		goto out;
	}
	*resp = res; /* owned by the caller */
	res = NULL;
	r = 0;
out:
	PQclear(res);
	return r;
}
