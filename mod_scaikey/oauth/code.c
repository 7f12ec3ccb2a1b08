/* Authorization codes: issuing them, and grant_type=authorization_code (RFC 6749 §4.1.3,
 * RFC 7636 §4.5-4.6). */
#include "oauth/code.h"
#include "oauth/oauth.h"
#include "oauth/issue.h"
#include "http/response.h"
#include "core/secrets.h"
#include "core/policy.h"
#include "core/pooljson.h"
#include "scaikey.h"
#include "core/jsonget.h"

#include <apr_strings.h>
#include <apr_lib.h>
#include <http_protocol.h>
#include <string.h>

APLOG_USE_MODULE(scaikey);

#define MAX_CODE_LEN 256
#define INVALID_CODE "authorization code is invalid, expired or already used"

int sk_pkce_valid(const char *s)
{
    apr_size_t n = 0;
    if (!s)
        return 0;
    for (; *s; s++, n++)
        if (n >= 128 || !(apr_isalnum(*s) || *s == '-' || *s == '.' || *s == '_' || *s == '~'))
            return 0;
    return n >= 43;
}

const char *sk_oauth_code_create(sk_req *q, const sk_code_req *c)
{
    sk_db *db = sk_req_db(q);
    const char *code = sk_random_token(q->p, NULL, 32);
    sk_db_status st;
    if (!db || !code)
        return NULL;
    st = SK_Q(db, "code_insert", sk_sha256_hex(q->p, code), c->client_id, c->application_id, c->user_id,
              c->session_id, c->tenant_id, c->redirect_uri, c->scope, c->nonce, c->code_challenge,
              c->code_challenge_method, c->resource,
              c->auth_time > 0 ? apr_psprintf(q->p, "%" APR_INT64_T_FMT, (apr_int64_t)c->auth_time) : NULL);
    if (st != SK_DB_OK) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, SKLOGNO(1021) "authorization code not stored: %s",
                      sk_db_error(db));
        return NULL;
    }
    return code;
}

static int unavailable(sk_req *q)
{
    return sk_oauth_error(q, HTTP_SERVICE_UNAVAILABLE, "temporarily_unavailable", "try again later");
}

/* A redeemed code came back: whoever holds it may hold the tokens too, so they end. */
static void code_reused(sk_req *q, sk_db *db, const char *digest)
{
    json_t *row = NULL;
    sk_audit *a;
    if (sk_db_begin(db) != SK_DB_OK)
        return;
    if (SK_QJ(db, "code_reuse_revoke", &row, digest) != SK_DB_OK) {
        sk_db_rollback(db);
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, SKLOGNO(1022) "tokens of a reused code not revoked: %s",
                      sk_db_error(db));
        return;
    }
    sk_pool_json(q->p, row);
    a = sk_req_audit(q, "oauth.code_reuse", "denied");
    a->actor_id = sk_jstr(row, "user_id");
    a->actor_type = "user";
    a->tenant_id = sk_jstr(row, "tenant_id");
    a->resource_type = "session";
    a->resource_id = sk_jstr(row, "grant_session_id");
    a->details = sk_pool_json(q->p, json_pack("{s:s,s:s?,s:I,s:I}", "reason", "authorization_code_reuse",
                                              "client_id", sk_jstr(row, "client_id"),
                                              "sessions_revoked", json_integer_value(json_object_get(row, "sessions")),
                                              "refresh_tokens_revoked",
                                              json_integer_value(json_object_get(row, "refresh_tokens"))));
    if (sk_audit_write(db, a) != SK_DB_OK || sk_db_commit(db) != SK_DB_OK) {
        sk_db_rollback(db);
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, SKLOGNO(1023) "tokens of a reused code not revoked: %s",
                      sk_db_error(db));
    }
}

