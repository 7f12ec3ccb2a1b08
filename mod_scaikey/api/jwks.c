/* JWKS: the same keys at the platform path and at every tenant's path. */
#include "api/api.h"
#include "http/response.h"
#include "http/validate.h"
#include "startup.h"

static int reply_jwks(sk_req *q)
{
    sk_db *db = sk_req_db(q);
    if (db)
        sk_keyring_refresh(sk_startup_keyring(), db, q->p, 0);
    /* keys change only on rotation, and the next key is published ahead of it */
    apr_table_setn(q->r->headers_out, "Cache-Control", "public, max-age=300");
    return sk_reply(q, HTTP_OK, sk_keyring_jwks(sk_startup_keyring()));
}

int sk_api_jwks_platform(sk_req *q)
{
    return reply_jwks(q);
}

int sk_api_jwks_tenant(sk_req *q)
{
    const char *slug = sk_req_param(q, "tenant_slug");
    json_t *tenant = NULL;
    sk_db *db;
    sk_db_status st;
    if (!sk_valid_slug(slug))
        return sk_fail(q, HTTP_NOT_FOUND, "Tenant not found");
    if (!(db = sk_req_db(q)))
        return sk_fail_unavailable(q);
    st = SK_QJ(db, "tenant_by_slug", &tenant, slug);
    json_decref(tenant);
    if (st == SK_DB_NOTFOUND)
        return sk_fail(q, HTTP_NOT_FOUND, "Tenant not found");
    if (st != SK_DB_OK)
        return sk_fail_unavailable(q);
    return reply_jwks(q);
}
