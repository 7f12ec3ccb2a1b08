/* mod_scaikey: an identity server and OAuth 2.0 / OpenID Connect provider inside Apache httpd.
 * This file holds the module record and its hooks; the work is done in the layers below. */
#include "scaikey.h"
#include "config.h"
#include "startup.h"
#include "http/router.h"
#include "guard/guard.h"
#include "api/api.h"
#include "jobs/watchdog.h"
#include "api/mail_flows.h"

#include <http_protocol.h>
#include <http_request.h>
#include <http_core.h>
#include <apr_strings.h>
#include <apr_optional.h>
#include <mod_dbd.h>

static int sk_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    server_rec *vs;
    for (vs = s; vs; vs = vs->next) {
        sk_config *c = sk_config_get(vs);
        const char *err;
        if (!c->issuer)
            continue;
        if (!APR_RETRIEVE_OPTIONAL_FN(ap_dbd_acquire)) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, 0, vs, SKLOGNO(0001)
                         "mod_scaikey needs mod_dbd: add LoadModule dbd_module and DBDriver pgsql");
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        if ((err = sk_config_load_secrets(pconf, vs, c))) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, 0, vs, SKLOGNO(0002) "%s", err);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    return OK;
}

static void sk_child_init(apr_pool_t *pchild, server_rec *s)
{
    sk_openapi_child_init(pchild);
    sk_startup_child_init(pchild, s);
}

static int sk_handler(request_rec *r)
{
    if (!r->handler || strcmp(r->handler, SK_HANDLER))
        return DECLINED;
    if (!sk_config_get(r->server)->issuer) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SKLOGNO(0003)
                      "SetHandler scaikey is used but ScaiKeyIssuer is not set for this server");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return sk_dispatch(r);
}

/* The API's locations name no files: like mod_proxy, claim the request before the directory walk,
 * so an id of any length in the path reaches the router instead of the filesystem. */
static int sk_translate_name(request_rec *r)
{
    core_dir_config *d = ap_get_core_module_config(r->per_dir_config);
    const char *h = NULL, *err = NULL;
    if (d && d->expr_handler)
        h = ap_expr_str_exec(r, d->expr_handler, &err);
    else if (d)
        h = d->handler;
    if (!h || strcmp(h, SK_HANDLER))
        return DECLINED;
    r->filename = apr_pstrcat(r->pool, "scaikey:", r->uri, NULL);
    apr_table_setn(r->notes, "scaikey-api", "1");
    return OK;
}

static int sk_map_to_storage(request_rec *r)
{
    return apr_table_get(r->notes, "scaikey-api") ? OK : DECLINED;
}

static void sk_register_hooks(apr_pool_t *p)
{
    static const char *const after_dbd[] = { "mod_dbd.c", NULL };
    ap_hook_post_config(sk_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    /* mod_dbd sets up its connection pool in its own child_init */
    ap_hook_child_init(sk_child_init, after_dbd, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(sk_handler, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_translate_name(sk_translate_name, NULL, NULL, APR_HOOK_FIRST);
    ap_hook_map_to_storage(sk_map_to_storage, NULL, NULL, APR_HOOK_FIRST);
    sk_guard_register_hooks(p);
    sk_watchdog_register_hooks(p);
    sk_mail_outbox_register(p);
}

AP_DECLARE_MODULE(scaikey) = {
    STANDARD20_MODULE_STUFF,
    sk_guard_dir_create,  /* per-directory config (the guard's) */
    sk_guard_dir_merge,
    sk_config_create,     /* per-server config */
    sk_config_merge,
    sk_directives,
    sk_register_hooks,
    AP_MODULE_FLAG_NONE
};
