/* The admin API resources: their fields, where their rows live, and their special handling.
 * Adding a field to a resource is one line in its column table. */
#include "api/crud.h"
#include "http/response.h"
#include "core/secrets.h"
#include "core/password.h"
#include "core/pooljson.h"
#include "scaikey.h"
#include "core/jsonget.h"

#include <apr_strings.h>
#include <apr_lib.h>
#include <http_protocol.h>
#include <string.h>

static const char *const status_values[] = { "ACTIVE", "SUSPENDED", NULL };
static const char *const user_status_values[] = { "ACTIVE", "SUSPENDED", "PENDING", "LOCKED", NULL };
static const char *const role_values[] = { "user", "tenant_admin", "partner_admin", "super_admin", NULL };
static const char *const group_types[] = { "SECURITY", "DISTRIBUTION_LIST", NULL };
static const char *const app_types[] = { "WEB", "SERVICE", "SPA", "NATIVE", NULL };
static const char *const app_scopes[] = { "GLOBAL", "PARTNER", "TENANT", NULL };
static const char *const idp_types[] = { "OIDC", "SAML", "LDAP", "ENTRA_ID", "GOOGLE", NULL };
static const char *const sources[] = { "LOCAL", "OIDC", "SAML", "LDAP", "ENTRA_ID", "GOOGLE", "SCIM", NULL };

#define NAME(flags)  { "name", SK_T_STRING, (flags), 1, 200 }
#define TEXT(n)      { n, SK_T_STRING, SK_C_RW | SK_C_NULLABLE, 0, 1000 }
#define JSONOBJ(n)   { n, SK_T_OBJECT, SK_C_RW, 0, 0 }
#define LIST(n)      { n, SK_T_STRLIST, SK_C_RW, 0, 100 }
#define READONLY(n, t) { n, t, 0 }

const sk_column *sk_resource_column(const sk_resource *res, const char *name)
{
    const sk_column *c;
    for (c = res->columns; c->name; c++)
        if (!strcmp(c->name, name))
            return c;
    return NULL;
}

static int refuse(sk_req *q, int status, const char *detail)
{
    sk_fail(q, status, detail);
    return DONE;
}

/* Counts rows against a partner limit, inside the transaction, with the partner row locked so
 * concurrent creations are counted one after the other. */
static sk_db_status within_limit(sk_req *q, sk_db *db, const char *label, const char *arg, const char *what)
{
    const char *ok = NULL;
    sk_db_status st = SK_QV(db, label, &ok, arg);
    if (st == SK_DB_NOTFOUND)
        return SK_DB_OK;                    /* no partner, no limit */
    if (st != SK_DB_OK)
        return st;
    if (strcmp(ok, "true")) {
        apr_table_setn(q->r->notes, "scaikey-limit", apr_psprintf(q->p, "The partner's limit %s is reached", what));
        return SK_DB_LIMIT;
    }
    return SK_DB_OK;
}

/* ---------------- partners ---------------- */

static const sk_column partner_columns[] = {
    NAME(SK_C_RW | SK_C_REQUIRED | SK_C_SEARCH),
    { "slug", SK_T_SLUG, SK_C_RW | SK_C_REQUIRED | SK_C_SEARCH, 1, 63 },
    { "status", SK_T_ENUM, SK_C_RW | SK_C_FILTER, 0, 0, status_values },
    { "contact_email", SK_T_EMAIL, SK_C_RW | SK_C_NULLABLE, 3, 320 },
    { "max_tenants", SK_T_INT, SK_C_RW | SK_C_NULLABLE, 0, 1000000 },
    { "max_users_per_tenant", SK_T_INT, SK_C_RW | SK_C_NULLABLE, 0, 100000000 },
    { "max_applications_per_tenant", SK_T_INT, SK_C_RW | SK_C_NULLABLE, 0, 1000000 },
    JSONOBJ("settings"),
    JSONOBJ("branding"),
    { NULL }
};
static const char *const partner_conflicts[] = { "partners_slug_key", "A partner with this slug already exists", NULL };

