/* Group membership and nesting: /api/v1/admin/groups/{group_id}/members and .../nested.
 * Members are users of the group's tenant; nested groups are groups of the same tenant whose
 * members count as (indirect) members of the parent. The store refuses nesting cycles. */
#include "api/admin.h"
#include "api/crud.h"
#include "http/response.h"
#include "http/validate.h"
#include "store/crud.h"
#include "core/pooljson.h"
#include "scaikey.h"
#include "core/jsonget.h"

#include <apr_strings.h>
#include <http_protocol.h>
#include <string.h>

APLOG_USE_MODULE(scaikey);

static const sk_field member_fields[] = {
    { "user_id", SK_T_STRING, SK_F_REQUIRED, 1, 64 },
    { NULL }
};

static const sk_field nest_fields[] = {
    { "child_group_id", SK_T_STRING, SK_F_REQUIRED, 1, 64 },
    { NULL }
};

/* The group of the path, which the caller may see and, for a write, change: OK, or DONE when
 * answered (403, 404, 503). */
static int load_group(sk_req *q, int write, json_t **row, sk_where *w)
{
    if (sk_admin_gate(q, write) != OK ||
        sk_admin_load(q, &sk_res_groups, sk_req_param(q, "group_id"), row, w) != OK)
        return DONE;
    if (write && sk_policy_decide(q->who, SK_RES_GROUP, SK_ACT_UPDATE, w) != SK_ALLOW) {
        sk_fail(q, HTTP_FORBIDDEN, "Access denied");
        return DONE;
    }
    return OK;
}

/* Is the object id of res visible to the caller and in the tenant? 1 yes, 0 no, -1 store error. */
static int visible_in_tenant(sk_req *q, const sk_resource *res, const char *id, const char *tenant_id)
{
    sk_db *db = sk_req_db(q);
    json_t *row = NULL, *wj;
    sk_where w;
    sk_db_status st;
    if (!db)
        return -1;
    st = sk_store_get(db, res, id, &row);
    if (st == SK_DB_NOTFOUND || st == SK_DB_INVALID)
        return 0;
    if (st != SK_DB_OK) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, SKLOGNO(0701) "%s get: %s", res->name, sk_db_error(db));
        return -1;
    }
    sk_pool_json(q->p, row);
    wj = json_object_get(row, "w");
    memset(&w, 0, sizeof(w));
    w.tenant_id = sk_jstr(wj, "tenant_id");
    w.partner_id = sk_jstr(wj, "partner_id");
    w.role = sk_jstr(wj, "role");
    w.id = sk_jstr(wj, "id");
    return w.tenant_id && tenant_id && !strcmp(w.tenant_id, tenant_id) &&
           sk_policy_decide(q->who, res->name, SK_ACT_READ, &w) == SK_ALLOW;
}

static sk_audit *group_audit(sk_req *q, const char *action, const sk_where *w, json_t *details)
{
    sk_audit *a = sk_req_audit(q, action, "success");
    a->resource_type = "group";
    a->resource_id = w->id;
    if (w->tenant_id)
        a->tenant_id = w->tenant_id;
    if (w->partner_id)
        a->partner_id = w->partner_id;
    a->details = sk_pool_json(q->p, details);
    return a;
}

/* Runs a labelled write of two arguments and its audit row in one transaction. *out gets the
 * statement's JSON (when out is set) or text. */
static sk_db_status write_audited(sk_req *q, const char *label, const char *a1, const char *a2, sk_audit *a,
                                  json_t **out)
{
    sk_db *db = sk_req_db(q);
    const char *v = NULL;
    sk_db_status st;
    if ((st = sk_db_begin(db)) == SK_DB_OK) {
        st = out ? SK_QJ(db, label, out, a1, a2) : SK_QV(db, label, &v, a1, a2);
        if (st == SK_DB_OK && out)
            sk_pool_json(q->p, *out);
        if (st == SK_DB_OK)
            st = sk_audit_write(db, a);
        if (st == SK_DB_OK)
            st = sk_db_commit(db);
    }
    if (st != SK_DB_OK)
        sk_db_rollback(db);
    return st;
}

/* A page of a list statement taking (id, [flag,] lim, off). */
static int page_reply(sk_req *q, const char *label, const char *id, const char *flag, int page, int per_page)
{
    sk_db *db = sk_req_db(q);
    json_t *out = NULL;
    const char *lim = apr_itoa(q->p, per_page), *off = apr_itoa(q->p, (page - 1) * per_page);
    sk_db_status st;
    if (!db)
        return sk_fail_unavailable(q);
    st = flag ? SK_QJ(db, label, &out, id, flag, lim, off) : SK_QJ(db, label, &out, id, lim, off);
    if (st != SK_DB_OK) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, SKLOGNO(0702) "%s: %s", label, sk_db_error(db));
        return sk_fail_unavailable(q);
    }
    sk_pool_json(q->p, out);
    return sk_reply(q, HTTP_OK, sk_paginated(json_incref(json_object_get(out, "items")),
                                             json_integer_value(json_object_get(out, "total")), page, per_page));
}

