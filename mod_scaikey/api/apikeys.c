/* API keys: /api/v1/me/api-keys (a person's own keys) and /api/v1/admin/api-keys (every key within
 * an administrator's reach).
 *
 * Projects are tenants. Other products scope keys to a "project" named by an x-project-id header;
 * here the project of a key is its tenant, named by an optional X-Tenant-ID header (x-project-id
 * is read as a synonym) on POST /me/api-keys:
 *   - a tenant's people (user, tenant_admin) always get keys of their own tenant: naming another
 *     tenant is answered 404 "Tenant not found";
 *   - a super_admin or partner_admin gets a key of their own level (the tenant they belong to,
 *     usually none) unless they name a tenant within their reach (sk_policy_reach); a tenant
 *     outside it is not found (404), exactly like one that does not exist.
 * On GET /me/api-keys the same header narrows the list to the keys of that tenant.
 *
 * Every key has one owner: the person who made it for themselves, or the user or agent an
 * administrator made it for. The key is shown in full once, in the answer that creates it; the
 * store keeps its SHA-256 and its first characters only. Revoking is soft and idempotent (a second
 * revoke answers the first one's deactivated_at). Creating and revoking are audited in the same
 * transaction (api_key.create, api_key.revoke) with the key's name and prefix, never the key or
 * its digest. */
#include "api/apikeys.h"
#include "api/crud.h"
#include "http/response.h"
#include "http/validate.h"
#include "store/crud.h"
#include "core/apikeys.h"
#include "core/policy.h"
#include "core/pooljson.h"
#include "scaikey.h"
#include "core/jsonget.h"

#include <apr_strings.h>
#include <apr_lib.h>
#include <http_protocol.h>

APLOG_USE_MODULE(scaikey);

#define ME_PATH      "/api/v1/me/api-keys"
#define ADMIN_PATH   "/api/v1/admin/api-keys"
#define MAX_SCOPES   50
#define MAX_SCOPE    200
#define NOT_FOUND    "API key not found"

static const char *const key_types[] = { "server", "client", NULL };

#define KEY_FIELDS \
    { "name",            SK_T_STRING,  SK_F_REQUIRED, 1, 200 }, \
    { "scopes",          SK_T_STRLIST, SK_F_NULLABLE, 0, MAX_SCOPES }, \
    { "expires_at",      SK_T_STRING,  SK_F_NULLABLE, 1, 64 }, \
    { "expires_in_days", SK_T_INT,     SK_F_NULLABLE, 1, 3650 }, \
    { "key_type",        SK_T_ENUM,    0,             0, 0, key_types }

static const sk_field my_fields[] = { KEY_FIELDS, { NULL } };
static const sk_field admin_fields[] = {
    KEY_FIELDS,
    { "user_id",  SK_T_STRING, SK_F_NULLABLE, 1, 64 },
    { "agent_id", SK_T_STRING, SK_F_NULLABLE, 1, 64 },
    { NULL }
};

/* A validated request for a new key, as the store takes it. */
typedef struct {
    const char *name, *key_type;
    const char *scopes;              /* JSON text of the list */
    const char *expires_epoch;       /* seconds since the epoch, or NULL */
    const char *expires_days;        /* or days from now, or NULL (neither: no expiry) */
} key_spec;

/* Whom a new key belongs to and where it lives. */
typedef struct {
    const char *user_id, *agent_id;
    const char *tenant_id, *partner_id;
} key_owner;

static const char *pstr(apr_pool_t *p, json_t *o, const char *k)
{
    const char *v = sk_jstr(o, k);
    return v ? apr_pstrdup(p, v) : NULL;
}

/* Does errs already hold an error for this body field? */
static int has_error(json_t *errs, const char *field)
{
    size_t i;
    json_t *e;
    json_array_foreach(errs, i, e) {
        json_t *loc = json_object_get(e, "loc");
        const char *f = json_string_value(json_array_get(loc, 1));
        if (f && !strcmp(f, field))
            return 1;
    }
    return 0;
}

static int blank(const char *s)
{
    for (; *s; s++)
        if (!apr_isspace(*s))
            return 0;
    return 1;
}

/* ---- reading a new key's fields ---- */

