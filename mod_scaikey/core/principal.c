#include "core/principal.h"
#include "core/tokens.h"
#include "core/pooljson.h"

#include <apr_strings.h>
#include <apr_time.h>

static const char *claim(apr_pool_t *p, json_t *claims, const char *name)
{
    const char *v = json_string_value(json_object_get(claims, name));
    return v ? apr_pstrdup(p, v) : NULL;
}

#define PLATFORM_ISS_PATH "/api/v1/platform/oauth"
#define PORTAL_AUDIENCE   "scaikey-portal"
#define TENANT_ISS_PATH   "/api/v1/auth/tenants/"

/* tokens of the tenant login and the portal (not those a tenant's OAuth clients get) */
static int portal_audience(json_t *aud)
{
    size_t i;
    json_t *v;
    if (json_is_string(aud))
        return !strcmp(json_string_value(aud), PORTAL_AUDIENCE);
    json_array_foreach(aud, i, v)
        if (json_is_string(v) && !strcmp(json_string_value(v), PORTAL_AUDIENCE))
            return 1;
    return 0;
}

/* a client's own token (client_credentials) */
static int client_token(json_t *c)
{
    json_t *t = json_object_get(c, "token_type");
    return json_is_string(t) && !strcmp(json_string_value(t), "client_credentials");
}

static int has_audience(json_t *aud, const char *want)
{
    size_t i;
    json_t *v;
    if (json_is_string(aud))
        return !strcmp(json_string_value(aud), want);
    json_array_foreach(aud, i, v)
        if (json_is_string(v) && !strcmp(json_string_value(v), want))
            return 1;
    return 0;
}

/* Where the platform issuer ({base}/api/v1/platform/oauth) is expected, a person may also present
 * a token of their own tenant's issuer, {base}/api/v1/auth/tenants/{slug}, made by the tenant
 * login or the portal (aud "scaikey-portal"), and a tenant's client its client_credentials token
 * (which the admin API then refuses with 403 rather than 401). The slug of such a
 * token (signature and expiry verified), or NULL; the session check then holds the user to that
 * tenant. */
static const char *tenant_issuer_slug(apr_pool_t *p, sk_keyring *kr, const char *issuer, int leeway,
                                      long long now, const char *token, json_t **claims)
{
    apr_size_t n = strlen(issuer), k = strlen(PLATFORM_ISS_PATH);
    const char *reason = NULL, *iss, *slug;
    json_t *c;

    if (n < k || strcmp(issuer + n - k, PLATFORM_ISS_PATH))
        return NULL;
    if (!(c = sk_token_verify(p, kr, token, NULL, NULL, leeway, now, &reason)))
        return NULL;
    iss = json_string_value(json_object_get(c, "iss"));
    if (!iss || strlen(iss) <= n - k + strlen(TENANT_ISS_PATH) || strncmp(iss, issuer, n - k) ||
        strncmp(iss + n - k, TENANT_ISS_PATH, strlen(TENANT_ISS_PATH)) ||
        strchr((slug = iss + n - k + strlen(TENANT_ISS_PATH)), '/') ||
        (!client_token(c) &&
         (!json_is_string(json_object_get(c, "sid")) || !portal_audience(json_object_get(c, "aud"))))) {
        json_decref(c);
        return NULL;
    }
    *claims = c;
    return apr_pstrdup(p, slug);
}

static sk_auth_status from_bearer(apr_pool_t *p, sk_keyring *kr, sk_db *db, const char *issuer, int leeway,
                                  const char *token, sk_principal **out, const char **reason, int tenants_too);

sk_auth_status sk_principal_from_bearer(apr_pool_t *p, sk_keyring *kr, sk_db *db, const char *issuer,
                                        int leeway, const char *token, sk_principal **out,
                                        const char **reason)
{
    return from_bearer(p, kr, db, issuer, leeway, token, out, reason, 0);
}

