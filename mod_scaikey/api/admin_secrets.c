/* Client secret rotation: /api/v1/admin/applications/{app_id}/rotate-secret and
 * /api/v1/admin/agents/{agent_id}/rotate-secret. The new secret is shown once; only its digest
 * is stored, and the old secret stops working at once. Public clients (SPA, NATIVE) have none. */
#include "api/admin.h"
#include "api/crud.h"
#include "http/response.h"
#include "core/secrets.h"
#include "core/pooljson.h"
#include "scaikey.h"
#include "core/jsonget.h"

#include <apr_strings.h>
#include <apr_lib.h>
#include <http_protocol.h>
#include <string.h>

#define SECRET_PREFIX "sks_"
#define SECRET_BYTES  32

static int confidential(const char *type)
{
    return type && (!strcmp(type, "WEB") || !strcmp(type, "SERVICE"));
}

static int rotate(sk_req *q, const sk_resource *res, const char *label, int typed)
{
    json_t *row, *o;
    sk_where w;
    sk_db *db;
    sk_audit *a;
    const char *secret, *client_id = NULL;
    sk_db_status st;

    if (sk_admin_gate(q, 1) != OK || sk_admin_load(q, res, sk_req_param(q, res->id_param), &row, &w) != OK)
        return OK;
    if (sk_policy_decide(q->who, res->name, SK_ACT_UPDATE, &w) != SK_ALLOW)
        return sk_fail(q, HTTP_FORBIDDEN, "Access denied");
    o = json_object_get(row, "o");
    if (typed && !confidential(sk_jstr(o, "application_type")))
        return sk_fail(q, HTTP_CONFLICT, "Public clients have no secret");
    if (!(secret = sk_random_token(q->p, SECRET_PREFIX, SECRET_BYTES)))
        return sk_fail_unavailable(q);

    db = sk_req_db(q);
    a = sk_req_audit(q, apr_pstrcat(q->p, res->singular, ".secret_rotate", NULL), "success");
    a->resource_type = res->singular;
    a->resource_id = w.id;
    if (w.tenant_id)
        a->tenant_id = w.tenant_id;
    if (w.partner_id)
        a->partner_id = w.partner_id;
    a->details = sk_pool_json(q->p, json_pack("{s:s?}", "client_id", sk_jstr(o, "client_id")));
    if ((st = sk_db_begin(db)) == SK_DB_OK &&
        (st = SK_QV(db, label, &client_id, sk_sha256_hex(q->p, secret), w.id)) == SK_DB_OK &&
        (st = sk_audit_write(db, a)) == SK_DB_OK)
        st = sk_db_commit(db);
    if (st != SK_DB_OK) {
        sk_db_rollback(db);
        if (st == SK_DB_NOTFOUND)
            return sk_fail(q, HTTP_NOT_FOUND, apr_psprintf(q->p, "%c%s not found", apr_toupper(res->singular[0]),
                                                           res->singular + 1));
        return sk_fail_write(q, res, db, st);
    }
    sk_no_store(q);
    return sk_reply(q, HTTP_OK, json_pack("{s:s,s:s}", "client_id", client_id, "client_secret", secret));
}

int sk_admin_app_rotate_secret(sk_req *q)
{
    return rotate(q, &sk_res_applications, "secret_rotate_app", 1);
}

int sk_admin_agent_rotate_secret(sk_req *q)
{
    return rotate(q, &sk_res_agents, "secret_rotate_agent", 0);
}
