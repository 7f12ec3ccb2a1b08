/* grant_type=refresh_token (RFC 6749 §6) with rotation.
 *
 * Every use spends the presented token and issues a new one of the same family, in one
 * transaction: the spend is a single UPDATE that only succeeds while the token is unused, so two
 * concurrent presentations cannot both succeed. A refresh token is bound to the client it was
 * issued to; another client presenting it gets invalid_grant and spends nothing.
 *
 * A spent token presented again means that two parties hold it: the whole family, every other
 * refresh token of the session and the session itself are revoked. There is no grace window: a
 * client that sends the same refresh token twice (for instance from two tabs racing) loses the
 * session and must sign in again. */
#include "oauth/oauth.h"
#include "oauth/issue.h"
#include "http/response.h"
#include "core/secrets.h"
#include "core/pooljson.h"
#include "startup.h"
#include "scaikey.h"
#include "core/jsonget.h"

#include <apr_strings.h>
#include <http_protocol.h>

APLOG_USE_MODULE(scaikey);

#define MAX_REFRESH_LEN 512
#define INVALID_REFRESH "refresh token is invalid, expired or revoked"

/* a spent token came back: end its family and session, and record it */
static void reused(sk_req *q, sk_db *db, const char *digest)
{
    json_t *row = NULL;
    sk_audit *a;
    if (sk_db_begin(db) != SK_DB_OK)
        return;
    if (SK_QJ(db, "oauth_refresh_reused", &row, digest) != SK_DB_OK) {
        sk_db_rollback(db);
        return;
    }
    sk_pool_json(q->p, row);
    a = sk_req_audit(q, "oauth.refresh", "denied");
    a->actor_id = sk_jstr(row, "user_id");
    a->actor_type = "user";
    a->tenant_id = sk_jstr(row, "tenant_id");
    a->partner_id = sk_jstr(row, "partner_id");
    a->resource_type = "session";
    a->resource_id = sk_jstr(row, "session_id");
    a->details = sk_pool_json(q->p, json_pack("{s:s,s:s?}", "reason", "refresh_token_reuse",
                                              "client_id", sk_jstr(row, "client_id")));
    if (sk_audit_write(db, a) != SK_DB_OK || sk_db_commit(db) != SK_DB_OK) {
        sk_db_rollback(db);
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, SKLOGNO(2111) "refresh family revocation failed: %s",
                      sk_db_error(db));
    }
}

int sk_oauth_refresh_grant(sk_req *q, const char *slug, json_t *client)
{
    const char *rt = apr_table_get(q->form, "refresh_token"), *requested = apr_table_get(q->form, "scope");
    const char *resource = apr_table_get(q->form, "resource"), *digest, *scope, *user_tenant;
    const char *client_id = sk_jstr(client, "client_id");
    json_t *row = NULL, *user;
    sk_grant_ctx g = { 0 };
    sk_issue_opts o = { 0 };
    sk_audit *a;
    sk_db *db = sk_req_db(q);
    sk_db_status st;

    if (!rt || !*rt)
        return sk_oauth_error(q, HTTP_BAD_REQUEST, "invalid_request", "refresh_token is required");
    if (strlen(rt) > MAX_REFRESH_LEN)
        return sk_oauth_error(q, HTTP_BAD_REQUEST, "invalid_grant", INVALID_REFRESH);
    if (requested && strlen(requested) > 2048)
        return sk_oauth_error(q, HTTP_BAD_REQUEST, "invalid_scope", "scope is too long");
    if (resource && !sk_oauth_valid_resource(resource))
        return sk_oauth_error(q, HTTP_BAD_REQUEST, "invalid_target", "resource must be an absolute URI");
    if (!db)
        return sk_oauth_error(q, HTTP_SERVICE_UNAVAILABLE, "temporarily_unavailable", "try again later");
    digest = sk_sha256_hex(q->p, rt);
    sk_keyring_refresh(sk_startup_keyring(), db, q->p, 0);

    if (sk_db_begin(db) != SK_DB_OK)
        return sk_oauth_error(q, HTTP_SERVICE_UNAVAILABLE, "temporarily_unavailable", "try again later");
    st = SK_QJ(db, "oauth_refresh_spend", &row, digest, client_id);
    if (st == SK_DB_NOTFOUND) {
        sk_db_rollback(db);
        reused(q, db, digest);
        return sk_oauth_error(q, HTTP_BAD_REQUEST, "invalid_grant", INVALID_REFRESH);
    }
    if (st != SK_DB_OK) {
        sk_db_rollback(db);
        return sk_oauth_error(q, HTTP_SERVICE_UNAVAILABLE, "temporarily_unavailable", "try again later");
    }
    sk_pool_json(q->p, row);
    user = json_object_get(row, "user");
    /* a tenant's endpoints serve that tenant's people only (a PARTNER app is shared by tenants) */
    user_tenant = sk_jstr(user, "tenant_id");
    if (slug && (!user_tenant || strcmp(user_tenant, sk_jstr(client, "url_tenant_id")))) {
        sk_db_rollback(db);
        return sk_oauth_error(q, HTTP_BAD_REQUEST, "invalid_grant", INVALID_REFRESH);
    }
    /* RFC 6749 §6: a narrower scope may be asked for; the new refresh token keeps the original */
    scope = sk_jstr(row, "scope");
    if (requested && *requested) {
        if (!sk_oauth_scope_subset(q->p, requested, scope)) {
            sk_db_rollback(db);
            return sk_oauth_error(q, HTTP_BAD_REQUEST, "invalid_scope",
                                  "scope exceeds the scope originally granted");
        }
        scope = requested;
    }

    g.slug = slug;
    g.client = client;
    g.user = user;
    g.session_id = sk_jstr(row, "session_id");
    g.scope = scope;
    g.auth_time = (long long)json_integer_value(json_object_get(row, "auth_time"));
    g.resource = resource;
    g.family_id = sk_jstr(row, "family_id");
    g.with_refresh = 1;

    a = sk_req_audit_user(q, "oauth.refresh", "success", user, "user");
    a->resource_type = "session";
    a->resource_id = g.session_id;
    a->details = sk_pool_json(q->p, json_pack("{s:s}", "client_id", client_id));

    o.spent_id = sk_jstr(row, "id");
    o.refresh_scope = sk_jstr(row, "scope");
    o.audit = a;
    return sk_oauth_issue_ex(q, &g, &o);
}
