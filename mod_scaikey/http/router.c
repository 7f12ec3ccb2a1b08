#include "http/router.h"
#include "http/response.h"
#include "startup.h"
#include "scaikey.h"

#include <http_protocol.h>
#include <http_request.h>
#include <apr_strings.h>

APLOG_USE_MODULE(scaikey);

/* Matches path against pattern segment by segment; fills params. */
static int match(apr_pool_t *p, const char *pattern, const char *path, apr_table_t *params)
{
    while (*pattern && *path) {
        if (*pattern != '/' || *path != '/')
            return 0;
        pattern++;
        path++;
        if (*pattern == '{') {
            const char *pe = strchr(pattern, '}');
            apr_size_t seglen = strcspn(path, "/");
            if (!pe || seglen == 0)
                return 0;
            apr_table_setn(params, apr_pstrndup(p, pattern + 1, (apr_size_t)(pe - pattern - 1)),
                           apr_pstrndup(p, path, seglen));
            pattern = pe + 1;
            path += seglen;
        }
        else {
            apr_size_t plen = strcspn(pattern, "/"), seglen = strcspn(path, "/");
            if (plen != seglen || strncmp(pattern, path, plen))
                return 0;
            pattern += plen;
            path += seglen;
        }
    }
    return *pattern == '\0' && *path == '\0';
}

static const char *normalise(apr_pool_t *p, const char *uri)
{
    apr_size_t n = strlen(uri);
    while (n > 1 && uri[n - 1] == '/')
        n--;
    return apr_pstrndup(p, uri, n);
}

static int authenticate(sk_req *q)
{
    int present;
    const char *token = sk_req_bearer(q, &present), *reason = NULL;
    sk_db *db;
    if (!token)
        return sk_fail_unauthenticated(q, present, present ? "bearer token required" : NULL), DONE;
    if (!(db = sk_req_db(q)))
        return sk_fail_unavailable(q), DONE;
    switch (sk_principal_for_api(q->p, sk_startup_keyring(), db, sk_config_platform_issuer(q->p, q->cfg),
                                     sk_config_clock_skew(q->cfg), token, &q->who, &reason)) {
    case SK_AUTH_OK:
        return OK;
    case SK_AUTH_UNAVAILABLE:
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, SKLOGNO(0301) "token check failed: %s", sk_db_error(db));
        return sk_fail_unavailable(q), DONE;
    default:
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, q->r, SKLOGNO(0302) "bearer token refused: %s", reason);
        return sk_fail_unauthenticated(q, 1, reason), DONE;
    }
}

const sk_route *const sk_route_tables[] = { sk_routes, sk_routes_admin, sk_routes_keys, sk_routes_mail, sk_routes_users, sk_routes_login,
                                            sk_routes_keysadmin, sk_routes_mfa, NULL };

int sk_dispatch(request_rec *r)
{
    sk_req *q = sk_req_make(r);
    const char *path = normalise(r->pool, r->uri);
    const sk_route *const *t, *rt, *found = NULL;
    int path_matched = 0;

    for (t = sk_route_tables; *t && !found; t++)
    for (rt = *t; rt->method; rt++) {
        apr_table_clear(q->path);
        if (!match(r->pool, rt->pattern, path, q->path))
            continue;
        path_matched = 1;
        if (!strcmp(rt->method, r->method) || (r->header_only && !strcmp(rt->method, "GET"))) {
            found = rt;
            break;
        }
    }
    if (!found) {
        if (path_matched) {
            const char *allow = NULL;
            for (t = sk_route_tables; *t; t++)
                for (rt = *t; rt->method; rt++) {
                    apr_table_t *ignored = apr_table_make(r->pool, 2);
                    if (match(r->pool, rt->pattern, path, ignored))
                        allow = allow ? apr_pstrcat(r->pool, allow, ", ", rt->method, NULL) : rt->method;
                }
            if (allow)
                apr_table_setn(r->err_headers_out, "Allow", allow);
            ap_discard_request_body(r);
            return sk_fail(q, HTTP_METHOD_NOT_ALLOWED, "Method Not Allowed");
        }
        ap_discard_request_body(r);
        return sk_fail(q, HTTP_NOT_FOUND, "Not Found");
    }
    if (!(found->flags & SK_R_NODB) && sk_startup_ensure(r->server, r->pool) != 0) {
        ap_discard_request_body(r);
        return sk_fail_unavailable(q);
    }
    /* the caller first: a request without a valid token learns nothing about its body */
    if ((found->flags & SK_R_BEARER) && authenticate(q) != OK) {
        ap_discard_request_body(r);
        return OK;
    }
    if (found->flags & SK_R_JSON) {
        if (sk_req_read_json(q) != OK)
            return OK;
    }
    else if (!(found->flags & SK_R_FORM) && ap_discard_request_body(r) != OK) {
        return OK;
    }
    q->data = found->data;
    return found->fn(q);
}
