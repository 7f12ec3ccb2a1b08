#include "http/response.h"
#include "scaikey.h"

#include <http_protocol.h>
#include <apr_strings.h>

APLOG_USE_MODULE(scaikey);

int sk_reply(sk_req *q, int status, json_t *body)
{
    char *text;
    request_rec *r = q->r;
    r->status = status;
    ap_set_content_type(r, "application/json");
    if (!body)
        body = json_object();
    text = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(body);
    if (!text) {
        r->status = HTTP_INTERNAL_SERVER_ERROR;
        ap_rputs("{\"detail\":\"Internal server error\"}", r);
        return OK;
    }
    ap_set_content_length(r, (apr_off_t)strlen(text));
    if (!r->header_only)
        ap_rputs(text, r);
    free(text);
    return OK;
}

int sk_reply_empty(sk_req *q)
{
    q->r->status = HTTP_NO_CONTENT;
    ap_set_content_length(q->r, 0);
    return OK;
}

int sk_fail(sk_req *q, int status, const char *detail)
{
    return sk_reply(q, status, json_pack("{s:s}", "detail", detail ? detail : "Error"));
}

int sk_fail_validation(sk_req *q, json_t *errors)
{
    return sk_reply(q, HTTP_UNPROCESSABLE_ENTITY, json_pack("{s:o}", "detail", errors));
}

int sk_req_invalid(sk_req *q, const sk_field *fields)
{
    json_t *errs = json_array();
    if (sk_validate(q->body, fields, errs)) {
        sk_fail_validation(q, errs);
        return 1;
    }
    json_decref(errs);
    return 0;
}

static const char *quote(apr_pool_t *p, const char *s)
{
    /* RFC 6750 auth-param values are quoted-strings: drop quotes and backslashes */
    char *out = apr_pstrdup(p, s), *o = out;
    for (; *s; s++)
        if (*s != '"' && *s != '\\' && (unsigned char)*s >= 0x20)
            *o++ = *s;
    *o = '\0';
    return out;
}

int sk_fail_unauthenticated(sk_req *q, int present, const char *reason)
{
    if (!present) {
        apr_table_setn(q->r->err_headers_out, "WWW-Authenticate", "Bearer realm=\"scaikey\"");
        return sk_fail(q, HTTP_UNAUTHORIZED, "Not authenticated");
    }
    apr_table_setn(q->r->err_headers_out, "WWW-Authenticate",
                   apr_psprintf(q->p, "Bearer realm=\"scaikey\", error=\"invalid_token\", "
                                      "error_description=\"%s\"", quote(q->p, reason ? reason : "invalid token")));
    return sk_fail(q, HTTP_UNAUTHORIZED, "Invalid or expired token");
}

int sk_fail_unavailable(sk_req *q)
{
    apr_table_setn(q->r->err_headers_out, "Retry-After", "5");
    return sk_fail(q, HTTP_SERVICE_UNAVAILABLE, "Service temporarily unavailable");
}

int sk_fail_throttled(sk_req *q, int retry_after, const char *detail)
{
    apr_table_setn(q->r->err_headers_out, "Retry-After", apr_itoa(q->p, retry_after > 0 ? retry_after : 1));
    return sk_fail(q, HTTP_TOO_MANY_REQUESTS, detail);
}

void sk_no_store(sk_req *q)
{
    apr_table_setn(q->r->headers_out, "Cache-Control", "no-store");
    apr_table_setn(q->r->headers_out, "Pragma", "no-cache");
}

json_t *sk_verr(const char *loc0, const char *loc1, const char *msg, const char *type)
{
    json_t *loc = json_array();
    json_array_append_new(loc, json_string(loc0));
    if (loc1)
        json_array_append_new(loc, json_string(loc1));
    return json_pack("{s:o,s:s,s:s}", "loc", loc, "msg", msg, "type", type);
}
