/* An identity as a JSON object: what the shared cache stores (as text) and what the process's
 * table of recent credentials keeps (as the object itself). Everything but the credential and a
 * JWT's claims, which the token carries. Keys are short: the object is stored once per credential. */
#include "guard/internal.h"
#include "core/jsonget.h"

#include <string.h>

static void put_str(json_t *o, const char *k, const char *v)
{
    if (v)
        json_object_set_new(o, k, json_string(v));
}

static void put_json(json_t *o, const char *k, json_t *v)
{
    if (v)
        json_object_set(o, k, v);
}

json_t *sk_guard_identity_json(const sk_identity *id)
{
    json_t *o = json_object();
    json_object_set_new(o, "k", json_string(id->kind == SK_CRED_JWT ? "jwt" : "api_key"));
    put_str(o, "sub", id->sub);
    put_str(o, "uid", id->user_id);
    put_str(o, "tid", id->tenant_id);
    put_str(o, "tsl", id->tenant_slug);
    put_str(o, "pid", id->partner_id);
    put_str(o, "scope", id->scope);
    put_str(o, "cid", id->client_id);
    put_str(o, "email", id->email);
    put_str(o, "agent", id->agent_id);
    put_str(o, "key", id->key_id);
    put_str(o, "iss", id->iss);
    put_str(o, "jti", id->jti);
    put_str(o, "sid", id->sid);
    put_json(o, "aud", id->aud);
    /* always arrays, so that an identity read back never needs one made for it */
    json_object_set_new(o, "roles", json_is_array(id->roles) ? json_incref(id->roles) : json_array());
    json_object_set_new(o, "groups", json_is_array(id->groups) ? json_incref(id->groups) : json_array());
    put_json(o, "tools", id->tools);
    if (id->rpm > 0)
        json_object_set_new(o, "rpm", json_integer(id->rpm));
    json_object_set_new(o, "exp", json_integer(id->exp));
    json_object_set_new(o, "chk", json_integer(id->checked));
    return o;
}

int sk_guard_identity_fill(sk_identity *id, json_t *o, sk_cred_kind want)
{
    const char *k = sk_jstr(o, "k");
    memset(id, 0, sizeof(*id));
    if (!k || !sk_jstr(o, "sub"))
        return -1;
    id->kind = !strcmp(k, "jwt") ? SK_CRED_JWT : SK_CRED_APIKEY;
    if (id->kind != want)
        return -1;
    id->sub = sk_jstr(o, "sub");
    id->user_id = sk_jstr(o, "uid");
    id->tenant_id = sk_jstr(o, "tid");
    id->tenant_slug = sk_jstr(o, "tsl");
    id->partner_id = sk_jstr(o, "pid");
    id->scope = sk_jstr(o, "scope");
    id->client_id = sk_jstr(o, "cid");
    id->email = sk_jstr(o, "email");
    id->agent_id = sk_jstr(o, "agent");
    id->key_id = sk_jstr(o, "key");
    id->iss = sk_jstr(o, "iss");
    id->jti = sk_jstr(o, "jti");
    id->sid = sk_jstr(o, "sid");
    id->aud = json_object_get(o, "aud");
    id->roles = json_object_get(o, "roles");
    id->groups = json_object_get(o, "groups");
    id->tools = json_object_get(o, "tools");
    id->rpm = (int)json_integer_value(json_object_get(o, "rpm"));
    id->exp = json_integer_value(json_object_get(o, "exp"));
    id->checked = (apr_time_t)json_integer_value(json_object_get(o, "chk"));
    return json_is_array(id->roles) && json_is_array(id->groups) ? 0 : -1;
}
