/* The guard's cache, shared by every process (and, with redis or memcache, every server): verified
 * credentials and the agents' request counters, in an Apache socache provider chosen with
 * ScaiKeyCache (shmcb when not set). Keys are SHA-256 digests, so a credential never appears in
 * the cache and the first byte (which shmcb uses to pick a sub-cache) is spread evenly. */
#include "guard/internal.h"
#include "scaikey.h"

#include <ap_socache.h>
#include <ap_provider.h>
#include <util_mutex.h>
#include <apr_global_mutex.h>
#include <apr_strings.h>
#include <string.h>

APLOG_USE_MODULE(scaikey);

#define MUTEX_TYPE   "scaikey-guard"
#define CACHE_NAME   "scaikey-guard"
#define MAX_ENTRY    16384          /* larger entries are not cached */

static struct {
    const ap_socache_provider_t *provider;
    ap_socache_instance_t *instance;
    apr_global_mutex_t *mutex;
    int disabled;                   /* ScaiKeyCache none */
    int ready;                      /* initialised in post_config */
} cache;

void sk_guard_cache_pre_config(apr_pool_t *pconf)
{
    ap_mutex_register(pconf, MUTEX_TYPE, NULL, APR_LOCK_DEFAULT, 0);
    memset(&cache, 0, sizeof(cache));
}

const char *sk_guard_cache_configure(cmd_parms *cmd, const char *arg)
{
    const char *sep = strchr(arg, ':'), *name, *err;
    if (!strcasecmp(arg, "none")) {
        cache.disabled = 1;
        cache.provider = NULL;
        return NULL;
    }
    name = sep ? apr_pstrndup(cmd->temp_pool, arg, (apr_size_t)(sep - arg)) : arg;
    cache.disabled = 0;
    cache.provider = ap_lookup_provider(AP_SOCACHE_PROVIDER_GROUP, name, AP_SOCACHE_PROVIDER_VERSION);
    if (!cache.provider)
        return apr_psprintf(cmd->pool, "ScaiKeyCache: unknown cache type '%s'; load its module first, "
                                       "e.g. LoadModule socache_%s_module", name, name);
    err = cache.provider->create(&cache.instance, sep ? sep + 1 : NULL, cmd->temp_pool, cmd->pool);
    return err ? apr_pstrcat(cmd->pool, "ScaiKeyCache: ", err, NULL) : NULL;
}

static apr_status_t destroy(void *data)
{
    if (cache.ready && cache.provider && cache.instance)
        cache.provider->destroy(cache.instance, data);
    cache.ready = 0;
    cache.instance = NULL;
    cache.mutex = NULL;
    return APR_SUCCESS;
}

int sk_guard_cache_post_config(apr_pool_t *pconf, apr_pool_t *ptemp, server_rec *s)
{
    static const struct ap_socache_hints hints = { 40, 600, 60 * APR_USEC_PER_SEC };
    apr_status_t rv;
    const char *err;

    if (cache.disabled)
        return OK;
    if (!cache.provider) {
        cache.provider = ap_lookup_provider(AP_SOCACHE_PROVIDER_GROUP, "shmcb", AP_SOCACHE_PROVIDER_VERSION);
        if (!cache.provider) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, SKLOGNO(0801)
                         "the guard has no shared cache (load mod_socache_shmcb or set ScaiKeyCache): "
                         "every guarded request is checked in the database and agent rate limits "
                         "are not enforced");
            return OK;
        }
        if ((err = cache.provider->create(&cache.instance, NULL, ptemp, pconf))) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, SKLOGNO(0802) "ScaiKeyCache: %s", err);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    rv = ap_global_mutex_create(&cache.mutex, NULL, MUTEX_TYPE, NULL, s, pconf, 0);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, SKLOGNO(0803) "cannot create the guard's cache mutex");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    rv = cache.provider->init(cache.instance, CACHE_NAME, &hints, s, pconf);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, SKLOGNO(0804) "cannot initialise the guard's %s cache",
                     cache.provider->name);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    cache.ready = 1;
    apr_pool_cleanup_register(pconf, s, destroy, apr_pool_cleanup_null);
    return OK;
}

void sk_guard_cache_child_init(apr_pool_t *p, server_rec *s)
{
    apr_status_t rv;
    if (!cache.ready || !cache.mutex)
        return;
    rv = apr_global_mutex_child_init(&cache.mutex, apr_global_mutex_lockfile(cache.mutex), p);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, SKLOGNO(0805)
                     "cannot attach to the guard's cache mutex; the cache is off in this process");
        cache.ready = 0;
    }
}

int sk_guard_cache_enabled(void)
{
    return cache.ready;
}

static int needs_lock(void)
{
    return cache.mutex && (cache.provider->flags & AP_SOCACHE_FLAG_NOTMPSAFE);
}

char *sk_guard_cache_get(request_rec *r, const unsigned char key[32], unsigned int *len)
{
    unsigned char *buf;
    unsigned int n = MAX_ENTRY;
    apr_status_t rv;
    int locked;
    if (!cache.ready)
        return NULL;
    buf = apr_palloc(r->pool, MAX_ENTRY + 1);
    locked = needs_lock() && apr_global_mutex_lock(cache.mutex) == APR_SUCCESS;
    rv = cache.provider->retrieve(cache.instance, r->server, key, 32, buf, &n, r->pool);
    if (locked)
        apr_global_mutex_unlock(cache.mutex);
    if (rv != APR_SUCCESS || n > MAX_ENTRY)
        return NULL;
    buf[n] = '\0';
    *len = n;
    return (char *)buf;
}

void sk_guard_cache_put(request_rec *r, const unsigned char key[32], apr_time_t expiry,
                        const char *data, unsigned int len)
{
    apr_status_t rv;
    int locked;
    if (!cache.ready || len > MAX_ENTRY || expiry <= apr_time_now())
        return;
    locked = needs_lock() && apr_global_mutex_lock(cache.mutex) == APR_SUCCESS;
    rv = cache.provider->store(cache.instance, r->server, key, 32, expiry, (unsigned char *)data, len,
                               r->pool);
    if (locked)
        apr_global_mutex_unlock(cache.mutex);
    if (rv != APR_SUCCESS)
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, rv, r, SKLOGNO(0806) "guard cache: entry not stored");
}

long sk_guard_cache_incr(request_rec *r, const unsigned char key[32], apr_time_t expiry)
{
    unsigned char buf[32];
    unsigned int n = sizeof(buf) - 1;
    long v = 0;
    if (!cache.ready || !cache.mutex)
        return -1;
    /* read, add and write under the mutex: one count per request across this server's processes */
    if (apr_global_mutex_lock(cache.mutex) != APR_SUCCESS)
        return -1;
    if (cache.provider->retrieve(cache.instance, r->server, key, 32, buf, &n, r->pool) == APR_SUCCESS &&
        n < sizeof(buf)) {
        buf[n] = '\0';
        v = strtol((const char *)buf, NULL, 10);
    }
    v++;
    n = (unsigned int)apr_snprintf((char *)buf, sizeof(buf), "%ld", v);
    cache.provider->store(cache.instance, r->server, key, 32, expiry, buf, n, r->pool);
    apr_global_mutex_unlock(cache.mutex);
    return v;
}
