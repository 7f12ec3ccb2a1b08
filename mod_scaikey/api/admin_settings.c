/* Platform settings: /api/v1/admin/platform-settings, the platform's one settings object.
 * Only the platform's own administrators read or change it. PATCH merges: each top-level key
 * of the body replaces the stored one, a key set to null is removed. Values may be sensitive:
 * the audit row names the keys only. */
#include "api/admin.h"
#include "api/crud.h"
#include "http/response.h"
#include "core/pooljson.h"
#include "scaikey.h"

#include <apr_strings.h>
#include <http_protocol.h>
#include <stdlib.h>
#include <string.h>

APLOG_USE_MODULE(scaikey);

#define MAX_KEYS    64
#define MAX_KEY_LEN 128
#define DENIED      "Requires Super Admin role"

static apr_status_t free_text(void *text)
{
    free(text);
    return APR_SUCCESS;
}

static int allowed(sk_req *q, int write)
{
    if (sk_admin_gate(q, write) != OK)
        return 0;
    if (sk_policy_decide(q->who, SK_RES_SETTINGS, write ? SK_ACT_UPDATE : SK_ACT_READ, NULL) != SK_ALLOW) {
        sk_fail(q, HTTP_FORBIDDEN, DENIED);
        return 0;
    }
    return 1;
}

int sk_admin_settings_get(sk_req *q)
{
    json_t *out = NULL;
    sk_db *db;

    if (!allowed(q, 0))
        return OK;
    if (!(db = sk_req_db(q)))
        return sk_fail_unavailable(q);
    if (sk_db_json(db, "settings_get", 0, NULL, &out) != SK_DB_OK) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, SKLOGNO(0761) "platform settings: %s", sk_db_error(db));
        return sk_fail_unavailable(q);
    }
    return sk_reply(q, HTTP_OK, out);
}

int sk_admin_settings_patch(sk_req *q)
{
    json_t *errs, *set, *removed, *out = NULL, *v;
    const char *key;
    char *patch;
    sk_db *db;
    sk_audit *a;
    sk_db_status st;

    if (!allowed(q, 1))
        return OK;
    errs = json_array();
    if (json_object_size(q->body) > MAX_KEYS)
        json_array_append_new(errs, sk_verr("body", NULL, "Object should have at most 64 keys", "too_long"));
    json_object_foreach(q->body, key, v)
        if (!*key || strlen(key) > MAX_KEY_LEN) {
            json_array_append_new(errs, sk_verr("body", key, "Keys should have 1 to 128 characters",
                                                "string_too_long"));
            break;
        }
    if (json_array_size(errs))
        return sk_fail_validation(q, errs);
    json_decref(errs);

    set = sk_pool_json(q->p, json_array());
    removed = sk_pool_json(q->p, json_array());
    json_object_foreach(q->body, key, v)
        json_array_append_new(json_is_null(v) ? removed : set, json_string(key));
    if (!(patch = json_dumps(q->body, JSON_COMPACT)))
        return sk_fail_unavailable(q);
    apr_pool_cleanup_register(q->p, patch, free_text, apr_pool_cleanup_null);

    if (!(db = sk_req_db(q)))
        return sk_fail_unavailable(q);
    a = sk_req_audit(q, "platform_settings.update", "success");
    a->resource_type = "platform_settings";
    a->details = sk_pool_json(q->p, json_pack("{s:O,s:O}", "set", set, "removed", removed));
    if ((st = sk_db_begin(db)) == SK_DB_OK && (st = SK_QJ(db, "settings_merge", &out, patch)) == SK_DB_OK) {
        sk_pool_json(q->p, out);
        if ((st = sk_audit_write(db, a)) == SK_DB_OK)
            st = sk_db_commit(db);
    }
    if (st != SK_DB_OK) {
        sk_db_rollback(db);
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, SKLOGNO(0762) "platform settings update: %s",
                      sk_db_error(db));
        return sk_fail_unavailable(q);
    }
    return sk_reply(q, HTTP_OK, json_incref(out));
}
