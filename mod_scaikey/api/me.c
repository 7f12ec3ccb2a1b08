/* Self-service for any signed-in person (users and administrators alike): /api/v1/me -- the own
 * profile, password, sessions and the applications the person authorized. */
#include "api/users.h"
#include "http/response.h"
#include "core/password.h"
#include "core/throttle.h"
#include "core/pooljson.h"
#include "scaikey.h"
#include "core/jsonget.h"

#include <apr_strings.h>
#include <http_protocol.h>

APLOG_USE_MODULE(scaikey);

/* the members a person may change on their own profile; anything else is extra_forbidden */
static const sk_field profile_fields[] = {
    { "first_name",   SK_T_STRING, SK_F_NULLABLE, 0, 100 },
    { "last_name",    SK_T_STRING, SK_F_NULLABLE, 0, 100 },
    { "display_name", SK_T_STRING, SK_F_NULLABLE, 0, 200 },
    { "locale",       SK_T_STRING, SK_F_NULLABLE, 0, 35 },
    { "timezone",     SK_T_STRING, SK_F_NULLABLE, 0, 64 },
    { "phone",        SK_T_STRING, SK_F_NULLABLE, 0, 32 },
    { NULL }
};

static const sk_field password_fields[] = {
    { "current_password", SK_T_STRING, SK_F_REQUIRED, 1, 1024 },
    { "new_password",     SK_T_STRING, SK_F_REQUIRED, 1, 1024 },
    { NULL }
};

static const char *dump(apr_pool_t *p, json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    const char *c = s ? apr_pstrdup(p, s) : NULL;
    free(s);
    return c;
}

/* a person with a session: the only callers of /api/v1/me */
static int person(sk_req *q)
{
    if (q->who->user_id && q->who->session_id)
        return 1;
    sk_fail(q, HTTP_FORBIDDEN, "Only a signed-in person has a profile");
    return 0;
}

static int failed(sk_req *q, sk_db *db, const char *what)
{
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, SKLOGNO(0941) "%s: %s", what, sk_db_error(db));
    return sk_fail_unavailable(q);
}

int sk_api_me_get(sk_req *q)
{
    json_t *me = NULL;
    sk_db *db;
    sk_db_status st;
    if (!person(q))
        return OK;
    if (!(db = sk_req_db(q)))
        return sk_fail_unavailable(q);
    if ((st = SK_QJ(db, "me_get", &me, q->who->user_id)) == SK_DB_NOTFOUND)
        return sk_fail(q, HTTP_NOT_FOUND, "User not found");
    if (st != SK_DB_OK)
        return failed(q, db, "profile");
    json_object_set_new(me, "session_id", json_string(q->who->session_id));
    sk_no_store(q);
    return sk_reply(q, HTTP_OK, me);
}

int sk_api_me_patch(sk_req *q)
{
    json_t *me = NULL, *errs;
    sk_db *db;
    sk_audit *a;
    sk_db_status st;
    if (!person(q))
        return OK;
    errs = json_array();
    if (sk_validate(q->body, profile_fields, errs))
        return sk_fail_validation(q, errs);
    json_decref(errs);
    if (!(db = sk_req_db(q)))
        return sk_fail_unavailable(q);
    a = sk_req_audit(q, "user.profile_update", "success");
    a->resource_type = "user";
    a->resource_id = q->who->user_id;
    a->details = json_pack("{s:o}", "fields", json_array());
    sk_pool_json(q->p, a->details);
    {
        const char *k;
        json_t *v;
        json_object_foreach(q->body, k, v)
            json_array_append_new(json_object_get(a->details, "fields"), json_string(k));
    }
    if ((st = sk_db_begin(db)) == SK_DB_OK &&
        (st = SK_QJ(db, "me_update", &me, q->who->user_id, dump(q->p, q->body))) == SK_DB_OK &&
        (st = sk_audit_write(db, a)) == SK_DB_OK && (st = sk_db_commit(db)) == SK_DB_OK) {
        json_object_set_new(me, "session_id", json_string(q->who->session_id));
        sk_no_store(q);
        return sk_reply(q, HTTP_OK, me);
    }
    json_decref(me);
    sk_db_rollback(db);
    if (st == SK_DB_NOTFOUND)
        return sk_fail(q, HTTP_NOT_FOUND, "User not found");
    return failed(q, db, "profile update");
}

