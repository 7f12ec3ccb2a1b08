/* GET /openapi.json: the API description, outside production mode.
 *
 * docs/openapi.json is compiled in as the base. The paths and schemas of descriptor-driven
 * resources are generated from their descriptors and replace what the base says of them, so they
 * cannot drift from the code; a route the base does not describe gets a stub marked
 * "x-undocumented" (a test refuses those). `./dev openapi` writes the served document back to
 * docs/openapi.json. */
#include "api/api.h"
#include "api/crud.h"
#include "http/router.h"
#include "http/response.h"

#include <apr_strings.h>
#include <apr_thread_mutex.h>
#include <apr_lib.h>
#include <http_protocol.h>

extern const char sk_openapi_json[];

static char *cached;                       /* built once per process */
static apr_thread_mutex_t *cache_lock;

void sk_openapi_child_init(apr_pool_t *p)
{
    apr_thread_mutex_create(&cache_lock, APR_THREAD_MUTEX_DEFAULT, p);
}

/* "identity_provider" -> "IdentityProvider" */
static const char *schema_name(apr_pool_t *p, const sk_resource *res, const char *suffix)
{
    char *s = apr_pstrdup(p, res->singular), *o = s;
    const char *c;
    int up = 1;
    for (c = res->singular; *c; c++) {
        if (*c == '_') {
            up = 1;
            continue;
        }
        *o++ = up ? (char)apr_toupper(*c) : *c;
        up = 0;
    }
    *o = '\0';
    return apr_pstrcat(p, s, suffix, NULL);
}

static json_t *ref(apr_pool_t *p, const char *name)
{
    return json_pack("{s:s}", "$ref", apr_pstrcat(p, "#/components/schemas/", name, NULL));
}

static json_t *column_schema(const sk_column *c)
{
    json_t *s = json_object();
    const char *const *ch;
    switch (c->type) {
    case SK_T_INT:
        json_object_set_new(s, "type", json_string("integer"));
        if (c->min || c->max) {
            json_object_set_new(s, "minimum", json_integer(c->min));
            if (c->max)
                json_object_set_new(s, "maximum", json_integer(c->max));
        }
        break;
    case SK_T_BOOL:
        json_object_set_new(s, "type", json_string("boolean"));
        break;
    case SK_T_OBJECT:
        json_object_set_new(s, "type", json_string("object"));
        break;
    case SK_T_STRLIST:
        json_object_set_new(s, "type", json_string("array"));
        json_object_set_new(s, "items", json_pack("{s:s,s:i,s:i}", "type", "string", "minLength", 1, "maxLength", 1024));
        json_object_set_new(s, "maxItems", json_integer(c->max ? c->max : 100));
        break;
    case SK_T_TIME:
        json_object_set_new(s, "type", json_string("string"));
        json_object_set_new(s, "format", json_string("date-time"));
        json_object_set_new(s, "readOnly", json_true());
        break;
    default:
        json_object_set_new(s, "type", json_string("string"));
        if (c->type == SK_T_EMAIL)
            json_object_set_new(s, "format", json_string("email"));
        if (c->type == SK_T_URL)
            json_object_set_new(s, "format", json_string("uri"));
        if (c->type == SK_T_SLUG)
            json_object_set_new(s, "pattern", json_string("^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$"));
        if (c->type == SK_T_ENUM) {
            json_t *e = json_array();
            for (ch = c->choices; ch && *ch; ch++)
                json_array_append_new(e, json_string(*ch));
            json_object_set_new(s, "enum", e);
        }
        else {
            if (c->min)
                json_object_set_new(s, "minLength", json_integer(c->min));
            json_object_set_new(s, "maxLength", json_integer(c->max ? c->max : 1024));
        }
        break;
    }
    if (c->flags & SK_C_NULLABLE) {
        json_t *t = json_object_get(s, "type");
        json_object_set_new(s, "type", json_pack("[O,s]", t, "null"));
    }
    return s;
}

