/* The authorization endpoint (RFC 6749 §3.1, §4.1; RFC 7636; OpenID Connect Core §3.1.2) in its
 * two flavours: /api/v1/platform/oauth/authorize (GLOBAL applications; the user's tenant is found
 * from their email) and /api/v1/auth/tenants/{slug}/oauth/authorize (TENANT applications of the
 * tenant, PARTNER applications of its partner).
 *
 * A missing or unknown client, or a redirect_uri that is not registered for it exactly, is shown
 * as an error page and never redirected (RFC 6749 §4.1.2.1); every other error goes back to the
 * redirect_uri with error, error_description, state and iss (RFC 9207). */
#include "login/login.h"
#include "oauth/oauth.h"
#include "oauth/code.h"
#include "http/response.h"
#include "http/validate.h"
#include "core/policy.h"
#include "core/pooljson.h"
#include "scaikey.h"
#include "core/jsonget.h"

#include <apr_strings.h>
#include <apr_lib.h>
#include <http_protocol.h>
#include <string.h>

APLOG_USE_MODULE(scaikey);

#define MAX_STATE     2048
#define MAX_NONCE     512
#define MAX_SCOPE     2048
#define MAX_HINT      320
#define MAX_CLIENT_ID 128
#define MAX_URI       2000

/* request parameters that must not be repeated (RFC 6749 §3.1) */
static const char *const SINGLE[] = {
    "response_type", "client_id", "redirect_uri", "scope", "state", "nonce", "code_challenge",
    "code_challenge_method", "prompt", "max_age", "login_hint", "resource", "response_mode", NULL
};

static int form_error(sk_req *q, int status, const char *error, const char *desc)
{
    return sk_login_error_page(q, NULL, status == HTTP_REQUEST_ENTITY_TOO_LARGE ? status : HTTP_BAD_REQUEST,
                               "Invalid request", desc);
}

static int count_param(sk_req *q, const char *name)
{
    const apr_array_header_t *a = apr_table_elts(q->query);
    const apr_table_entry_t *e = (const apr_table_entry_t *)a->elts;
    int i, n = 0;
    for (i = 0; i < a->nelts; i++)
        if (e[i].key && !strcmp(e[i].key, name))
            n++;
    return n;
}

json_t *sk_scope_list(apr_pool_t *p, const char *scope)
{
    json_t *out = json_array();
    char *copy, *tok, *state;
    if (!scope)
        return out;
    copy = apr_pstrdup(p, scope);
    for (tok = apr_strtok(copy, " ", &state); tok; tok = apr_strtok(NULL, " ", &state))
        json_array_append_new(out, json_string(tok));
    return out;
}

/* Every requested scope must be allowed (duplicates dropped); none requested means all allowed.
 * NULL with *bad on a scope that is not. */
static const char *granted_scope(apr_pool_t *p, const char *requested, json_t *allowed, const char **bad)
{
    const char *out = NULL;
    char *copy, *tok, *state;
    size_t i;
    json_t *v;
    *bad = NULL;
    if (!requested || !*requested) {
        json_array_foreach(allowed, i, v)
            if (json_is_string(v) && !sk_scope_has(out, json_string_value(v)))
                out = out ? apr_pstrcat(p, out, " ", json_string_value(v), NULL) : json_string_value(v);
        return out ? out : "";
    }
    copy = apr_pstrdup(p, requested);
    for (tok = apr_strtok(copy, " ", &state); tok; tok = apr_strtok(NULL, " ", &state)) {
        if (!sk_jarray_has(allowed, tok)) {
            *bad = tok;
            return NULL;
        }
        if (!sk_scope_has(out, tok))
            out = out ? apr_pstrcat(p, out, " ", tok, NULL) : tok;
    }
    return out ? out : "";
}

static int grant_enabled(json_t *client)
{
    json_t *list = json_object_get(client, "grant_types");
    return !json_is_array(list) || json_array_size(list) == 0 || sk_jarray_has(list, "authorization_code");
}

