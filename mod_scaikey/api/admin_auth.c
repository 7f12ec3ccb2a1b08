/* Admin console authentication: /api/v1/admin/auth/{login,refresh,logout,me}.
 * An admin signs in with email and password and gets a short-lived access token (JWT) and a
 * rotating refresh token bound to a server-side session; logout ends the session, which stops its
 * access tokens at once. */
#include "api/api.h"
#include "api/signin.h"
#include "http/response.h"
#include "http/validate.h"
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

#define ADMIN_AUDIENCE "scaikey-admin"
#define ADMIN_SCOPE    "openid profile email"
#define BAD_CREDENTIALS "Invalid email or password"

static const sk_field login_fields[] = {
    { "email",    SK_T_EMAIL,  SK_F_REQUIRED, 3, 320 },
    { "password", SK_T_STRING, SK_F_REQUIRED, 1, 1024 },
    { NULL }
};

static int is_admin(const char *role)
{
    return role && (!strcmp(role, "super_admin") || !strcmp(role, "partner_admin") ||
                    !strcmp(role, "tenant_admin"));
}

/* Writes the audit record in its own statement, outside any transaction (for failures). */
static void audit_now(sk_req *q, sk_audit *a)
{
    if (q->db && sk_audit_write(q->db, a) != SK_DB_OK)
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, SKLOGNO(0501) "audit write failed for %s: %s",
                      a->action, sk_db_error(q->db));
}

/* The access token of an admin's session. */
static char *access_token(sk_req *q, json_t *u, const char *sid, json_t *spent, void *ctx)
{
    return sk_signin_access_token(q, sk_config_platform_issuer(q->p, q->cfg), ADMIN_AUDIENCE, ADMIN_SCOPE, u, sid, 1);
}

static sk_db_status create_session(sk_req *q, sk_db *db, const char *ttl, void *ctx, const char **sid)
{
    json_t *u = ctx;
    return SK_QV(db, "session_create", sid, sk_jstr(u, "id"), sk_jstr(u, "tenant_id"), sk_jstr(u, "partner_id"),
                 "admin", NULL, q->ip, q->user_agent, ttl);
}

static const char *lower(apr_pool_t *p, const char *s)
{
    char *l = apr_pstrdup(p, s), *c;
    for (c = l; *c; c++)
        *c = (char)apr_tolower((unsigned char)*c);
    return l;
}

int sk_api_admin_login(sk_req *q)
{
    const char *email, *password, *hash, *ip_key, *acct_key;
    json_t *row = NULL, *u;
    sk_db *db;
    sk_audit *a;
    sk_signin si = { 0 };
    int wait_ip, wait_acct, ok;
    sk_db_status st;

    if (sk_req_invalid(q, login_fields))
        return OK;
    email = sk_jstr(q->body, "email");
    password = sk_jstr(q->body, "password");
    if (!(db = sk_req_db(q)))
        return sk_fail_unavailable(q);

    ip_key = apr_pstrcat(q->p, "admin-ip:", q->ip, NULL);
    acct_key = apr_pstrcat(q->p, "admin-acct:", lower(q->p, email), NULL);
    wait_ip = sk_throttle_wait(db, ip_key, q->cfg->throttle_ip == SK_UNSET ? 20 : q->cfg->throttle_ip,
                               q->cfg->throttle_window == SK_UNSET ? 900 : q->cfg->throttle_window);
    wait_acct = sk_throttle_wait(db, acct_key,
                                 q->cfg->throttle_account == SK_UNSET ? 5 : q->cfg->throttle_account,
                                 q->cfg->throttle_window == SK_UNSET ? 900 : q->cfg->throttle_window);
    if (wait_ip < 0 || wait_acct < 0)
        return sk_fail_unavailable(q);
    if (wait_ip > 0 || wait_acct > 0) {
        a = sk_req_audit(q, "admin.login", "denied");
        a->actor_email = email;
        a->details = json_pack("{s:s}", "reason", "throttled");
        audit_now(q, a);
        json_decref(a->details);
        return sk_fail_throttled(q, wait_ip > wait_acct ? wait_ip : wait_acct,
                                 "Too many failed login attempts. Try again later.");
    }

    st = SK_QJ(db, "admin_by_email", &row, email);
    if (st != SK_DB_OK && st != SK_DB_NOTFOUND)
        return sk_fail_unavailable(q);
    hash = row ? sk_jstr(row, "password_hash") : NULL;
    /* runs one argon2id verification whether or not the account exists */
    ok = sk_password_verify(hash, password) && row;
    if (!ok) {
        int window = q->cfg->throttle_window == SK_UNSET ? 900 : q->cfg->throttle_window;
        sk_throttle_fail(db, ip_key, window);
        sk_throttle_fail(db, acct_key, window);
        a = sk_req_audit(q, "admin.login", "failure");
        a->actor_email = email;
        if (row) {
            a->actor_id = sk_jstr(json_object_get(row, "user"), "id");
            a->actor_type = "admin";
        }
        a->details = json_pack("{s:s}", "reason", "invalid_credentials");
        audit_now(q, a);
        json_decref(a->details);
        json_decref(row);
        return sk_fail(q, HTTP_UNAUTHORIZED, BAD_CREDENTIALS);
    }
    u = json_object_get(row, "user");
    sk_pool_json(q->p, row);
    if (!json_is_true(json_object_get(row, "live"))) {
        a = sk_req_audit_user(q, "admin.login", "denied", u, "admin");
        a->details = json_pack("{s:s}", "reason", "account_disabled");
        audit_now(q, a);
        json_decref(a->details);
        return sk_fail(q, HTTP_FORBIDDEN, "Account is disabled");
    }
    sk_throttle_reset(db, acct_key);

    si.user = u;
    si.scope = ADMIN_SCOPE;
    si.audit = sk_req_audit_user(q, "admin.login", "success", u, "admin");
    si.with_user = 1;
    si.create = create_session;
    si.token = access_token;
    si.log_fail = SKLOGNO(0502) "login could not be recorded";
    si.ctx = u;
    return sk_signin_open(q, db, &si);
}

int sk_api_admin_refresh(sk_req *q)
{
    static const sk_signin_refresh kind = {
        .spend = "refresh_spend", .args = { "admin" }, .nargs = 1,
        .action = "admin.refresh", .actor_type = "admin", .invalid = "Invalid refresh token",
        .token = access_token,
        .log_revoke = SKLOGNO(0503) "session revocation failed",
        .log_fail = SKLOGNO(0504) "refresh could not be recorded",
    };

    return sk_signin_refresh_request(q, &kind);
}

int sk_api_admin_logout(sk_req *q)
{
    sk_db *db = sk_req_db(q);
    if (!is_admin(q->who->role))
        return sk_fail(q, HTTP_FORBIDDEN, "Access denied");
    return sk_signin_logout(q, db, "admin.logout", SKLOGNO(0505) "logout could not be recorded");
}

int sk_api_admin_me(sk_req *q)
{
    json_t *me;
    if (!is_admin(q->who->role))
        return sk_fail(q, HTTP_FORBIDDEN, "Access denied");
    me = json_deep_copy(q->who->user);
    json_object_set_new(me, "session_id", json_string(q->who->session_id));
    sk_no_store(q);
    return sk_reply(q, HTTP_OK, me);
}
