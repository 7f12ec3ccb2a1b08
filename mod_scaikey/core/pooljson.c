#include "core/pooljson.h"

static apr_status_t release(void *data)
{
    json_decref(data);
    return APR_SUCCESS;
}

json_t *sk_pool_json(apr_pool_t *p, json_t *j)
{
    if (j)
        apr_pool_cleanup_register(p, j, release, apr_pool_cleanup_null);
    return j;
}
