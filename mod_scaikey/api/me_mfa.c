/* Second factors of the signed-in person: /api/v1/me/mfa -- TOTP enrolment (RFC 6238: SHA-1,
 * 6 digits, 30 s steps, one step of clock drift either way, no step accepted twice) and backup
 * codes (ten at a time, shown once, each usable once, only their digests stored).
 * The TOTP seed is sealed with the master key (AES-256-GCM, associated data "totp:<user id>"). */
#include "api/users.h"
#include "http/response.h"
#include "core/totp.h"
#include "core/secrets.h"
#include "core/throttle.h"
#include "core/pooljson.h"
#include "scaikey.h"
#include "core/jsonget.h"

#include <apr_strings.h>
#include <apr_lib.h>
#include <http_protocol.h>

APLOG_USE_MODULE(scaikey);

#define BACKUP_CODES   10
#define TOTP_WINDOW    1
#define DEFAULT_ISSUER "ScaiKey"

static const sk_field code_fields[] = {
    { "code", SK_T_STRING, SK_F_REQUIRED, 1, 64 },
    { NULL }
};

int sk_me_mfa_person(sk_req *q)
{
    if (q->who->user_id && q->who->session_id)
        return 1;
    sk_fail(q, HTTP_FORBIDDEN, "Only a signed-in person has second factors");
    return 0;
}

static int failed(sk_req *q, sk_db *db, const char *what)
{
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, SKLOGNO(0961) "%s: %s", what, sk_db_error(db));
    return sk_fail_unavailable(q);
}

static const char *aad(sk_req *q, const char *uid)
{
    return apr_pstrcat(q->p, "totp:", uid, NULL);
}

/* the TOTP seed of a method row ({"secret": base64 of the sealed seed}); NULL when it cannot be opened */
static unsigned char *open_seed(sk_req *q, const char *uid, json_t *method, size_t *len)
{
    size_t sealed_len = 0;
    unsigned char *sealed, *seed = NULL;
    if (!q->cfg->have_master_key || !sk_jstr(method, "secret") ||
        !(sealed = sk_b64_decode(q->p, sk_jstr(method, "secret"), &sealed_len)))
        return NULL;
    if (sk_aead_open(q->p, q->cfg->master_key, aad(q, uid), sealed, sealed_len, &seed, len) != 0) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, SKLOGNO(0962) "TOTP seed of %s cannot be opened", uid);
        return NULL;
    }
    return seed;
}

static long long now_s(void)
{
    return (long long)apr_time_sec(apr_time_now());
}

/* a code of method (its last used step in the row); the step it matches, or -1 */
static long long match_code(sk_req *q, const char *uid, json_t *method, const char *code, int *broken)
{
    size_t len = 0;
    unsigned char *seed = open_seed(q, uid, method, &len);
    json_t *last = json_object_get(method, "last_used_step");
    *broken = !seed;
    if (!seed)
        return -1;
    return sk_totp_verify(seed, len, code, now_s(), TOTP_WINDOW,
                          json_is_integer(last) ? (long long)json_integer_value(last) : -1);
}

int sk_mfa_totp_check(sk_req *q, sk_db *db, const char *user_id, const char *code)
{
    json_t *state = NULL, *totp;
    const char *used = NULL;
    long long step;
    int broken;
    sk_db_status st;

    if ((st = SK_QJ(db, "mfa_state", &state, user_id)) != SK_DB_OK)
        return st == SK_DB_NOTFOUND ? 0 : -1;
    sk_pool_json(q->p, state);
    if (!json_is_object(totp = json_object_get(state, "totp")))
        return 0;
    if ((step = match_code(q, user_id, totp, code, &broken)) < 0)
        return broken ? -1 : 0;
    /* the step is spent atomically: a concurrent use of the same code loses */
    st = SK_QV(db, "mfa_totp_use", &used, sk_jstr(totp, "id"), apr_psprintf(q->p, "%" APR_INT64_T_FMT, (apr_int64_t)step));
    return st == SK_DB_OK ? 1 : st == SK_DB_NOTFOUND ? 0 : -1;
}

/* backup codes are shown as xxxxx-xxxxx; dashes, blanks and case do not matter */
static const char *backup_digest(sk_req *q, const char *uid, const char *code)
{
    char *n = apr_palloc(q->p, strlen(code) + 1), *o = n;
    for (; *code; code++) {
        if (*code == '-' || *code == ' ')
            continue;
        if (!apr_isalnum((unsigned char)*code))
            return NULL;
        *o++ = (char)apr_tolower((unsigned char)*code);
    }
    *o = '\0';
    if (strlen(n) != 10)
        return NULL;
    return sk_sha256_hex(q->p, apr_pstrcat(q->p, uid, ":", n, NULL));
}

