/* The OAuth 2.0 / OpenID Connect provider, in its two flavours: the platform's
 * (/api/v1/platform/oauth, GLOBAL applications) and each tenant's (/api/v1/auth/tenants/{slug},
 * TENANT and PARTNER applications and MCP agents). */
#ifndef SK_OAUTH_H
#define SK_OAUTH_H

#include "http/request.h"

/* route data: which flavour */
typedef struct sk_flavour {
    int tenant;          /* 0 platform, 1 tenant (slug in the path as {tenant_slug}) */
} sk_flavour;

extern const sk_flavour sk_flavour_platform, sk_flavour_tenant;

int sk_oauth_token(sk_req *q);

/* RFC 6749 §5.2 error: {"error", "error_description"} with Cache-Control: no-store. */
int sk_oauth_error(sk_req *q, int status, const char *error, const char *description);

/* The issuer of a flavour: {base}/api/v1/platform/oauth or {base}/api/v1/auth/tenants/{slug}. */
const char *sk_oauth_issuer(sk_req *q, const char *slug);

#endif
