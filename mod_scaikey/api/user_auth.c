/* Sign-in at a tenant's login page: /api/v1/auth/tenants/{tenant_slug}/{login,mfa/verify,refresh,logout}.
 *
 * A user of the tenant (any role) signs in with email and password. When the user has a confirmed
 * second factor, or the tenant's settings say mfa_required, the answer is a challenge instead of
 * tokens: an opaque mfa_token (5 minutes, one use, 5 attempts, only its digest stored, bound to
 * the user and the tenant) to be finished at .../mfa/verify with a TOTP code, a backup code or a
 * code mailed through .../mfa/email/send (mfa_email.c). The challenge lists the methods the user
 * can answer with; email is among them when the user enrolled it, and also when a second factor
 * is demanded but the user has enrolled nothing (a code to the account's address proves control
 * of it), so that nobody is left with a challenge they cannot answer.
 * Tokens are of the tenant's flavour: iss {ScaiKeyIssuer}/api/v1/auth/tenants/{slug}, aud
 * "scaikey-portal", sid a session of kind "user" (kind "portal" for the portal's sign-in). */
#include "api/users.h"
#include "api/signin.h"
#include "http/response.h"
#include "core/password.h"
#include "core/tokens.h"
#include "core/throttle.h"
#include "core/secrets.h"
#include "core/pooljson.h"
#include "startup.h"
#include "scaikey.h"
#include "core/jsonget.h"

#include <apr_strings.h>
#include <apr_lib.h>
#include <http_protocol.h>

APLOG_USE_MODULE(scaikey);

#define MFA_TOKEN_TTL   300

static const sk_field login_fields[] = {
    { "email",    SK_T_EMAIL,  SK_F_REQUIRED, 3, 320 },
    { "password", SK_T_STRING, SK_F_REQUIRED, 1, 1024 },
    { NULL }
};

static const char *const mfa_kinds[] = { "totp", "email", "backup_code", "backup_codes", NULL };

static const sk_field verify_fields[] = {
    { "mfa_token", SK_T_STRING, SK_F_REQUIRED, 1, 512 },
    { "code",      SK_T_STRING, SK_F_REQUIRED, 1, 64 },
    { "method",    SK_T_ENUM,   SK_F_NULLABLE, 0, 0, mfa_kinds },
    { NULL }
};

/* compact JSON text in the pool */
static const char *dump(apr_pool_t *p, json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    const char *c = s ? apr_pstrdup(p, s) : NULL;
    free(s);
    return c;
}

sk_audit *sk_user_audit(sk_req *q, const char *action, const char *result, json_t *user)
{
    return sk_req_audit_user(q, action, result, user, NULL);
}

void sk_user_audit_now(sk_req *q, sk_audit *a)
{
    if (q->db && sk_audit_write(q->db, a) != SK_DB_OK)
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, SKLOGNO(0901) "audit write failed for %s: %s",
                      a->action, sk_db_error(q->db));
}

static void audit_fail(sk_req *q, const char *action, const char *result, json_t *user, const char *email,
                       const char *tenant_id, const char *reason)
{
    sk_audit *a = sk_user_audit(q, action, result, user);
    if (!a->actor_email)
        a->actor_email = email;
    if (!a->tenant_id)
        a->tenant_id = tenant_id;
    a->details = json_pack("{s:s}", "reason", reason);
    sk_user_audit_now(q, a);
    json_decref(a->details);
}

static int window(sk_req *q)
{
    return q->cfg->throttle_window == SK_UNSET ? 900 : q->cfg->throttle_window;
}

int sk_user_throttle_check(sk_req *q, sk_db *db, const char *acct_key, const char *ip_key,
                           const char *email, const char *tenant_id)
{
    int wait_ip = sk_throttle_wait(db, ip_key, q->cfg->throttle_ip == SK_UNSET ? 20 : q->cfg->throttle_ip,
                                   window(q));
    int wait_acct = sk_throttle_wait(db, acct_key,
                                     q->cfg->throttle_account == SK_UNSET ? 5 : q->cfg->throttle_account,
                                     window(q));
    if (wait_ip < 0 || wait_acct < 0)
        return sk_fail_unavailable(q), 1;
    if (wait_ip > 0 || wait_acct > 0) {
        audit_fail(q, "user.login", "denied", NULL, email, tenant_id, "throttled");
        sk_fail_throttled(q, wait_ip > wait_acct ? wait_ip : wait_acct,
                          "Too many failed login attempts. Try again later.");
        return 1;
    }
    return 0;
}