int sk_mfa_backup_use(sk_req *q, sk_db *db, const char *user_id, const char *code)
{
    const char *digest = backup_digest(q, user_id, code), *id = NULL;
    sk_db_status st;
    if (!digest)
        return 0;
    st = SK_QV(db, "mfa_backup_use", &id, user_id, digest);
    return st == SK_DB_OK ? 1 : st == SK_DB_NOTFOUND ? 0 : -1;
}

/* ten new codes: *codes for the answer, *digests (JSON text) for the store */
static int new_backup_codes(sk_req *q, const char *uid, json_t **codes, const char **digests)
{
    json_t *d = json_array();
    char *text;
    int i;
    *codes = json_array();
    for (i = 0; i < BACKUP_CODES; i++) {
        const char *r = sk_random_id(q->p, NULL), *code;
        if (!r || strlen(r) < 10) {
            json_decref(d);
            json_decref(*codes);
            return -1;
        }
        code = apr_psprintf(q->p, "%.5s-%.5s", r, r + 5);
        json_array_append_new(*codes, json_string(code));
        json_array_append_new(d, json_string(backup_digest(q, uid, code)));
    }
    text = json_dumps(d, JSON_COMPACT);
    json_decref(d);
    *digests = text ? apr_pstrdup(q->p, text) : NULL;
    free(text);
    return *digests ? 0 : -1;
}

int sk_me_mfa_throttled(sk_req *q, sk_db *db, const char *key)
{
    int window = q->cfg->throttle_window == SK_UNSET ? 900 : q->cfg->throttle_window;
    int wait = sk_throttle_wait(db, key, q->cfg->throttle_account == SK_UNSET ? 5 : q->cfg->throttle_account,
                                window);
    if (wait < 0)
        return sk_fail_unavailable(q), 1;
    if (wait > 0)
        return sk_fail_throttled(q, wait, "Too many failed attempts. Try again later."), 1;
    return 0;
}

int sk_me_mfa_bad_code(sk_req *q, sk_db *db, const char *key, const char *action)
{
    sk_audit *a = sk_req_audit(q, action, "failure");
    sk_throttle_fail(db, key, q->cfg->throttle_window == SK_UNSET ? 900 : q->cfg->throttle_window);
    a->resource_type = "user";
    a->resource_id = q->who->user_id;
    a->details = json_pack("{s:s}", "reason", "invalid_code");
    sk_user_audit_now(q, a);
    json_decref(a->details);
    return sk_fail(q, HTTP_BAD_REQUEST, "Invalid code");
}

const char *sk_me_mfa_throttle_key(sk_req *q)
{
    return apr_pstrcat(q->p, "user-mfa:", q->who->user_id, NULL);
}

int sk_api_me_mfa(sk_req *q)
{
    json_t *out = NULL;
    sk_db *db;
    if (!sk_me_mfa_person(q))
        return OK;
    if (!(db = sk_req_db(q)))
        return sk_fail_unavailable(q);
    if (SK_QJ(db, "mfa_list", &out, q->who->user_id) != SK_DB_OK)
        return failed(q, db, "MFA methods");
    sk_no_store(q);
    return sk_reply(q, HTTP_OK, out);
}

/* RFC 3986 unreserved characters stay, everything else is percent-encoded */
static const char *uri_escape(apr_pool_t *p, const char *s)
{
    char *o = apr_palloc(p, strlen(s) * 3 + 1), *c = o;
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (apr_isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~')
            *c++ = (char)ch;
        else
            c += sprintf(c, "%%%02X", ch);
    }
    *c = '\0';
    return o;
}

