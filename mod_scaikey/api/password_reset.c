/* Forgotten passwords and email verification:
 *
 *   POST /api/v1/auth/tenants/{tenant_slug}/forgot-password  {email}            -> 200 always
 *   POST /api/v1/auth/tenants/{tenant_slug}/reset-password   {token, password}  -> 200
 *   POST /api/v1/me/verify-email   (bearer)                                     -> 202
 *   POST /api/v1/auth/verify-email {token}                                      -> 200
 *
 * A link carries a 256-bit random token; only its digest (HMAC-SHA256 under the master key) is
 * stored. A reset link is valid 30 minutes and once; setting the password ends every session of
 * the account. */
#include "api/mail_flows.h"
#include "api/api.h"
#include "http/response.h"
#include "http/validate.h"
#include "core/password.h"
#include "core/secrets.h"
#include "core/pooljson.h"
#include "scaikey.h"
#include "core/jsonget.h"

#include <apr_strings.h>
#include <http_protocol.h>

APLOG_USE_MODULE(scaikey);

#define RESET_TTL        1800
#define VERIFY_TTL       86400
#define SENDS_PER_ADDRESS 3
#define SENDS_PER_IP     20
#define MIN_PASSWORD     8
#define FORGOT_DETAIL    "If the address is registered, a reset link has been sent"
#define BAD_TOKEN        "Invalid or expired token"

static const sk_field forgot_fields[] = {
    { "email", SK_T_EMAIL, SK_F_REQUIRED, 3, 320 },
    { NULL }
};

static const sk_field reset_fields[] = {
    { "token",    SK_T_STRING, SK_F_REQUIRED, 1, 512 },
    { "password", SK_T_STRING, SK_F_REQUIRED, 1, 1024 },
    { NULL }
};

static const sk_field verify_fields[] = {
    { "token", SK_T_STRING, SK_F_REQUIRED, 1, 512 },
    { NULL }
};

/* ---- forgot-password ---- */

int sk_api_forgot_password(sk_req *q)
{
    const char *email, *token, *digest, *id, *uid, *created = NULL;
    json_t *tenant;
    sk_db *db;
    sk_mail_flow_to to;
    int sent = 0;

    if (!sk_mail_flow_start(q, forgot_fields, "reset", "auth.password_reset.request", &to))
        return OK;
    tenant = to.tenant;
    email = to.email;
    uid = to.uid;
    db = q->db;
    /* the same store work for unknown addresses: a row no link can ever use */
    if (!(token = sk_random_token(q->p, NULL, 32)) || !(id = sk_random_id(q->p, "otc_")))
        return sk_fail_unavailable(q);
    digest = sk_mail_flow_digest(q, "password_reset", token);
    if (SK_QV(db, "otc_create", &created, id, "password_reset", sk_jstr(tenant, "id"), uid, email, digest,
              apr_itoa(q->p, RESET_TTL), "1", q->ip) != SK_DB_OK) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, SKLOGNO(2211) "reset link not stored: %s", sk_db_error(db));
        return sk_fail_unavailable(q);
    }
    if (uid) {
        sk_mail m = { 0 };
        const char *link = apr_pstrcat(q->p, q->cfg->issuer ? q->cfg->issuer : "", "/api/v1/auth/tenants/",
                                       sk_jstr(tenant, "slug"), "/reset-password?token=", token, NULL);
        sk_mail_password_reset(q->p, &m, sk_jstr(tenant, "display_name"), link, RESET_TTL / 60);
        sent = sk_mail_flow_send(q, &m, sk_jstr(to.user, "email"), "password reset", sk_jstr(tenant, "id"), uid) == 0;
    }
    sk_mail_flow_done(q, "auth.password_reset.request", &to, id, sent);
    return sk_reply(q, HTTP_OK, json_pack("{s:s}", "detail", FORGOT_DETAIL));
}

/* ---- reset-password ---- */

static int reset_failed(sk_req *q, json_t *tenant, const char *reason, const char *user_id)
{
    sk_audit *a = sk_req_audit(q, "auth.password_reset", "failure");
    a->tenant_id = sk_jstr(tenant, "id");
    a->actor_id = user_id;
    a->actor_type = user_id ? "user" : NULL;
    a->details = json_pack("{s:s}", "reason", reason);
    sk_mail_flow_audit(q, a);
    return sk_fail(q, HTTP_BAD_REQUEST, BAD_TOKEN);
}

