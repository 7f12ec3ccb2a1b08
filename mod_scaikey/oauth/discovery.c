/* Discovery documents (OpenID Connect Discovery 1.0 §3, RFC 8414 §2) of both flavours: exactly
 * what this provider supports, at {issuer}/.well-known/openid-configuration and
 * {issuer}/.well-known/oauth-authorization-server. */
#include "oauth/oauth.h"
#include "http/response.h"
#include "http/validate.h"
#include "core/jwt.h"
#include "core/pooljson.h"
#include "scaikey.h"

#include <apr_strings.h>
#include <string.h>
#include <http_protocol.h>

static json_t *strings(const char *const *v)
{
    json_t *a = json_array();
    for (; *v; v++)
        json_array_append_new(a, json_string(*v));
    return a;
}

int sk_oauth_discovery(sk_req *q)
{
    static const char *const grants[] = { "authorization_code", "refresh_token", "client_credentials",
                                          "urn:ietf:params:oauth:grant-type:token-exchange", NULL };
    static const char *const auth_methods[] = { "client_secret_basic", "client_secret_post", "none", NULL };
    static const char *const confidential_methods[] = { "client_secret_basic", "client_secret_post", NULL };
    static const char *const scopes_tenant[] = { "openid", "profile", "email", "groups", "offline_access", NULL };
    static const char *const scopes_platform[] = { "openid", "profile", "email", "groups", "offline_access",
                                                   "admin:read", "admin:write", NULL };
    static const char *const claims[] = { "iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash",
                                          "azp", "sid", "tenant_id", "name", "given_name", "family_name",
                                          "preferred_username", "email", "email_verified", "groups", NULL };
    const char *slug = sk_oauth_slug(q), *iss, *base, *jwks, *alg;
    json_t *doc, *t = NULL;

    if (slug) {
        sk_db *db;
        sk_db_status st;
        if (!sk_valid_slug(slug))
            return sk_fail(q, HTTP_NOT_FOUND, "Tenant not found");
        if (!(db = sk_req_db(q)))
            return sk_fail_unavailable(q);
        st = SK_QJ(db, "tenant_by_slug", &t, slug);
        if (st == SK_DB_NOTFOUND)
            return sk_fail(q, HTTP_NOT_FOUND, "Tenant not found");
        if (st != SK_DB_OK)
            return sk_fail_unavailable(q);
        json_decref(t);
    }
    iss = sk_oauth_issuer(q, slug);
    /* the platform's endpoints sit under its issuer; a tenant's under {issuer}/oauth */
    base = slug ? apr_pstrcat(q->p, iss, "/oauth", NULL) : iss;
    jwks = slug ? apr_pstrcat(q->p, iss, "/.well-known/jwks.json", NULL)
                : apr_pstrcat(q->p, q->cfg->issuer, "/api/v1/platform/.well-known/jwks.json", NULL);
    alg = sk_alg_name(sk_config_alg(q->cfg));
    if (!alg)
        alg = "RS256";

    doc = json_object();
    json_object_set_new(doc, "issuer", json_string(iss));
    json_object_set_new(doc, "authorization_endpoint", json_string(apr_pstrcat(q->p, base, "/authorize", NULL)));
    json_object_set_new(doc, "token_endpoint", json_string(apr_pstrcat(q->p, base, "/token", NULL)));
    json_object_set_new(doc, "userinfo_endpoint", json_string(apr_pstrcat(q->p, base, "/userinfo", NULL)));
    json_object_set_new(doc, "jwks_uri", json_string(jwks));
    json_object_set_new(doc, "introspection_endpoint", json_string(apr_pstrcat(q->p, base, "/introspect", NULL)));
    json_object_set_new(doc, "revocation_endpoint", json_string(apr_pstrcat(q->p, base, "/revoke", NULL)));
    json_object_set_new(doc, "end_session_endpoint", json_string(apr_pstrcat(q->p, base, "/logout", NULL)));
    json_object_set_new(doc, "scopes_supported", strings(slug ? scopes_tenant : scopes_platform));
    json_object_set_new(doc, "response_types_supported", json_pack("[s]", "code"));
    json_object_set_new(doc, "response_modes_supported", json_pack("[s]", "query"));
    json_object_set_new(doc, "grant_types_supported", strings(grants));
    json_object_set_new(doc, "token_endpoint_auth_methods_supported", strings(auth_methods));
    json_object_set_new(doc, "introspection_endpoint_auth_methods_supported", strings(confidential_methods));
    json_object_set_new(doc, "revocation_endpoint_auth_methods_supported", strings(auth_methods));
    json_object_set_new(doc, "code_challenge_methods_supported", json_pack("[s]", "S256"));
    json_object_set_new(doc, "subject_types_supported", json_pack("[s]", "public"));
    /* the configured algorithm first; the other one too, since a rotation on a server configured
     * differently can make it the signing one (docs/configuration.md, "Keys and rotation") */
    json_object_set_new(doc, "id_token_signing_alg_values_supported",
                        json_pack("[s,s]", alg, strcmp(alg, "ES256") ? "ES256" : "RS256"));
    json_object_set_new(doc, "claims_supported", strings(claims));
    json_object_set_new(doc, "claims_parameter_supported", json_false());
    json_object_set_new(doc, "request_parameter_supported", json_false());
    json_object_set_new(doc, "request_uri_parameter_supported", json_false());
    /* RFC 9207: every authorization response carries iss */
    json_object_set_new(doc, "authorization_response_iss_parameter_supported", json_true());
    apr_table_setn(q->r->headers_out, "Cache-Control", "public, max-age=300");
    return sk_reply(q, HTTP_OK, doc);
}