/* Validates the body against fields (the admin form adds the owner's id). OK with *s filled, or
 * DONE after a 422. */
static int read_spec(sk_req *q, const sk_field *fields, key_spec *s)
{
    json_t *errs = sk_pool_json(q->p, json_array()), *v, *item;
    json_t *at = json_object_get(q->body, "expires_at"), *days = json_object_get(q->body, "expires_in_days");
    long long usec = 0;
    size_t i;
    char *text;

    memset(s, 0, sizeof(*s));
    sk_validate(q->body, fields, errs);
    if (!has_error(errs, "name") && blank(sk_jstr(q->body, "name")))
        json_array_append_new(errs, sk_verr("body", "name", "String should not be blank", "string_too_short"));
    if (!has_error(errs, "scopes") && json_is_array(v = json_object_get(q->body, "scopes"))) {
        json_array_foreach(v, i, item) {
            if (json_string_length(item) > MAX_SCOPE) {
                json_array_append_new(errs, sk_verr("body", "scopes", "Scopes should have at most 200 characters",
                                                    "string_too_long"));
                break;
            }
        }
    }
    if (!has_error(errs, "expires_at") && json_is_string(at)) {
        if (sk_apikey_parse_time(json_string_value(at), &usec) != 0)
            json_array_append_new(errs, sk_verr("body", "expires_at", "Input should be a valid datetime",
                                                "datetime_parsing"));
        else if (usec <= (long long)apr_time_now())
            json_array_append_new(errs, sk_verr("body", "expires_at", "Input should be in the future",
                                                "datetime_future"));
    }
    if (at && !json_is_null(at) && days && !json_is_null(days))
        json_array_append_new(errs, sk_verr("body", NULL, "Give expires_at or expires_in_days, not both",
                                            "value_error"));
    if (json_array_size(errs)) {
        sk_fail_validation(q, json_incref(errs));
        return DONE;
    }

    s->name = sk_jstr(q->body, "name");
    s->key_type = sk_jstr(q->body, "key_type") ? sk_jstr(q->body, "key_type") : "server";
    s->scopes = "[]";
    if (json_is_array(v = json_object_get(q->body, "scopes")) && (text = json_dumps(v, JSON_COMPACT))) {
        s->scopes = apr_pstrdup(q->p, text);
        free(text);
    }
    if (json_is_string(at))
        s->expires_epoch = apr_psprintf(q->p, "%" APR_INT64_T_FMT ".%06" APR_INT64_T_FMT,
                                        (apr_int64_t)(usec / 1000000), (apr_int64_t)(usec % 1000000));
    if (json_is_integer(days))
        s->expires_days = apr_psprintf(q->p, "%" APR_INT64_T_FMT, (apr_int64_t)json_integer_value(days));
    return OK;
}

/* ---- where keys live ---- */

static int within_reach(const sk_principal *who, const char *tenant_id, const char *partner_id)
{
    sk_reach r = sk_policy_reach(who);
    if (r.all)
        return 1;
    if (r.partner_id)
        return partner_id && *r.partner_id && !strcmp(partner_id, r.partner_id);
    return tenant_id && r.tenant_id && *r.tenant_id && !strcmp(tenant_id, r.tenant_id);
}

/* The tenant named by X-Tenant-ID (or its synonym x-project-id): OK with *tenant (NULL when
 * neither is sent), or DONE after a 422 when they disagree. */
static int project_header(sk_req *q, const char **tenant)
{
    const char *a = apr_table_get(q->r->headers_in, "X-Tenant-ID");
    const char *b = apr_table_get(q->r->headers_in, "X-Project-ID");
    if (a && !*a)
        a = NULL;
    if (b && !*b)
        b = NULL;
    if (a && b && strcmp(a, b)) {
        json_t *errs = json_array();
        json_array_append_new(errs, sk_verr("header", "x-project-id",
                                            "X-Tenant-ID and x-project-id name different tenants", "value_error"));
        sk_fail_validation(q, errs);
        return DONE;
    }
    *tenant = a ? a : b;
    return OK;
}

/* The tenant of a person's new key (see the top of this file). OK with o->tenant_id and
 * o->partner_id set, or DONE after an answer. */
