/* Every endpoint of the API, in one table. */
#include "http/router.h"
#include "api/api.h"

const sk_route sk_routes[] = {
    { "GET",  "/api/v1/health",                                   sk_api_health,        SK_R_NODB },
    { "GET",  "/openapi.json",                                    sk_api_openapi,       SK_R_NODB },

    /* keys */
    { "GET",  "/api/v1/platform/.well-known/jwks.json",           sk_api_jwks_platform, SK_R_PUBLIC },
    { "GET",  "/api/v1/auth/tenants/{tenant_slug}/.well-known/jwks.json", sk_api_jwks_tenant, SK_R_PUBLIC },

    /* admin console authentication */
    { "POST", "/api/v1/admin/auth/login",                         sk_api_admin_login,   SK_R_JSON },
    { "POST", "/api/v1/admin/auth/refresh",                       sk_api_admin_refresh, SK_R_JSON },
    { "POST", "/api/v1/admin/auth/logout",                        sk_api_admin_logout,  SK_R_BEARER },
    { "GET",  "/api/v1/admin/auth/me",                            sk_api_admin_me,      SK_R_BEARER },

    { NULL }
};