int sk_user_bad_credentials(sk_req *q, sk_db *db, const char *acct_key, const char *ip_key,
                            const char *email, json_t *account)
{
    sk_throttle_fail(db, ip_key, window(q));
    sk_throttle_fail(db, acct_key, window(q));
    audit_fail(q, "user.login", "failure", account ? json_object_get(account, "user") : NULL, email,
               account ? sk_jstr(json_object_get(account, "tenant"), "id") : NULL, "invalid_credentials");
    return sk_fail(q, HTTP_UNAUTHORIZED, SK_BAD_CREDENTIALS);
}

/* a new session of an account */
typedef struct {
    json_t *user;
    const char *slug, *kind, *mfa, *amr, *otc_id;
} session_args;

/* the access token of a person's session, of the user's tenant's flavour: the tenant's slug is
 * the session's at sign-in (ctx), a rotated token's row names it */
static char *access_token(sk_req *q, json_t *u, const char *sid, json_t *spent, void *ctx)
{
    const char *slug = spent ? sk_jstr(spent, "slug") : ((session_args *)ctx)->slug;
    return sk_signin_access_token(q, apr_pstrcat(q->p, q->cfg->issuer ? q->cfg->issuer : "", "/api/v1/auth/tenants/",
                                                 slug, NULL),
                                  SK_PORTAL_AUDIENCE, SK_USER_SCOPE, u, sid, 1);
}

static sk_db_status create_session(sk_req *q, sk_db *db, const char *ttl, void *ctx, const char **sid)
{
    session_args *s = ctx;
    const char *used = NULL;
    sk_db_status st;
    if (s->otc_id && (st = SK_QV(db, "user_otc_use", &used, s->otc_id)) != SK_DB_OK)
        return st;
    return SK_QV(db, "user_session_create", sid, sk_jstr(s->user, "id"), sk_jstr(s->user, "tenant_id"),
                 sk_jstr(s->user, "partner_id"), s->kind, q->ip, q->user_agent, ttl, s->mfa, s->amr);
}

static int mfa_token_gone(sk_req *q, void *ctx)
{
    return sk_fail(q, HTTP_UNAUTHORIZED, "Invalid or expired MFA token");
}

/* A new session of kind for the account, with its tokens. otc_id: the MFA token this finishes
 * (spent in the same transaction), or NULL. The audit record a is written with it. */
static int open_session(sk_req *q, sk_db *db, json_t *account, const char *kind, int mfa, json_t *amr,
                        const char *otc_id, sk_audit *a)
{
    session_args args = { json_object_get(account, "user"), sk_jstr(json_object_get(account, "tenant"), "slug"), kind,
                          mfa ? "true" : "false", dump(q->p, amr), otc_id };
    sk_signin si = { 0 };

    json_decref(amr);
    si.user = args.user;
    si.scope = SK_USER_SCOPE;
    si.audit = a;
    si.with_user = 1;
    si.create = create_session;
    si.token = access_token;
    si.gone = otc_id ? mfa_token_gone : NULL;
    si.log_fail = SKLOGNO(0902) "sign-in could not be recorded";
    si.ctx = &args;
    return sk_signin_open(q, db, &si);
}

int sk_user_password_ok(sk_req *q, sk_db *db, json_t *account, const char *kind, const char *acct_key)
{
    json_t *u = json_object_get(account, "user"), *tenant = json_object_get(account, "tenant");
    json_t *methods = json_object_get(account, "methods");
    sk_audit *a;

    if (!json_is_true(json_object_get(account, "live"))) {
        audit_fail(q, "user.login", "denied", u, NULL, NULL, "account_disabled");
        return sk_fail(q, HTTP_FORBIDDEN, "Account is disabled");
    }
    sk_throttle_reset(db, acct_key);

    if (json_array_size(methods) > 0 || json_is_true(json_object_get(account, "mfa_enabled")) ||
        json_is_true(json_object_get(tenant, "mfa_required"))) {
        const char *token = sk_random_token(q->p, "skm_", 32), *id = NULL;
        json_t *data = json_pack("{s:s}", "kind", kind);
        const char *data_text = dump(q->p, data);
        sk_db_status st;
        json_decref(data);
        if (!token || !data_text)
            return sk_fail_unavailable(q);
        st = SK_QV(db, "user_otc_create", &id, "mfa_login", sk_jstr(tenant, "id"), sk_jstr(u, "id"), NULL,
                   sk_sha256_hex(q->p, token), data_text, apr_itoa(q->p, MFA_TOKEN_TTL), q->ip);
        if (st != SK_DB_OK) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, SKLOGNO(0903) "MFA token not stored: %s", sk_db_error(db));
            return sk_fail_unavailable(q);
        }
        a = sk_user_audit(q, "user.login", "success", u);
        a->details = json_pack("{s:s,s:b}", "step", "password", "mfa_required", 1);
        sk_user_audit_now(q, a);
        json_decref(a->details);
        sk_no_store(q);
        return sk_reply(q, HTTP_OK, json_pack("{s:b,s:s,s:s,s:O,s:i,s:s}", "mfa_required", 1, "mfa_token", token,
                                              "user_id", sk_jstr(u, "id"), "methods", methods,
                                              "expires_in", MFA_TOKEN_TTL, "tenant_slug", sk_jstr(tenant, "slug")));
    }
    a = sk_user_audit(q, "user.login", "success", u);
    return open_session(q, db, account, kind, 0, json_pack("[s]", "pwd"), NULL, a);
}