int sk_api_me_totp_setup(sk_req *q)
{
    unsigned char seed[SK_TOTP_SECRET_LEN], *sealed = NULL;
    size_t sealed_len = 0;
    json_t *state = NULL;
    const char *secret, *issuer, *label, *id = NULL;
    sk_db *db;
    sk_audit *a;
    sk_db_status st;

    if (!sk_me_mfa_person(q))
        return OK;
    if (!q->cfg->have_master_key)
        return sk_fail_unavailable(q);
    if (!(db = sk_req_db(q)))
        return sk_fail_unavailable(q);
    if ((st = SK_QJ(db, "mfa_state", &state, q->who->user_id)) != SK_DB_OK)
        return st == SK_DB_NOTFOUND ? sk_fail(q, HTTP_NOT_FOUND, "User not found") : failed(q, db, "MFA state");
    sk_pool_json(q->p, state);
    if (json_is_object(json_object_get(state, "totp")))
        return sk_fail(q, HTTP_CONFLICT, "TOTP is already enabled");
    if (sk_random_bytes(seed, sizeof(seed)) != 0 ||
        sk_aead_seal(q->p, q->cfg->master_key, aad(q, q->who->user_id), seed, sizeof(seed), &sealed, &sealed_len) != 0)
        return sk_fail_unavailable(q);
    secret = sk_base32_encode(q->p, seed, sizeof(seed));
    memset(seed, 0, sizeof(seed));
    issuer = sk_jstr(state, "tenant_name") ? sk_jstr(state, "tenant_name") : DEFAULT_ISSUER;
    label = apr_pstrcat(q->p, uri_escape(q->p, issuer), ":", uri_escape(q->p, sk_jstr(json_object_get(state, "user"), "email")), NULL);

    a = sk_req_audit(q, "user.mfa_totp_setup", "success");
    a->resource_type = "user";
    a->resource_id = q->who->user_id;
    if ((st = sk_db_begin(db)) == SK_DB_OK &&
        (st = SK_QV(db, "mfa_totp_begin", &id, q->who->user_id, sk_b64_encode(q->p, sealed, sealed_len))) == SK_DB_OK &&
        (st = sk_audit_write(db, a)) == SK_DB_OK && (st = sk_db_commit(db)) == SK_DB_OK) {
        sk_no_store(q);
        return sk_reply(q, HTTP_OK, json_pack("{s:s,s:s,s:s}", "secret", secret, "otpauth_uri",
                                              apr_pstrcat(q->p, "otpauth://totp/", label, "?secret=", secret,
                                                          "&issuer=", uri_escape(q->p, issuer),
                                                          "&algorithm=SHA1&digits=6&period=30", NULL),
                                              "method_id", id));
    }
    sk_db_rollback(db);
    return failed(q, db, "TOTP setup");
}

int sk_api_me_totp_confirm(sk_req *q)
{
    json_t *state = NULL, *pending, *codes = NULL;
    const char *key = NULL, *digests = NULL, *used = NULL, *confirmed = NULL;
    long long step;
    int broken;
    sk_db *db;
    sk_audit *a;
    sk_db_status st;

    if (!sk_me_mfa_person(q) || sk_req_invalid(q, code_fields))
        return OK;
    if (!(db = sk_req_db(q)))
        return sk_fail_unavailable(q);
    key = sk_me_mfa_throttle_key(q);
    if (sk_me_mfa_throttled(q, db, key))
        return OK;
    if ((st = SK_QJ(db, "mfa_state", &state, q->who->user_id)) != SK_DB_OK)
        return st == SK_DB_NOTFOUND ? sk_fail(q, HTTP_NOT_FOUND, "User not found") : failed(q, db, "MFA state");
    sk_pool_json(q->p, state);
    if (json_is_object(json_object_get(state, "totp")))
        return sk_fail(q, HTTP_CONFLICT, "TOTP is already enabled");
    if (!json_is_object(pending = json_object_get(state, "pending")))
        return sk_fail(q, HTTP_BAD_REQUEST, "No TOTP setup in progress");
    if ((step = match_code(q, q->who->user_id, pending, sk_jstr(q->body, "code"), &broken)) < 0)
        return broken ? sk_fail_unavailable(q) : sk_me_mfa_bad_code(q, db, key, "user.mfa_totp_enable");
    if (new_backup_codes(q, q->who->user_id, &codes, &digests) != 0)
        return sk_fail_unavailable(q);
    sk_pool_json(q->p, codes);
    sk_throttle_reset(db, key);
    a = sk_req_audit(q, "user.mfa_totp_enable", "success");
    a->resource_type = "user";
    a->resource_id = q->who->user_id;
    if ((st = sk_db_begin(db)) == SK_DB_OK &&
        (st = SK_QV(db, "mfa_totp_use", &used, sk_jstr(pending, "id"), apr_psprintf(q->p, "%" APR_INT64_T_FMT, (apr_int64_t)step))) == SK_DB_OK &&
        (st = SK_QV(db, "mfa_totp_confirm", &confirmed, sk_jstr(pending, "id"))) == SK_DB_OK &&
        (st = SK_Q(db, "mfa_user_sync", q->who->user_id)) == SK_DB_OK &&
        (st = SK_Q(db, "mfa_backup_replace", q->who->user_id, digests)) == SK_DB_OK &&
        (st = sk_audit_write(db, a)) == SK_DB_OK && (st = sk_db_commit(db)) == SK_DB_OK) {
        sk_no_store(q);
        return sk_reply(q, HTTP_OK, json_pack("{s:s,s:b,s:O}", "detail", "TOTP enabled", "mfa_enabled", 1,
                                              "backup_codes", codes));
    }
    sk_db_rollback(db);
    if (st == SK_DB_NOTFOUND)       /* a concurrent confirmation won */
        return sk_fail(q, HTTP_CONFLICT, "TOTP is already enabled");
    return failed(q, db, "TOTP confirm");
}

