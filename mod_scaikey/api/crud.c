/* The five generic operations of every admin resource. Access is decided by core/policy, SQL is
 * built by store/crud, errors go out through http/response: this file only wires them. */
#include "api/crud.h"
#include "http/response.h"
#include "http/validate.h"
#include "store/crud.h"
#include "core/pooljson.h"
#include "scaikey.h"
#include "core/jsonget.h"

#include <apr_strings.h>
#include <apr_lib.h>
#include <http_protocol.h>

APLOG_USE_MODULE(scaikey);

#define MAX_PAGE 1000000

/* "Identity provider not found" */
static const char *not_found(apr_pool_t *p, const sk_resource *res)
{
    char *s = apr_pstrcat(p, res->singular, " not found", NULL), *c;
    s[0] = (char)apr_toupper(s[0]);
    for (c = s; *c; c++)
        if (*c == '_')
            *c = ' ';
    return s;
}

int sk_admin_gate(sk_req *q, int write)
{
    const char *detail;
    if (sk_policy_gate(q->who, write, &detail) == SK_ALLOW)
        return OK;
    sk_fail(q, HTTP_FORBIDDEN, detail);
    return DONE;
}

static void where_from(apr_pool_t *p, json_t *w, sk_where *out)
{
    memset(out, 0, sizeof(*out));
    out->tenant_id = sk_jstr(w, "tenant_id") ? apr_pstrdup(p, sk_jstr(w, "tenant_id")) : NULL;
    out->partner_id = sk_jstr(w, "partner_id") ? apr_pstrdup(p, sk_jstr(w, "partner_id")) : NULL;
    out->scope = sk_jstr(w, "scope") ? apr_pstrdup(p, sk_jstr(w, "scope")) : NULL;
    out->role = sk_jstr(w, "role") ? apr_pstrdup(p, sk_jstr(w, "role")) : NULL;
    out->id = sk_jstr(w, "id") ? apr_pstrdup(p, sk_jstr(w, "id")) : NULL;
}

int sk_admin_load(sk_req *q, const sk_resource *res, const char *id, json_t **row, sk_where *w)
{
    sk_db *db = sk_req_db(q);
    sk_db_status st;
    *row = NULL;
    if (!db)
        return sk_fail_unavailable(q), DONE;
    /* ids are short prefixed tokens: anything else cannot name a row */
    if (!id || strlen(id) > 64)
        return sk_fail(q, HTTP_NOT_FOUND, not_found(q->p, res)), DONE;
    st = sk_store_get(db, res, id, row);
    if (st == SK_DB_OK) {
        sk_pool_json(q->p, *row);
        where_from(q->p, json_object_get(*row, "w"), w);
        if (sk_policy_decide(q->who, res->name, SK_ACT_READ, w) == SK_ALLOW)
            return OK;
    }
    else if (st != SK_DB_NOTFOUND && st != SK_DB_INVALID) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, SKLOGNO(0601) "%s get: %s", res->name, sk_db_error(db));
        return sk_fail_unavailable(q), DONE;
    }
    sk_fail(q, HTTP_NOT_FOUND, not_found(q->p, res));
    return DONE;
}

int sk_fail_write(sk_req *q, const sk_resource *res, sk_db *db, sk_db_status st)
{
    if (st == SK_DB_CONFLICT) {
        const char *const *c;
        const char *name = sk_db_constraint(db);
        for (c = res->conflicts; c && c[0]; c += 2)
            if (name && !strcmp(c[0], name))
                return sk_fail(q, HTTP_CONFLICT, c[1]);
        return sk_fail(q, HTTP_CONFLICT, apr_psprintf(q->p, "The %s conflicts with an existing one", res->singular));
    }
    if (st == SK_DB_LIMIT) {
        const char *why = apr_table_get(q->r->notes, "scaikey-limit");
        return sk_fail(q, HTTP_CONFLICT, why ? why : "A limit of the partner is reached");
    }
    if (st == SK_DB_INVALID) {
        json_t *errs = json_array();
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, q->r, SKLOGNO(0602) "%s write refused by the store: %s",
                      res->name, sk_db_error(db));
        json_array_append_new(errs, sk_verr("body", NULL, "The values are not consistent with each other or "
                                            "refer to something that does not exist", "value_error"));
        return sk_fail_validation(q, errs);
    }
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, SKLOGNO(0603) "%s write failed: %s", res->name, sk_db_error(db));
    return sk_fail_unavailable(q);
}

