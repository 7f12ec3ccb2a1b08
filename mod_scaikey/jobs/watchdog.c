/* Background jobs of the signing keys, in threads of mod_watchdog.
 *
 * Key reload: every child process looks for changed keys every SK_KEYRING_REFRESH_SECONDS (a
 * child watchdog of its own), so that a process signs with the key a rotation made current even
 * when its requests never touch the keys otherwise (sign-ins only sign), and the retirement rule
 * of the rotation can count on that delay.
 *
 * Scheduled rotation: a singleton child watchdog, so that one child process of this Apache runs
 * the check, in the watchdog's own thread, every ScaiKeyKeyRotationCheck seconds. The check rotates
 * when the current key has been current for ScaiKeyKeyRotationInterval seconds. Between servers
 * that share the database the rotation lock decides, and the age is read again under it, so one
 * rotation happens however many servers check. Requests never wait for the check: it holds no
 * lock of theirs, and a database that is down only makes it try again at the next check. */
#include "jobs/watchdog.h"
#include "scaikey.h"
#include "config.h"
#include "startup.h"
#include "core/rotation.h"
#include "store/db.h"

#include <http_core.h>
#include <apr_optional.h>
#include <mod_dbd.h>
#include <mod_watchdog.h>

APLOG_USE_MODULE(scaikey);

#define ROTATION_WATCHDOG "scaikey-key-rotation"
#define RELOAD_WATCHDOG   "scaikey-key-reload"

/* touched by the watchdog threads only (one each) */
static int store_failing;     /* rotation check */
static int reload_skip;       /* reload: checks left out after the store could not be reached */

static void store_failed(server_rec *s, const char *what, const char *error)
{
    /* once when the store goes away, then quietly until it is back */
    ap_log_error(APLOG_MARK, store_failing ? APLOG_DEBUG : APLOG_WARNING, 0, s, SKLOGNO(2511)
                 "scheduled key rotation check: %s%s%s; trying again at the next check", what,
                 error ? ": " : "", error ? error : "");
    store_failing = 1;
}

static void check(server_rec *s, apr_pool_t *p)
{
    APR_OPTIONAL_FN_TYPE(ap_dbd_open) *dbd_open = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_open);
    APR_OPTIONAL_FN_TYPE(ap_dbd_close) *dbd_close = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_close);
    sk_config *c = sk_config_get(s);
    sk_keyring *kr = sk_startup_keyring();
    sk_rotation_opts o = { 0 };
    sk_rotation_result res;
    sk_audit a = { 0 };
    ap_dbd_t *dbd;
    sk_db *db;

    /* before the process has loaded its keys, its requests drive the start-up */
    if (!kr || sk_keyring_count(kr) == 0 || !dbd_open || !dbd_close)
        return;
    if (!(dbd = dbd_open(p, s))) {
        store_failed(s, "database unreachable", NULL);
        return;
    }
    db = sk_db_wrap(p, dbd);
    o.due_after = sk_config_key_rotation_interval(c);
    o.access_ttl = sk_config_access_ttl(c);
    o.margin = sk_config_clock_skew(c) + SK_ROTATION_RELOAD_MARGIN;
    a.action = "key.rotate";
    a.result = "success";
    a.actor_type = "system";
    switch (sk_rotation_rotate(kr, db, p, &o, &a, &res)) {
    case SK_ROTATED:
        store_failing = 0;
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, SKLOGNO(2512)
                     "signing keys rotated on schedule: current %s, next %s, previous %s, %d retired",
                     res.current, res.next, res.previous ? res.previous : "none",
                     (int)json_array_size(res.retired));
        json_decref(res.retired);
        sk_keyring_refresh(kr, db, p, 1);
        break;
    case SK_ROTATION_NOT_DUE:
    case SK_ROTATION_BUSY:
        store_failing = 0;
        break;
    default:
        store_failed(s, "rotation failed", sk_db_error(db));
        break;
    }
    dbd_close(s, dbd);
}

static void reload(server_rec *s, apr_pool_t *p)
{
    APR_OPTIONAL_FN_TYPE(ap_dbd_open) *dbd_open = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_open);
    APR_OPTIONAL_FN_TYPE(ap_dbd_close) *dbd_close = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_close);
    sk_keyring *kr = sk_startup_keyring();
    ap_dbd_t *dbd;

    if (!kr || sk_keyring_count(kr) == 0 || !dbd_open || !dbd_close)
        return;
    if (reload_skip > 0) {
        reload_skip--;
        return;
    }
    /* a store that is down: the keys already loaded stay in use, requests say 503 themselves, and
     * the next attempts wait a minute (each failed connection is logged by mod_dbd) */
    if (!(dbd = dbd_open(p, s))) {
        reload_skip = 60 / SK_KEYRING_REFRESH_SECONDS - 1;
        return;
    }
    sk_keyring_refresh(kr, sk_db_wrap(p, dbd), p, 1);
    dbd_close(s, dbd);
}

static apr_status_t reload_callback(int state, void *data, apr_pool_t *pool)
{
    if (state == AP_WATCHDOG_STATE_RUNNING)
        reload(data, pool);
    return APR_SUCCESS;
}

static apr_status_t rotation_callback(int state, void *data, apr_pool_t *pool)
{
    if (state == AP_WATCHDOG_STATE_RUNNING)
        check(data, pool);
    /* anything but APR_SUCCESS would stop the callback for the life of the process */
    return APR_SUCCESS;
}

static int post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    APR_OPTIONAL_FN_TYPE(ap_watchdog_get_instance) *get_instance;
    APR_OPTIONAL_FN_TYPE(ap_watchdog_register_callback) *register_callback;
    sk_config *c = sk_config_get(s);
    ap_watchdog_t *wd = NULL;
    apr_status_t rv;

    /* mod_watchdog ignores the first pass over the configuration */
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG)
        return OK;
    if (!c->issuer)
        return OK;
    get_instance = APR_RETRIEVE_OPTIONAL_FN(ap_watchdog_get_instance);
    register_callback = APR_RETRIEVE_OPTIONAL_FN(ap_watchdog_register_callback);
    if (!get_instance || !register_callback) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, SKLOGNO(2514)
                     "mod_watchdog is not loaded: signing keys are not rotated on schedule, and a "
                     "process sees a rotation only when its requests look at the keys");
        return OK;
    }
    /* every process: reload */
    if ((rv = get_instance(&wd, RELOAD_WATCHDOG, 0, 0, pconf)) != APR_SUCCESS ||
        (rv = register_callback(wd, apr_time_from_sec(SK_KEYRING_REFRESH_SECONDS), s,
                                reload_callback)) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, SKLOGNO(2515)
                     "cannot register the key reload with mod_watchdog");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (sk_config_key_rotation_interval(c) == 0) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, SKLOGNO(2513)
                     "ScaiKeyKeyRotationInterval is 0: signing keys are rotated only on request");
        return OK;
    }
    /* one process of this server: the scheduled rotation */
    if ((rv = get_instance(&wd, ROTATION_WATCHDOG, 0, 1, pconf)) != APR_SUCCESS ||
        (rv = register_callback(wd, apr_time_from_sec(sk_config_key_rotation_check(c)), s,
                                rotation_callback)) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, SKLOGNO(2515)
                     "cannot register the scheduled key rotation with mod_watchdog");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return OK;
}

void sk_watchdog_register_hooks(apr_pool_t *p)
{
    /* before mod_watchdog's own post_config (APR_HOOK_LAST), which starts what is registered */
    ap_hook_post_config(post_config, NULL, NULL, APR_HOOK_MIDDLE);
}
