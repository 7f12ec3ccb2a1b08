/* Schema migrations: the numbered files of sql/, compiled into the module, applied in order under
 * a PostgreSQL advisory lock and recorded in schema_migrations, so that any number of Apache
 * processes or servers starting at once apply each exactly once. */
#ifndef SK_STORE_MIGRATE_H
#define SK_STORE_MIGRATE_H

#include "store/db.h"

typedef struct {
    int version;
    const char *name;
    const char *sql;
} sk_migration;

extern const sk_migration sk_migrations[];   /* ends with { 0, NULL, NULL } */

/* The advisory lock that serialises start-up work (migrations, first key, bootstrap admin). */
sk_db_status sk_db_startup_lock(sk_db *db);
void sk_db_startup_unlock(sk_db *db);

/* Applies what is missing; *applied counts the files applied now. Must hold the startup lock. */
sk_db_status sk_migrate(sk_db *db, int *applied);

#endif