const sk_resource sk_res_partners = {
    "partners", "partners", "partner", "/api/v1/admin/partners", "partner_id", partner_columns,
    NULL, NULL, NULL, NULL, NULL, partner_conflicts, NULL
};

/* ---------------- tenants ---------------- */

static const sk_column tenant_columns[] = {
    { "partner_id", SK_T_STRING, SK_C_RW | SK_C_NULLABLE | SK_C_FILTER, 1, 64 },
    NAME(SK_C_RW | SK_C_REQUIRED | SK_C_SEARCH),
    { "slug", SK_T_SLUG, SK_C_RW | SK_C_REQUIRED | SK_C_SEARCH, 1, 63 },
    { "status", SK_T_ENUM, SK_C_RW | SK_C_FILTER, 0, 0, status_values },
    { "contact_email", SK_T_EMAIL, SK_C_RW | SK_C_NULLABLE, 3, 320 },
    { "custom_domain", SK_T_STRING, SK_C_RW | SK_C_NULLABLE, 1, 253 },
    JSONOBJ("settings"),
    JSONOBJ("branding"),
    { NULL }
};
static const char *const tenant_conflicts[] = {
    "tenants_slug_key", "A tenant with this slug already exists",
    "tenants_custom_domain_key", "A tenant with this custom domain already exists", NULL };

static int tenant_prepare_create(sk_req *q, json_t *values, sk_where *w, json_t *errs)
{
    /* a partner_admin's tenants belong to their partner */
    if (!json_object_get(values, "partner_id") && sk_role_rank(q->who->role) == 2 && q->who->partner_id) {
        json_object_set_new(values, "partner_id", json_string(q->who->partner_id));
        w->partner_id = q->who->partner_id;
    }
    return OK;
}

static sk_db_status tenant_after_create(sk_req *q, sk_db *db, json_t *row, json_t *reply)
{
    const char *pid = sk_jstr(json_object_get(row, "w"), "partner_id");
    return pid ? within_limit(q, db, "partner_tenant_room", pid, "max_tenants") : SK_DB_OK;
}

static int tenant_prepare_update(sk_req *q, json_t *cur, const sk_where *w, json_t *values, json_t *errs)
{
    /* a tenant_admin tends their own tenant's name, contact, settings and branding only */
    if (sk_role_rank(q->who->role) == 1 && q->who->user_id) {
        const char *key;
        json_t *v;
        json_object_foreach(values, key, v)
            if (strcmp(key, "name") && strcmp(key, "contact_email") && strcmp(key, "settings") &&
                strcmp(key, "branding"))
                return refuse(q, HTTP_FORBIDDEN, "Access denied");
    }
    if (json_object_get(values, "partner_id") && !sk_policy_reach(q->who).all &&
        !json_equal(json_object_get(values, "partner_id"), json_object_get(cur, "partner_id")))
        return refuse(q, HTTP_FORBIDDEN, "Access denied");
    return OK;
}

static sk_db_status tenant_after_update(sk_req *q, sk_db *db, json_t *before, json_t *row)
{
    const char *pid = sk_jstr(json_object_get(row, "w"), "partner_id");
    const char *old = sk_jstr(json_object_get(before, "w"), "partner_id");
    if (pid && (!old || strcmp(pid, old)))
        return within_limit(q, db, "partner_tenant_room", pid, "max_tenants");
    return SK_DB_OK;
}

static const sk_crud_hooks tenant_hooks = {
    tenant_prepare_create, tenant_prepare_update, tenant_after_create, tenant_after_update, NULL, NULL
};

const sk_resource sk_res_tenants = {
    "tenants", "tenants", "tenant", "/api/v1/admin/tenants", "tenant_id", tenant_columns,
    "id", "partner_id", NULL, NULL, NULL, tenant_conflicts, &tenant_hooks
};

/* ---------------- users ---------------- */

