/* SQL for descriptor-driven resources. Identifiers come only from the descriptors; every value
 * travels as a parameter. */
#include "store/crud.h"

#include <apr_strings.h>
#include <apr_tables.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    apr_pool_t *p;
    apr_array_header_t *args;
} argv_t;

/* A parameter: its value is kept aside and a marker stands in the text. finish() turns the
 * markers into apr_dbd's positional %s in the order they appear in the final text, so fragments
 * can be composed in any order and a value can be used twice. */
static const char *param(argv_t *a, const char *v)
{
    *(const char **)apr_array_push(a->args) = v;
    return apr_psprintf(a->p, "\x01%d\x02", a->args->nelts - 1);
}

static const char *finish(argv_t *a, const char *sql, apr_array_header_t **ordered)
{
    apr_array_header_t *out = apr_array_make(a->p, a->args->nelts + 1, sizeof(const char *));
    char *text = apr_palloc(a->p, strlen(sql) + 1), *o = text;
    const char *s;
    for (s = sql; *s; s++) {
        if (*s == '\x01') {
            int i = atoi(s + 1);
            const char *e = strchr(s, '\x02');
            if (!e || i < 0 || i >= a->args->nelts)
                return NULL;
            *(const char **)apr_array_push(out) = APR_ARRAY_IDX(a->args, i, const char *);
            *o++ = '%';
            *o++ = 's';
            s = e;
        }
        else if (*s == '%') {
            return NULL;             /* descriptors never put a percent sign in SQL */
        }
        else {
            *o++ = *s;
        }
    }
    *o = '\0';
    *ordered = out;
    return text;
}

static sk_db_status run_json(sk_db *db, argv_t *a, const char *sql, json_t **out)
{
    apr_array_header_t *args;
    const char *text = finish(a, sql, &args);
    *out = NULL;
    if (!text)
        return SK_DB_ERROR;
    return sk_db_json_sql(db, text, args->nelts, (const char *const *)args->elts, out);
}

static const char *sql_type(sk_type t)
{
    switch (t) {
    case SK_T_INT:     return "int";
    case SK_T_BOOL:    return "boolean";
    case SK_T_OBJECT:
    case SK_T_STRLIST: return "jsonb";
    default:           return "text";
    }
}

/* A JSON value as a text parameter (NULL for null). */
static const char *value_text(apr_pool_t *p, json_t *v)
{
    char *s, *copy;
    switch (json_typeof(v)) {
    case JSON_NULL:
        return NULL;
    case JSON_STRING:
        return json_string_value(v);
    case JSON_TRUE:
        return "true";
    case JSON_FALSE:
        return "false";
    case JSON_INTEGER:
        return apr_psprintf(p, "%" APR_INT64_T_FMT, (apr_int64_t)json_integer_value(v));
    default:
        s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        copy = s ? apr_pstrdup(p, s) : NULL;
        free(s);
        return copy;
    }
}

#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* json_build_object(...) of the row as the API shows it */
static const char *object_sql(apr_pool_t *p, const sk_resource *res)
{
    const sk_column *c;
    char *s = apr_pstrdup(p, "json_build_object('id', t.id");
    for (c = res->columns; c->name; c++) {
        if (c->flags & (SK_C_HIDDEN | SK_C_NOCOL))
            continue;
        if (c->type == SK_T_TIME)
            s = apr_psprintf(p, "%s, '%s', " TS("t.%s"), s, c->name, c->name);
        else
            s = apr_psprintf(p, "%s, '%s', t.%s", s, c->name, c->name);
    }
    return apr_pstrcat(p, s, ", 'created_at', " TS("t.created_at") ", 'updated_at', " TS("t.updated_at") ")", NULL);
}

static const char *partner_of_row(apr_pool_t *p, const sk_resource *res)
{
    const char *via_tenant = res->tenant_col
        ? apr_psprintf(p, "(SELECT tp.partner_id FROM tenants tp WHERE tp.id = t.%s)", res->tenant_col)
        : "NULL::text";
    if (!strcmp(res->table, "tenants"))
        return "t.partner_id";
    if (res->partner_col)
        return apr_psprintf(p, "coalesce(t.%s, %s)", res->partner_col, via_tenant);
    return via_tenant;
}