int sk_api_reset_password(sk_req *q)
{
    const char *token, *password, *digest, *hash, *uid, *used = NULL, *hist = NULL, *n = NULL;
    json_t *tenant, *row = NULL, *min;
    sk_db *db;
    sk_audit *a;
    sk_db_status st;
    long minlen = MIN_PASSWORD;

    if (sk_req_invalid(q, reset_fields))
        return OK;
    token = sk_jstr(q->body, "token");
    password = sk_jstr(q->body, "password");
    if (!(tenant = sk_mail_flow_tenant(q)))
        return OK;
    db = q->db;
    digest = sk_mail_flow_digest(q, "password_reset", token);
    st = SK_QJ(db, "otc_by_hash", &row, "password_reset", digest);
    if (st == SK_DB_NOTFOUND)
        return reset_failed(q, tenant, "unknown_token", NULL);
    if (st != SK_DB_OK)
        return sk_fail_unavailable(q);
    sk_pool_json(q->p, row);
    uid = sk_jstr(row, "user_id");
    if (!sk_jstr(row, "tenant_id") || strcmp(sk_jstr(row, "tenant_id"), sk_jstr(tenant, "id")))
        return reset_failed(q, tenant, "other_tenant", uid);

    min = json_object_get(tenant, "password_min_length");
    if (json_is_integer(min) && json_integer_value(min) > minlen)
        minlen = (long)json_integer_value(min);
    if ((long)strlen(password) < minlen) {
        json_t *errs = json_array();
        json_array_append_new(errs, sk_verr("body", "password",
                                            apr_psprintf(q->p, "String should have at least %ld characters", minlen),
                                            "string_too_short"));
        return sk_fail_validation(q, errs);
    }
    if (!(hash = sk_password_hash(q->p, password)))
        return sk_fail_unavailable(q);

    a = sk_req_audit(q, "auth.password_reset", "success");
    a->actor_id = uid;
    a->actor_email = sk_jstr(row, "email");
    a->actor_type = "user";
    a->tenant_id = sk_jstr(tenant, "id");
    a->resource_type = "user";
    a->resource_id = uid;
    if ((st = sk_db_begin(db)) == SK_DB_OK &&
        (st = SK_QV(db, "otc_use", &used, sk_jstr(row, "id"))) == SK_DB_OK &&
        (st = SK_QV(db, "password_reset_set", &hist, uid, hash)) == SK_DB_OK &&
        (st = SK_Q(db, "otc_void_user", uid, "password_reset")) == SK_DB_OK &&
        (st = SK_QV(db, "sessions_revoke_user", &n, uid, "password_reset")) == SK_DB_OK &&
        (a->details = json_pack("{s:s}", "sessions_ended", n ? n : "0"),
         st = sk_audit_write(db, a)) == SK_DB_OK &&
        (st = sk_db_commit(db)) == SK_DB_OK) {
        json_decref(a->details);
        sk_no_store(q);
        return sk_reply(q, HTTP_OK, json_pack("{s:s}", "detail", "Password has been reset"));
    }
    json_decref(a->details);
    sk_db_rollback(db);
    if (st == SK_DB_NOTFOUND)           /* spent meanwhile, or the account is gone */
        return reset_failed(q, tenant, "token_used", uid);
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, SKLOGNO(2212) "password reset could not be recorded: %s",
                  sk_db_error(db));
    return sk_fail_unavailable(q);
}

/* ---- email verification ---- */

