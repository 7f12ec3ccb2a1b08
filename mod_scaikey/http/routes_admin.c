/* Routes of the admin API's special actions. Handlers are declared in api/admin.h. */
#include "http/router.h"
#include "api/admin.h"

const sk_route sk_routes_admin[] = {
    { NULL }
};
