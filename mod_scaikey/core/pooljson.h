/* jansson values owned by an APR pool: released when the pool is. */
#ifndef SK_CORE_POOLJSON_H
#define SK_CORE_POOLJSON_H

#include <apr_pools.h>
#include <jansson.h>

/* Hands the reference to p and returns j (NULL stays NULL). */
json_t *sk_pool_json(apr_pool_t *p, json_t *j);

#endif
