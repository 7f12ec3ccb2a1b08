/* RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0), GET or POST
 * /api/v1/platform/oauth/logout and /api/v1/auth/tenants/{slug}/oauth/logout.
 *
 * Parameters: id_token_hint (optional; an ID token this flavour issued, its signature checked, its
 * expiry not), client_id (optional; must agree with the hint's audience), post_logout_redirect_uri
 * (must be one of the client's post_logout_redirect_uris, which needs the client to be known from
 * one of the two; otherwise an error page), state (returned with the redirect).
 *
 * The browser's SSO session ends (revoked_at set, so prompt=none fails at once) and its cookie is
 * cleared; then the user goes to post_logout_redirect_uri, or sees a "signed out" page. Tokens that
 * applications already hold live on their own sessions and are not touched. */
#include "login/login.h"
#include "oauth/oauth.h"
#include "http/validate.h"
#include "core/jwt.h"
#include "core/keyring.h"
#include "core/pooljson.h"
#include "startup.h"
#include "scaikey.h"
#include "core/jsonget.h"

#include <apr_strings.h>
#include <http_protocol.h>
#include <string.h>

APLOG_USE_MODULE(scaikey);

static int form_error(sk_req *q, int status, const char *error, const char *desc)
{
    return sk_login_error_page(q, NULL, status == HTTP_REQUEST_ENTITY_TOO_LARGE ? status : HTTP_BAD_REQUEST,
                               "Invalid request", desc);
}

static const char *param(sk_req *q, const char *name)
{
    const char *v = q->form ? apr_table_get(q->form, name) : NULL;
    return v ? v : sk_req_query(q, name);
}

/* The client an ID token was issued to (its aud), when it verifies and is this flavour's. */
static const char *hint_client(sk_req *q, const char *slug, const char *hint)
{
    sk_db *db = sk_req_db(q);
    const char *reason = NULL, *iss;
    json_t *claims, *aud;
    if (db)
        sk_keyring_refresh(sk_startup_keyring(), db, q->p, 0);
    claims = sk_pool_json(q->p, sk_jwt_verify(q->p, hint, sk_keyring_lookup, sk_startup_keyring(), NULL, &reason));
    if (!claims) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, q->r, SKLOGNO(1061) "id_token_hint refused: %s", reason);
        return NULL;
    }
    iss = sk_jstr(claims, "iss");
    if (!iss || strcmp(iss, sk_oauth_issuer(q, slug)))
        return NULL;
    aud = json_object_get(claims, "aud");
    if (json_is_array(aud))
        aud = json_array_get(aud, 0);
    return json_is_string(aud) ? apr_pstrdup(q->p, json_string_value(aud)) : NULL;
}

int sk_oauth_logout(sk_req *q)
{
    const char *slug = sk_oauth_slug(q), *hint, *client_id, *uri, *state, *cid, *ended = NULL;
    json_t *tenant = NULL, *client = NULL, *user = NULL;
    sk_db *db;
    sk_db_status st;
    sk_audit *a;

    if (!strcmp(q->r->method, "POST") && sk_req_read_form(q, form_error) != OK)
        return OK;
    if (!(db = sk_req_db(q)))
        return sk_login_error_page(q, NULL, HTTP_SERVICE_UNAVAILABLE, "Temporarily unavailable",
                                   "Signing out is not available right now. Please try again shortly.");
    if (slug) {
        st = sk_valid_slug(slug) ? SK_QJ(db, "login_tenant", &tenant, slug) : SK_DB_NOTFOUND;
        sk_pool_json(q->p, tenant);
        if (st != SK_DB_OK)
            return sk_login_error_page(q, NULL, HTTP_NOT_FOUND, "Unknown organisation",
                                       "There is no sign-out page at this address.");
    }
    hint = param(q, "id_token_hint");
    client_id = param(q, "client_id");
    uri = param(q, "post_logout_redirect_uri");
    state = param(q, "state");
    if (state && strlen(state) > 2048)
        return sk_login_error_page(q, tenant, HTTP_BAD_REQUEST, "Invalid request", "state is too long.");

    cid = client_id;
    if (hint && *hint) {
        const char *aud = hint_client(q, slug, hint);
        if (!aud)
            return sk_login_error_page(q, tenant, HTTP_BAD_REQUEST, "Invalid request",
                                       "The sign-out request carries an ID token that is not valid here.");
        if (client_id && strcmp(client_id, aud))
            return sk_login_error_page(q, tenant, HTTP_BAD_REQUEST, "Invalid request",
                                       "client_id does not match the ID token.");
        cid = aud;
    }
    if (uri) {
        if (!cid || strlen(cid) > 128)
            return sk_login_error_page(q, tenant, HTTP_BAD_REQUEST, "Invalid request",
                                       "post_logout_redirect_uri needs id_token_hint or client_id.");
        st = slug ? SK_QJ(db, "authz_client_tenant", &client, cid, slug) : SK_QJ(db, "authz_client_platform", &client, cid);
        sk_pool_json(q->p, client);
        if (st != SK_DB_OK && st != SK_DB_NOTFOUND && st != SK_DB_INVALID)
            return sk_login_error_page(q, tenant, HTTP_SERVICE_UNAVAILABLE, "Temporarily unavailable",
                                       "Signing out is not available right now. Please try again shortly.");
        if (st != SK_DB_OK || !sk_jarray_has(json_object_get(client, "post_logout_redirect_uris"), uri))
            return sk_login_error_page(q, tenant, HTTP_BAD_REQUEST, "Invalid redirect URI",
                                       "The address to return to after signing out is not registered for this "
                                       "application (post_logout_redirect_uri).");
    }

    if (sk_sso_end(q, "logout", &ended, &user) != 0)
        return sk_login_error_page(q, tenant, HTTP_SERVICE_UNAVAILABLE, "Temporarily unavailable",
                                   "Signing out is not available right now. Please try again shortly.");
    if (ended) {
        a = sk_req_audit(q, "user.logout", "success");
        a->actor_id = sk_jstr(user, "id");
        a->actor_email = sk_jstr(user, "email");
        a->actor_type = "user";
        a->tenant_id = sk_jstr(user, "tenant_id");
        a->resource_type = "session";
        a->resource_id = ended;
        if (cid)
            a->details = sk_pool_json(q->p, json_pack("{s:s}", "client_id", cid));
        if (sk_audit_write(db, a) != SK_DB_OK)
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, SKLOGNO(1062) "audit write failed for user.logout: %s",
                          sk_db_error(db));
    }
    if (uri) {
        const char *url = state ? apr_pstrcat(q->p, uri, strchr(uri, '?') ? "&" : "?", "state=",
                                              ap_escape_urlencoded(q->p, state), NULL) : uri;
        apr_table_setn(q->r->headers_out, "Location", url);
        apr_table_setn(q->r->err_headers_out, "Cache-Control", "no-store");
        q->r->status = HTTP_MOVED_TEMPORARILY;
        ap_set_content_length(q->r, 0);
        return OK;
    }
    return sk_login_error_page(q, tenant, HTTP_OK, "Signed out", "You have been signed out.");
}
