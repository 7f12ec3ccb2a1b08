/* The second sign-in step. Called after a correct password, before the SSO session opens.
 *
 * Multi-factor authentication is required of a user who enrolled (users.mfa_enabled) or whose
 * tenant demands it (settings.mfa_required = true). The hosted pages cannot verify a second
 * factor yet, so such a sign-in stops here with a page that says so; this is where the MFA
 * challenge (TOTP, email code, WebAuthn) will be shown and checked, after which the flow goes on
 * exactly as after the password. */
#include "login/login.h"
#include "scaikey.h"

#include <http_protocol.h>

int sk_login_second_factor(sk_req *q, sk_flow *f, json_t *tenant, json_t *account)
{
    json_t *user = json_object_get(account, "user");
    if (!json_is_true(json_object_get(account, "mfa_required")))
        return SK_LOGIN_CONTINUE;
    sk_login_audit(q, "denied", json_string_value(json_object_get(user, "email")), user,
                   json_string_value(json_object_get(tenant, "id")), "mfa_unavailable", NULL);
    return sk_login_error_page(q, tenant, HTTP_FORBIDDEN, "MFA required",
                               "Multi-factor authentication is required for this account, but it is not yet "
                               "available on this sign-in page. Contact your administrator."),
           DONE;
}