/* The code was spent by this request but does not fit it: it stays spent. */
static int refuse_spent(sk_req *q, sk_db *db, const char *description)
{
    if (sk_db_commit(db) != SK_DB_OK)
        return unavailable(q);
    return sk_oauth_error(q, HTTP_BAD_REQUEST, "invalid_grant", description);
}

static int pkce_matches(sk_req *q, const char *verifier, const char *challenge)
{
    unsigned char d[32];
    sk_sha256(verifier, strlen(verifier), d);
    return sk_ct_streq(sk_b64url_encode(q->p, d, sizeof(d)), challenge);
}

/* RFC 6749 §3.2: parameters must not be included more than once */
static int repeated(sk_req *q, const char *name)
{
    const apr_array_header_t *a = apr_table_elts(q->form);
    const apr_table_entry_t *e = (const apr_table_entry_t *)a->elts;
    int i, n = 0;
    for (i = 0; i < a->nelts; i++)
        if (e[i].key && !strcmp(e[i].key, name))
            n++;
    return n > 1;
}

static int is_type(json_t *client, const char *type)
{
    const char *t = sk_jstr(client, "application_type");
    return t && !strcmp(t, type);
}

int sk_oauth_code_grant(sk_req *q, const char *slug, json_t *client)
{
    const char *code = apr_table_get(q->form, "code"), *redirect_uri = apr_table_get(q->form, "redirect_uri");
    const char *verifier = apr_table_get(q->form, "code_verifier"), *resource = apr_table_get(q->form, "resource");
    const char *client_id = sk_jstr(client, "client_id"), *digest, *challenge, *sid = NULL, *family = NULL, *scope;
    json_t *row = NULL, *user;
    sk_grant_ctx g = { 0 };
    sk_audit *a;
    sk_db *db = sk_req_db(q);
    sk_db_status st;
    int ttl, refresh_ttl, with_refresh, secs;

    if (repeated(q, "code") || repeated(q, "redirect_uri") || repeated(q, "code_verifier") || repeated(q, "resource"))
        return sk_oauth_error(q, HTTP_BAD_REQUEST, "invalid_request", "a parameter was repeated");
    if (!code || !*code)
        return sk_oauth_error(q, HTTP_BAD_REQUEST, "invalid_request", "code is required");
    if (!redirect_uri || !*redirect_uri)
        return sk_oauth_error(q, HTTP_BAD_REQUEST, "invalid_request", "redirect_uri is required");
    if (verifier && !sk_pkce_valid(verifier))
        return sk_oauth_error(q, HTTP_BAD_REQUEST, "invalid_request",
                              "code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~");
    if (resource && !sk_oauth_valid_resource(resource))
        return sk_oauth_error(q, HTTP_BAD_REQUEST, "invalid_target", "resource must be an absolute URI");
    if (strlen(code) > MAX_CODE_LEN)
        return sk_oauth_error(q, HTTP_BAD_REQUEST, "invalid_grant", INVALID_CODE);
    if (!db)
        return unavailable(q);
    digest = sk_sha256_hex(q->p, code);

    if (sk_db_begin(db) != SK_DB_OK)
        return unavailable(q);
    st = SK_QJ(db, "code_spend", &row, digest, client_id);
    if (st == SK_DB_NOTFOUND) {
        sk_db_rollback(db);
        return sk_oauth_error(q, HTTP_BAD_REQUEST, "invalid_grant", INVALID_CODE);
    }
    if (st != SK_DB_OK) {
        sk_db_rollback(db);
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, SKLOGNO(1024) "authorization code look-up failed: %s",
                      sk_db_error(db));
        return unavailable(q);
    }
    sk_pool_json(q->p, row);
    if (!json_is_true(json_object_get(row, "spent"))) {
        sk_db_rollback(db);
        if (json_is_true(json_object_get(row, "used"))) {
            code_reused(q, db, digest);
            return sk_oauth_error(q, HTTP_BAD_REQUEST, "invalid_grant", "authorization code already used");
        }
        if (!json_is_true(json_object_get(row, "client_ok")))
            return sk_oauth_error(q, HTTP_BAD_REQUEST, "invalid_grant",
                                  "authorization code was issued to another client");
        return sk_oauth_error(q, HTTP_BAD_REQUEST, "invalid_grant", "authorization code expired");
    }

    /* from here on the code is spent, whatever the outcome */
    user = json_object_get(row, "user");
    if (slug && (!sk_jstr(row, "tenant_id") || !sk_jstr(client, "url_tenant_id") ||
                 strcmp(sk_jstr(row, "tenant_id"), sk_jstr(client, "url_tenant_id"))))
        return refuse_spent(q, db, "authorization code was issued for another tenant");
    if (strcmp(redirect_uri, sk_jstr(row, "redirect_uri") ? sk_jstr(row, "redirect_uri") : ""))
        return refuse_spent(q, db, "redirect_uri differs from the one of the authorization request");
    challenge = sk_jstr(row, "code_challenge");
    if (challenge) {
        if (!verifier)
            return refuse_spent(q, db, "code_verifier is required");
        if (!pkce_matches(q, verifier, challenge))
            return refuse_spent(q, db, "code_verifier does not match the code_challenge");
    }
    else if (verifier)
        return refuse_spent(q, db, "code_verifier sent for an authorization request without code_challenge");
    else if (sk_oauth_public_client(client))
        return refuse_spent(q, db, "public clients must use PKCE");
    if (!json_is_true(json_object_get(row, "user_live")))
        return refuse_spent(q, db, "the account is not active");
    if (resource && sk_jstr(row, "resource") && strcmp(resource, sk_jstr(row, "resource")))
        return refuse_spent(q, db, "resource differs from the one of the authorization request");

    scope = sk_jstr(row, "scope");
    with_refresh = is_type(client, "WEB") || is_type(client, "NATIVE") || sk_scope_has(scope, "offline_access");
    ttl = (int)json_integer_value(json_object_get(row, "token_lifetime"));
    if (ttl <= 0)
        ttl = sk_config_access_ttl(q->cfg);
    refresh_ttl = (int)json_integer_value(json_object_get(row, "refresh_token_lifetime"));
    if (refresh_ttl < sk_config_refresh_ttl(q->cfg))
        refresh_ttl = sk_config_refresh_ttl(q->cfg);
    secs = with_refresh && refresh_ttl > ttl ? refresh_ttl : ttl;

    a = sk_req_audit_user(q, "oauth.authorization_code", "success", user, "user");
    a->partner_id = sk_jstr(row, "partner_id");
    a->resource_type = "session";
    a->details = sk_pool_json(q->p, json_pack("{s:s,s:s?}", "client_id", client_id, "sso_session_id",
                                              sk_jstr(row, "session_id")));
    if ((st = SK_QV(db, "session_create", &sid, sk_jstr(user, "id"), sk_jstr(user, "tenant_id"), sk_jstr(row, "partner_id"),
                    "user", client_id, q->ip, q->user_agent, apr_itoa(q->p, secs))) != SK_DB_OK ||
        (st = SK_QV(db, "code_bind_grant", &family, sid, digest)) != SK_DB_OK ||
        (a->resource_id = sid, st = sk_audit_write(db, a)) != SK_DB_OK ||
        (st = sk_db_commit(db)) != SK_DB_OK) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, SKLOGNO(1025) "authorization code not redeemed: %s",
                      sk_db_error(db));
        sk_db_rollback(db);
        return unavailable(q);
    }

    g.slug = slug;
    g.client = client;
    g.user = user;
    g.session_id = sid;
    g.scope = scope ? scope : "";
    g.nonce = sk_jstr(row, "nonce");
    g.auth_time = (long long)json_integer_value(json_object_get(row, "auth_time"));
    g.resource = resource ? resource : sk_jstr(row, "resource");
    g.family_id = family;
    g.with_refresh = with_refresh;
    return sk_oauth_issue(q, &g);
}