static const char *where_sql(apr_pool_t *p, const sk_resource *res)
{
    return apr_psprintf(p, "json_build_object('tenant_id', %s, 'partner_id', %s, 'scope', %s, 'role', %s, 'id', t.id)",
                        res->tenant_col ? apr_psprintf(p, "t.%s", res->tenant_col) : "NULL::text",
                        partner_of_row(p, res),
                        res->scope_col ? apr_psprintf(p, "t.%s", res->scope_col) : "NULL::text",
                        res->role_col ? apr_psprintf(p, "t.%s", res->role_col) : "NULL::text");
}

/* the row with its "_where" */
static const char *full_row_sql(apr_pool_t *p, const sk_resource *res)
{
    return apr_psprintf(p, "json_build_object('o', %s, 'w', %s)::text", object_sql(p, res), where_sql(p, res));
}

sk_db_status sk_store_get(sk_db *db, const sk_resource *res, const char *id, json_t **row)
{
    apr_pool_t *p = sk_db_pool(db);
    argv_t a = { p, apr_array_make(p, 4, sizeof(const char *)) };
    const char *sql = apr_psprintf(p, "SELECT %s FROM %s t WHERE t.id = %s AND t.deleted_at IS NULL",
                                   full_row_sql(p, res), res->table, param(&a, id));
    return run_json(db, &a, sql, row);
}

/* rows within the caller's reach */
static const char *reach_sql(argv_t *a, const sk_resource *res, const sk_list_spec *s)
{
    apr_pool_t *p = a->p;
    const char *tenant_in_partner;
    if (s->reach.all)
        return "TRUE";
    if (s->reach.partner_id) {
        const char *pid = s->reach.partner_id;
        tenant_in_partner = res->tenant_col
            ? apr_psprintf(p, "t.%s IN (SELECT id FROM tenants WHERE partner_id = %s)", res->tenant_col, param(a, pid))
            : "FALSE";
        if (!strcmp(res->table, "tenants"))
            tenant_in_partner = apr_psprintf(p, "t.partner_id = %s", param(a, pid));
        else if (res->partner_col)
            tenant_in_partner = apr_psprintf(p, "(t.%s = %s OR %s)", res->partner_col, param(a, pid), tenant_in_partner);
        if (res->scope_col)
            return apr_psprintf(p, "(t.%s = 'GLOBAL' OR %s)", res->scope_col, tenant_in_partner);
        return tenant_in_partner;
    }
    /* one tenant */
    {
        const char *own = res->tenant_col
            ? apr_psprintf(p, "t.%s = %s", res->tenant_col, param(a, s->reach.tenant_id))
            : "FALSE";
        if (res->scope_col)
            return apr_psprintf(p, "(t.%s = 'GLOBAL' OR (t.%s = 'PARTNER' AND t.%s = %s) OR (t.%s = 'TENANT' AND %s))",
                                res->scope_col, res->scope_col, res->partner_col,
                                param(a, s->reach_tenant_partner ? s->reach_tenant_partner : ""),
                                res->scope_col, own);
        return own;
    }
}

static const char *like_prefix(apr_pool_t *p, const char *s)
{
    /* escape LIKE's own characters, then match as a prefix */
    char *out = apr_palloc(p, strlen(s) * 2 + 2), *o = out;
    for (; *s; s++) {
        if (*s == '%' || *s == '_' || *s == '\\')
            *o++ = '\\';
        *o++ = *s;
    }
    *o++ = '%';
    *o = '\0';
    return out;
}

static const char *lower_utf8(apr_pool_t *p, const char *s)
{
    char *l = apr_pstrdup(p, s), *c;
    for (c = l; *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c - 'A' + 'a');
    return l;
}

typedef struct {
    argv_t *a;
    const sk_resource *res;
    const char *sql;
} filter_ctx;

static int add_filter(void *data, const char *key, const char *value)
{
    filter_ctx *f = data;
    apr_pool_t *p = f->a->p;
    const sk_column *c;
    const char *pred = NULL;
    if (!strcmp(key, "tenant_id") && f->res->tenant_col) {
        pred = apr_psprintf(p, "t.%s = %s", f->res->tenant_col, param(f->a, value));
    }
    else if (!strcmp(key, "partner_id") && (f->res->partner_col || f->res->tenant_col)) {
        if (!strcmp(f->res->table, "tenants"))
            pred = apr_psprintf(p, "t.partner_id = %s", param(f->a, value));
        else if (f->res->partner_col && f->res->tenant_col)
        {
            const char *v = param(f->a, value);
            pred = apr_psprintf(p, "(t.%s = %s OR t.%s IN (SELECT id FROM tenants WHERE partner_id = %s))",
                                f->res->partner_col, v, f->res->tenant_col, v);
        }
        else if (f->res->tenant_col)
            pred = apr_psprintf(p, "t.%s IN (SELECT id FROM tenants WHERE partner_id = %s)",
                                f->res->tenant_col, param(f->a, value));
        else
            pred = apr_psprintf(p, "t.%s = %s", f->res->partner_col, param(f->a, value));
    }
    else if ((c = sk_resource_column(f->res, key)) && (c->flags & SK_C_FILTER)) {
        pred = apr_psprintf(p, "t.%s = %s::%s", c->name, param(f->a, value), sql_type(c->type));
    }
    if (pred)
        f->sql = apr_pstrcat(p, f->sql, " AND ", pred, NULL);
    return 1;
}

