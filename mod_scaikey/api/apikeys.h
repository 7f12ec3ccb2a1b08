/* API keys: a person's own keys (/api/v1/me/api-keys) and every key within an administrator's
 * reach (/api/v1/admin/api-keys). Handlers of http/routes_keys.c. */
#ifndef SK_API_APIKEYS_H
#define SK_API_APIKEYS_H

#include "http/request.h"

int sk_api_my_keys_list(sk_req *q);
int sk_api_my_keys_create(sk_req *q);
int sk_api_my_keys_get(sk_req *q);
int sk_api_my_keys_revoke(sk_req *q);

int sk_admin_keys_list(sk_req *q);
int sk_admin_keys_create(sk_req *q);
int sk_admin_keys_get(sk_req *q);
int sk_admin_keys_revoke(sk_req *q);

#endif
