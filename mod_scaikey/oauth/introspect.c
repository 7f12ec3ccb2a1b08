/* Token introspection (RFC 7662) and revocation (RFC 7009).
 *
 * Introspection needs an authenticated confidential client of the flavour. An access token is
 * active when it is a token of this flavour's issuer (so a tenant's clients see only that
 * tenant's tokens), unexpired, and not revoked: the session of a person's token is live, the
 * client of a client's token is active and its jti not revoked. A refresh token is reported only
 * to the client it was issued to. Anything else is {"active": false}.
 *
 * Revocation takes any client of the flavour (public clients identify with client_id) and answers
 * 200 whatever the token: a refresh token of the client ends its whole family; an access token
 * of the client ends its session when it has one, else its jti is kept revoked until it expires. */
#include "oauth/oauth.h"
#include "http/response.h"
#include "http/validate.h"
#include "core/tokens.h"
#include "core/secrets.h"
#include "core/pooljson.h"
#include "startup.h"
#include "scaikey.h"
#include "core/jsonget.h"

#include <apr_strings.h>
#include <http_protocol.h>

APLOG_USE_MODULE(scaikey);

#define MAX_TOKEN_LEN SK_JWT_MAX_LEN

static int form_error(sk_req *q, int status, const char *error, const char *desc)
{
    return sk_oauth_error(q, status, error, desc);
}

static int inactive(sk_req *q)
{
    sk_no_store(q);
    return sk_reply(q, HTTP_OK, json_pack("{s:b}", "active", 0));
}

static int unavailable(sk_req *q)
{
    return sk_oauth_error(q, HTTP_SERVICE_UNAVAILABLE, "temporarily_unavailable", "try again later");
}

static int looks_like_jwt(const char *t)
{
    const char *dot = strchr(t, '.');
    return dot && strchr(dot + 1, '.');
}

/* the form's token and hint, after client authentication; DONE when a response was sent */
static int prologue(sk_req *q, int allow_public, const char **slug, json_t **client, const char **token,
                    const char **hint)
{
    if (sk_req_read_form(q, form_error) != OK)
        return DONE;
    *slug = sk_oauth_slug(q);
    if (*slug && !sk_valid_slug(*slug))
        return sk_fail(q, HTTP_NOT_FOUND, "Tenant not found"), DONE;
    if (sk_oauth_form_check(q) != OK)
        return DONE;
    if (sk_oauth_client_auth(q, *slug, allow_public, client) != OK)
        return DONE;
    *token = apr_table_get(q->form, "token");
    *hint = apr_table_get(q->form, "token_type_hint");
    if (!*token || !**token)
        return sk_oauth_error(q, HTTP_BAD_REQUEST, "invalid_request", "token is required"), DONE;
    return OK;
}

static int introspect_access(sk_req *q, const char *slug, const char *token, int *answered)
{
    static const char *const copied[] = { "scope", "client_id", "sub", "aud", "iss", "exp", "iat", "nbf",
                                          "jti", "sid", "act", "tenant_id", "partner_id", "role",
                                          "app_scope", "agent_id", "platform_token", NULL };
    sk_principal *who = NULL;
    const char *reason = NULL;
    json_t *out;
    int i;
    *answered = 0;
    switch (sk_oauth_principal(q, slug, token, &who, &reason)) {
    case SK_AUTH_OK:
        break;
    case SK_AUTH_UNAVAILABLE:
        *answered = 1;
        return unavailable(q);
    default:
        return OK;
    }
    out = json_pack("{s:b,s:s}", "active", 1, "token_type", "Bearer");
    for (i = 0; copied[i]; i++)
        if (json_object_get(who->claims, copied[i]))
            json_object_set(out, copied[i], json_object_get(who->claims, copied[i]));
    if (who->email)
        json_object_set_new(out, "username", json_string(who->email));
    *answered = 1;
    sk_no_store(q);
    return sk_reply(q, HTTP_OK, out);
}

static int introspect_refresh(sk_req *q, json_t *client, const char *token, int *answered)
{
    json_t *row = NULL;
    sk_db_status st;
    *answered = 0;
    if (strlen(token) > 512)
        return OK;
    st = SK_QJ(sk_req_db(q), "oauth_refresh_introspect", &row, sk_sha256_hex(q->p, token),
               sk_jstr(client, "client_id"));
    if (st == SK_DB_NOTFOUND)
        return OK;
    *answered = 1;
    if (st != SK_DB_OK)
        return unavailable(q);
    sk_pool_json(q->p, row);
    if (!json_is_true(json_object_get(row, "active")))
        return inactive(q);
    sk_no_store(q);
    return sk_reply(q, HTTP_OK, json_pack("{s:b,s:s?,s:s?,s:s?,s:O,s:O}", "active", 1,
                                          "scope", sk_jstr(row, "scope"), "client_id", sk_jstr(row, "client_id"),
                                          "sub", sk_jstr(row, "sub"), "exp", json_object_get(row, "exp"),
                                          "iat", json_object_get(row, "iat")));
}

