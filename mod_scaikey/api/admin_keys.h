/* Signing keys in the admin API: the list and the manual rotation (api/admin_keys.c). */
#ifndef SK_API_ADMIN_KEYS_H
#define SK_API_ADMIN_KEYS_H

#include "http/request.h"

/* GET /api/v1/admin/keys */
int sk_admin_signing_keys_list(sk_req *q);
/* POST /api/v1/admin/keys/rotate */
int sk_admin_signing_keys_rotate(sk_req *q);

#endif
