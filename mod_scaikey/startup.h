/* Per-process start-up of the store: migrations, the first signing key and the bootstrap admin,
 * run under one PostgreSQL advisory lock in child_init, and retried by requests while the
 * database is unreachable. */
#ifndef SK_STARTUP_H
#define SK_STARTUP_H

#include <httpd.h>
#include "core/keyring.h"

void sk_startup_child_init(apr_pool_t *pchild, server_rec *s);
/* 0 when the store is ready for this process; -1 otherwise (and the request should get 503). */
int sk_startup_ensure(server_rec *s, apr_pool_t *p);
sk_keyring *sk_startup_keyring(void);

#endif