/* ---- members ---- */

int sk_admin_group_member_add(sk_req *q)
{
    json_t *grp, *row = NULL;
    sk_where w;
    const char *uid;
    sk_db_status st;
    int seen;

    if (load_group(q, 1, &grp, &w) != OK || sk_req_invalid(q, member_fields))
        return OK;
    uid = sk_jstr(q->body, "user_id");
    if ((seen = visible_in_tenant(q, &sk_res_users, uid, w.tenant_id)) < 0)
        return sk_fail_unavailable(q);
    if (!seen)
        return sk_fail_validation(q, json_pack("[o]", sk_verr("body", "user_id", "User not found", "value_error")));
    st = write_audited(q, "grp_member_add", w.id, uid,
                       group_audit(q, "group.member_add", &w, json_pack("{s:s}", "user_id", uid)), &row);
    if (st == SK_DB_NOTFOUND)
        return sk_fail(q, HTTP_CONFLICT, "User is already a member");
    if (st != SK_DB_OK)
        return sk_fail_write(q, &sk_res_groups, q->db, st);
    return sk_reply(q, HTTP_CREATED, json_incref(row));
}

int sk_admin_group_member_remove(sk_req *q)
{
    json_t *grp;
    sk_where w;
    const char *uid = sk_req_param(q, "user_id");
    sk_db_status st;

    if (load_group(q, 1, &grp, &w) != OK)
        return OK;
    st = write_audited(q, "grp_member_remove", w.id, uid,
                       group_audit(q, "group.member_remove", &w, json_pack("{s:s}", "user_id", uid)), NULL);
    if (st == SK_DB_NOTFOUND)
        return sk_fail(q, HTTP_NOT_FOUND, "Member not found");
    if (st != SK_DB_OK)
        return sk_fail_write(q, &sk_res_groups, q->db, st);
    return sk_reply_empty(q);
}

int sk_admin_group_members(sk_req *q)
{
    json_t *grp, *errs;
    sk_where w;
    int page, per_page, effective;

    if (load_group(q, 0, &grp, &w) != OK || sk_page_params(q, &page, &per_page) != OK)
        return OK;
    errs = json_array();
    if (sk_admin_query_bool(q, "effective", 0, &effective, errs) != 0)
        return sk_fail_validation(q, errs);
    json_decref(errs);
    return page_reply(q, "grp_members", w.id, effective ? "true" : "false", page, per_page);
}

/* ---- nested groups ---- */

int sk_admin_group_nest(sk_req *q)
{
    json_t *grp, *row = NULL;
    sk_where w;
    const char *child;
    sk_db_status st;
    int seen;

    if (load_group(q, 1, &grp, &w) != OK || sk_req_invalid(q, nest_fields))
        return OK;
    child = sk_jstr(q->body, "child_group_id");
    if ((seen = visible_in_tenant(q, &sk_res_groups, child, w.tenant_id)) < 0)
        return sk_fail_unavailable(q);
    if (!seen)
        return sk_fail_validation(q, json_pack("[o]", sk_verr("body", "child_group_id", "Group not found",
                                                              "value_error")));
    if (!strcmp(child, w.id))
        return sk_fail(q, HTTP_CONFLICT, "Nesting would create a cycle");
    st = write_audited(q, "grp_nest", w.id, child,
                       group_audit(q, "group.nest", &w, json_pack("{s:s}", "child_group_id", child)), &row);
    if (st == SK_DB_NOTFOUND)
        return sk_fail(q, HTTP_CONFLICT, "Group is already nested in this group");
    /* the nesting trigger raises this when the child is already an ancestor of the parent */
    if (st != SK_DB_OK && strstr(sk_db_error(q->db), "would create a cycle"))
        return sk_fail(q, HTTP_CONFLICT, "Nesting would create a cycle");
    if (st != SK_DB_OK)
        return sk_fail_write(q, &sk_res_groups, q->db, st);
    return sk_reply(q, HTTP_CREATED, json_incref(row));
}

int sk_admin_group_unnest(sk_req *q)
{
    json_t *grp;
    sk_where w;
    const char *child = sk_req_param(q, "child_group_id");
    sk_db_status st;

    if (load_group(q, 1, &grp, &w) != OK)
        return OK;
    st = write_audited(q, "grp_unnest", w.id, child,
                       group_audit(q, "group.unnest", &w, json_pack("{s:s}", "child_group_id", child)), NULL);
    if (st == SK_DB_NOTFOUND)
        return sk_fail(q, HTTP_NOT_FOUND, "Nested group not found");
    if (st != SK_DB_OK)
        return sk_fail_write(q, &sk_res_groups, q->db, st);
    return sk_reply_empty(q);
}

int sk_admin_group_nested(sk_req *q)
{
    json_t *grp;
    sk_where w;
    int page, per_page;

    if (load_group(q, 0, &grp, &w) != OK || sk_page_params(q, &page, &per_page) != OK)
        return OK;
    return page_reply(q, "grp_nested", w.id, NULL, page, per_page);
}