/* prompt (OIDC Core §3.1.2.1): none, login, consent, select_account; none stands alone */
static int prompt_valid(apr_pool_t *p, const char *prompt)
{
    char *copy, *tok, *state;
    int n = 0, none = 0;
    if (!prompt)
        return 1;
    copy = apr_pstrdup(p, prompt);
    for (tok = apr_strtok(copy, " ", &state); tok; tok = apr_strtok(NULL, " ", &state), n++) {
        if (!strcmp(tok, "none"))
            none = 1;
        else if (strcmp(tok, "login") && strcmp(tok, "consent") && strcmp(tok, "select_account"))
            return 0;
    }
    return n > 0 && (!none || n == 1);
}

static const char *add_param(apr_pool_t *p, const char *url, const char *k, const char *v)
{
    if (!v)
        return url;
    return apr_pstrcat(p, url, strchr(url, '?') ? "&" : "?", k, "=", ap_escape_urlencoded(p, v), NULL);
}

static int redirect(sk_req *q, int status, const char *url)
{
    request_rec *r = q->r;
    apr_table_setn(r->headers_out, "Location", url);
    apr_table_setn(r->err_headers_out, "Cache-Control", "no-store");
    apr_table_setn(r->err_headers_out, "Referrer-Policy", "no-referrer");
    r->status = status;
    ap_set_content_length(r, 0);
    return OK;
}

const char *sk_authz_page_url(sk_req *q, const char *slug, const char *suffix, const char *handle)
{
    const char *base = slug ? apr_pstrcat(q->p, sk_oauth_issuer(q, slug), "/oauth", NULL) : sk_oauth_issuer(q, NULL);
    return add_param(q->p, apr_pstrcat(q->p, base, suffix, NULL), "flow", handle);
}

static const char *issuer_of(sk_req *q, sk_authz *az)
{
    return sk_oauth_issuer(q, az->platform ? NULL : az->slug);
}

int sk_authz_error(sk_req *q, sk_authz *az, int via_post, const char *error, const char *description)
{
    const char *url = add_param(q->p, az->redirect_uri, "error", error);
    url = add_param(q->p, url, "error_description", description);
    url = add_param(q->p, url, "state", az->state);
    url = add_param(q->p, url, "iss", issuer_of(q, az));
    if (az->flow && sk_flow_finish(q, az->flow) < 0)
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, q->r, SKLOGNO(1031) "sign-in flow not ended");
    return via_post ? sk_html_continue(q, &az->brand, url) : redirect(q, HTTP_MOVED_TEMPORARILY, url);
}

static int has_prompt(sk_req *q, sk_authz *az, const char *value)
{
    return az->prompt && sk_scope_has(az->prompt, value);
}

/* The request as a flow keeps it. */
static json_t *authz_json(sk_authz *az)
{
    json_t *d = json_object();
    json_object_set_new(d, "flavour", json_string(az->platform ? "platform" : "tenant"));
    if (az->slug)
        json_object_set_new(d, "slug", json_string(az->slug));
#define PUT(k) if (az->k) json_object_set_new(d, #k, json_string(az->k))
    PUT(client_id); PUT(redirect_uri); PUT(scope); PUT(state); PUT(nonce); PUT(resource);
    PUT(login_hint); PUT(code_challenge); PUT(code_challenge_method); PUT(prompt);
#undef PUT
    if (az->max_age >= 0)
        json_object_set_new(d, "max_age", json_integer(az->max_age));
    return d;
}

static sk_db_status load_client(sk_req *q, sk_authz *az, json_t **out)
{
    sk_db *db = sk_req_db(q);
    sk_db_status st;
    *out = NULL;
    if (!db)
        return SK_DB_ERROR;
    st = az->platform ? SK_QJ(db, "authz_client_platform", out, az->client_id)
                      : SK_QJ(db, "authz_client_tenant", out, az->client_id, az->slug);
    sk_pool_json(q->p, *out);
    return st == SK_DB_INVALID ? SK_DB_NOTFOUND : st;
}

static sk_db_status load_tenant(sk_req *q, const char *slug, json_t **out)
{
    sk_db *db = sk_req_db(q);
    sk_db_status st;
    *out = NULL;
    if (!sk_valid_slug(slug))
        return SK_DB_NOTFOUND;
    if (!db)
        return SK_DB_ERROR;
    st = SK_QJ(db, "login_tenant", out, slug);
    sk_pool_json(q->p, *out);
    return st == SK_DB_INVALID ? SK_DB_NOTFOUND : st;
}

