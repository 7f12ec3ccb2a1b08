/* The guard: mod_scaikey as the gatekeeper of other Apache locations (AuthType ScaiKey).
 *
 *   <Location /app>
 *       AuthType ScaiKey
 *       Require scaikey-scope orders:read
 *   </Location>
 *
 * A request needs a bearer JWT issued by this server or an API key. The verified caller reaches
 * the backend as r->user, X-ScaiKey-* request headers and SCAIKEY_* variables; refusals follow
 * RFC 6750. This header is what the module record and the directive table need. */
#ifndef SK_GUARD_H
#define SK_GUARD_H

#include <httpd.h>
#include <http_config.h>

/* Hooks, providers, filters and handlers of the guard. */
void sk_guard_register_hooks(apr_pool_t *p);

/* Per-directory configuration of the module. */
void *sk_guard_dir_create(apr_pool_t *p, char *dir);
void *sk_guard_dir_merge(apr_pool_t *p, void *base, void *add);

/* Directive setters (the table is in config.c). */
const char *sk_guard_set_cache(cmd_parms *cmd, void *dc, const char *arg);
const char *sk_guard_set_process_cache(cmd_parms *cmd, void *dc, const char *arg);
const char *sk_guard_set_delay(cmd_parms *cmd, void *dc, const char *arg);
const char *sk_guard_set_audience(cmd_parms *cmd, void *dc, const char *arg);
const char *sk_guard_set_user_claim(cmd_parms *cmd, void *dc, const char *arg);
const char *sk_guard_set_resource_metadata(cmd_parms *cmd, void *dc, const char *arg);
const char *sk_guard_set_resource(cmd_parms *cmd, void *dc, const char *arg);
const char *sk_guard_set_scopes_supported(cmd_parms *cmd, void *dc, const char *arg);
const char *sk_guard_set_mcp(cmd_parms *cmd, void *dc, int on);
const char *sk_guard_set_login(cmd_parms *cmd, void *dc, const char *who, const char *client,
                               const char *callback);

#endif
