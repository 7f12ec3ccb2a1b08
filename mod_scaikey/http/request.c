#include "http/request.h"
#include "http/response.h"
#include "scaikey.h"
#include "core/pooljson.h"
#include "core/secrets.h"
#include "core/jsonget.h"

#include <http_protocol.h>
#include <http_request.h>
#include <apr_strings.h>
#include <apr_optional.h>

APLOG_USE_MODULE(scaikey);

static APR_OPTIONAL_FN_TYPE(ap_dbd_acquire) *dbd_acquire;

static apr_table_t *parse_query(apr_pool_t *p, const char *args)
{
    apr_table_t *t = apr_table_make(p, 8);
    char *copy, *pair, *state;
    if (!args || !*args)
        return t;
    copy = apr_pstrdup(p, args);
    for (pair = apr_strtok(copy, "&", &state); pair; pair = apr_strtok(NULL, "&", &state)) {
        char *eq = strchr(pair, '='), *k = pair, *v = "";
        if (eq) {
            *eq = '\0';
            v = eq + 1;
        }
        if (ap_unescape_urlencoded(k) != OK || ap_unescape_urlencoded(v) != OK ||
            !sk_utf8_valid(k, strlen(k)) || !sk_utf8_valid(v, strlen(v)))
            continue;           /* an undecodable argument is ignored like an unknown one */
        if (*k)
            apr_table_add(t, k, v);
    }
    return t;
}

sk_req *sk_req_make(request_rec *r)
{
    sk_req *q = apr_pcalloc(r->pool, sizeof(*q));
    const char *id;
    q->r = r;
    q->p = r->pool;
    q->cfg = sk_config_get(r->server);
    q->path = apr_table_make(r->pool, 4);
    q->query = parse_query(r->pool, r->args);
    q->ip = r->useragent_ip ? r->useragent_ip : r->connection->client_ip;
    q->user_agent = apr_table_get(r->headers_in, "User-Agent");
    id = apr_table_get(r->subprocess_env, "UNIQUE_ID");
    q->request_id = id ? id : apr_psprintf(r->pool, "%" APR_TIME_T_FMT "-%" APR_PID_T_FMT "-%ld",
                                           r->request_time, getpid(), (long)r->connection->id);
    return q;
}

sk_db *sk_req_db(sk_req *q)
{
    ap_dbd_t *dbd;
    if (q->db)
        return q->db;
    if (!dbd_acquire)
        dbd_acquire = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_acquire);
    if (!dbd_acquire)
        return NULL;
    dbd = dbd_acquire(q->r);
    if (!dbd) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, SKLOGNO(0201) "no database connection");
        return NULL;
    }
    q->db = sk_db_wrap(q->p, dbd);
    return q->db;
}

const char *sk_req_query(sk_req *q, const char *name) { return apr_table_get(q->query, name); }
const char *sk_req_param(sk_req *q, const char *name) { return apr_table_get(q->path, name); }

static int is_json_type(const char *ct)
{
    apr_size_t n;
    if (!ct)
        return 1;                       /* no type given: read as JSON */
    while (*ct == ' ')
        ct++;
    n = strcspn(ct, "; ");
    return n == 16 && !strncasecmp(ct, "application/json", 16);
}

/* Reads the whole body, at most the configured size. 0, or the HTTP status of the problem
 * (413 too large, 400 unreadable). */
static int read_body(sk_req *q, char **out, apr_size_t *outlen)
{
    request_rec *r = q->r;
    apr_off_t max = sk_config_max_body(q->cfg);
    apr_size_t len = 0, cap = 8192;
    char *buf;
    const char *cl = apr_table_get(r->headers_in, "Content-Length");
    int rc;

    if ((rc = ap_setup_client_block(r, REQUEST_CHUNKED_DECHUNK)) != OK)
        return rc == HTTP_REQUEST_ENTITY_TOO_LARGE ? rc : HTTP_BAD_REQUEST;
    if (cl && apr_atoi64(cl) > max) {
        /* say so without reading it all; small excesses are drained so the connection stays usable */
        if (apr_atoi64(cl) > 16 * max)
            r->connection->keepalive = AP_CONN_CLOSE;
        else
            ap_discard_request_body(r);
        return HTTP_REQUEST_ENTITY_TOO_LARGE;
    }
    buf = apr_palloc(q->p, cap);
    if (ap_should_client_block(r)) {
        long n;
        for (;;) {
            if (len + 4096 + 1 > cap) {
                char *nb;
                cap *= 2;
                nb = apr_palloc(q->p, cap);
                memcpy(nb, buf, len);
                buf = nb;
            }
            n = ap_get_client_block(r, buf + len, cap - len - 1);
            if (n < 0) {
                r->connection->keepalive = AP_CONN_CLOSE;
                return HTTP_BAD_REQUEST;
            }
            if (n == 0)
                break;
            len += (apr_size_t)n;
            if ((apr_off_t)len > max) {
                r->connection->keepalive = AP_CONN_CLOSE;
                return HTTP_REQUEST_ENTITY_TOO_LARGE;
            }
        }
    }
    buf[len] = '\0';
    *out = buf;
    *outlen = len;
    return 0;
}

