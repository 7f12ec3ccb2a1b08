/* Email as the signed-in person's second factor: /api/v1/me/mfa/email/{enable,confirm,disable}.
 *
 * enable mails a code (purpose "enable") to the account's address; confirm takes it and turns the
 * method on (audit user.mfa_enabled). disable needs proof beyond the bearer token: a current TOTP
 * code when the person also has TOTP (as for the other MFA changes), otherwise the current
 * password, because a code mailed to the address would only prove what the method itself proves.
 * Wrong codes and passwords count against the person like wrong TOTP codes ("user-mfa:<id>"). */
#include "api/users.h"
#include "http/response.h"
#include "core/password.h"
#include "core/throttle.h"
#include "core/pooljson.h"
#include "scaikey.h"
#include "core/jsonget.h"

#include <apr_strings.h>
#include <http_protocol.h>

APLOG_USE_MODULE(scaikey);

static const sk_field code_fields[] = {
    { "code", SK_T_STRING, SK_F_REQUIRED, 1, 64 },
    { NULL }
};

static const sk_field disable_fields[] = {
    { "code",     SK_T_STRING, 0, 1, 64 },
    { "password", SK_T_STRING, 0, 1, 1024 },
    { NULL }
};

static int failed(sk_req *q, sk_db *db, const char *what)
{
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, SKLOGNO(2311) "%s: %s", what, sk_db_error(db));
    return sk_fail_unavailable(q);
}

/* the caller's MFA state; NULL after the answer (404 or 503) was sent */
static json_t *me(sk_req *q, sk_db *db)
{
    int rc;
    json_t *u = sk_mfa_email_user(q, db, q->who->user_id, &rc);
    if (!u)
        rc > 0 ? sk_fail(q, HTTP_NOT_FOUND, "User not found") : failed(q, db, "MFA state");
    return u;
}

static sk_audit *audit(sk_req *q, const char *action)
{
    sk_audit *a = sk_req_audit(q, action, "success");
    a->resource_type = "user";
    a->resource_id = q->who->user_id;
    a->details = sk_pool_json(q->p, json_pack("{s:s}", "method", "email"));
    return a;
}

int sk_api_me_mfa_email_enable(sk_req *q)
{
    json_t *u;
    sk_db *db;
    int wait = 0;

    if (!sk_me_mfa_person(q))
        return OK;
    if (!(db = sk_req_db(q)))
        return sk_fail_unavailable(q);
    if (!(u = me(q, db)))
        return OK;
    if (json_is_true(json_object_get(u, "email_enabled")))
        return sk_fail(q, HTTP_CONFLICT, "Email MFA is already enabled");
    switch (sk_mfa_email_send(q, db, u, "enable", &wait)) {
    case SK_MFA_MAIL_SENT:
        sk_no_store(q);
        return sk_reply(q, HTTP_OK, json_pack("{s:s,s:b,s:i}", "detail", "A code has been sent to your email address",
                                              "sent", 1, "expires_in", SK_MFA_EMAIL_TTL));
    case SK_MFA_MAIL_THROTTLED:
        return sk_fail_throttled(q, wait, "Too many codes sent. Try again later.");
    default:
        return sk_fail_unavailable(q);
    }
}

int sk_api_me_mfa_email_confirm(sk_req *q)
{
    json_t *u;
    const char *key, *code_id = NULL, *used = NULL, *added = NULL;
    sk_db *db;
    sk_audit *a;
    sk_db_status st;
    int rc;

    if (!sk_me_mfa_person(q) || sk_req_invalid(q, code_fields))
        return OK;
    if (!(db = sk_req_db(q)))
        return sk_fail_unavailable(q);
    key = sk_me_mfa_throttle_key(q);
    if (sk_me_mfa_throttled(q, db, key) || !(u = me(q, db)))
        return OK;
    if (json_is_true(json_object_get(u, "email_enabled")))
        return sk_fail(q, HTTP_CONFLICT, "Email MFA is already enabled");
    if ((rc = sk_mfa_email_match(q, db, q->who->user_id, "enable", sk_jstr(q->body, "code"), &code_id)) < 0)
        return sk_fail_unavailable(q);
    if (!rc)
        return sk_me_mfa_bad_code(q, db, key, "user.mfa_enabled");
    sk_throttle_reset(db, key);
    a = audit(q, "user.mfa_enabled");
    if ((st = sk_db_begin(db)) == SK_DB_OK &&
        (st = SK_QV(db, "mfa_email_code_use", &used, code_id)) == SK_DB_OK &&
        (st = SK_QV(db, "mfa_email_method_add", &added, q->who->user_id)) == SK_DB_OK &&
        (st = SK_Q(db, "mfa_user_sync", q->who->user_id)) == SK_DB_OK &&
        (st = sk_audit_write(db, a)) == SK_DB_OK &&
        (st = sk_db_commit(db)) == SK_DB_OK) {
        sk_no_store(q);
        return sk_reply(q, HTTP_OK, json_pack("{s:s,s:b,s:s,s:s}", "detail", "Email MFA enabled", "mfa_enabled", 1,
                                              "method", "email", "method_id", added));
    }
    sk_db_rollback(db);
    if (st == SK_DB_NOTFOUND)       /* the code was spent, or the method added, by a concurrent request */
        return used ? sk_fail(q, HTTP_CONFLICT, "Email MFA is already enabled")
                    : sk_fail(q, HTTP_BAD_REQUEST, "Invalid code");
    return failed(q, db, "email MFA confirm");
}

