/* Authentication for AuthType ScaiKey: the caller's identity for the backend, and the refusals
 * in the shape RFC 6750 gives them (with RFC 9728's resource_metadata where configured). */
#include "guard/internal.h"
#include "scaikey.h"
#include "config.h"

#include <http_core.h>
#include <http_request.h>
#include <http_protocol.h>
#include <apr_strings.h>
#include <apr_lib.h>

APLOG_USE_MODULE(scaikey);

#define ERROR_FILTER "SCAIKEY_JSON_ERROR"
#define HEADER_PREFIX "x-scaikey-"

/* ---- what the backend receives ---- */

static const struct {
    const char *header, *env;
} FIELDS[] = {
    { "X-ScaiKey-Sub", "SCAIKEY_SUB" },
    { "X-ScaiKey-Tenant", "SCAIKEY_TENANT" },
    { "X-ScaiKey-Scopes", "SCAIKEY_SCOPES" },
    { "X-ScaiKey-Roles", "SCAIKEY_ROLES" },
    { "X-ScaiKey-Groups", "SCAIKEY_GROUPS" },
    { "X-ScaiKey-Client", "SCAIKEY_CLIENT" },
    { "X-ScaiKey-Email", "SCAIKEY_EMAIL" },
    { "X-ScaiKey-Auth", "SCAIKEY_AUTH" },
};

/* Printable characters only: a value never ends a header line. */
static const char *clean(apr_pool_t *p, const char *v)
{
    char *out = apr_pstrdup(p, v), *o = out;
    for (; *v; v++)
        if ((unsigned char)*v >= 0x20 && (unsigned char)*v != 0x7f)
            *o++ = *v;
    *o = '\0';
    return out;
}

static const char *join(apr_pool_t *p, json_t *list, int first_of_pair)
{
    const char *out = NULL;
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) {
        const char *s = json_string_value(first_of_pair ? json_array_get(v, 0) : v);
        if (s && *s)
            out = out ? apr_pstrcat(p, out, " ", s, NULL) : s;
    }
    return out;
}

void sk_guard_apply_identity(request_rec *r, sk_identity *id)
{
    const char *values[8];
    size_t i;
    values[0] = id->sub;
    values[1] = id->tenant_id;
    values[2] = id->scope;
    values[3] = join(r->pool, id->roles, 0);
    values[4] = join(r->pool, id->groups, 1);
    values[5] = id->client_id;
    values[6] = id->email;
    values[7] = id->kind == SK_CRED_JWT ? "jwt" : "api_key";
    for (i = 0; i < sizeof(FIELDS) / sizeof(FIELDS[0]); i++) {
        if (values[i] && *values[i]) {
            /* a copy of the request's own: both tables may keep it as it is */
            const char *v = clean(r->pool, values[i]);
            apr_table_setn(r->headers_in, FIELDS[i].header, v);
            apr_table_setn(r->subprocess_env, FIELDS[i].env, v);
        }
        else {
            apr_table_unset(r->headers_in, FIELDS[i].header);
            apr_table_unset(r->subprocess_env, FIELDS[i].env);
        }
    }
}

/* Is this header one of ours, in any case, with '_' for '-' (some backends read them the same)? */
static int ours(const char *name)
{
    size_t i;
    for (i = 0; HEADER_PREFIX[i]; i++) {
        char c = name[i] == '_' ? '-' : (char)apr_tolower((unsigned char)name[i]);
        if (c != HEADER_PREFIX[i])
            return 0;
    }
    return 1;
}

static int collect(void *rec, const char *key, const char *value)
{
    if (ours(key))
        APR_ARRAY_PUSH((apr_array_header_t *)rec, const char *) = key;
    return 1;
}

/* Header parser: on guarded locations no X-ScaiKey-* header from the client survives, whether or
 * not the request ends up authenticated. */
int sk_guard_scrub(request_rec *r)
{
    apr_array_header_t *names;
    request_rec *src = NULL;
    sk_guard_req *from;
    int i;

    if (!sk_guard_active(r))
        return DECLINED;
    names = apr_array_make(r->pool, 2, sizeof(const char *));
    apr_table_do(collect, names, r->headers_in, NULL);
    for (i = 0; i < names->nelts; i++)
        apr_table_unset(r->headers_in, APR_ARRAY_IDX(names, i, const char *));

    /* Apache skips authentication for an internal request with the configuration of the request
     * it comes from; the caller verified there keeps its identity here */
    if (r->prev && r->prev->per_dir_config == r->per_dir_config)
        src = r->prev;
    else if (r->main && r->main->per_dir_config == r->per_dir_config)
        src = r->main;
    if (src && (from = ap_get_module_config(src->request_config, &scaikey_module)) && from->who) {
        sk_guard_req_get(r)->who = from->who;
        sk_guard_apply_identity(r, from->who);
    }
    return DECLINED;
}

/* ---- refusals ---- */

