/* Signing keys: /api/v1/admin/keys lists them (never their private part) and
 * /api/v1/admin/keys/rotate rotates them now. The keys are the platform's: only the super_admin
 * and platform tokens see them (admin:read), and only the super_admin and platform tokens with
 * admin:write rotate them. */
#include "api/admin_keys.h"
#include "api/crud.h"
#include "http/response.h"
#include "core/rotation.h"
#include "core/pooljson.h"
#include "startup.h"
#include "scaikey.h"

#include <http_protocol.h>

APLOG_USE_MODULE(scaikey);

#define DENIED "Requires Super Admin role"

static int allowed(sk_req *q, int write)
{
    if (sk_admin_gate(q, write) != OK)
        return 0;
    if (!sk_policy_reach(q->who).all) {
        sk_fail(q, HTTP_FORBIDDEN, DENIED);
        return 0;
    }
    return 1;
}

int sk_admin_signing_keys_list(sk_req *q)
{
    json_t *items = NULL;
    sk_db *db;

    if (!allowed(q, 0))
        return OK;
    if (!(db = sk_req_db(q)))
        return sk_fail_unavailable(q);
    if (sk_db_json(db, "rotation_keys_list", 0, NULL, &items) != SK_DB_OK) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, SKLOGNO(2501) "signing keys list: %s", sk_db_error(db));
        return sk_fail_unavailable(q);
    }
    sk_no_store(q);
    return sk_reply(q, HTTP_OK, json_pack("{s:o}", "items", items));
}

int sk_admin_signing_keys_rotate(sk_req *q)
{
    sk_keyring *kr = sk_startup_keyring();
    sk_rotation_opts o = { 0 };
    sk_rotation_result res;
    sk_audit *a;
    sk_db *db;

    if (!allowed(q, 1))
        return OK;
    if (!kr || !(db = sk_req_db(q)))
        return sk_fail_unavailable(q);
    o.due_after = 0;
    o.access_ttl = sk_config_access_ttl(q->cfg);
    o.margin = sk_config_clock_skew(q->cfg) + SK_ROTATION_RELOAD_MARGIN;
    a = sk_req_audit(q, "key.rotate", "success");
    switch (sk_rotation_rotate(kr, db, q->p, &o, a, &res)) {
    case SK_ROTATED:
        break;
    case SK_ROTATION_BUSY:
        return sk_fail(q, HTTP_CONFLICT, "A key rotation is already in progress; try again");
    default:
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, SKLOGNO(2502) "key rotation failed: %s", sk_db_error(db));
        return sk_fail_unavailable(q);
    }
    sk_pool_json(q->p, res.retired);
    ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, q->r, SKLOGNO(2503)
                  "signing keys rotated by %s: current %s, next %s, previous %s, %d retired",
                  a->actor_email ? a->actor_email : a->actor_id ? a->actor_id : "?", res.current, res.next,
                  res.previous ? res.previous : "none", (int)json_array_size(res.retired));
    /* this process signs with the new key at once; the others within SK_KEYRING_REFRESH_SECONDS */
    sk_keyring_refresh(kr, db, q->p, 1);
    sk_no_store(q);
    return sk_reply(q, HTTP_OK, json_pack("{s:s,s:s,s:s?}", "current", res.current, "next", res.next,
                                          "previous", res.previous));
}