/* the proof disable needs; 1 to go on, 0 when the answer was sent */
static int disable_proof(sk_req *q, sk_db *db, json_t *u)
{
    json_t *state = NULL;
    const char *key;
    sk_db_status st;

    if (json_is_true(json_object_get(u, "totp_enabled"))) {
        if (!sk_jstr(q->body, "code")) {
            sk_fail_validation(q, json_pack("[o]", sk_verr("body", "code", "Field required", "missing")));
            return 0;
        }
        return sk_me_mfa_current_totp(q, db, "user.mfa_disabled");
    }
    if (!sk_jstr(q->body, "password")) {
        sk_fail_validation(q, json_pack("[o]", sk_verr("body", "password", "Field required", "missing")));
        return 0;
    }
    key = sk_me_mfa_throttle_key(q);
    if (sk_me_mfa_throttled(q, db, key))
        return 0;
    if ((st = SK_QJ(db, "me_password_state", &state, q->who->user_id)) != SK_DB_OK) {
        st == SK_DB_NOTFOUND ? sk_fail(q, HTTP_NOT_FOUND, "User not found") : failed(q, db, "password state");
        return 0;
    }
    sk_pool_json(q->p, state);
    if (!sk_password_verify(sk_jstr(state, "password_hash"), sk_jstr(q->body, "password"))) {
        sk_audit *a = sk_req_audit(q, "user.mfa_disabled", "failure");
        sk_throttle_fail(db, key, q->cfg->throttle_window == SK_UNSET ? 900 : q->cfg->throttle_window);
        a->resource_type = "user";
        a->resource_id = q->who->user_id;
        a->details = json_pack("{s:s,s:s}", "reason", "invalid_password", "method", "email");
        sk_user_audit_now(q, a);
        json_decref(a->details);
        sk_fail(q, HTTP_BAD_REQUEST, "Invalid password");
        return 0;
    }
    sk_throttle_reset(db, key);
    return 1;
}

int sk_api_me_mfa_email_disable(sk_req *q)
{
    json_t *u;
    const char *n = NULL;
    sk_db *db;
    sk_audit *a;
    sk_db_status st;

    if (!sk_me_mfa_person(q) || sk_req_invalid(q, disable_fields))
        return OK;
    if (!(db = sk_req_db(q)))
        return sk_fail_unavailable(q);
    if (!(u = me(q, db)))
        return OK;
    if (!json_is_true(json_object_get(u, "email_enabled")))
        return sk_fail(q, HTTP_NOT_FOUND, "Email MFA is not enabled");
    if (!disable_proof(q, db, u))
        return OK;
    a = audit(q, "user.mfa_disabled");
    if ((st = sk_db_begin(db)) == SK_DB_OK &&
        (st = SK_QV(db, "mfa_email_method_remove", &n, q->who->user_id)) == SK_DB_OK &&
        (st = SK_Q(db, "mfa_email_codes_void", q->who->user_id)) == SK_DB_OK &&
        (st = SK_Q(db, "mfa_user_sync", q->who->user_id)) == SK_DB_OK &&
        (st = sk_audit_write(db, a)) == SK_DB_OK) {
        if (n && !strcmp(n, "0")) {     /* disabled by a concurrent request */
            sk_db_rollback(db);
            return sk_fail(q, HTTP_NOT_FOUND, "Email MFA is not enabled");
        }
        if ((st = sk_db_commit(db)) == SK_DB_OK)
            return sk_reply(q, HTTP_OK, json_pack("{s:s,s:b}", "detail", "Email MFA disabled", "mfa_enabled",
                                                  json_is_true(json_object_get(u, "totp_enabled"))));
    }
    sk_db_rollback(db);
    return failed(q, db, "email MFA disable");
}