static int my_key_home(sk_req *q, key_owner *o)
{
    const char *want;
    json_t *row = NULL;
    sk_db *db;
    sk_db_status st;

    o->tenant_id = q->who->tenant_id;
    o->partner_id = q->who->partner_id ? q->who->partner_id : q->who->tenant_partner_id;
    if (project_header(q, &want) != OK)
        return DONE;
    if (!want || (q->who->tenant_id && !strcmp(want, q->who->tenant_id)))
        return OK;
    if (sk_role_rank(q->who->role) < 2 || strlen(want) > 64)
        return sk_fail(q, HTTP_NOT_FOUND, "Tenant not found"), DONE;
    if (!(db = sk_req_db(q)))
        return sk_fail_unavailable(q), DONE;
    st = SK_QJ(db, "tenant_where", &row, want);
    if (st == SK_DB_OK) {
        sk_pool_json(q->p, row);
        if (within_reach(q->who, sk_jstr(row, "id"), sk_jstr(row, "partner_id"))) {
            o->tenant_id = pstr(q->p, row, "id");
            o->partner_id = pstr(q->p, row, "partner_id");
            return OK;
        }
    }
    else if (st != SK_DB_NOTFOUND && st != SK_DB_INVALID) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, SKLOGNO(1601) "api key tenant: %s", sk_db_error(db));
        return sk_fail_unavailable(q), DONE;
    }
    return sk_fail(q, HTTP_NOT_FOUND, "Tenant not found"), DONE;
}

/* ---- issuing ---- */

/* Makes the key, stores its digest and audits it in one transaction, answers 201 with the key. */
static int issue(sk_req *q, const key_spec *s, const key_owner *o, int admin)
{
    const char *key, *prefix, *digest, *id;
    json_t *row = NULL, *reply, *details, *v;
    const char *k;
    sk_db *db = sk_req_db(q);
    sk_audit *a;
    sk_db_status st;

    if (!db)
        return sk_fail_unavailable(q);
    if (sk_apikey_new(q->p, &key, &prefix, &digest) != 0) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, SKLOGNO(1602) "api key: no randomness");
        return sk_fail_unavailable(q);
    }
    details = sk_pool_json(q->p, json_pack("{s:s,s:s,s:s}", "name", s->name, "key_prefix", prefix,
                                           "key_type", s->key_type));
    if (o->user_id)
        json_object_set_new(details, "user_id", json_string(o->user_id));
    if (o->agent_id)
        json_object_set_new(details, "agent_id", json_string(o->agent_id));
    a = sk_req_audit(q, "api_key.create", "success");
    a->resource_type = "api_key";
    if (o->tenant_id)
        a->tenant_id = o->tenant_id;
    if (o->partner_id)
        a->partner_id = o->partner_id;
    a->details = details;

    st = sk_db_begin(db);
    if (st == SK_DB_OK)
        st = SK_QJ(db, "apikey_insert", &row, o->tenant_id, o->user_id, o->agent_id, s->name, prefix, digest,
                   s->key_type, s->scopes, s->expires_epoch, s->expires_days,
                   q->who->user_id ? q->who->user_id : q->who->client_id);
    if (st == SK_DB_OK) {
        sk_pool_json(q->p, row);
        a->resource_id = sk_jstr(row, "id");
        st = sk_audit_write(db, a);               /* last: it holds the audit chain's lock */
    }
    if (st == SK_DB_OK)
        st = sk_db_commit(db);
    if (st != SK_DB_OK) {
        sk_db_rollback(db);
        if (st == SK_DB_INVALID) {
            /* the owner went away meanwhile, or a value the store refuses */
            json_t *errs = json_array();
            ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, q->r, SKLOGNO(1603) "api key refused by the store: %s",
                          sk_db_error(db));
            json_array_append_new(errs, sk_verr("body", NULL, "The values are not consistent with each other or "
                                                "refer to something that does not exist", "value_error"));
            return sk_fail_validation(q, errs);
        }
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, SKLOGNO(1604) "api key create failed: %s", sk_db_error(db));
        return sk_fail_unavailable(q);
    }

    /* the key right after its id and name: the one time it is shown */
    id = sk_jstr(row, "id");
    reply = json_pack("{s:s,s:O,s:s}", "id", id, "name", json_object_get(row, "name"), "key", key);
    json_object_foreach(row, k, v)
        if (!json_object_get(reply, k) && (admin || (strcmp(k, "user_id") && strcmp(k, "agent_id") &&
                                                     strcmp(k, "created_by"))))
            json_object_set(reply, k, v);
    apr_table_setn(q->r->headers_out, "Location", apr_pstrcat(q->p, admin ? ADMIN_PATH : ME_PATH, "/", id, NULL));
    sk_no_store(q);
    return sk_reply(q, HTTP_CREATED, reply);
}

