/* Routes of browser sign-in: the authorization endpoint, the hosted login and consent pages and
 * logout, in both flavours. Handlers are declared in login/login.h. */
#include "http/router.h"
#include "login/login.h"
#include "oauth/oauth.h"

#define P_OAUTH "/api/v1/platform/oauth"
#define T_OAUTH "/api/v1/auth/tenants/{tenant_slug}/oauth"
#define P       (&sk_flavour_platform)
#define T       (&sk_flavour_tenant)

const sk_route sk_routes_login[] = {
    /* authorization endpoint (GET, and POST with a form: OIDC Core §3.1.2.1) */
    { "GET",  P_OAUTH "/authorize",      sk_oauth_authorize,        SK_R_PUBLIC, P },
    { "POST", P_OAUTH "/authorize",      sk_oauth_authorize,        SK_R_FORM,   P },
    { "GET",  T_OAUTH "/authorize",      sk_oauth_authorize,        SK_R_PUBLIC, T },
    { "POST", T_OAUTH "/authorize",      sk_oauth_authorize,        SK_R_FORM,   T },

    /* the platform's email-first pages */
    { "GET",  P_OAUTH "/login",          sk_login_identify_page,    SK_R_PUBLIC },
    { "POST", P_OAUTH "/login",          sk_login_identify,         SK_R_FORM },
    { "POST", P_OAUTH "/login/tenant",   sk_login_choose_tenant,    SK_R_FORM },
    { "POST", P_OAUTH "/login/password", sk_login_unknown_password, SK_R_FORM },

    /* a tenant's password and consent pages */
    { "GET",  T_OAUTH "/login",          sk_login_page,             SK_R_PUBLIC },
    { "POST", T_OAUTH "/login",          sk_login_submit,           SK_R_FORM },
    { "GET",  T_OAUTH "/consent",        sk_consent_page,           SK_R_PUBLIC },
    { "POST", T_OAUTH "/consent",        sk_consent_submit,         SK_R_FORM },

    /* RP-initiated logout */
    { "GET",  P_OAUTH "/logout",         sk_oauth_logout,           SK_R_PUBLIC, P },
    { "POST", P_OAUTH "/logout",         sk_oauth_logout,           SK_R_FORM,   P },
    { "GET",  T_OAUTH "/logout",         sk_oauth_logout,           SK_R_PUBLIC, T },
    { "POST", T_OAUTH "/logout",         sk_oauth_logout,           SK_R_FORM,   T },

    { NULL }
};