/* ---- pagination ---- */

static int query_int(sk_req *q, const char *name, int def, int min, int max, int *out, json_t *errs)
{
    const char *v = sk_req_query(q, name);
    char *end;
    long n;
    *out = def;
    if (!v)
        return 0;
    n = strtol(v, &end, 10);
    if (!*v || *end || n > 100000000L || n < -100000000L) {
        json_array_append_new(errs, sk_verr("query", name, "Input should be a valid integer, unable to parse "
                                            "string as an integer", "int_parsing"));
        return 1;
    }
    if (n < min) {
        json_array_append_new(errs, sk_verr("query", name, apr_psprintf(q->p, "Input should be greater than "
                                            "or equal to %d", min), "greater_than_equal"));
        return 1;
    }
    if (n > max) {
        json_array_append_new(errs, sk_verr("query", name, apr_psprintf(q->p, "Input should be less than "
                                            "or equal to %d", max), "less_than_equal"));
        return 1;
    }
    *out = (int)n;
    return 0;
}

int sk_page_params(sk_req *q, int *page, int *per_page)
{
    json_t *errs = json_array();
    query_int(q, "page", 1, 1, MAX_PAGE, page, errs);
    query_int(q, "per_page", 20, 1, 100, per_page, errs);
    if (json_array_size(errs)) {
        sk_fail_validation(q, errs);
        return DONE;
    }
    json_decref(errs);
    return OK;
}

json_t *sk_paginated(json_t *items, long long total, int page, int per_page)
{
    long long pages = total ? (total + per_page - 1) / per_page : 0;
    return json_pack("{s:o,s:{s:i,s:i,s:I,s:I}}", "items", items, "pagination", "page", page,
                     "per_page", per_page, "total", (json_int_t)total, "total_pages", (json_int_t)pages);
}

/* ---- list ---- */

static int valid_filter(sk_req *q, const sk_resource *res, const char *name, const char *value, json_t *errs)
{
    const sk_column *c = sk_resource_column(res, name);
    if (strlen(value) > 320) {
        json_array_append_new(errs, sk_verr("query", name, "String should have at most 320 characters",
                                            "string_too_long"));
        return 0;
    }
    if (c && c->type == SK_T_ENUM) {
        const char *const *ch;
        for (ch = c->choices; ch && *ch; ch++)
            if (!strcmp(*ch, value))
                return 1;
        json_array_append_new(errs, sk_verr("query", name, "Input should be one of the allowed values", "enum"));
        return 0;
    }
    if (c && c->type == SK_T_BOOL && strcmp(value, "true") && strcmp(value, "false")) {
        json_array_append_new(errs, sk_verr("query", name, "Input should be a valid boolean", "bool_parsing"));
        return 0;
    }
    return 1;
}

int sk_crud_list(sk_req *q)
{
    const sk_resource *res = q->data;
    sk_list_spec spec;
    const sk_column *c;
    json_t *out = NULL, *errs;
    sk_db *db;
    sk_db_status st;
    const char *v;

    if (sk_admin_gate(q, 0) != OK)
        return OK;
    if (sk_policy_decide(q->who, res->name, SK_ACT_READ, NULL) == SK_DENY && !sk_policy_reach(q->who).all)
        return sk_fail(q, HTTP_FORBIDDEN, "Access denied");
    memset(&spec, 0, sizeof(spec));
    if (sk_page_params(q, &spec.page, &spec.per_page) != OK)
        return OK;
    spec.reach = sk_policy_reach(q->who);
    spec.reach_tenant_partner = q->who->tenant_partner_id;
    spec.filters = apr_table_make(q->p, 4);
    errs = json_array();
    if ((v = sk_req_query(q, "tenant_id")) && res->tenant_col)
        apr_table_setn(spec.filters, "tenant_id", v);
    if ((v = sk_req_query(q, "partner_id")) && (res->partner_col || res->tenant_col))
        apr_table_setn(spec.filters, "partner_id", v);
    for (c = res->columns; c->name; c++)
        if ((c->flags & SK_C_FILTER) && (v = sk_req_query(q, c->name)) && valid_filter(q, res, c->name, v, errs))
            apr_table_setn(spec.filters, c->name, v);
    if ((v = sk_req_query(q, "search")) && strlen(v) > 320)
        json_array_append_new(errs, sk_verr("query", "search", "String should have at most 320 characters",
                                            "string_too_long"));
    spec.search = v;
    if ((v = sk_req_query(q, "after"))) {
        /* ?after= (empty) starts a cursor walk; ?after=<id> continues it */
        if (strlen(v) > 64)
            json_array_append_new(errs, sk_verr("query", "after", "Input should be the id of a listed object",
                                                "value_error"));
        spec.after = v;
    }
    if (json_array_size(errs))
        return sk_fail_validation(q, errs);
    json_decref(errs);
    if (!(db = sk_req_db(q)))
        return sk_fail_unavailable(q);
    st = sk_store_list(db, res, &spec, &out);
    if (st == SK_DB_INVALID) {
        /* a filter value of the wrong shape for its column matches nothing */
        return sk_reply(q, HTTP_OK, sk_paginated(json_array(), 0, spec.page, spec.per_page));
    }
    if (st != SK_DB_OK) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, SKLOGNO(0604) "%s list: %s", res->name, sk_db_error(db));
        return sk_fail_unavailable(q);
    }
    sk_pool_json(q->p, out);
    {
        json_t *items = json_object_get(out, "items"), *body;
        size_t n = json_array_size(items);
        body = sk_paginated(json_incref(items), json_integer_value(json_object_get(out, "total")),
                            spec.page, spec.per_page);
        /* in a cursor walk, where to continue: pass it as ?after= to walk deep lists quickly */
        if (spec.after && n == (size_t)spec.per_page)
            json_object_set_new(json_object_get(body, "pagination"), "next_after",
                                json_incref(json_object_get(json_array_get(items, n - 1), "id")));
        return sk_reply(q, HTTP_OK, body);
    }
}