sk_auth_status sk_principal_for_api(apr_pool_t *p, sk_keyring *kr, sk_db *db, const char *issuer,
                                    int leeway, const char *token, sk_principal **out, const char **reason)
{
    return from_bearer(p, kr, db, issuer, leeway, token, out, reason, 1);
}

static sk_auth_status from_bearer(apr_pool_t *p, sk_keyring *kr, sk_db *db, const char *issuer, int leeway,
                                  const char *token, sk_principal **out, const char **reason, int tenants_too)
{
    long long now = (long long)apr_time_sec(apr_time_now());
    json_t *claims, *user = NULL;
    const char *tenant_slug = NULL;
    sk_principal *who;
    sk_db_status st;

    *out = NULL;
    sk_keyring_refresh(kr, db, p, 0);
    claims = sk_token_verify(p, kr, token, issuer, NULL, leeway, now, reason);
    if (!claims && *reason && !strcmp(*reason, "unknown key")) {
        /* a key created by another process since the last reload */
        sk_keyring_refresh(kr, db, p, 1);
        claims = sk_token_verify(p, kr, token, issuer, NULL, leeway, now, reason);
    }
    if (!claims && tenants_too && *reason && !strcmp(*reason, "issuer mismatch") &&
        !(tenant_slug = tenant_issuer_slug(p, kr, issuer, leeway, now, token, &claims)))
        *reason = "issuer mismatch";
    if (!claims)
        return SK_AUTH_REFUSED;
    sk_pool_json(p, claims);

    who = apr_pcalloc(p, sizeof(*who));
    who->claims = claims;
    who->scope = claim(p, claims, "scope");
    who->client_id = claim(p, claims, "client_id");
    who->session_id = claim(p, claims, "sid");
    who->platform_token = json_is_true(json_object_get(claims, "platform_token")) && !tenant_slug;
    who->admin_console = has_audience(json_object_get(claims, "aud"), "scaikey-admin");

    if (!who->session_id) {
        const char *live = NULL;
        /* a client's own token (client_credentials): the client must still be active ... */
        if (!who->client_id || !json_is_string(json_object_get(claims, "token_type")) ||
            strcmp(json_string_value(json_object_get(claims, "token_type")), "client_credentials")) {
            *reason = "token has no session";
            return SK_AUTH_REFUSED;
        }
        /* ... and the token not revoked (RFC 7009 revocation lists the jti until it expires) */
        st = SK_QV(db, "client_token_live", &live, who->client_id, claim(p, claims, "jti"));
        if (st == SK_DB_NOTFOUND) {
            *reason = "client disabled or deleted, or token revoked";
            return SK_AUTH_REFUSED;
        }
        if (st != SK_DB_OK)
            return SK_AUTH_UNAVAILABLE;
        who->actor_type = json_object_get(claims, "agent_id") ? "agent" : "service";
        who->tenant_id = claim(p, claims, "tenant_id");
        who->partner_id = claim(p, claims, "partner_id");
        *out = who;
        return SK_AUTH_OK;
    }
    /* people: the session must be live, the account and its tenant active */
    st = tenant_slug ? SK_QJ(db, "session_principal_tenant", &user, who->session_id, claim(p, claims, "sub"), tenant_slug)
                     : SK_QJ(db, "session_principal", &user, who->session_id, claim(p, claims, "sub"));
    if (st == SK_DB_NOTFOUND) {
        *reason = "session ended or account disabled";
        return SK_AUTH_REFUSED;
    }
    if (st != SK_DB_OK)
        return SK_AUTH_UNAVAILABLE;
    sk_pool_json(p, user);
    who->user = user;
    who->user_id = claim(p, user, "id");
    who->email = claim(p, user, "email");
    who->role = claim(p, user, "role");
    who->tenant_id = claim(p, user, "tenant_id");
    who->partner_id = claim(p, user, "partner_id");
    who->tenant_partner_id = claim(p, user, "tenant_partner_id");
    json_object_del(user, "tenant_partner_id");
    who->actor_type = (who->role && strcmp(who->role, "user")) ? "admin" : "user";
    *out = who;
    return SK_AUTH_OK;
}
