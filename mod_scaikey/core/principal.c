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

sk_auth_status sk_principal_from_bearer(apr_pool_t *p, sk_keyring *kr, sk_db *db, const char *issuer,
                                        int leeway, const char *token, sk_principal **out,
                                        const char **reason)
{
    long long now = (long long)apr_time_sec(apr_time_now());
    json_t *claims, *user = NULL;
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
    if (!claims)
        return SK_AUTH_REFUSED;
    sk_pool_json(p, claims);

    who = apr_pcalloc(p, sizeof(*who));
    who->claims = claims;
    who->scope = claim(p, claims, "scope");
    who->client_id = claim(p, claims, "client_id");
    who->session_id = claim(p, claims, "sid");
    who->platform_token = json_is_true(json_object_get(claims, "platform_token"));

    if (!who->session_id) {
        const char *live = NULL;
        /* a client's own token (client_credentials): the client must still be active */
        if (!who->client_id || !json_is_string(json_object_get(claims, "token_type")) ||
            strcmp(json_string_value(json_object_get(claims, "token_type")), "client_credentials")) {
            *reason = "token has no session";
            return SK_AUTH_REFUSED;
        }
        st = SK_QV(db, "client_live", &live, who->client_id);
        if (st == SK_DB_NOTFOUND) {
            *reason = "client disabled or deleted";
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
    st = SK_QJ(db, "session_principal", &user, who->session_id, claim(p, claims, "sub"));
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
