/* Sessions: /api/v1/admin/sessions (active sessions within the caller's reach), one session,
 * revoking one, and revoking all of a user's or a tenant's. Ending a session ends its refresh
 * tokens too, and its access tokens stop working at once (the token check reads the session).
 * Revoking is a change to the account that owns the session: it takes update rights on that user
 * (or, for a whole tenant, on the tenant). */
#include "api/admin.h"
#include "api/crud.h"
#include "http/response.h"
#include "http/validate.h"
#include "core/pooljson.h"
#include "scaikey.h"
#include "core/jsonget.h"

#include <apr_strings.h>
#include <http_protocol.h>
#include <string.h>

APLOG_USE_MODULE(scaikey);

#define REVOKED_REASON "admin_revoked"
#define MAX_FILTER 320

static const sk_field revoke_all_fields[] = {
    { "user_id",   SK_T_STRING, 0, 1, 64 },
    { "tenant_id", SK_T_STRING, 0, 1, 64 },
    { NULL }
};

int sk_admin_query_bool(sk_req *q, const char *name, int def, int *out, json_t *errs)
{
    const char *v = sk_req_query(q, name);
    *out = def;
    if (!v)
        return 0;
    if (!strcmp(v, "true") || !strcmp(v, "false")) {
        *out = v[0] == 't';
        return 0;
    }
    json_array_append_new(errs, sk_verr("query", name, "Input should be a valid boolean", "bool_parsing"));
    return -1;
}

static void where_of(json_t *wj, sk_where *w)
{
    memset(w, 0, sizeof(*w));
    w->tenant_id = sk_jstr(wj, "tenant_id");
    w->partner_id = sk_jstr(wj, "partner_id");
    w->role = sk_jstr(wj, "role");
    w->id = sk_jstr(wj, "id");
}

/* A page of sessions matching the filters (NULL: any) within the caller's reach. */
static int sessions_page(sk_req *q, const char *uid, const char *tid, const char *pid, int include_revoked)
{
    sk_reach r = sk_policy_reach(q->who);
    sk_db *db;
    json_t *out = NULL;
    int page, per_page;
    sk_db_status st;

    if (sk_page_params(q, &page, &per_page) != OK)
        return OK;
    if (!(db = sk_req_db(q)))
        return sk_fail_unavailable(q);
    st = SK_QJ(db, "sess_list", &out, uid, tid, pid, include_revoked ? "true" : "false",
               r.all ? "true" : "false", r.all ? NULL : r.partner_id, r.all ? NULL : r.tenant_id,
               apr_itoa(q->p, per_page), apr_itoa(q->p, (page - 1) * per_page));
    if (st != SK_DB_OK) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, SKLOGNO(0731) "session list: %s", sk_db_error(db));
        return sk_fail_unavailable(q);
    }
    sk_pool_json(q->p, out);
    return sk_reply(q, HTTP_OK, sk_paginated(json_incref(json_object_get(out, "items")),
                                             json_integer_value(json_object_get(out, "total")), page, per_page));
}

int sk_admin_session_page(sk_req *q, const char *user_id, int include_revoked)
{
    return sessions_page(q, user_id, NULL, NULL, include_revoked);
}

int sk_admin_sessions(sk_req *q)
{
    static const char *const filters[] = { "user_id", "tenant_id", "partner_id", NULL };
    const char *const *f;
    json_t *errs;

    if (sk_admin_gate(q, 0) != OK)
        return OK;
    errs = json_array();
    for (f = filters; *f; f++) {
        const char *v = sk_req_query(q, *f);
        if (v && strlen(v) > MAX_FILTER)
            json_array_append_new(errs, sk_verr("query", *f, "String should have at most 320 characters",
                                                "string_too_long"));
    }
    if (json_array_size(errs))
        return sk_fail_validation(q, errs);
    json_decref(errs);
    return sessions_page(q, sk_req_query(q, "user_id"), sk_req_query(q, "tenant_id"),
                         sk_req_query(q, "partner_id"), 0);
}

/* The session of the path if the caller may see it: OK with *row ({"o","w","user"}) and *w, or
 * DONE after a 404/503. */
static int load_session(sk_req *q, json_t **row, sk_where *w)
{
    const char *id = sk_req_param(q, "session_id");
    sk_db *db = sk_req_db(q);
    sk_db_status st;
    *row = NULL;
    if (!db)
        return sk_fail_unavailable(q), DONE;
    if (id && strlen(id) <= 64) {
        st = SK_QJ(db, "sess_get", row, id);
        if (st == SK_DB_OK) {
            sk_pool_json(q->p, *row);
            where_of(json_object_get(*row, "w"), w);
            w->id = sk_jstr(json_object_get(*row, "o"), "id");
            if (sk_policy_decide(q->who, SK_RES_SESSION, SK_ACT_READ, w) == SK_ALLOW)
                return OK;
        }
        else if (st != SK_DB_NOTFOUND && st != SK_DB_INVALID) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, SKLOGNO(0732) "session get: %s", sk_db_error(db));
            return sk_fail_unavailable(q), DONE;
        }
    }
    sk_fail(q, HTTP_NOT_FOUND, "Session not found");
    return DONE;
}

