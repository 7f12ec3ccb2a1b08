/* Routes of the signing keys in the admin API. Handlers are declared in api/admin_keys.h. */
#include "http/router.h"
#include "api/admin_keys.h"

#define KEYS "/api/v1/admin/keys"

const sk_route sk_routes_keysadmin[] = {
    { "GET",  KEYS,             sk_admin_signing_keys_list,   SK_R_BEARER },
    { "POST", KEYS "/rotate",   sk_admin_signing_keys_rotate, SK_R_BEARER },
    { NULL }
};
