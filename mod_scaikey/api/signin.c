/* Sign-in steps shared by the first-party sign-ins: see signin.h. */
#include "api/signin.h"
#include "http/response.h"
#include "core/tokens.h"
#include "core/secrets.h"
#include "core/pooljson.h"
#include "core/jsonget.h"
#include "startup.h"
#include "scaikey.h"

#include <apr_strings.h>
#include <http_protocol.h>

APLOG_USE_MODULE(scaikey);

char *sk_signin_access_token(sk_req *q, const char *iss, const char *aud, const char *scope, json_t *user,
                             const char *sid, int with_role)
{
    sk_token_claims c = { 0 };
    c.iss = iss;
    c.sub = sk_jstr(user, "id");
    c.aud = aud;
    c.client_id = aud;
    c.scope = scope;
    c.sid = sid;
    if (with_role) {
        c.role = sk_jstr(user, "role");
        c.partner_id = sk_jstr(user, "partner_id");
    }
    c.tenant_id = sk_jstr(user, "tenant_id");
    c.email = sk_jstr(user, "email");
    c.ttl = sk_config_access_ttl(q->cfg);
    return sk_token_issue(q->p, sk_startup_keyring(), &c, (long long)apr_time_sec(apr_time_now()), NULL);
}

static int token_reply(sk_req *q, const char *at, const char *rt, json_t *user)
{
    json_t *body = json_pack("{s:s,s:s,s:s,s:i}", "access_token", at, "refresh_token", rt,
                             "token_type", "Bearer", "expires_in", sk_config_access_ttl(q->cfg));
    if (user)
        json_object_set(body, "user", user);
    sk_no_store(q);
    return sk_reply(q, HTTP_OK, body);
}

int sk_signin_open(sk_req *q, sk_db *db, const sk_signin *s)
{
    const char *ttl = apr_itoa(q->p, sk_config_refresh_ttl(q->cfg));
    const char *uid = sk_jstr(s->user, "id"), *sid = NULL, *digest, *rt, *at;
    sk_db_status st;

    if (!(rt = sk_refresh_token_new(q->p, &digest)))
        return sk_fail_unavailable(q);
    s->audit->resource_type = "session";
    if ((st = sk_db_begin(db)) == SK_DB_OK &&
        (st = s->create(q, db, ttl, s->ctx, &sid)) == SK_DB_OK &&
        (st = SK_Q(db, "refresh_insert", digest, sid, uid, s->client_id, s->scope, NULL, ttl)) == SK_DB_OK &&
        (st = SK_Q(db, "user_logged_in", uid)) == SK_DB_OK &&
        (s->audit->resource_id = sid, st = sk_audit_write(db, s->audit)) == SK_DB_OK &&
        (at = s->token(q, s->user, sid, NULL, s->ctx)) != NULL &&
        (st = sk_db_commit(db)) == SK_DB_OK)
        return token_reply(q, at, rt, s->with_user ? s->user : NULL);
    sk_db_rollback(db);
    if (st == SK_DB_NOTFOUND && s->gone)
        return s->gone(q, s->ctx);
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, "%s: %s", s->log_fail, sk_db_error(db));
    return sk_fail_unavailable(q);
}

/* A spent token came back: someone holds a copy, so the whole session ends. */
static void reused(sk_req *q, sk_db *db, const char *digest, const sk_signin_refresh *k)
{
    json_t *row = NULL;
    const char *sid, *n = NULL;
    sk_audit *a;

    if (SK_QJ(db, "refresh_reused", &row, digest) != SK_DB_OK)
        return;
    sid = apr_pstrdup(q->p, sk_jstr(row, "session_id"));
    a = sk_req_audit(q, k->action, "denied");
    a->actor_id = sk_jstr(row, "user_id");
    a->actor_type = k->actor_type;
    a->tenant_id = sk_jstr(row, "tenant_id");
    a->partner_id = sk_jstr(row, "partner_id");
    a->resource_type = "session";
    a->resource_id = sid;
    a->details = json_pack("{s:s}", "reason", "refresh_token_reuse");
    if (sk_db_begin(db) != SK_DB_OK || SK_QV(db, "session_revoke", &n, sid, "refresh_token_reuse") != SK_DB_OK ||
        sk_audit_write(db, a) != SK_DB_OK || sk_db_commit(db) != SK_DB_OK) {
        sk_db_rollback(db);
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, "%s: %s", k->log_revoke, sk_db_error(db));
    }
    json_decref(a->details);
    json_decref(row);
}