/* Tenant and client checks shared by the endpoint and the flows. OK, or DONE after a page. */
static int check_tenant_client(sk_req *q, sk_authz *az)
{
    sk_db_status st;
    if (!az->platform) {
        st = load_tenant(q, az->slug, &az->tenant);
        if (st == SK_DB_NOTFOUND)
            return sk_login_error_page(q, NULL, HTTP_NOT_FOUND, "Unknown organisation",
                                       "There is no sign-in page at this address."), DONE;
        if (st != SK_DB_OK)
            return sk_login_error_page(q, NULL, HTTP_SERVICE_UNAVAILABLE, "Temporarily unavailable",
                                       "Sign-in is not available right now. Please try again shortly."), DONE;
        sk_html_brand(json_object_get(az->tenant, "branding"), sk_jstr(az->tenant, "name"), &az->brand);
        if (!json_is_true(json_object_get(az->tenant, "live")))
            return sk_login_error_page(q, az->tenant, HTTP_FORBIDDEN, "Sign-in unavailable",
                                       "Sign-in to this organisation is currently disabled."), DONE;
    }
    else
        sk_html_brand(NULL, NULL, &az->brand);

    if (!az->client_id || !*az->client_id)
        return sk_login_error_page(q, az->tenant, HTTP_BAD_REQUEST, "Invalid request",
                                   "The application did not say who it is (client_id is missing)."), DONE;
    st = strlen(az->client_id) > MAX_CLIENT_ID ? SK_DB_NOTFOUND : load_client(q, az, &az->client);
    if (st == SK_DB_NOTFOUND)
        return sk_login_error_page(q, az->tenant, HTTP_BAD_REQUEST, "Unknown application",
                                   "The application that sent you here is not known (invalid client_id)."), DONE;
    if (st != SK_DB_OK)
        return sk_login_error_page(q, az->tenant, HTTP_SERVICE_UNAVAILABLE, "Temporarily unavailable",
                                   "Sign-in is not available right now. Please try again shortly."), DONE;
    if (!json_is_true(json_object_get(az->client, "live")))
        return sk_login_error_page(q, az->tenant, HTTP_BAD_REQUEST, "Application disabled",
                                   "The application that sent you here is disabled."), DONE;
    if (!az->redirect_uri || !*az->redirect_uri)
        return sk_login_error_page(q, az->tenant, HTTP_BAD_REQUEST, "Invalid request",
                                   "The application did not say where to return to (redirect_uri is missing)."), DONE;
    if (strlen(az->redirect_uri) > MAX_URI || !sk_jarray_has(json_object_get(az->client, "redirect_uris"), az->redirect_uri))
        return sk_login_error_page(q, az->tenant, HTTP_BAD_REQUEST, "Invalid redirect URI",
                                   "The address the application asked to return to is not registered for it "
                                   "(redirect_uri mismatch)."), DONE;
    return OK;
}

int sk_authz_from_flow(sk_req *q, sk_flow *f, sk_authz *az)
{
    json_t *ma = json_object_get(f->data, "max_age");
    memset(az, 0, sizeof(*az));
    az->platform = !sk_flow_get(f, "flavour") || strcmp(sk_flow_get(f, "flavour"), "tenant");
    az->slug = az->platform ? NULL : sk_flow_get(f, "slug");
    az->client_id = sk_flow_get(f, "client_id");
    az->redirect_uri = sk_flow_get(f, "redirect_uri");
    az->scope = sk_flow_get(f, "scope");
    az->state = sk_flow_get(f, "state");
    az->nonce = sk_flow_get(f, "nonce");
    az->resource = sk_flow_get(f, "resource");
    az->login_hint = sk_flow_get(f, "login_hint");
    az->code_challenge = sk_flow_get(f, "code_challenge");
    az->code_challenge_method = sk_flow_get(f, "code_challenge_method");
    az->prompt = sk_flow_get(f, "prompt");
    az->max_age = json_is_integer(ma) ? (long long)json_integer_value(ma) : -1;
    az->flow = f;
    if (!az->platform && !az->slug)
        return sk_login_error_page(q, NULL, HTTP_BAD_REQUEST, "Sign-in expired",
                                   "This sign-in request is no longer valid. Return to the application and "
                                   "try again."), DONE;
    return check_tenant_client(q, az);
}

