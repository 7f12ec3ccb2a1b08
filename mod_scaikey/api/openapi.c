/* GET /openapi.json: the API description, outside production mode. */
#include "api/api.h"
#include "http/response.h"

#include <http_protocol.h>

extern const char sk_openapi_json[];

int sk_api_openapi(sk_req *q)
{
    if (sk_config_production(q->cfg))
        return sk_fail(q, HTTP_NOT_FOUND, "Not Found");
    ap_set_content_type(q->r, "application/json");
    ap_set_content_length(q->r, (apr_off_t)strlen(sk_openapi_json));
    if (!q->r->header_only)
        ap_rputs(sk_openapi_json, q->r);
    return OK;
}
