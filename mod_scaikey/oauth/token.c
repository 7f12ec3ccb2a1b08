/* The token endpoint (RFC 6749 §3.2): client authentication and the grants. */
#include "oauth/oauth.h"
#include "http/response.h"
#include "http/validate.h"
#include "core/secrets.h"
#include "core/tokens.h"
#include "core/policy.h"
#include "core/pooljson.h"
#include "startup.h"
#include "scaikey.h"
#include "core/jsonget.h"

#include <apr_strings.h>
#include <apr_base64.h>
#include <apr_lib.h>
#include <http_protocol.h>

APLOG_USE_MODULE(scaikey);

const sk_flavour sk_flavour_platform = { 0 };
const sk_flavour sk_flavour_tenant = { 1 };

#define MAX_SCOPE_LEN 2048

int sk_oauth_error(sk_req *q, int status, const char *error, const char *description)
{
    sk_no_store(q);
    if (status == HTTP_UNAUTHORIZED)
        apr_table_setn(q->r->err_headers_out, "WWW-Authenticate", "Basic realm=\"scaikey\"");
    return sk_reply(q, status, json_pack("{s:s,s:s}", "error", error, "error_description", description));
}

const char *sk_oauth_issuer(sk_req *q, const char *slug)
{
    if (!slug)
        return sk_config_platform_issuer(q->p, q->cfg);
    return apr_pstrcat(q->p, q->cfg->issuer, "/api/v1/auth/tenants/", slug, NULL);
}

static int form_error(sk_req *q, int status, const char *error, const char *desc)
{
    return sk_oauth_error(q, status, error, desc);
}

/* client_secret_basic (RFC 6749 §2.3.1: both parts form-urlencoded) or client_secret_post.
 * 0 ok, -1 malformed Basic credentials, -2 more than one authentication method. */
static int client_credentials_of(sk_req *q, const char **id, const char **secret)
{
    const char *h = apr_table_get(q->r->headers_in, "Authorization");
    const char *fid = apr_table_get(q->form, "client_id"), *fsecret = apr_table_get(q->form, "client_secret");
    *id = *secret = NULL;
    if (h && !strncasecmp(h, "Basic ", 6)) {
        const char *b64 = h + 6;
        char *plain, *colon;
        int n;
        while (*b64 == ' ')
            b64++;
        if (strlen(b64) > 4096)
            return -1;
        plain = apr_palloc(q->p, apr_base64_decode_len(b64) + 1);
        n = apr_base64_decode(plain, b64);
        plain[n > 0 ? n : 0] = '\0';
        if (n <= 0 || !(colon = strchr(plain, ':')))
            return -1;
        *colon = '\0';
        if (ap_unescape_urlencoded(plain) != OK || ap_unescape_urlencoded(colon + 1) != OK)
            return -1;
        *id = plain;
        *secret = colon + 1;
        /* a second set of credentials in the body is ambiguous */
        if (fsecret || (fid && strcmp(fid, plain)))
            return -2;
        return 0;
    }
    *id = fid;
    *secret = fsecret;
    return 0;
}

sk_auth_status sk_oauth_principal(sk_req *q, const char *slug, const char *token, sk_principal **who,
                                  const char **reason)
{
    sk_db *db = sk_req_db(q);
    *who = NULL;
    *reason = NULL;
    if (!db)
        return SK_AUTH_UNAVAILABLE;
    if (!token || strlen(token) > SK_JWT_MAX_LEN) {
        *reason = "malformed token";
        return SK_AUTH_REFUSED;
    }
    return sk_principal_from_bearer(q->p, sk_startup_keyring(), db, sk_oauth_issuer(q, slug),
                                    sk_config_clock_skew(q->cfg), token, who, reason);
}

int sk_oauth_public_client(json_t *client)
{
    const char *type = sk_jstr(client, "application_type");
    return type && (!strcmp(type, "SPA") || !strcmp(type, "NATIVE"));
}

