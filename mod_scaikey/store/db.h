/* The store: every SQL statement runs here, through mod_dbd connections, as a prepared statement
 * named by a label (see statements.c). Results are strings; most statements return one JSON
 * column built by PostgreSQL, which the caller reads as a jansson object. */
#ifndef SK_STORE_DB_H
#define SK_STORE_DB_H

#include <apr_pools.h>
#include <apr_dbd.h>
#include <mod_dbd.h>
#include <jansson.h>

typedef enum {
    SK_DB_OK = 0,
    SK_DB_NOTFOUND,       /* the statement returned no row */
    SK_DB_CONFLICT,       /* a unique constraint was violated (constraint name in sk_db_error) */
    SK_DB_INVALID,        /* a check / foreign key / data error caused by the input */
    SK_DB_LIMIT,          /* a configured limit would be exceeded (set by callers, not by SQL) */
    SK_DB_ERROR           /* anything else: connection lost, bug */
} sk_db_status;

typedef struct sk_db sk_db;

/* Wrap a mod_dbd connection (from ap_dbd_acquire or ap_dbd_open) for use in pool p. */
sk_db *sk_db_wrap(apr_pool_t *p, ap_dbd_t *dbd);
apr_pool_t *sk_db_pool(sk_db *db);

/* Last error text (for logs only: never sent to clients) and constraint name on conflicts. */
const char *sk_db_error(sk_db *db);
const char *sk_db_constraint(sk_db *db);

/* Run a labelled statement with n text arguments (NULL = SQL NULL). */
sk_db_status sk_db_exec(sk_db *db, const char *label, int n, const char *const *args, int *nrows);
/* First column of the first row parsed as JSON (NEW reference in *out); SK_DB_NOTFOUND when no
 * row or the value is NULL. */
sk_db_status sk_db_json(sk_db *db, const char *label, int n, const char *const *args, json_t **out);
/* First column of the first row as a string (pool copy). */
sk_db_status sk_db_value(sk_db *db, const char *label, int n, const char *const *args, const char **out);

/* The same for SQL built at run time (from resource descriptors): sent as an unnamed
 * parameterised statement, never with values spliced into the text. */
sk_db_status sk_db_json_sql(sk_db *db, const char *sql, int n, const char *const *args, json_t **out);
sk_db_status sk_db_value_sql(sk_db *db, const char *sql, int n, const char *const *args, const char **out);

/* Transactions: begin, then commit or rollback. A failed statement inside a transaction makes
 * commit roll back. */
sk_db_status sk_db_begin(sk_db *db);
sk_db_status sk_db_commit(sk_db *db);
void sk_db_rollback(sk_db *db);

/* Raw SQL text (no parameters), for migrations only. */
sk_db_status sk_db_script(sk_db *db, const char *sql);

/* Convenience for argument arrays. */
#define SK_ARGS(...) ((const char *const[]){ __VA_ARGS__ })
#define SK_NARGS(...) ((int)(sizeof((const char *const[]){ __VA_ARGS__ }) / sizeof(const char *)))
#define SK_Q(db, label, ...) sk_db_exec(db, label, SK_NARGS(__VA_ARGS__), SK_ARGS(__VA_ARGS__), NULL)
#define SK_QJ(db, label, out, ...) sk_db_json(db, label, SK_NARGS(__VA_ARGS__), SK_ARGS(__VA_ARGS__), out)
#define SK_QV(db, label, out, ...) sk_db_value(db, label, SK_NARGS(__VA_ARGS__), SK_ARGS(__VA_ARGS__), out)

#endif
