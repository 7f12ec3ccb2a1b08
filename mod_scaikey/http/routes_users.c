/* Routes of the people's own endpoints. Handlers are declared in api/users.h. */
#include "http/router.h"
#include "api/users.h"

#define TENANT "/api/v1/auth/tenants/{tenant_slug}"
#define AUTH   "/api/v1/auth"
#define ME     "/api/v1/me"
#define J      SK_R_JSON
#define B      SK_R_BEARER
#define BJ     (SK_R_BEARER | SK_R_JSON)

const sk_route sk_routes_users[] = {
    /* a tenant's login page */
    { "POST",   TENANT "/login",                      sk_api_tenant_login,         J },
    { "POST",   TENANT "/mfa/verify",                 sk_api_tenant_mfa_verify,    J },
    { "POST",   TENANT "/refresh",                    sk_api_tenant_refresh,       J },
    { "POST",   TENANT "/logout",                     sk_api_tenant_logout,        B },

    /* the portal */
    { "POST",   AUTH "/identify",                     sk_api_portal_identify,      J },
    { "POST",   AUTH "/authenticate",                 sk_api_portal_authenticate,  J },
    { "POST",   AUTH "/login",                        sk_api_portal_login,         J },
    { "POST",   AUTH "/refresh",                      sk_api_portal_refresh,       J },
    { "POST",   AUTH "/logout",                       sk_api_portal_logout,        B },

    /* self-service */
    { "GET",    ME,                                   sk_api_me_get,               B },
    { "PATCH",  ME,                                   sk_api_me_patch,             BJ },
    { "POST",   ME "/password",                       sk_api_me_password,          BJ },
    { "GET",    ME "/sessions",                       sk_api_me_sessions,          B },
    { "DELETE", ME "/sessions/{session_id}",          sk_api_me_session_revoke,    B },
    { "GET",    ME "/authorized-apps",                sk_api_me_apps,              B },
    { "DELETE", ME "/authorized-apps/{client_id}",    sk_api_me_app_revoke,        B },

    /* second factors */
    { "GET",    ME "/mfa",                            sk_api_me_mfa,               B },
    { "POST",   ME "/mfa/totp/setup",                 sk_api_me_totp_setup,        B },
    { "POST",   ME "/mfa/totp/confirm",               sk_api_me_totp_confirm,      BJ },
    { "POST",   ME "/mfa/totp/disable",               sk_api_me_totp_disable,      BJ },
    { "POST",   ME "/mfa/backup-codes/regenerate",    sk_api_me_backup_regenerate, BJ },

    { NULL }
};
