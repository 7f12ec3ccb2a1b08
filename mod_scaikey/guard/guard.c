/* The guard's hooks, its per-request state and its access to the store. */
#include "guard/guard.h"
#include "guard/internal.h"
#include "scaikey.h"

#include <http_request.h>
#include <http_protocol.h>
#include <apr_atomic.h>
#include <apr_optional.h>
#include <mod_dbd.h>

APLOG_USE_MODULE(scaikey);

#define DB_BACKOFF apr_time_from_sec(1)

/* ---- per-request state ---- */

sk_guard_req *sk_guard_req_get(request_rec *r)
{
    sk_guard_req *st = ap_get_module_config(r->request_config, &scaikey_module);
    if (!st) {
        st = apr_pcalloc(r->pool, sizeof(*st));
        ap_set_module_config(r->request_config, &scaikey_module, st);
    }
    return st;
}

/* ---- the store, with a back-off while it is unreachable ---- */

static APR_OPTIONAL_FN_TYPE(ap_dbd_acquire) *dbd_acquire;
static volatile apr_uint64_t db_down_until;   /* apr_time_t; per process */
static volatile apr_uint32_t db_down_noted;

static void db_down(request_rec *r, const char *why)
{
    apr_atomic_set64(&db_down_until, (apr_uint64_t)(apr_time_now() + DB_BACKOFF));
    sk_guard_req_get(r)->db = NULL;
    if (apr_atomic_xchg32(&db_down_noted, 1) == 0)
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, SKLOGNO(0808)
                      "guard: database unreachable (%s); serving verified credentials from the cache, "
                      "trying again once a second", why);
}

sk_db *sk_guard_db(request_rec *r)
{
    sk_guard_req *st = sk_guard_req_get(r);
    ap_dbd_t *dbd;
    if (st->db)
        return st->db;
    if ((apr_time_t)apr_atomic_read64(&db_down_until) > apr_time_now())
        return NULL;
    if (!dbd_acquire)
        dbd_acquire = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_acquire);
    if (!dbd_acquire || !(dbd = dbd_acquire(r))) {
        db_down(r, "no connection");
        return NULL;
    }
    st->db = sk_db_wrap(r->pool, dbd);
    if (apr_atomic_xchg32(&db_down_noted, 0))
        ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r, SKLOGNO(0809) "guard: database reachable again");
    return st->db;
}

void sk_guard_db_failed(request_rec *r, sk_db_status status)
{
    sk_guard_req *st = sk_guard_req_get(r);
    if (status == SK_DB_ERROR)
        db_down(r, st->db ? sk_db_error(st->db) : "query failed");
}

/* ---- hooks ---- */

static int pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    sk_guard_cache_pre_config(pconf);
    sk_guard_local_pre_config();
    return OK;
}

static int post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    return sk_guard_cache_post_config(pconf, ptemp, s);
}

static void child_init(apr_pool_t *p, server_rec *s)
{
    sk_guard_cache_child_init(p, s);
    sk_guard_verify_child_init(p);
    sk_guard_local_child_init(p);
    sk_guard_feed_child_init(p);
}

/* Fixups run once authorization has passed: from here a refusal is the guard's own. */
static int fixups(request_rec *r)
{
    sk_guard_req *st = ap_get_module_config(r->request_config, &scaikey_module);
    if (!st)
        return DECLINED;
    st->passed = 1;
    if (st->who && !r->main && !r->prev) {
        int rc = sk_guard_mcp_filter(r, st->who);
        if (rc != OK)
            return rc;
    }
    return DECLINED;
}

void sk_guard_register_hooks(apr_pool_t *p)
{
    static const char *const after_dbd[] = { "mod_dbd.c", NULL };
    ap_hook_pre_config(pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(child_init, after_dbd, NULL, APR_HOOK_MIDDLE);
    /* before anything reads the request headers for access decisions */
    ap_hook_header_parser(sk_guard_scrub, NULL, NULL, APR_HOOK_FIRST);
    ap_hook_check_authn(sk_guard_authn, NULL, NULL, APR_HOOK_MIDDLE, AP_AUTH_INTERNAL_PER_CONF);
    ap_hook_note_auth_failure(sk_guard_note_auth_failure, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_fixups(fixups, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_insert_error_filter(sk_guard_insert_error_filter, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(sk_guard_handler, NULL, NULL, APR_HOOK_MIDDLE);
    sk_guard_authn_register(p);
    sk_guard_authz_register(p);
    sk_guard_agents_register(p);
    sk_guard_feed_register(p);
}
