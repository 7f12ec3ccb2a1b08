/* Special actions on users: /api/v1/admin/users/{user_id}/reset-password, mfa/disable,
 * sessions and groups. A password reset or an MFA reset changes the account: it takes update
 * rights on the user; listing their sessions and groups takes only sight of them. */
#include "api/admin.h"
#include "api/crud.h"
#include "http/response.h"
#include "http/validate.h"
#include "core/password.h"
#include "core/secrets.h"
#include "core/pooljson.h"
#include "scaikey.h"
#include "core/jsonget.h"

#include <apr_strings.h>
#include <http_protocol.h>
#include <string.h>

APLOG_USE_MODULE(scaikey);

/* random bytes of a temporary password: 18 bytes = 24 base64url characters */
#define TEMP_PASSWORD_BYTES 18

static const sk_field reset_fields[] = {
    { "password", SK_T_STRING, 0, 8, 1024 },
    { "must_change_password", SK_T_BOOL, 0 },
    { NULL }
};

/* The user of the path, visible to the caller and, for writes, changeable by them. */
static int load_user(sk_req *q, int write, json_t **row, sk_where *w)
{
    if (sk_admin_gate(q, write) != OK ||
        sk_admin_load(q, &sk_res_users, sk_req_param(q, "user_id"), row, w) != OK)
        return DONE;
    if (write && sk_policy_decide(q->who, SK_RES_USER, SK_ACT_UPDATE, w) != SK_ALLOW) {
        sk_fail(q, HTTP_FORBIDDEN, "Access denied");
        return DONE;
    }
    return OK;
}

static sk_audit *user_audit(sk_req *q, const char *action, const sk_where *w)
{
    sk_audit *a = sk_req_audit(q, action, "success");
    a->resource_type = "user";
    a->resource_id = w->id;
    if (w->tenant_id)
        a->tenant_id = w->tenant_id;
    if (w->partner_id)
        a->partner_id = w->partner_id;
    return a;
}

int sk_admin_user_reset_password(sk_req *q)
{
    json_t *row, *errs, *mc;
    sk_where w;
    sk_db *db;
    sk_audit *a;
    const char *password, *hash, *set = NULL, *ended = NULL;
    int temporary;
    sk_db_status st;

    if (load_user(q, 1, &row, &w) != OK)
        return OK;
    errs = json_array();
    sk_validate(q->body, reset_fields, errs);
    password = sk_jstr(q->body, "password");
    mc = json_object_get(q->body, "must_change_password");
    if (!json_array_size(errs) && mc && !password)
        json_array_append_new(errs, sk_verr("body", "must_change_password", "Only applies to a password given "
                                            "in the body; a temporary password must always be changed",
                                            "value_error"));
    if (json_array_size(errs))
        return sk_fail_validation(q, errs);
    json_decref(errs);

    /* no password given: a temporary one, shown once, to be changed at the next sign-in */
    temporary = !password;
    if (temporary && !(password = sk_random_token(q->p, NULL, TEMP_PASSWORD_BYTES)))
        return sk_fail_unavailable(q);
    if (!(hash = sk_password_hash(q->p, password)))
        return sk_fail_unavailable(q);

    db = sk_req_db(q);
    a = user_audit(q, "user.password_reset", &w);
    if ((st = sk_db_begin(db)) == SK_DB_OK &&
        (st = SK_QV(db, "user_password_set", &set, hash,
                    temporary ? "true" : (mc ? (json_is_true(mc) ? "true" : "false") : NULL), w.id)) == SK_DB_OK &&
        (st = SK_QV(db, "sessions_revoke_user", &ended, w.id, "password_reset")) == SK_DB_OK) {
        a->details = sk_pool_json(q->p, json_pack("{s:b,s:I}", "temporary", temporary,
                                                  "sessions_revoked", (json_int_t)apr_atoi64(ended)));
        if ((st = sk_audit_write(db, a)) == SK_DB_OK)
            st = sk_db_commit(db);
    }
    if (st != SK_DB_OK) {
        sk_db_rollback(db);
        if (st == SK_DB_NOTFOUND)
            return sk_fail(q, HTTP_NOT_FOUND, "User not found");
        return sk_fail_write(q, &sk_res_users, db, st);
    }
    sk_no_store(q);
    if (temporary)
        return sk_reply(q, HTTP_OK, json_pack("{s:s}", "temporary_password", password));
    return sk_reply(q, HTTP_OK, json_pack("{s:s}", "detail", "Password updated"));
}

int sk_admin_user_mfa_disable(sk_req *q)
{
    json_t *row, *out = NULL;
    sk_where w;
    sk_db *db;
    sk_audit *a;
    sk_db_status st;

    if (load_user(q, 1, &row, &w) != OK)
        return OK;
    db = sk_req_db(q);
    a = user_audit(q, "user.mfa_disable", &w);
    if ((st = sk_db_begin(db)) == SK_DB_OK && (st = SK_QJ(db, "user_mfa_disable", &out, w.id)) == SK_DB_OK) {
        sk_pool_json(q->p, out);
        if (!sk_jstr(out, "user_id")) {
            st = SK_DB_NOTFOUND;          /* deleted meanwhile */
        }
        else {
            a->details = sk_pool_json(q->p, json_pack("{s:O,s:O}", "methods", json_object_get(out, "methods"),
                                                      "backup_codes", json_object_get(out, "backup_codes")));
            if ((st = sk_audit_write(db, a)) == SK_DB_OK)
                st = sk_db_commit(db);
        }
    }
    if (st != SK_DB_OK) {
        sk_db_rollback(db);
        if (st == SK_DB_NOTFOUND)
            return sk_fail(q, HTTP_NOT_FOUND, "User not found");
        return sk_fail_write(q, &sk_res_users, db, st);
    }
    return sk_reply(q, HTTP_OK, json_pack("{s:s}", "detail", "MFA disabled"));
}

int sk_admin_user_sessions(sk_req *q)
{
    json_t *row, *errs;
    sk_where w;
    int include_revoked;

    if (load_user(q, 0, &row, &w) != OK)
        return OK;
    errs = json_array();
    if (sk_admin_query_bool(q, "include_revoked", 0, &include_revoked, errs) != 0)
        return sk_fail_validation(q, errs);
    json_decref(errs);
    return sk_admin_session_page(q, w.id, include_revoked);
}

int sk_admin_user_groups(sk_req *q)
{
    json_t *row, *errs, *out = NULL;
    sk_where w;
    sk_db *db;
    int page, per_page, effective;
    sk_db_status st;

    if (load_user(q, 0, &row, &w) != OK || sk_page_params(q, &page, &per_page) != OK)
        return OK;
    errs = json_array();
    if (sk_admin_query_bool(q, "effective", 0, &effective, errs) != 0)
        return sk_fail_validation(q, errs);
    json_decref(errs);
    db = sk_req_db(q);
    st = SK_QJ(db, "user_groups", &out, w.id, effective ? "true" : "false", apr_itoa(q->p, per_page),
               apr_itoa(q->p, (page - 1) * per_page));
    if (st != SK_DB_OK) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, SKLOGNO(0711) "user groups: %s", sk_db_error(db));
        return sk_fail_unavailable(q);
    }
    sk_pool_json(q->p, out);
    return sk_reply(q, HTTP_OK, sk_paginated(json_incref(json_object_get(out, "items")),
                                             json_integer_value(json_object_get(out, "total")), page, per_page));
}