const char *sk_oauth_slug(sk_req *q)
{
    const sk_flavour *fl = q->data;
    return fl && fl->tenant ? sk_req_param(q, "tenant_slug") : NULL;
}

int sk_oauth_valid_resource(const char *resource)
{
    const char *colon = strchr(resource, ':'), *c;
    if (!colon || colon == resource || strlen(resource) > 2000 || strchr(resource, '#'))
        return 0;
    for (c = resource; c < colon; c++)
        if (!(apr_isalnum(*c) || *c == '+' || *c == '-' || *c == '.'))
            return 0;
    for (c = resource; *c; c++)
        if ((unsigned char)*c <= 0x20 || *c == 0x7f)
            return 0;
    return 1;
}

int sk_oauth_scope_subset(apr_pool_t *p, const char *requested, const char *granted)
{
    char *copy, *tok, *state;
    if (!requested)
        return 1;
    copy = apr_pstrdup(p, requested);
    for (tok = apr_strtok(copy, " ", &state); tok; tok = apr_strtok(NULL, " ", &state))
        if (!sk_scope_has(granted, tok))
            return 0;
    return 1;
}

/* RFC 6749 §5.2: 401 with the Basic challenge (required when the client tried Basic, and what
 * HTTP asks of every 401) */
static int invalid_client(sk_req *q, const char *desc)
{
    return sk_oauth_error(q, HTTP_UNAUTHORIZED, "invalid_client", desc);
}

int sk_oauth_client_auth(sk_req *q, const char *slug, int allow_public, json_t **client)
{
    const char *id, *secret;
    json_t *c = NULL;
    sk_db *db;
    sk_db_status st;
    int rc;

    *client = NULL;
    rc = client_credentials_of(q, &id, &secret);
    if (rc == -2)
        return sk_oauth_error(q, HTTP_BAD_REQUEST, "invalid_request",
                              "use exactly one client authentication method"), DONE;
    if (rc != 0)
        return invalid_client(q, "malformed client credentials"), DONE;
    if (!id || !*id || strlen(id) > 128)
        return invalid_client(q, "client authentication failed"), DONE;
    if (!(db = sk_req_db(q)))
        return sk_oauth_error(q, HTTP_SERVICE_UNAVAILABLE, "temporarily_unavailable", "try again later"), DONE;
    st = slug ? SK_QJ(db, "oauth_client_tenant", &c, id, slug) : SK_QJ(db, "oauth_client_platform", &c, id);
    if (st != SK_DB_OK && st != SK_DB_NOTFOUND && st != SK_DB_INVALID)
        return sk_oauth_error(q, HTTP_SERVICE_UNAVAILABLE, "temporarily_unavailable", "try again later"), DONE;
    sk_pool_json(q->p, c);
    if (st != SK_DB_OK || !json_is_true(json_object_get(c, "live")))
        return invalid_client(q, "client authentication failed"), DONE;
    if (sk_oauth_public_client(c) && !sk_jstr(c, "secret_hash")) {
        /* a public client identifies itself (auth method "none"); it has no secret to send */
        if (!allow_public || (secret && *secret))
            return invalid_client(q, "client authentication failed"), DONE;
        *client = c;
        return OK;
    }
    /* unknown client, wrong secret, secret missing: one answer; the digest compare is constant-time */
    if (!sk_jstr(c, "secret_hash") || !secret ||
        !sk_ct_streq(sk_sha256_hex(q->p, secret), sk_jstr(c, "secret_hash")))
        return invalid_client(q, "client authentication failed"), DONE;
    *client = c;
    return OK;
}

