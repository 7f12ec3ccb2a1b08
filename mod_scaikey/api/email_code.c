/* Email code sign-in on a tenant's sign-in pages:
 *
 *   POST /api/v1/auth/tenants/{tenant_slug}/email-code/send     {email}          -> 202
 *   POST /api/v1/auth/tenants/{tenant_slug}/email-code/verify   {email, code}    -> tokens
 *   POST /api/v1/auth/tenants/{tenant_slug}/email-code/refresh  {refresh_token}  -> tokens (rotated)
 *   POST /api/v1/auth/tenants/{tenant_slug}/email-code/revoke   {refresh_token}  -> {}
 *
 * A code is six digits, valid 10 minutes, for at most 5 attempts; only its digest is stored
 * (HMAC-SHA256 under the master key, bound to the row id). Sending answers the same whether or
 * not the address belongs to an account and does the same store work either way; only an account
 * gets mail. The tokens are of the tenant's flavour: issuer {ScaiKeyIssuer}/api/v1/auth/tenants/
 * {slug}, audience scaikey-portal, bound to a server-side session of kind 'user'. */
#include "api/mail_flows.h"
#include "api/api.h"
#include "api/signin.h"
#include "http/response.h"
#include "http/validate.h"
#include "core/tokens.h"
#include "core/secrets.h"
#include "core/pooljson.h"
#include "startup.h"
#include "scaikey.h"
#include "core/jsonget.h"

#include <apr_strings.h>
#include <apr_lib.h>
#include <http_protocol.h>

APLOG_USE_MODULE(scaikey);

#define PORTAL_CLIENT   "scaikey-portal"
#define PORTAL_SCOPE    "openid profile email"
#define CODE_DIGITS     6
#define CODE_TTL        600
#define CODE_ATTEMPTS   "5"
#define SENT_DETAIL     "If the address is registered, a code has been sent"
#define BAD_CODE        "Invalid or expired code"
#define BAD_REFRESH     "Invalid refresh token"

static const sk_field send_fields[] = {
    { "email", SK_T_EMAIL, SK_F_REQUIRED, 3, 320 },
    { NULL }
};

static const sk_field verify_fields[] = {
    { "email", SK_T_EMAIL,  SK_F_REQUIRED, 3, 320 },
    { "code",  SK_T_STRING, SK_F_REQUIRED, 1, 32 },
    { NULL }
};

static const sk_field token_fields[] = {
    { "refresh_token", SK_T_STRING, SK_F_REQUIRED, 1, 8192 },
    { NULL }
};

/* ---- tokens ---- */

static const char *tenant_issuer(sk_req *q, json_t *tenant)
{
    return apr_pstrcat(q->p, q->cfg->issuer ? q->cfg->issuer : "", "/api/v1/auth/tenants/", sk_jstr(tenant, "slug"), NULL);
}

/* ctx: the tenant */
static char *access_token(sk_req *q, json_t *u, const char *sid, json_t *spent, void *ctx)
{
    return sk_signin_access_token(q, tenant_issuer(q, ctx), PORTAL_CLIENT, PORTAL_SCOPE, u, sid, 0);
}

/* ---- send ---- */

int sk_api_email_code_send(sk_req *q)
{
    const char *email, *code, *id, *digest, *uid, *created = NULL;
    json_t *tenant;
    sk_db *db;
    sk_mail_flow_to to;
    int sent = 0;

    if (!sk_mail_flow_start(q, send_fields, "code", "auth.email_code.send", &to))
        return OK;
    tenant = to.tenant;
    email = to.email;
    uid = to.uid;
    db = q->db;

    /* the same work whether or not the address is an account's: a code row is stored either way
     * (without a user it can never sign anyone in) */
    if (!(code = sk_random_digits(q->p, CODE_DIGITS)) || !(id = sk_random_id(q->p, "otc_")))
        return sk_fail_unavailable(q);
    digest = sk_mail_flow_digest(q, apr_pstrcat(q->p, "email_login:", id, NULL), code);
    if (SK_QV(db, "otc_create", &created, id, "email_login", sk_jstr(tenant, "id"), uid, email, digest,
              apr_itoa(q->p, CODE_TTL), CODE_ATTEMPTS, q->ip) != SK_DB_OK) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, SKLOGNO(2203) "sign-in code not stored: %s", sk_db_error(db));
        return sk_fail_unavailable(q);
    }
    if (uid) {
        sk_mail m = { 0 };
        sk_mail_signin_code(q->p, &m, sk_jstr(tenant, "display_name"), code, CODE_TTL / 60);
        sent = sk_mail_flow_send(q, &m, sk_jstr(to.user, "email"), "sign-in code", sk_jstr(tenant, "id"), uid) == 0;
    }
    sk_mail_flow_done(q, "auth.email_code.send", &to, id, sent);
    return sk_reply(q, HTTP_ACCEPTED, json_pack("{s:s}", "detail", SENT_DETAIL));
}