/* ---- create / patch ---- */

/* The field table for create (patch = 0) or patch (patch = 1), from the columns. */
static sk_field *fields_for(apr_pool_t *p, const sk_resource *res, int patch)
{
    const sk_column *c;
    int n = 0;
    sk_field *f;
    for (c = res->columns; c->name; c++)
        n++;
    f = apr_pcalloc(p, sizeof(*f) * (n + 1));
    n = 0;
    for (c = res->columns; c->name; c++) {
        if (!(c->flags & (patch ? SK_C_PATCH : SK_C_CREATE)))
            continue;
        f[n].name = c->name;
        f[n].type = c->type;
        f[n].flags = ((!patch && (c->flags & SK_C_REQUIRED)) ? SK_F_REQUIRED : 0) |
                     ((c->flags & SK_C_NULLABLE) ? SK_F_NULLABLE : 0);
        f[n].min = c->min;
        f[n].max = c->max;
        f[n].choices = c->choices;
        n++;
    }
    return f;
}

static int validated(sk_req *q, const sk_resource *res, int patch, json_t **values)
{
    json_t *errs = json_array();
    const char *key;
    json_t *v;
    sk_validate(q->body, fields_for(q->p, res, patch), errs);
    if (json_array_size(errs)) {
        sk_fail_validation(q, errs);
        return DONE;
    }
    json_decref(errs);
    *values = sk_pool_json(q->p, json_object());
    json_object_foreach(q->body, key, v)
        json_object_set(*values, key, v);
    return OK;
}

/* Looks up a tenant or partner the body refers to; a reference the caller cannot see is
 * answered like one that does not exist. */
static int resolve_refs(sk_req *q, json_t *values, sk_where *w, json_t *errs)
{
    sk_db *db = sk_req_db(q);
    sk_reach r = sk_policy_reach(q->who);
    const char *tid = sk_jstr(values, "tenant_id"), *pid = sk_jstr(values, "partner_id");
    json_t *row = NULL;
    if (!db)
        return -1;
    if (tid) {
        sk_db_status st = SK_QJ(db, "tenant_where", &row, tid);
        if (st == SK_DB_OK) {
            const char *tp = sk_jstr(row, "partner_id");
            if (r.all || (r.partner_id && tp && !strcmp(tp, r.partner_id)) ||
                (r.tenant_id && !strcmp(tid, r.tenant_id))) {
                w->tenant_id = apr_pstrdup(q->p, tid);
                w->partner_id = tp ? apr_pstrdup(q->p, tp) : NULL;
            }
            else
                st = SK_DB_NOTFOUND;
            json_decref(row);
        }
        if (st == SK_DB_NOTFOUND || st == SK_DB_INVALID)
            json_array_append_new(errs, sk_verr("body", "tenant_id", "Tenant not found", "value_error"));
        else if (st != SK_DB_OK)
            return -1;
    }
    if (pid) {
        const char *found = NULL;
        sk_db_status st = SK_QV(db, "partner_exists", &found, pid);
        if (st == SK_DB_OK && !r.all && !(r.partner_id && !strcmp(pid, r.partner_id)))
            st = SK_DB_NOTFOUND;
        if (st == SK_DB_NOTFOUND || st == SK_DB_INVALID)
            json_array_append_new(errs, sk_verr("body", "partner_id", "Partner not found", "value_error"));
        else if (st != SK_DB_OK)
            return -1;
        else if (!tid)
            w->partner_id = apr_pstrdup(q->p, pid);
    }
    return 0;
}

