/* The people's own endpoints: sign-in at a tenant's login page (user_auth.c) and at the portal
 * (portal.c), the self-service profile, sessions and apps (me.c) and second factors (me_mfa.c). */
#ifndef SK_API_USERS_H
#define SK_API_USERS_H

#include "http/request.h"
#include "http/validate.h"

#define SK_PORTAL_AUDIENCE "scaikey-portal"
#define SK_USER_SCOPE      "openid profile email"
#define SK_BAD_CREDENTIALS "Invalid email or password"

/* /api/v1/auth/tenants/{tenant_slug}/... */
int sk_api_tenant_login(sk_req *q);
int sk_api_tenant_mfa_verify(sk_req *q);
int sk_api_tenant_mfa_email_send(sk_req *q);
int sk_api_tenant_refresh(sk_req *q);
int sk_api_tenant_logout(sk_req *q);

/* /api/v1/auth/{identify,authenticate,login,refresh,logout} */
int sk_api_portal_identify(sk_req *q);
int sk_api_portal_authenticate(sk_req *q);
int sk_api_portal_login(sk_req *q);
int sk_api_portal_refresh(sk_req *q);
int sk_api_portal_logout(sk_req *q);

/* /api/v1/me */
int sk_api_me_get(sk_req *q);
int sk_api_me_patch(sk_req *q);
int sk_api_me_password(sk_req *q);
int sk_api_me_sessions(sk_req *q);
int sk_api_me_session_revoke(sk_req *q);
int sk_api_me_apps(sk_req *q);
int sk_api_me_app_revoke(sk_req *q);

/* /api/v1/me/mfa */
int sk_api_me_mfa(sk_req *q);
int sk_api_me_totp_setup(sk_req *q);
int sk_api_me_totp_confirm(sk_req *q);
int sk_api_me_totp_disable(sk_req *q);
int sk_api_me_backup_regenerate(sk_req *q);
int sk_api_me_mfa_email_enable(sk_req *q);
int sk_api_me_mfa_email_confirm(sk_req *q);
int sk_api_me_mfa_email_disable(sk_req *q);

/* ---- shared steps ---- */

/* Sign-in throttling (ScaiKeyLoginThrottle): 0 to go on; otherwise the 429 or 503 was sent. */
int sk_user_throttle_check(sk_req *q, sk_db *db, const char *acct_key, const char *ip_key,
                           const char *email, const char *tenant_id);
/* A wrong password: counts the failure on both keys, audits, answers 401. */
int sk_user_bad_credentials(sk_req *q, sk_db *db, const char *acct_key, const char *ip_key,
                            const char *email, json_t *account);
/* The password was right for account (from the sign-in statements): answers 403 for a disabled
 * account, an MFA challenge when the user has a second factor or the tenant requires one, or
 * else a new session of kind ("user" or "portal") with its tokens. */
int sk_user_password_ok(sk_req *q, sk_db *db, json_t *account, const char *kind, const char *acct_key);
/* The tenant of slug (pool-owned), or NULL after a 404 "Tenant not found" or 503. */
json_t *sk_user_tenant(sk_req *q, sk_db *db, const char *slug);
/* Rotates a refresh token of a session of kind (and of the tenant slug, when not NULL). */
int sk_user_refresh(sk_req *q, const char *kind, const char *slug);
/* Ends the caller's session. */
int sk_user_logout(sk_req *q);

/* Second factors (me_mfa.c). 1 when code is a current, unused TOTP code of the user's confirmed
 * authenticator (its step is then used up), 0 when not, -1 when the store or the seal failed. */
int sk_mfa_totp_check(sk_req *q, sk_db *db, const char *user_id, const char *code);
/* 1 when code is one of the user's unused backup codes (now used), 0 when not, -1 on failure. */
int sk_mfa_backup_use(sk_req *q, sk_db *db, const char *user_id, const char *code);

/* Shared steps of /api/v1/me/mfa (me_mfa.c). 1 when the caller is a signed-in person, else 0
 * after a 403. */
int sk_me_mfa_person(sk_req *q);
/* The key counting the person's wrong codes ("user-mfa:<user id>"). */
const char *sk_me_mfa_throttle_key(sk_req *q);
/* 1 when too many wrong codes were given (the 429 or 503 was sent), else 0. */
int sk_me_mfa_throttled(sk_req *q, sk_db *db, const char *key);
/* A wrong code: counted, audited (action, failure), answered 400 "Invalid code". */
int sk_me_mfa_bad_code(sk_req *q, sk_db *db, const char *key, const char *action);
/* The body's "code" is a current TOTP code of the person: 1 to go on, 0 when the answer was sent
 * (429, 404 "TOTP is not enabled", 400, 503). */
int sk_me_mfa_current_totp(sk_req *q, sk_db *db, const char *action);

/* Email as a second factor (mfa_email.c). Codes live SK_MFA_EMAIL_TTL seconds. */
#define SK_MFA_EMAIL_TTL 300
#define SK_MFA_MAIL_SENT       0
#define SK_MFA_MAIL_THROTTLED  1
#define SK_MFA_MAIL_ERROR     -1
/* The user a code goes to (pool-owned: id, email, tenant_id, partner_id, role, tenant_name, live,
 * email_enabled, totp_enabled, email_available, methods, has_password), or NULL with *status 1
 * (no such user) or -1 (store failure). */
json_t *sk_mfa_email_user(sk_req *q, sk_db *db, const char *user_id, int *status);
/* Mails a new code for purpose to the user (from sk_mfa_email_user); earlier codes for the same
 * purpose stop working. The code row and its audit record (user.mfa_email_send) are written
 * together. SK_MFA_MAIL_SENT, SK_MFA_MAIL_THROTTLED (*retry_after set; audited) or
 * SK_MFA_MAIL_ERROR (store or mail failure, logged). */
int sk_mfa_email_send(sk_req *q, sk_db *db, json_t *user, const char *purpose, int *retry_after);
/* 1 when code is the live code last mailed to the user for purpose, with *code_id the row to
 * spend ("mfa_email_code_use", in the caller's transaction); 0 when not (every call counts an
 * attempt at that code); -1 on failure. */
int sk_mfa_email_match(sk_req *q, sk_db *db, const char *user_id, const char *purpose, const char *code,
                       const char **code_id);
/* sk_mfa_email_match, and the code is spent at once: 1, 0 or -1 alike. */
int sk_mfa_email_check(sk_req *q, sk_db *db, const char *user_id, const char *purpose, const char *code);

/* The user as the audit log sees them. */
sk_audit *sk_user_audit(sk_req *q, const char *action, const char *result, json_t *user);
/* Writes a record outside any transaction (failures); logs when it cannot. */
void sk_user_audit_now(sk_req *q, sk_audit *a);

#endif
