/* Access tokens (signed JWTs) and refresh tokens (opaque, only their digest stored). */
#ifndef SK_CORE_TOKENS_H
#define SK_CORE_TOKENS_H

#include <apr_pools.h>
#include <jansson.h>
#include "core/keyring.h"

#define SK_REFRESH_PREFIX "skr_"

typedef struct sk_token_claims {
    const char *iss, *sub, *aud, *scope, *sid, *client_id;
    const char *role, *tenant_id, *partner_id, *email;
    int ttl;
    json_t *extra;             /* further claims (borrowed), may be NULL */
} sk_token_claims;

/* Signs an access token with the current key. *jti_out (optional) gets the token id.
 * NULL when there is no signing key. */
char *sk_token_issue(apr_pool_t *p, sk_keyring *kr, const sk_token_claims *c, long long now,
                     const char **jti_out);

/* Verifies signature (pinned algorithm, known kid) and the standard claims.
 * Returns the claims (new reference) or NULL with *reason. */
json_t *sk_token_verify(apr_pool_t *p, sk_keyring *kr, const char *jwt, const char *iss,
                        const char *aud, int leeway, long long now, const char **reason);

/* A new opaque refresh token and the digest to store. */
const char *sk_refresh_token_new(apr_pool_t *p, const char **digest);

#endif