static void audit_write(sk_req *q, sk_db *db, const sk_resource *res, const char *verb, json_t *row,
                        json_t *details, sk_db_status *st)
{
    sk_audit *a;
    json_t *w = json_object_get(row, "w");
    if (*st != SK_DB_OK)
        return;
    a = sk_req_audit(q, apr_pstrcat(q->p, res->singular, ".", verb, NULL), "success");
    a->resource_type = res->singular;
    a->resource_id = sk_jstr(w, "id");
    if (sk_jstr(w, "tenant_id"))
        a->tenant_id = sk_jstr(w, "tenant_id");
    if (sk_jstr(w, "partner_id"))
        a->partner_id = sk_jstr(w, "partner_id");
    a->details = details;
    *st = sk_audit_write(db, a);
}

int sk_crud_create(sk_req *q)
{
    const sk_resource *res = q->data;
    const sk_crud_hooks *h = res->hooks;
    json_t *values, *errs, *row = NULL, *reply;
    sk_where w;
    sk_db *db;
    sk_db_status st;

    if (sk_admin_gate(q, 1) != OK || validated(q, res, 0, &values) != OK)
        return OK;
    if (!(db = sk_req_db(q)))
        return sk_fail_unavailable(q);
    memset(&w, 0, sizeof(w));
    errs = sk_pool_json(q->p, json_array());
    /* a tier that may never make this kind of object is told so before anything else */
    if (sk_policy_may_create(q->who, res->name, res->scope_col ? sk_jstr(values, res->scope_col) : NULL) != SK_ALLOW)
        return sk_fail(q, HTTP_FORBIDDEN, "Access denied");
    /* a tenant_admin's objects live in their tenant unless they say otherwise */
    if (res->tenant_col && !strcmp(res->tenant_col, "tenant_id") && !json_object_get(values, "tenant_id") &&
        q->who->user_id && q->who->tenant_id && sk_role_rank(q->who->role) == 1 &&
        (!res->scope_col || (sk_jstr(values, res->scope_col) && !strcmp(sk_jstr(values, res->scope_col), "TENANT"))))
        json_object_set_new(values, "tenant_id", json_string(q->who->tenant_id));
    if (resolve_refs(q, values, &w, errs) != 0)
        return sk_fail_unavailable(q);
    if (res->scope_col)
        w.scope = sk_jstr(values, res->scope_col);
    if (res->role_col)
        w.role = sk_jstr(values, res->role_col) ? sk_jstr(values, res->role_col) : "user";
    if (h && h->prepare_create && h->prepare_create(q, values, &w, errs) != OK)
        return OK;
    if (json_array_size(errs))
        return sk_fail_validation(q, json_incref(errs));
    if (sk_policy_decide(q->who, res->name, SK_ACT_CREATE, &w) != SK_ALLOW)
        return sk_fail(q, HTTP_FORBIDDEN, "Access denied");

    reply = NULL;
    if ((st = sk_db_begin(db)) == SK_DB_OK && (st = sk_store_insert(db, res, values, &row)) == SK_DB_OK) {
        sk_pool_json(q->p, row);
        reply = sk_pool_json(q->p, json_deep_copy(json_object_get(row, "o")));
        if (h && h->after_create)
            st = h->after_create(q, db, row, reply);
        audit_write(q, db, res, "create", row, NULL, &st);
        if (st == SK_DB_OK)
            st = sk_db_commit(db);
    }
    if (st != SK_DB_OK) {
        sk_db_rollback(db);
        return sk_fail_write(q, res, db, st);
    }
    apr_table_setn(q->r->headers_out, "Location", apr_pstrcat(q->p, res->path, "/",
                                                              sk_jstr(json_object_get(row, "o"), "id"), NULL));
    if (h && h->after_create)
        sk_no_store(q);
    return sk_reply(q, HTTP_CREATED, json_incref(reply));
}