/* ---- one key ---- */

/* Loads a key: OK with *key ({"o": as an administrator sees it, "w": where it lives}), or DONE
 * after a 404/503. */
static int load_key(sk_req *q, json_t **key)
{
    const char *id = sk_req_param(q, "key_id");
    sk_db *db = sk_req_db(q);
    sk_db_status st;
    *key = NULL;
    if (!db)
        return sk_fail_unavailable(q), DONE;
    if (!id || strlen(id) > 64)
        return sk_fail(q, HTTP_NOT_FOUND, NOT_FOUND), DONE;
    st = SK_QJ(db, "apikey_get", key, id);
    if (st == SK_DB_OK) {
        sk_pool_json(q->p, *key);
        return OK;
    }
    if (st != SK_DB_NOTFOUND && st != SK_DB_INVALID) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, SKLOGNO(1605) "api key get: %s", sk_db_error(db));
        return sk_fail_unavailable(q), DONE;
    }
    return sk_fail(q, HTTP_NOT_FOUND, NOT_FOUND), DONE;
}

/* A person's own key, or DONE after a 404 (another person's key is not found either). */
static int load_my_key(sk_req *q, json_t **key)
{
    if (load_key(q, key) != OK)
        return DONE;
    if (!q->who->user_id || !sk_jstr(json_object_get(*key, "o"), "user_id") ||
        strcmp(sk_jstr(json_object_get(*key, "o"), "user_id"), q->who->user_id))
        return sk_fail(q, HTTP_NOT_FOUND, NOT_FOUND), DONE;
    return OK;
}

/* A key within the administrator's reach, or DONE after a 404. */
static int load_admin_key(sk_req *q, json_t **key)
{
    json_t *w;
    if (load_key(q, key) != OK)
        return DONE;
    w = json_object_get(*key, "w");
    if (!within_reach(q->who, sk_jstr(w, "tenant_id"), sk_jstr(w, "partner_id")))
        return sk_fail(q, HTTP_NOT_FOUND, NOT_FOUND), DONE;
    return OK;
}

/* The key as its owner sees it. */
static json_t *owner_view(json_t *o)
{
    json_t *v = json_deep_copy(o);
    json_object_del(v, "user_id");
    json_object_del(v, "agent_id");
    json_object_del(v, "created_by");
    return v;
}

static int revoke_key(sk_req *q, json_t *key)
{
    json_t *o = json_object_get(key, "o"), *w = json_object_get(key, "w"), *done = NULL;
    sk_db *db = sk_req_db(q);
    sk_audit *a;
    sk_db_status st;

    a = sk_req_audit(q, "api_key.revoke", "success");
    a->resource_type = "api_key";
    a->resource_id = sk_jstr(o, "id");
    if (sk_jstr(w, "tenant_id"))
        a->tenant_id = sk_jstr(w, "tenant_id");
    if (sk_jstr(w, "partner_id"))
        a->partner_id = sk_jstr(w, "partner_id");
    a->details = sk_pool_json(q->p, json_pack("{s:O,s:O}", "name", json_object_get(o, "name"),
                                              "key_prefix", json_object_get(o, "key_prefix")));
    st = sk_db_begin(db);
    if (st == SK_DB_OK)
        st = SK_QJ(db, "apikey_revoke", &done, sk_jstr(o, "id"));
    if (st == SK_DB_OK) {
        sk_pool_json(q->p, done);
        /* revoking a revoked key changes nothing and records nothing */
        if (json_is_true(json_object_get(done, "changed")))
            st = sk_audit_write(db, a);
    }
    if (st == SK_DB_OK)
        st = sk_db_commit(db);
    if (st != SK_DB_OK) {
        sk_db_rollback(db);
        if (st == SK_DB_NOTFOUND)        /* deleted meanwhile */
            return sk_fail(q, HTTP_NOT_FOUND, NOT_FOUND);
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, SKLOGNO(1606) "api key revoke failed: %s", sk_db_error(db));
        return sk_fail_unavailable(q);
    }
    return sk_reply(q, HTTP_OK, json_pack("{s:O,s:b,s:O}", "id", json_object_get(done, "id"), "is_active", 0,
                                          "deactivated_at", json_object_get(done, "deactivated_at")));
}

