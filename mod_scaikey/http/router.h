/* The route table: METHOD + path pattern -> handler, with what the route needs from the request. */
#ifndef SK_HTTP_ROUTER_H
#define SK_HTTP_ROUTER_H

#include "http/request.h"

typedef int (*sk_handler_fn)(sk_req *q);

#define SK_R_PUBLIC   0x00   /* no caller required */
#define SK_R_JSON     0x01   /* reads a JSON object body */
#define SK_R_BEARER   0x02   /* requires a valid bearer token (q->who) */
#define SK_R_NODB     0x04   /* answers without the store */
#define SK_R_FORM     0x08   /* reads a form body itself (OAuth endpoints) */

typedef struct sk_route {
    const char *method;
    const char *pattern;     /* "/api/v1/admin/users/{user_id}"; a trailing slash is optional */
    sk_handler_fn fn;
    unsigned flags;
    const void *data;        /* handed to the handler as q->data (a resource descriptor, ...) */
} sk_route;

/* Route tables, each ending with { NULL }: routes.c holds the core's and the generic resources',
 * routes_admin.c the admin API's special actions. */
extern const sk_route sk_routes[];
extern const sk_route sk_routes_admin[];
extern const sk_route sk_routes_keys[];
extern const sk_route sk_routes_keysadmin[];
extern const sk_route sk_routes_users[];
extern const sk_route sk_routes_mail[];
extern const sk_route sk_routes_login[];
extern const sk_route sk_routes_mfa[];
/* every route table, NULL-terminated (router.c) */
extern const sk_route *const sk_route_tables[];

/* Handles a request for the scaikey handler. */
int sk_dispatch(request_rec *r);

#endif