/* ---- verify ---- */

static int verify_failed(sk_req *q, json_t *tenant, const char *email, const char *reason, json_t *row)
{
    sk_audit *a = sk_req_audit(q, "auth.email_code.verify", "failure");
    a->actor_email = email;
    a->tenant_id = sk_jstr(tenant, "id");
    if (row) {
        a->actor_id = sk_jstr(row, "user_id");
        a->actor_type = a->actor_id ? "user" : NULL;
        a->resource_type = "one_time_code";
        a->resource_id = sk_jstr(row, "id");
        a->details = json_pack("{s:s,s:O?,s:O?}", "reason", reason, "attempts", json_object_get(row, "attempts"),
                               "max_attempts", json_object_get(row, "max_attempts"));
    }
    else
        a->details = json_pack("{s:s}", "reason", reason);
    sk_mail_flow_audit(q, a);
    return sk_fail(q, HTTP_BAD_REQUEST, BAD_CODE);
}

/* the sign-in a verified code opens */
typedef struct {
    json_t *tenant, *row, *user;
    const char *email;
} verified;

static sk_db_status create_session(sk_req *q, sk_db *db, const char *ttl, void *ctx, const char **sid)
{
    verified *v = ctx;
    const char *used = NULL;
    sk_db_status st;
    if ((st = SK_QV(db, "otc_use", &used, sk_jstr(v->row, "id"))) != SK_DB_OK)
        return st;
    return SK_QV(db, "session_create", sid, sk_jstr(v->row, "user_id"), sk_jstr(v->tenant, "id"),
                 sk_jstr(v->user, "partner_id"), "user", PORTAL_CLIENT, q->ip, q->user_agent, ttl);
}

static char *verify_token(sk_req *q, json_t *u, const char *sid, json_t *spent, void *ctx)
{
    return access_token(q, u, sid, spent, ((verified *)ctx)->tenant);
}

/* spent by a concurrent request */
static int code_used(sk_req *q, void *ctx)
{
    verified *v = ctx;
    return verify_failed(q, v->tenant, v->email, "code_used", v->row);
}

int sk_api_email_code_verify(sk_req *q)
{
    const char *email, *code, *digest, *uid, *used = NULL;
    json_t *tenant, *row = NULL, *user = NULL;
    sk_db *db;
    sk_db_status st;
    verified v;
    sk_signin si = { 0 };
    apr_size_t i, n;

    if (sk_req_invalid(q, verify_fields))
        return OK;
    email = sk_jstr(q->body, "email");
    code = sk_jstr(q->body, "code");
    if (!(tenant = sk_mail_flow_tenant(q)))
        return OK;
    db = q->db;
    st = SK_QJ(db, "otc_attempt", &row, "email_login", sk_jstr(tenant, "id"), email);
    if (st == SK_DB_NOTFOUND)
        return verify_failed(q, tenant, email, "no_live_code", NULL);
    if (st != SK_DB_OK)
        return sk_fail_unavailable(q);
    sk_pool_json(q->p, row);
    for (i = 0, n = strlen(code); i < n; i++)
        if (!apr_isdigit(code[i]))
            break;
    digest = sk_mail_flow_digest(q, apr_pstrcat(q->p, "email_login:", sk_jstr(row, "id"), NULL), code);
    uid = sk_jstr(row, "user_id");
    if (!sk_ct_streq(digest, sk_jstr(row, "code_hash")) || i != n || n != CODE_DIGITS || !uid)
        return verify_failed(q, tenant, email, "wrong_code", row);

    st = SK_QJ(db, "mail_user_by_id", &user, sk_jstr(tenant, "id"), uid);
    if (st != SK_DB_OK && st != SK_DB_NOTFOUND)
        return sk_fail_unavailable(q);
    if (user)
        sk_pool_json(q->p, user);
    if (!user || !json_is_true(json_object_get(user, "live")) || !json_is_true(json_object_get(tenant, "live"))) {
        SK_QV(db, "otc_use", &used, sk_jstr(row, "id"));
        return verify_failed(q, tenant, email, "account_disabled", row);
    }
    v.tenant = tenant;
    v.row = row;
    v.user = user;
    v.email = email;
    si.user = user;
    si.client_id = PORTAL_CLIENT;
    si.scope = PORTAL_SCOPE;
    si.audit = sk_req_audit_user(q, "auth.email_code.verify", "success", user, "user");
    si.create = create_session;
    si.token = verify_token;
    si.gone = code_used;
    si.log_fail = SKLOGNO(2204) "email code sign-in could not be recorded";
    si.ctx = &v;
    return sk_signin_open(q, db, &si);
}

