/* Handlers of the API, one file per endpoint group. */
#ifndef SK_API_H
#define SK_API_H

#include "http/request.h"

int sk_api_health(sk_req *q);
int sk_api_openapi(sk_req *q);
void sk_openapi_child_init(apr_pool_t *p);
int sk_api_jwks_platform(sk_req *q);
int sk_api_jwks_tenant(sk_req *q);
int sk_api_admin_login(sk_req *q);
int sk_api_admin_refresh(sk_req *q);
int sk_api_admin_logout(sk_req *q);
int sk_api_admin_me(sk_req *q);

#endif