int sk_api_me_password(sk_req *q)
{
    const char *current, *next, *hash, *new_hash, *done = NULL, *n = NULL, *key;
    json_t *state = NULL;
    sk_db *db;
    sk_audit *a;
    sk_db_status st;
    long min;
    int window = q->cfg->throttle_window == SK_UNSET ? 900 : q->cfg->throttle_window, wait;

    if (!person(q) || sk_req_invalid(q, password_fields))
        return OK;
    current = sk_jstr(q->body, "current_password");
    next = sk_jstr(q->body, "new_password");
    if (!(db = sk_req_db(q)))
        return sk_fail_unavailable(q);
    /* guessing the current password with a stolen access token is throttled like a sign-in */
    key = apr_pstrcat(q->p, "user-password:", q->who->user_id, NULL);
    wait = sk_throttle_wait(db, key, q->cfg->throttle_account == SK_UNSET ? 5 : q->cfg->throttle_account, window);
    if (wait < 0)
        return sk_fail_unavailable(q);
    if (wait > 0)
        return sk_fail_throttled(q, wait, "Too many failed attempts. Try again later.");
    if ((st = SK_QJ(db, "me_password_state", &state, q->who->user_id)) != SK_DB_OK)
        return st == SK_DB_NOTFOUND ? sk_fail(q, HTTP_NOT_FOUND, "User not found") : failed(q, db, "password state");
    sk_pool_json(q->p, state);
    hash = sk_jstr(state, "password_hash");
    if (!sk_password_verify(hash, current)) {
        sk_throttle_fail(db, key, window);
        a = sk_req_audit(q, "user.password_change", "failure");
        a->resource_type = "user";
        a->resource_id = q->who->user_id;
        a->details = json_pack("{s:s}", "reason", "wrong_current_password");
        sk_user_audit_now(q, a);
        json_decref(a->details);
        return sk_fail(q, HTTP_BAD_REQUEST, "Current password is incorrect");
    }
    min = (long)json_integer_value(json_object_get(state, "min_length"));
    if (min < 1)
        min = 8;
    if ((long)strlen(next) < min) {
        json_t *e = sk_verr("body", "new_password",
                            apr_psprintf(q->p, "String should have at least %ld characters", min),
                            "string_too_short");
        json_object_set_new(e, "ctx", json_pack("{s:I}", "min_length", (json_int_t)min));
        return sk_fail_validation(q, json_pack("[o]", e));
    }
    if (!strcmp(next, current) || sk_password_verify(hash, next))
        return sk_fail_validation(q, json_pack("[o]", sk_verr("body", "new_password",
                                  "The new password must differ from the current one", "value_error")));
    if (!(new_hash = sk_password_hash(q->p, next)))
        return sk_fail_unavailable(q);
    sk_throttle_reset(db, key);
    a = sk_req_audit(q, "user.password_change", "success");
    a->resource_type = "user";
    a->resource_id = q->who->user_id;
    if ((st = sk_db_begin(db)) == SK_DB_OK &&
        (st = SK_Q(db, "password_history_add", q->who->user_id)) == SK_DB_OK &&
        (st = SK_QV(db, "me_password_set", &done, new_hash, q->who->user_id)) == SK_DB_OK &&
        (st = SK_QV(db, "sessions_revoke_others", &n, q->who->user_id, q->who->session_id, "password_changed")) == SK_DB_OK &&
        (a->details = json_pack("{s:I}", "sessions_revoked", (json_int_t)apr_atoi64(n)), sk_pool_json(q->p, a->details),
         st = sk_audit_write(db, a)) == SK_DB_OK &&
        (st = sk_db_commit(db)) == SK_DB_OK) {
        sk_no_store(q);
        return sk_reply(q, HTTP_OK, json_pack("{s:s,s:I}", "detail", "Password changed",
                                              "sessions_revoked", (json_int_t)apr_atoi64(n)));
    }
    sk_db_rollback(db);
    return failed(q, db, "password change");
}