static const sk_column user_columns[] = {
    { "tenant_id", SK_T_STRING, SK_C_CREATE | SK_C_NULLABLE, 1, 64 },
    { "partner_id", SK_T_STRING, SK_C_CREATE | SK_C_NULLABLE, 1, 64 },
    { "email", SK_T_EMAIL, SK_C_RW | SK_C_REQUIRED | SK_C_SEARCH, 3, 320 },
    { "password", SK_T_STRING, SK_C_CREATE | SK_C_NOCOL, 8, 1024 },
    { "role", SK_T_ENUM, SK_C_RW | SK_C_FILTER, 0, 0, role_values },
    { "status", SK_T_ENUM, SK_C_RW | SK_C_FILTER, 0, 0, user_status_values },
    { "first_name", SK_T_STRING, SK_C_RW | SK_C_NULLABLE | SK_C_SEARCH, 0, 200 },
    { "last_name", SK_T_STRING, SK_C_RW | SK_C_NULLABLE | SK_C_SEARCH, 0, 200 },
    { "display_name", SK_T_STRING, SK_C_RW | SK_C_NULLABLE | SK_C_SEARCH, 0, 200 },
    TEXT("title"),
    TEXT("department"),
    { "manager_id", SK_T_STRING, SK_C_RW | SK_C_NULLABLE, 1, 64 },
    { "ou_id", SK_T_STRING, SK_C_RW | SK_C_NULLABLE, 1, 64 },
    TEXT("phone"),
    TEXT("locale"),
    TEXT("timezone"),
    TEXT("employee_id"),
    TEXT("external_id"),
    { "identity_source", SK_T_ENUM, SK_C_RW | SK_C_FILTER, 0, 0, sources },
    JSONOBJ("custom_attributes"),
    { "email_verified", SK_T_BOOL, SK_C_RW },
    { "is_service_account", SK_T_BOOL, SK_C_CREATE },
    { "must_change_password", SK_T_BOOL, SK_C_RW },
    READONLY("mfa_enabled", SK_T_BOOL),
    READONLY("last_login_at", SK_T_TIME),
    { "password_hash", SK_T_STRING, SK_C_HIDDEN },
    { NULL }
};
static const char *const user_conflicts[] = {
    "users_tenant_email_key", "A user with this email already exists in this tenant",
    "users_platform_email_key", "A platform account with this email already exists", NULL };

/* where an account of this role must live */
static void user_placement(sk_req *q, json_t *values, const char *role, json_t *errs)
{
    int rank = sk_role_rank(role);
    if (rank <= 1 && !sk_jstr(values, "tenant_id"))
        json_array_append_new(errs, sk_verr("body", "tenant_id", "A user or tenant_admin needs a tenant_id",
                                            "missing"));
    if (rank == 2 && !sk_jstr(values, "partner_id"))
        json_array_append_new(errs, sk_verr("body", "partner_id", "A partner_admin needs a partner_id", "missing"));
    if (rank >= 2 && sk_jstr(values, "tenant_id"))
        json_array_append_new(errs, sk_verr("body", "tenant_id", "Only users and tenant admins belong to a tenant",
                                            "value_error"));
    if (rank == 3 && sk_jstr(values, "partner_id"))
        json_array_append_new(errs, sk_verr("body", "partner_id", "A super_admin belongs to no partner",
                                            "value_error"));
    if (rank <= 1 && sk_jstr(values, "partner_id"))
        json_array_append_new(errs, sk_verr("body", "partner_id", "A tenant's user takes its partner from the tenant",
                                            "value_error"));
}

static int user_prepare_create(sk_req *q, json_t *values, sk_where *w, json_t *errs)
{
    const char *role = sk_jstr(values, "role") ? sk_jstr(values, "role") : "user";
    const char *pw = sk_jstr(values, "password");
    if (!sk_policy_may_grant(q->who, role))
        return refuse(q, HTTP_FORBIDDEN, "Access denied: this role can only be granted by a higher tier");
    user_placement(q, values, role, errs);
    if (pw) {
        const char *hash = sk_password_hash(q->p, pw);
        if (!hash)
            return refuse(q, HTTP_SERVICE_UNAVAILABLE, "Service temporarily unavailable");
        json_object_set_new(values, "*password_hash", json_string(hash));
        json_object_del(values, "password");
    }
    return OK;
}

