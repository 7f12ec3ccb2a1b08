/* Failure counters for sign-in: per account and per client IP, a fixed window from the first
 * failure; once the limit is reached every attempt is refused until the window ends. */
#ifndef SK_CORE_THROTTLE_H
#define SK_CORE_THROTTLE_H

#include "store/db.h"

/* Seconds to wait when key is locked, 0 when attempts are allowed, -1 when the store failed. */
int sk_throttle_wait(sk_db *db, const char *key, int max, int window);
void sk_throttle_fail(sk_db *db, const char *key, int window);
void sk_throttle_reset(sk_db *db, const char *key);

#endif
