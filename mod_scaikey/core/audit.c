#include "core/audit.h"

#include <apr_strings.h>
#include <string.h>

/* Free text from clients is bounded so a caller cannot bloat the log. */
static const char *bounded(apr_pool_t *p, const char *s, apr_size_t max)
{
    apr_size_t n;
    if (!s)
        return NULL;
    n = strlen(s);
    if (n <= max)
        return s;
    /* cut on a UTF-8 character boundary */
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
        max--;
    return apr_pstrndup(p, s, max);
}

sk_db_status sk_audit_write(sk_db *db, const sk_audit *a)
{
    apr_pool_t *p;
    char *details;
    sk_db_status st;
    if (!db || !a || !a->action || !a->result)
        return SK_DB_ERROR;
    p = sk_db_pool(db);
    details = a->details ? json_dumps(a->details, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    st = SK_Q(db, "audit_insert",
              a->tenant_id, a->partner_id, a->actor_id, bounded(p, a->actor_email, 320),
              a->actor_type ? a->actor_type : "anonymous", a->action, a->resource_type, a->resource_id,
              a->result, a->ip, bounded(p, a->user_agent, 512), a->request_id, details ? details : "{}");
    free(details);
    /* the write it records must not be blamed on the caller's input: a failed audit row is ours */
    return st == SK_DB_OK ? SK_DB_OK : SK_DB_ERROR;
}