static void resource_schemas(apr_pool_t *p, const sk_resource *res, json_t *schemas)
{
    const sk_column *c;
    json_t *obj = json_object(), *create = json_object(), *update = json_object(), *required = json_array();
    json_t *oprops = json_object(), *cprops = json_object(), *uprops = json_object();
    json_object_set_new(oprops, "id", json_pack("{s:s,s:b}", "type", "string", "readOnly", 1));
    for (c = res->columns; c->name; c++) {
        if (!(c->flags & (SK_C_HIDDEN | SK_C_NOCOL)))
            json_object_set_new(oprops, c->name, column_schema(c));
        if (c->flags & SK_C_CREATE)
            json_object_set_new(cprops, c->name, column_schema(c));
        if ((c->flags & SK_C_CREATE) && (c->flags & SK_C_REQUIRED))
            json_array_append_new(required, json_string(c->name));
        if (c->flags & SK_C_PATCH)
            json_object_set_new(uprops, c->name, column_schema(c));
    }
    json_object_set_new(oprops, "created_at", json_pack("{s:s,s:s}", "type", "string", "format", "date-time"));
    json_object_set_new(oprops, "updated_at", json_pack("{s:s,s:s}", "type", "string", "format", "date-time"));
    json_object_set_new(obj, "type", json_string("object"));
    json_object_set_new(obj, "properties", oprops);
    json_object_set_new(create, "type", json_string("object"));
    json_object_set_new(create, "properties", cprops);
    json_object_set_new(create, "required", required);
    json_object_set_new(create, "additionalProperties", json_false());
    json_object_set_new(update, "type", json_string("object"));
    json_object_set_new(update, "properties", uprops);
    json_object_set_new(update, "additionalProperties", json_false());
    json_object_set_new(schemas, schema_name(p, res, ""), obj);
    json_object_set_new(schemas, schema_name(p, res, "Create"), create);
    json_object_set_new(schemas, schema_name(p, res, "Update"), update);
    json_object_set_new(schemas, schema_name(p, res, "List"),
        json_pack("{s:s,s:{s:{s:s,s:o},s:o},s:[s,s]}", "type", "object", "properties",
                  "items", "type", "array", "items", ref(p, schema_name(p, res, "")),
                  "pagination", ref(p, "Pagination"), "required", "items", "pagination"));
    if (sk_resource_column(res, "client_secret_hash"))
        json_object_set_new(schemas, schema_name(p, res, "Created"),
            json_pack("{s:[o,{s:{s:{s:s,s:s}}}]}", "allOf", ref(p, schema_name(p, res, "")), "properties",
                      "client_secret", "type", "string", "description", "Shown once: only its digest is stored"));
}

static json_t *response(apr_pool_t *p, const char *desc, const char *schema)
{
    json_t *r = json_pack("{s:s}", "description", desc);
    if (schema)
        json_object_set_new(r, "content", json_pack("{s:{s:o}}", "application/json", "schema", ref(p, schema)));
    return r;
}

static json_t *errors(apr_pool_t *p, int body)
{
    json_t *r = json_object();
    json_object_set_new(r, "401", response(p, "Missing or invalid bearer token", "Error"));
    json_object_set_new(r, "403", response(p, "The caller's tier may not do this", "Error"));
    if (body) {
        json_object_set_new(r, "409", response(p, "Conflict with an existing object or a partner limit", "Error"));
        json_object_set_new(r, "422", response(p, "Validation error", "HTTPValidationError"));
    }
    return r;
}

static json_t *param(const char *name, const char *in, const char *type, int required, const char *desc)
{
    return json_pack("{s:s,s:s,s:b,s:{s:s},s:s}", "name", name, "in", in, "required", required,
                     "schema", "type", type, "description", desc);
}

