#include "core/rotation.h"
#include "core/jsonget.h"

#include <apr_strings.h>
#include <string.h>

/* Inside the open transaction; SK_ROTATED or another status (the caller rolls back). */
static sk_rotation_status run(sk_keyring *kr, sk_db *db, apr_pool_t *p, const sk_rotation_opts *o,
                              sk_rotation_result *out)
{
    const char *alg = sk_alg_name(sk_keyring_alg(kr)), *v = NULL, *kid = NULL;
    char ttl[16], margin[16];
    json_t *state = NULL, *demoted = NULL, *age;
    sk_rotation_status rs = SK_ROTATION_FAILED;

    if (SK_QV(db, "rotation_lock_try", &v) != SK_DB_OK)
        return SK_ROTATION_FAILED;
    if (strcmp(v, "true"))
        return SK_ROTATION_BUSY;
    /* read under the lock: another server may have rotated a moment ago */
    if (SK_QJ(db, "rotation_state", &state, alg) != SK_DB_OK)
        return SK_ROTATION_FAILED;
    age = json_object_get(state, "age");
    if (o->due_after > 0 && json_is_integer(age) && json_integer_value(age) < o->due_after) {
        rs = SK_ROTATION_NOT_DUE;
        goto done;
    }
    /* the key to promote: made now when none was published ahead */
    if (!sk_jstr(state, "next") && sk_keyring_store_new(kr, db, p, "next", NULL) != SK_DB_OK)
        goto done;

    apr_snprintf(ttl, sizeof(ttl), "%d", o->access_ttl > 0 ? o->access_ttl : 0);
    apr_snprintf(margin, sizeof(margin), "%d", o->margin > 0 ? o->margin : 0);
    if (SK_QJ(db, "rotation_retire", &out->retired, alg, ttl, margin) != SK_DB_OK)
        goto done;
    if (SK_QJ(db, "rotation_demote", &demoted, alg) != SK_DB_OK)
        goto done;
    if (SK_QV(db, "rotation_promote", &kid, alg) != SK_DB_OK)
        goto done;
    out->current = apr_pstrdup(p, kid);
    out->previous = sk_jstr(demoted, "previous") ? apr_pstrdup(p, sk_jstr(demoted, "previous")) : NULL;
    if (sk_keyring_store_new(kr, db, p, "next", &out->next) != SK_DB_OK)
        goto done;
    rs = SK_ROTATED;
done:
    json_decref(state);
    json_decref(demoted);
    return rs;
}

sk_rotation_status sk_rotation_rotate(sk_keyring *kr, sk_db *db, apr_pool_t *p, const sk_rotation_opts *o,
                                      sk_audit *audit, sk_rotation_result *out)
{
    sk_rotation_status rs;

    memset(out, 0, sizeof(*out));
    if (!kr || !db || !sk_alg_name(sk_keyring_alg(kr)))
        return SK_ROTATION_FAILED;
    if (sk_db_begin(db) != SK_DB_OK)
        return SK_ROTATION_FAILED;
    rs = run(kr, db, p, o, out);
    if (rs == SK_ROTATED && audit) {
        audit->resource_type = "signing_key";
        audit->resource_id = out->current;
        audit->details = json_pack("{s:s,s:s?,s:s?,s:s?,s:O?,s:s}", "alg", sk_alg_name(sk_keyring_alg(kr)),
                                   "current", out->current, "next", out->next, "previous", out->previous,
                                   "retired", out->retired, "trigger", o->due_after > 0 ? "schedule" : "manual");
        if (sk_audit_write(db, audit) != SK_DB_OK)
            rs = SK_ROTATION_FAILED;
        json_decref(audit->details);
        audit->details = NULL;
    }
    if (rs == SK_ROTATED && sk_db_commit(db) != SK_DB_OK)
        rs = SK_ROTATION_FAILED;
    if (rs != SK_ROTATED) {
        sk_db_rollback(db);
        json_decref(out->retired);
        memset(out, 0, sizeof(*out));
    }
    return rs;
}