int sk_me_mfa_current_totp(sk_req *q, sk_db *db, const char *action)
{
    json_t *state = NULL;
    const char *key = sk_me_mfa_throttle_key(q);
    sk_db_status st;
    int ok;
    if (sk_me_mfa_throttled(q, db, key))
        return 0;
    if ((st = SK_QJ(db, "mfa_state", &state, q->who->user_id)) != SK_DB_OK) {
        st == SK_DB_NOTFOUND ? sk_fail(q, HTTP_NOT_FOUND, "User not found") : failed(q, db, "MFA state");
        return 0;
    }
    sk_pool_json(q->p, state);
    if (!json_is_object(json_object_get(state, "totp"))) {
        sk_fail(q, HTTP_NOT_FOUND, "TOTP is not enabled");
        return 0;
    }
    if ((ok = sk_mfa_totp_check(q, db, q->who->user_id, sk_jstr(q->body, "code"))) < 0) {
        sk_fail_unavailable(q);
        return 0;
    }
    if (!ok) {
        sk_me_mfa_bad_code(q, db, key, action);
        return 0;
    }
    sk_throttle_reset(db, key);
    return 1;
}

int sk_api_me_totp_disable(sk_req *q)
{
    const char *n = NULL;
    sk_db *db;
    sk_audit *a;
    sk_db_status st;

    if (!sk_me_mfa_person(q) || sk_req_invalid(q, code_fields))
        return OK;
    if (!(db = sk_req_db(q)))
        return sk_fail_unavailable(q);
    if (!sk_me_mfa_current_totp(q, db, "user.mfa_totp_disable"))
        return OK;
    a = sk_req_audit(q, "user.mfa_totp_disable", "success");
    a->resource_type = "user";
    a->resource_id = q->who->user_id;
    if ((st = sk_db_begin(db)) == SK_DB_OK &&
        (st = SK_QV(db, "mfa_totp_remove", &n, q->who->user_id)) == SK_DB_OK &&
        (st = SK_Q(db, "mfa_backup_clear", q->who->user_id)) == SK_DB_OK &&
        (st = SK_Q(db, "mfa_user_sync", q->who->user_id)) == SK_DB_OK &&
        (st = sk_audit_write(db, a)) == SK_DB_OK && (st = sk_db_commit(db)) == SK_DB_OK)
        return sk_reply(q, HTTP_OK, json_pack("{s:s,s:b}", "detail", "TOTP disabled", "mfa_enabled", 0));
    sk_db_rollback(db);
    return failed(q, db, "TOTP disable");
}

int sk_api_me_backup_regenerate(sk_req *q)
{
    json_t *codes = NULL;
    const char *digests = NULL;
    sk_db *db;
    sk_audit *a;
    sk_db_status st;

    if (!sk_me_mfa_person(q) || sk_req_invalid(q, code_fields))
        return OK;
    if (!(db = sk_req_db(q)))
        return sk_fail_unavailable(q);
    if (!sk_me_mfa_current_totp(q, db, "user.mfa_backup_regenerate"))
        return OK;
    if (new_backup_codes(q, q->who->user_id, &codes, &digests) != 0)
        return sk_fail_unavailable(q);
    sk_pool_json(q->p, codes);
    a = sk_req_audit(q, "user.mfa_backup_regenerate", "success");
    a->resource_type = "user";
    a->resource_id = q->who->user_id;
    if ((st = sk_db_begin(db)) == SK_DB_OK &&
        (st = SK_Q(db, "mfa_backup_replace", q->who->user_id, digests)) == SK_DB_OK &&
        (st = sk_audit_write(db, a)) == SK_DB_OK && (st = sk_db_commit(db)) == SK_DB_OK) {
        sk_no_store(q);
        return sk_reply(q, HTTP_OK, json_pack("{s:O}", "backup_codes", codes));
    }
    sk_db_rollback(db);
    return failed(q, db, "backup codes");
}