/* Every requested scope must be allowed; none requested means all allowed. */
static const char *grant_scope(sk_req *q, const char *requested, json_t *allowed, const char **bad)
{
    size_t i;
    json_t *v;
    char *copy, *tok, *state;
    const char *out = NULL;
    *bad = NULL;
    if (!requested || !*requested) {
        json_array_foreach(allowed, i, v)
            out = out ? apr_pstrcat(q->p, out, " ", json_string_value(v), NULL) : json_string_value(v);
        return out ? out : "";
    }
    copy = apr_pstrdup(q->p, requested);
    for (tok = apr_strtok(copy, " ", &state); tok; tok = apr_strtok(NULL, " ", &state)) {
        int found = 0;
        json_array_foreach(allowed, i, v)
            if (!strcmp(json_string_value(v), tok))
                found = 1;
        if (!found) {
            *bad = tok;
            return NULL;
        }
        if (!sk_scope_has(out, tok))
            out = out ? apr_pstrcat(q->p, out, " ", tok, NULL) : tok;
    }
    return out ? out : "";
}

static int client_credentials_grant(sk_req *q, const char *slug, json_t *client)
{
    const char *requested = apr_table_get(q->form, "scope"), *bad, *scope, *at, *resource;
    const char *type = sk_jstr(client, "application_type"), *app_scope = sk_jstr(client, "scope");
    int agent = !strcmp(sk_jstr(client, "kind"), "agent");
    json_t *extra;
    sk_token_claims c = { 0 };
    sk_db *db = sk_req_db(q);

    if (!agent && type && strcmp(type, "WEB") && strcmp(type, "SERVICE"))
        return sk_oauth_error(q, HTTP_BAD_REQUEST, "unauthorized_client",
                              "public clients cannot use the client_credentials grant");
    if (requested && strlen(requested) > MAX_SCOPE_LEN)
        return sk_oauth_error(q, HTTP_BAD_REQUEST, "invalid_scope", "scope is too long");
    scope = grant_scope(q, requested, json_object_get(client, "allowed_scopes"), &bad);
    if (!scope)
        return sk_oauth_error(q, HTTP_BAD_REQUEST, "invalid_scope",
                              apr_psprintf(q->p, "scope '%s' is not allowed for this client", bad));
    resource = apr_table_get(q->form, "resource");
    if (resource && !sk_oauth_valid_resource(resource))
        return sk_oauth_error(q, HTTP_BAD_REQUEST, "invalid_target", "resource must be an absolute URI");

    extra = sk_pool_json(q->p, json_object());
    json_object_set_new(extra, "token_type", json_string("client_credentials"));
    if (agent) {
        json_object_set_new(extra, "agent_id", json_string(sk_jstr(client, "id")));
        json_object_set_new(extra, "app_scope", json_string("TENANT"));
    }
    else {
        json_object_set_new(extra, "app_scope", json_string(app_scope));
        if (!strcmp(app_scope, "GLOBAL"))
            json_object_set_new(extra, "platform_token", json_true());
    }
    c.iss = sk_oauth_issuer(q, slug);
    c.sub = sk_jstr(client, "client_id");
    c.aud = resource ? resource : sk_jstr(client, "client_id");
    c.client_id = sk_jstr(client, "client_id");
    c.scope = scope;
    c.tenant_id = slug ? sk_jstr(client, "url_tenant_id") : NULL;
    c.partner_id = sk_jstr(client, "partner_id");
    c.ttl = (int)json_integer_value(json_object_get(client, "token_lifetime"));
    if (c.ttl <= 0)
        c.ttl = sk_config_access_ttl(q->cfg);
    c.extra = extra;
    if (db)
        sk_keyring_refresh(sk_startup_keyring(), db, q->p, 0);
    at = sk_token_issue(q->p, sk_startup_keyring(), &c, (long long)apr_time_sec(apr_time_now()), NULL);
    if (!at)
        return sk_oauth_error(q, HTTP_SERVICE_UNAVAILABLE, "temporarily_unavailable", "no signing key");
    sk_no_store(q);
    return sk_reply(q, HTTP_OK, json_pack("{s:s,s:s,s:i,s:s}", "access_token", at, "token_type", "Bearer",
                                          "expires_in", c.ttl, "scope", scope));
}

