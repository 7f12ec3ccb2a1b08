/* The SSO session of the hosted login and the cookies that carry it.
 *
 * Cookie value: "<session id>.<secret>", the secret 256 random bits (base64url); the session row
 * keeps only SHA-256(secret), compared in constant time. The session is an ordinary sessions row
 * (kind 'sso', the user's tenant), so the admin API lists it and revoking it there ends it at
 * once. Timeouts come from the tenant's settings: session_idle_timeout (default 1800 s, restarted
 * whenever the session is used) and session_max_lifetime (default 36000 s, absolute).
 *
 * In production the cookie is "__Host-scaikey_sso" with Secure; in development mode (plain http)
 * browsers refuse __Host- cookies and Secure ones, so it is "scaikey_sso" without Secure. Both
 * are HttpOnly, SameSite=Lax, Path=/ and last for the browser session. */
#include "login/login.h"
#include "core/secrets.h"
#include "core/pooljson.h"
#include "scaikey.h"

#include <apr_strings.h>
#include <apr_lib.h>
#include <string.h>

APLOG_USE_MODULE(scaikey);

#define SSO_COOKIE "scaikey_sso"
#define MAX_COOKIE_VALUE 200

const char *sk_cookie_name(sk_req *q, const char *base)
{
    return sk_config_production(q->cfg) ? apr_pstrcat(q->p, "__Host-", base, NULL) : base;
}

const char *sk_cookie_read(request_rec *r, const char *name)
{
    const char *h = apr_table_get(r->headers_in, "Cookie"), *found = NULL;
    apr_size_t nlen = strlen(name);
    char *copy, *pair, *state;
    if (!h)
        return NULL;
    copy = apr_pstrdup(r->pool, h);
    for (pair = apr_strtok(copy, ";", &state); pair; pair = apr_strtok(NULL, ";", &state)) {
        while (*pair == ' ' || *pair == '\t')
            pair++;
        if (!strncmp(pair, name, nlen) && pair[nlen] == '=') {
            char *v = pair + nlen + 1, *e = v + strlen(v);
            while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
                *--e = '\0';
            /* several cookies of one name (another path or domain): none of them is trusted more */
            if (found)
                return NULL;
            found = v;
        }
    }
    return found;
}

const char *sk_cookie_get(sk_req *q, const char *name)
{
    return sk_cookie_read(q->r, name);
}

void sk_cookie_set(sk_req *q, const char *name, const char *value, int max_age)
{
    const char *c = apr_pstrcat(q->p, name, "=", value ? value : "", "; Path=/; HttpOnly; SameSite=Lax",
                                sk_config_production(q->cfg) ? "; Secure" : "",
                                max_age >= 0 ? apr_psprintf(q->p, "; Max-Age=%d", max_age) : "", NULL);
    apr_table_addn(q->r->err_headers_out, "Set-Cookie", c);
}

static int b64url_word(const char *s, apr_size_t min, apr_size_t max)
{
    apr_size_t n = 0;
    for (; *s; s++, n++)
        if (n >= max || !(apr_isalnum(*s) || *s == '-' || *s == '_'))
            return 0;
    return n >= min;
}

/* The session id and secret of the cookie, when it is well formed. */
static int cookie_parts(sk_req *q, const char **sid, const char **secret)
{
    const char *v = sk_cookie_get(q, sk_cookie_name(q, SSO_COOKIE)), *dot;
    if (!v || strlen(v) > MAX_COOKIE_VALUE || !(dot = strchr(v, '.')))
        return 0;
    *sid = apr_pstrndup(q->p, v, (apr_size_t)(dot - v));
    *secret = dot + 1;
    return b64url_word(*sid, 5, 64) && !strncmp(*sid, "ses_", 4) && b64url_word(*secret, 43, 64);
}

int sk_sso_current(sk_req *q, json_t **out)
{
    const char *sid, *secret;
    json_t *row = NULL;
    sk_db *db;
    sk_db_status st;
    int ok;

    *out = NULL;
    if (!cookie_parts(q, &sid, &secret))
        return 1;
    if (!(db = sk_req_db(q)))
        return -1;
    st = SK_QJ(db, "sso_get", &row, sid);
    if (st == SK_DB_NOTFOUND)
        return 1;
    if (st != SK_DB_OK)
        return -1;
    sk_pool_json(q->p, row);
    ok = sk_ct_streq(sk_sha256_hex(q->p, secret), json_string_value(json_object_get(row, "secret_hash")));
    json_object_del(row, "secret_hash");
    if (!ok)
        return 1;
    *out = row;
    return 0;
}

void sk_sso_touch(sk_req *q, const char *session_id)
{
    sk_db *db = sk_req_db(q);
    if (db && SK_Q(db, "sso_touch", session_id) != SK_DB_OK)
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, q->r, SKLOGNO(1011) "SSO session not touched: %s",
                      sk_db_error(db));
}

int sk_sso_start(sk_req *q, json_t *user, const char *partner_id, const char *client_id, const char **sid,
                 long long *auth_time)
{
    sk_db *db = sk_req_db(q);
    const char *secret = sk_random_token(q->p, NULL, 32), *ended = NULL;
    json_t *cur = NULL, *row = NULL;
    sk_db_status st;

    *sid = NULL;
    *auth_time = 0;
    if (!db || !secret)
        return -1;
    /* a new sign-in replaces the browser's previous session */
    if (sk_sso_current(q, &cur) == 0 &&
        SK_QV(db, "session_revoke", &ended, json_string_value(json_object_get(cur, "id")), "replaced") != SK_DB_OK)
        return -1;
    st = SK_QJ(db, "sso_create", &row, json_string_value(json_object_get(user, "id")),
               json_string_value(json_object_get(user, "tenant_id")), partner_id, client_id,
               sk_sha256_hex(q->p, secret), q->ip, q->user_agent);
    if (st != SK_DB_OK)
        return -1;
    sk_pool_json(q->p, row);
    *sid = apr_pstrdup(q->p, json_string_value(json_object_get(row, "id")));
    *auth_time = (long long)json_integer_value(json_object_get(row, "auth_time"));
    if (!*sid)
        return -1;
    sk_cookie_set(q, sk_cookie_name(q, SSO_COOKIE), apr_pstrcat(q->p, *sid, ".", secret, NULL), -1);
    return 0;
}

int sk_sso_end(sk_req *q, const char *reason, const char **ended_id, json_t **ended_user)
{
    json_t *cur = NULL;
    const char *n = NULL;
    sk_db *db;
    int rc = sk_sso_current(q, &cur);

    *ended_id = NULL;
    *ended_user = NULL;
    sk_cookie_set(q, sk_cookie_name(q, SSO_COOKIE), "", 0);
    if (rc != 0)
        return rc < 0 ? -1 : 0;
    if (!(db = sk_req_db(q)))
        return -1;
    if (SK_QV(db, "session_revoke", &n, json_string_value(json_object_get(cur, "id")), reason) != SK_DB_OK)
        return -1;
    *ended_id = json_string_value(json_object_get(cur, "id"));
    *ended_user = json_object_get(cur, "user");
    return 0;
}