static const char *list_where(argv_t *a, const sk_resource *res, const sk_list_spec *s)
{
    apr_pool_t *p = a->p;
    filter_ctx f = { a, res, NULL };
    f.sql = apr_pstrcat(p, "t.deleted_at IS NULL AND ", reach_sql(a, res, s), NULL);
    if (s->filters)
        apr_table_do(add_filter, &f, s->filters, NULL);
    if (s->search && *s->search) {
        const sk_column *c;
        const char *pat = like_prefix(p, lower_utf8(p, s->search)), *ors = NULL;
        for (c = res->columns; c->name; c++) {
            const char *one;
            if (!(c->flags & SK_C_SEARCH))
                continue;
            one = apr_psprintf(p, "lower(t.%s) LIKE %s", c->name, param(a, pat));
            ors = ors ? apr_pstrcat(p, ors, " OR ", one, NULL) : one;
        }
        if (ors)
            f.sql = apr_pstrcat(p, f.sql, " AND (", ors, ")", NULL);
    }
    return f.sql;
}

static int counted_table(const char *table)
{
    static const char *const counted[] = { "users", "groups", "applications", "identity_providers",
                                           "mcp_agents", NULL };
    const char *const *c;
    for (c = counted; *c; c++)
        if (!strcmp(*c, table))
            return 1;
    return 0;
}

/* The total of a list: from row_counts when the list is one tenant's (or everything) without
 * other filters, else counted. */
static const char *total_sql(argv_t *a, const sk_resource *res, const sk_list_spec *s, const char *where)
{
    apr_pool_t *p = a->p;
    const char *tenant = s->filters ? apr_table_get(s->filters, "tenant_id") : NULL;
    int only_tenant_filter = !s->filters || apr_is_empty_table(s->filters) ||
                             (apr_table_elts(s->filters)->nelts == 1 && tenant);
    if (counted_table(res->table) && only_tenant_filter && !(s->search && *s->search) && !s->reach.partner_id) {
        if (s->reach.tenant_id && !res->scope_col && (!tenant || !strcmp(tenant, s->reach.tenant_id)))
            return apr_psprintf(p, "(SELECT coalesce(sum(n), 0) FROM row_counts WHERE table_name = '%s' "
                                   "AND tenant_id = %s)", res->table, param(a, s->reach.tenant_id));
        if (s->reach.all && tenant)
            return apr_psprintf(p, "(SELECT coalesce(sum(n), 0) FROM row_counts WHERE table_name = '%s' "
                                   "AND tenant_id = %s)", res->table, param(a, tenant));
        if (s->reach.all)
            return apr_psprintf(p, "(SELECT coalesce(sum(n), 0) FROM row_counts WHERE table_name = '%s')",
                                res->table);
    }
    return apr_psprintf(p, "(SELECT count(*) FROM %s t WHERE %s)", res->table, where);
}

sk_db_status sk_store_list(sk_db *db, const sk_resource *res, const sk_list_spec *s, json_t **out)
{
    apr_pool_t *p = sk_db_pool(db);
    argv_t a = { p, apr_array_make(p, 16, sizeof(const char *)) };
    const char *w, *sql, *order = res->order ? res->order : "t.created_at, t.id";
    const char *limit = param(&a, apr_itoa(p, s->per_page));
    const char *offset = param(&a, apr_ltoa(p, s->after ? 0 : (long)(s->page - 1) * s->per_page));
    const char *page_where;
    w = list_where(&a, res, s);
    /* a cursor walks the same order from a row on, through the index, however deep */
    page_where = s->after && *s->after && !res->order
        ? apr_psprintf(p, "%s AND (t.created_at, t.id) > (SELECT c.created_at, c.id FROM %s c WHERE c.id = %s)",
                       w, res->table, param(&a, s->after))
        : w;
    /* the page's ids first (an index-only walk), then only those rows are read and rendered */
    sql = apr_psprintf(p,
        "SELECT json_build_object('total', %s, "
        "'items', coalesce((SELECT json_agg(x.o ORDER BY x.n) FROM "
        "(SELECT %s AS o, k.n FROM (SELECT pg.id, row_number() OVER () AS n FROM "
        "(SELECT t.id FROM %s t WHERE %s ORDER BY %s LIMIT %s::int OFFSET %s::int) pg) k "
        "JOIN %s t ON t.id = k.id) x), '[]'::json))::text",
        total_sql(&a, res, s, w), object_sql(p, res), res->table, page_where, order, limit, offset, res->table);
    return run_json(db, &a, sql, out);
}