/* ---- refresh ---- */

/* only this tenant's sign-in tokens are good here */
static int this_tenants(sk_req *q, json_t *spent, void *ctx)
{
    json_t *tenant = ctx, *u = json_object_get(spent, "user");
    return sk_jstr(spent, "client_id") && !strcmp(sk_jstr(spent, "client_id"), PORTAL_CLIENT) &&
           sk_jstr(u, "tenant_id") && !strcmp(sk_jstr(u, "tenant_id"), sk_jstr(tenant, "id")) &&
           json_is_true(json_object_get(tenant, "live"));
}

int sk_api_email_code_refresh(sk_req *q)
{
    sk_signin_refresh k = {
        .spend = "refresh_spend", .args = { "user" }, .nargs = 1,
        .action = "auth.email_code.refresh", .actor_type = "user", .invalid = BAD_REFRESH,
        .accept = this_tenants, .token = access_token,
        .log_revoke = SKLOGNO(2205) "session revocation failed",
        .log_fail = SKLOGNO(2206) "refresh could not be recorded",
    };

    if (sk_req_invalid(q, token_fields))
        return OK;
    if (!(k.ctx = sk_mail_flow_tenant(q)))
        return OK;
    return sk_signin_rotate(q, q->db, sk_jstr(q->body, "refresh_token"), &k);
}

/* ---- revoke ---- */

int sk_api_email_code_revoke(sk_req *q)
{
    const char *digest, *sid = NULL, *n = NULL;
    json_t *tenant;
    sk_db *db;
    sk_audit *a;
    sk_db_status st;

    if (sk_req_invalid(q, token_fields))
        return OK;
    if (!(tenant = sk_mail_flow_tenant(q)))
        return OK;
    db = q->db;
    digest = sk_sha256_hex(q->p, sk_jstr(q->body, "refresh_token"));
    st = SK_QV(db, "email_code_token_session", &sid, digest, sk_jstr(tenant, "id"), PORTAL_CLIENT);
    if (st == SK_DB_OK) {
        a = sk_req_audit(q, "auth.email_code.revoke", "success");
        a->tenant_id = sk_jstr(tenant, "id");
        a->resource_type = "session";
        a->resource_id = sid;
        if (sk_db_begin(db) != SK_DB_OK || SK_QV(db, "session_revoke", &n, sid, "logout") != SK_DB_OK ||
            sk_audit_write(db, a) != SK_DB_OK || sk_db_commit(db) != SK_DB_OK) {
            sk_db_rollback(db);
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, SKLOGNO(2207) "revocation could not be recorded: %s",
                          sk_db_error(db));
            return sk_fail_unavailable(q);
        }
    }
    else if (st != SK_DB_NOTFOUND)
        return sk_fail_unavailable(q);
    /* an unknown token is not an error (RFC 7009 §2.2) */
    sk_no_store(q);
    return sk_reply(q, HTTP_OK, json_object());
}