static json_t *crud_operation(apr_pool_t *p, const sk_resource *res, sk_handler_fn fn)
{
    json_t *op = json_object(), *resp, *params = json_array();
    const char *tag = schema_name(p, res, "");
    json_object_set_new(op, "tags", json_pack("[s]", tag));
    json_object_set_new(op, "security", json_pack("[{s:[]}]", "bearerAuth"));
    if (fn == sk_crud_list) {
        const sk_column *c;
        json_object_set_new(op, "summary", json_string(apr_psprintf(p, "List %s", res->name)));
        json_array_append_new(params, param("page", "query", "integer", 0, "Page number, from 1 (default 1)"));
        json_array_append_new(params, param("per_page", "query", "integer", 0, "Items per page, 1 to 100 (default 20)"));
        json_array_append_new(params, param("search", "query", "string", 0, "Case-insensitive prefix of a searchable field"));
        json_array_append_new(params, param("after", "query", "string", 0, "Cursor walk: empty to start, then the "
                                            "pagination.next_after of the previous answer (page is ignored)"));
        if (res->tenant_col)
            json_array_append_new(params, param("tenant_id", "query", "string", 0, "Only this tenant's"));
        if (res->tenant_col || res->partner_col)
            json_array_append_new(params, param("partner_id", "query", "string", 0, "Only this partner's (all its tenants)"));
        for (c = res->columns; c->name; c++)
            if ((c->flags & SK_C_FILTER) && strcmp(c->name, "tenant_id") && strcmp(c->name, "partner_id"))
                json_array_append_new(params, param(c->name, "query", c->type == SK_T_BOOL ? "boolean" : "string",
                                                    0, "Exact match"));
        resp = errors(p, 0);
        json_object_set_new(resp, "200", response(p, "A page of objects, in creation order", schema_name(p, res, "List")));
        json_object_set_new(resp, "422", response(p, "Invalid query parameter", "HTTPValidationError"));
    }
    else if (fn == sk_crud_create) {
        json_object_set_new(op, "summary", json_string(apr_psprintf(p, "Create a %s", res->singular)));
        json_object_set_new(op, "requestBody", json_pack("{s:b,s:{s:{s:o}}}", "required", 1, "content",
                            "application/json", "schema", ref(p, schema_name(p, res, "Create"))));
        resp = errors(p, 1);
        json_object_set_new(resp, "201", response(p, "Created", sk_resource_column(res, "client_secret_hash")
                                                                    ? schema_name(p, res, "Created")
                                                                    : schema_name(p, res, "")));
    }
    else {
        json_array_append_new(params, param(res->id_param, "path", "string", 1, "The object's id"));
        resp = errors(p, fn == sk_crud_patch);
        json_object_set_new(resp, "404", response(p, "No such object within the caller's reach", "Error"));
        if (fn == sk_crud_get) {
            json_object_set_new(op, "summary", json_string(apr_psprintf(p, "Get a %s", res->singular)));
            json_object_set_new(resp, "200", response(p, "The object", schema_name(p, res, "")));
        }
        else if (fn == sk_crud_patch) {
            json_object_set_new(op, "summary", json_string(apr_psprintf(p, "Update a %s", res->singular)));
            json_object_set_new(op, "requestBody", json_pack("{s:b,s:{s:{s:o}}}", "required", 1, "content",
                                "application/json", "schema", ref(p, schema_name(p, res, "Update"))));
            json_object_set_new(resp, "200", response(p, "The updated object", schema_name(p, res, "")));
        }
        else {
            json_object_set_new(op, "summary", json_string(apr_psprintf(p, "Delete a %s (soft)", res->singular)));
            json_object_set_new(resp, "204", response(p, "Deleted", NULL));
        }
    }
    json_object_set_new(op, "parameters", params);
    json_object_set_new(op, "responses", resp);
    return op;
}

static int is_crud(sk_handler_fn fn)
{
    return fn == sk_crud_list || fn == sk_crud_create || fn == sk_crud_get || fn == sk_crud_patch ||
           fn == sk_crud_delete;
}

static char *build(apr_pool_t *p)
{
    json_error_t jerr;
    json_t *doc = json_loads(sk_openapi_json, 0, &jerr), *paths, *schemas;
    const sk_route *const *t, *rt;
    char *text;
    if (!json_is_object(doc)) {
        json_decref(doc);
        doc = json_pack("{s:s,s:{s:s,s:s}}", "openapi", "3.1.0", "info", "title", "ScaiKey API", "version", "0");
    }
    if (!json_is_object(paths = json_object_get(doc, "paths")))
        json_object_set_new(doc, "paths", paths = json_object());
    if (!json_is_object(json_object_get(doc, "components")))
        json_object_set_new(doc, "components", json_object());
    if (!json_is_object(schemas = json_object_get(json_object_get(doc, "components"), "schemas")))
        json_object_set_new(json_object_get(doc, "components"), "schemas", schemas = json_object());

    for (t = sk_route_tables; *t; t++) {
        for (rt = *t; rt->method; rt++) {
            json_t *item = json_object_get(paths, rt->pattern);
            char *method = apr_pstrdup(p, rt->method), *m;
            for (m = method; *m; m++)
                *m = (char)apr_tolower(*m);
            if (!item)
                json_object_set_new(paths, rt->pattern, item = json_object());
            if (is_crud(rt->fn) && rt->data) {
                resource_schemas(p, rt->data, schemas);
                json_object_set_new(item, method, crud_operation(p, rt->data, rt->fn));
            }
            else if (!json_object_get(item, method)) {
                json_object_set_new(item, method, json_pack("{s:s,s:b,s:{s:{s:s}}}", "summary", rt->pattern,
                                    "x-undocumented", 1, "responses", "default", "description", "Undocumented"));
            }
        }
    }
    text = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(doc);
    return text;
}

int sk_api_openapi(sk_req *q)
{
    char *text;
    if (sk_config_production(q->cfg))
        return sk_fail(q, HTTP_NOT_FOUND, "Not Found");
    if (cache_lock)
        apr_thread_mutex_lock(cache_lock);
    if (!cached)
        cached = build(q->p);     /* malloc'd by jansson: kept for the life of the process */
    text = cached;
    if (cache_lock)
        apr_thread_mutex_unlock(cache_lock);
    if (!text)
        return sk_fail(q, HTTP_INTERNAL_SERVER_ERROR, "OpenAPI document unavailable");
    ap_set_content_type(q->r, "application/json");
    ap_set_content_length(q->r, (apr_off_t)strlen(text));
    if (!q->r->header_only)
        ap_rputs(text, q->r);
    return OK;
}
