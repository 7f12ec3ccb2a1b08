#include "startup.h"
#include "scaikey.h"
#include "config.h"
#include "store/db.h"
#include "store/migrate.h"
#include "core/password.h"
#include "core/audit.h"

#include <apr_atomic.h>
#include <apr_thread_mutex.h>
#include <apr_optional.h>
#include <apr_strings.h>
#include <mod_dbd.h>

APLOG_USE_MODULE(scaikey);

#define RETRY_INTERVAL apr_time_from_sec(2)

static struct {
    sk_keyring *keyring;
    apr_thread_mutex_t *lock;
    volatile apr_uint32_t ready;
    apr_time_t last_try;
} proc;

sk_keyring *sk_startup_keyring(void)
{
    return proc.keyring;
}

static sk_db_status bootstrap_admin(sk_db *db, server_rec *s, sk_config *c, apr_pool_t *p)
{
    const char *id = NULL, *hash;
    json_t *row = NULL;
    sk_audit a = { 0 };
    sk_db_status st;

    if (!c->bootstrap_email || !c->bootstrap_password)
        return SK_DB_OK;
    st = sk_db_value(db, "superadmin_exists", 0, NULL, &id);
    if (st != SK_DB_NOTFOUND)
        return st;
    if (!(hash = sk_password_hash(p, c->bootstrap_password)))
        return SK_DB_ERROR;
    if ((st = sk_db_begin(db)) != SK_DB_OK)
        return st;
    st = SK_QJ(db, "bootstrap_admin", &row, c->bootstrap_email, hash);
    if (st == SK_DB_OK) {
        a.action = "admin.bootstrap";
        a.result = "success";
        a.actor_type = "system";
        a.resource_type = "user";
        a.resource_id = apr_pstrdup(p, json_string_value(json_object_get(row, "id")));
        a.actor_email = c->bootstrap_email;
        st = sk_audit_write(db, &a);
    }
    json_decref(row);
    if (st != SK_DB_OK) {
        sk_db_rollback(db);
        return st;
    }
    if ((st = sk_db_commit(db)) == SK_DB_OK)
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, SKLOGNO(0401) "created the bootstrap super_admin %s",
                     c->bootstrap_email);
    return st;
}

static int run(server_rec *s, apr_pool_t *p)
{
    APR_OPTIONAL_FN_TYPE(ap_dbd_open) *dbd_open = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_open);
    APR_OPTIONAL_FN_TYPE(ap_dbd_close) *dbd_close = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_close);
    sk_config *c = sk_config_get(s);
    ap_dbd_t *dbd;
    sk_db *db;
    int applied = 0, rc = -1;
    const char *step = "lock";

    if (!dbd_open || !dbd_close)
        return -1;
    if (!(dbd = dbd_open(p, s))) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, SKLOGNO(0402) "database unreachable; will retry");
        return -1;
    }
    db = sk_db_wrap(p, dbd);
    if (sk_db_startup_lock(db) == SK_DB_OK) {
        step = "migrations";
        if (sk_migrate(db, &applied) == SK_DB_OK) {
            step = "signing key";
            if (sk_keyring_ensure(proc.keyring, db, p) == SK_DB_OK) {
                step = "bootstrap admin";
                if (bootstrap_admin(db, s, c, p) == SK_DB_OK)
                    rc = 0;
            }
        }
        sk_db_startup_unlock(db);
    }
    if (rc == 0) {
        step = "loading keys";
        if (sk_keyring_refresh(proc.keyring, db, p, 1) != SK_DB_OK)
            rc = -1;
        else if (!sk_keyring_signer(proc.keyring)) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, SKLOGNO(0405) "the current signing key cannot be opened "
                         "with this master key: is ScaiKeyMasterKeyFile the file the keys were made with?");
            rc = -1;
        }
    }
    if (rc != 0)
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, SKLOGNO(0403) "start-up failed at %s: %s", step, sk_db_error(db));
    else if (applied)
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, SKLOGNO(0404) "applied %d schema migration(s)", applied);
    dbd_close(s, dbd);
    return rc;
}

void sk_startup_child_init(apr_pool_t *pchild, server_rec *s)
{
    sk_config *c = sk_config_get(s);
    if (!c->issuer || !c->have_master_key)
        return;
    json_object_seed(0);
    /* builds the dummy hash now, so the first unknown-account login costs what every other does */
    (void)sk_password_verify(NULL, NULL);
    apr_thread_mutex_create(&proc.lock, APR_THREAD_MUTEX_DEFAULT, pchild);
    proc.keyring = sk_keyring_create(pchild, c->master_key, sk_config_alg(c));
    sk_startup_ensure(s, pchild);
}

int sk_startup_ensure(server_rec *s, apr_pool_t *p)
{
    apr_time_t now;
    int rc;
    if (apr_atomic_read32(&proc.ready))
        return 0;
    if (!proc.keyring || !proc.lock)
        return -1;
    apr_thread_mutex_lock(proc.lock);
    now = apr_time_now();
    if (apr_atomic_read32(&proc.ready)) {
        rc = 0;
    }
    else if (proc.last_try && now - proc.last_try < RETRY_INTERVAL) {
        rc = -1;
    }
    else {
        proc.last_try = now;
        rc = run(s, p);
        if (rc == 0)
            apr_atomic_set32(&proc.ready, 1);
    }
    apr_thread_mutex_unlock(proc.lock);
    return rc;
}