int sk_signin_rotate(sk_req *q, sk_db *db, const char *refresh_token, const sk_signin_refresh *k)
{
    const char *digest = sk_sha256_hex(q->p, refresh_token), *rt, *new_digest, *at, *new_id = NULL, *sid;
    const char *args[3];
    json_t *row = NULL, *u;
    sk_audit *a;
    sk_db_status st;

    args[0] = digest;
    args[1] = k->args[0];
    args[2] = k->args[1];
    if ((st = sk_db_begin(db)) != SK_DB_OK)
        return sk_fail_unavailable(q);
    st = sk_db_json(db, k->spend, 1 + k->nargs, args, &row);
    if (st == SK_DB_NOTFOUND) {
        sk_db_rollback(db);
        reused(q, db, digest, k);
        return sk_fail(q, HTTP_UNAUTHORIZED, k->invalid);
    }
    if (st != SK_DB_OK) {
        sk_db_rollback(db);
        return sk_fail_unavailable(q);
    }
    sk_pool_json(q->p, row);
    u = json_object_get(row, "user");
    sid = sk_jstr(row, "session_id");
    if (k->accept && !k->accept(q, row, k->ctx)) {
        sk_db_rollback(db);
        return sk_fail(q, HTTP_UNAUTHORIZED, k->invalid);
    }
    if (!(rt = sk_refresh_token_new(q->p, &new_digest))) {
        sk_db_rollback(db);
        return sk_fail_unavailable(q);
    }
    a = sk_req_audit_user(q, k->action, "success", u, k->actor_by_role ? NULL : k->actor_type);
    a->resource_type = "session";
    a->resource_id = sid;
    if ((st = SK_QV(db, "refresh_insert", &new_id, new_digest, sid, sk_jstr(u, "id"), sk_jstr(row, "client_id"),
                    sk_jstr(row, "scope"), sk_jstr(row, "family_id"),
                    apr_itoa(q->p, sk_config_refresh_ttl(q->cfg)))) == SK_DB_OK &&
        (st = SK_Q(db, "refresh_link", new_id, sk_jstr(row, "id"))) == SK_DB_OK &&
        (st = SK_Q(db, "session_touch", sid)) == SK_DB_OK &&
        (st = sk_audit_write(db, a)) == SK_DB_OK &&
        (at = k->token(q, u, sid, row, k->ctx)) != NULL &&
        (st = sk_db_commit(db)) == SK_DB_OK)
        return token_reply(q, at, rt, NULL);
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, "%s: %s", k->log_fail, sk_db_error(db));
    sk_db_rollback(db);
    return sk_fail_unavailable(q);
}

int sk_signin_refresh_request(sk_req *q, const sk_signin_refresh *k)
{
    static const sk_field fields[] = {
        { "refresh_token", SK_T_STRING, SK_F_REQUIRED, 1, 8192 },
        { NULL }
    };
    sk_db *db;

    if (sk_req_invalid(q, fields))
        return OK;
    if (!(db = sk_req_db(q)))
        return sk_fail_unavailable(q);
    return sk_signin_rotate(q, db, sk_jstr(q->body, "refresh_token"), k);
}

int sk_signin_logout(sk_req *q, sk_db *db, const char *action, const char *log_fail)
{
    const char *n = NULL;
    sk_audit *a;
    if (!db)
        return sk_fail_unavailable(q);
    a = sk_req_audit(q, action, "success");
    a->resource_type = "session";
    a->resource_id = q->who->session_id;
    if (sk_db_begin(db) == SK_DB_OK && SK_QV(db, "session_revoke", &n, q->who->session_id, "logout") == SK_DB_OK &&
        sk_audit_write(db, a) == SK_DB_OK && sk_db_commit(db) == SK_DB_OK) {
        sk_no_store(q);
        return sk_reply(q, HTTP_OK, json_pack("{s:s}", "detail", "Logged out"));
    }
    sk_db_rollback(db);
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, "%s: %s", log_fail, sk_db_error(db));
    return sk_fail_unavailable(q);
}
