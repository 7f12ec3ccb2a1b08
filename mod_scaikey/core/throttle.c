#include "core/throttle.h"

#include <apr_strings.h>
#include <stdlib.h>

int sk_throttle_wait(sk_db *db, const char *key, int max, int window)
{
    apr_pool_t *p = sk_db_pool(db);
    const char *v = NULL, *w = apr_itoa(p, window);
    sk_db_status st = SK_QV(db, "throttle_wait", &v, key, apr_itoa(p, max), w);
    if (st == SK_DB_NOTFOUND)
        return 0;
    if (st != SK_DB_OK || !v)
        return -1;
    return atoi(v);
}

void sk_throttle_fail(sk_db *db, const char *key, int window)
{
    SK_Q(db, "throttle_fail", key, apr_itoa(sk_db_pool(db), window));
}

void sk_throttle_reset(sk_db *db, const char *key)
{
    SK_Q(db, "throttle_reset", key);
}
