/* Token issuance for the grants: access token, ID token, refresh token, §5.1 response. */
#include "oauth/issue.h"
#include "oauth/oauth.h"
#include "http/response.h"
#include "core/tokens.h"
#include "core/secrets.h"
#include "core/policy.h"
#include "core/pooljson.h"
#include "startup.h"
#include "scaikey.h"
#include "core/jsonget.h"

#include <apr_strings.h>
#include <http_protocol.h>

APLOG_USE_MODULE(scaikey);

static void set_str(json_t *o, const char *k, const char *v)
{
    if (v && *v)
        json_object_set_new(o, k, json_string(v));
}

/* OIDC Core §3.1.3.6: base64url of the left half of the SHA-256 of the access token (both RS256
 * and ES256 hash with SHA-256). */
static const char *at_hash(apr_pool_t *p, const char *at)
{
    unsigned char d[32];
    sk_sha256(at, strlen(at), d);
    return sk_b64url_encode(p, d, 16);
}

/* Names of the user's effective groups (direct and through nesting), sorted. */
static json_t *user_groups(sk_req *q, const char *user_id)
{
    json_t *names = NULL;
    sk_db *db = sk_req_db(q);
    if (!db || SK_QJ(db, "oauth_user_groups", &names, user_id) != SK_DB_OK || !json_is_array(names)) {
        json_decref(names);
        return json_array();
    }
    return names;
}

/* The identity claims the granted scope releases (ID token and userinfo). */
void sk_oauth_user_claims(sk_req *q, json_t *out, json_t *user, const char *scope)
{
    if (sk_scope_has(scope, "profile")) {
        const char *first = sk_jstr(user, "first_name"), *last = sk_jstr(user, "last_name");
        const char *name = sk_jstr(user, "display_name");
        if (!name || !*name) {
            if (first && *first && last && *last)
                name = apr_pstrcat(q->p, first, " ", last, NULL);
            else
                name = (first && *first) ? first : last;
        }
        set_str(out, "name", name);
        set_str(out, "given_name", first);
        set_str(out, "family_name", last);
        set_str(out, "preferred_username", sk_jstr(user, "email"));
    }
    if (sk_scope_has(scope, "email") && sk_jstr(user, "email")) {
        set_str(out, "email", sk_jstr(user, "email"));
        json_object_set_new(out, "email_verified",
                            json_boolean(json_is_true(json_object_get(user, "email_verified"))));
    }
    if (sk_scope_has(scope, "groups") && sk_jstr(user, "id"))
        json_object_set_new(out, "groups", user_groups(q, sk_jstr(user, "id")));
}

static char *id_token(sk_req *q, const sk_grant_ctx *g, const char *iss, const char *at, long long now,
                      int ttl)
{
    const sk_key *k = sk_keyring_signer(sk_startup_keyring());
    json_t *c;
    char *jwt;
    if (!k)
        return NULL;
    c = json_object();
    set_str(c, "iss", iss);
    set_str(c, "sub", sk_jstr(g->user, "id"));
    set_str(c, "aud", sk_jstr(g->client, "client_id"));
    set_str(c, "azp", sk_jstr(g->client, "client_id"));
    json_object_set_new(c, "iat", json_integer(now));
    json_object_set_new(c, "exp", json_integer(now + ttl));
    if (g->auth_time > 0)
        json_object_set_new(c, "auth_time", json_integer(g->auth_time));
    set_str(c, "nonce", g->nonce);
    set_str(c, "sid", g->session_id);
    set_str(c, "at_hash", at_hash(q->p, at));
    set_str(c, "tenant_id", sk_jstr(g->user, "tenant_id"));
    sk_oauth_user_claims(q, c, g->user, g->scope);
    jwt = sk_jwt_sign(q->p, k, c, NULL);
    json_decref(c);
    return jwt;
}

static int fail(sk_req *q, const sk_issue_opts *o, const char *what)
{
    sk_db *db = sk_req_db(q);
    if (o && o->spent_id && db)
        sk_db_rollback(db);
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, SKLOGNO(2101) "token issuance failed (%s): %s", what,
                  db ? sk_db_error(db) : "no database");
    return sk_oauth_error(q, HTTP_SERVICE_UNAVAILABLE, "temporarily_unavailable", "try again later");
}

