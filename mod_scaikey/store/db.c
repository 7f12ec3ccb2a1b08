/* Store access over mod_dbd connections. Statements are prepared lazily, once per connection,
 * and kept in the connection's own table of prepared statements (ap_dbd_t.prepared). */
#include "store/db.h"
#include "store/statements.h"

#include <apr_strings.h>
#include <string.h>

struct sk_db {
    apr_pool_t *p;
    ap_dbd_t *dbd;
    apr_dbd_transaction_t *txn;
    int txn_failed;
    const char *err;
    const char *constraint;
};

sk_db *sk_db_wrap(apr_pool_t *p, ap_dbd_t *dbd)
{
    sk_db *db;
    if (!dbd)
        return NULL;
    db = apr_pcalloc(p, sizeof(*db));
    db->p = p;
    db->dbd = dbd;
    if (!dbd->prepared)
        dbd->prepared = apr_hash_make(dbd->pool);
    return db;
}

apr_pool_t *sk_db_pool(sk_db *db) { return db->p; }
const char *sk_db_error(sk_db *db) { return db && db->err ? db->err : "no error"; }
const char *sk_db_constraint(sk_db *db) { return db ? db->constraint : NULL; }

static sk_db_status classify(sk_db *db, int rv)
{
    const char *msg = apr_dbd_error(db->dbd->driver, db->dbd->handle, rv);
    const char *q;
    db->err = apr_pstrdup(db->p, msg ? msg : "unknown database error");
    db->constraint = NULL;
    if (db->txn)
        db->txn_failed = 1;
    if ((q = strstr(db->err, "unique constraint \""))) {
        const char *s = q + strlen("unique constraint \""), *e = strchr(s, '"');
        db->constraint = e ? apr_pstrndup(db->p, s, (apr_size_t)(e - s)) : NULL;
        return SK_DB_CONFLICT;
    }
    if (strstr(db->err, "violates check constraint") || strstr(db->err, "violates foreign key constraint") ||
        strstr(db->err, "violates not-null constraint") || strstr(db->err, "invalid input syntax") ||
        strstr(db->err, "value too long") || strstr(db->err, "out of range") ||
        strstr(db->err, "invalid byte sequence") || strstr(db->err, "SK-INVALID"))
        return SK_DB_INVALID;
    return SK_DB_ERROR;
}

static void reset_statements(sk_db *db);

/* The error rv is PostgreSQL's about a prepared statement that does not exist / already exists. */
static int stale(sk_db *db, int rv, const char *what)
{
    const char *msg = apr_dbd_error(db->dbd->driver, db->dbd->handle, rv);
    return msg && strstr(msg, "prepared statement \"") && strstr(msg, what);
}

/* The error rv says the session is gone (PostgreSQL restarted or ended it): mod_dbd hands out a
 * pooled connection without noticing until it is used. Re-opens it in place (the driver's
 * connection check does) and forgets its statements: 1 when the connection works again. */
static int revive(sk_db *db, int rv)
{
    const char *msg = apr_dbd_error(db->dbd->driver, db->dbd->handle, rv);
    if (!msg || !(strstr(msg, "terminating connection") || strstr(msg, "server closed the connection") ||
                  strstr(msg, "no connection to the server") || strstr(msg, "connection to server was lost")))
        return 0;
    if (apr_dbd_check_conn(db->dbd->driver, db->p, db->dbd->handle) != APR_SUCCESS)
        return 0;
    apr_hash_clear(db->dbd->prepared);
    return 1;
}