static const char *lower(apr_pool_t *p, const char *s)
{
    char *l = apr_pstrdup(p, s), *c;
    for (c = l; *c; c++)
        *c = (char)apr_tolower((unsigned char)*c);
    return l;
}

int sk_api_tenant_login(sk_req *q)
{
    const char *slug = sk_req_param(q, "tenant_slug"), *email, *password, *tenant_id, *acct_key, *ip_key, *hash;
    json_t *row = NULL, *account;
    sk_db *db;
    sk_db_status st;
    int ok;

    if (sk_req_invalid(q, login_fields))
        return OK;
    email = sk_jstr(q->body, "email");
    password = sk_jstr(q->body, "password");
    if (!(db = sk_req_db(q)))
        return sk_fail_unavailable(q);
    st = SK_QJ(db, "tenant_login_account", &row, slug, email);
    if (st == SK_DB_NOTFOUND)
        return sk_fail(q, HTTP_NOT_FOUND, "Tenant not found");
    if (st != SK_DB_OK)
        return sk_fail_unavailable(q);
    sk_pool_json(q->p, row);
    tenant_id = sk_jstr(row, "tenant_id");
    account = json_object_get(row, "account");
    if (json_is_null(account))
        account = NULL;

    acct_key = apr_pstrcat(q->p, "user-acct:", tenant_id, ":", lower(q->p, email), NULL);
    ip_key = apr_pstrcat(q->p, "user-ip:", q->ip, NULL);
    if (sk_user_throttle_check(q, db, acct_key, ip_key, email, tenant_id))
        return OK;
    hash = account ? sk_jstr(account, "password_hash") : NULL;
    /* one argon2id verification whether or not the account exists */
    ok = sk_password_verify(hash, password) && account;
    if (!ok)
        return sk_user_bad_credentials(q, db, acct_key, ip_key, email, account);
    return sk_user_password_ok(q, db, account, "user", acct_key);
}

json_t *sk_user_tenant(sk_req *q, sk_db *db, const char *slug)
{
    json_t *tenant = NULL;
    sk_db_status st = SK_QJ(db, "tenant_by_slug", &tenant, slug);
    if (st == SK_DB_NOTFOUND)
        return sk_fail(q, HTTP_NOT_FOUND, "Tenant not found"), NULL;
    if (st != SK_DB_OK)
        return sk_fail_unavailable(q), NULL;
    return sk_pool_json(q->p, tenant);
}