int sk_admin_session_get(sk_req *q)
{
    json_t *row;
    sk_where w;
    if (sk_admin_gate(q, 0) != OK || load_session(q, &row, &w) != OK)
        return OK;
    return sk_reply(q, HTTP_OK, json_incref(json_object_get(row, "o")));
}

int sk_admin_session_revoke(sk_req *q)
{
    json_t *row, *o;
    sk_where w, uw;
    sk_db *db;
    sk_audit *a;
    const char *n = NULL;
    sk_db_status st;

    if (sk_admin_gate(q, 1) != OK || load_session(q, &row, &w) != OK)
        return OK;
    o = json_object_get(row, "o");
    where_of(json_object_get(row, "user"), &uw);
    switch (sk_policy_decide(q->who, SK_RES_USER, SK_ACT_UPDATE, &uw)) {
    case SK_ALLOW:
        break;
    case SK_HIDDEN:
        return sk_fail(q, HTTP_NOT_FOUND, "Session not found");
    default:
        return sk_fail(q, HTTP_FORBIDDEN, "Access denied");
    }
    /* an ended session is not one of the active sessions this resource manages */
    if (!json_is_true(json_object_get(o, "active")))
        return sk_fail(q, HTTP_NOT_FOUND, "Session not found");

    db = sk_req_db(q);
    a = sk_req_audit(q, "session.revoke", "success");
    a->resource_type = "session";
    a->resource_id = w.id;
    if (w.tenant_id)
        a->tenant_id = w.tenant_id;
    if (w.partner_id)
        a->partner_id = w.partner_id;
    a->details = sk_pool_json(q->p, json_pack("{s:s?}", "user_id", sk_jstr(o, "user_id")));
    if ((st = sk_db_begin(db)) == SK_DB_OK && (st = SK_QV(db, "session_revoke", &n, w.id, REVOKED_REASON)) == SK_DB_OK) {
        if (!strcmp(n, "0"))
            st = SK_DB_NOTFOUND;          /* ended meanwhile */
        else if ((st = sk_audit_write(db, a)) == SK_DB_OK)
            st = sk_db_commit(db);
    }
    if (st != SK_DB_OK) {
        sk_db_rollback(db);
        if (st == SK_DB_NOTFOUND)
            return sk_fail(q, HTTP_NOT_FOUND, "Session not found");
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, SKLOGNO(0733) "session revoke: %s", sk_db_error(db));
        return sk_fail_unavailable(q);
    }
    return sk_reply_empty(q);
}

int sk_admin_sessions_revoke_all(sk_req *q)
{
    json_t *errs, *row;
    const char *uid, *tid, *n = NULL;
    const sk_resource *res;
    sk_where w;
    sk_db *db;
    sk_audit *a;
    sk_db_status st;

    if (sk_admin_gate(q, 1) != OK)
        return OK;
    errs = json_array();
    sk_validate(q->body, revoke_all_fields, errs);
    uid = sk_jstr(q->body, "user_id");
    tid = sk_jstr(q->body, "tenant_id");
    if (!json_array_size(errs) && !uid == !tid)
        json_array_append_new(errs, sk_verr("body", NULL, "Exactly one of user_id or tenant_id is required",
                                            "value_error"));
    if (json_array_size(errs))
        return sk_fail_validation(q, errs);
    json_decref(errs);

    res = uid ? &sk_res_users : &sk_res_tenants;
    if (sk_admin_load(q, res, uid ? uid : tid, &row, &w) != OK)
        return OK;
    if (sk_policy_decide(q->who, res->name, SK_ACT_UPDATE, &w) != SK_ALLOW)
        return sk_fail(q, HTTP_FORBIDDEN, "Access denied");

    db = sk_req_db(q);
    a = sk_req_audit(q, "session.revoke_all", "success");
    a->resource_type = res->singular;
    a->resource_id = w.id;
    if (w.tenant_id)
        a->tenant_id = w.tenant_id;
    if (w.partner_id)
        a->partner_id = w.partner_id;
    if ((st = sk_db_begin(db)) == SK_DB_OK &&
        (st = uid ? SK_QV(db, "sessions_revoke_user", &n, w.id, REVOKED_REASON)
                  : SK_QV(db, "sess_revoke_tenant", &n, w.id, REVOKED_REASON)) == SK_DB_OK) {
        a->details = sk_pool_json(q->p, json_pack("{s:I}", "revoked", (json_int_t)apr_atoi64(n)));
        if ((st = sk_audit_write(db, a)) == SK_DB_OK)
            st = sk_db_commit(db);
    }
    if (st != SK_DB_OK) {
        sk_db_rollback(db);
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, SKLOGNO(0734) "revoke all: %s", sk_db_error(db));
        return sk_fail_unavailable(q);
    }
    return sk_reply(q, HTTP_OK, json_pack("{s:I}", "revoked", (json_int_t)apr_atoi64(n)));
}
