/* SQL of the admin API's special actions (members, nesting, secrets, sessions, audit, ...). */
#include "store/statements.h"

#include <stddef.h>

const sk_statement sk_statements_admin[] = {
    { NULL, NULL }
};