static sk_db_status user_after_create(sk_req *q, sk_db *db, json_t *row, json_t *reply)
{
    const char *tid = sk_jstr(json_object_get(row, "w"), "tenant_id");
    return tid ? within_limit(q, db, "partner_user_room", tid, "max_users_per_tenant") : SK_DB_OK;
}

static int user_prepare_update(sk_req *q, json_t *cur, const sk_where *w, json_t *values, json_t *errs)
{
    const char *role = sk_jstr(values, "role");
    if (role && strcmp(role, sk_jstr(cur, "role") ? sk_jstr(cur, "role") : "")) {
        json_t *placed = json_pack("{s:O?,s:O?}", "tenant_id", json_object_get(cur, "tenant_id"),
                                   "partner_id", json_object_get(cur, "partner_id"));
        if (!sk_policy_may_grant(q->who, role)) {
            json_decref(placed);
            return refuse(q, HTTP_FORBIDDEN, "Access denied: this role can only be granted by a higher tier");
        }
        user_placement(q, placed, role, errs);
        json_decref(placed);
    }
    if (q->who->user_id && !strcmp(q->who->user_id, sk_jstr(cur, "id")) &&
        (role || (sk_jstr(values, "status") && strcmp(sk_jstr(values, "status"), "ACTIVE"))))
        return refuse(q, HTTP_CONFLICT, "You cannot change your own role or status");
    return OK;
}

static sk_db_status user_after_update(sk_req *q, sk_db *db, json_t *before, json_t *row)
{
    const char *was = sk_jstr(json_object_get(before, "o"), "status"), *now = sk_jstr(json_object_get(row, "o"), "status");
    const char *n = NULL;
    /* a suspended or locked account's sessions end now */
    if (now && strcmp(now, "ACTIVE") && (!was || !strcmp(was, "ACTIVE")))
        return SK_QV(db, "sessions_revoke_user", &n, sk_jstr(json_object_get(row, "o"), "id"), "account_disabled");
    return SK_DB_OK;
}

static int user_prepare_delete(sk_req *q, json_t *row)
{
    if (q->who->user_id && !strcmp(q->who->user_id, sk_jstr(json_object_get(row, "o"), "id")))
        return refuse(q, HTTP_CONFLICT, "You cannot delete your own account");
    return OK;
}

static sk_db_status user_after_delete(sk_req *q, sk_db *db, json_t *row)
{
    const char *n = NULL;
    return SK_QV(db, "sessions_revoke_user", &n, sk_jstr(json_object_get(row, "o"), "id"), "account_deleted");
}

static const sk_crud_hooks user_hooks = {
    user_prepare_create, user_prepare_update, user_after_create, user_after_update, user_prepare_delete,
    user_after_delete
};

const sk_resource sk_res_users = {
    "users", "users", "user", "/api/v1/admin/users", "user_id", user_columns,
    "tenant_id", "partner_id", NULL, "role", NULL, user_conflicts, &user_hooks
};

/* ---------------- groups ---------------- */

static const sk_column group_columns[] = {
    { "tenant_id", SK_T_STRING, SK_C_CREATE, 1, 64 },
    NAME(SK_C_RW | SK_C_REQUIRED | SK_C_SEARCH),
    TEXT("description"),
    { "group_type", SK_T_ENUM, SK_C_RW | SK_C_FILTER, 0, 0, group_types },
    TEXT("external_id"),
    { NULL }
};

static int needs_tenant(sk_req *q, json_t *values, sk_where *w, json_t *errs)
{
    if (!sk_jstr(values, "tenant_id") && !json_array_size(errs))
        json_array_append_new(errs, sk_verr("body", "tenant_id", "Field required", "missing"));
    return OK;
}

