/* Routes of email as a second factor: sending a code for a sign-in challenge, enrolment at
 * /api/v1/me/mfa/email, and the MFA step of a tenant's hosted login pages. */
#include "http/router.h"
#include "api/users.h"
#include "login/login.h"

#define TENANT  "/api/v1/auth/tenants/{tenant_slug}"
#define ME_MFA  "/api/v1/me/mfa"

const sk_route sk_routes_mfa[] = {
    { "POST", TENANT "/mfa/email/send",         sk_api_tenant_mfa_email_send, SK_R_JSON },

    { "POST", ME_MFA "/email/enable",           sk_api_me_mfa_email_enable,   SK_R_BEARER },
    { "POST", ME_MFA "/email/confirm",          sk_api_me_mfa_email_confirm,  SK_R_BEARER | SK_R_JSON },
    { "POST", ME_MFA "/email/disable",          sk_api_me_mfa_email_disable,  SK_R_BEARER | SK_R_JSON },

    { "GET",  TENANT "/oauth/login/mfa",        sk_login_mfa_page,            SK_R_PUBLIC },
    { "POST", TENANT "/oauth/login/mfa",        sk_login_mfa_submit,          SK_R_FORM },
    { "POST", TENANT "/oauth/login/mfa/email",  sk_login_mfa_email,           SK_R_FORM },
    { NULL }
};
