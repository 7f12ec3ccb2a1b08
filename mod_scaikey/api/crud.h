/* Generic admin API handlers for descriptor-driven resources: list, create, get, patch, delete. */
#ifndef SK_API_CRUD_H
#define SK_API_CRUD_H

#include "resource.h"
#include "http/request.h"
#include "core/policy.h"

typedef struct sk_crud_hooks {
    /* After validation: may add computed columns to values ("*column": value), fix *w, add
     * errors to errs. Returns OK, or DONE when it has answered the request itself. */
    int (*prepare_create)(sk_req *q, json_t *values, sk_where *w, json_t *errs);
    /* current is the row as shown ("o"), w where it lives. */
    int (*prepare_update)(sk_req *q, json_t *current, const sk_where *w, json_t *values, json_t *errs);
    /* Inside the write's transaction. May add members to reply (a secret shown once). */
    sk_db_status (*after_create)(sk_req *q, sk_db *db, json_t *row, json_t *reply);
    sk_db_status (*after_update)(sk_req *q, sk_db *db, json_t *before, json_t *row);
    /* Before a delete; OK, or DONE when it has answered (e.g. refusing to delete oneself). */
    int (*prepare_delete)(sk_req *q, json_t *row);
    sk_db_status (*after_delete)(sk_req *q, sk_db *db, json_t *row);
} sk_crud_hooks;

/* Route handlers; the resource is the route's data. */
int sk_crud_list(sk_req *q);
int sk_crud_create(sk_req *q);
int sk_crud_get(sk_req *q);
int sk_crud_patch(sk_req *q);
int sk_crud_delete(sk_req *q);

/* Shared by special actions: checks the admin gate, answers 403 when refused. OK or DONE. */
int sk_admin_gate(sk_req *q, int write);
/* Loads an object the caller may see: OK with *row ({"o","w"}) and *w, or DONE after a 404/503. */
int sk_admin_load(sk_req *q, const sk_resource *res, const char *id, json_t **row, sk_where *w);
/* Answers for a failed write: 409 on conflicts, 422 on invalid data, 503 otherwise. */
int sk_fail_write(sk_req *q, const sk_resource *res, sk_db *db, sk_db_status st);
/* Page/per_page from the query: OK, or DONE after a 422. */
int sk_page_params(sk_req *q, int *page, int *per_page);
/* {"items": items, "pagination": {...}} (items stolen). */
json_t *sk_paginated(json_t *items, long long total, int page, int per_page);

#endif