static const sk_crud_hooks tenant_owned_hooks = { needs_tenant, NULL, NULL, NULL, NULL, NULL };

const sk_resource sk_res_groups = {
    "groups", "groups", "group", "/api/v1/admin/groups", "group_id", group_columns,
    "tenant_id", NULL, NULL, NULL, NULL, NULL, &tenant_owned_hooks
};

/* ---------------- applications ---------------- */

static const sk_column app_columns[] = {
    NAME(SK_C_RW | SK_C_REQUIRED | SK_C_SEARCH),
    TEXT("description"),
    { "application_type", SK_T_ENUM, SK_C_CREATE | SK_C_REQUIRED | SK_C_FILTER, 0, 0, app_types },
    { "scope", SK_T_ENUM, SK_C_CREATE | SK_C_REQUIRED | SK_C_FILTER, 0, 0, app_scopes },
    { "partner_id", SK_T_STRING, SK_C_CREATE | SK_C_NULLABLE, 1, 64 },
    { "tenant_id", SK_T_STRING, SK_C_CREATE | SK_C_NULLABLE, 1, 64 },
    READONLY("client_id", SK_T_STRING),
    LIST("allowed_scopes"),
    LIST("redirect_uris"),
    LIST("allowed_origins"),
    LIST("post_logout_redirect_uris"),
    LIST("grant_types"),
    { "backchannel_logout_uri", SK_T_URL, SK_C_RW | SK_C_NULLABLE, 1, 2000 },
    { "token_lifetime", SK_T_INT, SK_C_RW, 60, 86400 },
    { "refresh_token_lifetime", SK_T_INT, SK_C_RW, 300, 31536000 },
    { "token_exchange_allowed", SK_T_BOOL, SK_C_RW },
    { "require_consent", SK_T_BOOL, SK_C_RW },
    { "status", SK_T_ENUM, SK_C_RW | SK_C_FILTER, 0, 0, status_values },
    READONLY("secret_rotated_at", SK_T_TIME),
    { "client_secret_hash", SK_T_STRING, SK_C_HIDDEN },
    { NULL }
};
static const char *const app_conflicts[] = { "applications_client_id_key", "client_id already in use", NULL };

/* exact redirect URIs: absolute, no fragment, no wildcard */
static int valid_redirect(const char *u)
{
    const char *colon = strchr(u, ':'), *c;
    if (!colon || colon == u || strchr(u, '#') || strchr(u, '*'))
        return 0;
    for (c = u; c < colon; c++)
        if (!(apr_isalnum(*c) || *c == '+' || *c == '-' || *c == '.'))
            return 0;
    for (c = u; *c; c++)
        if ((unsigned char)*c <= 0x20 || *c == 0x7f)
            return 0;
    if (!strncasecmp(u, "javascript:", 11) || !strncasecmp(u, "data:", 5) || !strncasecmp(u, "vbscript:", 9) ||
        !strncasecmp(u, "file:", 5))
        return 0;
    if (!strncasecmp(u, "http:", 5) || !strncasecmp(u, "https:", 6)) {
        const char *host = colon + 3;
        if (strncmp(colon, "://", 3) || !*host || *host == '/' || *host == '?' || *host == ':' || *host == '@')
            return 0;
    }
    return 1;
}

static void check_uris(json_t *values, const char *field, json_t *errs)
{
    size_t i;
    json_t *v, *list = json_object_get(values, field);
    json_array_foreach(list, i, v)
        if (!valid_redirect(json_string_value(v))) {
            json_array_append_new(errs, sk_verr("body", field, "Each entry must be an absolute URI without "
                                                "fragment or wildcard", "url_parsing"));
            return;
        }
}

static int confidential(const char *type)
{
    return type && (!strcmp(type, "WEB") || !strcmp(type, "SERVICE"));
}

