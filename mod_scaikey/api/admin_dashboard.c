/* The admin console's dashboard: /api/v1/admin/dashboard/stats (what the caller may see,
 * counted) and /api/v1/admin/dashboard/activity (the latest audit entries within reach). */
#include "api/admin.h"
#include "api/crud.h"
#include "http/response.h"
#include "core/pooljson.h"
#include "scaikey.h"

#include <apr_strings.h>
#include <http_protocol.h>
#include <stdlib.h>
#include <string.h>

APLOG_USE_MODULE(scaikey);

#define ACTIVITY_DEFAULT 20
#define ACTIVITY_MAX     100

static int may_read(sk_req *q)
{
    if (sk_admin_gate(q, 0) != OK)
        return 0;
    if (sk_policy_decide(q->who, SK_RES_DASHBOARD, SK_ACT_READ, NULL) != SK_ALLOW) {
        sk_fail(q, HTTP_FORBIDDEN, "Access denied");
        return 0;
    }
    return 1;
}

int sk_admin_dashboard_stats(sk_req *q)
{
    sk_reach r;
    json_t *out = NULL;
    sk_db *db;

    if (!may_read(q))
        return OK;
    if (!(db = sk_req_db(q)))
        return sk_fail_unavailable(q);
    r = sk_policy_reach(q->who);
    if (SK_QJ(db, "dash_stats", &out, r.all ? "true" : "false", r.all ? NULL : r.partner_id,
              r.all ? NULL : r.tenant_id, q->who->tenant_partner_id) != SK_DB_OK) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, SKLOGNO(0751) "dashboard stats: %s", sk_db_error(db));
        return sk_fail_unavailable(q);
    }
    return sk_reply(q, HTTP_OK, out);
}

int sk_admin_dashboard_activity(sk_req *q)
{
    const char *v = sk_req_query(q, "limit"), *none = NULL;
    sk_reach r;
    json_t *out = NULL;
    sk_db *db;
    long limit = ACTIVITY_DEFAULT;

    if (!may_read(q))
        return OK;
    if (v) {
        char *end;
        limit = strtol(v, &end, 10);
        if (!*v || *end || strlen(v) > 9)
            return sk_fail_validation(q, json_pack("[o]", sk_verr("query", "limit", "Input should be a valid "
                                                   "integer, unable to parse string as an integer", "int_parsing")));
        if (limit < 1 || limit > ACTIVITY_MAX)
            return sk_fail_validation(q, json_pack("[o]", sk_verr("query", "limit", "Input should be between 1 "
                                                   "and 100", "int_range")));
    }
    if (!(db = sk_req_db(q)))
        return sk_fail_unavailable(q);
    r = sk_policy_reach(q->who);
    /* the audit list without filters: tenant, partner, actor, email, action, resource type and
     * id, result, start, end, ip; then the reach and the page */
    if (SK_QJ(db, "audit_list", &out, none, none, none, none, none, none, none, none, none, none, none,
              r.all ? "true" : "false", r.all ? NULL : r.partner_id, r.all ? NULL : r.tenant_id,
              apr_ltoa(q->p, limit), "0") != SK_DB_OK) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, SKLOGNO(0752) "dashboard activity: %s", sk_db_error(db));
        return sk_fail_unavailable(q);
    }
    sk_pool_json(q->p, out);
    return sk_reply(q, HTTP_OK, json_pack("{s:O}", "items", json_object_get(out, "items")));
}
