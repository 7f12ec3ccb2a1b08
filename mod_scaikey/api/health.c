/* GET /api/v1/health: 200 once this process has its store and keys, 503 otherwise. */
#include "api/api.h"
#include "http/response.h"
#include "startup.h"

int sk_api_health(sk_req *q)
{
    sk_db *db;
    const char *v = NULL;
    if (sk_startup_ensure(q->r->server, q->p) != 0 || !(db = sk_req_db(q)) ||
        sk_db_value(db, "health", 0, NULL, &v) != SK_DB_OK) {
        apr_table_setn(q->r->err_headers_out, "Retry-After", "5");
        return sk_reply(q, HTTP_SERVICE_UNAVAILABLE, json_pack("{s:s}", "status", "unavailable"));
    }
    apr_table_setn(q->r->headers_out, "Cache-Control", "no-store");
    return sk_reply(q, HTTP_OK, json_pack("{s:s,s:s}", "status", "ok", "database", "ok"));
}