/* A new client secret: shown once (kept in the request pool for after_create), digest stored. */
static void new_secret(sk_req *q, json_t *values)
{
    const char *secret = sk_random_token(q->p, "sks_", 32);
    apr_pool_userdata_setn(secret, "scaikey.secret", NULL, q->p);
    json_object_set_new(values, "client_secret_hash", json_string(sk_sha256_hex(q->p, secret)));
}

static sk_db_status reveal_secret(sk_req *q, json_t *reply)
{
    void *secret = NULL;
    apr_pool_userdata_get(&secret, "scaikey.secret", q->p);
    if (secret)
        json_object_set_new(reply, "client_secret", json_string(secret));
    return SK_DB_OK;
}

static int app_prepare_create(sk_req *q, json_t *values, sk_where *w, json_t *errs)
{
    const char *scope = sk_jstr(values, "scope"), *type = sk_jstr(values, "application_type");
    if (!scope)
        return OK;
    if (!strcmp(scope, "PARTNER") && !sk_jstr(values, "partner_id") && sk_role_rank(q->who->role) == 2 &&
        q->who->partner_id) {
        json_object_set_new(values, "partner_id", json_string(q->who->partner_id));
        w->partner_id = q->who->partner_id;
    }
    if (!strcmp(scope, "GLOBAL") && (sk_jstr(values, "tenant_id") || sk_jstr(values, "partner_id")))
        json_array_append_new(errs, sk_verr("body", "scope", "A GLOBAL application has no partner_id or tenant_id",
                                            "value_error"));
    if (!strcmp(scope, "PARTNER") && (!sk_jstr(values, "partner_id") || sk_jstr(values, "tenant_id")))
        json_array_append_new(errs, sk_verr("body", "partner_id", "A PARTNER application needs a partner_id and no "
                                            "tenant_id", "value_error"));
    if (!strcmp(scope, "TENANT") && (!sk_jstr(values, "tenant_id") || sk_jstr(values, "partner_id")))
        json_array_append_new(errs, sk_verr("body", "tenant_id", "A TENANT application needs a tenant_id and no "
                                            "partner_id", "value_error"));
    w->scope = scope;
    check_uris(values, "redirect_uris", errs);
    check_uris(values, "post_logout_redirect_uris", errs);
    json_object_set_new(values, "client_id", json_string(sk_random_id(q->p, "app_")));
    if (confidential(type))
        new_secret(q, values);
    return OK;
}

static sk_db_status app_after_create(sk_req *q, sk_db *db, json_t *row, json_t *reply)
{
    const char *tid = sk_jstr(json_object_get(row, "w"), "tenant_id");
    sk_db_status st = tid ? within_limit(q, db, "partner_app_room", tid, "max_applications_per_tenant") : SK_DB_OK;
    if (st == SK_DB_OK)
        st = reveal_secret(q, reply);
    return st;
}

static int app_prepare_update(sk_req *q, json_t *cur, const sk_where *w, json_t *values, json_t *errs)
{
    check_uris(values, "redirect_uris", errs);
    check_uris(values, "post_logout_redirect_uris", errs);
    return OK;
}

static const sk_crud_hooks app_hooks = {
    app_prepare_create, app_prepare_update, app_after_create, NULL, NULL, NULL
};

const sk_resource sk_res_applications = {
    "applications", "applications", "application", "/api/v1/admin/applications", "app_id", app_columns,
    "tenant_id", "partner_id", "scope", NULL, NULL, app_conflicts, &app_hooks
};

/* ---------------- identity providers ---------------- */

static const sk_column idp_columns[] = {
    { "tenant_id", SK_T_STRING, SK_C_CREATE, 1, 64 },
    NAME(SK_C_RW | SK_C_REQUIRED | SK_C_SEARCH),
    { "provider_type", SK_T_ENUM, SK_C_CREATE | SK_C_REQUIRED | SK_C_FILTER, 0, 0, idp_types },
    { "enabled", SK_T_BOOL, SK_C_RW | SK_C_FILTER },
    JSONOBJ("config"),
    JSONOBJ("attribute_mapping"),
    JSONOBJ("group_mapping"),
    { "display_order", SK_T_INT, SK_C_RW, 0, 10000 },
    { "client_secret", SK_T_STRING, SK_C_RW | SK_C_NOCOL, 1, 4096 },
    READONLY("last_sync_at", SK_T_TIME),
    READONLY("last_sync_status", SK_T_STRING),
    { NULL }
};

