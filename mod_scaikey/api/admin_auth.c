/* Admin console authentication: /api/v1/admin/auth/{login,refresh,logout,me}.
 * An admin signs in with email and password and gets a short-lived access token (JWT) and a
 * rotating refresh token bound to a server-side session; logout ends the session, which stops its
 * access tokens at once. */
#include "api/api.h"
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

static const sk_field refresh_fields[] = {
    { "refresh_token", SK_T_STRING, SK_F_REQUIRED, 1, 8192 },
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

/* Signs the access token for a session of user u. */
static char *access_token(sk_req *q, json_t *u, const char *sid)
{
    sk_token_claims c = { 0 };
    c.iss = sk_config_platform_issuer(q->p, q->cfg);
    c.sub = sk_jstr(u, "id");
    c.aud = ADMIN_AUDIENCE;
    c.client_id = ADMIN_AUDIENCE;
    c.scope = ADMIN_SCOPE;
    c.sid = sid;
    c.role = sk_jstr(u, "role");
    c.tenant_id = sk_jstr(u, "tenant_id");
    c.partner_id = sk_jstr(u, "partner_id");
    c.email = sk_jstr(u, "email");
    c.ttl = sk_config_access_ttl(q->cfg);
    return sk_token_issue(q->p, sk_startup_keyring(), &c, (long long)apr_time_sec(apr_time_now()), NULL);
}

static json_t *token_body(sk_req *q, const char *at, const char *rt)
{
    return json_pack("{s:s,s:s,s:s,s:i}", "access_token", at, "refresh_token", rt,
                     "token_type", "Bearer", "expires_in", sk_config_access_ttl(q->cfg));
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
    const char *email, *password, *hash, *sid = NULL, *digest, *rt, *at, *ip_key, *acct_key;
    json_t *row = NULL, *u;
    sk_db *db;
    sk_audit *a;
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
        a = sk_req_audit(q, "admin.login", "denied");
        a->actor_id = sk_jstr(u, "id");
        a->actor_email = sk_jstr(u, "email");
        a->actor_type = "admin";
        a->tenant_id = sk_jstr(u, "tenant_id");
        a->partner_id = sk_jstr(u, "partner_id");
        a->details = json_pack("{s:s}", "reason", "account_disabled");
        audit_now(q, a);
        json_decref(a->details);
        return sk_fail(q, HTTP_FORBIDDEN, "Account is disabled");
    }
    sk_throttle_reset(db, acct_key);

    if (!(rt = sk_refresh_token_new(q->p, &digest)))
        return sk_fail_unavailable(q);
    a = sk_req_audit(q, "admin.login", "success");
    a->actor_id = sk_jstr(u, "id");
    a->actor_email = sk_jstr(u, "email");
    a->actor_type = "admin";
    a->tenant_id = sk_jstr(u, "tenant_id");
    a->partner_id = sk_jstr(u, "partner_id");
    a->resource_type = "session";
    if ((st = sk_db_begin(db)) == SK_DB_OK &&
        (st = SK_QV(db, "session_create", &sid, sk_jstr(u, "id"), sk_jstr(u, "tenant_id"), sk_jstr(u, "partner_id"),
                    "admin", NULL, q->ip, q->user_agent,
                    apr_itoa(q->p, sk_config_refresh_ttl(q->cfg)))) == SK_DB_OK &&
        (st = SK_Q(db, "refresh_insert", digest, sid, sk_jstr(u, "id"), NULL, ADMIN_SCOPE, NULL,
                   apr_itoa(q->p, sk_config_refresh_ttl(q->cfg)))) == SK_DB_OK &&
        (st = SK_Q(db, "user_logged_in", sk_jstr(u, "id"))) == SK_DB_OK &&
        (a->resource_id = sid, st = sk_audit_write(db, a)) == SK_DB_OK &&
        (at = access_token(q, u, sid)) != NULL &&
        (st = sk_db_commit(db)) == SK_DB_OK) {
        sk_no_store(q);
        return sk_reply(q, HTTP_OK, json_pack("{s:s,s:s,s:s,s:i,s:O}", "access_token", at,
                                              "refresh_token", rt, "token_type", "Bearer",
                                              "expires_in", sk_config_access_ttl(q->cfg), "user", u));
    }
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, SKLOGNO(0502) "login could not be recorded: %s",
                  sk_db_error(db));
    sk_db_rollback(db);
    return sk_fail_unavailable(q);
}

