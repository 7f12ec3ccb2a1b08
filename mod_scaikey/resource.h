/* Resource descriptors: one table per admin API resource drives validation, SQL, JSON output,
 * access decisions and audit. Adding a field to a resource is one line in api/resources.c. */
#ifndef SK_RESOURCE_H
#define SK_RESOURCE_H

#include "http/validate.h"

/* column flags */
#define SK_C_CREATE   0x0001   /* accepted on create */
#define SK_C_PATCH    0x0002   /* accepted on PATCH */
#define SK_C_REQUIRED 0x0004   /* required on create */
#define SK_C_NULLABLE 0x0008   /* may be set to null */
#define SK_C_HIDDEN   0x0010   /* never in responses (digests, hashes) */
#define SK_C_FILTER   0x0020   /* list filter ?name=value (exact) */
#define SK_C_SEARCH   0x0040   /* matched by ?search= (case-insensitive prefix) */
#define SK_C_NOCOL    0x0080   /* accepted in input but not a column (handled by the resource's hook) */
#define SK_C_LOWER    0x0100   /* search/filter on lower(column) */
#define SK_C_RW       (SK_C_CREATE | SK_C_PATCH)

typedef struct sk_column {
    const char *name;
    sk_type type;
    unsigned flags;
    long min, max;
    const char *const *choices;
    const char *sql_default;   /* default on create when absent (SQL expression), or NULL */
} sk_column;

typedef struct sk_resource sk_resource;

struct sk_resource {
    const char *name;          /* policy name and path segment: "users" */
    const char *table;
    const char *singular;      /* audit resource_type and messages: "user" */
    const char *path;          /* "/api/v1/admin/users" */
    const char *id_param;      /* "user_id" */
    const sk_column *columns;
    /* where a row lives */
    const char *tenant_col;    /* column naming the row's tenant ("tenant_id"; "id" for tenants); NULL if none */
    const char *partner_col;   /* column naming the row's partner directly, or NULL */
    const char *scope_col;     /* applications: "scope" (GLOBAL apps are visible to every admin) */
    const char *role_col;      /* users: "role" */
    const char *order;         /* stable list order, e.g. "t.created_at, t.id" */
    /* unique constraint name -> conflict message */
    const char *const *conflicts;   /* pairs: constraint, message; NULL-terminated */
    const void *hooks;         /* the API layer's special handling (api/crud.h) */
};

extern const sk_resource sk_res_partners, sk_res_tenants, sk_res_users, sk_res_groups,
                         sk_res_applications, sk_res_idps, sk_res_agents;

const sk_column *sk_resource_column(const sk_resource *res, const char *name);

#endif
