#include "core/tokens.h"
#include "core/secrets.h"

#include <string.h>

static void set_str(json_t *o, const char *k, const char *v)
{
    if (v)
        json_object_set_new(o, k, json_string(v));
}

char *sk_token_issue(apr_pool_t *p, sk_keyring *kr, const sk_token_claims *c, long long now,
                     const char **jti_out)
{
    const sk_key *k = sk_keyring_signer(kr);
    const char *jti = sk_random_token(p, NULL, 16);
    json_t *claims;
    char *jwt;
    if (!k || !jti)
        return NULL;
    claims = json_object();
    if (c->extra)
        json_object_update(claims, c->extra);
    set_str(claims, "iss", c->iss);
    set_str(claims, "sub", c->sub);
    set_str(claims, "aud", c->aud);
    json_object_set_new(claims, "iat", json_integer(now));
    json_object_set_new(claims, "nbf", json_integer(now));
    json_object_set_new(claims, "exp", json_integer(now + c->ttl));
    set_str(claims, "jti", jti);
    set_str(claims, "scope", c->scope ? c->scope : "");
    set_str(claims, "client_id", c->client_id);
    set_str(claims, "sid", c->sid);
    set_str(claims, "role", c->role);
    set_str(claims, "tenant_id", c->tenant_id);
    set_str(claims, "partner_id", c->partner_id);
    set_str(claims, "email", c->email);
    jwt = sk_jwt_sign(p, k, claims, "at+jwt");
    json_decref(claims);
    if (jti_out)
        *jti_out = jti;
    return jwt;
}

json_t *sk_token_verify(apr_pool_t *p, sk_keyring *kr, const char *jwt, const char *iss,
                        const char *aud, int leeway, long long now, const char **reason)
{
    json_t *claims = sk_jwt_verify(p, jwt, sk_keyring_lookup, kr, NULL, reason);
    if (!claims)
        return NULL;
    if (sk_claims_check(claims, iss, aud, now, leeway, reason) != 0) {
        json_decref(claims);
        return NULL;
    }
    return claims;
}

const char *sk_refresh_token_new(apr_pool_t *p, const char **digest)
{
    const char *t = sk_random_token(p, SK_REFRESH_PREFIX, 32);
    *digest = t ? sk_sha256_hex(p, t) : NULL;
    return t;
}
