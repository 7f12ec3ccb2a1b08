/* The audit log: one row per security-relevant event, chained by digest in the store.
 * Never put a secret in an audit record. */
#ifndef SK_CORE_AUDIT_H
#define SK_CORE_AUDIT_H

#include <jansson.h>
#include "store/db.h"

typedef struct sk_audit {
    const char *action;          /* "admin.login", "user.create", ... */
    const char *result;          /* success, failure, denied, error */
    const char *resource_type, *resource_id;
    const char *actor_id, *actor_email, *actor_type;
    const char *tenant_id, *partner_id;
    const char *ip, *user_agent, *request_id;
    json_t *details;             /* borrowed; may be NULL */
} sk_audit;

sk_db_status sk_audit_write(sk_db *db, const sk_audit *a);

#endif