int sk_crud_get(sk_req *q)
{
    const sk_resource *res = q->data;
    json_t *row;
    sk_where w;
    if (sk_admin_gate(q, 0) != OK || sk_admin_load(q, res, sk_req_param(q, res->id_param), &row, &w) != OK)
        return OK;
    return sk_reply(q, HTTP_OK, json_incref(json_object_get(row, "o")));
}

int sk_crud_patch(sk_req *q)
{
    const sk_resource *res = q->data;
    const sk_crud_hooks *h = res->hooks;
    json_t *row, *values, *errs, *updated = NULL, *changed;
    const char *key;
    json_t *v;
    sk_where w, nw;
    sk_db *db;
    sk_db_status st;

    if (sk_admin_gate(q, 1) != OK || sk_admin_load(q, res, sk_req_param(q, res->id_param), &row, &w) != OK)
        return OK;
    if (sk_policy_decide(q->who, res->name, SK_ACT_UPDATE, &w) != SK_ALLOW)
        return sk_fail(q, HTTP_FORBIDDEN, "Access denied");
    if (validated(q, res, 1, &values) != OK)
        return OK;
    db = sk_req_db(q);
    errs = sk_pool_json(q->p, json_array());
    /* moving an object: the new place must be within reach too */
    nw = w;
    if (json_object_get(values, "tenant_id") || json_object_get(values, "partner_id")) {
        if (resolve_refs(q, values, &nw, errs) != 0)
            return sk_fail_unavailable(q);
    }
    if (h && h->prepare_update && h->prepare_update(q, json_object_get(row, "o"), &w, values, errs) != OK)
        return OK;
    if (json_array_size(errs))
        return sk_fail_validation(q, json_incref(errs));
    if ((nw.tenant_id != w.tenant_id || nw.partner_id != w.partner_id) &&
        sk_policy_decide(q->who, res->name, SK_ACT_CREATE, &nw) != SK_ALLOW)
        return sk_fail(q, HTTP_FORBIDDEN, "Access denied");

    changed = sk_pool_json(q->p, json_array());
    json_object_foreach(values, key, v)
        if (key[0] != '*' && !json_equal(v, json_object_get(json_object_get(row, "o"), key)))
            json_array_append_new(changed, json_string(key));
    if ((st = sk_db_begin(db)) == SK_DB_OK && (st = sk_store_update(db, res, w.id, values, &updated)) == SK_DB_OK) {
        sk_pool_json(q->p, updated);
        if (h && h->after_update)
            st = h->after_update(q, db, row, updated);
        audit_write(q, db, res, "update", updated, json_pack("{s:O}", "fields", changed), &st);
        if (st == SK_DB_OK)
            st = sk_db_commit(db);
    }
    if (st != SK_DB_OK) {
        sk_db_rollback(db);
        if (st == SK_DB_NOTFOUND)
            return sk_fail(q, HTTP_NOT_FOUND, not_found(q->p, res));
        return sk_fail_write(q, res, db, st);
    }
    return sk_reply(q, HTTP_OK, json_incref(json_object_get(updated, "o")));
}

int sk_crud_delete(sk_req *q)
{
    const sk_resource *res = q->data;
    const sk_crud_hooks *h = res->hooks;
    json_t *row;
    sk_where w;
    sk_db *db;
    sk_db_status st;

    if (sk_admin_gate(q, 1) != OK || sk_admin_load(q, res, sk_req_param(q, res->id_param), &row, &w) != OK)
        return OK;
    if (h && h->prepare_delete && h->prepare_delete(q, row) != OK)
        return OK;
    if (sk_policy_decide(q->who, res->name, SK_ACT_DELETE, &w) != SK_ALLOW)
        return sk_fail(q, HTTP_FORBIDDEN, "Access denied");
    db = sk_req_db(q);
    if ((st = sk_db_begin(db)) == SK_DB_OK && (st = sk_store_delete(db, res, w.id)) == SK_DB_OK) {
        if (h && h->after_delete)
            st = h->after_delete(q, db, row);
        audit_write(q, db, res, "delete", row, NULL, &st);
        if (st == SK_DB_OK)
            st = sk_db_commit(db);
    }
    if (st != SK_DB_OK) {
        sk_db_rollback(db);
        if (st == SK_DB_NOTFOUND)
            return sk_fail(q, HTTP_NOT_FOUND, not_found(q->p, res));
        return sk_fail_write(q, res, db, st);
    }
    return sk_reply_empty(q);
}