int sk_api_admin_refresh(sk_req *q)
{
    const char *digest, *rt, *new_digest, *at, *new_id = NULL, *sid;
    json_t *row = NULL, *u;
    sk_db *db;
    sk_audit *a;
    sk_db_status st;

    if (sk_req_invalid(q, refresh_fields))
        return OK;
    if (!(db = sk_req_db(q)))
        return sk_fail_unavailable(q);
    digest = sk_sha256_hex(q->p, sk_jstr(q->body, "refresh_token"));
    if ((st = sk_db_begin(db)) != SK_DB_OK)
        return sk_fail_unavailable(q);
    st = SK_QJ(db, "refresh_spend", &row, digest, "admin");
    if (st == SK_DB_NOTFOUND) {
        json_t *reused = NULL;
        sk_db_rollback(db);
        if (SK_QJ(db, "refresh_reused", &reused, digest) == SK_DB_OK) {
            /* a spent token came back: someone holds a copy, so the whole session ends */
            const char *rsid = apr_pstrdup(q->p, sk_jstr(reused, "session_id")), *n = NULL;
            a = sk_req_audit(q, "admin.refresh", "denied");
            a->actor_id = sk_jstr(reused, "user_id");
            a->actor_type = "admin";
            a->tenant_id = sk_jstr(reused, "tenant_id");
            a->partner_id = sk_jstr(reused, "partner_id");
            a->resource_type = "session";
            a->resource_id = rsid;
            a->details = json_pack("{s:s}", "reason", "refresh_token_reuse");
            if (sk_db_begin(db) != SK_DB_OK || SK_QV(db, "session_revoke", &n, rsid, "refresh_token_reuse") != SK_DB_OK ||
                sk_audit_write(db, a) != SK_DB_OK || sk_db_commit(db) != SK_DB_OK) {
                sk_db_rollback(db);
                ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, SKLOGNO(0503) "session revocation failed: %s",
                              sk_db_error(db));
            }
            json_decref(a->details);
            json_decref(reused);
        }
        return sk_fail(q, HTTP_UNAUTHORIZED, "Invalid refresh token");
    }
    if (st != SK_DB_OK) {
        sk_db_rollback(db);
        return sk_fail_unavailable(q);
    }
    sk_pool_json(q->p, row);
    u = json_object_get(row, "user");
    sid = sk_jstr(row, "session_id");
    if (!(rt = sk_refresh_token_new(q->p, &new_digest))) {
        sk_db_rollback(db);
        return sk_fail_unavailable(q);
    }
    a = sk_req_audit(q, "admin.refresh", "success");
    a->actor_id = sk_jstr(u, "id");
    a->actor_email = sk_jstr(u, "email");
    a->actor_type = "admin";
    a->tenant_id = sk_jstr(u, "tenant_id");
    a->partner_id = sk_jstr(u, "partner_id");
    a->resource_type = "session";
    a->resource_id = sid;
    if ((st = SK_QV(db, "refresh_insert", &new_id, new_digest, sid, sk_jstr(u, "id"), sk_jstr(row, "client_id"),
                    sk_jstr(row, "scope"), sk_jstr(row, "family_id"),
                    apr_itoa(q->p, sk_config_refresh_ttl(q->cfg)))) == SK_DB_OK &&
        (st = SK_Q(db, "refresh_link", new_id, sk_jstr(row, "id"))) == SK_DB_OK &&
        (st = SK_Q(db, "session_touch", sid)) == SK_DB_OK &&
        (st = sk_audit_write(db, a)) == SK_DB_OK &&
        (at = access_token(q, u, sid)) != NULL &&
        (st = sk_db_commit(db)) == SK_DB_OK) {
        sk_no_store(q);
        return sk_reply(q, HTTP_OK, token_body(q, at, rt));
    }
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, SKLOGNO(0504) "refresh could not be recorded: %s",
                  sk_db_error(db));
    sk_db_rollback(db);
    return sk_fail_unavailable(q);
}

int sk_api_admin_logout(sk_req *q)
{
    const char *n = NULL;
    sk_db *db = sk_req_db(q);
    sk_audit *a;
    if (!is_admin(q->who->role))
        return sk_fail(q, HTTP_FORBIDDEN, "Access denied");
    if (!db)
        return sk_fail_unavailable(q);
    a = sk_req_audit(q, "admin.logout", "success");
    a->resource_type = "session";
    a->resource_id = q->who->session_id;
    if (sk_db_begin(db) == SK_DB_OK && SK_QV(db, "session_revoke", &n, q->who->session_id, "logout") == SK_DB_OK &&
        sk_audit_write(db, a) == SK_DB_OK && sk_db_commit(db) == SK_DB_OK) {
        sk_no_store(q);
        return sk_reply(q, HTTP_OK, json_pack("{s:s}", "detail", "Logged out"));
    }
    sk_db_rollback(db);
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, SKLOGNO(0505) "logout could not be recorded: %s", sk_db_error(db));
    return sk_fail_unavailable(q);
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
