/* routes.c - the gateway's access control in one table: every function it serves, who
 * may call it and how it runs. Read it top to bottom, like OpenSSH's
 * mon_dispatch_proto20[].
 *
 * Columns: the path (every function is a POST with a JSON body unless GW_RAW_BODY),
 * flags (gw.h: GW_PUBLIC: no bearer token needed; GW_LONG: runs on the long pool, for
 * argon2id and key generation; GW_NEEDS_ENGINE: 503 without an engine client; GW_NO_DB;
 * GW_RAW_BODY: a form or empty body; GW_GET: also a GET, for a browser page), the roles whose bearer token may call it
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
#include "csc.h"
#include "enrollments.h"
#include "gw.h"
#include "oauth.h"
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
	 * HTTP thread that also serves signing; the login takes a database connection itself,
	 * only while it needs one (none while argon2id waits or runs). */
	{ "/rssp/info", GW_PUBLIC | GW_NO_DB, 0, gw_info_handler },
	{ "/rssp/auth/login", GW_PUBLIC | GW_RAW_BODY | GW_LONG | GW_NO_DB, 0, auth_login },
	{ "/rssp/auth/revoke", GW_RAW_BODY, ANY, auth_revoke },
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

	/* enrolment (enrollments.c): a registration authority vouches for a device; an rp
	 * only for its own users (the handler's tenant rule) */
	{ "/rssp/enrollments/list", 0, ADMIN | RP, enr_list },
	{ "/rssp/enrollments/vouch", 0, ADMIN | RP, enr_vouch },

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

	/* CSC API v1.0.4.0 and v2.0.0.2 (csc_v1.c, csc_v2.c): translations onto the functions
	 * above; auth/login and auth/revoke are auth.c's. The specification's methods this
	 * service does not implement answer 501 (and info does not list them). */
	{ "/csc/v1/info", GW_PUBLIC | GW_NO_DB, 0, csc_v1_info },
	{ "/csc/v1/auth/login", GW_PUBLIC | GW_RAW_BODY | GW_LONG | GW_NO_DB, 0, auth_login },
	{ "/csc/v1/auth/revoke", GW_RAW_BODY, ANY, auth_revoke },
	{ "/csc/v1/credentials/list", 0, ANY, csc_v1_cred_list },
	{ "/csc/v1/credentials/info", 0, ANY, csc_v1_cred_info },
	/* synchronous: waits for the signer's confirmation (RSSP_CSC_V1_AUTHORIZE_WAIT) */
	{ "/csc/v1/credentials/authorize", GW_LONG | GW_WAITS, RP | SIGNER | COMPANY_ADMIN, csc_v1_authorize },
	{ "/csc/v1/signatures/signHash", GW_NEEDS_ENGINE, ANY, csc_v1_sign_hash },
	{ "/csc/v1/credentials/extendTransaction", GW_PUBLIC | GW_NO_DB, 0, csc_not_implemented },
	{ "/csc/v1/credentials/sendOTP", GW_PUBLIC | GW_NO_DB, 0, csc_not_implemented },
	{ "/csc/v1/signatures/timestamp", GW_PUBLIC | GW_NO_DB, 0, csc_not_implemented },
	{ "/csc/v2/info", GW_PUBLIC | GW_NO_DB, 0, csc_v2_info },
	{ "/csc/v2/auth/login", GW_PUBLIC | GW_RAW_BODY | GW_LONG | GW_NO_DB, 0, auth_login },
	{ "/csc/v2/auth/revoke", GW_RAW_BODY, ANY, auth_revoke },
	{ "/csc/v2/credentials/list", 0, ANY, csc_v2_cred_list },
	{ "/csc/v2/credentials/info", 0, ANY, csc_v2_cred_info },
	{ "/csc/v2/credentials/authorize", 0, RP | SIGNER | COMPANY_ADMIN, csc_v2_authorize },
	{ "/csc/v2/credentials/authorizeCheck", 0, ANY, csc_v2_authorize_check },
	/* public: an OAuth credential token is no session bearer; the handler checks it */
	{ "/csc/v2/signatures/signHash", GW_PUBLIC | GW_NEEDS_ENGINE, 0, csc_v2_sign_hash },
	{ "/csc/v2/credentials/extendTransaction", GW_PUBLIC | GW_NO_DB, 0, csc_not_implemented },
	{ "/csc/v2/credentials/sendOTP", GW_PUBLIC | GW_NO_DB, 0, csc_not_implemented },
	{ "/csc/v2/credentials/getChallenge", GW_PUBLIC | GW_NO_DB, 0, csc_not_implemented },
	{ "/csc/v2/signatures/signDoc", GW_PUBLIC | GW_NO_DB, 0, csc_not_implemented },
	{ "/csc/v2/signatures/signPolling", GW_PUBLIC | GW_NO_DB, 0, csc_not_implemented },
	{ "/csc/v2/signatures/timestamp", GW_PUBLIC | GW_NO_DB, 0, csc_not_implemented },

	/* OAuth 2.0 as CSC v2 defines it (oauth.c). authorize is a browser page (GET); the
	 * page cannot approve anything: the signer approves on the app (requests/confirm).
	 * token and revoke verify client secrets with argon2id: the long pool. */
	{ "/csc/v2/oauth2/authorize", GW_PUBLIC | GW_GET, 0, oauth_authorize },
	{ "/csc/v2/oauth2/page.css", GW_PUBLIC | GW_GET | GW_NO_DB, 0, oauth_css },
	{ "/csc/v2/oauth2/token", GW_PUBLIC | GW_RAW_BODY | GW_LONG, 0, oauth_token },
	{ "/csc/v2/oauth2/revoke", GW_PUBLIC | GW_RAW_BODY | GW_LONG, 0, oauth_revoke },
	{ "/rssp/admin/clients/update", 0, ADMIN, oauth_clients_update },

	{ 0 },
};
