/* Routes of the flows that send mail: email code sign-in, forgot / reset password, email
 * verification. */
#include "http/router.h"
#include "api/mail_flows.h"

#define TENANT_AUTH "/api/v1/auth/tenants/{tenant_slug}"

const sk_route sk_routes_mail[] = {
    { "POST", TENANT_AUTH "/email-code/send",    sk_api_email_code_send,    SK_R_JSON },
    { "POST", TENANT_AUTH "/email-code/verify",  sk_api_email_code_verify,  SK_R_JSON },
    { "POST", TENANT_AUTH "/email-code/refresh", sk_api_email_code_refresh, SK_R_JSON },
    { "POST", TENANT_AUTH "/email-code/revoke",  sk_api_email_code_revoke,  SK_R_JSON },
    { "POST", TENANT_AUTH "/forgot-password",    sk_api_forgot_password,    SK_R_JSON },
    { "POST", TENANT_AUTH "/reset-password",     sk_api_reset_password,     SK_R_JSON },
    { "POST", "/api/v1/me/verify-email",         sk_api_me_verify_email,    SK_R_BEARER },
    { "POST", "/api/v1/auth/verify-email",       sk_api_verify_email,       SK_R_JSON },
    { NULL }
};
