/* Two small handlers for guarded sites:
 *
 *   SetHandler scaikey-whoami              answers, as JSON, what a backend receives from the
 *                                          guard: r->user, the X-ScaiKey-* headers, the SCAIKEY_*
 *                                          variables (and the request body it got, for checks)
 *   SetHandler scaikey-resource-metadata   the OAuth 2.0 Protected Resource Metadata document
 *                                          (RFC 9728) of a guarded location */
#include "guard/internal.h"
#include "scaikey.h"
#include "config.h"
#include "core/secrets.h"

#include <http_core.h>
#include <http_protocol.h>
#include <http_request.h>
#include <apr_strings.h>
#include <apr_lib.h>

APLOG_USE_MODULE(scaikey);

#define WHOAMI_HANDLER   "scaikey-whoami"
#define METADATA_HANDLER "scaikey-resource-metadata"
#define METADATA_PREFIX  "/.well-known/oauth-protected-resource"
#define MAX_ECHO         (64 * 1024)

static int reply(request_rec *r, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(body);
    if (!text)
        return HTTP_INTERNAL_SERVER_ERROR;
    ap_set_content_type(r, "application/json");
    ap_set_content_length(r, (apr_off_t)strlen(text));
    if (!r->header_only)
        ap_rputs(text, r);
    free(text);
    return OK;
}

static int header_of_guard(void *rec, const char *key, const char *value)
{
    size_t i;
    static const char prefix[] = "x-scaikey-";
    for (i = 0; prefix[i]; i++) {
        char c = key[i] == '_' ? '-' : (char)apr_tolower((unsigned char)key[i]);
        if (c != prefix[i])
            return 1;
    }
    json_object_set_new(rec, key, json_string(value));
    return 1;
}

static int env_of_guard(void *rec, const char *key, const char *value)
{
    if (!strncmp(key, "SCAIKEY_", 8))
        json_object_set_new(rec, key, json_string(value));
    return 1;
}

/* The request body, as the handler reads it (through every input filter). */
static int read_all(request_rec *r, char **out, apr_size_t *len)
{
    apr_size_t cap = 8192, n = 0;
    char *buf;
    int rc;
    *out = NULL;
    *len = 0;
    if ((rc = ap_setup_client_block(r, REQUEST_CHUNKED_DECHUNK)) != OK)
        return rc;
    if (!ap_should_client_block(r))
        return OK;
    buf = apr_palloc(r->pool, cap + 1);
    for (;;) {
        long got;
        if (n == cap) {
            char *bigger;
            if (cap >= SK_GUARD_MAX_BODY)
                return HTTP_REQUEST_ENTITY_TOO_LARGE;
            bigger = apr_palloc(r->pool, cap * 2 + 1);
            memcpy(bigger, buf, n);
            buf = bigger;
            cap *= 2;
        }
        got = ap_get_client_block(r, buf + n, cap - n);
        if (got < 0)
            return HTTP_BAD_REQUEST;
        if (got == 0)
            break;
        n += (apr_size_t)got;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return OK;
}

static int whoami(request_rec *r)
{
    json_t *o, *headers = json_object(), *env = json_object();
    char *body;
    apr_size_t len;
    int rc = read_all(r, &body, &len);
    if (rc != OK) {
        json_decref(headers);
        json_decref(env);
        return rc;
    }
    /* CGI and SSI see the variables once Apache has added the standard ones */
    apr_table_do(header_of_guard, headers, r->headers_in, NULL);
    apr_table_do(env_of_guard, env, r->subprocess_env, NULL);
    o = json_pack("{s:s?,s:s?,s:s,s:s,s:o,s:o,s:I}", "user", r->user, "auth_type", r->ap_auth_type,
                  "method", r->method, "uri", r->uri, "headers", headers, "env", env,
                  "body_length", (json_int_t)len);
    if (body && len <= MAX_ECHO && sk_utf8_valid(body, len) && !memchr(body, '\0', len))
        json_object_set_new(o, "body", json_string(body));
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    return reply(r, o);
}

static int resource_metadata(request_rec *r)
{
    sk_config *cfg = sk_config_get(r->server);
    sk_guard_dir *d = sk_guard_dir_get(r);
    json_t *scopes = json_array();
    const char *resource = d->resource;
    int i;

    if (r->method_number != M_GET) {
        json_decref(scopes);
        return HTTP_METHOD_NOT_ALLOWED;
    }
    if (!cfg->issuer) {
        json_decref(scopes);
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SKLOGNO(0811)
                      "SetHandler " METADATA_HANDLER " needs ScaiKeyIssuer for this server");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (!resource) {
        /* RFC 9728 §3.1: the document of https://host/app is at
         * https://host/.well-known/oauth-protected-resource/app */
        const char *path = r->uri;
        apr_size_t n = strlen(METADATA_PREFIX);
        path = strncmp(path, METADATA_PREFIX, n) ? "/" : (path[n] ? path + n : "/");
        resource = ap_construct_url(r->pool, path, r);
    }
    if (d->scopes_supported)
        for (i = 0; i < d->scopes_supported->nelts; i++)
            json_array_append_new(scopes, json_string(APR_ARRAY_IDX(d->scopes_supported, i, const char *)));
    apr_table_setn(r->headers_out, "Cache-Control", "public, max-age=300");
    return reply(r, json_pack("{s:s,s:[s],s:[s],s:o}", "resource", resource, "authorization_servers",
                              sk_config_platform_issuer(r->pool, cfg), "bearer_methods_supported", "header",
                              "scopes_supported", scopes));
}

int sk_guard_handler(request_rec *r)
{
    if (!r->handler)
        return DECLINED;
    if (!strcmp(r->handler, WHOAMI_HANDLER))
        return whoami(r);
    if (!strcmp(r->handler, METADATA_HANDLER))
        return resource_metadata(r);
    return DECLINED;
}
