/* Every endpoint of the API, in one table. */
#include "http/router.h"
#include "api/api.h"
#include "api/crud.h"
#include "oauth/oauth.h"

/* list, create, get, patch and soft delete of a descriptor-driven resource */
#define CRUD(path, id, res) \
    { "GET",    path,               sk_crud_list,   SK_R_BEARER,             &res }, \
    { "POST",   path,               sk_crud_create, SK_R_BEARER | SK_R_JSON, &res }, \
    { "GET",    path "/{" id "}",   sk_crud_get,    SK_R_BEARER,             &res }, \
    { "PATCH",  path "/{" id "}",   sk_crud_patch,  SK_R_BEARER | SK_R_JSON, &res }, \
    { "DELETE", path "/{" id "}",   sk_crud_delete, SK_R_BEARER,             &res }

const sk_route sk_routes[] = {
    { "GET",  "/api/v1/health",                                   sk_api_health,        SK_R_NODB },
    { "GET",  "/openapi.json",                                    sk_api_openapi,       SK_R_NODB },

    /* keys */
    { "GET",  "/api/v1/platform/.well-known/jwks.json",           sk_api_jwks_platform, SK_R_PUBLIC },
    { "GET",  "/api/v1/auth/tenants/{tenant_slug}/.well-known/jwks.json", sk_api_jwks_tenant, SK_R_PUBLIC },

    /* OAuth 2.0 / OpenID Connect, both flavours */
    { "POST", "/api/v1/platform/oauth/token",                     sk_oauth_token,       SK_R_FORM, &sk_flavour_platform },
    { "POST", "/api/v1/auth/tenants/{tenant_slug}/oauth/token",   sk_oauth_token,       SK_R_FORM, &sk_flavour_tenant },
    { "GET",  "/api/v1/platform/oauth/.well-known/openid-configuration", sk_oauth_discovery, SK_R_NODB, &sk_flavour_platform },
    { "GET",  "/api/v1/platform/oauth/.well-known/oauth-authorization-server", sk_oauth_discovery, SK_R_NODB, &sk_flavour_platform },
    { "GET",  "/api/v1/auth/tenants/{tenant_slug}/.well-known/openid-configuration", sk_oauth_discovery, SK_R_PUBLIC, &sk_flavour_tenant },
    { "GET",  "/api/v1/auth/tenants/{tenant_slug}/.well-known/oauth-authorization-server", sk_oauth_discovery, SK_R_PUBLIC, &sk_flavour_tenant },
    { "GET",  "/api/v1/platform/oauth/userinfo",                  sk_oauth_userinfo,    SK_R_PUBLIC, &sk_flavour_platform },
    { "POST", "/api/v1/platform/oauth/userinfo",                  sk_oauth_userinfo,    SK_R_FORM, &sk_flavour_platform },
    { "GET",  "/api/v1/auth/tenants/{tenant_slug}/oauth/userinfo", sk_oauth_userinfo,   SK_R_PUBLIC, &sk_flavour_tenant },
    { "POST", "/api/v1/auth/tenants/{tenant_slug}/oauth/userinfo", sk_oauth_userinfo,   SK_R_FORM, &sk_flavour_tenant },
    { "POST", "/api/v1/platform/oauth/introspect",                sk_oauth_introspect,  SK_R_FORM, &sk_flavour_platform },
    { "POST", "/api/v1/auth/tenants/{tenant_slug}/oauth/introspect", sk_oauth_introspect, SK_R_FORM, &sk_flavour_tenant },
    { "POST", "/api/v1/platform/oauth/revoke",                    sk_oauth_revoke,      SK_R_FORM, &sk_flavour_platform },
    { "POST", "/api/v1/auth/tenants/{tenant_slug}/oauth/revoke",  sk_oauth_revoke,      SK_R_FORM, &sk_flavour_tenant },

    /* admin console authentication */
    { "POST", "/api/v1/admin/auth/login",                         sk_api_admin_login,   SK_R_JSON },
    { "POST", "/api/v1/admin/auth/refresh",                       sk_api_admin_refresh, SK_R_JSON },
    { "POST", "/api/v1/admin/auth/logout",                        sk_api_admin_logout,  SK_R_BEARER },
    { "GET",  "/api/v1/admin/auth/me",                            sk_api_admin_me,      SK_R_BEARER },

    /* admin API resources */
    CRUD("/api/v1/admin/partners",           "partner_id", sk_res_partners),
    CRUD("/api/v1/admin/tenants",            "tenant_id",  sk_res_tenants),
    CRUD("/api/v1/admin/users",              "user_id",    sk_res_users),
    CRUD("/api/v1/admin/groups",             "group_id",   sk_res_groups),
    CRUD("/api/v1/admin/applications",       "app_id",     sk_res_applications),
    CRUD("/api/v1/admin/identity-providers", "idp_id",     sk_res_idps),
    CRUD("/api/v1/admin/agents",             "agent_id",   sk_res_agents),

    { NULL }
};