static apr_dbd_prepared_t *prepared(sk_db *db, const char *label)
{
    if (label[0] == '\n') {
        /* SQL text itself (built at run time): an unnamed statement in the request's pool */
        apr_dbd_prepared_t *stmt = NULL;
        int rv = apr_dbd_prepare(db->dbd->driver, db->p, db->dbd->handle, label + 1, NULL, &stmt);
        if (rv != 0) {
            classify(db, rv);
            return NULL;
        }
        return stmt;
    }
    {
    apr_dbd_prepared_t *stmt = apr_hash_get(db->dbd->prepared, label, APR_HASH_KEY_STRING);
    const char *sql;
    int rv;
    if (stmt)
        return stmt;
    if (!(sql = sk_statement_sql(label))) {
        db->err = apr_psprintf(db->p, "unknown statement %s", label);
        return NULL;
    }
    /* the statement lives as long as the connection */
    rv = apr_dbd_prepare(db->dbd->driver, db->dbd->pool, db->dbd->handle, sql, label, &stmt);
    if (rv != 0 && !db->txn && revive(db, rv)) {
        stmt = NULL;
        rv = apr_dbd_prepare(db->dbd->driver, db->dbd->pool, db->dbd->handle, sql, label, &stmt);
    }
    if (rv != 0 && !db->txn && stale(db, rv, "already exists")) {
        reset_statements(db);
        stmt = NULL;
        rv = apr_dbd_prepare(db->dbd->driver, db->dbd->pool, db->dbd->handle, sql, label, &stmt);
    }
    if (rv != 0) {
        classify(db, rv);
        db->err = apr_psprintf(db->p, "prepare %s: %s", label, db->err);
        return NULL;
    }
    apr_hash_set(db->dbd->prepared, label, APR_HASH_KEY_STRING, stmt);
    return stmt;
    }
}

static sk_db_status select_rows(sk_db *db, const char *label, int n, const char *const *args,
                                apr_dbd_results_t **res)
{
    apr_dbd_prepared_t *stmt = prepared(db, label);
    int rv;
    if (!stmt)
        return SK_DB_ERROR;
    *res = NULL;
    rv = apr_dbd_pselect(db->dbd->driver, db->p, db->dbd->handle, res, stmt, 1, n, (const char **)args);
    if (rv != 0 && !db->txn && revive(db, rv)) {
        /* the first use of a connection whose session died: once more on the re-opened one */
        if (!(stmt = prepared(db, label)))
            return SK_DB_ERROR;
        rv = apr_dbd_pselect(db->dbd->driver, db->p, db->dbd->handle, res, stmt, 1, n, (const char **)args);
    }
    if (rv != 0 && label[0] != '\n' && !db->txn) {
        /* mod_dbd re-opens a connection that broke (PostgreSQL restarted) in place: the statements
         * prepared on the old session are gone, though this connection's table still lists them */
        if (stale(db, rv, "does not exist")) {
            reset_statements(db);
            if (!(stmt = prepared(db, label)))
                return SK_DB_ERROR;
            rv = apr_dbd_pselect(db->dbd->driver, db->p, db->dbd->handle, res, stmt, 1, n, (const char **)args);
        }
    }
    if (rv != 0)
        return classify(db, rv);
    return SK_DB_OK;
}

sk_db_status sk_db_exec(sk_db *db, const char *label, int n, const char *const *args, int *nrows)
{
    apr_dbd_results_t *res;
    sk_db_status st;
    if (!db)
        return SK_DB_ERROR;
    /* pselect rather than pquery so statements with RETURNING behave the same */
    st = select_rows(db, label, n, args, &res);
    if (st == SK_DB_OK && nrows)
        *nrows = apr_dbd_num_tuples(db->dbd->driver, res);
    return st;
}

static sk_db_status first_value(sk_db *db, const char *label, int n, const char *const *args, const char **out)
{
    apr_dbd_results_t *res;
    apr_dbd_row_t *row = NULL;
    const char *v;
    sk_db_status st;
    *out = NULL;
    if (!db)
        return SK_DB_ERROR;
    st = select_rows(db, label, n, args, &res);
    if (st != SK_DB_OK)
        return st;
    if (apr_dbd_get_row(db->dbd->driver, db->p, res, &row, 1) != 0 || !row)
        return SK_DB_NOTFOUND;
    v = apr_dbd_get_entry(db->dbd->driver, row, 0);
    if (!v)
        return SK_DB_NOTFOUND;
    *out = apr_pstrdup(db->p, v);
    return SK_DB_OK;
}

sk_db_status sk_db_value(sk_db *db, const char *label, int n, const char *const *args, const char **out)
{
    return first_value(db, label, n, args, out);
}

sk_db_status sk_db_json(sk_db *db, const char *label, int n, const char *const *args, json_t **out)
{
    const char *v;
    json_error_t jerr;
    sk_db_status st = first_value(db, label, n, args, &v);
    *out = NULL;
    if (st != SK_DB_OK)
        return st;
    *out = json_loads(v, JSON_ALLOW_NUL, &jerr);
    if (!*out) {
        db->err = apr_psprintf(db->p, "statement %s returned invalid JSON: %s", label, jerr.text);
        return SK_DB_ERROR;
    }
    return SK_DB_OK;
}