/* Does the user still have to consent? 1 yes, 0 no, -1 store failure. */
static int needs_consent(sk_req *q, sk_authz *az, json_t *user)
{
    json_t *granted = NULL, *want, *v;
    sk_db_status st;
    size_t i;
    int missing = 0;
    if (has_prompt(q, az, "consent"))
        return 1;
    if (!json_is_true(json_object_get(az->client, "require_consent")))
        return 0;
    st = SK_QJ(sk_req_db(q), "consent_scopes", &granted, sk_jstr(user, "id"), sk_jstr(az->client, "id"));
    if (st == SK_DB_NOTFOUND)
        return 1;
    if (st != SK_DB_OK)
        return -1;
    sk_pool_json(q->p, granted);
    want = sk_pool_json(q->p, sk_scope_list(q->p, az->scope));
    json_array_foreach(want, i, v)
        if (!sk_jarray_has(granted, json_string_value(v)))
            missing = 1;
    return missing;
}

static int unavailable_page(sk_req *q, sk_authz *az)
{
    return sk_html_message(q, HTTP_SERVICE_UNAVAILABLE, &az->brand, "Temporarily unavailable",
                           "Sign-in is not available right now. Please try again shortly.");
}

int sk_authz_issue(sk_req *q, sk_authz *az, const sk_signin *who, int via_post)
{
    sk_code_req c = { 0 };
    const char *code, *url;
    if (az->flow) {
        int rc = sk_flow_finish(q, az->flow);
        if (rc > 0)
            return sk_html_message(q, HTTP_BAD_REQUEST, &az->brand, "Already signed in",
                                   "This sign-in request has already been completed. Return to the "
                                   "application and try again.");
        if (rc < 0)
            return unavailable_page(q, az);
    }
    c.client_id = az->client_id;
    c.application_id = sk_jstr(az->client, "id");
    c.user_id = sk_jstr(who->user, "id");
    c.tenant_id = sk_jstr(who->user, "tenant_id");
    c.session_id = who->session_id;
    c.redirect_uri = az->redirect_uri;
    c.scope = az->scope;
    c.nonce = az->nonce;
    c.resource = az->resource;
    c.code_challenge = az->code_challenge;
    c.code_challenge_method = az->code_challenge_method;
    c.auth_time = who->auth_time;
    if (!(code = sk_oauth_code_create(q, &c))) {
        az->flow = NULL;
        return sk_authz_error(q, az, via_post, "server_error", "the authorization could not be recorded");
    }
    url = add_param(q->p, az->redirect_uri, "code", code);
    url = add_param(q->p, url, "state", az->state);
    url = add_param(q->p, url, "iss", issuer_of(q, az));
    return via_post ? sk_html_continue(q, &az->brand, url) : redirect(q, HTTP_MOVED_TEMPORARILY, url);
}

int sk_authz_signed_in(sk_req *q, sk_authz *az, const sk_signin *who, int via_post)
{
    int consent = needs_consent(q, az, who->user);
    if (consent < 0)
        return unavailable_page(q, az);
    if (!consent)
        return sk_authz_issue(q, az, who, via_post);
    if (has_prompt(q, az, "none"))
        return sk_authz_error(q, az, via_post, "consent_required", "the user has not consented to this request");

    /* the consent page (on the pages of the user's tenant) goes on with the request */
    {
        json_t *patch = sk_pool_json(q->p, json_pack("{s:s,s:s,s:I}", "stage", "consent", "sso",
                                                     who->session_id, "auth_time", (json_int_t)who->auth_time));
        const char *tenant_id = sk_jstr(who->user, "tenant_id"), *user_id = sk_jstr(who->user, "id");
        if (!az->flow) {
            json_t *d = sk_pool_json(q->p, authz_json(az));
            json_object_update(d, patch);
            if (sk_flow_create(q, d, tenant_id, user_id, &az->flow) != 0)
                return unavailable_page(q, az);
        }
        else if (sk_flow_update(q, az->flow, tenant_id, user_id, az->flow->email, patch) != 0)
            return unavailable_page(q, az);
        return redirect(q, via_post ? HTTP_SEE_OTHER : HTTP_MOVED_TEMPORARILY,
                        sk_authz_page_url(q, who->tenant_slug, "/consent", az->flow->handle));
    }
}