static const char *quoted(apr_pool_t *p, const char *s)
{
    char *out = apr_pstrdup(p, s), *o = out;
    for (; *s; s++)
        if (*s != '"' && *s != '\\' && (unsigned char)*s >= 0x20 && (unsigned char)*s != 0x7f)
            *o++ = *s;
    *o = '\0';
    return out;
}

const char *sk_guard_www(request_rec *r, int with_realm, const char *error, const char *description,
                         const char *scope)
{
    sk_guard_dir *d = sk_guard_dir_get(r);
    apr_array_header_t *parts = apr_array_make(r->pool, 5, sizeof(const char *));
    const char *realm = ap_auth_name(r), *out = "Bearer";
    int i;
    if (with_realm)
        APR_ARRAY_PUSH(parts, const char *) =
            apr_psprintf(r->pool, "realm=\"%s\"", quoted(r->pool, realm ? realm : "scaikey"));
    if (error)
        APR_ARRAY_PUSH(parts, const char *) = apr_psprintf(r->pool, "error=\"%s\"", error);
    if (description)
        APR_ARRAY_PUSH(parts, const char *) =
            apr_psprintf(r->pool, "error_description=\"%s\"", quoted(r->pool, description));
    if (scope)
        APR_ARRAY_PUSH(parts, const char *) = apr_psprintf(r->pool, "scope=\"%s\"", quoted(r->pool, scope));
    if (d && d->resource_metadata) {
        const char *url = d->resource_metadata[0] == '/'
                              ? ap_construct_url(r->pool, d->resource_metadata, r) : d->resource_metadata;
        APR_ARRAY_PUSH(parts, const char *) = apr_psprintf(r->pool, "resource_metadata=\"%s\"", quoted(r->pool, url));
    }
    for (i = 0; i < parts->nelts; i++)
        out = apr_pstrcat(r->pool, out, i ? ", " : " ", APR_ARRAY_IDX(parts, i, const char *), NULL);
    return out;
}

static const char *body_text(request_rec *r, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    const char *out = apr_pstrdup(r->pool, text ? text : "{}");
    free(text);
    json_decref(body);
    return out;
}

/* Has the operator an ErrorDocument for this status here? Then that answers, not the guard. */
static int operator_document(request_rec *r, int status)
{
    core_dir_config *conf = ap_get_core_module_config(r->per_dir_config);
    int idx = ap_index_of_response(status);
    return conf && conf->response_code_exprs && apr_hash_get(conf->response_code_exprs, &idx, sizeof(idx));
}

int sk_guard_refuse(request_rec *r, int status, const char *www, json_t *body)
{
    sk_guard_req *st = sk_guard_req_get(r);
    st->status = status;
    st->body = body_text(r, body);
    if (www)
        apr_table_setn(r->err_headers_out, "WWW-Authenticate", www);
    /* the body of Apache's error response for this request */
    if (!operator_document(r, status))
        ap_custom_response(r, status, st->body);
    return status;
}

static int refuse_token(request_rec *r, const char *reason)
{
    return sk_guard_refuse(r, HTTP_UNAUTHORIZED, sk_guard_www(r, 1, "invalid_token", reason, NULL),
                           json_pack("{s:s,s:s}", "error", "invalid_token", "error_description", reason));
}

/* 403 for a caller whose credential is fine but who does not meet the Require rules. */
static void forbid(request_rec *r, sk_guard_req *st)
{
    const char *desc = st->need_other;
    json_t *body = json_pack("{s:s}", "error", "insufficient_scope");
    if (desc)
        json_object_set_new(body, "error_description", json_string(desc));
    if (st->need_scope)
        json_object_set_new(body, "scope", json_string(st->need_scope));
    st->authz_failed = 1;
    sk_guard_refuse(r, HTTP_FORBIDDEN, sk_guard_www(r, 0, "insufficient_scope", desc, st->need_scope), body);
    /* mod_authz_core answers an authenticated caller that fails with 401 (unless
     * AuthzSendForbiddenOnFailure is on); the error filter turns it into this 403 */
    if (!operator_document(r, HTTP_UNAUTHORIZED))
        ap_custom_response(r, HTTP_UNAUTHORIZED, st->body);
}

