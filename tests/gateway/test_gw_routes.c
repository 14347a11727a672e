/* test_gw_routes.c - the gateway's route table (routes.c) and its one tenant rule
 * (tenant.c), table-driven, linked directly against rssp_gateway_lib. */
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "gw.h"
#include "routes.h"
#include "tenant.h"

#define ME "11111111-1111-1111-1111-111111111111"
#define OTHER "22222222-2222-2222-2222-222222222222"
#define CO "33333333-3333-3333-3333-333333333333"
#define CO2 "44444444-4444-4444-4444-444444444444"

START_TEST(test_the_tenant_rule_for_every_relation_and_mode)
{
	static const struct {
		const char *what;
		unsigned role;
		const char *my_company;
		struct tenant_owner owner;
		bool see, manage, act, own, party, requester;
	} cases[] = {
		{ "self (signer)", GW_ROLE_SIGNER, "", { ME, "", "", "" },
		    true, true, true, true, true, false },
		{ "an admin, another's", GW_ROLE_ADMIN, "", { OTHER, "", "", "" },
		    true, true, false, false, false, false },
		{ "the rp that registered it", GW_ROLE_RP, "", { OTHER, "", ME, "" },
		    true, false, true, false, false, false },
		{ "an rp that did not", GW_ROLE_RP, "", { OTHER, "", OTHER, "" },
		    false, false, false, false, false, false },
		{ "a signer registered by someone", GW_ROLE_SIGNER, "", { OTHER, "", ME, "" },
		    false, false, false, false, false, false },
		{ "the company admin of its company", GW_ROLE_COMPANY_ADMIN, CO, { OTHER, CO, "", "" },
		    true, false, false, false, false, false },
		{ "a company admin of another", GW_ROLE_COMPANY_ADMIN, CO2, { OTHER, CO, "", "" },
		    false, false, false, false, false, false },
		{ "a company admin without a company", GW_ROLE_COMPANY_ADMIN, "", { OTHER, "", "", "" },
		    false, false, false, false, false, false },
		{ "a signer of the same company", GW_ROLE_SIGNER, CO, { OTHER, CO, "", "" },
		    false, false, false, false, false, false },
		{ "the requester of another's request", GW_ROLE_RP, "", { OTHER, "", "", ME },
		    false, false, false, false, true, true },
		{ "a stranger", GW_ROLE_SIGNER, "", { OTHER, "", "", OTHER },
		    false, false, false, false, false, false },
	};
	struct gw_principal p;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&p, 0, sizeof(p));
		strcpy(p.account_id, ME);
		strcpy(p.company_id, cases[i].my_company);
		p.role = cases[i].role;
		ck_assert_msg(tenant_allows(&p, TENANT_SEE, &cases[i].owner) == cases[i].see,
		    "%s: see", cases[i].what);
		ck_assert_msg(tenant_allows(&p, TENANT_MANAGE, &cases[i].owner) == cases[i].manage,
		    "%s: manage", cases[i].what);
		ck_assert_msg(tenant_allows(&p, TENANT_ACT, &cases[i].owner) == cases[i].act,
		    "%s: act", cases[i].what);
		ck_assert_msg(tenant_allows(&p, TENANT_OWN, &cases[i].owner) == cases[i].own,
		    "%s: own", cases[i].what);
		ck_assert_msg(tenant_allows(&p, TENANT_PARTY, &cases[i].owner) == cases[i].party,
		    "%s: party", cases[i].what);
		ck_assert_msg(tenant_allows(&p, TENANT_REQUESTER, &cases[i].owner) == cases[i].requester,
		    "%s: requester", cases[i].what);
	}
}
END_TEST