/* ---- lists ---- */

static int reply_page(sk_req *q, sk_db *db, sk_db_status st, json_t *out, int page, int per_page)
{
    if (st == SK_DB_INVALID)            /* a filter of the wrong shape matches nothing */
        return sk_reply(q, HTTP_OK, sk_paginated(json_array(), 0, page, per_page));
    if (st != SK_DB_OK) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, SKLOGNO(1607) "api key list: %s", sk_db_error(db));
        return sk_fail_unavailable(q);
    }
    sk_pool_json(q->p, out);
    return sk_reply(q, HTTP_OK, sk_paginated(json_incref(json_object_get(out, "items")),
                                             json_integer_value(json_object_get(out, "total")), page, per_page));
}

/* An optional id filter of the query string; NULL when absent, errors added to errs. */
static const char *query_id(sk_req *q, const char *name, json_t *errs)
{
    const char *v = sk_req_query(q, name);
    if (v && strlen(v) > 320) {
        json_array_append_new(errs, sk_verr("query", name, "String should have at most 320 characters",
                                            "string_too_long"));
        return NULL;
    }
    return v;
}

/* ---- a person's own keys ---- */

static int person_only(sk_req *q)
{
    if (q->who->user_id)
        return OK;
    sk_fail(q, HTTP_FORBIDDEN, "API keys belong to people: sign in as one");
    return DONE;
}

int sk_api_my_keys_list(sk_req *q)
{
    int page, per_page;
    const char *tenant;
    json_t *out = NULL;
    sk_db *db;
    sk_db_status st;

    if (person_only(q) != OK || sk_page_params(q, &page, &per_page) != OK || project_header(q, &tenant) != OK)
        return OK;
    if (!(db = sk_req_db(q)))
        return sk_fail_unavailable(q);
    st = SK_QJ(db, "apikey_list_mine", &out, q->who->user_id, tenant, apr_itoa(q->p, per_page),
               apr_ltoa(q->p, (long)(page - 1) * per_page));
    return reply_page(q, db, st, out, page, per_page);
}

int sk_api_my_keys_create(sk_req *q)
{
    key_spec s;
    key_owner o = { 0 };
    if (person_only(q) != OK || read_spec(q, my_fields, &s) != OK)
        return OK;
    o.user_id = q->who->user_id;
    if (my_key_home(q, &o) != OK)
        return OK;
    return issue(q, &s, &o, 0);
}

int sk_api_my_keys_get(sk_req *q)
{
    json_t *key;
    if (person_only(q) != OK || load_my_key(q, &key) != OK)
        return OK;
    return sk_reply(q, HTTP_OK, owner_view(json_object_get(key, "o")));
}

int sk_api_my_keys_revoke(sk_req *q)
{
    json_t *key;
    if (person_only(q) != OK || load_my_key(q, &key) != OK)
        return OK;
    return revoke_key(q, key);
}

/* ---- administrators ---- */

