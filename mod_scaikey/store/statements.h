/* The SQL of the store, by label. */
#ifndef SK_STORE_STATEMENTS_H
#define SK_STORE_STATEMENTS_H

typedef struct {
    const char *label;
    const char *sql;     /* apr_dbd syntax: %s for each argument, %% for a literal percent */
} sk_statement;

/* Tables of statements, each ending with { NULL, NULL }: statements.c holds the core's, and
 * each group of endpoints may keep its own table (listed in sk_statement_tables). */
extern const sk_statement sk_statements_core[];
extern const sk_statement sk_statements_admin[];
extern const sk_statement sk_statements_keys[];
extern const sk_statement sk_statements_rotation[];
extern const sk_statement sk_statements_users[];
extern const sk_statement sk_statements_oauth[];
extern const sk_statement sk_statements_mail[];
extern const sk_statement sk_statements_login[];
extern const sk_statement sk_statements_mfa[];
extern const sk_statement sk_statements_guard[];

/* NULL when unknown. */
const char *sk_statement_sql(const char *label);

#endif
