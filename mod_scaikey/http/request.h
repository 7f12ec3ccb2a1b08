/* One API request as handlers see it: parsed path, query and JSON body, the caller, the store. */
#ifndef SK_HTTP_REQUEST_H
#define SK_HTTP_REQUEST_H

#include <httpd.h>
#include <jansson.h>
#include "config.h"
#include "store/db.h"
#include "core/principal.h"
#include "core/audit.h"

typedef struct sk_req {
    request_rec *r;
    apr_pool_t *p;
    sk_config *cfg;
    apr_table_t *path;          /* {name} segments of the route pattern */
    apr_table_t *query;         /* decoded query arguments */
    json_t *body;               /* JSON object for routes that read one (owned: freed with the pool) */
    apr_table_t *form;          /* form fields for routes that read a form */
    const char *ip;             /* client IP (as mod_remoteip sees it) */
    const char *user_agent;
    const char *request_id;
    sk_principal *who;          /* set for routes that require a caller */
    sk_db *db;                  /* acquired on first use */
    const void *data;           /* the route's data */
} sk_req;

sk_req *sk_req_make(request_rec *r);

/* The request's database connection; NULL when the database is unreachable. */
sk_db *sk_req_db(sk_req *q);

/* Reads and parses the JSON body. Returns OK, or the status of the error response it sent
 * (413, 415, 422). */
int sk_req_read_json(sk_req *q);

/* Reads an application/x-www-form-urlencoded body into q->form. OK, or DONE after an error
 * response made by err_fn (the OAuth endpoints answer in RFC 6749's shape). */
int sk_req_read_form(sk_req *q, int (*err_fn)(sk_req *q, int status, const char *error, const char *desc));

/* Bearer credential from the Authorization header, or NULL. *scheme_ok is 0 when a header with
 * another scheme was sent. */
const char *sk_req_bearer(sk_req *q, int *present);

/* An audit record pre-filled with the request's IP, user agent, request id and caller. */
sk_audit *sk_req_audit(sk_req *q, const char *action, const char *result);
/* The same with user (when not NULL) as the actor: its id, email, tenant and partner; actor_type
 * NULL: "admin" for any role but "user", else "user". */
sk_audit *sk_req_audit_user(sk_req *q, const char *action, const char *result, json_t *user,
                            const char *actor_type);

const char *sk_req_query(sk_req *q, const char *name);
const char *sk_req_param(sk_req *q, const char *name);

#endif