int sk_api_me_sessions(sk_req *q)
{
    json_t *items = NULL;
    sk_db *db;
    if (!person(q))
        return OK;
    if (!(db = sk_req_db(q)))
        return sk_fail_unavailable(q);
    if (SK_QJ(db, "me_sessions", &items, q->who->user_id, q->who->session_id) != SK_DB_OK)
        return failed(q, db, "session list");
    sk_no_store(q);
    return sk_reply(q, HTTP_OK, json_pack("{s:o}", "items", items));
}

int sk_api_me_session_revoke(sk_req *q)
{
    const char *sid = sk_req_param(q, "session_id"), *done = NULL;
    sk_db *db;
    sk_audit *a;
    sk_db_status st;
    if (!person(q))
        return OK;
    if (!(db = sk_req_db(q)))
        return sk_fail_unavailable(q);
    a = sk_req_audit(q, "user.session_revoke", "success");
    a->resource_type = "session";
    a->resource_id = sid;
    if ((st = sk_db_begin(db)) == SK_DB_OK &&
        (st = SK_QV(db, "me_session_revoke", &done, sid, q->who->user_id)) == SK_DB_OK &&
        (st = sk_audit_write(db, a)) == SK_DB_OK && (st = sk_db_commit(db)) == SK_DB_OK)
        return sk_reply(q, HTTP_OK, json_pack("{s:s,s:s}", "detail", "Session revoked", "session_id", sid));
    sk_db_rollback(db);
    if (st == SK_DB_NOTFOUND || st == SK_DB_INVALID)     /* an id the store cannot even read */
        return sk_fail(q, HTTP_NOT_FOUND, "Session not found");
    return failed(q, db, "session revoke");
}

int sk_api_me_apps(sk_req *q)
{
    json_t *items = NULL;
    sk_db *db;
    if (!person(q))
        return OK;
    if (!(db = sk_req_db(q)))
        return sk_fail_unavailable(q);
    if (SK_QJ(db, "me_apps", &items, q->who->user_id) != SK_DB_OK)
        return failed(q, db, "authorized apps");
    return sk_reply(q, HTTP_OK, json_pack("{s:o}", "items", items));
}

int sk_api_me_app_revoke(sk_req *q)
{
    const char *cid = sk_req_param(q, "client_id");
    json_t *out = NULL;
    sk_db *db;
    sk_audit *a;
    sk_db_status st;
    if (!person(q))
        return OK;
    if (!(db = sk_req_db(q)))
        return sk_fail_unavailable(q);
    a = sk_req_audit(q, "user.consent_revoke", "success");
    a->resource_type = "application";
    a->details = json_pack("{s:s}", "client_id", cid);
    sk_pool_json(q->p, a->details);
    if ((st = sk_db_begin(db)) == SK_DB_OK && (st = SK_QJ(db, "me_app_revoke", &out, q->who->user_id, cid)) == SK_DB_OK &&
        (sk_pool_json(q->p, out), a->resource_id = sk_jstr(out, "application_id"), st = sk_audit_write(db, a)) == SK_DB_OK &&
        (st = sk_db_commit(db)) == SK_DB_OK)
        return sk_reply(q, HTTP_OK, json_pack("{s:s,s:s,s:O}", "detail", "Authorization revoked", "client_id", cid,
                                              "refresh_tokens_revoked", json_object_get(out, "refresh_tokens_revoked")));
    sk_db_rollback(db);
    if (st == SK_DB_NOTFOUND || st == SK_DB_INVALID)
        return sk_fail(q, HTTP_NOT_FOUND, "Authorized app not found");
    return failed(q, db, "consent revoke");
}
