/* routes.c - the gateway's access control in one table: every function it serves, who
 * may call it and how it runs. Read it top to bottom, like OpenSSH's
 * mon_dispatch_proto20[].
 *
 * Columns: the path (every function is a POST with a JSON body unless GW_RAW_BODY),
 * flags (gw.h: GW_PUBLIC: no bearer token needed; GW_LONG: runs on the long pool, for
 * argon2id and key generation; GW_NEEDS_ENGINE: 503 without an engine client; GW_NO_DB;
 * GW_RAW_BODY: a form or empty body), the roles whose bearer token may call it
 * (ignored for GW_PUBLIC), and the handler. A handler still decides which accounts,
 * credentials and requests the caller may see (the tenant rule); the table decides
 * who may call at all.
 *
 * Not in the table: the framework's own GET endpoints (/healthz, /readyz, /metrics,
 * /openapi.json), unauthenticated and without a database, served by server.c.
 *
 * Add a route: one line here, its handler declared in its area's header. */
#include "accounts.h"
#include "auth.h"
#include "gw.h"
#include "routes.h"
#include "signing.h"

#define ANY GW_ROLES_ALL
#define ADMIN GW_ROLE_ADMIN
#define RP GW_ROLE_RP
#define COMPANY_ADMIN GW_ROLE_COMPANY_ADMIN
#define SIGNER GW_ROLE_SIGNER

const struct gw_route gw_routes[] = {
	/* path                                  flags                           roles   handler */

	/* info and auth (info.c, auth.c). argon2id (login) runs on the long pool, never on an
	 * HTTP thread that also serves signing. */
	{ "/rssp/info", GW_PUBLIC | GW_NO_DB, 0, gw_info_handler },
	{ "/rssp/auth/login", GW_PUBLIC | GW_RAW_BODY | GW_LONG, 0, auth_login },
	{ "/rssp/auth/revoke", GW_RAW_BODY, ANY, auth_revoke },
	{ "/csc/v2/info", GW_PUBLIC | GW_NO_DB, 0, gw_info_handler },
	{ "/csc/v2/auth/login", GW_PUBLIC | GW_RAW_BODY | GW_LONG, 0, auth_login },
	{ "/csc/v2/auth/revoke", GW_RAW_BODY, ANY, auth_revoke },

	/* accounts (users.c, admin.c). Routes that hash or verify a passphrase or secret
	 * with argon2id carry GW_LONG: they run on the long pool under
	 * RSSP_ARGON2_CONCURRENCY, never on an HTTP thread. */
	{ "/rssp/users/register", 0, RP | ADMIN, users_register },
	{ "/rssp/users/registerCompanyUser", 0, COMPANY_ADMIN | ADMIN, users_register_company_user },
	{ "/rssp/users/confirm", GW_PUBLIC | GW_LONG, 0, users_confirm },
	{ "/rssp/users/changePassphrase", GW_LONG, ANY, users_change_passphrase },
	{ "/rssp/users/status", 0, ANY, users_status },
	{ "/rssp/admin/clients/create", GW_LONG, ADMIN, admin_clients_create },
	{ "/rssp/admin/clients/rotate", GW_LONG, ADMIN, admin_clients_rotate },
	{ "/rssp/admin/users/list", 0, ADMIN, admin_users_list },
	{ "/rssp/admin/users/disable", 0, ADMIN, admin_users_disable },
	{ "/rssp/admin/users/enable", 0, ADMIN, admin_users_enable },
	{ "/rssp/admin/users/unlock", 0, ADMIN, admin_users_unlock },
	{ "/rssp/admin/outbox/list", 0, ADMIN, admin_outbox_list },

	/* the signer's app (sic.c) */
	{ "/rssp/sic/activationCode", 0, ANY, sic_activation_code },
	{ "/rssp/sic/activate/initialize", 0, ANY, sic_activate_initialize },
	{ "/rssp/sic/activate/sendDevice", 0, ANY, sic_activate_send_device },
	{ "/rssp/sic/status", 0, ANY, sic_status },
	{ "/rssp/admin/devices/revoke", 0, ADMIN, sic_admin_devices_revoke },

	/* credentials (credentials.c); activate/response makes the engine generate a key:
	 * seconds, off the HTTP threads */
	{ "/rssp/credentials/create", 0, ADMIN | RP | COMPANY_ADMIN, cred_create },
	{ "/rssp/credentials/list", 0, ANY, cred_list },
	{ "/rssp/credentials/info", 0, ANY, cred_info },
	{ "/rssp/credentials/activate/request", 0, ANY, cred_activate_request },
	{ "/rssp/credentials/activate/response", GW_NEEDS_ENGINE | GW_LONG, ANY, cred_activate_response },
	{ "/rssp/credentials/activate/cancel", 0, ANY, cred_activate_cancel },
	{ "/rssp/credentials/revoke", 0, ANY, cred_revoke },

	/* authorization requests (auth_requests.c) and signing (signatures.c) */
	{ "/rssp/credentials/authorize", 0, RP | SIGNER | COMPANY_ADMIN, areq_authorize },
	{ "/rssp/credentials/authorizeCheck", 0, ANY, areq_authorize_check },
	{ "/rssp/requests/list", 0, ANY, areq_list },
	{ "/rssp/requests/info", 0, ANY, areq_info },
	{ "/rssp/requests/confirm", GW_NEEDS_ENGINE, ANY, areq_confirm },
	{ "/rssp/requests/cancel", 0, ANY, areq_cancel },
	{ "/rssp/signatures/signHash", GW_NEEDS_ENGINE, ANY, sg_sign_hash },

	/* The CSC v2 names of the same functions (api.md, "CSC v2 compatibility"). */
	{ "/csc/v2/credentials/list", 0, ANY, cred_list },
	{ "/csc/v2/credentials/info", 0, ANY, cred_info },
	{ "/csc/v2/credentials/authorize", 0, RP | SIGNER | COMPANY_ADMIN, areq_authorize },
	{ "/csc/v2/credentials/authorizeCheck", 0, ANY, areq_authorize_check },
	{ "/csc/v2/signatures/signHash", GW_NEEDS_ENGINE, ANY, sg_sign_hash },

	{ 0 },
};