int sk_req_read_json(sk_req *q)
{
    request_rec *r = q->r;
    char *buf;
    apr_size_t len;
    json_error_t jerr;
    json_t *doc;
    int rc = read_body(q, &buf, &len);

    if (rc) {
        sk_fail(q, rc, rc == HTTP_REQUEST_ENTITY_TOO_LARGE ? "Request body too large" : "Unreadable request body");
        return DONE;
    }
    if (len && !is_json_type(apr_table_get(r->headers_in, "Content-Type"))) {
        sk_fail(q, HTTP_UNSUPPORTED_MEDIA_TYPE, "Content-Type must be application/json");
        return DONE;
    }
    if (len == 0) {
        q->body = sk_pool_json(q->p, json_object());
        return OK;
    }
    /* jansson refuses invalid UTF-8 and, without JSON_ALLOW_NUL, strings holding NUL */
    doc = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!doc) {
        json_t *errs = json_array();
        json_t *e = sk_verr("body", NULL, "JSON decode error", "json_invalid");
        json_object_set_new(e, "ctx", json_pack("{s:s,s:i}", "error", jerr.text, "position", jerr.position));
        json_array_append_new(errs, e);
        sk_fail_validation(q, errs);
        return DONE;
    }
    sk_pool_json(q->p, doc);
    if (!json_is_object(doc)) {
        json_t *errs = json_array();
        json_array_append_new(errs, sk_verr("body", NULL, "Input should be a valid dictionary or object",
                                            "model_attributes_type"));
        sk_fail_validation(q, errs);
        return DONE;
    }
    q->body = doc;
    return OK;
}

int sk_req_read_form(sk_req *q, int (*err_fn)(sk_req *q, int status, const char *error, const char *desc))
{
    char *buf;
    apr_size_t len;
    const char *ct = apr_table_get(q->r->headers_in, "Content-Type");
    int rc = read_body(q, &buf, &len);
    if (rc) {
        err_fn(q, rc, "invalid_request", rc == HTTP_REQUEST_ENTITY_TOO_LARGE ? "request body too large"
                                                                             : "unreadable request body");
        return DONE;
    }
    if (len && (!ct || strncasecmp(ct, "application/x-www-form-urlencoded", 33))) {
        err_fn(q, HTTP_BAD_REQUEST, "invalid_request", "Content-Type must be application/x-www-form-urlencoded");
        return DONE;
    }
    if (!sk_utf8_valid(buf, len)) {
        err_fn(q, HTTP_BAD_REQUEST, "invalid_request", "the request body is not valid UTF-8");
        return DONE;
    }
    q->form = parse_query(q->p, buf);
    return OK;
}

const char *sk_req_bearer(sk_req *q, int *present)
{
    const char *h = apr_table_get(q->r->headers_in, "Authorization");
    *present = 0;
    if (!h)
        return NULL;
    *present = 1;
    while (*h == ' ')
        h++;
    if (strncasecmp(h, "Bearer", 6) || (h[6] != ' ' && h[6] != '\t'))
        return NULL;
    h += 6;
    while (*h == ' ' || *h == '\t')
        h++;
    return *h ? h : NULL;
}

sk_audit *sk_req_audit(sk_req *q, const char *action, const char *result)
{
    sk_audit *a = apr_pcalloc(q->p, sizeof(*a));
    a->action = action;
    a->result = result;
    a->ip = q->ip;
    a->user_agent = q->user_agent;
    a->request_id = q->request_id;
    if (q->who) {
        a->actor_id = q->who->user_id ? q->who->user_id : q->who->client_id;
        a->actor_email = q->who->email;
        a->actor_type = q->who->actor_type;
        a->tenant_id = q->who->tenant_id;
        a->partner_id = q->who->partner_id;
    }
    return a;
}

sk_audit *sk_req_audit_user(sk_req *q, const char *action, const char *result, json_t *user,
                            const char *actor_type)
{
    sk_audit *a = sk_req_audit(q, action, result);
    if (user) {
        const char *role = sk_jstr(user, "role");
        a->actor_id = sk_jstr(user, "id");
        a->actor_email = sk_jstr(user, "email");
        a->actor_type = actor_type ? actor_type : role && strcmp(role, "user") ? "admin" : "user";
        a->tenant_id = sk_jstr(user, "tenant_id");
        a->partner_id = sk_jstr(user, "partner_id");
    }
    return a;
}