/* the provider's own secret (client secret, bind password) is sealed with the master key */
static int seal_idp_secret(sk_req *q, json_t *values, json_t *errs)
{
    const char *secret = sk_jstr(values, "client_secret");
    unsigned char *sealed;
    apr_size_t len;
    if (!secret)
        return OK;
    if (sk_aead_seal(q->p, q->cfg->master_key, "identity_provider", (const unsigned char *)secret, strlen(secret),
                     &sealed, &len) != 0)
        return refuse(q, HTTP_SERVICE_UNAVAILABLE, "Service temporarily unavailable");
    json_object_set_new(values, "*secret_sealed", json_string(sk_b64_encode(q->p, sealed, len)));
    json_object_del(values, "client_secret");
    return OK;
}

static int idp_prepare_create(sk_req *q, json_t *values, sk_where *w, json_t *errs)
{
    needs_tenant(q, values, w, errs);
    return seal_idp_secret(q, values, errs);
}

static int idp_prepare_update(sk_req *q, json_t *cur, const sk_where *w, json_t *values, json_t *errs)
{
    return seal_idp_secret(q, values, errs);
}

static const sk_crud_hooks idp_hooks = { idp_prepare_create, idp_prepare_update, NULL, NULL, NULL, NULL };

const sk_resource sk_res_idps = {
    "identity_providers", "identity_providers", "identity_provider", "/api/v1/admin/identity-providers",
    "idp_id", idp_columns, "tenant_id", NULL, NULL, NULL, NULL, NULL, &idp_hooks
};

/* ---------------- MCP agents ---------------- */

static const sk_column agent_columns[] = {
    { "tenant_id", SK_T_STRING, SK_C_CREATE, 1, 64 },
    NAME(SK_C_RW | SK_C_REQUIRED | SK_C_SEARCH),
    TEXT("description"),
    { "agent_type", SK_T_STRING, SK_C_RW | SK_C_FILTER, 1, 64 },
    { "status", SK_T_ENUM, SK_C_RW | SK_C_FILTER, 0, 0, status_values },
    READONLY("client_id", SK_T_STRING),
    LIST("allowed_tools"),
    LIST("allowed_scopes"),
    { "rate_limit_rpm", SK_T_INT, SK_C_RW | SK_C_NULLABLE, 1, 1000000 },
    { "owner_user_id", SK_T_STRING, SK_C_RW | SK_C_NULLABLE, 1, 64 },
    JSONOBJ("metadata"),
    READONLY("secret_rotated_at", SK_T_TIME),
    READONLY("last_used_at", SK_T_TIME),
    { "client_secret_hash", SK_T_STRING, SK_C_HIDDEN },
    { NULL }
};
static const char *const agent_conflicts[] = { "mcp_agents_client_id_key", "client_id already in use", NULL };

static int agent_prepare_create(sk_req *q, json_t *values, sk_where *w, json_t *errs)
{
    needs_tenant(q, values, w, errs);
    json_object_set_new(values, "client_id", json_string(sk_random_id(q->p, "mcp_")));
    new_secret(q, values);
    return OK;
}

static sk_db_status agent_after_create(sk_req *q, sk_db *db, json_t *row, json_t *reply)
{
    return reveal_secret(q, reply);
}

static const sk_crud_hooks agent_hooks = { agent_prepare_create, NULL, agent_after_create, NULL, NULL, NULL };

const sk_resource sk_res_agents = {
    "agents", "mcp_agents", "agent", "/api/v1/admin/agents", "agent_id", agent_columns,
    "tenant_id", NULL, NULL, NULL, NULL, agent_conflicts, &agent_hooks
};