int sk_oauth_authorize(sk_req *q)
{
    const sk_flavour *fl = q->data;
    const char *const *p;
    const char *rt, *v, *bad, *scope, *tenant_id;
    json_t *sso = NULL, *data;
    sk_authz az;
    sk_signin who = { 0 };
    int rc, usable, stale = 0, fresh, mfa_pending;

    /* OIDC Core §3.1.2.1: the parameters may also come as a form (POST) */
    if (!strcmp(q->r->method, "POST")) {
        if (sk_req_read_form(q, form_error) != OK)
            return OK;
        q->query = q->form;
    }
    memset(&az, 0, sizeof(az));
    az.platform = !fl->tenant;
    az.slug = sk_oauth_slug(q);
    az.max_age = -1;
    az.client_id = sk_req_query(q, "client_id");
    az.redirect_uri = sk_req_query(q, "redirect_uri");
    if (count_param(q, "client_id") > 1 || count_param(q, "redirect_uri") > 1) {
        az.client_id = NULL;
        if (!az.platform && load_tenant(q, az.slug, &az.tenant) != SK_DB_OK)
            az.tenant = NULL;
        return sk_login_error_page(q, az.tenant, HTTP_BAD_REQUEST, "Invalid request",
                                   "client_id or redirect_uri was given more than once.");
    }
    if (check_tenant_client(q, &az) != OK)
        return OK;

    /* from here on errors go back to the client */
    v = sk_req_query(q, "state");
    az.state = (v && strlen(v) <= MAX_STATE) ? v : NULL;
    if (v && !az.state)
        return sk_authz_error(q, &az, 0, "invalid_request", "state is too long");
    for (p = SINGLE; *p; p++)
        if (count_param(q, *p) > 1)
            return sk_authz_error(q, &az, 0, "invalid_request",
                                  apr_psprintf(q->p, "%s must not be repeated", *p));
    rt = sk_req_query(q, "response_type");
    if (!rt || !*rt)
        return sk_authz_error(q, &az, 0, "invalid_request", "response_type is required");
    if (strcmp(rt, "code"))
        return sk_authz_error(q, &az, 0, "unsupported_response_type", "only response_type=code is supported");
    if ((v = sk_req_query(q, "response_mode")) && strcmp(v, "query"))
        return sk_authz_error(q, &az, 0, "invalid_request", "only response_mode=query is supported");
    if (sk_req_query(q, "request"))
        return sk_authz_error(q, &az, 0, "request_not_supported", "request objects are not supported");
    if (sk_req_query(q, "request_uri"))
        return sk_authz_error(q, &az, 0, "request_uri_not_supported", "request_uri is not supported");
    if (!grant_enabled(az.client))
        return sk_authz_error(q, &az, 0, "unauthorized_client",
                              "the authorization_code grant is not enabled for this client");

    v = sk_req_query(q, "scope");
    if (v && strlen(v) > MAX_SCOPE)
        return sk_authz_error(q, &az, 0, "invalid_scope", "scope is too long");
    if (!(scope = granted_scope(q->p, v, json_object_get(az.client, "allowed_scopes"), &bad)))
        return sk_authz_error(q, &az, 0, "invalid_scope",
                              apr_psprintf(q->p, "scope '%s' is not allowed for this client", bad));
    az.scope = scope;

    az.nonce = sk_req_query(q, "nonce");
    if (az.nonce && strlen(az.nonce) > MAX_NONCE)
        return sk_authz_error(q, &az, 0, "invalid_request", "nonce is too long");

    az.code_challenge = sk_req_query(q, "code_challenge");
    az.code_challenge_method = sk_req_query(q, "code_challenge_method");
    if (az.code_challenge_method && !az.code_challenge)
        return sk_authz_error(q, &az, 0, "invalid_request", "code_challenge_method without code_challenge");
    if (az.code_challenge) {
        /* RFC 7636 §4.3: no method means plain, which is not accepted */
        if (!az.code_challenge_method || strcmp(az.code_challenge_method, "S256"))
            return sk_authz_error(q, &az, 0, "invalid_request",
                                  "code_challenge_method must be S256 (plain is not supported)");
        if (!sk_pkce_valid(az.code_challenge) || strlen(az.code_challenge) != 43)
            return sk_authz_error(q, &az, 0, "invalid_request",
                                  "code_challenge must be the base64url SHA-256 of the code_verifier");
    }
    else if (sk_oauth_public_client(az.client))
        return sk_authz_error(q, &az, 0, "invalid_request", "PKCE (code_challenge with S256) is required");

    az.prompt = sk_req_query(q, "prompt");
    if (az.prompt && !prompt_valid(q->p, az.prompt))
        return sk_authz_error(q, &az, 0, "invalid_request", "prompt is not valid");
    if ((v = sk_req_query(q, "max_age"))) {
        const char *c;
        for (c = v; *c && apr_isdigit(*c); c++)
            ;
        if (!*v || *c || strlen(v) > 9)
            return sk_authz_error(q, &az, 0, "invalid_request", "max_age must be a whole number of seconds");
        az.max_age = apr_atoi64(v);
    }
    az.login_hint = sk_req_query(q, "login_hint");
    if (az.login_hint && strlen(az.login_hint) > MAX_HINT)
        return sk_authz_error(q, &az, 0, "invalid_request", "login_hint is too long");
    az.resource = sk_req_query(q, "resource");
    if (az.resource && !sk_oauth_valid_resource(az.resource))
        return sk_authz_error(q, &az, 0, "invalid_target", "resource must be an absolute URI");

    /* the SSO session */
    rc = sk_sso_current(q, &sso);
    if (rc < 0)
        return unavailable_page(q, &az);
    usable = rc == 0 && (az.platform || !strcmp(sk_jstr(sso, "tenant_id") ? sk_jstr(sso, "tenant_id") : "",
                                                 sk_jstr(az.tenant, "id")));
    if (usable && az.max_age >= 0 &&
        (long long)apr_time_sec(apr_time_now()) - (long long)json_integer_value(json_object_get(sso, "auth_time")) >
            az.max_age)
        stale = 1;
    fresh = has_prompt(q, &az, "login") || has_prompt(q, &az, "select_account");
    mfa_pending = usable && json_is_true(json_object_get(sso, "mfa_required")) &&
                  !json_is_true(json_object_get(sso, "mfa_verified"));
    if (usable) {
        who.user = json_object_get(sso, "user");
        who.session_id = sk_jstr(sso, "id");
        who.auth_time = (long long)json_integer_value(json_object_get(sso, "auth_time"));
        who.tenant_slug = sk_jstr(sso, "tenant_slug");
    }
    if (has_prompt(q, &az, "none")) {
        if (!usable || stale)
            return sk_authz_error(q, &az, 0, "login_required", "the user is not signed in");
        if (mfa_pending)
            return sk_authz_error(q, &az, 0, "interaction_required", "the user must complete sign-in");
        sk_sso_touch(q, who.session_id);
        return sk_authz_signed_in(q, &az, &who, 0);
    }
    if (usable && !stale && !fresh && !mfa_pending) {
        sk_sso_touch(q, who.session_id);
        return sk_authz_signed_in(q, &az, &who, 0);
    }

    /* the user signs in: keep the request and show the login page */
    data = sk_pool_json(q->p, authz_json(&az));
    json_object_set_new(data, "stage", json_string("login"));
    tenant_id = az.platform ? NULL : sk_jstr(az.tenant, "id");
    if (sk_flow_create(q, data, tenant_id, NULL, &az.flow) != 0)
        return unavailable_page(q, &az);
    return redirect(q, HTTP_MOVED_TEMPORARILY,
                    sk_authz_page_url(q, az.platform ? NULL : az.slug, "/login", az.flow->handle));
}
