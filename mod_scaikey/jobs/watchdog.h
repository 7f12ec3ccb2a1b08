/* Background jobs of mod_scaikey, run by mod_watchdog in a thread of their own. */
#ifndef SK_JOBS_WATCHDOG_H
#define SK_JOBS_WATCHDOG_H

#include <apr_pools.h>

/* Called from the module's register_hooks: hooks what the jobs need (a post_config that
 * registers them with mod_watchdog). */
void sk_watchdog_register_hooks(apr_pool_t *p);

#endif
