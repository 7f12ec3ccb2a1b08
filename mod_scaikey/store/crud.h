/* Generic statements of the admin API resources, built from their descriptors. */
#ifndef SK_STORE_CRUD_H
#define SK_STORE_CRUD_H

#include "resource.h"
#include "store/db.h"
#include "core/policy.h"

typedef struct sk_list_spec {
    sk_reach reach;            /* rows outside it are not listed */
    const char *reach_tenant_partner; /* a tenant_admin's partner (for PARTNER applications) */
    apr_table_t *filters;      /* column -> value; "tenant_id" and "partner_id" follow the hierarchy */
    const char *search;        /* case-insensitive prefix of any SK_C_SEARCH column */
    int page, per_page;
    const char *after;         /* keyset cursor: the rows after this id (page is then ignored) */
} sk_list_spec;

/* {"o": the row as the API shows it, "w": {tenant_id, partner_id, scope, role, id}} */
sk_db_status sk_store_get(sk_db *db, const sk_resource *res, const char *id, json_t **row);
/* {"total": n, "items": [...]} */
sk_db_status sk_store_list(sk_db *db, const sk_resource *res, const sk_list_spec *spec, json_t **out);
/* values: column -> JSON value; only columns of the descriptor (or "*"-prefixed raw columns
 * that a hook computed, e.g. "*password_hash"). Returns the new row like sk_crud_get. */
sk_db_status sk_store_insert(sk_db *db, const sk_resource *res, json_t *values, json_t **row);
sk_db_status sk_store_update(sk_db *db, const sk_resource *res, const char *id, json_t *values, json_t **row);
sk_db_status sk_store_delete(sk_db *db, const sk_resource *res, const char *id);

#endif
