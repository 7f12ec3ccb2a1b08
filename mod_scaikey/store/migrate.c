#include "store/migrate.h"

#include <apr_strings.h>

sk_db_status sk_db_startup_lock(sk_db *db)
{
    return sk_db_exec(db, "startup_lock", 0, NULL, NULL);
}

void sk_db_startup_unlock(sk_db *db)
{
    sk_db_exec(db, "startup_unlock", 0, NULL, NULL);
}

sk_db_status sk_migrate(sk_db *db, int *applied)
{
    const sk_migration *m;
    sk_db_status st;
    *applied = 0;
    st = sk_db_script(db, "CREATE TABLE IF NOT EXISTS schema_migrations ("
                          " version integer PRIMARY KEY, name text NOT NULL,"
                          " applied_at timestamptz NOT NULL DEFAULT now())");
    if (st != SK_DB_OK)
        return st;
    for (m = sk_migrations; m->name; m++) {
        const char *ver = apr_itoa(sk_db_pool(db), m->version), *have = NULL;
        st = SK_QV(db, "migration_applied", &have, ver);
        if (st == SK_DB_OK)
            continue;
        if (st != SK_DB_NOTFOUND)
            return st;
        if ((st = sk_db_begin(db)) != SK_DB_OK)
            return st;
        if (sk_db_script(db, m->sql) != SK_DB_OK ||
            SK_Q(db, "migration_record", ver, m->name) != SK_DB_OK) {
            sk_db_rollback(db);       /* sk_db_error() still says why */
            return SK_DB_ERROR;
        }
        if ((st = sk_db_commit(db)) != SK_DB_OK)
            return st;
        (*applied)++;
    }
    return SK_DB_OK;
}
