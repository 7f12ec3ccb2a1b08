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

#include <apr_strings.h>
#include <apr_base64.h>
#include <http_protocol.h>

APLOG_USE_MODULE(scaikey);

const sk_flavour sk_flavour_platform = { 0 };
const sk_flavour sk_flavour_tenant = { 1 };

#define MAX_SCOPE_LEN 2048

static const char *str(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

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

/* client_secret_basic (RFC 6749 §2.3.1: both parts form-urlencoded) or client_secret_post. */
static int client_credentials_of(sk_req *q, const char **id, const char **secret, int *basic)
{
    const char *h = apr_table_get(q->r->headers_in, "Authorization");
    const char *fid = apr_table_get(q->form, "client_id"), *fsecret = apr_table_get(q->form, "client_secret");
    *basic = 0;
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
        *basic = 1;
        /* a second set of credentials in the body is ambiguous */
        if (fsecret)
            return -1;
        if (fid && strcmp(fid, plain))
            return -1;
        return 0;
    }
    *id = fid;
    *secret = fsecret;
    return 0;
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
    const char *type = str(client, "application_type"), *app_scope = str(client, "scope");
    int agent = !strcmp(str(client, "kind"), "agent");
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
    if (resource && (strlen(resource) > 2000 || !strchr(resource, ':')))
        return sk_oauth_error(q, HTTP_BAD_REQUEST, "invalid_target", "resource must be an absolute URI");

    extra = sk_pool_json(q->p, json_object());
    json_object_set_new(extra, "token_type", json_string("client_credentials"));
    if (agent) {
        json_object_set_new(extra, "agent_id", json_string(str(client, "id")));
        json_object_set_new(extra, "app_scope", json_string("TENANT"));
    }
    else {
        json_object_set_new(extra, "app_scope", json_string(app_scope));
        if (!strcmp(app_scope, "GLOBAL"))
            json_object_set_new(extra, "platform_token", json_true());
    }
    c.iss = sk_oauth_issuer(q, slug);
    c.sub = str(client, "client_id");
    c.aud = resource ? resource : str(client, "client_id");
    c.client_id = str(client, "client_id");
    c.scope = scope;
    c.tenant_id = slug ? str(client, "url_tenant_id") : NULL;
    c.partner_id = str(client, "partner_id");
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

int sk_oauth_token(sk_req *q)
{
    const sk_flavour *fl = q->data;
    const char *slug = fl->tenant ? sk_req_param(q, "tenant_slug") : NULL;
    const char *grant, *id, *secret;
    json_t *client = NULL;
    sk_db *db;
    sk_db_status st;
    int basic;

    if (sk_req_read_form(q, form_error) != OK)
        return OK;
    if (slug && !sk_valid_slug(slug))
        return sk_fail(q, HTTP_NOT_FOUND, "Tenant not found");
    grant = apr_table_get(q->form, "grant_type");
    if (!grant)
        return sk_oauth_error(q, HTTP_BAD_REQUEST, "invalid_request", "grant_type is required");
    if (client_credentials_of(q, &id, &secret, &basic) != 0)
        return sk_oauth_error(q, HTTP_UNAUTHORIZED, "invalid_client", "malformed client credentials");
    if (!id || !*id || strlen(id) > 128)
        return sk_oauth_error(q, HTTP_UNAUTHORIZED, "invalid_client", "client authentication failed");
    if (!(db = sk_req_db(q)))
        return sk_oauth_error(q, HTTP_SERVICE_UNAVAILABLE, "temporarily_unavailable", "try again later");
    st = slug ? SK_QJ(db, "oauth_client_tenant", &client, id, slug) : SK_QJ(db, "oauth_client_platform", &client, id);
    if (st != SK_DB_OK && st != SK_DB_NOTFOUND && st != SK_DB_INVALID)
        return sk_oauth_error(q, HTTP_SERVICE_UNAVAILABLE, "temporarily_unavailable", "try again later");
    sk_pool_json(q->p, client);
    if (slug && st == SK_DB_OK && !str(client, "url_tenant_id"))
        return sk_fail(q, HTTP_NOT_FOUND, "Tenant not found");
    /* unknown client, wrong secret, secret missing: one answer; the digest compare is constant-time */
    if (st != SK_DB_OK || !json_is_true(json_object_get(client, "live")) || !str(client, "secret_hash") ||
        !secret || !sk_ct_streq(sk_sha256_hex(q->p, secret), str(client, "secret_hash")))
        return sk_oauth_error(q, HTTP_UNAUTHORIZED, "invalid_client", "client authentication failed");

    if (!strcmp(grant, "client_credentials"))
        return client_credentials_grant(q, slug, client);
    return sk_oauth_error(q, HTTP_BAD_REQUEST, "unsupported_grant_type",
                          apr_psprintf(q->p, "grant_type '%s' is not supported", grant));
}