START_TEST(test_the_route_table_is_one_flat_list_of_distinct_functions)
{
	const struct gw_route *r, *q;
	size_t n = 0;

	for (r = gw_routes; r->path != NULL; r++, n++) {
		ck_assert_msg(strncmp(r->path, "/rssp/", 6) == 0 || strncmp(r->path, "/csc/v1/", 8) == 0 ||
		    strncmp(r->path, "/csc/v2/", 8) == 0, "%s: outside /rssp/, /csc/v1/ and /csc/v2/", r->path);
		ck_assert_msg(r->handler != NULL, "%s: no handler", r->path);
		/* a route needs a token (and names who may call) or is public (and names nobody) */
		if (r->flags & GW_PUBLIC)
			ck_assert_msg(r->roles == 0, "%s: public with roles", r->path);
		else
			ck_assert_msg(r->roles != 0 && (r->roles & ~GW_ROLES_ALL) == 0,
			    "%s: roles %#x", r->path, r->roles);
		for (q = gw_routes; q != r; q++)
			ck_assert_msg(strcmp(q->path, r->path) != 0, "%s: twice", r->path);
	}
	ck_assert_uint_ge(n, 40);
}
END_TEST

START_TEST(test_the_route_table_keeps_the_access_rules)
{
	static const struct {
		const char *path;
		unsigned flags;
		unsigned roles;
	} want[] = {
		{ "/rssp/info", GW_PUBLIC | GW_NO_DB, 0 },
		{ "/rssp/auth/login", GW_PUBLIC | GW_RAW_BODY | GW_LONG | GW_NO_DB, 0 },
		{ "/rssp/users/register", 0, GW_ROLE_RP | GW_ROLE_ADMIN },
		{ "/rssp/users/confirm", GW_PUBLIC | GW_LONG, 0 },
		{ "/rssp/admin/users/disable", 0, GW_ROLE_ADMIN },
		{ "/rssp/admin/devices/revoke", 0, GW_ROLE_ADMIN },
		{ "/rssp/credentials/create", 0, GW_ROLE_ADMIN | GW_ROLE_RP | GW_ROLE_COMPANY_ADMIN },
		{ "/rssp/enrollments/list", 0, GW_ROLE_ADMIN | GW_ROLE_RP },
		{ "/rssp/enrollments/vouch", 0, GW_ROLE_ADMIN | GW_ROLE_RP },
		{ "/rssp/credentials/activate/response", GW_NEEDS_ENGINE | GW_LONG, GW_ROLES_ALL },
		{ "/rssp/credentials/authorize", 0, GW_ROLE_RP | GW_ROLE_SIGNER | GW_ROLE_COMPANY_ADMIN },
		{ "/rssp/requests/confirm", GW_NEEDS_ENGINE, GW_ROLES_ALL },
		{ "/rssp/signatures/signHash", GW_NEEDS_ENGINE, GW_ROLES_ALL },
		/* public: it takes an OAuth credential token in place of a session bearer and a
		 * SAD; the handler authenticates one or the other (csc_v2.c, oauth.c) */
		{ "/csc/v2/signatures/signHash", GW_PUBLIC | GW_NEEDS_ENGINE, 0 },
		{ "/csc/v1/signatures/signHash", GW_NEEDS_ENGINE, GW_ROLES_ALL },
		{ "/csc/v1/credentials/authorize", GW_LONG | GW_WAITS, GW_ROLE_RP | GW_ROLE_SIGNER | GW_ROLE_COMPANY_ADMIN },
		{ "/csc/v2/credentials/authorize", 0, GW_ROLE_RP | GW_ROLE_SIGNER | GW_ROLE_COMPANY_ADMIN },
		{ "/csc/v2/oauth2/authorize", GW_PUBLIC | GW_GET, 0 },
		{ "/csc/v2/oauth2/token", GW_PUBLIC | GW_RAW_BODY | GW_LONG, 0 },
		{ "/rssp/admin/clients/update", 0, GW_ROLE_ADMIN },
	};
	const struct gw_route *r;
	size_t i;

	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		for (r = gw_routes; r->path != NULL && strcmp(r->path, want[i].path) != 0; r++)
			;
		ck_assert_msg(r->path != NULL, "%s: missing", want[i].path);
		ck_assert_msg(r->flags == want[i].flags && r->roles == want[i].roles,
		    "%s: flags %#x roles %#x", want[i].path, r->flags, r->roles);
	}
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("gw_routes");
	TCase *t = tcase_create("routes");
	SRunner *sr;
	int failed;

	tcase_add_test(t, test_the_tenant_rule_for_every_relation_and_mode);
	tcase_add_test(t, test_the_route_table_is_one_flat_list_of_distinct_functions);
	tcase_add_test(t, test_the_route_table_keeps_the_access_rules);
	suite_add_tcase(s, t);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
