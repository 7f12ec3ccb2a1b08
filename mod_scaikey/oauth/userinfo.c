/* The UserInfo endpoint (OpenID Connect Core §5.3): the signed-in person's claims, released by
 * the scopes of the access token. The token is a bearer token (RFC 6750: Authorization header,
 * or the access_token form field of a POST) of this flavour's issuer, of a person, with "openid";
 * errors are RFC 6750 challenges. */
#include "oauth/oauth.h"
#include "oauth/issue.h"
#include "http/response.h"
#include "http/validate.h"
#include "core/policy.h"
#include "core/pooljson.h"
#include "scaikey.h"

#include <apr_strings.h>
#include <http_protocol.h>

APLOG_USE_MODULE(scaikey);

static int challenge(sk_req *q, int status, const char *error, const char *desc)
{
    const char *realm = "Bearer realm=\"scaikey\"";
    sk_no_store(q);
    if (error)
        apr_table_setn(q->r->err_headers_out, "WWW-Authenticate",
                       apr_psprintf(q->p, "%s, error=\"%s\", error_description=\"%s\"", realm, error, desc));
    else
        apr_table_setn(q->r->err_headers_out, "WWW-Authenticate", realm);
    return sk_reply(q, status, error ? json_pack("{s:s,s:s}", "error", error, "error_description", desc)
                                     : json_pack("{s:s,s:s}", "error", "invalid_request",
                                                 "error_description", desc));
}

static int form_error(sk_req *q, int status, const char *error, const char *desc)
{
    return challenge(q, status, error, desc);
}

int sk_oauth_userinfo(sk_req *q)
{
    const char *slug = sk_oauth_slug(q), *token, *reason = NULL, *form_token = NULL;
    sk_principal *who = NULL;
    json_t *user = NULL, *out;
    sk_db_status st;
    int present = 0;

    if (slug && !sk_valid_slug(slug))
        return sk_fail(q, HTTP_NOT_FOUND, "Tenant not found");
    token = sk_req_bearer(q, &present);
    if (!strcmp(q->r->method, "POST")) {
        const char *ct = apr_table_get(q->r->headers_in, "Content-Type");
        if (ct && !strncasecmp(ct, "application/x-www-form-urlencoded", 33)) {
            if (sk_req_read_form(q, form_error) != OK)
                return OK;
            form_token = apr_table_get(q->form, "access_token");
        }
        else if (ap_discard_request_body(q->r) != OK)
            return OK;
    }
    /* RFC 6750 §2: one method only */
    if (form_token && present)
        return challenge(q, HTTP_BAD_REQUEST, "invalid_request", "more than one way of sending the token");
    if (form_token)
        token = form_token;
    if (!token) {
        if (present)
            return challenge(q, HTTP_UNAUTHORIZED, "invalid_token", "bearer token required");
        return challenge(q, HTTP_UNAUTHORIZED, NULL, "bearer token required");
    }
    switch (sk_oauth_principal(q, slug, token, &who, &reason)) {
    case SK_AUTH_OK:
        break;
    case SK_AUTH_UNAVAILABLE:
        return sk_fail_unavailable(q);
    default:
        return challenge(q, HTTP_UNAUTHORIZED, "invalid_token", "the access token is invalid, expired or revoked");
    }
    if (!who->user_id)
        return challenge(q, HTTP_UNAUTHORIZED, "invalid_token", "the access token is not a user's");
    if (!sk_scope_has(who->scope, "openid"))
        return challenge(q, HTTP_FORBIDDEN, "insufficient_scope", "the access token lacks the openid scope");

    st = SK_QJ(sk_req_db(q), "oauth_userinfo", &user, who->user_id);
    if (st == SK_DB_NOTFOUND)
        return challenge(q, HTTP_UNAUTHORIZED, "invalid_token", "the account is disabled");
    if (st != SK_DB_OK)
        return sk_fail_unavailable(q);
    sk_pool_json(q->p, user);
    out = json_pack("{s:s}", "sub", who->user_id);
    sk_oauth_user_claims(q, out, user, who->scope);
    if (json_is_string(json_object_get(user, "tenant_id")))
        json_object_set(out, "tenant_id", json_object_get(user, "tenant_id"));
    sk_no_store(q);
    return sk_reply(q, HTTP_OK, out);
}
