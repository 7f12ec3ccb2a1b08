/* The SQL of the store, by label. */
#ifndef SK_STORE_STATEMENTS_H
#define SK_STORE_STATEMENTS_H

typedef struct {
    const char *label;
    const char *sql;     /* apr_dbd syntax: %s for each argument, %% for a literal percent */
} sk_statement;

/* NULL when unknown. */
const char *sk_statement_sql(const char *label);

#endif
