/* Routes of API keys. Handlers are declared in api/apikeys.h. */
#include "http/router.h"
#include "api/apikeys.h"

#define ME    "/api/v1/me/api-keys"
#define ADMIN "/api/v1/admin/api-keys"
#define B     SK_R_BEARER
#define BJ    (SK_R_BEARER | SK_R_JSON)

const sk_route sk_routes_keys[] = {
    /* a person's own keys */
    { "GET",    ME,                 sk_api_my_keys_list,   B },
    { "POST",   ME,                 sk_api_my_keys_create, BJ },
    { "GET",    ME "/{key_id}",     sk_api_my_keys_get,    B },
    { "DELETE", ME "/{key_id}",     sk_api_my_keys_revoke, B },

    /* every key within an administrator's reach */
    { "GET",    ADMIN,              sk_admin_keys_list,    B },
    { "POST",   ADMIN,              sk_admin_keys_create,  BJ },
    { "GET",    ADMIN "/{key_id}",  sk_admin_keys_get,     B },
    { "DELETE", ADMIN "/{key_id}",  sk_admin_keys_revoke,  B },

    { NULL }
};