#define GT_EXCHANGE "urn:ietf:params:oauth:grant-type:token-exchange"
#define MAX_FORM_FIELDS 64

/* RFC 6749 §3.1/§3.2: a parameter appears at most once (resource and audience may repeat, and are
 * checked where they are used); a bounded number of fields. */
int sk_oauth_form_check(sk_req *q)
{
    const apr_array_header_t *a = apr_table_elts(q->form);
    const apr_table_entry_t *e = (const apr_table_entry_t *)a->elts;
    int i, j;
    if (a->nelts > MAX_FORM_FIELDS)
        return sk_oauth_error(q, HTTP_BAD_REQUEST, "invalid_request", "too many parameters"), DONE;
    for (i = 0; i < a->nelts; i++) {
        if (!strcmp(e[i].key, "resource") || !strcmp(e[i].key, "audience"))
            continue;
        for (j = i + 1; j < a->nelts; j++)
            if (!strcmp(e[i].key, e[j].key))
                return sk_oauth_error(q, HTTP_BAD_REQUEST, "invalid_request",
                                      apr_psprintf(q->p, "parameter '%s' is repeated", e[i].key)), DONE;
    }
    return OK;
}

/* An application's grant_types, when set, lists the grants it may use. */
static int grant_enabled(json_t *client, const char *grant)
{
    json_t *list = json_object_get(client, "grant_types"), *v;
    size_t i;
    if (!json_is_array(list) || json_array_size(list) == 0)
        return 1;
    json_array_foreach(list, i, v)
        if (json_is_string(v) && !strcmp(json_string_value(v), grant))
            return 1;
    return 0;
}

int sk_oauth_token(sk_req *q)
{
    const char *slug = sk_oauth_slug(q), *grant;
    json_t *client = NULL;

    if (sk_req_read_form(q, form_error) != OK)
        return OK;
    if (slug && !sk_valid_slug(slug))
        return sk_fail(q, HTTP_NOT_FOUND, "Tenant not found");
    if (sk_oauth_form_check(q) != OK)
        return OK;
    grant = apr_table_get(q->form, "grant_type");
    if (!grant || !*grant)
        return sk_oauth_error(q, HTTP_BAD_REQUEST, "invalid_request", "grant_type is required");
    if (sk_oauth_client_auth(q, slug, 1, &client) != OK)
        return OK;

    if (strcmp(grant, "client_credentials") && strcmp(grant, "authorization_code") &&
        strcmp(grant, "refresh_token") && strcmp(grant, GT_EXCHANGE))
        return sk_oauth_error(q, HTTP_BAD_REQUEST, "unsupported_grant_type",
                              "grant_type is not supported");
    /* public clients: the authorization code (with PKCE) and its refresh tokens only */
    if (sk_oauth_public_client(client) && strcmp(grant, "authorization_code") && strcmp(grant, "refresh_token"))
        return sk_oauth_error(q, HTTP_BAD_REQUEST, "unauthorized_client",
                              "public clients may use only the authorization_code and refresh_token grants");
    if (!grant_enabled(client, grant))
        return sk_oauth_error(q, HTTP_BAD_REQUEST, "unauthorized_client",
                              "this grant is not enabled for the client");

    if (!strcmp(grant, "client_credentials"))
        return client_credentials_grant(q, slug, client);
    if (!strcmp(grant, "refresh_token"))
        return sk_oauth_refresh_grant(q, slug, client);
    if (!strcmp(grant, GT_EXCHANGE))
        return sk_oauth_exchange_grant(q, slug, client);
    if (!sk_oauth_code_grant)
        return sk_oauth_error(q, HTTP_BAD_REQUEST, "unsupported_grant_type",
                              "grant_type is not supported");
    return sk_oauth_code_grant(q, slug, client);
}