static const char *user_of(request_rec *r, sk_identity *id, const char *claim)
{
    json_t *v;
    if (!claim || !strcmp(claim, "sub"))
        return id->sub;
    v = json_object_get(sk_guard_claims(r, id), claim);
    if (json_is_string(v) && *json_string_value(v))
        return json_string_value(v);
    if (json_is_integer(v))
        return apr_psprintf(r->pool, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    return NULL;
}

static int audience_ok(json_t *aud, const apr_array_header_t *want)
{
    int i;
    size_t j;
    json_t *v;
    for (i = 0; i < want->nelts; i++) {
        const char *w = APR_ARRAY_IDX(want, i, const char *);
        if (json_is_string(aud) && !strcmp(json_string_value(aud), w))
            return 1;
        json_array_foreach(aud, j, v)
            if (json_is_string(v) && !strcmp(json_string_value(v), w))
                return 1;
    }
    return 0;
}

/* check_user_id for AuthType ScaiKey. */
int sk_guard_authn(request_rec *r)
{
    sk_guard_req *st;
    sk_guard_dir *d;
    sk_credential cred;
    sk_identity *id = NULL;
    const char *reason = NULL, *user;
    int rc, from_cookie;

    if (!sk_guard_active(r))
        return DECLINED;
    st = sk_guard_req_get(r);
    d = sk_guard_dir_get(r);
    r->ap_auth_type = (char *)SK_GUARD_AUTH_TYPE;
    if (!sk_config_get(r->server)->issuer) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SKLOGNO(0811)
                      "AuthType ScaiKey needs ScaiKeyIssuer (and ScaiKeyMasterKeyFile) for this server");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (sk_guard_login_is_callback(r))
        return sk_guard_login_callback(r);
    cred = sk_guard_credential(r);
    from_cookie = cred.kind == SK_CRED_NONE && sk_guard_login_credential(r, &cred);
    if (cred.kind == SK_CRED_NONE && sk_guard_login_browser(r))
        return sk_guard_login_redirect(r, 0);
    if (cred.kind == SK_CRED_NONE)
        return sk_guard_refuse(r, HTTP_UNAUTHORIZED, sk_guard_www(r, 1, NULL, NULL, NULL),
                               json_pack("{s:s,s:s}", "error", "unauthenticated", "error_description",
                                         "a bearer token or an API key is required"));
    if (cred.kind == SK_CRED_MALFORMED)
        return sk_guard_refuse(r, HTTP_BAD_REQUEST, sk_guard_www(r, 1, "invalid_request", cred.problem, NULL),
                               json_pack("{s:s,s:s}", "error", "invalid_request", "error_description",
                                         cred.problem));

    switch (sk_guard_identify(r, &cred, &id, &reason)) {
    case SK_GUARD_OK:
        break;
    case SK_GUARD_UNAVAILABLE:
        apr_table_setn(r->err_headers_out, "Retry-After", "2");
        return sk_guard_refuse(r, HTTP_SERVICE_UNAVAILABLE, NULL,
                               json_pack("{s:s,s:s}", "error", "temporarily_unavailable", "error_description",
                                         "the credential cannot be checked right now"));
    default:
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, SKLOGNO(0810) "guard: %s refused: %s",
                      from_cookie ? "sign-in cookie" : cred.kind == SK_CRED_JWT ? "token" : "API key", reason);
        /* an expired or ended sign-in: the browser signs in again (the SSO session may make
         * that invisible) */
        if (from_cookie && sk_guard_login_browser(r))
            return sk_guard_login_redirect(r, 1);
        return refuse_token(r, reason ? reason : "invalid credential");
    }

    if (id->kind == SK_CRED_JWT && d->audiences && !audience_ok(id->aud, d->audiences)) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, SKLOGNO(0810) "guard: token refused: audience mismatch");
        return refuse_token(r, "audience mismatch");
    }
    if (!(user = user_of(r, id, d->user_claim)))
        return refuse_token(r, apr_psprintf(r->pool, "the credential has no '%s' claim", d->user_claim));
    r->user = (char *)clean(r->pool, user);
    st->who = id;
    if (!r->main && !r->prev && (rc = sk_guard_rate_limit(r, id)) != OK)
        return rc;
    sk_guard_apply_identity(r, id);
    return OK;
}

/* mod_authz_core reports an authenticated caller that failed the Require rules. */
int sk_guard_note_auth_failure(request_rec *r, const char *type)
{
    sk_guard_req *st;
    if (strcasecmp(type, SK_GUARD_AUTH_TYPE))
        return DECLINED;
    st = sk_guard_req_get(r);
    if (st->who && !st->status)
        forbid(r, st);
    return OK;
}

/* JSON bodies for the guard's refusals, and the 403 for failed Require rules. */
void sk_guard_insert_error_filter(request_rec *r)
{
    sk_guard_req *st = ap_get_module_config(r->request_config, &scaikey_module);
    int original = r->status;     /* Apache writes the body it has for this status */
    if (!st)
        return;
    /* with AuthzSendForbiddenOnFailure On, mod_authz_core sends 403 without a word to us */
    if (st->who && !st->passed && !st->status && r->status == HTTP_FORBIDDEN)
        forbid(r, st);
    if (st->authz_failed && r->status == HTTP_UNAUTHORIZED)
        r->status = HTTP_FORBIDDEN;
    if (st->status && r->status == st->status && !operator_document(r, original))
        ap_add_output_filter(ERROR_FILTER, NULL, r, r->connection);
}

static apr_status_t json_error_filter(ap_filter_t *f, apr_bucket_brigade *bb)
{
    /* Apache labels its error responses text/html after the error filters are inserted */
    ap_set_content_type(f->r, "application/json");
    ap_remove_output_filter(f);
    return ap_pass_brigade(f->next, bb);
}

void sk_guard_authn_register(apr_pool_t *p)
{
    ap_register_output_filter(ERROR_FILTER, json_error_filter, NULL, AP_FTYPE_CONTENT_SET);
}