/* A transaction left open by an early return must not reach the next user of the connection. */
static apr_status_t txn_cleanup(void *data)
{
    sk_db_rollback(data);
    return APR_SUCCESS;
}

sk_db_status sk_db_json_sql(sk_db *db, const char *sql, int n, const char *const *args, json_t **out)
{
    *out = NULL;
    if (!db || !sql)
        return SK_DB_ERROR;
    return sk_db_json(db, apr_pstrcat(db->p, "\n", sql, NULL), n, args, out);
}

sk_db_status sk_db_value_sql(sk_db *db, const char *sql, int n, const char *const *args, const char **out)
{
    *out = NULL;
    if (!db || !sql)
        return SK_DB_ERROR;
    return sk_db_value(db, apr_pstrcat(db->p, "\n", sql, NULL), n, args, out);
}

/* The session's prepared statements and this connection's table of them must agree. They stop
 * agreeing when mod_dbd re-opens a broken connection in place (PostgreSQL restarted: the session
 * has none of the statements the table lists). Forgetting both sides lets every statement be
 * prepared again on first use. */
static void reset_statements(sk_db *db)
{
    int nrows = 0;
    apr_dbd_query(db->dbd->driver, db->dbd->handle, &nrows, "DEALLOCATE ALL");
    apr_hash_clear(db->dbd->prepared);
}

/* Outside a transaction a statement that finds its prepared form gone starts over (select_rows);
 * inside one, that first error would abort the transaction. So before a transaction, the
 * number of statements the session holds is compared with the table (one round trip). */
static sk_db_status check_statements(sk_db *db)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    const char *n;
    int rv = apr_dbd_select(db->dbd->driver, db->p, db->dbd->handle, &res,
                            "SELECT count(*)::text FROM pg_prepared_statements", 1);
    if (rv != 0 && revive(db, rv))
        rv = apr_dbd_select(db->dbd->driver, db->p, db->dbd->handle, &res,
                            "SELECT count(*)::text FROM pg_prepared_statements", 1);
    if (rv != 0)
        return classify(db, rv);
    if (apr_dbd_get_row(db->dbd->driver, db->p, res, &row, 1) != 0 || !row ||
        !(n = apr_dbd_get_entry(db->dbd->driver, row, 0)) ||
        strcmp(n, apr_itoa(db->p, (int)apr_hash_count(db->dbd->prepared))))
        reset_statements(db);
    return SK_DB_OK;
}

sk_db_status sk_db_begin(sk_db *db)
{
    sk_db_status st;
    int rv;
    if (!db)
        return SK_DB_ERROR;
    if (db->txn)
        return SK_DB_OK;
    if ((st = check_statements(db)) != SK_DB_OK)
        return st;
    db->txn_failed = 0;
    rv = apr_dbd_transaction_start(db->dbd->driver, db->p, db->dbd->handle, &db->txn);
    if (rv != 0) {
        db->txn = NULL;
        return classify(db, rv);
    }
    apr_pool_cleanup_register(db->p, db, txn_cleanup, apr_pool_cleanup_null);
    return SK_DB_OK;
}

sk_db_status sk_db_commit(sk_db *db)
{
    int rv;
    if (!db || !db->txn)
        return SK_DB_ERROR;
    if (db->txn_failed) {
        /* the driver would roll back and report success: say what happened */
        sk_db_rollback(db);
        return SK_DB_ERROR;
    }
    rv = apr_dbd_transaction_end(db->dbd->driver, db->p, db->txn);
    db->txn = NULL;
    if (rv != 0)
        return classify(db, rv);
    return SK_DB_OK;
}

void sk_db_rollback(sk_db *db)
{
    if (!db || !db->txn)
        return;
    apr_dbd_transaction_mode_set(db->dbd->driver, db->txn, APR_DBD_TRANSACTION_ROLLBACK);
    apr_dbd_transaction_end(db->dbd->driver, db->p, db->txn);
    db->txn = NULL;
    db->txn_failed = 0;
}

sk_db_status sk_db_script(sk_db *db, const char *sql)
{
    int nrows = 0, rv;
    if (!db)
        return SK_DB_ERROR;
    rv = apr_dbd_query(db->dbd->driver, db->dbd->handle, &nrows, sql);
    if (rv != 0)
        return classify(db, rv);
    return SK_DB_OK;
}
