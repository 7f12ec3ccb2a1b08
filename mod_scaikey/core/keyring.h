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

/* Seconds between two checks of a process for changed keys (without force). */
#define SK_KEYRING_REFRESH_SECONDS 10

sk_keyring *sk_keyring_create(apr_pool_t *p, const unsigned char master_key[32], sk_alg alg);

/* Makes sure the configured algorithm has a current key (the next key is promoted, or a new key
 * is made) and a next key, in one transaction under the rotation lock. Call under the start-up
 * lock, outside any transaction. */
sk_db_status sk_keyring_ensure(sk_keyring *kr, sk_db *db, apr_pool_t *tmp);

/* The configured algorithm. */
sk_alg sk_keyring_alg(sk_keyring *kr);

/* Generates a key of the configured algorithm, seals it with the master key and stores it with
 * status ("current" or "next"); *kid_out (optional) gets its kid. Runs inside the caller's
 * transaction. */
sk_db_status sk_keyring_store_new(sk_keyring *kr, sk_db *db, apr_pool_t *tmp, const char *status,
                                  const char **kid_out);

/* Reloads the keys when the set in the store changed (checked at most every `interval` seconds
 * unless force). On failure the keys already loaded stay in use. */
sk_db_status sk_keyring_refresh(sk_keyring *kr, sk_db *db, apr_pool_t *tmp, int force);

/* The key that signs new tokens: the current key of the configured algorithm, or, when a server
 * configured with another algorithm rotated last, that algorithm's current key (NULL before the
 * first load). */
const sk_key *sk_keyring_signer(sk_keyring *kr);
/* Verification key by kid; an sk_key_lookup_fn. */
const sk_key *sk_keyring_lookup(void *kr, const char *kid);
/* {"keys": [...]} with the public keys (new reference). */
json_t *sk_keyring_jwks(sk_keyring *kr);
/* Number of loaded keys (0 = nothing loaded yet). */
int sk_keyring_count(sk_keyring *kr);

#endif