int sk_oauth_introspect(sk_req *q)
{
    const char *slug, *token, *hint;
    json_t *client;
    int answered = 0, refresh_first;

    if (prologue(q, 0, &slug, &client, &token, &hint) != OK)
        return OK;
    if (strlen(token) > MAX_TOKEN_LEN)
        return inactive(q);
    if (!sk_req_db(q))
        return unavailable(q);
    refresh_first = (hint && !strcmp(hint, "refresh_token")) || !looks_like_jwt(token);
    if (refresh_first) {
        int rc = introspect_refresh(q, client, token, &answered);
        if (answered)
            return rc;
    }
    if (looks_like_jwt(token)) {
        int rc = introspect_access(q, slug, token, &answered);
        if (answered)
            return rc;
    }
    if (!refresh_first) {
        int rc = introspect_refresh(q, client, token, &answered);
        if (answered)
            return rc;
    }
    return inactive(q);
}

static int revoked(sk_req *q)
{
    /* RFC 7009 §2.2: 200, the body is ignored */
    sk_no_store(q);
    q->r->status = HTTP_OK;
    ap_set_content_length(q->r, 0);
    return OK;
}

static void audit(sk_req *q, sk_db *db, json_t *client, const char *what, const char *id)
{
    sk_audit *a = sk_req_audit(q, "oauth.revoke", "success");
    a->actor_id = sk_jstr(client, "client_id");
    a->actor_type = "service";
    a->tenant_id = sk_jstr(client, "url_tenant_id") ? sk_jstr(client, "url_tenant_id") : sk_jstr(client, "tenant_id");
    a->partner_id = sk_jstr(client, "partner_id");
    a->resource_type = what;
    a->resource_id = id;
    if (sk_audit_write(db, a) != SK_DB_OK)
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, SKLOGNO(2131) "audit write failed for oauth.revoke: %s",
                      sk_db_error(db));
}

/* 1 when the token was a refresh token of this client (now revoked), 0 if not, -1 store error */
static int revoke_refresh(sk_req *q, sk_db *db, json_t *client, const char *token)
{
    const char *n = NULL;
    sk_db_status st;
    if (strlen(token) > 512)
        return 0;
    st = SK_QV(db, "oauth_refresh_revoke", &n, sk_sha256_hex(q->p, token), sk_jstr(client, "client_id"));
    if (st == SK_DB_NOTFOUND)
        return 0;
    if (st != SK_DB_OK)
        return -1;
    audit(q, db, client, "refresh_token", NULL);
    return 1;
}

static int revoke_access(sk_req *q, sk_db *db, const char *slug, json_t *client, const char *token)
{
    const char *reason = NULL, *sid, *jti, *n = NULL;
    long long now = (long long)apr_time_sec(apr_time_now());
    json_t *claims;
    sk_db_status st;

    sk_keyring_refresh(sk_startup_keyring(), db, q->p, 0);
    claims = sk_token_verify(q->p, sk_startup_keyring(), token, sk_oauth_issuer(q, slug), NULL,
                             sk_config_clock_skew(q->cfg), now, &reason);
    if (!claims)
        return 0;     /* invalid or already expired: nothing to do */
    sk_pool_json(q->p, claims);
    /* RFC 7009 §2.1: only the client the token was issued to may revoke it */
    if (!sk_jstr(claims, "client_id") || strcmp(sk_jstr(claims, "client_id"), sk_jstr(client, "client_id")))
        return 0;
    sid = sk_jstr(claims, "sid");
    jti = sk_jstr(claims, "jti");
    if (sid) {
        st = SK_QV(db, "oauth_session_end", &n, sid, sk_jstr(claims, "sub"));
        if (st != SK_DB_OK && st != SK_DB_NOTFOUND)
            return -1;
        audit(q, db, client, "session", sid);
        return 1;
    }
    if (!jti)
        return 0;
    st = SK_Q(db, "oauth_jti_revoke", jti,
              apr_psprintf(q->p, "%" APR_INT64_T_FMT, (apr_int64_t)json_integer_value(json_object_get(claims, "exp"))));
    if (st != SK_DB_OK)
        return -1;
    audit(q, db, client, "access_token", jti);
    return 1;
}

int sk_oauth_revoke(sk_req *q)
{
    const char *slug, *token, *hint;
    json_t *client;
    sk_db *db;
    int rc = 0;

    if (prologue(q, 1, &slug, &client, &token, &hint) != OK)
        return OK;
    if (strlen(token) > MAX_TOKEN_LEN)
        return revoked(q);
    if (!(db = sk_req_db(q)))
        return unavailable(q);
    if (!looks_like_jwt(token) || (hint && !strcmp(hint, "refresh_token")))
        rc = revoke_refresh(q, db, client, token);
    if (rc == 0 && looks_like_jwt(token))
        rc = revoke_access(q, db, slug, client, token);
    if (rc < 0) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, SKLOGNO(2132) "revocation failed: %s", sk_db_error(db));
        return unavailable(q);
    }
    return revoked(q);
}
