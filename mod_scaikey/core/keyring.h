/* Signing keys: created on first start, kept in the store sealed with the master key
 * (AES-256-GCM, the kid as associated data), cached per process for signing and verification,
 * published as JWKS. A process keeps verifying with the keys it has when the store is down. */
#ifndef SK_CORE_KEYRING_H
#define SK_CORE_KEYRING_H

#include <apr_pools.h>
#include <jansson.h>
#include "core/jwt.h"
#include "store/db.h"

typedef struct sk_keyring sk_keyring;

sk_keyring *sk_keyring_create(apr_pool_t *p, const unsigned char master_key[32], sk_alg alg);

/* Makes sure a current key for the configured algorithm exists; creates one if not.
 * Call under the start-up lock. */
sk_db_status sk_keyring_ensure(sk_keyring *kr, sk_db *db, apr_pool_t *tmp);

/* Reloads the keys when the set in the store changed (checked at most every `interval` seconds
 * unless force). On failure the keys already loaded stay in use. */
sk_db_status sk_keyring_refresh(sk_keyring *kr, sk_db *db, apr_pool_t *tmp, int force);

/* The key that signs new tokens (NULL before the first load). */
const sk_key *sk_keyring_signer(sk_keyring *kr);
/* Verification key by kid; an sk_key_lookup_fn. */
const sk_key *sk_keyring_lookup(void *kr, const char *kid);
/* {"keys": [...]} with the public keys (new reference). */
json_t *sk_keyring_jwks(sk_keyring *kr);
/* Number of loaded keys (0 = nothing loaded yet). */
int sk_keyring_count(sk_keyring *kr);

#endif