int sk_api_me_verify_email(sk_req *q)
{
    const char *token, *digest, *id, *created = NULL, *link;
    json_t *me = NULL;
    sk_db *db = sk_req_db(q);
    sk_audit *a;
    sk_db_status st;
    sk_mail m = { 0 };
    int sent;

    if (!db)
        return sk_fail_unavailable(q);
    if (!q->who || !q->who->user_id)
        return sk_fail(q, HTTP_FORBIDDEN, "Only people have an email address to verify");
    st = SK_QJ(db, "mail_me", &me, q->who->user_id);
    if (st == SK_DB_NOTFOUND)
        return sk_fail(q, HTTP_NOT_FOUND, "User not found");
    if (st != SK_DB_OK)
        return sk_fail_unavailable(q);
    sk_pool_json(q->p, me);
    if (json_is_true(json_object_get(me, "email_verified")))
        return sk_reply(q, HTTP_OK, json_pack("{s:s}", "detail", "Email address already verified"));
    if (sk_mail_flow_throttle(q, "verify", sk_jstr(me, "tenant_id") ? sk_jstr(me, "tenant_id") : "-", sk_jstr(me, "email"),
                              SENDS_PER_ADDRESS, SENDS_PER_IP, "auth.email_verify.request") != 0)
        return OK;
    if (!(token = sk_random_token(q->p, NULL, 32)) || !(id = sk_random_id(q->p, "otc_")))
        return sk_fail_unavailable(q);
    digest = sk_mail_flow_digest(q, "email_verify", token);
    if (SK_QV(db, "otc_create", &created, id, "email_verify", sk_jstr(me, "tenant_id"), sk_jstr(me, "id"), sk_jstr(me, "email"),
              digest, apr_itoa(q->p, VERIFY_TTL), "1", q->ip) != SK_DB_OK) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, SKLOGNO(2213) "verification link not stored: %s",
                      sk_db_error(db));
        return sk_fail_unavailable(q);
    }
    link = apr_pstrcat(q->p, q->cfg->issuer ? q->cfg->issuer : "", "/api/v1/auth/verify-email?token=", token, NULL);
    sk_mail_verify_email(q->p, &m, sk_jstr(me, "tenant_name") ? sk_jstr(me, "tenant_name") : "ScaiKey", link,
                         VERIFY_TTL / 60);
    sent = sk_mail_flow_send(q, &m, sk_jstr(me, "email"), "email verification", sk_jstr(me, "tenant_id"), sk_jstr(me, "id")) == 0;
    a = sk_req_audit(q, "auth.email_verify.request", sent ? "success" : "failure");
    a->resource_type = "user";
    a->resource_id = sk_jstr(me, "id");
    sk_mail_flow_audit(q, a);
    if (!sent)
        return sk_fail_unavailable(q);
    return sk_reply(q, HTTP_ACCEPTED, json_pack("{s:s}", "detail", "A verification link has been sent"));
}

int sk_api_verify_email(sk_req *q)
{
    const char *digest, *used = NULL, *done = NULL;
    json_t *row = NULL;
    sk_db *db = sk_req_db(q);
    sk_audit *a;
    sk_db_status st;

    if (sk_req_invalid(q, verify_fields))
        return OK;
    if (!db)
        return sk_fail_unavailable(q);
    digest = sk_mail_flow_digest(q, "email_verify", sk_jstr(q->body, "token"));
    st = SK_QJ(db, "otc_by_hash", &row, "email_verify", digest);
    if (st != SK_DB_OK && st != SK_DB_NOTFOUND)
        return sk_fail_unavailable(q);
    if (row)
        sk_pool_json(q->p, row);
    a = sk_req_audit(q, "auth.email_verify", "success");
    if (row) {
        a->actor_id = sk_jstr(row, "user_id");
        a->actor_type = "user";
        a->actor_email = sk_jstr(row, "email");
        a->tenant_id = sk_jstr(row, "tenant_id");
        a->resource_type = "user";
        a->resource_id = sk_jstr(row, "user_id");
    }
    if (row && (st = sk_db_begin(db)) == SK_DB_OK &&
        (st = SK_QV(db, "otc_use", &used, sk_jstr(row, "id"))) == SK_DB_OK &&
        (st = SK_QV(db, "user_email_verified", &done, sk_jstr(row, "user_id"), sk_jstr(row, "email"))) == SK_DB_OK &&
        (st = sk_audit_write(db, a)) == SK_DB_OK &&
        (st = sk_db_commit(db)) == SK_DB_OK)
        return sk_reply(q, HTTP_OK, json_pack("{s:s}", "detail", "Email address verified"));
    if (row)
        sk_db_rollback(db);
    if (row && st != SK_DB_NOTFOUND) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, SKLOGNO(2214) "email verification could not be recorded: %s",
                      sk_db_error(db));
        return sk_fail_unavailable(q);
    }
    a->result = "failure";
    a->details = json_pack("{s:s}", "reason", row ? "address_changed" : "unknown_token");
    sk_mail_flow_audit(q, a);
    return sk_fail(q, HTTP_BAD_REQUEST, BAD_TOKEN);
}