/* "col = value::type" assignments from values */
static int build_columns(argv_t *a, const sk_resource *res, json_t *values, const char **cols,
                         const char **vals, const char **sets)
{
    apr_pool_t *p = a->p;
    const char *key;
    json_t *v;
    *cols = *vals = *sets = NULL;
    json_object_foreach(values, key, v) {
        const sk_column *c = NULL;
        const char *name, *type, *ph;
        if (key[0] == '*') {            /* a column computed by the API layer */
            name = key + 1;
            type = json_is_boolean(v) ? "boolean" : json_is_integer(v) ? "int"
                 : (json_is_object(v) || json_is_array(v)) ? "jsonb" : "text";
        }
        else {
            c = sk_resource_column(res, key);
            if (!c || (c->flags & SK_C_NOCOL))
                continue;
            name = c->name;
            type = sql_type(c->type);
        }
        if (key[0] == '*' && strlen(name) > 7 && !strcmp(name + strlen(name) - 7, "_sealed"))
            ph = apr_psprintf(p, "decode(%s, 'base64')", param(a, value_text(p, v)));   /* bytea */
        else
            ph = apr_psprintf(p, "%s::%s", param(a, value_text(p, v)), type);
        *cols = *cols ? apr_pstrcat(p, *cols, ", ", name, NULL) : name;
        *vals = *vals ? apr_pstrcat(p, *vals, ", ", ph, NULL) : ph;
        *sets = apr_pstrcat(p, *sets ? *sets : "", *sets ? ", " : "", name, " = ", ph, NULL);
    }
    return *cols != NULL;
}

sk_db_status sk_store_insert(sk_db *db, const sk_resource *res, json_t *values, json_t **row)
{
    apr_pool_t *p = sk_db_pool(db);
    argv_t a = { p, apr_array_make(p, 16, sizeof(const char *)) };
    const char *cols, *vals, *sets, *sql;
    const sk_column *c;
    build_columns(&a, res, values, &cols, &vals, &sets);
    for (c = res->columns; c->name; c++) {
        if (c->sql_default && !json_object_get(values, c->name)) {
            cols = cols ? apr_pstrcat(p, cols, ", ", c->name, NULL) : c->name;
            vals = vals ? apr_pstrcat(p, vals, ", ", c->sql_default, NULL) : c->sql_default;
        }
    }
    sql = cols ? apr_psprintf(p, "INSERT INTO %s AS t (%s) VALUES (%s) RETURNING %s", res->table, cols, vals,
                              full_row_sql(p, res))
               : apr_psprintf(p, "INSERT INTO %s AS t DEFAULT VALUES RETURNING %s", res->table, full_row_sql(p, res));
    return run_json(db, &a, sql, row);
}

sk_db_status sk_store_update(sk_db *db, const sk_resource *res, const char *id, json_t *values, json_t **row)
{
    apr_pool_t *p = sk_db_pool(db);
    argv_t a = { p, apr_array_make(p, 16, sizeof(const char *)) };
    const char *cols, *vals, *sets, *sql;
    if (!build_columns(&a, res, values, &cols, &vals, &sets))
        return sk_store_get(db, res, id, row);
    sql = apr_psprintf(p, "UPDATE %s AS t SET %s, updated_at = now() WHERE t.id = %s AND t.deleted_at IS NULL "
                          "RETURNING %s", res->table, sets, param(&a, id), full_row_sql(p, res));
    return run_json(db, &a, sql, row);
}

sk_db_status sk_store_delete(sk_db *db, const sk_resource *res, const char *id)
{
    apr_pool_t *p = sk_db_pool(db);
    const char *v = NULL;
    const char *sql = apr_psprintf(p, "UPDATE %s SET deleted_at = now() WHERE id = %%s AND deleted_at IS NULL "
                                      "RETURNING id", res->table);
    return sk_db_value_sql(db, sql, 1, SK_ARGS(id), &v);
}
