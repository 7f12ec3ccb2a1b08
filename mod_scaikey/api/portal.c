/* The portal's tenant-agnostic sign-in: /api/v1/auth/{identify,authenticate,login,refresh,logout}.
 *
 * Anti-enumeration design: identify learns nothing and tells nothing. It does not look the email
 * up at all: every call stores a fresh flow token (10 minutes, 5 attempts, only its digest kept)
 * bound to the email as typed and answers {"flow_token", "tenants": [], "expires_in"} -- the same
 * shape, the same work and so the same timing for known and unknown emails. The tenant choice
 * moves to authenticate, after the password is proven: the password is checked against every
 * tenant account of the email (one dummy verification when there is none); when it fits accounts
 * in several tenants and no tenant_id was given, the answer is a 422 on body.tenant_id listing
 * only those tenants, which only someone who knows the password sees. A flow token of an unknown
 * email simply leads to the same 401 as a wrong password.
 *
 * Tokens are of the user's tenant's flavour, on a session of kind "portal". When the account has a
 * second factor, the answer is the MFA challenge of the tenant login (with tenant_slug); it is
 * finished at /api/v1/auth/tenants/{tenant_slug}/mfa/verify and opens a portal session. */
#include "api/users.h"
#include "http/response.h"
#include "core/password.h"
#include "core/secrets.h"
#include "core/pooljson.h"
#include "scaikey.h"
#include "core/jsonget.h"

#include <apr_strings.h>
#include <apr_lib.h>
#include <http_protocol.h>

APLOG_USE_MODULE(scaikey);

#define FLOW_TTL 600

static const sk_field identify_fields[] = {
    { "email", SK_T_EMAIL, SK_F_REQUIRED, 3, 320 },
    { NULL }
};

static const sk_field authenticate_fields[] = {
    { "flow_token", SK_T_STRING, SK_F_REQUIRED, 1, 512 },
    { "password",   SK_T_STRING, SK_F_REQUIRED, 1, 1024 },
    { "tenant_id",  SK_T_STRING, SK_F_NULLABLE, 1, 64 },
    { NULL }
};

static const sk_field login_fields[] = {
    { "email",     SK_T_EMAIL,  SK_F_REQUIRED, 3, 320 },
    { "password",  SK_T_STRING, SK_F_REQUIRED, 1, 1024 },
    { "tenant_id", SK_T_STRING, SK_F_NULLABLE, 1, 64 },
    { NULL }
};

static const char *lower(apr_pool_t *p, const char *s)
{
    char *l = apr_pstrdup(p, s), *c;
    for (c = l; *c; c++)
        *c = (char)apr_tolower((unsigned char)*c);
    return l;
}

int sk_api_portal_identify(sk_req *q)
{
    const char *token, *id = NULL;
    sk_db *db;

    if (sk_req_invalid(q, identify_fields))
        return OK;
    if (!(db = sk_req_db(q)))
        return sk_fail_unavailable(q);
    if (!(token = sk_random_token(q->p, "skf_", 32)))
        return sk_fail_unavailable(q);
    if (SK_QV(db, "user_otc_create", &id, "flow", NULL, NULL, lower(q->p, sk_jstr(q->body, "email")),
              sk_sha256_hex(q->p, token), "{}", apr_itoa(q->p, FLOW_TTL), q->ip) != SK_DB_OK) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, SKLOGNO(0921) "flow token not stored: %s", sk_db_error(db));
        return sk_fail_unavailable(q);
    }
    sk_no_store(q);
    return sk_reply(q, HTTP_OK, json_pack("{s:s,s:[],s:i}", "flow_token", token, "tenants", "expires_in", FLOW_TTL));
}