int sk_api_tenant_mfa_verify(sk_req *q)
{
    const char *slug = sk_req_param(q, "tenant_slug"), *method, *code, *kind, *uid, *purpose;
    json_t *tenant = NULL, *tok = NULL, *account = NULL, *u, *methods;
    sk_db *db;
    sk_db_status st;
    sk_audit *a;
    int good;

    if (sk_req_invalid(q, verify_fields))
        return OK;
    if (!(db = sk_req_db(q)))
        return sk_fail_unavailable(q);
    if (!(tenant = sk_user_tenant(q, db, slug)))
        return OK;

    /* every presentation of a live token counts as an attempt, right or wrong */
    st = SK_QJ(db, "user_otc_attempt", &tok, "mfa_login", sk_sha256_hex(q->p, sk_jstr(q->body, "mfa_token")));
    if (st != SK_DB_OK && st != SK_DB_NOTFOUND)
        return sk_fail_unavailable(q);
    sk_pool_json(q->p, tok);
    if (st == SK_DB_NOTFOUND || !sk_jstr(tok, "tenant_id") || strcmp(sk_jstr(tok, "tenant_id"), sk_jstr(tenant, "id"))) {
        audit_fail(q, "user.mfa_verify", "failure", NULL, NULL, sk_jstr(tenant, "id"), "invalid_mfa_token");
        return sk_fail(q, HTTP_UNAUTHORIZED, "Invalid or expired MFA token");
    }
    uid = sk_jstr(tok, "user_id");
    st = SK_QJ(db, "mfa_login_account", &account, uid);
    if (st == SK_DB_NOTFOUND)
        return sk_fail(q, HTTP_UNAUTHORIZED, "Invalid or expired MFA token");
    if (st != SK_DB_OK)
        return sk_fail_unavailable(q);
    sk_pool_json(q->p, account);
    u = json_object_get(account, "user");

    code = sk_jstr(q->body, "code");
    method = sk_jstr(q->body, "method");
    methods = json_object_get(account, "methods");
    purpose = apr_pstrcat(q->p, "mfa:", sk_jstr(tok, "id"), NULL);
    if (method && !strcmp(method, "backup_code"))
        method = "backup_codes";
    if (method && !strcmp(method, "email") && !sk_jarray_has(methods, "email"))
        return sk_fail(q, HTTP_BAD_REQUEST, "Email MFA is not available");
    if (!method && strlen(code) == 6 && strspn(code, "0123456789") == 6) {
        /* six digits: the authenticator's code first, then the code last mailed for this challenge */
        good = 0;
        method = "totp";
        if (sk_jarray_has(methods, "totp"))
            good = sk_mfa_totp_check(q, db, uid, code);
        if (good == 0 && sk_jarray_has(methods, "email")) {
            method = "email";
            good = sk_mfa_email_check(q, db, uid, purpose, code);
        }
    }
    else {
        /* anything else can only be a backup code */
        if (!method)
            method = "backup_codes";
        good = !strcmp(method, "totp")  ? sk_mfa_totp_check(q, db, uid, code)
             : !strcmp(method, "email") ? sk_mfa_email_check(q, db, uid, purpose, code)
                                        : sk_mfa_backup_use(q, db, uid, code);
    }
    if (good < 0)
        return sk_fail_unavailable(q);
    if (!good) {
        a = sk_user_audit(q, "user.mfa_verify", "failure", u);
        a->details = json_pack("{s:s,s:s,s:I}", "reason", "invalid_code", "method", method, "attempts_left",
                               (json_int_t)(json_integer_value(json_object_get(tok, "max_attempts")) -
                                            json_integer_value(json_object_get(tok, "attempts"))));
        sk_user_audit_now(q, a);
        json_decref(a->details);
        return sk_fail(q, HTTP_UNAUTHORIZED, "Invalid MFA code");
    }
    if (!json_is_true(json_object_get(account, "live"))) {
        audit_fail(q, "user.mfa_verify", "denied", u, NULL, NULL, "account_disabled");
        return sk_fail(q, HTTP_FORBIDDEN, "Account is disabled");
    }
    kind = sk_jstr(json_object_get(tok, "data"), "kind");
    if (!kind || (strcmp(kind, "user") && strcmp(kind, "portal")))
        kind = "user";
    a = sk_user_audit(q, "user.mfa_verify", "success", u);
    a->details = json_pack("{s:s}", "method", method);
    sk_pool_json(q->p, a->details);
    return open_session(q, db, account, kind, 1,
                        json_pack("[s,s]", "pwd", strcmp(method, "backup_codes") ? "otp" : "backup_code"),
                        sk_jstr(tok, "id"), a);
}

int sk_user_refresh(sk_req *q, const char *kind, const char *slug)
{
    sk_signin_refresh k = {
        .spend = "user_refresh_spend", .args = { kind, slug }, .nargs = 2,
        .action = "user.refresh", .actor_type = "user", .actor_by_role = 1, .invalid = "Invalid refresh token",
        .token = access_token,
        .log_revoke = SKLOGNO(0904) "session revocation failed",
        .log_fail = SKLOGNO(0905) "refresh could not be recorded",
    };

    return sk_signin_refresh_request(q, &k);
}

int sk_user_logout(sk_req *q)
{
    sk_db *db = sk_req_db(q);
    if (!q->who->user_id || !q->who->session_id)
        return sk_fail(q, HTTP_FORBIDDEN, "Access denied");
    return sk_signin_logout(q, db, "user.logout", SKLOGNO(0906) "logout could not be recorded");
}

int sk_api_tenant_refresh(sk_req *q)
{
    return sk_user_refresh(q, "user", sk_req_param(q, "tenant_slug"));
}

int sk_api_tenant_logout(sk_req *q)
{
    return sk_user_logout(q);
}
