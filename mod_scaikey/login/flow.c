/* Pending authorization requests ("flows") and the protection of their forms.
 *
 * A flow is named by a random handle (256 bits, base64url); only its SHA-256 is stored. Its forms
 * carry an anti-forgery token derived from the master key and the flow's id (HMAC-SHA-256), so
 * nothing that would let someone forge it is stored. The flow is also bound to the browser that
 * started it: a random value in a cookie (SameSite=Lax, so a cross-site form post does not carry
 * it) whose digest the flow keeps. A form is accepted only with both. */
#include "login/login.h"
#include "core/secrets.h"
#include "core/pooljson.h"
#include "scaikey.h"
#include "core/jsonget.h"

#include <apr_strings.h>
#include <apr_lib.h>
#include <stdlib.h>
#include <string.h>

APLOG_USE_MODULE(scaikey);

#define BIND_COOKIE "scaikey_flow"
#define MAX_HANDLE 64

static int well_formed(const char *s, apr_size_t max)
{
    apr_size_t n = 0;
    if (!s)
        return 0;
    for (; *s; s++, n++)
        if (n >= max || !(apr_isalnum(*s) || *s == '-' || *s == '_'))
            return 0;
    return n > 0;
}

/* The browser's binding value, made and set on first use. */
static const char *binding(sk_req *q, int create)
{
    const char *name = sk_cookie_name(q, BIND_COOKIE), *v = sk_cookie_get(q, name);
    if (well_formed(v, MAX_HANDLE) && strlen(v) >= 43)
        return v;
    if (!create || !(v = sk_random_token(q->p, NULL, 32)))
        return NULL;
    sk_cookie_set(q, name, v, -1);
    return v;
}

int sk_flow_create(sk_req *q, json_t *data, const char *tenant_id, const char *user_id, sk_flow **out)
{
    sk_db *db = sk_req_db(q);
    const char *handle = sk_random_token(q->p, NULL, 32), *bind = binding(q, 1), *id = NULL;
    json_t *d;
    char *text;
    sk_db_status st;
    sk_flow *f;

    *out = NULL;
    if (!db || !handle || !bind)
        return -1;
    d = sk_pool_json(q->p, json_deep_copy(data));
    json_object_set_new(d, "bind", json_string(sk_sha256_hex(q->p, bind)));
    text = json_dumps(d, JSON_COMPACT);
    if (!text)
        return -1;
    st = SK_QV(db, "flow_create", &id, tenant_id, user_id, sk_sha256_hex(q->p, handle), text, q->ip);
    free(text);
    if (st != SK_DB_OK) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, SKLOGNO(1001) "sign-in flow not stored: %s", sk_db_error(db));
        return -1;
    }
    f = apr_pcalloc(q->p, sizeof(*f));
    f->id = id;
    f->handle = handle;
    f->tenant_id = tenant_id;
    f->user_id = user_id;
    f->data = d;
    *out = f;
    return 0;
}

static const char *pstr(apr_pool_t *p, json_t *o, const char *k)
{
    const char *v = sk_jstr(o, k);
    return v ? apr_pstrdup(p, v) : NULL;
}

int sk_flow_load(sk_req *q, const char *handle, sk_flow **out)
{
    sk_db *db;
    json_t *row = NULL;
    sk_db_status st;
    sk_flow *f;

    *out = NULL;
    if (!well_formed(handle, MAX_HANDLE))
        return 1;
    if (!(db = sk_req_db(q)))
        return -1;
    st = SK_QJ(db, "flow_get", &row, sk_sha256_hex(q->p, handle));
    if (st == SK_DB_NOTFOUND)
        return 1;
    if (st != SK_DB_OK)
        return -1;
    sk_pool_json(q->p, row);
    f = apr_pcalloc(q->p, sizeof(*f));
    f->id = pstr(q->p, row, "id");
    f->handle = apr_pstrdup(q->p, handle);
    f->tenant_id = pstr(q->p, row, "tenant_id");
    f->user_id = pstr(q->p, row, "user_id");
    f->email = pstr(q->p, row, "email");
    f->data = json_object_get(row, "data");
    if (!json_is_object(f->data))
        return 1;
    *out = f;
    return 0;
}

const char *sk_flow_csrf(sk_req *q, const sk_flow *f)
{
    const char *msg = apr_pstrcat(q->p, "scaikey-flow-csrf:", f->id, NULL);
    return sk_hmac_sha256_hex(q->p, q->cfg->master_key, sizeof(q->cfg->master_key), msg, strlen(msg));
}

int sk_flow_form_ok(sk_req *q, const sk_flow *f)
{
    const char *csrf = q->form ? apr_table_get(q->form, "csrf") : NULL, *bind = binding(q, 0);
    /* both compares always run, so the time taken does not tell which one failed */
    int csrf_ok = sk_ct_streq(csrf ? csrf : "", sk_flow_csrf(q, f));
    int bind_ok = sk_ct_streq(bind ? sk_sha256_hex(q->p, bind) : "", sk_flow_get(f, "bind"));
    return csrf && bind && csrf_ok && bind_ok;
}

int sk_flow_update(sk_req *q, sk_flow *f, const char *tenant_id, const char *user_id, const char *email,
                   json_t *patch)
{
    sk_db *db = sk_req_db(q);
    const char *id = NULL;
    char *text;
    sk_db_status st;
    if (!db)
        return -1;
    text = json_dumps(patch ? patch : sk_pool_json(q->p, json_object()), JSON_COMPACT);
    if (!text)
        return -1;
    st = SK_QV(db, "flow_update", &id, f->id, tenant_id, user_id, email, text);
    free(text);
    if (st != SK_DB_OK) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, SKLOGNO(1002) "sign-in flow not updated: %s", sk_db_error(db));
        return -1;
    }
    f->tenant_id = tenant_id;
    f->user_id = user_id;
    f->email = email;
    if (patch)
        json_object_update(f->data, patch);
    return 0;
}

int sk_flow_finish(sk_req *q, sk_flow *f)
{
    sk_db *db = sk_req_db(q);
    const char *id = NULL;
    sk_db_status st;
    if (!db)
        return -1;
    st = SK_QV(db, "flow_finish", &id, f->id);
    if (st == SK_DB_NOTFOUND)
        return 1;
    return st == SK_DB_OK ? 0 : -1;
}

const char *sk_flow_get(const sk_flow *f, const char *key)
{
    return f ? json_string_value(json_object_get(f->data, key)) : NULL;
}