/* The password against every tenant account of the email; flow_id: the flow token to spend. */
static int sign_in(sk_req *q, sk_db *db, const char *email, const char *password, const char *tenant_id,
                   const char *flow_id)
{
    const char *acct_key = apr_pstrcat(q->p, "user-acct:portal:", lower(q->p, email), NULL);
    const char *ip_key = apr_pstrcat(q->p, "user-ip:", q->ip, NULL);
    json_t *accounts = NULL, *matched, *acc;
    size_t i;
    sk_db_status st;

    if (sk_user_throttle_check(q, db, acct_key, ip_key, email, tenant_id))
        return OK;
    st = SK_QJ(db, "portal_accounts", &accounts, email, tenant_id);
    if (st != SK_DB_OK)
        return sk_fail_unavailable(q);
    sk_pool_json(q->p, accounts);
    matched = json_array();
    sk_pool_json(q->p, matched);
    if (json_array_size(accounts) == 0)
        sk_password_verify(NULL, password);        /* the same work as for one account */
    json_array_foreach(accounts, i, acc) {
        if (sk_password_verify(sk_jstr(acc, "password_hash"), password))
            json_array_append(matched, acc);
    }
    if (json_array_size(matched) == 0)
        return sk_user_bad_credentials(q, db, acct_key, ip_key, email,
                                       json_array_size(accounts) == 1 ? json_array_get(accounts, 0) : NULL);
    if (json_array_size(matched) > 1) {
        json_t *tenants = json_array(), *e;
        json_array_foreach(matched, i, acc) {
            json_t *t = json_object_get(acc, "tenant");
            json_array_append_new(tenants, json_pack("{s:O,s:O,s:O}", "id", json_object_get(t, "id"),
                                                     "slug", json_object_get(t, "slug"),
                                                     "name", json_object_get(t, "name")));
        }
        e = sk_verr("body", "tenant_id", "The account exists in several tenants: choose one", "missing");
        json_object_set_new(e, "ctx", json_pack("{s:o}", "tenants", tenants));
        return sk_fail_validation(q, json_pack("[o]", e));
    }
    acc = json_array_get(matched, 0);
    if (flow_id) {
        const char *used = NULL;
        st = SK_QV(db, "user_otc_use", &used, flow_id);
        if (st == SK_DB_NOTFOUND)
            return sk_fail(q, HTTP_UNAUTHORIZED, "Invalid or expired flow token");
        if (st != SK_DB_OK)
            return sk_fail_unavailable(q);
    }
    return sk_user_password_ok(q, db, acc, "portal", acct_key);
}

int sk_api_portal_authenticate(sk_req *q)
{
    json_t *tok = NULL;
    sk_db *db;
    sk_db_status st;

    if (sk_req_invalid(q, authenticate_fields))
        return OK;
    if (!(db = sk_req_db(q)))
        return sk_fail_unavailable(q);
    st = SK_QJ(db, "user_otc_attempt", &tok, "flow", sk_sha256_hex(q->p, sk_jstr(q->body, "flow_token")));
    if (st == SK_DB_NOTFOUND)
        return sk_fail(q, HTTP_UNAUTHORIZED, "Invalid or expired flow token");
    if (st != SK_DB_OK)
        return sk_fail_unavailable(q);
    sk_pool_json(q->p, tok);
    return sign_in(q, db, sk_jstr(tok, "email"), sk_jstr(q->body, "password"), sk_jstr(q->body, "tenant_id"), sk_jstr(tok, "id"));
}

int sk_api_portal_login(sk_req *q)
{
    sk_db *db;
    if (sk_req_invalid(q, login_fields))
        return OK;
    if (!(db = sk_req_db(q)))
        return sk_fail_unavailable(q);
    return sign_in(q, db, sk_jstr(q->body, "email"), sk_jstr(q->body, "password"), sk_jstr(q->body, "tenant_id"), NULL);
}

int sk_api_portal_refresh(sk_req *q)
{
    return sk_user_refresh(q, "portal", NULL);
}

int sk_api_portal_logout(sk_req *q)
{
    return sk_user_logout(q);
}