int sk_oauth_issue_ex(sk_req *q, const sk_grant_ctx *g, const sk_issue_opts *o)
{
    static const sk_issue_opts none = { 0 };
    long long now = (long long)apr_time_sec(apr_time_now());
    const char *iss = sk_oauth_issuer(q, g->slug), *client_id = sk_jstr(g->client, "client_id");
    const char *at, *idt = NULL, *rt = NULL, *digest, *app_scope = sk_jstr(g->client, "scope");
    sk_token_claims c = { 0 };
    json_t *extra, *body;
    sk_db *db = sk_req_db(q);
    int ttl, refresh_ttl;

    if (!o)
        o = &none;
    /* (inside the refresh grant's transaction the grant has done this before BEGIN) */
    if (db && !o->spent_id)
        sk_keyring_refresh(sk_startup_keyring(), db, q->p, 0);

    ttl = (int)json_integer_value(json_object_get(g->client, "token_lifetime"));
    if (ttl <= 0)
        ttl = sk_config_access_ttl(q->cfg);
    if (o->max_exp > 0 && now + ttl > o->max_exp)
        ttl = o->max_exp > now ? (int)(o->max_exp - now) : 1;

    extra = sk_pool_json(q->p, json_object());
    if (o->extra)
        json_object_update(extra, o->extra);
    if (app_scope && !json_object_get(extra, "app_scope"))
        json_object_set_new(extra, "app_scope", json_string(app_scope));
    if (g->act)
        json_object_set(extra, "act", g->act);

    c.iss = iss;
    c.aud = g->resource ? g->resource : client_id;
    c.client_id = client_id;
    c.scope = g->scope ? g->scope : "";
    c.ttl = ttl;
    c.extra = extra;
    if (g->user) {
        const char *role = sk_jstr(g->user, "role");
        c.sub = sk_jstr(g->user, "id");
        c.sid = g->session_id;
        c.tenant_id = sk_jstr(g->user, "tenant_id");
        c.partner_id = sk_jstr(g->user, "partner_id");
        c.role = (role && strcmp(role, "user")) ? role : NULL;
        if (sk_scope_has(c.scope, "email"))
            c.email = sk_jstr(g->user, "email");
    }
    else {
        c.sub = o->sub ? o->sub : client_id;
        c.sid = g->session_id;
        if (!json_object_get(extra, "tenant_id"))
            c.tenant_id = g->slug ? sk_jstr(g->client, "url_tenant_id") : NULL;
        if (!json_object_get(extra, "partner_id"))
            c.partner_id = sk_jstr(g->client, "partner_id");
    }
    if (!(at = sk_token_issue(q->p, sk_startup_keyring(), &c, now, NULL))) {
        if (o->spent_id && db)
            sk_db_rollback(db);
        return sk_oauth_error(q, HTTP_SERVICE_UNAVAILABLE, "temporarily_unavailable", "no signing key");
    }
    if (g->user && !o->no_id_token && sk_scope_has(c.scope, "openid") &&
        !(idt = id_token(q, g, iss, at, now, ttl)))
        return fail(q, o, "id token");

    if (g->with_refresh && g->user && g->session_id) {
        const char *new_id = NULL;
        refresh_ttl = (int)json_integer_value(json_object_get(g->client, "refresh_token_lifetime"));
        if (refresh_ttl <= 0)
            refresh_ttl = sk_config_refresh_ttl(q->cfg);
        if (!db)
            return fail(q, o, "store");
        if (!(rt = sk_refresh_token_new(q->p, &digest)))
            return fail(q, o, "random");
        if (SK_QV(db, "refresh_insert", &new_id, digest, g->session_id, sk_jstr(g->user, "id"), client_id,
                  o->refresh_scope ? o->refresh_scope : c.scope, g->family_id,
                  apr_itoa(q->p, refresh_ttl)) != SK_DB_OK)
            return fail(q, o, "refresh token");
        if (o->spent_id && SK_Q(db, "refresh_link", new_id, o->spent_id) != SK_DB_OK)
            return fail(q, o, "refresh link");
    }
    if (o->audit && (!db || sk_audit_write(db, o->audit) != SK_DB_OK)) {
        if (o->spent_id)
            return fail(q, o, "audit");
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, SKLOGNO(2102) "audit write failed for %s: %s",
                      o->audit->action, db ? sk_db_error(db) : "no database");
    }
    if (o->spent_id && (!db || sk_db_commit(db) != SK_DB_OK))
        return fail(q, o, "commit");

    body = json_pack("{s:s,s:s,s:i,s:s}", "access_token", at, "token_type", "Bearer", "expires_in", ttl,
                     "scope", c.scope);
    if (o->issued_token_type)
        json_object_set_new(body, "issued_token_type", json_string(o->issued_token_type));
    if (rt)
        json_object_set_new(body, "refresh_token", json_string(rt));
    if (idt)
        json_object_set_new(body, "id_token", json_string(idt));
    sk_no_store(q);
    apr_table_setn(q->r->headers_out, "Pragma", "no-cache");
    return sk_reply(q, HTTP_OK, body);
}

int sk_oauth_issue(sk_req *q, const sk_grant_ctx *g)
{
    return sk_oauth_issue_ex(q, g, NULL);
}