int sk_admin_keys_list(sk_req *q)
{
    int page, per_page;
    const char *tenant, *user, *agent, *active = NULL, *v;
    sk_reach r;
    json_t *out = NULL, *errs;
    sk_db *db;
    sk_db_status st;

    if (sk_admin_gate(q, 0) != OK || sk_page_params(q, &page, &per_page) != OK)
        return OK;
    errs = sk_pool_json(q->p, json_array());
    tenant = query_id(q, "tenant_id", errs);
    user = query_id(q, "user_id", errs);
    agent = query_id(q, "agent_id", errs);
    if ((v = sk_req_query(q, "is_active"))) {
        if (!strcmp(v, "true") || !strcmp(v, "false"))
            active = v;
        else
            json_array_append_new(errs, sk_verr("query", "is_active", "Input should be a valid boolean",
                                                "bool_parsing"));
    }
    if (json_array_size(errs))
        return sk_fail_validation(q, json_incref(errs));
    if (!(db = sk_req_db(q)))
        return sk_fail_unavailable(q);
    r = sk_policy_reach(q->who);
    st = SK_QJ(db, "apikey_list_admin", &out, r.all ? "true" : "false", r.all ? NULL : r.partner_id,
               r.all || r.partner_id ? NULL : r.tenant_id, tenant, user, agent, active,
               apr_itoa(q->p, per_page), apr_ltoa(q->p, (long)(page - 1) * per_page));
    return reply_page(q, db, st, out, page, per_page);
}

/* The owner an administrator names: a user or an agent they can see. OK with *o filled, DONE
 * after an answer. A user above the administrator's own tier gets no key from them (403). */
static int admin_key_owner(sk_req *q, key_owner *o)
{
    const char *uid = sk_jstr(q->body, "user_id"), *gid = sk_jstr(q->body, "agent_id");
    const sk_resource *res = uid ? &sk_res_users : &sk_res_agents;
    const char *field = uid ? "user_id" : "agent_id", *id = uid ? uid : gid;
    json_t *row = NULL, *w, *errs;
    sk_where where;
    sk_db *db;
    sk_db_status st;

    if ((uid != NULL) == (gid != NULL)) {
        errs = json_array();
        json_array_append_new(errs, sk_verr("body", NULL, "Give exactly one of user_id and agent_id",
                                            "value_error"));
        return sk_fail_validation(q, errs), DONE;
    }
    if (!(db = sk_req_db(q)))
        return sk_fail_unavailable(q), DONE;
    st = sk_store_get(db, res, id, &row);
    if (st != SK_DB_OK && st != SK_DB_NOTFOUND && st != SK_DB_INVALID) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, SKLOGNO(1608) "api key owner: %s", sk_db_error(db));
        return sk_fail_unavailable(q), DONE;
    }
    memset(&where, 0, sizeof(where));
    if (st == SK_DB_OK) {
        sk_pool_json(q->p, row);
        w = json_object_get(row, "w");
        where.tenant_id = pstr(q->p, w, "tenant_id");
        where.partner_id = pstr(q->p, w, "partner_id");
        where.role = pstr(q->p, w, "role");
        where.id = pstr(q->p, w, "id");
    }
    if (st != SK_DB_OK || sk_policy_decide(q->who, res->name, SK_ACT_READ, &where) != SK_ALLOW) {
        errs = json_array();
        json_array_append_new(errs, sk_verr("body", field, uid ? "User not found" : "Agent not found",
                                            "value_error"));
        return sk_fail_validation(q, errs), DONE;
    }
    /* a key acts as its owner: only those who may manage the owner may make one (or oneself) */
    if (!(uid && q->who->user_id && !strcmp(uid, q->who->user_id)) &&
        sk_policy_decide(q->who, res->name, SK_ACT_UPDATE, &where) != SK_ALLOW)
        return sk_fail(q, HTTP_FORBIDDEN, "Access denied"), DONE;
    o->user_id = uid ? where.id : NULL;
    o->agent_id = uid ? NULL : where.id;
    o->tenant_id = where.tenant_id;
    o->partner_id = where.partner_id;
    return OK;
}

int sk_admin_keys_create(sk_req *q)
{
    key_spec s;
    key_owner o = { 0 };
    if (sk_admin_gate(q, 1) != OK || read_spec(q, admin_fields, &s) != OK || admin_key_owner(q, &o) != OK)
        return OK;
    return issue(q, &s, &o, 1);
}

int sk_admin_keys_get(sk_req *q)
{
    json_t *key;
    if (sk_admin_gate(q, 0) != OK || load_admin_key(q, &key) != OK)
        return OK;
    return sk_reply(q, HTTP_OK, json_incref(json_object_get(key, "o")));
}

int sk_admin_keys_revoke(sk_req *q)
{
    json_t *key;
    if (sk_admin_gate(q, 1) != OK || load_admin_key(q, &key) != OK)
        return OK;
    return revoke_key(q, key);
}
